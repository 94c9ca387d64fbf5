//! Handles, tasks and calls used across streams: a handle kept by one stream
//! and used from another stream's phase or from a tick, a task woken by
//! another stream, helper tasks, tasks that never stop waking, and futures
//! polled outside pwf's executor.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::channel::oneshot;
use pwf::{
    Action, CallErrorKind, DispatchGroup, Error, Http, HttpFilter, Outcome, Plugin, PluginContext,
    Request,
};
use pwf_test::{Action as HostAction, Delivery, Direction, Host, LogLevel};

const RESPONSE: [(&str, &str); 1] = [(":status", "200")];

fn request(role: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        (":method", "GET"),
        (":path", "/"),
        (":authority", "app"),
        ("x-role", role),
    ]
}

thread_local! {
    /// A stream's handle, kept by its phase for another stream (or a tick) to use.
    static PARKED: RefCell<Option<Http>> = const { RefCell::new(None) };
    /// The sending half of a channel a waiting task listens on.
    static SIGNAL: RefCell<Option<oneshot::Sender<()>>> = const { RefCell::new(None) };
    /// How many times the spinning future was polled.
    static SPINS: Cell<u64> = const { Cell::new(0) };
    /// A group one stream dispatched and another awaits.
    static GROUP: RefCell<Option<DispatchGroup>> = const { RefCell::new(None) };
}

/// Reports what the VM's runtime holds, from a stream's phase or a tick.
fn report() {
    pwf::info!(
        "pending_calls={} live_tasks={}",
        pwf::runtime::pending_calls(),
        pwf::runtime::live_tasks()
    );
}

/// The number in the last info line that starts with `prefix`.
fn last_number(host: &Host, prefix: &str) -> u64 {
    host.logs(LogLevel::Info)
        .iter()
        .rev()
        .find_map(|line| line.strip_prefix(prefix)?.parse().ok())
        .unwrap_or_else(|| panic!("no `{prefix}` line in {:?}", host.logs(LogLevel::Info)))
}

/// Yields once: wakes itself and returns `Pending`, then is ready.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Never finishes, and wakes itself at every poll. Gives up after a million
/// polls, so that an executor without a budget still returns (late).
struct Spin;

impl Future for Spin {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        SPINS.with(|spins| spins.set(spins.get() + 1));
        if SPINS.with(Cell::get) >= 1_000_000 {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Polls `future` once, outside any executor, with a waker that does nothing.
fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    let waker = futures::task::noop_waker();
    Pin::new(future).poll(&mut Context::from_waker(&waker))
}

/// A plugin whose filter does what the request's `x-role` header says.
struct Roles;

impl Plugin for Roles {
    type Config = ();
    type Filter = RolesFilter;

    fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
        Ok(Roles)
    }

    fn filter(_: &Rc<Self>, _: &Http) -> RolesFilter {
        RolesFilter
    }

    fn on_tick(&self, _: &PluginContext) {
        if let Some(parked) = PARKED.with(|parked| parked.borrow_mut().take()) {
            let released = parked
                .set_request_header("x-released-by", "tick")
                .and_then(|()| parked.resume());
            pwf::info!("released from a tick: {}", released.is_ok());
        }
        pwf::info!("spins={}", SPINS.with(Cell::get));
    }
}

struct RolesFilter;

