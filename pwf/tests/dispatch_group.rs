//! Outbound calls and `DispatchGroup` through the native test host.

use std::rc::Rc;
use std::time::Duration;

use pwf::{
    Action, CallResult, DispatchGroup, Error, Http, HttpFilter, LocalResponse, Outcome, Phase,
    Plugin, PluginContext, Request, Response,
};
use pwf_test::{Action as HostAction, Delivery, Direction, Host, LogLevel};

const RESPONSE: [(&str, &str); 1] = [(":status", "200")];

fn request(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut headers = vec![(":method", "GET"), (":path", "/"), (":authority", "app")];
    headers.extend_from_slice(extra);
    headers
}

/// Sends one call, chosen by the request header `x-case`, and logs what
/// happened: `info` for a dispatched call, `warn` with the error kind for one
/// refused before or at dispatch.
mod caller {
    use super::*;

    pub(super) struct Caller;

    impl Plugin for Caller {
        type Config = ();
        type Filter = CallerFilter;

        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Caller)
        }

        fn filter(_: &Rc<Self>, _: &Http) -> CallerFilter {
            CallerFilter
        }
    }

    pub(super) struct CallerFilter;

    impl HttpFilter for CallerFilter {
        fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
            let case = http.request_header("x-case")?.unwrap_or_default();
            let request = match case.to_str()? {
                "full" => Request::post("backend", "/v1/check")
                    .header("x-a", "1")
                    .header("x-b", "2")
                    .body("payload")
                    .trailer("x-t", "3")
                    .timeout(Duration::from_millis(250)),
                "authority" => Request::get("backend", "/").authority("auth.example"),
                "pseudo" => Request::get("backend", "/")
                    .header(":method", "DELETE")
                    .header(":path", "/items/7"),
                "default-timeout" => Request::get("backend", "/"),
                "zero-timeout" => Request::get("backend", "/").timeout(Duration::ZERO),
                "long-timeout" => Request::get("backend", "/")
                    .timeout(Duration::from_millis(u64::from(u32::MAX) + 1)),
                "unknown" => Request::get("nowhere", "/"),
                other => return Err(Error::msg(format!("unknown case {other}"))),
            };
            match request.send() {
                // The call stays in flight; its answer is not awaited here.
                Ok(call) => pwf::info!("dispatched token={}", call.token()),
                Err(error) => pwf::warn!("{:?}: {error}", error.kind()),
            }
            Ok(Action::Continue)
        }
    }
}

/// Fans out one GET per `cluster/path` target listed in the header
/// `x-targets` (request headers in the request phase, response headers in the
/// response phase), waits for all of them, and writes a summary of the
/// results, in dispatch order, into the header `x-results` of that phase.
/// With `x-report`, it first logs the VM's pending calls and live tasks.
mod fanout {
    use super::*;

    pub(super) struct Fanout;

