//! `multiple_dispatches` on the native test host: each response waits for its calls.
//!
//! The example counts the calls that got a response (`Result::is_ok`). A response Envoy
//! makes itself (503 for a refused connection, 504 for a timeout) is a response, so it
//! counts; a reset (Envoy's callback with zero headers) does not.

use std::time::Duration;

use multiple_dispatches::MultipleDispatches;
use pwf_test::{
    Action, Call, Callback, ConfigureError, Delivery, Direction, Host, LogLevel, Plugin, Stream,
};

const REQUEST: [(&str, &str); 3] = [(":method", "GET"), (":path", "/"), (":authority", "app")];
const RESPONSE: [(&str, &str); 1] = [(":status", "200")];

fn host() -> Host {
    Host::builder().cluster("httpbin").build()
}

fn configured(host: &Host, config: &str) -> Plugin {
    let vm = host
        .start_vm_with_root(pwf::root_context::<MultipleDispatches>)
        .unwrap();
    vm.configure(config).unwrap()
}

/// A stream whose response headers the plugin paused to dispatch its calls.
fn paused(plugin: &Plugin) -> Stream {
    let stream = plugin.open_stream();
    assert_eq!(stream.request_headers(REQUEST, true), Action::Continue);
    assert_eq!(stream.response_headers(RESPONSE, true), Action::Pause);
    stream
}

fn answer(call: &Call) {
    assert_eq!(
        call.respond(200, [("content-type", "text/plain")], "ok"),
        Delivery::Delivered
    );
}

fn response_resumes(stream: &Stream) -> usize {
    stream
        .resumes()
        .iter()
        .filter(|resume| resume.direction == Direction::Response)
        .count()
}

#[test]
fn response_dispatches_ten_calls_by_default() {
    let host = host();
    let stream = paused(&configured(&host, ""));
    assert_eq!(stream.pending_calls().len(), 10);
}

#[test]
fn response_with_every_call_answered_gets_total_dispatched_10() {
    let host = host();
    let stream = paused(&configured(&host, ""));
    stream.pending_calls().iter().for_each(answer);
    assert_eq!(
        stream.response_header("total-dispatched").as_deref(),
        Some("10")
    );
}

#[test]
fn response_with_every_call_answered_is_resumed_once() {
    let host = host();
    let stream = paused(&configured(&host, ""));
    stream.pending_calls().iter().for_each(answer);
    assert_eq!(response_resumes(&stream), 1);
    let resume = stream.resumed(Direction::Response).unwrap();
    assert_eq!(resume.during, Callback::CallResponse);
    assert_eq!(stream.resumed(Direction::Request), None);
}

#[test]
fn response_stays_paused_until_the_last_call_lands() {
    let host = host();
    let stream = paused(&configured(&host, ""));
    let calls = stream.pending_calls();
    calls[..9].iter().for_each(answer);
    assert_eq!(stream.resumed(Direction::Response), None);
    assert_eq!(stream.response_header("total-dispatched"), None);
    answer(&calls[9]);
    assert!(stream.resumed(Direction::Response).is_some());
}

#[test]
fn each_landed_call_logs_how_many_are_pending() {
    let host = host();
    let stream = paused(&configured(&host, ""));
    stream.pending_calls().iter().for_each(answer);
    let mut expected: Vec<String> = (1..=9)
        .rev()
        .map(|pending| format!("pending dispatched requests: {pending}"))
        .collect();
    expected.push("response resumed after processed 10 dispatched request".to_owned());
    assert_eq!(host.logs(LogLevel::Info), expected);
}

#[test]
fn calls_landing_out_of_order_resume_the_response_once() {
    let host = host();
    let stream = paused(&configured(&host, ""));
    let calls = stream.pending_calls();
    for index in [7, 2, 9, 0, 5, 1, 8, 3, 6, 4] {
        answer(&calls[index]);
    }
    assert_eq!(response_resumes(&stream), 1);
    assert_eq!(
        stream.response_header("total-dispatched").as_deref(),
        Some("10")
    );
}

