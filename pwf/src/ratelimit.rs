//! [`RateLimiter`]: a per-key fixed-window limit across every worker of an
//! Envoy, on a [`SharedTable`].

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::config::{ConfigValue, Path, Problems, Type};
use crate::http::LocalResponse;
use crate::shared::SharedError;
use crate::table::{Change, SharedTable};

/// A limit: `requests` per window of `per`, as a configuration reads it:
/// `{"requests": 100, "per": "1m"}`.
///
/// `per` is a [duration](crate::config#types) of at least one millisecond,
/// in whole milliseconds; `requests` is at least 1.
///
/// ```
/// use std::time::Duration;
///
/// use pwf::{PluginConfig, RateLimit};
///
/// #[derive(PluginConfig)]
/// struct Config {
///     limit: RateLimit,
/// }
///
/// let config = Config::parse(br#"{"limit": {"requests": 100, "per": "1m"}}"#).unwrap();
/// assert_eq!(config.limit, RateLimit::new(100, Duration::from_secs(60)));
///
/// let error = Config::parse(br#"{"limit": {"requests": 0, "per": "1m"}}"#).err().unwrap();
/// assert_eq!(error.to_string(), "limit.requests: must be at least 1, got 0");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    requests: u32,
    per_ms: u64,
}

impl RateLimit {
    /// `requests` per window of `per`. `requests` is raised to 1 and `per` to
    /// a millisecond if lower; `per` is counted in whole milliseconds.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let limit = pwf::RateLimit::new(100, Duration::from_secs(60));
    /// assert_eq!(limit.requests(), 100);
    /// assert_eq!(limit.per(), Duration::from_secs(60));
    /// ```
    pub fn new(requests: u32, per: Duration) -> RateLimit {
        let per_ms = u64::try_from(per.as_millis()).unwrap_or(u64::MAX);
        RateLimit {
            requests: requests.max(1),
            per_ms: per_ms.max(1),
        }
    }

    /// The requests allowed per window.
    ///
    /// ```
    /// # use std::time::Duration;
    /// assert_eq!(pwf::RateLimit::new(5, Duration::from_secs(1)).requests(), 5);
    /// ```
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// The window's length.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let limit = pwf::RateLimit::new(5, Duration::from_millis(1500));
    /// assert_eq!(limit.per(), Duration::from_millis(1500));
    /// ```
    pub fn per(&self) -> Duration {
        Duration::from_millis(self.per_ms)
    }
}

impl fmt::Display for RateLimit {
    /// `100 per 60s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} per {:?}", self.requests, self.per())
    }
}

impl ConfigValue for RateLimit {
    fn from_config(value: &Value, path: &Path<'_>, problems: &mut Problems) -> Option<Self> {
        let Value::Object(object) = value else {
            problems.push(
                path,
                format_args!(
                    "expected a limit such as {{\"requests\": 100, \"per\": \"1m\"}}, got {value}"
                ),
            );
            return None;
        };
        crate::config::derive::unknown_keys(object, &["requests", "per"], path, problems);
        let requests = read_key::<u32>(object, "requests", path, problems);
        let per = read_key::<Duration>(object, "per", path, problems);
        let requests = match requests {
            Some(0) => {
                problems.push(&path.key("requests"), "must be at least 1, got 0");
                None
            }
            requests => requests,
        };
        let per = match per {
            Some(per) if per.as_millis() == 0 || per.subsec_nanos() % 1_000_000 != 0 => {
                problems.push(
                    &path.key("per"),
                    format_args!("must be whole milliseconds, at least 1ms, got {per:?}"),
                );
                None
            }
            per => per,
        };
        Some(RateLimit::new(requests?, per?))
    }

    fn describe() -> Type {
        Type::new("rate limit ({\"requests\": N, \"per\": duration})")
    }
}

/// The value at `key` of `object`, read as a `T`; a problem if it is absent.
fn read_key<T: ConfigValue>(
    object: &serde_json::Map<String, Value>,
    key: &str,
    path: &Path<'_>,
    problems: &mut Problems,
) -> Option<T> {
    match object.get(key) {
        Some(value) => T::from_config(value, &path.key(key), problems),
        None => {
            problems.push(path, format_args!("missing field `{key}`"));
            None
        }
    }
}

