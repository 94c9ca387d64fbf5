//! Stream phases, header maps, bodies, local responses, and what a plugin observes.

mod support;

use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType, Status};
use pwf_test::{Action, Host, Metric};
use support::{raw, root, script, Event};

fn plugin(host: &Host, name: String) -> pwf_test::Plugin {
    host.start_vm_with_root_and_config(root, name)
        .unwrap()
        .configure("")
        .unwrap()
}

#[test]
fn request_headers_show_the_plugins_changes_with_lowercase_keys_and_bytes() {
    let name = script("headers_changes", |event| {
        if let Event::RequestHeaders(..) = event {
            hostcalls::set_map_value(MapType::HttpRequestHeaders, "X-Set", Some("1")).unwrap();
            hostcalls::add_map_value_bytes(MapType::HttpRequestHeaders, "x-multi", b"\xff")
                .unwrap();
            hostcalls::remove_map_value(MapType::HttpRequestHeaders, "x-gone").unwrap();
        }
        true
    });
    let stream = plugin(&Host::default(), name).open_stream();
    let action = stream.request_headers([(":path", "/"), ("X-Multi", "a"), ("x-gone", "1")], true);
    assert_eq!(action, Action::Continue);
    let headers = stream.request_header_map();
    assert_eq!(headers.get_bytes("x-multi"), Some(&b"a"[..]));
    assert_eq!(
        headers
            .iter()
            .filter(|(k, _)| *k == "x-multi")
            .nth(1)
            .unwrap()
            .1,
        b"\xff"
    );
    assert_eq!(stream.request_header("x-set").as_deref(), Some("1"));
    assert!(!headers.contains("x-gone"));
}

#[test]
fn request_headers_are_unavailable_after_the_phase_continued() {
    let name = script("headers_unavailable", |event| {
        if let Event::ResponseHeaders(..) = event {
            let status = raw::request_header_status(":path");
            hostcalls::log(LogLevel::Info, &status.to_string()).unwrap();
        }
        true
    });
    let host = Host::default();
    let stream = plugin(&host, name).open_stream();
    stream.request_headers([(":path", "/")], true);
    stream.response_headers([(":status", "200")], true);
    assert_eq!(
        host.logs(LogLevel::Info),
        [(Status::BadArgument as u32).to_string()]
    );
}

#[test]
fn paused_body_accumulates_and_set_buffer_replaces_it() {
    let name = script("body_accumulates", |event| match event {
        Event::RequestBody(size, eos) => {
            if !eos {
                return false;
            }
            let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, size).unwrap();
            assert_eq!(body.as_deref(), Some(&b"hello world"[..]));
            hostcalls::set_buffer(BufferType::HttpRequestBody, 0, size, b"HI").unwrap();
            true
        }
        _ => true,
    });
    let stream = plugin(&Host::default(), name).open_stream();
    stream.request_headers([(":path", "/")], false);
    assert_eq!(stream.request_body("hello ", false), Action::Pause);
    assert_eq!(
        stream.buffered_request_body().as_deref(),
        Some(&b"hello "[..])
    );
    assert_eq!(stream.request_body("world", true), Action::Continue);
    assert_eq!(stream.forwarded_request_body(), b"HI");
}

#[test]
fn local_response_runs_the_response_phases_and_skips_the_rest() {
    let name = script("local_response_phases", |event| match event {
        Event::RequestHeaders(..) => {
            hostcalls::send_http_response(401, vec![("x-why", "no")], Some(b"nope")).unwrap();
            false
        }
        Event::ResponseHeaders(..) => {
            hostcalls::set_map_value(MapType::HttpResponseHeaders, "x-seen", Some("1")).unwrap();
            true
        }
        _ => true,
    });
    let stream = plugin(&Host::default(), name).open_stream();
    assert_eq!(
        stream.request_headers([(":path", "/")], true),
        Action::Pause
    );
    let local = stream.local_response().unwrap();
    assert_eq!((local.status, local.body.as_slice()), (401, &b"nope"[..]));
    assert_eq!(local.headers.get("x-why"), Some("no"));
    assert_eq!(local.grpc_status, None);
    let response = stream.response_header_map();
    assert_eq!(response.get(":status"), Some("401"));
    assert_eq!(response.get("content-length"), Some("4"));
    assert_eq!(response.get("x-seen"), Some("1"));
    assert_eq!(stream.forwarded_response_body(), b"nope");
    assert_eq!(stream.request_body("late", true), Action::Skipped);
    assert_eq!(
        stream.response_headers([(":status", "200")], true),
        Action::Skipped
    );
}