    impl Plugin for Fanout {
        type Config = ();
        type Filter = FanoutFilter;

        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Fanout)
        }

        fn filter(_: &Rc<Self>, _: &Http) -> FanoutFilter {
            FanoutFilter
        }
    }

    pub(super) struct FanoutFilter;

    impl HttpFilter for FanoutFilter {
        fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
            if http.request_header("x-report")?.is_some() {
                pwf::info!(
                    "pending_calls={} live_tasks={}",
                    pwf::runtime::pending_calls(),
                    pwf::runtime::live_tasks()
                );
            }
            if let Some(targets) = http.request_header("x-targets-in-task")? {
                // The group waits inside a task, after the task's own call.
                let targets = targets.to_str()?.to_owned();
                let handle = http.clone();
                return Ok(http.spawn(async move {
                    let first = Request::get("d", "/first").send()?.await?;
                    pwf::info!("first: {}", first.status());
                    let action = fan_out(&handle, &targets);
                    pwf::info!("wait in a task: {action:?}");
                    // The group resumes the stream; this task never ends.
                    std::future::pending().await
                }));
            }
            match http.request_header("x-targets")? {
                Some(targets) => Ok(fan_out(http, targets.to_str()?)),
                None => Ok(Action::Continue),
            }
        }

        fn on_response_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
            match http.response_header("x-targets")? {
                Some(targets) => Ok(fan_out(http, targets.to_str()?)),
                None => Ok(Action::Continue),
            }
        }
    }

    pub(super) fn describe(result: &CallResult) -> String {
        match result {
            Ok(response) => format!(
                "{}:{}",
                response.status(),
                String::from_utf8_lossy(response.body())
            ),
            Err(error) => format!("{:?}", error.kind()),
        }
    }

    fn fan_out(http: &Http, targets: &str) -> Action {
        let mut group = DispatchGroup::new().on_landed(|result, pending| {
            pwf::debug!("landed {} pending={pending}", describe(result));
        });
        for target in targets.split(',') {
            // `cluster/path*n` sends one request n times.
            let (target, times) = match target.split_once('*') {
                Some((target, times)) => (target, times.parse().unwrap_or(1)),
                None => (target, 1),
            };
            let (cluster, path) = target.split_once('/').unwrap_or((target, ""));
            if times == 1 {
                if let Err(error) = group.dispatch(Request::get(cluster, format!("/{path}"))) {
                    pwf::warn!("{error}");
                }
                continue;
            }
            let request = Request::get(cluster, format!("/{path}"));
            for _ in 0..times {
                if let Err(error) = group.dispatch(&request) {
                    pwf::warn!("{error}");
                }
            }
        }
        group.wait(http, |http, results| {
            let summary = results
                .into_iter()
                .map(|result| describe(&result.and_then(Response::error_for_status)))
                .collect::<Vec<_>>()
                .join(",");
            pwf::info!("completed: {summary}");
            match http.phase() {
                Phase::Request => http.set_request_header("x-results", &summary)?,
                Phase::Response => http.set_response_header("x-results", &summary)?,
            }
            Ok(Outcome::Continue)
        })
    }
}

/// Sends one call to `backend` reading as much of the response as the
/// request header `x-read` says (`whole`, `no-headers`, `status` or
/// `nothing`), awaits it, and logs what it got: `status=.. headers=..
/// body=..` or the error kind.
mod reader {
    use super::*;

    pub(super) struct Reader;

    impl Plugin for Reader {
        type Config = ();
        type Filter = ReaderFilter;

        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Reader)
        }

        fn filter(_: &Rc<Self>, _: &Http) -> ReaderFilter {
            ReaderFilter
        }
    }

    pub(super) struct ReaderFilter;

    impl HttpFilter for ReaderFilter {
        fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
            let read = http.request_header("x-read")?.unwrap_or_default();
            let request = Request::get("backend", "/");
            let request = match read.to_str()? {
                "whole" => request,
                "no-headers" => request.without_headers(),
                "status" => request.status_only(),
                "nothing" => request.ignore_response(),
                other => return Err(Error::msg(format!("unknown x-read {other}"))),
            };
            let call = request.send()?;
            Ok(http.spawn(async move {
                match call.await {
                    Ok(response) => pwf::info!(
                        "status={} headers={} body={}",
                        response.status(),
                        response.headers().len(),
                        response.body().len()
                    ),
                    Err(error) => pwf::info!("{:?} from {}", error.kind(), error.cluster()),
                }
                Ok(Outcome::Continue)
            }))
        }
    }
}

use caller::Caller;
use fanout::Fanout;
use reader::Reader;

fn host() -> Host {
    Host::builder()
        .cluster("backend")
        .cluster("a")
        .cluster("b")
        .cluster("c")
        .cluster("d")
        .build()
}

fn start<P: Plugin>(host: &Host) -> pwf_test::Plugin {
    host.start_vm_with_root(pwf::root_context::<P>)
        .unwrap()
        .configure("")
        .unwrap()
}

#[test]
fn request_send_sends_method_path_headers_body_trailers_and_timeout_as_given() {
    let host = host();
    let stream = start::<Caller>(&host).open_stream();
    stream.request_headers(request(&[("x-case", "full")]), true);
    let calls = stream.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.cluster(), "backend");
    assert_eq!(
        call.headers().pairs(),
        [
            (":method", "POST"),
            (":path", "/v1/check"),
            (":authority", "backend"),
            ("x-a", "1"),
            ("x-b", "2"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );
    assert_eq!(call.body(), b"payload");
    assert_eq!(call.trailers().get("x-t"), Some("3"));
    assert_eq!(call.timeout(), Some(Duration::from_millis(250)));
}

#[test]
fn request_send_defaults_authority_to_the_cluster_name() {
    let host = host();
    let stream = start::<Caller>(&host).open_stream();
    stream.request_headers(request(&[("x-case", "default-timeout")]), true);
    let calls = stream.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].header(":authority").as_deref(), Some("backend"));
}

