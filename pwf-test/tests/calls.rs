//! HTTP calls: dispatch checks, answers, failures, and streams that end first.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, Status};
use pwf_test::{Action, CallState, Delivery, Direction, Host, Plugin, REFUSED_BODY};
use support::{root, script, Event};

/// A plugin that dispatches the call described by the request's `x-call-*` headers in
/// request headers, pauses, and logs what each call response carried.
fn caller(name: &str, host: &Host) -> Plugin {
    let name = script(name, |event| match event {
        Event::RequestHeaders(..) => {
            let get = |k: &str| hostcalls::get_map_value(MapType::HttpRequestHeaders, k).unwrap();
            let mut headers = vec![];
            for key in [":method", ":path", ":authority"] {
                if let Some(value) = get(&format!("x-call-{key}")) {
                    headers.push((key.to_string(), value));
                }
            }
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let cluster = get("x-call-cluster").unwrap_or_default();
            let timeout = get("x-call-timeout").map_or(1000, |t| t.parse().unwrap());
            let result = hostcalls::dispatch_http_call(
                &cluster,
                headers,
                Some(b"payload"),
                vec![],
                Duration::from_millis(timeout),
            );
            hostcalls::log(
                LogLevel::Info,
                &format!("dispatch {:?}", result.map(|_| ())),
            )
            .unwrap();
            false
        }
        Event::CallResponse { headers, body, .. } => {
            let status = if headers > 0 {
                hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status").unwrap()
            } else {
                None
            };
            let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body).unwrap();
            let (code, message) = hostcalls::get_grpc_status().unwrap();
            hostcalls::log(
                LogLevel::Info,
                &format!(
                    "response {headers} {status:?} {:?} {code} {message:?}",
                    body.map(|b| String::from_utf8(b).unwrap())
                ),
            )
            .unwrap();
            hostcalls::resume_http_request().unwrap();
            true
        }
        _ => true,
    });
    host.start_vm_with_root_and_config(root, name)
        .unwrap()
        .configure("")
        .unwrap()
}

const GOOD: [(&str, &str); 4] = [
    ("x-call-cluster", "backend"),
    ("x-call-:method", "GET"),
    ("x-call-:path", "/check"),
    ("x-call-:authority", "backend"),
];

fn host() -> Host {
    Host::builder().cluster("backend").build()
}

#[test]
fn dispatch_records_cluster_headers_body_and_timeout() {
    let host = host();
    let stream = caller("dispatch_records", &host).open_stream();
    assert_eq!(stream.request_headers(GOOD, true), Action::Pause);
    let calls = stream.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].cluster(), "backend");
    assert_eq!(calls[0].header(":path").as_deref(), Some("/check"));
    assert_eq!(calls[0].body(), b"payload");
    assert_eq!(calls[0].timeout(), Some(Duration::from_secs(1)));
    assert_eq!(calls[0].state(), CallState::Pending);
    assert_eq!(host.pending_calls().len(), 1);
}

#[test]
fn dispatch_with_zero_timeout_has_no_timeout() {
    let host = host();
    let stream = caller("dispatch_zero_timeout", &host).open_stream();
    let mut request = GOOD.to_vec();
    request.push(("x-call-timeout", "0"));
    stream.request_headers(request, true);
    assert_eq!(stream.calls()[0].timeout(), None);
}

#[test]
fn dispatch_fails_with_bad_argument_without_required_headers_or_cluster() {
    let host = host();
    let plugin = caller("dispatch_bad_argument", &host);
    for missing in 0..GOOD.len() {
        let mut request = GOOD.to_vec();
        request.remove(missing);
        plugin.open_stream().request_headers(request, true);
    }
    let mut unknown = GOOD.to_vec();
    unknown[0] = ("x-call-cluster", "nowhere");
    plugin.open_stream().request_headers(unknown, true);
    assert_eq!(
        host.logs(LogLevel::Info),
        vec![format!("dispatch {:?}", Err::<(), _>(Status::BadArgument)); 5]
    );
    assert!(host.calls().is_empty());
}

