//! Async tasks (`Http::spawn`, `PluginContext::spawn`, `pwf::timer`) through
//! the native test host.

use std::marker::PhantomData;
use std::rc::Rc;
use std::time::Duration;

use futures::future::{join_all, select, Either};
use pwf::{
    Action, Error, Http, HttpFilter, LocalResponse, Outcome, Plugin, PluginContext, Request,
    SharedValue,
};
use pwf_test::{Action as HostAction, Delivery, Direction, Host, LogLevel};

const RESPONSE: [(&str, &str); 1] = [(":status", "200")];

fn request(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut headers = vec![(":method", "GET"), (":path", "/"), (":authority", "app")];
    headers.extend_from_slice(extra);
    headers
}

/// What a test's filter does in its phases.
trait Scenario: 'static {
    fn request_headers(http: &Http) -> Result<Action, Error>;

    fn response_headers(http: &Http) -> Result<Action, Error> {
        let _ = http;
        Ok(Action::Continue)
    }
}

/// A plugin running scenario `S` on every stream. A request with the header
/// `x-report` only logs the VM's pending calls and live tasks.
struct Run<S>(PhantomData<S>);

impl<S: Scenario> Plugin for Run<S> {
    type Config = ();
    type Filter = RunFilter<S>;

    fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
        Ok(Run(PhantomData))
    }

    fn filter(_: &Rc<Self>, _: &Http) -> RunFilter<S> {
        RunFilter(PhantomData)
    }
}

struct RunFilter<S>(PhantomData<S>);

impl<S: Scenario> HttpFilter for RunFilter<S> {
    fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        if http.request_header("x-report")?.is_some() {
            pwf::info!(
                "pending_calls={} live_tasks={}",
                pwf::runtime::pending_calls(),
                pwf::runtime::live_tasks()
            );
            return Ok(Action::Continue);
        }
        S::request_headers(http)
    }

    fn on_response_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        S::response_headers(http)
    }
}

fn host() -> Host {
    Host::builder()
        .cluster("a")
        .cluster("b")
        .cluster("c")
        .cluster("config")
        .build()
}

fn start<S: Scenario>(host: &Host) -> pwf_test::Plugin {
    host.start_vm_with_root(pwf::root_context::<Run<S>>)
        .unwrap()
        .configure("")
        .unwrap()
}

/// Logs the VM's pending calls and live tasks from a new stream.
fn report(plugin: &pwf_test::Plugin) {
    plugin
        .open_stream()
        .request_headers(request(&[("x-report", "1")]), true);
}

#[test]
fn task_awaiting_a_call_pauses_the_phase_then_resumes_the_stream() {
    struct AwaitsCall;
    impl Scenario for AwaitsCall {
        fn request_headers(http: &Http) -> Result<Action, Error> {
            let handle = http.clone();
            Ok(http.spawn(async move {
                let answer = Request::get("a", "/check").send()?.await?;
                handle.set_request_header("x-status", answer.status().to_string())?;
                Ok(Outcome::Continue)
            }))
        }
    }

    let host = host();
    let stream = start::<AwaitsCall>(&host).open_stream();
    assert_eq!(
        stream.request_headers(request(&[]), true),
        HostAction::Pause
    );
    assert!(stream.resumes().is_empty());
    assert_eq!(
        stream.calls()[0].respond(204, RESPONSE, ""),
        Delivery::Delivered
    );
    assert_eq!(stream.request_header("x-status").as_deref(), Some("204"));
    let resumes = stream.resumes();
    assert_eq!(resumes.len(), 1);
    assert_eq!(resumes[0].direction, Direction::Request);
}