#[test]
fn request_send_uses_a_given_authority() {
    let host = host();
    let stream = start::<Caller>(&host).open_stream();
    stream.request_headers(request(&[("x-case", "authority")]), true);
    let calls = stream.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].headers().get_all(":authority"),
        ["auth.example".to_string()]
    );
}

#[test]
fn request_header_given_a_pseudo_header_replaces_the_builders_own() {
    let host = host();
    let stream = start::<Caller>(&host).open_stream();
    stream.request_headers(request(&[("x-case", "pseudo")]), true);
    let calls = stream.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].headers().get_all(":method"),
        ["DELETE".to_string()]
    );
    assert_eq!(
        calls[0].headers().get_all(":path"),
        ["/items/7".to_string()]
    );
}

#[test]
fn request_send_without_a_timeout_uses_the_default() {
    let host = host();
    let stream = start::<Caller>(&host).open_stream();
    stream.request_headers(request(&[("x-case", "default-timeout")]), true);
    assert_eq!(stream.calls()[0].timeout(), Some(pwf::DEFAULT_TIMEOUT));
}

#[test]
fn request_send_with_a_zero_timeout_is_refused_before_dispatch_naming_the_cluster() {
    let host = host();
    let stream = start::<Caller>(&host).open_stream();
    assert_eq!(
        stream.request_headers(request(&[("x-case", "zero-timeout")]), true),
        HostAction::Continue
    );
    assert!(stream.calls().is_empty());
    let warnings = host.logs(LogLevel::Warn);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].starts_with("ZeroTimeout: call to cluster `backend` not sent"));
}

#[test]
fn request_send_with_a_timeout_past_u32_millis_is_refused_before_dispatch() {
    let host = host();
    let stream = start::<Caller>(&host).open_stream();
    stream.request_headers(request(&[("x-case", "long-timeout")]), true);
    assert!(stream.calls().is_empty());
    assert_eq!(
        host.logs(LogLevel::Warn),
        ["TimeoutTooLong: call to cluster `backend` not sent: the timeout is 2147483648ms or more, and Envoy takes at most 2147483647ms (a signed 32-bit count)"]
    );
}

#[test]
fn request_send_to_an_unknown_cluster_is_a_dispatch_error_naming_it() {
    let host = host();
    let stream = start::<Caller>(&host).open_stream();
    stream.request_headers(request(&[("x-case", "unknown")]), true);
    assert!(stream.calls().is_empty());
    let warnings = host.logs(LogLevel::Warn);
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0]
            .starts_with("Dispatch(BadArgument): call to cluster `nowhere` refused by Envoy"),
        "{warnings:?}"
    );
}

#[test]
fn group_wait_completes_once_with_every_result_and_resumes_once() {
    let host = host();
    let plugin = start::<Fanout>(&host);
    let stream = plugin.open_stream();
    let headers = request(&[("x-targets", "a/0,b/1,c/2")]);
    assert_eq!(stream.request_headers(headers, true), HostAction::Pause);
    let calls = stream.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].respond(200, RESPONSE, "r0"), Delivery::Delivered);
    assert_eq!(calls[1].respond(200, RESPONSE, "r1"), Delivery::Delivered);
    assert!(stream.resumes().is_empty());
    assert!(host.logs(LogLevel::Info).is_empty());
    assert_eq!(calls[2].respond(201, RESPONSE, "r2"), Delivery::Delivered);
    assert_eq!(
        host.logs(LogLevel::Info),
        ["completed: 200:r0,200:r1,201:r2"]
    );
    assert_eq!(
        stream.request_header("x-results").as_deref(),
        Some("200:r0,200:r1,201:r2")
    );
    let resumes = stream.resumes();
    assert_eq!(resumes.len(), 1);
    assert_eq!(resumes[0].direction, Direction::Request);

    // Nothing of the group is left behind in the VM: no call, no task.
    plugin
        .open_stream()
        .request_headers(request(&[("x-report", "1")]), true);
    assert_eq!(
        host.logs(LogLevel::Info).last().map(String::as_str),
        Some("pending_calls=0 live_tasks=0")
    );
}