#[test]
fn reset_calls_are_not_counted_as_dispatched() {
    let host = host();
    let stream = paused(&configured(&host, ""));
    let calls = stream.pending_calls();
    for call in &calls[..3] {
        assert_eq!(call.reset(), Delivery::Delivered);
    }
    calls[3..].iter().for_each(answer);
    assert_eq!(
        stream.response_header("total-dispatched").as_deref(),
        Some("7")
    );
    assert_eq!(response_resumes(&stream), 1);
}

#[test]
fn envoy_refusal_and_timeout_answers_count_as_responses() {
    let host = host();
    let stream = paused(&configured(&host, ""));
    let calls = stream.pending_calls();
    assert_eq!(calls[0].refuse(), Delivery::Delivered);
    assert_eq!(calls[1].time_out(), Delivery::Delivered);
    calls[2..].iter().for_each(answer);
    assert_eq!(
        stream.response_header("total-dispatched").as_deref(),
        Some("10")
    );
}

#[test]
fn every_call_reset_resumes_with_total_dispatched_0() {
    let host = host();
    let stream = paused(&configured(&host, ""));
    for call in stream.pending_calls() {
        call.reset();
    }
    assert_eq!(
        stream.response_header("total-dispatched").as_deref(),
        Some("0")
    );
    assert_eq!(response_resumes(&stream), 1);
}

#[test]
fn undeclared_cluster_continues_the_response_at_once_with_total_dispatched_0() {
    let host = Host::default();
    let stream = configured(&host, "").open_stream();
    stream.request_headers(REQUEST, true);
    assert_eq!(stream.response_headers(RESPONSE, true), Action::Continue);
    assert_eq!(
        stream.response_header("total-dispatched").as_deref(),
        Some("0")
    );
    assert!(stream.calls().is_empty());
    assert!(stream.resumes().is_empty());
}

#[test]
fn undeclared_cluster_logs_an_error_per_refused_dispatch() {
    let host = Host::default();
    let stream = configured(
        &host,
        r#"{"dispatchCluster": "no_such_cluster", "dispatchCount": 3}"#,
    )
    .open_stream();
    stream.request_headers(REQUEST, true);
    stream.response_headers(RESPONSE, true);
    let refused = "call to cluster `no_such_cluster` refused by Envoy (bad argument): \
                   most likely no cluster has that name (pwf checked the timeout and the headers)";
    assert_eq!(host.logs(LogLevel::Error), [refused, refused, refused]);
}

#[test]
fn stream_ended_before_the_calls_land_is_never_resumed() {
    let host = host();
    let plugin = configured(&host, "");
    let stream = paused(&plugin);
    let calls = stream.pending_calls();
    calls[..4].iter().for_each(answer);
    stream.end().unwrap();
    for call in &calls[4..] {
        assert_eq!(call.respond(200, [("a", "b")], "late"), Delivery::Cancelled);
    }
    assert!(stream.resumes().is_empty());
    assert_eq!(plugin.failure(), None);
    assert!(!host
        .logs(LogLevel::Info)
        .iter()
        .any(|line| line.starts_with("response resumed")));
}

#[test]
fn stream_ended_early_leaves_the_vm_serving() {
    let host = host();
    let plugin = configured(&host, "");
    let first = paused(&plugin);
    let late = first.pending_calls();
    first.end().unwrap();
    late.iter().for_each(|call| {
        call.reset();
    });
    let second = paused(&plugin);
    second.pending_calls().iter().for_each(answer);
    assert_eq!(
        second.response_header("total-dispatched").as_deref(),
        Some("10")
    );
}

#[test]
fn calls_go_to_the_configured_cluster_and_path() {
    let host = Host::builder().cluster("backend").build();
    let config = r#"{"dispatchCluster": "backend", "dispatchCount": 3, "dispatchPath": "/uuid"}"#;
    let stream = paused(&configured(&host, config));
    let calls = stream.pending_calls();
    assert_eq!(calls.len(), 3);
    for call in &calls {
        assert_eq!(call.cluster(), "backend");
        assert_eq!(call.header(":method").as_deref(), Some("GET"));
        assert_eq!(call.header(":path").as_deref(), Some("/uuid"));
        assert_eq!(call.header(":authority").as_deref(), Some("backend"));
    }
}

#[test]
fn calls_have_a_5_second_timeout_by_default() {
    let host = host();
    let stream = paused(&configured(&host, ""));
    for call in stream.pending_calls() {
        assert_eq!(call.timeout(), Some(Duration::from_secs(5)));
    }
}

