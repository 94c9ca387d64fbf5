//! Logging through the host.
//!
//! The macros check the host's level first, so a line Envoy would drop costs
//! one host call and no formatting.

pub use crate::host::LogLevel;

use crate::host;

/// Logs `message` at `level`. A host failure to log is ignored: there is
/// nowhere left to report it.
pub fn log(level: LogLevel, message: &str) {
    let _ = host::log(level, message);
}

/// Whether Envoy keeps lines at `level` (its `wasm` logger's level).
///
/// When the host cannot say, every level counts as enabled.
pub fn enabled(level: LogLevel) -> bool {
    host::log_level().map_or(true, |current| level >= current)
}

#[doc(hidden)]
pub fn __log_fmt(level: LogLevel, args: std::fmt::Arguments<'_>) {
    if enabled(level) {
        match args.as_str() {
            Some(message) => log(level, message),
            None => log(level, &args.to_string()),
        }
    }
}

/// Logs at a level: `pwf::log!(LogLevel::Info, "shared value: {}", n)`.
#[macro_export]
macro_rules! log {
    ($level:expr, $($arg:tt)+) => {
        $crate::log::__log_fmt($level, ::core::format_args!($($arg)+))
    };
}

/// Logs at trace level, formatting only if Envoy keeps the line.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log!($crate::log::LogLevel::Trace, $($arg)+) };
}

/// Logs at debug level, formatting only if Envoy keeps the line.
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
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log!($crate::log::LogLevel::Warn, $($arg)+) };
}

/// Logs at error level, formatting only if Envoy keeps the line.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log!($crate::log::LogLevel::Error, $($arg)+) };
}

/// Logs at critical level, formatting only if Envoy keeps the line.
#[macro_export]
macro_rules! critical {
    ($($arg:tt)+) => { $crate::log!($crate::log::LogLevel::Critical, $($arg)+) };
}
