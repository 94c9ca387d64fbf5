//! `http_auth_random` on the native test host: each request waits for the auth call.

use std::time::Duration;

use http_auth_random::{allowed, HttpAuthRandom};
use pwf_test::{Action, Callback, Delivery, Direction, Host, LogLevel, Plugin, Stream};

/// Its FNV-1a hash is even: allowed.
const EVEN: &str = r#"{"uuid": "7b10a67a-1c67-4199-835b-cbefcd4a63d4"}"#;
/// Its FNV-1a hash is odd: forbidden.
const ODD: &str = r#"{"uuid": "aaaaaaaa-1c67-4199-835b-cbefcd4a63d4"}"#;

const REQUEST: [(&str, &str); 4] = [
    (":method", "GET"),
    (":path", "/anything?q=1"),
    (":authority", "app.example"),
    ("x-user", "ann"),
];

/// 32-bit FNV-1a, written out: offset basis 2166136261, prime 16777619.
fn fnv1a_32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash: u32, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

fn configured(host: &Host, config: &str) -> Plugin {
    let vm = host
        .start_vm_with_root(pwf::root_context::<HttpAuthRandom>)
        .unwrap();
    vm.configure(config).unwrap()
}

/// A request paused on its auth call, with the default configuration.
fn waiting(host: &Host) -> Stream {
    waiting_with(host, "")
}

fn waiting_with(host: &Host, config: &str) -> Stream {
    let stream = configured(host, config).open_stream();
    assert_eq!(stream.request_headers(REQUEST, true), Action::Pause);
    assert_eq!(stream.pending_calls().len(), 1);
    stream
}

fn answer(stream: &Stream, status: u16, body: &str) {
    let call = &stream.pending_calls()[0];
    assert_eq!(
        call.respond(status, [("content-type", "application/json")], body),
        Delivery::Delivered
    );
}

/// Asserts the stream was answered `503 auth service unavailable` and not let through.
fn assert_unavailable(stream: &Stream) {
    let response = stream.local_response().expect("a local response");
    assert_eq!(response.status, 503);
    assert_eq!(response.body, b"auth service unavailable");
    assert_eq!(response.headers.get("powered-by"), Some("pwf"));
    assert_eq!(stream.resumed(Direction::Request), None);
}