impl HttpFilter for RolesFilter {
    fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        let role = http.request_header("x-role")?.unwrap_or_default();
        match role.as_bytes() {
            // Keeps its handle for another stream to finish it.
            b"park" => {
                PARKED.with(|parked| *parked.borrow_mut() = Some(http.clone()));
                Ok(Action::Pause)
            }
            // Finishes the parked stream with its kept handle.
            b"release" => {
                if let Some(parked) = PARKED.with(|parked| parked.borrow_mut().take()) {
                    parked.set_request_header("x-released-by", "another stream")?;
                    parked.resume()?;
                }
                Ok(Action::Continue)
            }
            // Waits for a signal from another stream, then asks `a`.
            b"wait-then-call" => {
                let (sender, receiver) = oneshot::channel();
                SIGNAL.with(|signal| *signal.borrow_mut() = Some(sender));
                let handle = http.clone();
                Ok(http.spawn(async move {
                    receiver.await?;
                    let answer = Request::get("a", "/after-signal").send()?.await?;
                    handle.set_request_header("x-answer", answer.status().to_string())?;
                    Ok(Outcome::Continue)
                }))
            }
            // Wakes the waiting task from inside this stream's phase.
            b"signal" => {
                if let Some(sender) = SIGNAL.with(|signal| signal.borrow_mut().take()) {
                    let _ = sender.send(());
                }
                Ok(Action::Continue)
            }
            // A task that yields once and then lets the stream go on.
            b"yield-once" => Ok(http.spawn(async {
                YieldOnce(false).await;
                Ok(Outcome::Continue)
            })),
            // A task whose helper finishes first.
            b"helper-first" => {
                let handle = http.clone();
                Ok(http.spawn(async move {
                    handle.spawn(async { Ok(Outcome::Continue) });
                    let answer = Request::get("a", "/slow").send()?.await?;
                    handle.set_request_header("x-answer", answer.status().to_string())?;
                    Ok(Outcome::Continue)
                }))
            }
            // A task that never stops waking itself.
            b"spin" => {
                http.spawn(async {
                    Spin.await;
                    Ok(Outcome::Continue)
                });
                Ok(Action::Continue)
            }
            // Polls a call outside pwf's executor, as a blocking executor would.
            b"block-on-call" => {
                let mut call = Request::get("a", "/blocked").send()?;
                match poll_once(&mut call) {
                    Poll::Ready(Err(error)) => {
                        let not_in_task = matches!(error.kind(), CallErrorKind::NotInTask);
                        pwf::info!("not in a task: {not_in_task}: {error}");
                    }
                    Poll::Ready(Ok(_)) => pwf::info!("answered"),
                    Poll::Pending => pwf::info!("pending"),
                }
                Ok(Action::Continue)
            }
            // Polls a group outside pwf's executor.
            b"block-on-group" => {
                let mut group = DispatchGroup::new();
                group.dispatch(Request::get("a", "/blocked"))?;
                match poll_once(&mut group) {
                    Poll::Ready(results) => match &results[0] {
                        Err(error) => pwf::info!("group: {error}"),
                        Ok(_) => pwf::info!("group answered"),
                    },
                    Poll::Pending => pwf::info!("group pending"),
                }
                Ok(Action::Continue)
            }
            // Polls a sleep outside pwf's executor.
            b"block-on-sleep" => {
                let mut sleep = pwf::timer::sleep(std::time::Duration::from_secs(1));
                let ready = poll_once(&mut sleep).is_ready();
                pwf::info!("sleep ready: {ready}");
                Ok(Action::Continue)
            }
            // Sleeps in a stream task, though the plugin has no tick period.
            b"sleep-in-task" => Ok(http.spawn(async {
                pwf::timer::sleep(std::time::Duration::from_secs(1)).await;
                Ok(Outcome::Continue)
            })),
            // Dispatches a group and leaves it for another stream.
            b"hand-off-group" => {
                let mut group = DispatchGroup::new();
                group.dispatch(Request::get("a", "/group"))?;
                GROUP.with(|slot| *slot.borrow_mut() = Some(group));
                Ok(Action::Continue)
            }
            // Awaits the group another stream dispatched.
            b"await-group" => {
                let Some(group) = GROUP.with(|slot| slot.borrow_mut().take()) else {
                    return Ok(Action::Continue);
                };
                let handle = http.clone();
                Ok(http.spawn(async move {
                    let results = group.await;
                    let seen = match &results[0] {
                        Ok(response) => format!("status {}", response.status()),
                        Err(error) => format!("error: {error}"),
                    };
                    handle.set_request_header("x-group", seen)?;
                    Ok(Outcome::Continue)
                }))
            }
            b"report" => {
                report();
                Ok(Action::Continue)
            }
            _ => Ok(Action::Continue),
        }
    }
}

fn host() -> Host {
    Host::builder().cluster("a").build()
}