#[test]
fn timeout_ms_250ms_gives_each_call_a_250_ms_timeout() {
    let host = host();
    let stream = paused(&configured(&host, r#"{"timeoutMs": "250ms"}"#));
    let timeouts: Vec<_> = stream.pending_calls().iter().map(Call::timeout).collect();
    assert_eq!(timeouts, vec![Some(Duration::from_millis(250)); 10]);
}

fn rejected(config: &str) -> Vec<String> {
    let host = host();
    let vm = host
        .start_vm_with_root(pwf::root_context::<MultipleDispatches>)
        .unwrap();
    assert_eq!(vm.configure(config).unwrap_err(), ConfigureError::Rejected);
    host.logs(LogLevel::Error)
}

#[test]
fn configure_with_dispatch_count_0_is_rejected() {
    assert_eq!(
        rejected(r#"{"dispatchCount": 0}"#),
        ["plugin: invalid plugin configuration: dispatchCount: must be in 1..=100, got 0"]
    );
}

#[test]
fn configure_with_dispatch_count_101_is_rejected() {
    assert_eq!(
        rejected(r#"{"dispatchCount": 101}"#),
        ["plugin: invalid plugin configuration: dispatchCount: must be in 1..=100, got 101"]
    );
}

/// The example dispatches in the response phase; a group waited on in the request
/// phase pauses and resumes the request instead.
#[test]
fn dispatch_group_in_the_request_phase_resumes_the_request() {
    use std::rc::Rc;

    use pwf::{DispatchGroup, Error, Http, HttpFilter, Outcome, PluginContext, Request};

    struct Gate;
    struct GateFilter;

    impl pwf::Plugin for Gate {
        type Config = ();
        type Filter = GateFilter;

        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Gate)
        }

        fn filter(_: &Rc<Self>, _: &Http) -> GateFilter {
            GateFilter
        }
    }

    impl HttpFilter for GateFilter {
        fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<pwf::Action, Error> {
            let mut group = DispatchGroup::new();
            for _ in 0..2 {
                group.dispatch(Request::get("httpbin", "/"))?;
            }
            Ok(group.wait(http, |http, results| {
                let answered = results.iter().filter(|result| result.is_ok()).count();
                http.set_request_header("x-answered", answered.to_string())?;
                Ok(Outcome::Continue)
            }))
        }
    }

    // `Gate` is defined here, not in the module: it runs natively in either mode.
    let host = Host::builder()
        .cluster("httpbin")
        .mode(pwf_test::Mode::Native)
        .build();
    let vm = host.start_vm_with_root(pwf::root_context::<Gate>).unwrap();
    let stream = vm.configure("").unwrap().open_stream();
    assert_eq!(
        stream.request_headers(REQUEST, true),
        pwf_test::Action::Pause
    );
    let calls = stream.pending_calls();
    assert_eq!(calls.len(), 2);
    answer(&calls[1]);
    assert_eq!(stream.resumed(Direction::Request), None);
    answer(&calls[0]);
    assert_eq!(
        stream.resumed(Direction::Request).unwrap().during,
        Callback::CallResponse
    );
    assert_eq!(stream.request_header("x-answered").as_deref(), Some("2"));
    assert_eq!(
        stream.response_headers(RESPONSE, true),
        pwf_test::Action::Continue
    );
    assert_eq!(stream.resumed(Direction::Response), None);
}

/// A zero timeout was accepted at load, and then every dispatch was refused.
#[test]
fn configure_with_a_zero_timeout_is_rejected() {
    assert_eq!(
        rejected(r#"{"timeoutMs": "0ms"}"#),
        ["plugin: invalid plugin configuration: timeoutMs: must be at least 1ms (0 means no timeout to Envoy), got 0ns"]
    );
}

/// A timeout under a millisecond was accepted at load, and then every dispatch was
/// refused: the ABI carries whole milliseconds.
#[test]
fn configure_with_a_sub_millisecond_timeout_is_rejected() {
    assert_eq!(
        rejected(r#"{"timeoutMs": "500us"}"#),
        ["plugin: invalid plugin configuration: timeoutMs: must be at least 1ms (0 means no timeout to Envoy), got 500µs"]
    );
}
