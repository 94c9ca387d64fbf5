//! Errors: host statuses and the error type of filters and tasks.

use std::fmt;

use crate::headers::InvalidHeader;

/// A status returned by the host, as the proxy-wasm ABI numbers them.
///
/// ```
/// use pwf::Status;
///
/// assert_eq!(Status::NotFound.to_string(), "not found");
/// let retry = |status: Status| matches!(status, Status::CasMismatch | Status::Empty);
/// assert!(retry(Status::CasMismatch));
/// assert!(!retry(Status::BadArgument));
/// ```
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// The thing asked for does not exist (a header, a property, a key).
    NotFound,
    /// An argument was refused: an unknown cluster, a missing pseudo-header,
    /// an unknown context.
    BadArgument,
    /// The host could not serialize a value.
    SerializationFailure,
    /// The host could not parse a value.
    ParseFailure,
    /// A queue had nothing to dequeue.
    Empty,
    /// A compare-and-swap lost: the value changed since it was read.
    CasMismatch,
    /// The host failed internally.
    InternalFailure,
    /// The host does not implement the call.
    Unimplemented,
    /// A status this version of pwf does not name.
    Other(u32),
}

impl Status {
    pub(crate) fn from_raw(raw: u32) -> Status {
        match raw {
            1 => Status::NotFound,
            2 => Status::BadArgument,
            3 => Status::SerializationFailure,
            4 => Status::ParseFailure,
            7 => Status::Empty,
            8 => Status::CasMismatch,
            10 => Status::InternalFailure,
            12 => Status::Unimplemented,
            raw => Status::Other(raw),
        }
    }
}

impl Status {
    /// Writes the status as `Display` (`not found`) or as `Debug` (`NotFound`) shows it, from
    /// one table of names.
    #[inline(never)]
    fn write(&self, f: &mut fmt::Formatter<'_>, debug: bool) -> fmt::Result {
        let (text, name) = match self {
            Status::NotFound => ("not found", "NotFound"),
            Status::BadArgument => ("bad argument", "BadArgument"),
            Status::SerializationFailure => ("serialization failure", "SerializationFailure"),
            Status::ParseFailure => ("parse failure", "ParseFailure"),
            Status::Empty => ("empty", "Empty"),
            Status::CasMismatch => ("CAS mismatch", "CasMismatch"),
            Status::InternalFailure => ("internal failure", "InternalFailure"),
            Status::Unimplemented => ("unimplemented", "Unimplemented"),
            Status::Other(raw) => {
                f.write_str(if debug { "Other(" } else { "status " })?;
                fmt::Display::fmt(raw, f)?;
                return f.write_str(if debug { ")" } else { "" });
            }
        };
        f.write_str(if debug { name } else { text })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, false)
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As derived, in one line: the variant's name.
        self.write(f, true)
    }
}

/// A host call that did not succeed: which call, and the status the host gave.
///
/// ```no_run
/// use pwf::{HostError, Status};
///
/// fn remember(tenant: &str) -> Result<(), HostError> {
///     match pwf::properties::set(&["tenant"], tenant.as_bytes()) {
///         // A host without filter state: go on without it.
///         Err(error) if error.status() == Status::Unimplemented => Ok(()),
///         result => result,
///     }
/// }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct HostError {
    call: &'static str,
    status: Status,
    /// The header pwf refused before making the call, if that is why it failed.
    invalid: Option<Box<InvalidHeader>>,
}

impl HostError {
    pub(crate) fn new(call: &'static str, status: Status) -> HostError {
        HostError {
            call,
            status,
            invalid: None,
        }
    }

    /// The error of a host call pwf did not make because a header it would
    /// have passed is invalid: status [`Status::BadArgument`].
    pub(crate) fn refused_header(call: &'static str, invalid: InvalidHeader) -> HostError {
        HostError {
            call,
            status: Status::BadArgument,
            invalid: Some(Box::new(invalid)),
        }
    }

    /// The header pwf refused to pass, when the call was not made because of
    /// it (its status is then [`Status::BadArgument`]).
    ///
    /// ```no_run
    /// fn f(http: &pwf::Http, user: &[u8]) {
    ///     if let Err(error) = http.set_request_header("x-user", user) {
    ///         if let Some(invalid) = error.invalid_header() {
    ///             pwf::warn!("not forwarding the user: {invalid}");
    ///         }
    ///     }
    /// }
    /// ```
    pub fn invalid_header(&self) -> Option<&InvalidHeader> {
        self.invalid.as_deref()
    }

    /// The ABI call that failed, without its `proxy_` prefix (`get_shared_data`).
    ///
    /// ```no_run
    /// fn f(http: &pwf::Http) {
    ///     if let Err(error) = http.set_response_header("x-cache", "hit") {
    ///         pwf::warn!("`{}` refused: {}", error.call(), error.status());
    ///     }
    /// }
    /// ```
    pub fn call(&self) -> &'static str {
        self.call
    }

    /// The status the host returned.
    ///
    /// ```no_run
    /// use pwf::Status;
    ///
    /// fn tenant() -> Result<Option<Vec<u8>>, pwf::Error> {
    ///     match pwf::properties::get(&["filter_state", "tenant"]) {
    ///         Ok(value) => Ok(value),
    ///         // A host without filter state: go on without it.
    ///         Err(error) if error.status() == Status::Unimplemented => Ok(None),
    ///         Err(error) => Err(error.into()),
    ///     }
    /// }
    /// ```
    pub fn status(&self) -> Status {
        self.status
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.invalid {
            Some(invalid) => write!(f, "host call `{}` not made: {invalid}", self.call),
            None => write!(f, "host call `{}` failed: {}", self.call, self.status),
        }
    }
}