fn start(host: &Host) -> pwf_test::Plugin {
    host.start_vm_with_root(pwf::root_context::<Roles>)
        .unwrap()
        .configure("")
        .unwrap()
}

#[test]
fn a_kept_handle_acts_on_its_own_stream_from_another_streams_phase() {
    let host = host();
    let plugin = start(&host);
    let parked = plugin.open_stream();
    assert_eq!(
        parked.request_headers(request("park"), true),
        HostAction::Pause
    );

    let other = plugin.open_stream();
    assert_eq!(
        other.request_headers(request("release"), true),
        HostAction::Continue
    );

    assert_eq!(
        parked.request_header("x-released-by").as_deref(),
        Some("another stream")
    );
    assert_eq!(parked.resumes().len(), 1, "the parked stream resumes");
    assert_eq!(other.request_header("x-released-by"), None);
    assert!(
        other.resumes().is_empty(),
        "the releasing stream is untouched"
    );
    assert_eq!(plugin.failure(), None);
}

#[test]
fn a_kept_handle_acts_on_its_own_stream_from_a_tick() {
    let host = host();
    let plugin = start(&host);
    let parked = plugin.open_stream();
    assert_eq!(
        parked.request_headers(request("park"), true),
        HostAction::Pause
    );

    plugin.tick().unwrap();

    assert_eq!(
        parked.request_header("x-released-by").as_deref(),
        Some("tick")
    );
    assert!(parked.resumed(Direction::Request).is_some());
    assert!(host
        .logs(LogLevel::Info)
        .contains(&"released from a tick: true".to_owned()));
}

#[test]
fn a_call_sent_inside_another_streams_callback_reaches_its_task_after_that_stream_ends() {
    let host = host();
    let plugin = start(&host);
    let waiting = plugin.open_stream();
    assert_eq!(
        waiting.request_headers(request("wait-then-call"), true),
        HostAction::Pause
    );

    // The signal wakes the waiting task inside this stream's phase, where it
    // sends its call; then this stream ends.
    let signalling = plugin.open_stream();
    signalling.request_headers(request("signal"), true);
    signalling.end().unwrap();

    let calls = waiting.calls();
    assert_eq!(calls.len(), 1, "the waiting task sent its call");
    assert_eq!(calls[0].header(":path").as_deref(), Some("/after-signal"));
    assert_eq!(calls[0].respond(200, RESPONSE, ""), Delivery::Delivered);

    assert_eq!(waiting.request_header("x-answer").as_deref(), Some("200"));
    assert_eq!(waiting.resumes().len(), 1);
    plugin
        .open_stream()
        .request_headers(request("report"), true);
    assert_eq!(
        host.logs(LogLevel::Info).last().map(String::as_str),
        Some("pending_calls=0 live_tasks=0")
    );
}

#[test]
fn a_stream_that_ends_with_a_call_in_flight_leaves_nothing_behind() {
    let host = host();
    let plugin = start(&host);
    let waiting = plugin.open_stream();
    waiting.request_headers(request("helper-first"), true);
    waiting.end().unwrap();

    // The answer still comes (the call outlives the stream in Envoy) and
    // finds nothing to touch.
    let calls = waiting.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].respond(200, RESPONSE, ""), Delivery::Delivered);
    plugin
        .open_stream()
        .request_headers(request("report"), true);
    assert_eq!(
        host.logs(LogLevel::Info).last().map(String::as_str),
        Some("pending_calls=0 live_tasks=0")
    );
    assert_eq!(plugin.failure(), None);
}

#[test]
fn a_task_that_yields_once_lets_the_phase_continue_without_resuming() {
    let host = host();
    let plugin = start(&host);
    let stream = plugin.open_stream();
    assert_eq!(
        stream.request_headers(request("yield-once"), true),
        HostAction::Continue
    );
    assert!(
        stream.resumes().is_empty(),
        "a stream that never paused is not resumed: {:?}",
        stream.resumes()
    );
}

