//! `global_rate_limit` on the native test host: the descriptor it sends, the answers it
//! follows (OK, OVER_LIMIT with the service's headers), and fail open or closed when the
//! service gives no answer.

use global_rate_limit::rls::{
    Code, DescriptorStatus, HeaderValue, RateLimitRequest, RateLimitResponse,
};
use global_rate_limit::GlobalRateLimit;
use prost::Message;
use pwf_test::{Action, CallState, Host, LogLevel, Metric, Plugin, Stream};

const CONFIG: &str = r#"{"descriptors": [{"header": "x-api-key", "key": "api_key"}, {"header": "x-tenant", "key": "tenant"}]}"#;
const FAIL_OPEN: &str =
    r#"{"descriptors": [{"header": "x-api-key", "key": "api_key"}], "failOpen": true}"#;

fn start(config: &str) -> (Host, Plugin) {
    let host = Host::builder().cluster("ratelimit").build();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<GlobalRateLimit>)
        .unwrap()
        .configure(config)
        .unwrap();
    (host, plugin)
}

fn request(plugin: &Plugin, headers: &[(&str, &str)]) -> (Stream, Action) {
    let stream = plugin.open_stream();
    let mut all = vec![(":method", "GET"), (":path", "/"), (":authority", "app")];
    all.extend_from_slice(headers);
    let action = stream.request_headers(all, true);
    (stream, action)
}

fn answer(code: Code, headers: &[(&str, &str)]) -> Vec<u8> {
    RateLimitResponse {
        overall_code: code as i32,
        statuses: vec![DescriptorStatus {
            code: code as i32,
            current_limit: None,
            limit_remaining: 0,
        }],
        response_headers_to_add: headers
            .iter()
            .map(|(k, v)| HeaderValue {
                key: (*k).to_owned(),
                value: (*v).to_owned(),
            })
            .collect(),
        request_headers_to_add: Vec::new(),
    }
    .encode_to_vec()
}

fn counter(host: &Host, name: &str) -> u64 {
    match host.metric(name) {
        Some(Metric::Counter(n)) => n,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn request_sends_one_descriptor_from_the_configured_headers() {
    let (_host, plugin) = start(CONFIG);
    let (stream, action) = request(&plugin, &[("x-api-key", "alice"), ("x-tenant", "acme")]);
    assert_eq!(action, Action::Pause);
    let calls = stream.grpc_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.cluster(), "ratelimit");
    assert_eq!(
        call.path(),
        "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit"
    );
    assert_eq!(call.timeout(), Some(std::time::Duration::from_millis(200)));
    let sent = RateLimitRequest::decode(call.message().as_slice()).unwrap();
    assert_eq!(sent.domain, "pwf");
    assert_eq!(sent.hits_addend, 1);
    assert_eq!(sent.descriptors.len(), 1);
    let entries: Vec<(&str, &str)> = sent.descriptors[0]
        .entries
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(entries, [("api_key", "alice"), ("tenant", "acme")]);
}

#[test]
fn request_without_a_descriptor_header_passes_unasked() {
    let (_host, plugin) = start(CONFIG);
    let (stream, action) = request(&plugin, &[("x-api-key", "alice")]);
    assert_eq!(action, Action::Continue);
    assert!(stream.grpc_calls().is_empty());
}

#[test]
fn under_the_limit_the_request_goes_on_with_the_service_headers() {
    let (host, plugin) = start(CONFIG);
    let (stream, _) = request(&plugin, &[("x-api-key", "alice"), ("x-tenant", "acme")]);
    stream.grpc_calls()[0].respond(answer(Code::Ok, &[("x-ratelimit-remaining", "4")]));
    assert_eq!(stream.resumes().len(), 1);
    assert_eq!(stream.local_response(), None);
    stream.response_headers([(":status", "200")], true);
    assert_eq!(
        stream.response_header("x-ratelimit-remaining").as_deref(),
        Some("4")
    );
    assert_eq!(counter(&host, "global_rate_limit.ok"), 1);
}

#[test]
fn over_the_limit_answers_429_with_the_service_headers() {
    let (host, plugin) = start(CONFIG);
    let (stream, _) = request(&plugin, &[("x-api-key", "alice"), ("x-tenant", "acme")]);
    stream.grpc_calls()[0].respond(answer(
        Code::OverLimit,
        &[("x-ratelimit-limit", "5"), ("x-ratelimit-remaining", "0")],
    ));
    let local = stream.local_response().expect("a local response");
    assert_eq!(local.status, 429);
    assert_eq!(local.headers.get("x-ratelimit-limit"), Some("5"));
    assert_eq!(local.headers.get("x-ratelimit-remaining"), Some("0"));
    assert_eq!(String::from_utf8_lossy(&local.body), "rate limited\n");
    assert_eq!(counter(&host, "global_rate_limit.over_limit"), 1);
}

#[test]
fn no_answer_fails_closed_with_503() {
    let (host, plugin) = start(CONFIG);
    let headers = [("x-api-key", "alice"), ("x-tenant", "acme")];
    let (refused, _) = request(&plugin, &headers);
    refused.grpc_calls()[0].refuse();
    let (slow, _) = request(&plugin, &headers);
    slow.grpc_calls()[0].time_out();
    let (broken, _) = request(&plugin, &headers);
    broken.grpc_calls()[0].respond_status(13, "redis is down");
    let (garbled, _) = request(&plugin, &headers);
    garbled.grpc_calls()[0].respond(b"\xff\xff");
    for stream in [&refused, &slow, &broken, &garbled] {
        assert_eq!(stream.local_response().map(|r| r.status), Some(503));
    }
    assert_eq!(counter(&host, "global_rate_limit.failed"), 4);
    assert!(host
        .logs(LogLevel::Warn)
        .iter()
        .any(|l| l.contains("no answer, refused") && l.contains("redis is down")));
}

#[test]
fn no_answer_fails_open_when_configured() {
    let (_host, plugin) = start(FAIL_OPEN);
    let (stream, _) = request(&plugin, &[("x-api-key", "alice")]);
    stream.grpc_calls()[0].time_out();
    assert_eq!(stream.local_response(), None);
    assert_eq!(stream.resumes().len(), 1);
}

#[test]
fn unknown_cluster_fails_per_configuration_without_a_call() {
    let host = Host::default();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<GlobalRateLimit>)
        .unwrap()
        .configure(CONFIG)
        .unwrap();
    let (stream, _) = request(&plugin, &[("x-api-key", "a"), ("x-tenant", "b")]);
    assert!(stream.grpc_calls().is_empty());
    assert_eq!(stream.local_response().map(|r| r.status), Some(503));
}

