//! `examples/coalesce` on the native test host.

use std::time::Duration;

use coalesce::Coalesce;
use pwf_test::{Action, Delivery, Host, LogLevel, Metric};

const RESPONSE: [(&str, &str); 1] = [(":status", "200")];

fn request(key: Option<&'static str>) -> Vec<(&'static str, &'static str)> {
    let mut headers = vec![(":method", "GET"), (":path", "/"), (":authority", "app")];
    if let Some(key) = key {
        headers.push(("x-key", key));
    }
    headers
}

fn host() -> Host {
    Host::builder().cluster("httpbin").build()
}

/// A configured plugin, its refresh call answered.
fn start(host: &Host) -> pwf_test::Plugin {
    let plugin = host
        .start_vm_with_root(pwf::root_context::<Coalesce>)
        .unwrap()
        .configure("")
        .unwrap();
    let refresh = plugin.calls();
    assert_eq!(refresh.len(), 1, "the refresh task asks at once");
    assert_eq!(refresh[0].header(":path").as_deref(), Some("/uuid"));
    assert_eq!(
        refresh[0].respond(200, RESPONSE, "0123456789"),
        Delivery::Delivered
    );
    plugin
}

#[test]
fn concurrent_requests_for_one_key_share_one_call_and_all_get_its_answer() {
    let host = host();
    let plugin = start(&host);
    let streams: Vec<_> = (0..3).map(|_| plugin.open_stream()).collect();
    for stream in &streams {
        assert_eq!(
            stream.request_headers(request(Some("k1")), true),
            Action::Pause
        );
    }
    let calls: Vec<_> = streams.iter().flat_map(|s| s.calls()).collect();
    assert_eq!(calls.len(), 1, "one call for three requests");
    assert_eq!(
        calls[0].header(":path").as_deref(),
        Some("/anything/lookup/k1")
    );

    assert_eq!(calls[0].respond(200, RESPONSE, "abcd"), Delivery::Delivered);
    for stream in &streams {
        assert_eq!(stream.resumes().len(), 1);
        assert_eq!(
            stream.request_header("x-lookup-status").as_deref(),
            Some("200")
        );
        assert_eq!(
            stream.request_header("x-lookup-bytes").as_deref(),
            Some("4")
        );
        stream.response_headers(RESPONSE, true);
        assert_eq!(
            stream.response_header("x-lookup-bytes").as_deref(),
            Some("4")
        );
        assert_eq!(stream.response_header("x-refreshed").as_deref(), Some("10"));
    }

    // The lookup is over: the next request for the key asks again.
    let later = plugin.open_stream();
    assert_eq!(
        later.request_headers(request(Some("k1")), true),
        Action::Pause
    );
    assert_eq!(later.calls().len(), 1);
}

#[test]
fn the_others_get_the_answer_when_the_stream_that_sent_the_call_ends_first() {
    let host = host();
    let plugin = start(&host);
    let first = plugin.open_stream();
    let second = plugin.open_stream();
    first.request_headers(request(Some("k")), true);
    second.request_headers(request(Some("k")), true);
    let call = first.calls().remove(0);

    first.end().unwrap();
    assert_eq!(call.respond(200, RESPONSE, "xyz"), Delivery::Delivered);

    assert_eq!(
        second.request_header("x-lookup-bytes").as_deref(),
        Some("3")
    );
    assert_eq!(second.resumes().len(), 1);
    assert!(first.resumes().is_empty());
    assert_eq!(plugin.failure(), None);
}

#[test]
fn different_keys_make_different_calls_and_requests_without_a_key_pass() {
    let host = host();
    let plugin = start(&host);
    let a = plugin.open_stream();
    let b = plugin.open_stream();
    let plain = plugin.open_stream();
    assert_eq!(a.request_headers(request(Some("a")), true), Action::Pause);
    assert_eq!(b.request_headers(request(Some("b")), true), Action::Pause);
    assert_eq!(plain.request_headers(request(None), true), Action::Continue);
    assert_eq!(a.calls().len() + b.calls().len(), 2);
    assert!(plain.calls().is_empty());
}

#[test]
fn a_failed_lookup_answers_every_waiting_stream_with_an_error() {
    let host = host();
    let plugin = start(&host);
    let streams: Vec<_> = (0..2).map(|_| plugin.open_stream()).collect();
    for stream in &streams {
        stream.request_headers(request(Some("k")), true);
    }
    streams[0].calls()[0].reset();
    for stream in &streams {
        assert_eq!(stream.local_response().map(|r| r.status), Some(500));
    }
    assert_eq!(host.logs(LogLevel::Error).len(), 2);
}

#[test]
fn the_refresh_task_runs_on_the_timer_and_the_gauges_follow_the_runtime() {
    let host = host();
    let plugin = start(&host);
    let waiting = plugin.open_stream();
    waiting.request_headers(request(Some("k")), true);

    host.advance(Duration::from_secs(1));
    plugin.tick().unwrap();
    let refresh = plugin.calls();
    assert_eq!(refresh.len(), 2, "a second refresh, a second later");
    // Counted as the tick began: the lookup in flight, the stream's task and
    // the refresh task.
    assert_eq!(
        host.metric("coalesce.pending_calls"),
        Some(Metric::Gauge(1))
    );
    assert_eq!(host.metric("coalesce.live_tasks"), Some(Metric::Gauge(2)));

    assert_eq!(
        refresh[1].respond(200, RESPONSE, "twelve bytes"),
        Delivery::Delivered
    );
    waiting.calls()[0].respond(200, RESPONSE, "");
    plugin.tick().unwrap();
    assert_eq!(
        host.metric("coalesce.pending_calls"),
        Some(Metric::Gauge(0))
    );
    assert_eq!(
        host.metric("coalesce.live_tasks"),
        Some(Metric::Gauge(1)),
        "the refresh task"
    );
    waiting.response_headers(RESPONSE, true);
    assert_eq!(
        waiting.response_header("x-refreshed").as_deref(),
        Some("12")
    );
}
