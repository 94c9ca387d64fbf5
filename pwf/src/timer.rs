//! Sleeping in plugin-wide tasks, on the host's ticks.
//!
//! Envoy ticks only the plugin's root context, never a stream. So
//! [`sleep`] and [`Interval`] are for tasks spawned with
//! [`PluginContext::spawn`](crate::PluginContext::spawn): they wake on the
//! first tick at or after their deadline, so their resolution is the tick
//! period the plugin set with
//! [`PluginContext::set_tick_period`](crate::PluginContext::set_tick_period).
//! A stream that must wait uses an HTTP call's timeout instead.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use crate::executor;
use crate::log::{self, LogLevel};
use crate::properties;

thread_local! {
    static TIMERS: RefCell<Vec<(SystemTime, Waker)>> = const { RefCell::new(Vec::new()) };
    /// Whether the plugin set a tick period (no tick, no timer ever fires).
    static TICKING: Cell<bool> = const { Cell::new(false) };
    /// Whether a sleep without ticks was reported yet (once per VM).
    static REPORTED: Cell<bool> = const { Cell::new(false) };
}

/// Records whether the host now ticks the plugin.
pub(crate) fn ticking(on: bool) {
    TICKING.with(|ticking| ticking.set(on));
}

/// Logs, once per VM, a sleep that cannot end as things are.
#[cold]
fn report_once(message: &str) {
    if !REPORTED.with(|reported| reported.replace(true)) {
        log::log(LogLevel::Error, message);
    }
}

/// Wakes every timer whose deadline has passed. Runs on each tick once a timer was armed.
fn fire() {
    let Ok(now) = properties::now() else {
        return;
    };
    let due: Vec<Waker> = TIMERS.with(|timers| {
        let mut timers = timers.borrow_mut();
        let mut due = Vec::new();
        timers.retain(|(deadline, waker)| {
            if *deadline <= now {
                due.push(waker.clone());
                false
            } else {
                true
            }
        });
        due
    });
    for waker in due {
        waker.wake();
    }
}

/// A future that completes at the first tick at or after `deadline`.
///
/// ```no_run
/// use std::time::Duration;
///
/// async fn retry_later() -> Result<(), pwf::Error> {
///     pwf::timer::sleep(Duration::from_secs(5)).await;
///     pwf::Request::get("config", "/flags").send()?.await?;
///     Ok(())
/// }
/// ```
#[derive(Debug)]
#[must_use = "a Sleep does nothing unless awaited"]
pub struct Sleep {
    deadline: Option<SystemTime>,
}

/// Waits for `duration`, measured by the host's clock, in a plugin-wide task.
///
/// ```no_run
/// use std::time::Duration;
/// use pwf::{Error, PluginContext};
///
/// fn start(cx: &PluginContext) -> Result<(), Error> {
///     cx.set_tick_period(Duration::from_millis(100))?;
///     cx.spawn(async {
///         pwf::timer::sleep(Duration::from_secs(1)).await;
///         pwf::info!("a second later");
///         Ok(())
///     });
///     Ok(())
/// }
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    Sleep {
        deadline: properties::now()
            .ok()
            .and_then(|now| now.checked_add(duration)),
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Without a clock there is no deadline to wait for.
        let Some(deadline) = self.deadline else {
            return Poll::Ready(());
        };
        if !executor::is_running() {
            // A blocking executor would wait forever: ticks come only after
            // the running callback returns.
            log::log(
                LogLevel::Error,
                "timer::sleep polled outside pwf's executor, where it cannot wait: \
                 await it in PluginContext::spawn or Http::spawn",
            );
            return Poll::Ready(());
        }
        match properties::now() {
            Ok(now) if now < deadline => {
                if !TICKING.with(Cell::get) {
                    report_once(
                        "timer::sleep waits for ticks, and no tick period is set: \
                         call PluginContext::set_tick_period",
                    );
                }
                TIMERS.with(|timers| {
                    let mut timers = timers.borrow_mut();
                    match timers
                        .iter_mut()
                        .find(|(at, waker)| *at == deadline && waker.will_wake(cx.waker()))
                    {
                        Some(_) => {}
                        None => {
                            timers.push((deadline, cx.waker().clone()));
                            crate::hooks::tick_timers_with(fire);
                        }
                    }
                });
                Poll::Pending
            }
            _ => Poll::Ready(()),
        }
    }
}

/// Ticks every `period`: `interval.tick().await` in a loop.
///
/// ```no_run
/// use std::time::Duration;
///
/// fn start(cx: &pwf::PluginContext) {
///     cx.spawn(async {
///         let mut every_minute = pwf::timer::interval(Duration::from_secs(60));
///         loop {
///             every_minute.tick().await;
///             pwf::info!("still here");
///         }
///     });
/// }
/// ```
#[derive(Debug)]
pub struct Interval {
    period: Duration,
    next: Option<SystemTime>,
}

/// An [`Interval`] whose first tick completes after `period`.
///
/// ```no_run
/// use std::time::Duration;
///
/// async fn refresh() -> Result<(), pwf::Error> {
///     let mut ticks = pwf::timer::interval(Duration::from_secs(30));
///     loop {
///         ticks.tick().await;
///         pwf::Request::get("config", "/flags").send()?.await?;
///     }
/// }
/// ```
pub fn interval(period: Duration) -> Interval {
    Interval { period, next: None }
}

impl Interval {
    /// Waits for the next tick of the interval. Ticks missed while the task
    /// was busy are skipped, not bunched.
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// async fn heartbeat() {
    ///     let mut interval = pwf::timer::interval(Duration::from_secs(1));
    ///     for beat in 1..=3 {
    ///         interval.tick().await;
    ///         pwf::debug!("beat {beat}");
    ///     }
    /// }
    /// ```
    pub async fn tick(&mut self) {
        let now = properties::now().ok();
        let next = match (self.next, now) {
            (Some(next), Some(now)) if next > now => next,
            (_, Some(now)) => now.checked_add(self.period).unwrap_or(now),
            (_, None) => return,
        };
        self.next = next.checked_add(self.period);
        Sleep {
            deadline: Some(next),
        }
        .await;
    }
}