#[test]
fn auth_call_carries_the_original_request_headers_on_a_get_for_the_same_path() {
    let host = Host::builder().cluster("httpbin").build();
    let stream = waiting(&host);
    let call = &stream.pending_calls()[0];
    assert_eq!(call.cluster(), "httpbin");
    assert_eq!(
        call.headers().pairs(),
        [
            (":method", "GET"),
            (":path", "/anything?q=1"),
            (":authority", "httpbin"),
            ("x-user", "ann"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
}

/// A POST's `content-length` was forwarded on the bodiless GET: the auth
/// service waited for a body that never came, and every POST took the
/// whole timeout to fail.
#[test]
fn post_with_a_body_forwards_neither_its_framing_nor_hop_by_hop_headers() {
    let host = Host::builder().cluster("httpbin").build();
    let stream = configured(&host, "").open_stream();
    let post = [
        (":method", "POST"),
        (":path", "/anything"),
        (":authority", "app.example"),
        ("content-length", "3"),
        ("transfer-encoding", "chunked"),
        ("connection", "keep-alive"),
        ("te", "trailers"),
        ("x-user", "ann"),
    ];
    assert_eq!(stream.request_headers(post, false), Action::Pause);
    let call = &stream.pending_calls()[0];
    assert_eq!(call.header(":method").as_deref(), Some("GET"));
    assert!(call.body().is_empty());
    for hop in ["content-length", "transfer-encoding", "connection", "te"] {
        assert_eq!(call.header(hop), None, "{hop}");
    }
    assert_eq!(call.header("x-user").as_deref(), Some("ann"));
}

/// A value that is not UTF-8 was left out of the auth call silently and
/// still sent upstream: a policy on that header could be bypassed.
#[test]
fn header_that_is_not_utf8_is_answered_400_even_with_fail_open() {
    let host = Host::builder().cluster("httpbin").build();
    for config in ["", r#"{"failOpen": true}"#] {
        let stream = configured(&host, config).open_stream();
        let headers: [(&str, &[u8]); 3] =
            [(":method", b"GET"), (":path", b"/"), ("cookie", b"a=\xe9")];
        assert_eq!(stream.request_headers(headers, true), Action::Pause);
        assert!(stream.calls().is_empty());
        let response = stream.local_response().expect("a local response");
        assert_eq!(response.status, 400, "{config}");
        assert_eq!(stream.resumed(Direction::Request), None);
    }
    assert_eq!(
        host.logs(LogLevel::Warn)[0],
        "call to cluster `httpbin` not sent: the value of header `cookie` is not UTF-8, and call headers go to the host as text; the request cannot be checked: 400"
    );
}

#[test]
fn even_answer_resumes_the_request() {
    let host = Host::builder().cluster("httpbin").build();
    let stream = waiting(&host);
    answer(&stream, 200, EVEN);
    let resume = stream.resumed(Direction::Request).expect("resumed");
    assert_eq!(resume.during, Callback::CallResponse);
    assert_eq!(stream.local_response(), None);
}

#[test]
fn even_answer_logs_access_granted() {
    let host = Host::builder().cluster("httpbin").build();
    answer(&waiting(&host), 200, EVEN);
    assert_eq!(host.logs(LogLevel::Info), ["access granted"]);
}

#[test]
fn odd_answer_is_forbidden_with_403() {
    let host = Host::builder().cluster("httpbin").build();
    let stream = waiting(&host);
    answer(&stream, 200, ODD);
    let response = stream.local_response().expect("a local response");
    assert_eq!(response.status, 403);
    assert_eq!(response.body, b"access forbidden");
    assert_eq!(response.headers.get("powered-by"), Some("pwf"));
    assert_eq!(stream.resumed(Direction::Request), None);
}

#[test]
fn odd_answer_logs_access_forbidden() {
    let host = Host::builder().cluster("httpbin").build();
    answer(&waiting(&host), 200, ODD);
    assert_eq!(host.logs(LogLevel::Info), ["access forbidden"]);
}

#[test]
fn fnv1a_32_reference_matches_the_published_test_vectors() {
    assert_eq!(fnv1a_32(b""), 0x811c_9dc5);
    assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
    assert_eq!(fnv1a_32(b"foobar"), 0xbf9c_f968);
}

#[test]
fn allowed_agrees_with_the_parity_of_fnv1a_32() {
    let bodies: [&[u8]; 8] = [
        EVEN.as_bytes(),
        ODD.as_bytes(),
        b"",
        b"a",
        b"ab",
        b"foobar",
        pwf_test::REFUSED_BODY.as_bytes(),
        &[0xff, 0x00, 0x7f, 0x80],
    ];
    for body in bodies {
        assert_eq!(allowed(body), fnv1a_32(body).is_multiple_of(2), "{body:?}");
    }
    assert_eq!(fnv1a_32(EVEN.as_bytes()) % 2, 0);
    assert_eq!(fnv1a_32(ODD.as_bytes()) % 2, 1);
}

#[test]
fn reset_call_answers_503_auth_service_unavailable() {
    let host = Host::builder().cluster("httpbin").build();
    let stream = waiting(&host);
    assert_eq!(stream.pending_calls()[0].reset(), Delivery::Delivered);
    assert_unavailable(&stream);
}

#[test]
fn reset_call_is_logged_at_error() {
    let host = Host::builder().cluster("httpbin").build();
    waiting(&host).pending_calls()[0].reset();
    assert_eq!(
        host.logs(LogLevel::Error),
        ["call to cluster `httpbin` failed: no response (reset or cut off); failing closed: 503"]
    );
}

#[test]
fn refused_connection_answers_503() {
    let host = Host::builder().cluster("httpbin").build();
    let stream = waiting(&host);
    assert_eq!(stream.pending_calls()[0].refuse(), Delivery::Delivered);
    assert_unavailable(&stream);
    assert_eq!(
        host.logs(LogLevel::Error),
        ["call to cluster `httpbin` answered with status 503; failing closed: 503"]
    );
}

/// A 503 whose body hashes even must still fail: the body of a failure never decides.
#[test]
fn status_503_with_an_even_body_answers_503() {
    let host = Host::builder().cluster("httpbin").build();
    let stream = waiting(&host);
    answer(&stream, 503, EVEN);
    assert_unavailable(&stream);
}

#[test]
fn status_500_with_an_even_body_answers_503() {
    let host = Host::builder().cluster("httpbin").build();
    let stream = waiting(&host);
    answer(&stream, 500, EVEN);
    assert_unavailable(&stream);
}

#[test]
fn timed_out_call_answers_503() {
    let host = Host::builder().cluster("httpbin").build();
    let stream = waiting(&host);
    assert_eq!(stream.pending_calls()[0].time_out(), Delivery::Delivered);
    assert_unavailable(&stream);
}

#[test]
fn undeclared_auth_cluster_answers_503_at_once() {
    let host = Host::default();
    let stream = configured(&host, "").open_stream();
    assert_eq!(stream.request_headers(REQUEST, true), Action::Pause);
    assert!(stream.calls().is_empty());
    assert_unavailable(&stream);
}

#[test]
fn fail_open_resumes_the_request_when_the_call_fails() {
    let host = Host::builder().cluster("httpbin").build();
    let stream = waiting_with(&host, r#"{"failOpen": true}"#);
    stream.pending_calls()[0].reset();
    assert!(stream.resumed(Direction::Request).is_some());
    assert_eq!(stream.local_response(), None);
}

#[test]
fn fail_open_logs_a_warning() {
    let host = Host::builder().cluster("httpbin").build();
    waiting_with(&host, r#"{"failOpen": true}"#).pending_calls()[0].refuse();
    assert_eq!(
        host.logs(LogLevel::Warn),
        ["call to cluster `httpbin` answered with status 503; failing open: the request goes on"]
    );
    assert!(host.logs(LogLevel::Error).is_empty());
}

#[test]
fn fail_open_still_forbids_an_odd_answer() {
    let host = Host::builder().cluster("httpbin").build();
    let stream = waiting_with(&host, r#"{"failOpen": true}"#);
    answer(&stream, 200, ODD);
    assert_eq!(stream.local_response().map(|r| r.status), Some(403));
}

#[test]
fn stream_ended_before_the_answer_ignores_the_late_answer() {
    let host = Host::builder().cluster("httpbin").build();
    let stream = waiting(&host);
    let call = stream.pending_calls().remove(0);
    stream.end().unwrap();
    // The call belongs to the plugin's root context: the answer still
    // comes, and finds no waiter.
    assert_eq!(call.respond(200, [("a", "b")], ODD), Delivery::Delivered);
    assert_eq!(stream.local_response(), None);
    assert!(stream.resumes().is_empty());
    assert!(host.logs(LogLevel::Info).is_empty());
}

#[test]
fn stream_ended_before_the_answer_leaves_the_vm_serving() {
    let host = Host::builder().cluster("httpbin").build();
    let plugin = configured(&host, "");
    let first = plugin.open_stream();
    first.request_headers(REQUEST, true);
    let late = first.pending_calls().remove(0);
    first.end().unwrap();
    late.reset();
    let second = plugin.open_stream();
    assert_eq!(second.request_headers(REQUEST, true), Action::Pause);
    answer(&second, 200, EVEN);
    assert!(second.resumed(Direction::Request).is_some());
    assert_eq!(plugin.failure(), None);
}

#[test]
fn auth_call_timeout_is_5_seconds_by_default() {
    let host = Host::builder().cluster("httpbin").build();
    let stream = waiting(&host);
    assert_eq!(
        stream.pending_calls()[0].timeout(),
        Some(Duration::from_secs(5))
    );
}

#[test]
fn auth_call_timeout_equals_timeout_ms() {
    let host = Host::builder().cluster("httpbin").build();
    let stream = waiting_with(&host, r#"{"timeoutMs": "250ms"}"#);
    assert_eq!(
        stream.pending_calls()[0].timeout(),
        Some(Duration::from_millis(250))
    );
}

#[test]
fn auth_call_goes_to_the_configured_cluster() {
    let host = Host::builder().cluster("auth").build();
    let stream = waiting_with(&host, r#"{"authCluster": "auth"}"#);
    assert_eq!(stream.pending_calls()[0].cluster(), "auth");
}

/// A zero timeout was accepted at load, and then every request failed with 503.
#[test]
fn configure_with_a_zero_timeout_is_rejected() {
    let host = Host::builder().cluster("httpbin").build();
    let vm = host
        .start_vm_with_root(pwf::root_context::<HttpAuthRandom>)
        .unwrap();
    assert_eq!(
        vm.configure(r#"{"timeoutMs": 0}"#).unwrap_err(),
        pwf_test::ConfigureError::Rejected
    );
    assert_eq!(
        host.logs(LogLevel::Error),
        ["plugin: invalid plugin configuration: timeoutMs: must be at least 1ms (0 means no timeout to Envoy), got 0ns"]
    );
}

/// A timeout of 2^31 milliseconds or more was accepted at load, and then Envoy refused
/// every call.
#[test]
fn configure_with_a_timeout_of_2_pow_31_millis_is_rejected() {
    let host = Host::builder().cluster("httpbin").build();
    let vm = host
        .start_vm_with_root(pwf::root_context::<HttpAuthRandom>)
        .unwrap();
    assert_eq!(
        vm.configure(r#"{"timeoutMs": 2147483648}"#).unwrap_err(),
        pwf_test::ConfigureError::Rejected
    );
    assert_eq!(
        host.logs(LogLevel::Error),
        ["plugin: invalid plugin configuration: timeoutMs: must be at most 2147483647ms (Envoy reads a signed 32-bit count of milliseconds), got 2147483.648s"]
    );
}