/// A per-key rate limit shared by every worker VM of one Envoy: at most
/// `requests` per fixed window of `per`, windows aligned on the Unix epoch
/// (a 1-minute window starts at each whole minute).
///
/// Its state is a [`SharedTable`] (4096 slots of 4 entries unless set), so
/// Envoy's memory for it is bounded by [`memory_bound`](Self::memory_bound)
/// whatever the number of keys. Within one Envoy, a key gets exactly
/// `requests` allowed per window, never one more, as long as its entry is
/// not evicted (see [`evictions`](Self::evictions)).
///
/// ```no_run
/// use std::time::Duration;
///
/// use pwf::{Action, Error, Http, RateLimit, RateLimiter};
///
/// fn on_request_headers(limiter: &RateLimiter, http: &Http) -> Result<Action, Error> {
///     let key = http.request_header("x-api-key")?;
///     let key = key.as_ref().and_then(|key| key.to_str().ok()).unwrap_or("anonymous");
///     let decision = limiter.check(key)?;
///     if decision.is_allowed() {
///         Ok(Action::Continue)
///     } else {
///         Ok(http.respond(decision.too_many_requests())?)
///     }
/// }
///
/// let limiter = RateLimiter::new("per-api-key", RateLimit::new(100, Duration::from_secs(60)));
/// ```
pub struct RateLimiter {
    table: SharedTable,
    limit: RateLimit,
}

/// The bytes of a limiter's entry value: the count, a little-endian `u32`.
const COUNT_BYTES: usize = 4;

impl RateLimiter {
    /// A limiter whose table is named `name` (its slots are the shared-data
    /// keys `<name>/<index>`).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let limiter = pwf::RateLimiter::new("api", pwf::RateLimit::new(10, Duration::from_secs(1)));
    /// assert_eq!(limiter.limit().requests(), 10);
    /// ```
    pub fn new(name: impl Into<String>, limit: RateLimit) -> RateLimiter {
        RateLimiter {
            table: SharedTable::new(name).with_max_value_bytes(COUNT_BYTES),
            limit,
        }
    }

    /// Sets the number of slots of the table (see [`SharedTable::with_slots`]).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let limit = pwf::RateLimit::new(10, Duration::from_secs(1));
    /// let limiter = pwf::RateLimiter::new("api", limit).with_slots(1024);
    /// assert_eq!(limiter.table().slots(), 1024);
    /// ```
    pub fn with_slots(mut self, slots: u32) -> RateLimiter {
        self.table = self.table.with_slots(slots);
        self
    }

    /// Sets how many keys a slot holds (see
    /// [`SharedTable::with_entries_per_slot`]).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let limit = pwf::RateLimit::new(10, Duration::from_secs(1));
    /// let limiter = pwf::RateLimiter::new("api", limit).with_entries_per_slot(8);
    /// assert_eq!(limiter.table().entries_per_slot(), 8);
    /// ```
    pub fn with_entries_per_slot(mut self, entries: usize) -> RateLimiter {
        self.table = self.table.with_entries_per_slot(entries);
        self
    }

    /// Sets how many times an update is tried (see
    /// [`SharedTable::with_max_attempts`]).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let limit = pwf::RateLimit::new(10, Duration::from_secs(1));
    /// let limiter = pwf::RateLimiter::new("api", limit).with_max_attempts(16);
    /// # let _ = limiter;
    /// ```
    pub fn with_max_attempts(mut self, max_attempts: u32) -> RateLimiter {
        self.table = self.table.with_max_attempts(max_attempts);
        self
    }

    /// The limit.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let limit = pwf::RateLimit::new(10, Duration::from_secs(1));
    /// assert_eq!(pwf::RateLimiter::new("api", limit).limit(), limit);
    /// ```
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// The table underneath.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let limit = pwf::RateLimit::new(10, Duration::from_secs(1));
    /// assert_eq!(pwf::RateLimiter::new("api", limit).table().name(), "api");
    /// ```
    pub fn table(&self) -> &SharedTable {
        &self.table
    }

    /// The most memory Envoy holds for this limiter, in bytes, whatever the
    /// number of keys (see [`SharedTable::memory_bound`]): with the defaults,
    /// `4096 × (400 + 4 × (26 + 4))` = 2 129 920 bytes.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let limit = pwf::RateLimit::new(10, Duration::from_secs(1));
    /// assert_eq!(pwf::RateLimiter::new("api", limit).memory_bound(), 2_129_920);
    /// ```
    pub fn memory_bound(&self) -> usize {
        self.table.memory_bound()
    }

