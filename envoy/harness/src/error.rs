//! The one error type of the harness.

use std::fmt;

/// What went wrong, in words meant for the person reading a failed test: what was attempted,
/// what happened, and (where it helps) the tail of Envoy's log.
///
/// `Debug` prints the same text as `Display`, so a test returning
/// `Result<(), envoy_harness::Error>` fails with a readable message.
pub struct Error {
    message: String,
}

/// `Result` with the harness's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
        }
    }

    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(doing: impl fmt::Display, e: std::io::Error) -> Error {
        Error::new(format!("{doing}: {e}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