#[test]
fn client_gone_mid_call_cancels_the_call() {
    let (_host, plugin) = start(CONFIG);
    let (stream, _) = request(&plugin, &[("x-api-key", "alice"), ("x-tenant", "acme")]);
    let call = stream.grpc_calls()[0].clone();
    stream.end().unwrap();
    assert_eq!(call.state(), CallState::Cancelled);
    assert_eq!(plugin.failure(), None);
}

#[test]
fn configuration_needs_a_descriptor_header() {
    let host = Host::default();
    let refused = host
        .start_vm_with_root(pwf::root_context::<GlobalRateLimit>)
        .unwrap()
        .configure(r#"{"descriptors": []}"#);
    assert!(refused.is_err());
    let logged: Vec<String> = host.log_entries().into_iter().map(|e| e.message).collect();
    assert!(
        logged
            .iter()
            .any(|l| l.contains("descriptors: must name at least one header")),
        "{logged:?}"
    );
}

const CACHED: &str =
    r#"{"descriptors": [{"header": "x-api-key", "key": "api_key"}], "cacheUnderLimit": "2s"}"#;

/// Sends a request for `key` and answers its call `code`; returns the stream.
fn asked(plugin: &Plugin, key: &str, code: Code) -> Stream {
    let (stream, action) = request(plugin, &[("x-api-key", key)]);
    assert_eq!(action, Action::Pause, "waits for the service");
    let calls = stream.grpc_calls();
    assert_eq!(calls.len(), 1, "one call");
    calls[0].respond(answer(code, &[("x-ratelimit-remaining", "4")]));
    stream
}

#[test]
fn under_limit_answer_is_reused_within_cache_under_limit_without_a_call() {
    let (host, plugin) = start(CACHED);
    asked(&plugin, "alice", Code::Ok);
    host.advance(std::time::Duration::from_millis(1999));
    let (stream, action) = request(&plugin, &[("x-api-key", "alice")]);
    assert_eq!(action, Action::Continue, "let through at once");
    assert!(stream.grpc_calls().is_empty(), "no call");
    stream.response_headers([(":status", "200")], true);
    assert_eq!(
        stream.response_header("x-ratelimit-remaining"),
        None,
        "a cached answer adds none of the service's headers"
    );
    assert_eq!(counter(&host, "global_rate_limit.ok"), 1);
    assert_eq!(counter(&host, "global_rate_limit.cached"), 1);
}

#[test]
fn under_limit_answer_expires_after_cache_under_limit() {
    let (host, plugin) = start(CACHED);
    asked(&plugin, "alice", Code::Ok);
    host.advance(std::time::Duration::from_secs(2));
    asked(&plugin, "alice", Code::Ok);
    assert_eq!(counter(&host, "global_rate_limit.ok"), 2);
    assert_eq!(counter(&host, "global_rate_limit.cached"), 0);
}

#[test]
fn under_limit_answer_is_cached_per_descriptor_only() {
    let (_host, plugin) = start(CACHED);
    asked(&plugin, "alice", Code::Ok);
    asked(&plugin, "bob", Code::Ok);
}

#[test]
fn over_limit_answer_is_never_cached() {
    let (host, plugin) = start(CACHED);
    let stream = asked(&plugin, "alice", Code::OverLimit);
    assert_eq!(stream.local_response().map(|r| r.status), Some(429));
    asked(&plugin, "alice", Code::OverLimit);
    assert_eq!(counter(&host, "global_rate_limit.over_limit"), 2);
}

#[test]
fn under_limit_answers_are_not_cached_by_default() {
    let (_host, plugin) = start(FAIL_OPEN);
    asked(&plugin, "alice", Code::Ok);
    asked(&plugin, "alice", Code::Ok);
}