#[test]
fn group_sends_one_request_many_times_each_call_in_its_own_slot() {
    let host = host();
    let stream = start::<Fanout>(&host).open_stream();
    let headers = request(&[("x-targets", "a/same*3,nowhere/x*2,b/other")]);
    assert_eq!(stream.request_headers(headers, true), HostAction::Pause);
    let calls = stream.calls();
    assert_eq!(calls.len(), 4, "3 sent to a, 2 refused, 1 sent to b");
    for call in &calls[..3] {
        assert_eq!(call.cluster(), "a");
        assert_eq!(call.header(":path").as_deref(), Some("/same"));
    }
    assert_eq!(calls[3].header(":path").as_deref(), Some("/other"));
    assert_eq!(
        host.logs(LogLevel::Warn).len(),
        2,
        "each refused send is reported"
    );
    for (n, call) in calls.iter().enumerate().rev() {
        assert_eq!(
            call.respond(200, RESPONSE, format!("r{n}")),
            Delivery::Delivered
        );
    }
    let bad = "Dispatch(BadArgument)";
    assert_eq!(
        stream.request_header("x-results").as_deref(),
        Some(format!("200:r0,200:r1,200:r2,{bad},{bad},200:r3").as_str())
    );
    assert_eq!(stream.resumes().len(), 1);
}

#[test]
fn a_call_reads_as_much_of_its_response_as_asked() {
    for (read, answered) in [
        ("whole", "status=201 headers=2 body=5"),
        ("no-headers", "status=201 headers=0 body=5"),
        ("status", "status=201 headers=0 body=0"),
        ("nothing", "status=0 headers=0 body=0"),
    ] {
        let host = host();
        let stream = start::<Reader>(&host).open_stream();
        stream.request_headers(request(&[("x-read", read)]), true);
        let calls = stream.calls();
        assert_eq!(calls.len(), 1, "{read}");
        assert_eq!(
            calls[0].respond(201, [("x-a", "1")], "hello"),
            Delivery::Delivered
        );
        assert_eq!(host.logs(LogLevel::Info), [answered], "{read}");
        assert_eq!(stream.resumes().len(), 1, "{read}");

        // Whatever is read, a call that ends without a response fails.
        let stream = start::<Reader>(&host).open_stream();
        stream.request_headers(request(&[("x-read", read)]), true);
        assert_eq!(stream.calls()[0].fail(), Delivery::Delivered);
        assert_eq!(
            host.logs(LogLevel::Info).last().map(String::as_str),
            Some("Failed from backend"),
            "{read}"
        );
    }
}

#[test]
fn group_wait_reports_each_failure_in_its_place() {
    let host = host();
    let stream = start::<Fanout>(&host).open_stream();
    let headers = request(&[("x-targets", "a/ok,b/reset,c/refused,d/slow")]);
    assert_eq!(stream.request_headers(headers, true), HostAction::Pause);
    let calls = stream.calls();
    assert_eq!(calls.len(), 4);
    calls[0].respond(200, RESPONSE, "fine");
    calls[1].reset();
    calls[2].refuse();
    calls[3].time_out();
    assert_eq!(
        stream.request_header("x-results").as_deref(),
        Some("200:fine,Failed,Status(503),Status(504)")
    );
    assert_eq!(stream.resumes().len(), 1);
}

#[test]
fn group_wait_keeps_dispatch_order_when_calls_land_out_of_order() {
    let host = host();
    let stream = start::<Fanout>(&host).open_stream();
    let headers = request(&[("x-targets", "a/0,b/1,c/2")]);
    assert_eq!(stream.request_headers(headers, true), HostAction::Pause);
    let calls = stream.calls();
    calls[2].respond(200, RESPONSE, "r2");
    calls[0].respond(200, RESPONSE, "r0");
    calls[1].respond(200, RESPONSE, "r1");
    assert_eq!(
        stream.request_header("x-results").as_deref(),
        Some("200:r0,200:r1,200:r2")
    );
}