#[test]
fn task_finishing_without_waiting_continues_without_pausing() {
    struct Immediate;
    impl Scenario for Immediate {
        fn request_headers(http: &Http) -> Result<Action, Error> {
            let handle = http.clone();
            Ok(http.spawn(async move {
                handle.set_request_header("x-task", "ran")?;
                Ok(Outcome::Continue)
            }))
        }
    }

    let host = host();
    let stream = start::<Immediate>(&host).open_stream();
    assert_eq!(
        stream.request_headers(request(&[]), true),
        HostAction::Continue
    );
    assert_eq!(stream.request_header("x-task").as_deref(), Some("ran"));
    assert!(stream.resumes().is_empty());
    assert_eq!(stream.local_response(), None);
}

#[test]
fn task_answering_at_once_responds_without_a_resume() {
    struct Deny;
    impl Scenario for Deny {
        fn request_headers(http: &Http) -> Result<Action, Error> {
            Ok(http.spawn(async { Ok(LocalResponse::new(401).into()) }))
        }
    }

    let host = host();
    let stream = start::<Deny>(&host).open_stream();
    assert_eq!(
        stream.request_headers(request(&[]), true),
        HostAction::Pause
    );
    assert_eq!(stream.local_response().map(|r| r.status), Some(401));
    assert!(stream.resumes().is_empty());
}

#[test]
fn join_all_of_three_calls_yields_every_answer_in_order() {
    struct JoinAll;
    impl Scenario for JoinAll {
        fn request_headers(http: &Http) -> Result<Action, Error> {
            let calls = ["a", "b", "c"]
                .into_iter()
                .map(|cluster| Request::get(cluster, "/").send())
                .collect::<Result<Vec<_>, _>>()?;
            let handle = http.clone();
            Ok(http.spawn(async move {
                let mut bodies = Vec::new();
                for answer in join_all(calls).await {
                    bodies.push(String::from_utf8(answer?.into_body())?);
                }
                handle.set_request_header("x-bodies", bodies.join(","))?;
                Ok(Outcome::Continue)
            }))
        }
    }

    let host = host();
    let stream = start::<JoinAll>(&host).open_stream();
    assert_eq!(
        stream.request_headers(request(&[]), true),
        HostAction::Pause
    );
    let calls = stream.calls();
    assert_eq!(calls.len(), 3);
    calls[1].respond(200, RESPONSE, "b");
    calls[2].respond(200, RESPONSE, "c");
    assert!(stream.resumes().is_empty());
    calls[0].respond(200, RESPONSE, "a");
    assert_eq!(stream.request_header("x-bodies").as_deref(), Some("a,b,c"));
    assert_eq!(stream.resumes().len(), 1);
}

#[test]
fn join_macro_awaits_both_calls() {
    struct Join;
    impl Scenario for Join {
        fn request_headers(http: &Http) -> Result<Action, Error> {
            let handle = http.clone();
            Ok(http.spawn(async move {
                let (a, b) = futures::join!(
                    Request::get("a", "/").send()?,
                    Request::get("b", "/").send()?
                );
                handle
                    .set_request_header("x-statuses", format!("{} {}", a?.status(), b?.status()))?;
                Ok(Outcome::Continue)
            }))
        }
    }

    let host = host();
    let stream = start::<Join>(&host).open_stream();
    assert_eq!(
        stream.request_headers(request(&[]), true),
        HostAction::Pause
    );
    let calls = stream.calls();
    assert_eq!(calls.len(), 2);
    calls[1].respond(202, RESPONSE, "");
    assert!(stream.resumes().is_empty());
    calls[0].respond(201, RESPONSE, "");
    assert_eq!(
        stream.request_header("x-statuses").as_deref(),
        Some("201 202")
    );
    assert_eq!(stream.resumes().len(), 1);
}

