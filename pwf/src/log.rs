//! Logging through the host.
//!
//! The macros check the host's level first, so a line Envoy would drop costs
//! one host call and no formatting.

pub use crate::host::LogLevel;

use crate::host;

/// Logs `message` at `level`. A host failure to log is ignored: there is
/// nowhere left to report it.
///
/// ```no_run
/// use pwf::log::{log, LogLevel};
///
/// log(LogLevel::Info, "cache warmed");
/// ```
pub fn log(level: LogLevel, message: &str) {
    let _ = host::log(level, message);
}

/// Whether Envoy keeps lines at `level` (its `wasm` logger's level).
///
/// When the host cannot say, every level counts as enabled.
///
/// ```no_run
/// use pwf::log::{enabled, LogLevel};
///
/// fn on_request_headers(http: &pwf::Http) -> Result<(), pwf::Error> {
///     // Collect the headers only when the line would be kept.
///     if enabled(LogLevel::Debug) {
///         let headers = http.request_headers()?;
///         pwf::debug!("{} request headers", headers.len());
///     }
///     Ok(())
/// }
/// ```
pub fn enabled(level: LogLevel) -> bool {
    host::log_level().map_or(true, |current| level >= current)
}

#[doc(hidden)]
pub fn __log_fmt(level: LogLevel, args: std::fmt::Arguments<'_>) {
    if enabled(level) {
        match args.as_str() {
            Some(message) => log(level, message),
            None => log(level, &std::fmt::format(args)),
        }
    }
}

/// Logs at a level: `pwf::log!(LogLevel::Info, "shared value: {}", n)`.
///
/// ```no_run
/// use pwf::LogLevel;
///
/// fn report(level: LogLevel, n: u64) {
///     pwf::log!(level, "shared value: {n}");
/// }
/// ```
#[macro_export]
macro_rules! log {
    ($level:expr, $($arg:tt)+) => {
        $crate::log::__log_fmt($level, ::core::format_args!($($arg)+))
    };
}

/// Logs at trace level, formatting only if Envoy keeps the line.
///
/// ```no_run
/// let token = 42;
/// pwf::trace!("dispatched call {token}");
/// ```
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log!($crate::log::LogLevel::Trace, $($arg)+) };
}

/// Logs at debug level, formatting only if Envoy keeps the line.
///
/// ```no_run
/// let path = "/login";
/// pwf::debug!("request to {path}");
/// ```
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log!($crate::log::LogLevel::Debug, $($arg)+) };
}

/// Logs at info level, formatting only if Envoy keeps the line.
///
/// ```no_run
/// let n = 3;
/// pwf::info!("shared value: {n}");
/// ```
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log!($crate::log::LogLevel::Info, $($arg)+) };
}

/// Logs at warn level, formatting only if Envoy keeps the line.
///
/// ```no_run
/// let attempts = 64;
/// pwf::warn!("gave up after {attempts} attempts");
/// ```
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log!($crate::log::LogLevel::Warn, $($arg)+) };
}

/// Logs at error level, formatting only if Envoy keeps the line.
///
/// ```no_run
/// fn tag(http: &pwf::Http) {
///     if let Err(error) = http.set_response_header("x-cache", "miss") {
///         pwf::error!("could not tag the response: {error}");
///     }
/// }
/// ```
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log!($crate::log::LogLevel::Error, $($arg)+) };
}

/// Logs at critical level, formatting only if Envoy keeps the line.
///
/// ```no_run
/// let plugin = "auth";
/// pwf::critical!("{plugin}: shared state is corrupt");
/// ```
#[macro_export]
macro_rules! critical {
    ($($arg:tt)+) => { $crate::log!($crate::log::LogLevel::Critical, $($arg)+) };
}

/// Lines of one kind that may repeat at the rate of requests, such as a call
/// refused under overload: the first `burst` of each `interval` are logged,
/// the rest are only counted, and the first line of the next interval is
/// preceded by one summary of how many were left out. Every line, logged or
/// not, increments the counter metric `name` (`wasmcustom.<name>` in
/// Envoy's `/stats`), so the metric counts them all.
///
/// Declare one per kind of line, as a `static`; the state is per VM.
///
/// ```no_run
/// use std::time::Duration;
/// use pwf::log::{Limited, LogLevel};
///
/// static REFUSED: Limited = Limited::new("auth.refused", 10, Duration::from_secs(10));
///
/// fn on_refused(error: &pwf::CallError) {
///     REFUSED.log(LogLevel::Error, format_args!("{error}"));
/// }
/// ```
///
/// After 10 lines in an interval the rest are left out; the first line after
/// the interval ends comes after
/// `auth.refused: 4711 more lines like the one above were not logged in the last 10s (the counter auth.refused counts every one)`.
#[derive(Debug)]
pub struct Limited {
    name: &'static str,
    burst: u32,
    interval_nanos: u64,
}

