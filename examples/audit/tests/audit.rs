//! `audit` on the native test host: the queue hand-off, the metrics, the body limit.
//!
//! The host delivers `on_queue_ready` to the root context that registered the queue once
//! the enqueuing callback is over, as Envoy posts it to that worker.

use audit::{Audit, Entry, RECENT_PATH};
use pwf_test::{Action, ConfigureError, Host, LogLevel, Metric, Plugin, Stream};

fn configured(host: &Host, config: &str) -> Plugin {
    let vm = host.start_vm_with_root(pwf::root_context::<Audit>).unwrap();
    vm.configure(config).unwrap()
}

fn headers(method: &str, path: &str) -> Vec<(String, String)> {
    vec![
        (":method".to_owned(), method.to_owned()),
        (":path".to_owned(), path.to_owned()),
        (":authority".to_owned(), "app".to_owned()),
    ]
}

/// A bodiless request through the request headers phase.
fn get(plugin: &Plugin, path: &str) -> Stream {
    let stream = plugin.open_stream();
    stream.request_headers(headers("GET", path), true);
    stream
}

/// A request whose body arrives in `chunks`; returns the stream and the last action.
fn post(plugin: &Plugin, chunks: &[&[u8]]) -> (Stream, Action) {
    let stream = plugin.open_stream();
    assert_eq!(
        stream.request_headers(headers("POST", "/upload"), false),
        Action::Continue
    );
    let mut action = Action::Continue;
    for (index, chunk) in chunks.iter().enumerate() {
        action = stream.request_body(chunk, index + 1 == chunks.len());
    }
    (stream, action)
}

fn recent(plugin: &Plugin) -> Vec<Entry> {
    let response = get(plugin, RECENT_PATH)
        .local_response()
        .expect("/audit/recent is answered by the plugin");
    serde_json::from_slice(&response.body).unwrap()
}

fn entry(method: &str, path: &str) -> Entry {
    Entry {
        method: method.to_owned(),
        path: path.to_owned(),
    }
}

#[test]
fn each_request_is_counted_in_audit_requests() {
    let host = Host::default();
    let plugin = configured(&host, "");
    for path in ["/a", "/b", "/c"] {
        assert_eq!(get(&plugin, path).local_response(), None);
    }
    assert_eq!(host.metric("audit.requests"), Some(Metric::Counter(3)));
}

#[test]
fn request_reaches_on_queue_ready_and_is_kept_in_shared_data() {
    let host = Host::default();
    let plugin = configured(&host, "");
    get(&plugin, "/first");
    let kept: Vec<Entry> =
        serde_json::from_slice(&host.shared_data("audit.recent.audit").unwrap()).unwrap();
    assert_eq!(kept, [entry("GET", "/first")]);
}

#[test]
fn recent_path_answers_the_recent_requests_as_json() {
    let host = Host::default();
    let plugin = configured(&host, "");
    get(&plugin, "/first");
    post(&plugin, &[b"body"]);
    let stream = get(&plugin, RECENT_PATH);
    let response = stream.local_response().unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        response.headers.get("content-type"),
        Some("application/json")
    );
    assert_eq!(
        response.body,
        br#"[{"method":"GET","path":"/first"},{"method":"POST","path":"/upload"}]"#
    );
}

#[test]
fn recent_path_with_nothing_recorded_answers_an_empty_list() {
    let host = Host::default();
    let plugin = configured(&host, "");
    assert_eq!(recent(&plugin), []);
}

#[test]
fn recent_keeps_only_the_last_keep_recent() {
    let host = Host::default();
    let plugin = configured(&host, r#"{"keepRecent": 2}"#);
    for path in ["/1", "/2", "/3"] {
        get(&plugin, path);
    }
    assert_eq!(recent(&plugin), [entry("GET", "/2"), entry("GET", "/3")]);
}

#[test]
fn request_on_one_worker_is_listed_by_another() {
    let host = Host::default();
    let a = configured(&host, "");
    let b = configured(&host, "");
    get(&a, "/from-a");
    assert_eq!(recent(&b), [entry("GET", "/from-a")]);
}

#[test]
fn queue_name_selects_the_queue_and_the_list() {
    let host = Host::default();
    let plugin = configured(&host, r#"{"queueName": "other"}"#);
    get(&plugin, "/x");
    assert!(host.shared_data("audit.recent.other").is_some());
    assert_eq!(host.shared_data("audit.recent.audit"), None);
}

#[test]
fn body_over_max_body_bytes_answers_413() {
    let host = Host::default();
    let plugin = configured(&host, r#"{"maxBodyBytes": 8}"#);
    let (stream, action) = post(&plugin, &[b"0123456789"]);
    assert_eq!(action, Action::Pause);
    let response = stream.local_response().unwrap();
    assert_eq!(response.status, 413);
    assert_eq!(response.body, b"request body exceeds the limit of 8 bytes");
    assert!(stream.forwarded_request_body().is_empty());
}

#[test]
fn body_over_max_body_bytes_across_chunks_answers_413() {
    let host = Host::default();
    let plugin = configured(&host, r#"{"maxBodyBytes": 8}"#);
    let stream = plugin.open_stream();
    stream.request_headers(headers("POST", "/upload"), false);
    assert_eq!(stream.request_body(b"01234", false), Action::Pause);
    assert_eq!(stream.local_response(), None);
    assert_eq!(stream.request_body(b"56789", true), Action::Pause);
    assert_eq!(stream.local_response().map(|r| r.status), Some(413));
}

#[test]
fn body_over_max_body_bytes_is_not_recorded() {
    let host = Host::default();
    let plugin = configured(&host, r#"{"maxBodyBytes": 8}"#);
    post(&plugin, &[b"0123456789"]);
    assert_eq!(
        host.metric("audit.body_bytes"),
        Some(Metric::Histogram(vec![]))
    );
}

#[test]
fn body_within_max_body_bytes_is_recorded_in_audit_body_bytes() {
    let host = Host::default();
    let plugin = configured(&host, r#"{"maxBodyBytes": 8}"#);
    let (stream, action) = post(&plugin, &[b"0123", b"4567"]);
    assert_eq!(action, Action::Continue);
    assert_eq!(stream.local_response(), None);
    assert_eq!(stream.forwarded_request_body(), b"01234567");
    assert_eq!(
        host.metric("audit.body_bytes"),
        Some(Metric::Histogram(vec![8]))
    );
}

#[test]
fn configure_with_max_body_bytes_0_is_rejected() {
    let host = Host::default();
    let vm = host.start_vm_with_root(pwf::root_context::<Audit>).unwrap();
    assert_eq!(
        vm.configure(r#"{"maxBodyBytes": 0}"#).unwrap_err(),
        ConfigureError::Rejected
    );
    assert_eq!(
        host.logs(LogLevel::Error),
        ["plugin: invalid plugin configuration: maxBodyBytes: must be in 1..=1048576, got 0"]
    );
}