    /// How many live keys this handle evicted to make room (see
    /// [`SharedTable::evictions`]); each may get up to `requests` more in its
    /// window. Zero when the table is large enough.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let limit = pwf::RateLimit::new(10, Duration::from_secs(1));
    /// assert_eq!(pwf::RateLimiter::new("api", limit).evictions(), 0);
    /// ```
    pub fn evictions(&self) -> u64 {
        self.table.evictions()
    }

    /// How many compare-and-swaps this handle lost and retried, in total.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let limit = pwf::RateLimit::new(10, Duration::from_secs(1));
    /// assert_eq!(pwf::RateLimiter::new("api", limit).retries(), 0);
    /// ```
    pub fn retries(&self) -> u64 {
        self.table.retries()
    }

    /// Counts one request of `key` and decides it: allowed while the key's
    /// count in the current window is below the limit. A limited request
    /// writes nothing.
    ///
    /// # Errors
    ///
    /// Those of [`SharedTable::update`]: the request was not counted. Whether
    /// it goes on (fail open) or not is the plugin's choice.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// let limiter = pwf::RateLimiter::new("api", pwf::RateLimit::new(2, Duration::from_secs(60)));
    /// assert!(limiter.check("client-1")?.is_allowed());
    /// assert!(limiter.check("client-1")?.is_allowed());
    /// let third = limiter.check("client-1")?;
    /// assert!(!third.is_allowed());
    /// assert_eq!(third.remaining(), 0);
    /// # Ok::<(), pwf::SharedError>(())
    /// ```
    pub fn check(&self, key: &str) -> Result<Decision, SharedError> {
        let RateLimit { requests, per_ms } = self.limit;
        self.table.update(key, |entry, now| {
            let window_end = (now / per_ms).saturating_add(1).saturating_mul(per_ms);
            // A count of this window or (another worker's clock ahead) a later one.
            let current = entry.and_then(|entry| {
                let count = u32::from_le_bytes(entry.value().try_into().ok()?);
                (entry.expires_at_ms() >= window_end).then_some((count, entry.expires_at_ms()))
            });
            let (count, window_end) = current.unwrap_or((0, window_end));
            let decision = Decision {
                allowed: count < requests,
                limit: self.limit,
                remaining: requests.saturating_sub(count.saturating_add(1)),
                reset_ms: window_end.saturating_sub(now),
            };
            let change = if decision.allowed {
                Change::Set((count + 1).to_le_bytes().to_vec(), window_end)
            } else {
                Change::Keep
            };
            (decision, change)
        })
    }
}

/// What [`RateLimiter::check`] decided for one request.
///
/// The headers are the ones Envoy's own rate limit filters send with
/// `enable_x_ratelimit_headers: DRAFT_VERSION_03`: `x-ratelimit-limit`,
/// `x-ratelimit-remaining` and `x-ratelimit-reset`; a limited request also
/// gets `retry-after`.
///
/// ```
/// use std::time::Duration;
///
/// use pwf::{Decision, RateLimit};
///
/// let limit = RateLimit::new(100, Duration::from_secs(60));
/// let decision = Decision::limited(limit, Duration::from_millis(12_300));
/// assert!(!decision.is_allowed());
/// let response = decision.too_many_requests();
/// assert_eq!(response.status(), 429);
/// assert_eq!(response.headers().get("retry-after").unwrap(), "13");
/// assert_eq!(response.headers().get("x-ratelimit-limit").unwrap(), "100, 100;w=60");
/// assert_eq!(response.headers().get("x-ratelimit-remaining").unwrap(), "0");
/// assert_eq!(response.headers().get("x-ratelimit-reset").unwrap(), "13");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    allowed: bool,
    limit: RateLimit,
    remaining: u32,
    reset_ms: u64,
}