#[test]
fn dispatch_accepts_an_empty_authority() {
    let host = host();
    let stream = caller("dispatch_empty_authority", &host).open_stream();
    let mut request = GOOD.to_vec();
    request[3] = ("x-call-:authority", "");
    stream.request_headers(request, true);
    assert_eq!(host.logs(LogLevel::Info), ["dispatch Ok(())"]);
}

#[test]
fn respond_delivers_status_headers_and_body_and_the_stream_resumes() {
    let host = host();
    let stream = caller("respond_delivers", &host).open_stream();
    stream.request_headers(GOOD, true);
    let call = &stream.calls()[0];
    assert_eq!(call.respond(200, [("x-a", "b")], "ok"), Delivery::Delivered);
    assert_eq!(call.state(), CallState::Answered);
    assert_eq!(
        host.logs(LogLevel::Info)[1],
        r#"response 2 Some("200") Some("ok") 0 None"#
    );
    let resumed = stream.resumed(Direction::Request).unwrap();
    assert_eq!(resumed.during, pwf_test::Callback::CallResponse);
    assert_eq!(
        call.respond(200, [("x", "y")], ""),
        Delivery::AlreadyAnswered
    );
}

#[test]
fn reset_delivers_zero_headers_and_broken_connection() {
    let host = host();
    let stream = caller("reset_zero_headers", &host).open_stream();
    stream.request_headers(GOOD, true);
    assert_eq!(stream.calls()[0].reset(), Delivery::Delivered);
    assert_eq!(
        host.logs(LogLevel::Info)[1],
        r#"response 0 None None 11 Some("reset")"#
    );
}

#[test]
fn refuse_and_time_out_answer_with_envoys_own_responses() {
    let host = host();
    let plugin = caller("refuse_and_time_out", &host);
    let refused = plugin.open_stream();
    refused.request_headers(GOOD, true);
    refused.calls()[0].refuse();
    let timed_out = plugin.open_stream();
    timed_out.request_headers(GOOD, true);
    timed_out.calls()[0].time_out();
    let logs = host.logs(LogLevel::Info);
    assert_eq!(
        logs[1],
        format!(r#"response 3 Some("503") Some({REFUSED_BODY:?}) 0 None"#)
    );
    assert_eq!(
        logs[3],
        r#"response 3 Some("504") Some("upstream request timeout") 0 None"#
    );
}

#[test]
fn ended_stream_cancels_its_calls_and_late_answers_go_nowhere() {
    let host = host();
    let stream = caller("ended_stream_cancels", &host).open_stream();
    stream.request_headers(GOOD, true);
    let call = stream.calls()[0].clone();
    stream.end().unwrap();
    assert_eq!(call.state(), CallState::Cancelled);
    assert_eq!(call.respond(200, [("x", "y")], "late"), Delivery::Cancelled);
    assert_eq!(
        host.logs(LogLevel::Info).len(),
        1,
        "the plugin saw no response"
    );
    assert!(host.pending_calls().is_empty());
}

#[test]
fn call_response_headers_are_unreadable_outside_the_callback() {
    let seen = Arc::new(Mutex::new(None));
    let out = seen.clone();
    let name = script("call_headers_outside", move |event| {
        if let Event::ResponseHeaders(..) = event {
            let mut data = std::ptr::null_mut();
            let mut size = 0;
            let status = unsafe {
                support::raw::proxy_get_header_map_value(
                    6,
                    ":status".as_ptr(),
                    7,
                    &mut data,
                    &mut size,
                )
            };
            *out.lock().unwrap() = Some(status);
        }
        true
    });
    let plugin = Host::default()
        .start_vm_with_root_and_config(root, name)
        .unwrap()
        .configure("")
        .unwrap();
    plugin
        .open_stream()
        .response_headers([(":status", "200")], true);
    assert_eq!(*seen.lock().unwrap(), Some(Status::BadArgument as u32));
}