#[test]
fn group_on_landed_runs_per_call_with_the_pending_count_descending() {
    let host = host();
    let stream = start::<Fanout>(&host).open_stream();
    let headers = request(&[("x-targets", "a/0,b/1,c/2")]);
    stream.request_headers(headers, true);
    let calls = stream.calls();
    calls[1].respond(200, RESPONSE, "r1");
    calls[2].reset();
    calls[0].respond(200, RESPONSE, "r0");
    assert_eq!(
        host.logs(LogLevel::Debug),
        [
            "landed 200:r1 pending=2",
            "landed Failed pending=1",
            "landed 200:r0 pending=0",
        ]
    );
}

/// Opens a stream whose task makes one call and, once it is answered, waits
/// in the task for a group of calls to `targets`; answers that first call.
fn wait_in_a_task(host: &Host, targets: &'static str) -> pwf_test::Stream {
    let stream = start::<Fanout>(host).open_stream();
    let headers = request(&[("x-targets-in-task", targets)]);
    assert_eq!(stream.request_headers(headers, true), HostAction::Pause);
    assert_eq!(
        stream.calls()[0].respond(200, RESPONSE, "first"),
        Delivery::Delivered
    );
    stream
}

#[test]
fn group_wait_inside_a_task_completes_after_its_calls_and_resumes_the_stream() {
    let host = host();
    let stream = wait_in_a_task(&host, "a/0,b/1");
    assert_eq!(
        host.logs(LogLevel::Info),
        ["first: 200", "wait in a task: Pause"]
    );
    let calls = stream.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[2].respond(200, RESPONSE, "r1"), Delivery::Delivered);
    assert_eq!(host.logs(LogLevel::Info).len(), 2);
    assert!(stream.resumes().is_empty());
    assert_eq!(calls[1].respond(200, RESPONSE, "r0"), Delivery::Delivered);
    assert_eq!(
        host.logs(LogLevel::Info),
        [
            "first: 200",
            "wait in a task: Pause",
            "completed: 200:r0,200:r1"
        ]
    );
    assert_eq!(
        stream.request_header("x-results").as_deref(),
        Some("200:r0,200:r1")
    );
    assert_eq!(stream.resumes().len(), 1);
    assert!(host.logs(LogLevel::Error).is_empty());
}

#[test]
fn group_wait_inside_a_task_with_no_call_dispatched_completes_after_the_task_is_polled() {
    let host = host();
    let stream = wait_in_a_task(&host, "nowhere/0");
    assert_eq!(
        host.logs(LogLevel::Info),
        [
            "first: 200",
            "wait in a task: Pause",
            "completed: Dispatch(BadArgument)"
        ]
    );
    assert_eq!(
        stream.request_header("x-results").as_deref(),
        Some("Dispatch(BadArgument)")
    );
    assert_eq!(stream.resumes().len(), 1);
    assert!(host.logs(LogLevel::Error).is_empty());
}

#[test]
fn group_wait_with_no_call_dispatched_completes_at_once_without_pausing() {
    let host = host();
    let stream = start::<Fanout>(&host).open_stream();
    let headers = request(&[("x-targets", "nowhere/0,elsewhere/1")]);
    assert_eq!(stream.request_headers(headers, true), HostAction::Continue);
    assert!(stream.calls().is_empty());
    assert!(stream.resumes().is_empty());
    assert_eq!(
        host.logs(LogLevel::Info),
        ["completed: Dispatch(BadArgument),Dispatch(BadArgument)"]
    );
    assert_eq!(host.logs(LogLevel::Warn).len(), 2);
}

#[test]
fn group_wait_dispatching_some_calls_keeps_the_refused_ones_in_place() {
    let host = host();
    let stream = start::<Fanout>(&host).open_stream();
    let headers = request(&[("x-targets", "a/0,nowhere/1,b/2")]);
    assert_eq!(stream.request_headers(headers, true), HostAction::Pause);
    let calls = stream.calls();
    assert_eq!(calls.len(), 2);
    calls[0].respond(200, RESPONSE, "r0");
    calls[1].respond(200, RESPONSE, "r2");
    assert_eq!(
        stream.request_header("x-results").as_deref(),
        Some("200:r0,Dispatch(BadArgument),200:r2")
    );
}