#[test]
fn select_takes_the_first_answer_and_ignores_the_late_one() {
    struct Race;
    impl Scenario for Race {
        fn request_headers(http: &Http) -> Result<Action, Error> {
            let first = Request::get("a", "/").send()?;
            let second = Request::get("b", "/").send()?;
            let handle = http.clone();
            Ok(http.spawn(async move {
                let (winner, answer) = match select(first, second).await {
                    Either::Left((answer, _second)) => ("a", answer),
                    Either::Right((answer, _first)) => ("b", answer),
                };
                let body = String::from_utf8(answer?.into_body())?;
                pwf::info!("winner {winner}: {body}");
                handle.set_request_header("x-winner", winner)?;
                Ok(Outcome::Continue)
            }))
        }
    }

    let host = host();
    let plugin = start::<Race>(&host);
    let stream = plugin.open_stream();
    assert_eq!(
        stream.request_headers(request(&[]), true),
        HostAction::Pause
    );
    let calls = stream.calls();
    assert_eq!(calls[1].respond(200, RESPONSE, "fast"), Delivery::Delivered);
    assert_eq!(stream.request_header("x-winner").as_deref(), Some("b"));
    assert_eq!(calls[0].respond(200, RESPONSE, "slow"), Delivery::Delivered);
    report(&plugin);

    assert_eq!(stream.resumes().len(), 1);
    assert_eq!(plugin.failure(), None);
    assert_eq!(
        host.logs(LogLevel::Info),
        ["winner b: fast", "pending_calls=0 live_tasks=0"]
    );
}

/// A call whose response landed while nobody awaited it is dropped with its
/// result, and leaves nothing in flight.
#[test]
fn call_landed_and_never_awaited_is_dropped_with_nothing_in_flight() {
    struct Unawaited;
    impl Scenario for Unawaited {
        fn request_headers(http: &Http) -> Result<Action, Error> {
            let awaited = Request::get("a", "/").send()?;
            let unawaited = Request::get("b", "/").send()?;
            Ok(http.spawn(async move {
                let body = String::from_utf8(awaited.await?.into_body())?;
                pwf::info!("a: {body}, b unawaited (token {})", unawaited.token() > 0);
                drop(unawaited);
                Ok(Outcome::Continue)
            }))
        }
    }

    let host = host();
    let plugin = start::<Unawaited>(&host);
    let stream = plugin.open_stream();
    assert_eq!(
        stream.request_headers(request(&[]), true),
        HostAction::Pause
    );
    let calls = stream.calls();
    assert_eq!(calls[1].respond(200, RESPONSE, "b"), Delivery::Delivered);
    assert!(stream.resumes().is_empty(), "nobody awaits b");
    assert_eq!(calls[0].respond(200, RESPONSE, "a"), Delivery::Delivered);
    report(&plugin);

    assert_eq!(stream.resumes().len(), 1);
    assert_eq!(plugin.failure(), None);
    assert_eq!(
        host.logs(LogLevel::Info),
        [
            "a: a, b unawaited (token true)",
            "pending_calls=0 live_tasks=0"
        ]
    );
}

#[test]
fn task_error_is_logged_and_answered_with_a_500() {
    struct Failing;
    impl Scenario for Failing {
        fn request_headers(http: &Http) -> Result<Action, Error> {
            Ok(http.spawn(async {
                let answer = Request::get("a", "/").send()?.await?;
                if answer.body() != b"ok" {
                    return Err(Error::msg("the check said no"));
                }
                Ok(Outcome::Continue)
            }))
        }
    }

    let host = host();
    let stream = start::<Failing>(&host).open_stream();
    assert_eq!(
        stream.request_headers(request(&[]), true),
        HostAction::Pause
    );
    assert!(host.logs(LogLevel::Error).is_empty());
    stream.calls()[0].respond(200, RESPONSE, "no");
    assert_eq!(stream.local_response().map(|r| r.status), Some(500));
    assert_eq!(
        host.logs(LogLevel::Error),
        ["task failed: the check said no"]
    );
    assert!(stream.resumes().is_empty());
}