impl Decision {
    /// An allowed request, with `remaining` more allowed in the window, which
    /// ends in `reset` (for tests and for limits decided elsewhere).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let limit = pwf::RateLimit::new(10, Duration::from_secs(1));
    /// let decision = pwf::Decision::allowed(limit, 9, Duration::from_millis(400));
    /// assert!(decision.is_allowed());
    /// assert_eq!(decision.remaining(), 9);
    /// ```
    pub fn allowed(limit: RateLimit, remaining: u32, reset: Duration) -> Decision {
        Decision {
            allowed: true,
            limit,
            remaining,
            reset_ms: u64::try_from(reset.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// A limited request; the window ends in `reset`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let limit = pwf::RateLimit::new(10, Duration::from_secs(1));
    /// let decision = pwf::Decision::limited(limit, Duration::from_millis(400));
    /// assert!(!decision.is_allowed());
    /// assert_eq!(decision.remaining(), 0);
    /// ```
    pub fn limited(limit: RateLimit, reset: Duration) -> Decision {
        Decision {
            allowed: false,
            ..Decision::allowed(limit, 0, reset)
        }
    }

    /// Whether the request may go on.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let limit = pwf::RateLimit::new(10, Duration::from_secs(1));
    /// assert!(pwf::Decision::allowed(limit, 3, Duration::ZERO).is_allowed());
    /// ```
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// The limit it was decided against.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let limit = pwf::RateLimit::new(10, Duration::from_secs(1));
    /// assert_eq!(pwf::Decision::limited(limit, Duration::ZERO).limit(), limit);
    /// ```
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// How many more requests the key may make in this window.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let limit = pwf::RateLimit::new(10, Duration::from_secs(1));
    /// assert_eq!(pwf::Decision::allowed(limit, 3, Duration::ZERO).remaining(), 3);
    /// ```
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// The time until the window ends and the count starts again.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let limit = pwf::RateLimit::new(10, Duration::from_secs(1));
    /// let decision = pwf::Decision::limited(limit, Duration::from_millis(250));
    /// assert_eq!(decision.reset_after(), Duration::from_millis(250));
    /// ```
    pub fn reset_after(&self) -> Duration {
        Duration::from_millis(self.reset_ms)
    }

    /// [`reset_after`](Self::reset_after) in whole seconds, rounded up: the
    /// value of `retry-after` and `x-ratelimit-reset`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let limit = pwf::RateLimit::new(10, Duration::from_secs(1));
    /// assert_eq!(pwf::Decision::limited(limit, Duration::from_millis(1)).reset_seconds(), 1);
    /// assert_eq!(pwf::Decision::limited(limit, Duration::from_secs(2)).reset_seconds(), 2);
    /// ```
    pub fn reset_seconds(&self) -> u64 {
        self.reset_ms.div_ceil(1000)
    }

    /// The `x-ratelimit-*` headers of this decision, as Envoy's rate limit
    /// filters write them: `x-ratelimit-limit: 100, 100;w=60` (the window in
    /// seconds, rounded up), `x-ratelimit-remaining`, `x-ratelimit-reset`
    /// (seconds until the window ends, rounded up).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let limit = pwf::RateLimit::new(10, Duration::from_secs(1));
    /// let decision = pwf::Decision::allowed(limit, 7, Duration::from_millis(300));
    /// assert_eq!(
    ///     decision.headers(),
    ///     [
    ///         ("x-ratelimit-limit", "10, 10;w=1".to_owned()),
    ///         ("x-ratelimit-remaining", "7".to_owned()),
    ///         ("x-ratelimit-reset", "1".to_owned()),
    ///     ]
    /// );
    /// ```
    pub fn headers(&self) -> [(&'static str, String); 3] {
        let requests = self.limit.requests;
        let window = self.limit.per_ms.div_ceil(1000);
        [
            (
                "x-ratelimit-limit",
                format!("{requests}, {requests};w={window}"),
            ),
            ("x-ratelimit-remaining", self.remaining.to_string()),
            ("x-ratelimit-reset", self.reset_seconds().to_string()),
        ]
    }

    /// The 429 answer to a limited request: `retry-after` (seconds, rounded
    /// up) and the [`headers`](Self::headers), with the body
    /// `rate limit exceeded`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let limit = pwf::RateLimit::new(10, Duration::from_secs(1));
    /// let response = pwf::Decision::limited(limit, Duration::from_millis(300)).too_many_requests();
    /// assert_eq!(response.status(), 429);
    /// assert_eq!(response.headers().get("retry-after").unwrap(), "1");
    /// assert_eq!(response.body_bytes(), b"rate limit exceeded\n");
    /// ```
    pub fn too_many_requests(&self) -> LocalResponse {
        let mut response = LocalResponse::new(429)
            .header("retry-after", self.reset_seconds().to_string())
            .header("content-type", "text/plain")
            .body("rate limit exceeded\n");
        for (name, value) in self.headers() {
            response = response.header(name, value);
        }
        response
    }
}
