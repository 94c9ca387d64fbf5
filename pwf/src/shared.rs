//! Exact shared state across the worker VMs: [`SharedCounter`] and
//! [`SharedValue`], both compare-and-swap loops over Envoy's shared data.
//!
//! Envoy's shared data is one store per `vm_id`, shared by every worker. A
//! write passes a CAS token: 0 writes unconditionally; any other token must
//! match the entry's, except that a missing key is inserted whatever the
//! token. Every write takes the next value of one global CAS counter.
//!
//! Two workers creating the same key at the same moment would therefore both
//! succeed, and one update would be lost. pwf creates a key with a token that
//! cannot match any entry written after the key was found missing: the token
//! of an entry written earlier (a floor key, written once per store). A
//! concurrent creation then makes ours fail with a mismatch, and we retry.
//!
//! Nothing is ever reset: a counter starts at 0 when its key does not exist,
//! so a VM start, a reload or a new worker leaves it as it was.
//!
//! Nothing is ever deleted either: the ABI has no delete, and Envoy keeps
//! every key written until it restarts (120 bytes or more each). Keys that come
//! from requests (a client, a tenant, a window) go in a bounded
//! [`SharedTable`](crate::SharedTable), [`RateLimiter`](crate::RateLimiter) or
//! [`SharedCache`](crate::SharedCache) instead.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::HostError;
use crate::host::{self, CasWrite};

/// How many times an update is tried before it gives up, unless set.
///
/// ```
/// // A handle tries this many times unless told otherwise.
/// assert_eq!(pwf::DEFAULT_MAX_ATTEMPTS, 64);
/// ```
pub const DEFAULT_MAX_ATTEMPTS: u32 = 64;

/// The key whose CAS token pwf uses to create keys (see the module docs).
const CAS_FLOOR_KEY: &str = "pwf.cas_floor";

thread_local! {
    static CAS_FLOOR: Cell<u32> = const { Cell::new(0) };
}

/// A CAS token no entry written from now on can carry.
fn cas_floor() -> Result<u32, HostError> {
    let cached = CAS_FLOOR.with(Cell::get);
    if cached != 0 {
        return Ok(cached);
    }
    // Read the floor key; if it is missing, write it once and read it again.
    let floor = match floor_token()? {
        Some(floor) => floor,
        None => {
            // Any write will do: only its token matters.
            host::set_shared_data(CAS_FLOOR_KEY, b"", 0)?;
            floor_token()?.ok_or(HostError::new("get_shared_data", crate::Status::NotFound))?
        }
    };
    CAS_FLOOR.with(|cell| cell.set(floor));
    Ok(floor)
}

/// The CAS token of the floor key, if it exists and has one.
#[inline(never)]
fn floor_token() -> Result<Option<u32>, HostError> {
    let entry = host::get_shared_data(CAS_FLOOR_KEY)?;
    Ok(entry.map(|entry| entry.cas).filter(|&cas| cas != 0))
}

/// Why a shared update or read failed.
///
/// ```no_run
/// use pwf::{SharedCounter, SharedError};
///
/// fn count() -> Result<u64, pwf::Error> {
///     match SharedCounter::new("requests").increment() {
///         Ok(n) => Ok(n),
///         // Too busy to count this one: go on without it.
///         Err(SharedError::Contended { key, attempts }) => {
///             pwf::warn!("`{key}`: no update after {attempts} attempts");
///             Ok(0)
///         }
///         Err(error) => Err(error.into()),
///     }
/// }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum SharedError {
    /// Every attempt lost its compare-and-swap to another writer.
    Contended {
        /// The key.
        key: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The stored bytes are not a value of this type.
    Corrupt {
        /// The key.
        key: String,
        /// What is wrong with them.
        reason: String,
    },
    /// The new value would not fit (a counter past `u64::MAX`).
    Overflow {
        /// The key.
        key: String,
    },
    /// The encoded value is longer than the table's entries hold.
    TooLarge {
        /// The key.
        key: String,
        /// The encoded length, in bytes.
        size: usize,
        /// The most an entry holds, in bytes.
        max: usize,
    },
    /// The host refused a shared-data call.
    Host {
        /// The key.
        key: String,
        /// The host's error.
        error: HostError,
    },
}

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (SharedError::Contended { key, .. }
        | SharedError::Corrupt { key, .. }
        | SharedError::Overflow { key }
        | SharedError::TooLarge { key, .. }
        | SharedError::Host { key, .. }) = self;
        write!(f, "shared key `{key}`: ")?;
        match self {
            SharedError::Contended { attempts, .. } => write!(
                f,
                "gave up after {attempts} attempts, each lost to a concurrent write"
            ),
            SharedError::Corrupt { reason, .. } => f.write_str(reason),
            SharedError::Overflow { .. } => f.write_str("the value would overflow"),
            SharedError::TooLarge { size, max, .. } => write!(
                f,
                "the value takes {size} bytes, more than the {max} an entry holds"
            ),
            SharedError::Host { error, .. } => fmt::Display::fmt(error, f),
        }
    }
}