#[test]
fn a_helper_task_that_finishes_first_does_not_resume_the_stream() {
    let host = host();
    let plugin = start(&host);
    let stream = plugin.open_stream();
    assert_eq!(
        stream.request_headers(request("helper-first"), true),
        HostAction::Pause
    );
    assert!(
        stream.resumes().is_empty(),
        "resumed while its deciding task waits: {:?}",
        stream.resumes()
    );

    let calls = stream.calls();
    assert_eq!(calls[0].respond(200, RESPONSE, ""), Delivery::Delivered);
    assert_eq!(stream.request_header("x-answer").as_deref(), Some("200"));
    assert_eq!(
        stream.resumes().len(),
        1,
        "resumed once, by its deciding task"
    );
    assert_eq!(stream.local_response(), None);
}

#[test]
fn a_task_that_always_wakes_itself_cannot_hold_a_callback() {
    let host = host();
    let plugin = start(&host);
    let stream = plugin.open_stream();
    assert_eq!(
        stream.request_headers(request("spin"), true),
        HostAction::Continue
    );
    plugin.tick().unwrap();
    let after_phase = last_number(&host, "spins=");
    assert!(
        (1..1_000).contains(&after_phase),
        "polled {after_phase} times in one callback"
    );

    // What is still ready runs at the next callback, whichever it is: here,
    // the tick that reported.
    plugin.tick().unwrap();
    let after_tick = last_number(&host, "spins=");
    assert!(
        after_tick > after_phase && after_tick < 2 * after_phase + 1_000,
        "{after_phase} then {after_tick}"
    );
    assert_eq!(plugin.failure(), None);
}

#[test]
fn a_call_polled_outside_the_executor_fails_at_once_with_a_message() {
    let host = host();
    let plugin = start(&host);
    let stream = plugin.open_stream();
    assert_eq!(
        stream.request_headers(request("block-on-call"), true),
        HostAction::Continue
    );
    let logs = host.logs(LogLevel::Info);
    let line = logs.last().unwrap();
    assert!(line.starts_with("not in a task: true: "), "{line}");
    assert!(line.contains("Http::spawn"), "{line}");
}

#[test]
fn a_sleep_polled_outside_the_executor_is_refused_with_a_message() {
    let host = host();
    let plugin = start(&host);
    plugin
        .open_stream()
        .request_headers(request("block-on-sleep"), true);
    assert_eq!(
        host.logs(LogLevel::Info).last().map(String::as_str),
        Some("sleep ready: true")
    );
    let errors = host.logs(LogLevel::Error);
    assert!(
        errors
            .iter()
            .any(|line| line.contains("PluginContext::spawn")),
        "{errors:?}"
    );
}

#[test]
fn a_sleep_without_a_tick_period_is_reported() {
    let host = host();
    let plugin = start(&host);
    let stream = plugin.open_stream();
    stream.request_headers(request("sleep-in-task"), true);
    let errors = host.logs(LogLevel::Error);
    assert!(
        errors.iter().any(|line| line.contains("set_tick_period")),
        "{errors:?}"
    );
}

#[test]
fn a_group_awaited_by_another_stream_is_answered_after_its_sender_ends() {
    let host = host();
    let plugin = start(&host);
    let sender = plugin.open_stream();
    let waiter = plugin.open_stream();
    sender.request_headers(request("hand-off-group"), true);
    assert_eq!(
        waiter.request_headers(request("await-group"), true),
        HostAction::Pause
    );
    let call = sender.calls().remove(0);

    sender.end().unwrap();
    call.respond(200, RESPONSE, "");

    let seen = waiter.request_header("x-group");
    assert!(seen.is_some(), "the waiting stream hangs");
    assert_eq!(waiter.resumes().len(), 1);
    assert_eq!(plugin.failure(), None);
}

#[test]
fn a_group_polled_outside_the_executor_fails_at_once_with_a_message() {
    let host = host();
    let plugin = start(&host);
    plugin
        .open_stream()
        .request_headers(request("block-on-group"), true);
    let logs = host.logs(LogLevel::Info);
    let line = logs.last().unwrap();
    assert!(
        line.starts_with("group: call to cluster `a` awaited outside"),
        "{line}"
    );
    assert!(line.contains("Http::spawn"), "{line}");
}