#[test]
fn stream_ending_before_the_group_completes_cancels_it_without_a_resume() {
    let host = host();
    let plugin = start::<Fanout>(&host);
    let stream = plugin.open_stream();
    let headers = request(&[("x-targets", "a/0,b/1")]);
    assert_eq!(stream.request_headers(headers, true), HostAction::Pause);
    let calls = stream.calls();
    assert_eq!(calls[0].respond(200, RESPONSE, "r0"), Delivery::Delivered);

    plugin
        .open_stream()
        .request_headers(request(&[("x-report", "1")]), true);
    stream.end().unwrap();
    assert_eq!(calls[1].respond(200, RESPONSE, "r1"), Delivery::Cancelled);
    plugin
        .open_stream()
        .request_headers(request(&[("x-report", "1")]), true);

    assert!(stream.resumes().is_empty());
    assert_eq!(plugin.failure(), None);
    assert_eq!(
        host.logs(LogLevel::Info),
        [
            "pending_calls=1 live_tasks=1",
            "pending_calls=0 live_tasks=0",
        ]
    );
}

#[test]
fn stream_ending_forgets_its_own_groups_calls_and_no_others() {
    let host = host();
    let plugin = start::<Fanout>(&host);
    let ending = plugin.open_stream();
    let staying = plugin.open_stream();
    let headers = request(&[("x-targets", "a/0,b/1")]);
    assert_eq!(
        ending.request_headers(headers.clone(), true),
        HostAction::Pause
    );
    assert_eq!(staying.request_headers(headers, true), HostAction::Pause);
    let (ending_calls, staying_calls) = (ending.calls(), staying.calls());

    ending.end().unwrap();
    plugin
        .open_stream()
        .request_headers(request(&[("x-report", "1")]), true);
    assert_eq!(
        ending_calls[0].respond(200, RESPONSE, "late"),
        Delivery::Cancelled
    );
    assert_eq!(
        staying_calls[1].respond(200, RESPONSE, "s1"),
        Delivery::Delivered
    );
    assert_eq!(
        staying_calls[0].respond(200, RESPONSE, "s0"),
        Delivery::Delivered
    );

    assert!(ending.resumes().is_empty());
    assert_eq!(staying.resumes().len(), 1);
    assert_eq!(
        staying.request_header("x-results").as_deref(),
        Some("200:s0,200:s1")
    );
    assert_eq!(plugin.failure(), None);
    assert_eq!(
        host.logs(LogLevel::Info),
        ["pending_calls=2 live_tasks=1", "completed: 200:s0,200:s1"]
    );
}

#[test]
fn group_wait_in_the_response_phase_pauses_and_resumes_the_response() {
    let host = host();
    let stream = start::<Fanout>(&host).open_stream();
    assert_eq!(
        stream.request_headers(request(&[]), true),
        HostAction::Continue
    );
    let response = [(":status", "200"), ("x-targets", "a/0,b/1")];
    assert_eq!(stream.response_headers(response, true), HostAction::Pause);
    let calls = stream.calls();
    calls[0].respond(200, RESPONSE, "r0");
    calls[1].respond(200, RESPONSE, "r1");
    assert_eq!(
        stream.response_header("x-results").as_deref(),
        Some("200:r0,200:r1")
    );
    let resumes = stream.resumes();
    assert_eq!(resumes.len(), 1);
    assert_eq!(resumes[0].direction, Direction::Response);
}

#[test]
fn group_completion_can_answer_with_a_local_response_instead() {
    struct Guard;
    impl Plugin for Guard {
        type Config = ();
        type Filter = GuardFilter;
        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Guard)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> GuardFilter {
            GuardFilter
        }
    }
    struct GuardFilter;
    impl HttpFilter for GuardFilter {
        fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
            let mut group = DispatchGroup::new();
            group.dispatch(Request::get("a", "/check"))?;
            group.dispatch(Request::get("b", "/check"))?;
            Ok(group.wait(http, |_, results| {
                let failed = results
                    .into_iter()
                    .filter(|result| !matches!(result, Ok(r) if r.is_success()))
                    .count();
                if failed == 0 {
                    return Ok(Outcome::Continue);
                }
                Ok(LocalResponse::new(502)
                    .header("x-failed", failed.to_string())
                    .body("a check failed")
                    .into())
            }))
        }

        fn on_response_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
            http.set_response_header("x-seen", "1")?;
            Ok(Action::Continue)
        }
    }

    let host = host();
    let stream = start::<Guard>(&host).open_stream();
    assert_eq!(
        stream.request_headers(request(&[]), true),
        HostAction::Pause
    );
    let calls = stream.calls();
    calls[0].respond(200, RESPONSE, "");
    calls[1].refuse();
    let local = stream.local_response().expect("a local response");
    assert_eq!(local.status, 502);
    assert_eq!(local.headers.get("x-failed"), Some("1"));
    assert_eq!(local.body, b"a check failed");
    assert!(stream.resumes().is_empty());
    // Envoy sends the local response through the response path: the filter's response
    // phase runs on it, although the call's answer came in on the root's callback.
    let response = stream.response_header_map();
    assert_eq!(response.get(":status"), Some("502"));
    assert_eq!(response.get("x-seen"), Some("1"));
}