#[test]
fn task_error_is_answered_with_the_plugins_error_response() {
    struct Custom;
    impl Plugin for Custom {
        type Config = ();
        type Filter = CustomFilter;
        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Custom)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> CustomFilter {
            CustomFilter
        }
        fn error_response(error: &Error) -> LocalResponse {
            LocalResponse::new(502).body(error.to_string())
        }
    }
    struct CustomFilter;
    impl HttpFilter for CustomFilter {
        fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
            Ok(http.spawn(async {
                Request::get("a", "/").send()?.await?;
                Ok(Outcome::Continue)
            }))
        }
    }

    let host = host();
    let stream = host
        .start_vm_with_root(pwf::root_context::<Custom>)
        .unwrap()
        .configure("")
        .unwrap()
        .open_stream();
    assert_eq!(
        stream.request_headers(request(&[]), true),
        HostAction::Pause
    );
    stream.calls()[0].reset();
    let local = stream.local_response().expect("a local response");
    assert_eq!(local.status, 502);
    assert_eq!(
        local.body,
        b"call to cluster `a` failed: no response (reset or cut off)"
    );
}

#[test]
fn task_panic_fails_the_vm_with_its_message() {
    struct Panicky;
    impl Scenario for Panicky {
        fn request_headers(http: &Http) -> Result<Action, Error> {
            Ok(http.spawn(async {
                Request::get("a", "/").send()?.await?;
                panic!("the task exploded");
            }))
        }
    }

    let host = host();
    let plugin = start::<Panicky>(&host);
    let stream = plugin.open_stream();
    assert_eq!(
        stream.request_headers(request(&[]), true),
        HostAction::Pause
    );
    let Delivery::VmFailed(message) = stream.calls()[0].respond(200, RESPONSE, "") else {
        panic!("the answer did not fail the VM");
    };
    assert!(message.contains("the task exploded"), "{message}");
    assert_eq!(plugin.failure(), Some(message));
}

#[test]
fn stream_end_drops_pending_tasks_and_runs_their_destructors() {
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            pwf::info!("guard dropped");
        }
    }
    struct Guarded;
    impl Scenario for Guarded {
        fn request_headers(http: &Http) -> Result<Action, Error> {
            Ok(http.spawn(async {
                let _guard = Guard;
                Request::get("a", "/").send()?.await?;
                pwf::info!("answered");
                Ok(Outcome::Continue)
            }))
        }
    }

    let host = host();
    let plugin = start::<Guarded>(&host);
    let stream = plugin.open_stream();
    assert_eq!(
        stream.request_headers(request(&[]), true),
        HostAction::Pause
    );
    report(&plugin);
    assert_eq!(host.logs(LogLevel::Info), ["pending_calls=1 live_tasks=1"]);
    stream.end().unwrap();
    assert_eq!(
        host.logs(LogLevel::Info),
        ["pending_calls=1 live_tasks=1", "guard dropped"]
    );
    // The call belongs to the plugin's root context: its late answer still
    // comes, and finds no waiter.
    assert_eq!(
        stream.calls()[0].respond(200, RESPONSE, ""),
        Delivery::Delivered
    );
    report(&plugin);
    assert_eq!(
        host.logs(LogLevel::Info),
        [
            "pending_calls=1 live_tasks=1",
            "guard dropped",
            "pending_calls=0 live_tasks=0",
        ]
    );
    assert!(stream.resumes().is_empty());
    assert_eq!(plugin.failure(), None);
}

#[test]
fn task_outcome_respond_sends_its_status_headers_and_body() {
    struct Denies;
    impl Scenario for Denies {
        fn request_headers(http: &Http) -> Result<Action, Error> {
            Ok(http.spawn(async {
                let answer = Request::get("a", "/authz").send()?.await?;
                Ok(LocalResponse::new(403)
                    .header("x-reason", "denied")
                    .header("x-checked-by", answer.cluster())
                    .body("access denied")
                    .into())
            }))
        }
    }

    let host = host();
    let stream = start::<Denies>(&host).open_stream();
    assert_eq!(
        stream.request_headers(request(&[]), true),
        HostAction::Pause
    );
    stream.calls()[0].respond(200, RESPONSE, "");
    let local = stream.local_response().expect("a local response");
    assert_eq!(local.status, 403);
    assert_eq!(
        local.headers.pairs(),
        [
            ("x-reason".to_string(), "denied".to_string()),
            ("x-checked-by".to_string(), "a".to_string()),
        ]
    );
    assert_eq!(local.body, b"access denied");
    assert!(stream.resumes().is_empty());
}