/// No source: the host's error is part of the message (an error prints its
/// source or returns it, never both).
impl std::error::Error for SharedError {}

/// Why an update or a read failed, before the key is attached.
pub(crate) enum Failure {
    Host(HostError),
    Corrupt(String),
    Overflow,
    TooLarge { size: usize, max: usize },
    Contended,
}

/// What one step of a CAS loop writes: always bytes, except an `Option`,
/// whose `None` writes nothing. A trait, not an `Option` everywhere, so that
/// a loop that always writes compiles to one without the test.
pub(crate) trait Written {
    fn written(&self) -> Option<&[u8]>;
}

impl Written for [u8; 8] {
    fn written(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl Written for Vec<u8> {
    fn written(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl Written for &Vec<u8> {
    fn written(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl Written for Option<Vec<u8>> {
    fn written(&self) -> Option<&[u8]> {
        self.as_deref()
    }
}

/// The CAS loop every shared type uses: read, compute, write conditionally,
/// retry.
pub(crate) struct CasLoop {
    pub(crate) key: String,
    pub(crate) max_attempts: u32,
    pub(crate) retries: Cell<u64>,
}

impl CasLoop {
    pub(crate) fn new(key: String) -> CasLoop {
        CasLoop {
            key,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retries: Cell::new(0),
        }
    }

    /// The error for `failure`, naming the key: built in one place, so each
    /// failure costs no copy of the key until it is reported.
    #[cold]
    #[inline(never)]
    pub(crate) fn error(&self, failure: Failure) -> SharedError {
        let key = self.key.clone();
        match failure {
            Failure::Host(error) => SharedError::Host { key, error },
            Failure::Corrupt(reason) => SharedError::Corrupt { key, reason },
            Failure::Overflow => SharedError::Overflow { key },
            Failure::TooLarge { size, max } => SharedError::TooLarge { key, size, max },
            Failure::Contended => SharedError::Contended {
                key,
                attempts: self.max_attempts,
            },
        }
    }

    pub(crate) fn read(&self) -> Result<Option<Vec<u8>>, SharedError> {
        host::get_shared_data(&self.key)
            .map(|entry| entry.map(|entry| entry.value))
            .map_err(|error| self.error(Failure::Host(error)))
    }

    /// `next` maps the current bytes (None: the key does not exist) to the
    /// value to return and the bytes to write.
    fn update<T, B: Written>(
        &self,
        next: impl FnMut(Option<&[u8]>) -> Result<(T, B), Failure>,
    ) -> Result<T, SharedError> {
        self.attempt(next).map_err(|failure| self.error(failure))
    }

    /// The loop itself. When `next` returns nothing to write (`None`, for
    /// an `Option`), its value is returned as read.
    pub(crate) fn attempt<T, B: Written>(
        &self,
        mut next: impl FnMut(Option<&[u8]>) -> Result<(T, B), Failure>,
    ) -> Result<T, Failure> {
        for attempt in 1..=self.max_attempts {
            let entry = host::get_shared_data(&self.key).map_err(Failure::Host)?;
            let (value, bytes, cas) = match &entry {
                Some(entry) => {
                    let (value, bytes) = next(Some(&entry.value))?;
                    if bytes.written().is_none() {
                        return Ok(value);
                    }
                    (value, bytes, entry.cas)
                }
                None => {
                    let (value, bytes) = next(None)?;
                    if bytes.written().is_none() {
                        return Ok(value);
                    }
                    (value, bytes, cas_floor().map_err(Failure::Host)?)
                }
            };
            // A token of 0 would write unconditionally; Envoy never hands one out.
            let cas = if cas == 0 { u32::MAX } else { cas };
            // `written` is `Some` here: a `None` returned above.
            let bytes = bytes.written().unwrap_or_default();
            match host::set_shared_data(&self.key, bytes, cas) {
                Ok(CasWrite::Written) => return Ok(value),
                Ok(CasWrite::Mismatch) if attempt < self.max_attempts => {
                    self.retries.set(self.retries.get() + 1);
                }
                Ok(CasWrite::Mismatch) => break,
                Err(error) => return Err(Failure::Host(error)),
            }
        }
        Err(Failure::Contended)
    }
}

/// A `u64` counter in Envoy shared data, exact across every worker VM.
///
/// The value is stored as 8 little-endian bytes, the bytes the Go SDK's
/// `shared_data` example writes, so Go and pwf plugins can share a counter.
///
/// # Each key lives until Envoy restarts
///
/// Shared data cannot delete a key: every distinct key a plugin writes stays
/// in Envoy's memory (120 bytes or more) until Envoy restarts. Use a
/// `SharedCounter` for a fixed set of keys. A key built from a request (a
/// client, an API key, a tenant, a time window) grows Envoy's memory with
/// every new one: count those with a [`RateLimiter`](crate::RateLimiter) or a
/// [`SharedTable`](crate::SharedTable), whose memory is bounded.
///
/// ```no_run
/// use pwf::SharedCounter;
///
/// let requests = SharedCounter::new("requests");
/// let n = requests.increment()?; // this request's number, 1, 2, 3, ...
/// # Ok::<(), pwf::SharedError>(())
/// ```
pub struct SharedCounter {
    cas: CasLoop,
}

impl SharedCounter {
    /// A counter at `key`. Creating it touches nothing: a key that does not
    /// exist reads as 0.
    ///
    /// ```
    /// let hits = pwf::SharedCounter::new("hits");
    /// assert_eq!(hits.key(), "hits");
    /// ```
    pub fn new(key: impl Into<String>) -> SharedCounter {
        SharedCounter {
            cas: CasLoop::new(key.into()),
        }
    }

    /// Sets how many times an update is tried before it fails with
    /// [`SharedError::Contended`] (at least 1; default [`DEFAULT_MAX_ATTEMPTS`]).
    ///
    /// ```
    /// let hits = pwf::SharedCounter::new("hits").with_max_attempts(8);
    /// assert_eq!(hits.key(), "hits");
    /// ```
    pub fn with_max_attempts(mut self, max_attempts: u32) -> SharedCounter {
        self.cas.max_attempts = max_attempts.max(1);
        self
    }

    /// The key.
    ///
    /// ```
    /// let hits = pwf::SharedCounter::new("hits.total");
    /// assert_eq!(hits.key(), "hits.total");
    /// ```
    pub fn key(&self) -> &str {
        &self.cas.key
    }

    /// The current value (0 if the key does not exist).
    ///
    /// ```no_run
    /// fn on_request_headers(http: &pwf::Http) -> Result<(), pwf::Error> {
    ///     let total = pwf::SharedCounter::new("requests").get()?;
    ///     http.set_request_header("x-requests-so-far", total.to_string())?;
    ///     Ok(())
    /// }
    /// ```
    pub fn get(&self) -> Result<u64, SharedError> {
        match self.cas.read()? {
            Some(bytes) => decode_counter(&bytes).map_err(|failure| self.cas.error(failure)),
            None => Ok(0),
        }
    }

    /// Adds 1 and returns the new value.
    ///
    /// ```no_run
    /// fn on_request_headers(http: &pwf::Http) -> Result<(), pwf::Error> {
    ///     let n = pwf::SharedCounter::new("requests").increment()?;
    ///     http.set_request_header("x-request-number", n.to_string())?;
    ///     Ok(())
    /// }
    /// ```
    pub fn increment(&self) -> Result<u64, SharedError> {
        self.add(1)
    }

    /// Adds `n` and returns the new value.
    ///
    /// ```no_run
    /// fn on_request_body(body_size: usize) -> Result<(), pwf::Error> {
    ///     let bytes = pwf::SharedCounter::new("request_bytes");
    ///     bytes.add(body_size as u64)?;
    ///     Ok(())
    /// }
    /// ```
    pub fn add(&self, n: u64) -> Result<u64, SharedError> {
        self.cas.update(|current| {
            let current = match current {
                Some(bytes) => decode_counter(bytes)?,
                None => 0,
            };
            let next = current.checked_add(n).ok_or(Failure::Overflow)?;
            Ok((next, next.to_le_bytes()))
        })
    }

    /// How many compare-and-swaps this handle lost and retried, in total: a
    /// measure of contention, for metrics.
    ///
    /// ```
    /// let hits = pwf::SharedCounter::new("hits");
    /// // No update has lost a compare-and-swap yet.
    /// assert_eq!(hits.retries(), 0);
    /// ```
    pub fn retries(&self) -> u64 {
        self.cas.retries.get()
    }
}

/// A counter's stored bytes as its value.
fn decode_counter(bytes: &[u8]) -> Result<u64, Failure> {
    match <[u8; 8]>::try_from(bytes) {
        Ok(raw) => Ok(u64::from_le_bytes(raw)),
        Err(_) => Err(Failure::Corrupt(format!(
            "expected 8 bytes (a little-endian u64), found {}",
            bytes.len()
        ))),
    }
}

/// A typed value in Envoy shared data, stored as JSON, updated atomically
/// across every worker VM.
///
/// # Each key lives until Envoy restarts
///
/// Shared data cannot delete a key: every distinct key a plugin writes stays
/// in Envoy's memory until Envoy restarts. Use a `SharedValue` for a fixed
/// set of keys; for keys that come from requests, a
/// [`SharedCache`](crate::SharedCache), whose memory is bounded.
///
/// ```no_run
/// use pwf::SharedValue;
///
/// let seen: SharedValue<Vec<String>> = SharedValue::new("recent-paths");
/// seen.update(|paths| {
///     let mut paths = paths.unwrap_or_default();
///     paths.push("/login".to_owned());
///     paths
/// })?;
/// # Ok::<(), pwf::SharedError>(())
/// ```
pub struct SharedValue<T> {
    cas: CasLoop,
    marker: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> SharedValue<T> {
    /// A value at `key`.
    ///
    /// ```
    /// let limits: pwf::SharedValue<Vec<u32>> = pwf::SharedValue::new("limits");
    /// assert_eq!(limits.key(), "limits");
    /// ```
    pub fn new(key: impl Into<String>) -> SharedValue<T> {
        SharedValue {
            cas: CasLoop::new(key.into()),
            marker: PhantomData,
        }
    }

    /// Sets how many times an update is tried (at least 1).
    ///
    /// ```
    /// let limits = pwf::SharedValue::<Vec<u32>>::new("limits").with_max_attempts(8);
    /// assert_eq!(limits.key(), "limits");
    /// ```
    pub fn with_max_attempts(mut self, max_attempts: u32) -> SharedValue<T> {
        self.cas.max_attempts = max_attempts.max(1);
        self
    }

    /// The key.
    ///
    /// ```
    /// let owner: pwf::SharedValue<String> = pwf::SharedValue::new("leader");
    /// assert_eq!(owner.key(), "leader");
    /// ```
    pub fn key(&self) -> &str {
        &self.cas.key
    }

    /// The current value, if the key exists.
    ///
    /// ```no_run
    /// fn on_request_headers(http: &pwf::Http) -> Result<(), pwf::Error> {
    ///     let leader: pwf::SharedValue<String> = pwf::SharedValue::new("leader");
    ///     if let Some(name) = leader.get()? {
    ///         http.set_request_header("x-leader", name)?;
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn get(&self) -> Result<Option<T>, SharedError> {
        self.cas
            .read()?
            .map(|bytes| decode_value(&bytes).map_err(|failure| self.cas.error(failure)))
            .transpose()
    }

    /// Replaces the value with `f(current)`, atomically, and returns the new
    /// value. `f` may run more than once, when another worker wrote first.
    ///
    /// ```no_run
    /// fn configure(cx: &pwf::PluginContext) -> Result<(), pwf::Error> {
    ///     let plugins: pwf::SharedValue<Vec<String>> = pwf::SharedValue::new("plugins");
    ///     let all = plugins.update(|names| {
    ///         let mut names = names.unwrap_or_default();
    ///         names.push(cx.plugin_name().to_owned());
    ///         names
    ///     })?;
    ///     pwf::info!("{} plugins configured", all.len());
    ///     Ok(())
    /// }
    /// ```
    pub fn update(&self, mut f: impl FnMut(Option<T>) -> T) -> Result<T, SharedError>
    where
        T: Clone,
    {
        self.cas.update(|current| {
            let current = current.map(decode_value).transpose()?;
            let next = f(current);
            let bytes = serde_json::to_vec(&next).map_err(|error| {
                Failure::Corrupt(format!("cannot encode the new value: {error}"))
            })?;
            Ok((next, bytes))
        })
    }

    /// Replaces the value with `value`, whatever it was.
    ///
    /// ```no_run
    /// let leader: pwf::SharedValue<String> = pwf::SharedValue::new("leader");
    /// leader.set(&"worker-1".to_owned())?;
    /// # Ok::<(), pwf::SharedError>(())
    /// ```
    pub fn set(&self, value: &T) -> Result<(), SharedError> {
        let bytes = serde_json::to_vec(value).map_err(|error| {
            self.cas.error(Failure::Corrupt(format!(
                "cannot encode the new value: {error}"
            )))
        })?;
        // One write, conditional like every other: a concurrent creation of
        // the key is retried, not overwritten blindly by a token of 0.
        self.cas.update(|_| Ok(((), &bytes)))
    }

    /// How many compare-and-swaps this handle lost and retried, in total.
    ///
    /// ```
    /// let leader: pwf::SharedValue<String> = pwf::SharedValue::new("leader");
    /// assert_eq!(leader.retries(), 0);
    /// ```
    pub fn retries(&self) -> u64 {
        self.cas.retries.get()
    }
}

/// A value's stored bytes (JSON) as the value.
fn decode_value<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(bytes)
        .map_err(|error| Failure::Corrupt(format!("stored value is not valid: {error}")))
}