#[test]
fn group_completion_error_is_logged_and_answered_with_a_500() {
    struct Strict;
    impl Plugin for Strict {
        type Config = ();
        type Filter = StrictFilter;
        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Strict)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> StrictFilter {
            StrictFilter
        }
    }
    struct StrictFilter;
    impl HttpFilter for StrictFilter {
        fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
            let mut group = DispatchGroup::new();
            group.dispatch(Request::get("a", "/check"))?;
            Ok(group.wait(http, |_, results| {
                for result in results {
                    result?.error_for_status()?;
                }
                Ok(Outcome::Continue)
            }))
        }
    }

    let host = host();
    let stream = start::<Strict>(&host).open_stream();
    assert_eq!(
        stream.request_headers(request(&[]), true),
        HostAction::Pause
    );
    stream.calls()[0].time_out();
    assert_eq!(stream.local_response().map(|r| r.status), Some(500));
    assert_eq!(
        host.logs(LogLevel::Error),
        ["task failed: call to cluster `a` answered with status 504"]
    );
    assert!(stream.resumes().is_empty());
}

#[test]
fn group_reports_its_size_and_pending_count() {
    struct Sizes;
    impl Plugin for Sizes {
        type Config = ();
        type Filter = SizesFilter;
        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Sizes)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> SizesFilter {
            SizesFilter
        }
    }
    struct SizesFilter;
    impl HttpFilter for SizesFilter {
        fn on_request_headers(&mut self, _: &Http, _: bool) -> Result<Action, Error> {
            let mut group = DispatchGroup::new();
            pwf::info!("empty={} len={}", group.is_empty(), group.len());
            let _ = group.dispatch(Request::get("a", "/"));
            let _ = group.dispatch(Request::get("nowhere", "/"));
            pwf::info!(
                "empty={} len={} pending={}",
                group.is_empty(),
                group.len(),
                group.pending()
            );
            Ok(Action::Continue)
        }
    }

    let host = host();
    start::<Sizes>(&host)
        .open_stream()
        .request_headers(request(&[]), true);
    assert_eq!(
        host.logs(LogLevel::Info),
        ["empty=true len=0", "empty=false len=2 pending=1"]
    );
}

#[test]
fn local_response_from_a_task_after_a_call_runs_the_response_phase() {
    struct Gate;
    impl Plugin for Gate {
        type Config = ();
        type Filter = GateFilter;
        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Gate)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> GateFilter {
            GateFilter
        }
    }
    struct GateFilter;
    impl HttpFilter for GateFilter {
        fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
            let call = Request::get("a", "/check").send()?;
            Ok(http.spawn(async move {
                call.await?;
                Ok(LocalResponse::new(403).body("no").into())
            }))
        }

        fn on_response_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
            http.set_response_header("x-seen", "1")?;
            Ok(Action::Continue)
        }
    }

    let host = host();
    let stream = start::<Gate>(&host).open_stream();
    assert_eq!(
        stream.request_headers(request(&[]), true),
        HostAction::Pause
    );
    stream.calls()[0].respond(200, RESPONSE, "");
    assert_eq!(stream.local_response().map(|r| r.status), Some(403));
    // Envoy sends the local response through the response path: the filter's response
    // phase runs on it, although the call's answer came in on the root's callback.
    let response = stream.response_header_map();
    assert_eq!(response.get(":status"), Some("403"));
    assert_eq!(response.get("x-seen"), Some("1"));
}
