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