#[test]
fn task_spawned_in_the_response_phase_resumes_the_response() {
    struct Late;
    impl Scenario for Late {
        fn request_headers(_: &Http) -> Result<Action, Error> {
            Ok(Action::Continue)
        }
        fn response_headers(http: &Http) -> Result<Action, Error> {
            let handle = http.clone();
            Ok(http.spawn(async move {
                let answer = Request::get("a", "/").send()?.await?;
                handle.set_response_header("x-extra", answer.body())?;
                Ok(Outcome::Continue)
            }))
        }
    }

    let host = host();
    let stream = start::<Late>(&host).open_stream();
    assert_eq!(
        stream.request_headers(request(&[]), true),
        HostAction::Continue
    );
    assert_eq!(stream.response_headers(RESPONSE, true), HostAction::Pause);
    stream.calls()[0].respond(200, RESPONSE, "extra");
    assert_eq!(stream.response_header("x-extra").as_deref(), Some("extra"));
    let resumes = stream.resumes();
    assert_eq!(resumes.len(), 1);
    assert_eq!(resumes[0].direction, Direction::Response);
}

#[test]
fn plugin_task_stores_a_call_answer_in_shared_data() {
    struct Fetcher;
    impl Plugin for Fetcher {
        type Config = ();
        type Filter = FetcherFilter;
        fn configure(_: (), cx: &PluginContext) -> Result<Self, Error> {
            cx.spawn(async {
                let answer = Request::get("config", "/settings")
                    .send()?
                    .await?
                    .error_for_status()?;
                let body = String::from_utf8(answer.into_body())?;
                SharedValue::<String>::new("settings").update(|_| body.clone())?;
                Ok(())
            });
            Ok(Fetcher)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> FetcherFilter {
            FetcherFilter
        }
    }
    struct FetcherFilter;
    impl HttpFilter for FetcherFilter {}

    let host = host();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<Fetcher>)
        .unwrap()
        .configure("")
        .unwrap();
    let calls = plugin.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].header(":path").as_deref(), Some("/settings"));
    assert_eq!(host.shared_data("settings"), None);
    assert_eq!(
        calls[0].respond(200, RESPONSE, "mode=strict"),
        Delivery::Delivered
    );
    assert_eq!(
        host.shared_data("settings").as_deref(),
        Some(&br#""mode=strict""#[..])
    );
    assert!(host.logs(LogLevel::Error).is_empty());
}

#[test]
fn plugin_task_error_is_logged_naming_the_plugin() {
    struct Fetcher;
    impl Plugin for Fetcher {
        type Config = ();
        type Filter = FetcherFilter;
        fn configure(_: (), cx: &PluginContext) -> Result<Self, Error> {
            cx.spawn(async {
                Request::get("config", "/settings")
                    .send()?
                    .await?
                    .error_for_status()?;
                Ok(())
            });
            Ok(Fetcher)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> FetcherFilter {
            FetcherFilter
        }
    }
    struct FetcherFilter;
    impl HttpFilter for FetcherFilter {}

    let host = Host::builder()
        .cluster("config")
        .plugin_name("fetcher")
        .build();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<Fetcher>)
        .unwrap()
        .configure("")
        .unwrap();
    plugin.calls()[0].refuse();
    assert_eq!(
        host.logs(LogLevel::Error),
        ["fetcher: task failed: call to cluster `config` answered with status 503"]
    );
}