/// Where one kind of line stands in this VM.
struct LimitState {
    name: &'static str,
    /// When the current interval began, in host nanoseconds.
    since: u64,
    /// Lines logged in the current interval.
    logged: u32,
    /// Lines left out in the current interval.
    left_out: u64,
    /// The counter's id, once defined; `None` if the host refused it.
    metric: Option<Option<u32>>,
}

thread_local! {
    static LIMITS: std::cell::RefCell<Vec<LimitState>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What [`Limited::log`] does with one line, decided without a host call.
enum Verdict {
    Log { summary: Option<(u64, u64)> },
    LeaveOut,
}

impl Limited {
    /// At most `burst` lines every `interval`; the counter metric `name`
    /// counts every line.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// static FAILED: pwf::log::Limited =
    ///     pwf::log::Limited::new("calls.failed", 5, Duration::from_secs(30));
    /// assert_eq!(FAILED.name(), "calls.failed");
    /// ```
    pub const fn new(name: &'static str, burst: u32, interval: std::time::Duration) -> Limited {
        Limited {
            name,
            burst,
            interval_nanos: interval.as_nanos() as u64,
        }
    }

    /// The counter metric's name.
    ///
    /// ```
    /// # use std::time::Duration;
    /// static LIMITED: pwf::log::Limited = pwf::log::Limited::new("x", 1, Duration::from_secs(1));
    /// assert_eq!(LIMITED.name(), "x");
    /// ```
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Counts the line, and logs it at `level` unless `burst` lines were
    /// logged in this interval already.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// use pwf::log::{Limited, LogLevel};
    ///
    /// static DROPPED: Limited = Limited::new("queue.dropped", 10, Duration::from_secs(60));
    /// DROPPED.log(LogLevel::Warn, format_args!("queue full: entry dropped"));
    /// ```
    pub fn log(&self, level: LogLevel, args: std::fmt::Arguments<'_>) {
        let now = host::current_time_nanos().unwrap_or(0);
        let (verdict, metric) = LIMITS.with(|limits| {
            let mut limits = limits.borrow_mut();
            let index = match limits.iter().position(|state| state.name == self.name) {
                Some(index) => index,
                None => {
                    limits.push(LimitState {
                        name: self.name,
                        since: now,
                        logged: 0,
                        left_out: 0,
                        metric: None,
                    });
                    limits.len() - 1
                }
            };
            let state = &mut limits[index];
            let mut summary = None;
            if now.saturating_sub(state.since) >= self.interval_nanos {
                if state.left_out > 0 {
                    summary = Some((state.left_out, now.saturating_sub(state.since)));
                }
                state.since = now;
                state.logged = 0;
                state.left_out = 0;
            }
            let verdict = if state.logged < self.burst {
                state.logged += 1;
                Verdict::Log { summary }
            } else {
                state.left_out += 1;
                Verdict::LeaveOut
            };
            (verdict, state.metric)
        });
        // Host calls only now, with no borrow held.
        let metric = match metric {
            Some(metric) => metric,
            None => {
                let metric =
                    host::define_metric(proxy_wasm::types::MetricType::Counter, self.name).ok();
                LIMITS.with(|limits| {
                    if let Some(state) =
                        limits.borrow_mut().iter_mut().find(|s| s.name == self.name)
                    {
                        state.metric = Some(metric);
                    }
                });
                metric
            }
        };
        if let Some(id) = metric {
            let _ = host::increment_metric(id, 1);
        }
        if let Verdict::Log { summary } = verdict {
            if let Some((left_out, nanos)) = summary {
                __log_fmt(
                    level,
                    format_args!(
                        "{}: {left_out} more lines like the one above were not logged in the last {}s (the counter {} counts every one)",
                        self.name,
                        nanos / 1_000_000_000,
                        self.name
                    ),
                );
            }
            __log_fmt(level, args);
        }
    }
}
