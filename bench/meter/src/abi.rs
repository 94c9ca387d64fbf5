//! The ABI's log levels, as the bench reports them.

/// A log level, as the ABI numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// 0.
    Trace,
    /// 1.
    Debug,
    /// 2.
    Info,
    /// 3.
    Warn,
    /// 4.
    Error,
    /// 5.
    Critical,
}

impl LogLevel {
    pub(crate) fn from_host(level: pwf_test::LogLevel) -> LogLevel {
        match level {
            pwf_test::LogLevel::Trace => LogLevel::Trace,
            pwf_test::LogLevel::Debug => LogLevel::Debug,
            pwf_test::LogLevel::Info => LogLevel::Info,
            pwf_test::LogLevel::Warn => LogLevel::Warn,
            pwf_test::LogLevel::Error => LogLevel::Error,
            _ => LogLevel::Critical,
        }
    }

    pub(crate) fn to_host(self) -> pwf_test::LogLevel {
        match self {
            LogLevel::Trace => pwf_test::LogLevel::Trace,
            LogLevel::Debug => pwf_test::LogLevel::Debug,
            LogLevel::Info => pwf_test::LogLevel::Info,
            LogLevel::Warn => pwf_test::LogLevel::Warn,
            LogLevel::Error => pwf_test::LogLevel::Error,
            LogLevel::Critical => pwf_test::LogLevel::Critical,
        }
    }
}