impl fmt::Debug for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As derived, in one line. The call name is an ABI function name,
        // which has nothing to escape: it is written as it is.
        write!(
            f,
            "HostError {{ call: \"{}\", status: {:?}",
            self.call, self.status
        )?;
        if let Some(invalid) = &self.invalid {
            write!(f, ", invalid: \"{invalid}\"")?;
        }
        f.write_str(" }")
    }
}

impl std::error::Error for HostError {}

/// The error a filter phase or a task returns: any error, boxed.
///
/// Every error type converts into it with `?`, so a handler can mix host
/// errors, call errors and its own. pwf logs it and answers the stream with
/// the plugin's error response (a local 500 unless the plugin says otherwise).
///
/// ```
/// fn check(value: &str) -> Result<u32, pwf::Error> {
///     let n: u32 = value.parse()?;
///     if n == 0 {
///         return Err(pwf::Error::msg("zero is not allowed"));
///     }
///     Ok(n)
/// }
/// assert_eq!(check("7").unwrap(), 7);
/// assert_eq!(check("0").unwrap_err().to_string(), "zero is not allowed");
/// assert!(check("x").is_err());
/// ```
pub struct Error {
    inner: Box<dyn std::error::Error + 'static>,
}

impl Error {
    /// An error that is only a message.
    ///
    /// ```
    /// let error = pwf::Error::msg(format!("tenant `{}` is unknown", "acme"));
    /// assert_eq!(error.to_string(), "tenant `acme` is unknown");
    /// ```
    pub fn msg(message: impl fmt::Display) -> Error {
        Error {
            inner: Box::new(Message(message.to_string())),
        }
    }

    /// The underlying error, to inspect or downcast.
    ///
    /// ```
    /// let error = pwf::Error::from("x".parse::<u32>().unwrap_err());
    /// let parse = error.get_ref().downcast_ref::<std::num::ParseIntError>();
    /// assert!(parse.is_some());
    /// ```
    pub fn get_ref(&self) -> &(dyn std::error::Error + 'static) {
        &*self.inner
    }

    /// Whether the underlying error is of type `E`.
    ///
    /// ```
    /// use std::num::ParseIntError;
    ///
    /// let error = pwf::Error::from("x".parse::<u32>().unwrap_err());
    /// assert!(error.is::<ParseIntError>());
    /// assert!(!error.is::<pwf::HostError>());
    /// ```
    pub fn is<E: std::error::Error + 'static>(&self) -> bool {
        self.inner.is::<E>()
    }
}

/// The error of [`Error::msg`]: a message and nothing else.
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

impl<E: std::error::Error + 'static> From<E> for Error {
    fn from(error: E) -> Error {
        Error {
            inner: Box::new(error),
        }
    }
}

/// `{}` shows the error's own message; `{:#}` adds its sources, each after a
/// colon, as `anyhow` does. pwf's own errors follow `thiserror`'s rule: an
/// error either prints its source or returns it from `source()`, never both,
/// so `{:#}` says each thing once. pwf logs errors with `{:#}`.
///
/// ```
/// use std::fmt;
///
/// #[derive(Debug)]
/// struct Lookup(std::num::ParseIntError);
///
/// impl fmt::Display for Lookup {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
///         f.write_str("tenant lookup failed")
///     }
/// }
///
/// impl std::error::Error for Lookup {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
///
/// let error = pwf::Error::from(Lookup("x".parse::<u32>().unwrap_err()));
/// assert_eq!(error.to_string(), "tenant lookup failed");
/// assert_eq!(
///     format!("{error:#}"),
///     "tenant lookup failed: invalid digit found in string"
/// );
/// ```
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)?;
        if f.alternate() {
            let mut source = self.inner.source();
            while let Some(cause) = source {
                write!(f, ": {cause}")?;
                source = cause.source();
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The whole chain: what `main` and `unwrap` show.
        write!(f, "{self:#}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_error_says_its_host_error_once() {
        let shared = crate::SharedError::Host {
            key: "k".to_owned(),
            error: HostError::new("set_property", Status::NotFound),
        };
        let expected = "shared key `k`: host call `set_property` failed: not found";
        let error = Error::from(shared);
        assert_eq!(error.to_string(), expected);
        assert_eq!(format!("{error:#}"), expected, "no source said again");
        assert_eq!(format!("{error:?}"), expected);
    }

    #[test]
    fn host_error_debug_reads_as_derived() {
        let error = HostError::new("get_shared_data", Status::CasMismatch);
        assert_eq!(
            format!("{error:?}"),
            r#"HostError { call: "get_shared_data", status: CasMismatch }"#
        );
        assert_eq!(format!("{:?}", Status::Other(5)), "Other(5)");
        assert_eq!(Status::Other(5).to_string(), "status 5");
        assert_eq!(Status::CasMismatch.to_string(), "CAS mismatch");
    }
}