#[test]
fn end_runs_done_log_and_delete_then_skips_phases() {
    let name = script("end_runs_done_log", |event| {
        match event {
            Event::Done => hostcalls::log(LogLevel::Info, "done").unwrap(),
            Event::Log => {
                let path = hostcalls::get_map_value(MapType::HttpRequestHeaders, ":path").unwrap();
                hostcalls::log(LogLevel::Info, &format!("log {path:?}")).unwrap()
            }
            _ => {}
        }
        true
    });
    let host = Host::default();
    let stream = plugin(&host, name).open_stream();
    stream.request_headers([(":path", "/p")], true);
    stream.end().unwrap();
    stream.end().unwrap();
    assert_eq!(host.logs(LogLevel::Info), ["done", r#"log Some("/p")"#]);
    assert!(stream.is_ended());
    assert_eq!(
        stream.response_headers([(":status", "200")], true),
        Action::Skipped
    );
}

#[test]
fn close_stream_marks_the_reset_and_skips_phases() {
    let name = script("close_stream_reset", |event| {
        if let Event::RequestHeaders(..) = event {
            hostcalls::reset_http_request().unwrap();
        }
        true
    });
    let stream = plugin(&Host::default(), name).open_stream();
    stream.request_headers([(":path", "/")], true);
    assert_eq!(stream.reset_by_plugin(), Some(pwf_test::Direction::Request));
    assert_eq!(
        stream.response_headers([(":status", "200")], true),
        Action::Skipped
    );
}

#[test]
fn logs_below_the_host_level_are_dropped_and_get_log_level_reports_it() {
    let name = script("log_levels", |event| {
        if event == Event::Tick {
            let level = hostcalls::get_log_level().unwrap();
            hostcalls::log(LogLevel::Debug, "hidden").unwrap();
            hostcalls::log(LogLevel::Warn, &format!("{level:?}")).unwrap();
        }
        true
    });
    let host = Host::builder().log_level(LogLevel::Info).build();
    plugin(&host, name).tick().unwrap();
    assert!(host.logs(LogLevel::Debug).is_empty());
    assert_eq!(host.logs(LogLevel::Warn), ["Info"]);
}

#[test]
fn metrics_follow_envoys_rules() {
    let name = script("metrics_rules", |event| {
        if event == Event::Tick {
            let counter = hostcalls::define_metric(MetricType::Counter, "requests").unwrap();
            let gauge = hostcalls::define_metric(MetricType::Gauge, "active").unwrap();
            let histogram = hostcalls::define_metric(MetricType::Histogram, "sizes").unwrap();
            hostcalls::increment_metric(counter, 2).unwrap();
            assert_eq!(
                unsafe { raw::proxy_increment_metric(counter, -1) },
                Status::BadArgument as u32
            );
            hostcalls::increment_metric(gauge, 5).unwrap();
            hostcalls::increment_metric(gauge, -2).unwrap();
            hostcalls::record_metric(histogram, 7).unwrap();
            assert_eq!(hostcalls::get_metric(counter), Ok(2));
            assert_eq!(hostcalls::get_metric(histogram), Err(Status::BadArgument));
            assert_eq!(hostcalls::record_metric(4000, 1), Err(Status::NotFound));
        }
        true
    });
    let host = Host::default();
    plugin(&host, name).tick().unwrap();
    assert_eq!(host.metric("requests"), Some(Metric::Counter(2)));
    assert_eq!(host.metric("active"), Some(Metric::Gauge(3)));
    assert_eq!(host.metric("sizes"), Some(Metric::Histogram(vec![7])));
}

#[test]
fn properties_come_from_the_host_and_the_stream() {
    let name = script("properties_rules", |event| {
        if let Event::RequestHeaders(..) = event {
            let address = hostcalls::get_property(vec!["source", "address"]).unwrap();
            assert_eq!(address.as_deref(), Some(&b"10.0.0.1"[..]));
            assert_eq!(
                hostcalls::get_property(vec!["plugin_name"])
                    .unwrap()
                    .as_deref(),
                Some(&b"plugin"[..])
            );
            hostcalls::set_property(vec!["my", "key"], Some(b"v")).unwrap();
        }
        if event == Event::Tick {
            let status = unsafe { raw::proxy_set_property(b"k".as_ptr(), 1, b"v".as_ptr(), 1) };
            assert_eq!(
                status,
                Status::NotFound as u32,
                "a root context has no stream"
            );
        }
        true
    });
    let host = Host::default();
    host.set_property(&["source", "address"], "10.0.0.1");
    let plugin = plugin(&host, name);
    let stream = plugin.open_stream();
    assert_eq!(
        stream.request_headers([(":path", "/")], true),
        Action::Continue
    );
    assert_eq!(stream.property(&["my", "key"]).as_deref(), Some(&b"v"[..]));
    plugin.tick().unwrap();
}

#[test]
fn current_time_follows_the_host_clock() {
    let name = script("time_follows_clock", |event| {
        if event == Event::Tick {
            let now = hostcalls::get_current_time().unwrap();
            let secs = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
            hostcalls::log(LogLevel::Info, &secs.to_string()).unwrap();
        }
        true
    });
    let host = Host::default();
    let plugin = plugin(&host, name);
    plugin.tick().unwrap();
    host.advance(Duration::from_secs(5));
    plugin.tick().unwrap();
    let start = pwf_test::START_TIME.as_secs();
    assert_eq!(
        host.logs(LogLevel::Info),
        [start.to_string(), (start + 5).to_string()]
    );
}

#[test]
fn queue_enqueue_delivers_on_queue_ready_to_the_owner() {
    let name = script("queue_delivery", |event| {
        match event {
            Event::Configure(_) => {
                hostcalls::register_shared_queue("jobs").unwrap();
            }
            Event::Tick => {
                let id = hostcalls::resolve_shared_queue("", "jobs")
                    .unwrap()
                    .unwrap();
                hostcalls::enqueue_shared_queue(id, Some(b"job-1")).unwrap();
                assert_eq!(hostcalls::resolve_shared_queue("", "none"), Ok(None));
            }
            Event::QueueReady(id) => {
                let item = hostcalls::dequeue_shared_queue(id).unwrap().unwrap();
                hostcalls::log(LogLevel::Info, &String::from_utf8(item).unwrap()).unwrap();
                assert_eq!(hostcalls::dequeue_shared_queue(id), Ok(None));
            }
            _ => {}
        }
        true
    });
    let host = Host::default();
    plugin(&host, name).tick().unwrap();
    assert_eq!(host.logs(LogLevel::Info), ["job-1"]);
}

#[test]
fn set_effective_context_rejects_unknown_ids() {
    let name = script("effective_context", |event| {
        if event == Event::Tick {
            assert_eq!(
                unsafe { raw::proxy_set_effective_context(999) },
                Status::BadArgument as u32
            );
            hostcalls::log(LogLevel::Info, "checked").unwrap();
        }
        true
    });
    let host = Host::default();
    plugin(&host, name).tick().unwrap();
    assert_eq!(host.logs(LogLevel::Info), ["checked"]);
}

/// Envoy maps a Pause from request headers to StopAllIterationAndWatermark: the body
/// waits, unseen by the filter, until the stream is resumed (measured in Envoy 1.40,
/// `envoy/e2e/tests/wasi.rs`); the native host used to run the body phase at once.
#[test]
fn body_behind_paused_request_headers_is_held_and_delivered_after_the_resume() {
    let name = script("body_behind_paused_headers", |event| match event {
        Event::RequestHeaders(..) => {
            let headers = vec![(":method", "GET"), (":path", "/"), (":authority", "up")];
            hostcalls::dispatch_http_call("up", headers, None, vec![], Duration::from_secs(1))
                .unwrap();
            false
        }
        Event::CallResponse { .. } => {
            hostcalls::resume_http_request().unwrap();
            true
        }
        Event::RequestBody(size, eos) => {
            hostcalls::log(LogLevel::Info, &format!("body {size} {eos}")).unwrap();
            true
        }
        _ => true,
    });
    let host = Host::builder().cluster("up").build();
    let stream = plugin(&host, name).open_stream();
    assert_eq!(
        stream.request_headers([(":path", "/")], false),
        Action::Pause
    );
    assert_eq!(stream.request_body("hello ", false), Action::Held);
    assert_eq!(stream.request_body("world", true), Action::Held);
    assert!(host.logs(LogLevel::Info).is_empty());
    stream.pending_calls()[0].respond(200, [("x", "1")], "");
    assert_eq!(host.logs(LogLevel::Info), ["body 11 true"]);
    assert_eq!(stream.forwarded_request_body(), b"hello world");
}