#[test]
fn sleep_completes_on_the_first_tick_after_the_clock_passed_its_deadline() {
    struct Sleeper;
    impl Plugin for Sleeper {
        type Config = ();
        type Filter = SleeperFilter;
        fn configure(_: (), cx: &PluginContext) -> Result<Self, Error> {
            cx.set_tick_period(Duration::from_secs(1))?;
            cx.spawn(async {
                pwf::info!("sleeping");
                pwf::timer::sleep(Duration::from_secs(5)).await;
                pwf::info!("woke");
                Ok(())
            });
            Ok(Sleeper)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> SleeperFilter {
            SleeperFilter
        }
    }
    struct SleeperFilter;
    impl HttpFilter for SleeperFilter {}

    let host = host();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<Sleeper>)
        .unwrap()
        .configure("")
        .unwrap();
    assert_eq!(plugin.tick_period(), Some(Duration::from_secs(1)));
    assert_eq!(host.logs(LogLevel::Info), ["sleeping"]);
    plugin.tick().unwrap();
    host.advance(Duration::from_millis(4_999));
    plugin.tick().unwrap();
    assert_eq!(host.logs(LogLevel::Info), ["sleeping"]);
    host.advance(Duration::from_millis(2));
    assert_eq!(
        host.logs(LogLevel::Info),
        ["sleeping"],
        "woke without a tick"
    );
    plugin.tick().unwrap();
    assert_eq!(host.logs(LogLevel::Info), ["sleeping", "woke"]);
}

#[test]
fn interval_ticks_once_per_period_and_skips_missed_ticks() {
    struct Ticker;
    impl Plugin for Ticker {
        type Config = ();
        type Filter = TickerFilter;
        fn configure(_: (), cx: &PluginContext) -> Result<Self, Error> {
            cx.spawn(async {
                let mut interval = pwf::timer::interval(Duration::from_secs(2));
                for n in 1.. {
                    interval.tick().await;
                    pwf::info!("tick {n}");
                }
                Ok(())
            });
            Ok(Ticker)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> TickerFilter {
            TickerFilter
        }
    }
    struct TickerFilter;
    impl HttpFilter for TickerFilter {}

    let host = host();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<Ticker>)
        .unwrap()
        .configure("")
        .unwrap();
    plugin.tick().unwrap();
    assert!(host.logs(LogLevel::Info).is_empty());
    host.advance(Duration::from_secs(2));
    plugin.tick().unwrap();
    assert_eq!(host.logs(LogLevel::Info), ["tick 1"]);
    host.advance(Duration::from_secs(7));
    plugin.tick().unwrap();
    plugin.tick().unwrap();
    assert_eq!(host.logs(LogLevel::Info), ["tick 1", "tick 2"]);
    host.advance(Duration::from_secs(2));
    plugin.tick().unwrap();
    assert_eq!(host.logs(LogLevel::Info), ["tick 1", "tick 2", "tick 3"]);
}

#[test]
fn task_woken_by_another_streams_call_resumes_its_own_stream() {
    use std::cell::RefCell;

    use futures::future::{FutureExt, Shared};
    use pwf::PendingCall;

    /// Streams share one in-flight token fetch: the first dispatches it,
    /// later ones await the same call.
    struct Coalescing {
        fetch: RefCell<Option<Shared<PendingCall>>>,
    }
    impl Plugin for Coalescing {
        type Config = ();
        type Filter = CoalescingFilter;
        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Coalescing {
                fetch: RefCell::new(None),
            })
        }
        fn filter(plugin: &Rc<Self>, _: &Http) -> CoalescingFilter {
            CoalescingFilter {
                plugin: plugin.clone(),
            }
        }
    }
    struct CoalescingFilter {
        plugin: Rc<Coalescing>,
    }
    impl HttpFilter for CoalescingFilter {
        fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
            let fetch = {
                let mut slot = self.plugin.fetch.borrow_mut();
                match &*slot {
                    Some(fetch) => fetch.clone(),
                    None => slot
                        .insert(Request::get("a", "/token").send()?.shared())
                        .clone(),
                }
            };
            let handle = http.clone();
            Ok(http.spawn(async move {
                let answer = fetch.await?;
                handle.set_request_header("x-token", answer.body())?;
                Ok(Outcome::Continue)
            }))
        }
    }

    let host = host();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<Coalescing>)
        .unwrap()
        .configure("")
        .unwrap();
    let first = plugin.open_stream();
    let second = plugin.open_stream();
    assert_eq!(first.request_headers(request(&[]), true), HostAction::Pause);
    assert_eq!(
        second.request_headers(request(&[]), true),
        HostAction::Pause
    );
    assert!(second.calls().is_empty());
    assert_eq!(
        first.calls()[0].respond(200, RESPONSE, "t1"),
        Delivery::Delivered
    );
    for stream in [&first, &second] {
        assert_eq!(stream.request_header("x-token").as_deref(), Some("t1"));
        let resumes = stream.resumes();
        assert_eq!(resumes.len(), 1, "{stream:?}");
        assert_eq!(resumes[0].direction, Direction::Request);
    }
}

/// A plugin task that logs what it receives on a channel: configure sends
/// `configured`, a stream's request headers phase sends its path, its
/// `on_log` sends `log`.
mod collector {
    use super::*;

    use futures::channel::mpsc;
    use futures::StreamExt;

    pub(super) struct Collector {
        sender: mpsc::UnboundedSender<String>,
    }

    impl Plugin for Collector {
        type Config = ();
        type Filter = CollectorFilter;

        fn configure(_: (), cx: &PluginContext) -> Result<Self, Error> {
            let (sender, mut received) = mpsc::unbounded::<String>();
            cx.spawn(async move {
                while let Some(item) = received.next().await {
                    pwf::info!("collected {item}");
                }
                Ok(())
            });
            sender.unbounded_send("configured".to_owned())?;
            Ok(Collector { sender })
        }

        fn filter(plugin: &Rc<Self>, _: &Http) -> CollectorFilter {
            CollectorFilter {
                plugin: plugin.clone(),
            }
        }
    }

    pub(super) struct CollectorFilter {
        plugin: Rc<Collector>,
    }

    impl HttpFilter for CollectorFilter {
        fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
            let path = http.request_header(":path")?.unwrap_or_default();
            self.plugin.sender.unbounded_send(path.to_string())?;
            Ok(Action::Continue)
        }

        fn on_log(&mut self, _: &Http) {
            let _ = self.plugin.sender.unbounded_send("log".to_owned());
        }
    }
}

use collector::Collector;

fn collector(host: &Host) -> pwf_test::Plugin {
    host.start_vm_with_root(pwf::root_context::<Collector>)
        .unwrap()
        .configure("")
        .unwrap()
}

/// A task woken in `configure` waited, unpolled, for a later call response or tick.
#[test]
fn plugin_task_woken_in_configure_runs_before_configure_returns() {
    let host = host();
    collector(&host);
    assert_eq!(host.logs(LogLevel::Info), ["collected configured"]);
}

/// A task woken from a stream phase waited, unpolled, for a later call response or tick.
#[test]
fn plugin_task_woken_from_a_stream_phase_runs_before_the_phase_returns() {
    let host = host();
    let stream = collector(&host).open_stream();
    let request = [
        (":method", "GET"),
        (":path", "/login"),
        (":authority", "app"),
    ];
    assert_eq!(stream.request_headers(request, true), HostAction::Continue);
    assert_eq!(
        host.logs(LogLevel::Info),
        ["collected configured", "collected /login"]
    );
}

/// A task woken from `on_log` waited, unpolled, for a later call response or tick.
#[test]
fn plugin_task_woken_from_on_log_runs_before_on_log_returns() {
    let host = host();
    let stream = collector(&host).open_stream();
    stream.request_headers(request(&[]), true);
    stream.end().unwrap();
    assert_eq!(
        host.logs(LogLevel::Info),
        ["collected configured", "collected /", "collected log"]
    );
}
