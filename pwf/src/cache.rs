//! [`SharedCache`]: typed values with a time to live, shared by every worker
//! VM, in bounded memory.

use std::future::Future;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::shared::SharedError;
use crate::table::{Change, SharedTable};

/// How many slots a cache has unless set.
///
/// ```
/// assert_eq!(pwf::cache::DEFAULT_CACHE_SLOTS, 1024);
/// ```
pub const DEFAULT_CACHE_SLOTS: u32 = 1024;

/// A cache of serde values in Envoy shared data, each with its own time to
/// live, shared by every worker VM, whose memory does not grow with the
/// number of keys.
///
/// Values are stored as JSON in a [`SharedTable`] (1024 slots of 4 entries
/// of at most 256 bytes unless set): Envoy holds at most
/// [`memory_bound`](Self::memory_bound) bytes for it. A full slot makes room
/// by dropping its expired entries, then the ones that expire soonest.
///
/// ```no_run
/// use std::time::Duration;
///
/// use pwf::SharedCache;
///
/// let decisions: SharedCache<bool> = SharedCache::new("auth-decisions");
/// decisions.insert("token-abc", &true, Duration::from_secs(30))?;
/// assert_eq!(decisions.get("token-abc")?, Some(true));
/// # Ok::<(), pwf::SharedError>(())
/// ```
pub struct SharedCache<V> {
    table: SharedTable,
    marker: PhantomData<fn() -> V>,
}

impl<V: Serialize + DeserializeOwned> SharedCache<V> {
    /// A cache whose table is named `name` (its slots are the shared-data
    /// keys `<name>/<index>`).
    ///
    /// ```
    /// let tokens: pwf::SharedCache<String> = pwf::SharedCache::new("tokens");
    /// assert_eq!(tokens.table().slots(), 1024);
    /// ```
    pub fn new(name: impl Into<String>) -> SharedCache<V> {
        SharedCache {
            table: SharedTable::new(name).with_slots(DEFAULT_CACHE_SLOTS),
            marker: PhantomData,
        }
    }

    /// Sets the number of slots (see [`SharedTable::with_slots`]).
    ///
    /// ```
    /// let tokens = pwf::SharedCache::<String>::new("tokens").with_slots(64);
    /// assert_eq!(tokens.table().slots(), 64);
    /// ```
    pub fn with_slots(mut self, slots: u32) -> SharedCache<V> {
        self.table = self.table.with_slots(slots);
        self
    }

    /// Sets how many entries a slot holds (see
    /// [`SharedTable::with_entries_per_slot`]).
    ///
    /// ```
    /// let tokens = pwf::SharedCache::<String>::new("tokens").with_entries_per_slot(2);
    /// assert_eq!(tokens.table().entries_per_slot(), 2);
    /// ```
    pub fn with_entries_per_slot(mut self, entries: usize) -> SharedCache<V> {
        self.table = self.table.with_entries_per_slot(entries);
        self
    }

    /// Sets the longest value, as JSON, in bytes (see
    /// [`SharedTable::with_max_value_bytes`]).
    ///
    /// ```
    /// let tokens = pwf::SharedCache::<String>::new("tokens").with_max_value_bytes(2048);
    /// assert_eq!(tokens.table().max_value_bytes(), 2048);
    /// ```
    pub fn with_max_value_bytes(mut self, max: usize) -> SharedCache<V> {
        self.table = self.table.with_max_value_bytes(max);
        self
    }

    /// Sets how many times an update is tried (see
    /// [`SharedTable::with_max_attempts`]).
    ///
    /// ```
    /// let tokens = pwf::SharedCache::<String>::new("tokens").with_max_attempts(16);
    /// # let _ = tokens;
    /// ```
    pub fn with_max_attempts(mut self, max_attempts: u32) -> SharedCache<V> {
        self.table = self.table.with_max_attempts(max_attempts);
        self
    }

    /// The table underneath.
    ///
    /// ```
    /// let tokens: pwf::SharedCache<String> = pwf::SharedCache::new("tokens");
    /// assert_eq!(tokens.table().name(), "tokens");
    /// ```
    pub fn table(&self) -> &SharedTable {
        &self.table
    }

    /// The most memory Envoy holds for this cache, in bytes (see
    /// [`SharedTable::memory_bound`]): with the defaults,
    /// `1024 × (400 + 4 × (26 + 256))` = 1 564 672 bytes.
    ///
    /// ```
    /// let tokens: pwf::SharedCache<String> = pwf::SharedCache::new("tokens");
    /// assert_eq!(tokens.memory_bound(), 1_564_672);
    /// ```
    pub fn memory_bound(&self) -> usize {
        self.table.memory_bound()
    }

    /// How many live entries this handle's inserts evicted to make room.
    ///
    /// ```
    /// let tokens: pwf::SharedCache<String> = pwf::SharedCache::new("tokens");
    /// assert_eq!(tokens.evictions(), 0);
    /// ```
    pub fn evictions(&self) -> u64 {
        self.table.evictions()
    }

    /// The value of `key`, if it is cached and has not expired.
    ///
    /// # Errors
    ///
    /// [`SharedError::Corrupt`] when the stored JSON is not a `V`, and the
    /// host's errors.
    ///
    /// ```no_run
    /// let tokens: pwf::SharedCache<String> = pwf::SharedCache::new("tokens");
    /// if let Some(token) = tokens.get("upstream-a")? {
    ///     pwf::info!("cached token of {} bytes", token.len());
    /// }
    /// # Ok::<(), pwf::SharedError>(())
    /// ```
    pub fn get(&self, key: &str) -> Result<Option<V>, SharedError> {
        let Some(entry) = self.table.get(key)? else {
            return Ok(None);
        };
        serde_json::from_slice(entry.value())
            .map(Some)
            .map_err(|error| SharedError::Corrupt {
                key: self.table.slot_key(key),
                reason: format!("cached value of `{key}` is not valid: {error}"),
            })
    }

    /// Caches `value` under `key` for `ttl`, replacing what was there.
    ///
    /// # Errors
    ///
    /// [`SharedError::TooLarge`] when the value's JSON is longer than the
    /// entries hold, and the errors of [`SharedTable::update`].
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// let tokens: pwf::SharedCache<String> = pwf::SharedCache::new("tokens");
    /// tokens.insert("upstream-a", &"eyJhbGciOi...".to_owned(), Duration::from_secs(300))?;
    /// # Ok::<(), pwf::SharedError>(())
    /// ```
    pub fn insert(&self, key: &str, value: &V, ttl: Duration) -> Result<(), SharedError> {
        let bytes = serde_json::to_vec(value).map_err(|error| SharedError::Corrupt {
            key: self.table.slot_key(key),
            reason: format!("cannot encode the value of `{key}`: {error}"),
        })?;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        self.table.update(key, |_, now| {
            ((), Change::Set(bytes.clone(), now.saturating_add(ttl_ms)))
        })
    }

    /// The cached value of `key`; on a miss, awaits `fetch` (one outbound
    /// call, say), caches what it returns for `ttl`, and returns it.
    ///
    /// Each stream that misses runs its own `fetch`: two streams missing the
    /// same key at once both fetch, and the later insert wins. A failed
    /// `fetch` caches nothing. A value fetched but not cached (the slot too
    /// contended, the value too large) is still returned, and a warning
    /// says why it was not cached.
    ///
    /// # Errors
    ///
    /// `fetch`'s error, or the cache's when reading it failed.
    ///
    /// ```no_run
    /// use std::rc::Rc;
    /// use std::time::Duration;
    ///
    /// use pwf::{Action, Error, Http, LocalResponse, Outcome, Request, SharedCache};
    ///
    /// fn on_request_headers(decisions: &Rc<SharedCache<bool>>, http: &Http) -> Result<Action, Error> {
    ///     let token = http.request_header("authorization")?;
    ///     let token = token.and_then(|token| token.to_str().ok().map(str::to_owned)).unwrap_or_default();
    ///     let decisions = decisions.clone();
    ///     Ok(http.spawn(async move {
    ///         let allowed = decisions
    ///             .get_or_fetch(&token, Duration::from_secs(30), || async {
    ///                 let call = Request::get("auth", "/check").header("authorization", &token).send()?;
    ///                 Ok::<bool, Error>(call.await?.status() == 200)
    ///             })
    ///             .await?;
    ///         Ok(if allowed {
    ///             Outcome::Continue
    ///         } else {
    ///             LocalResponse::new(403).into()
    ///         })
    ///     }))
    /// }
    /// ```
    pub async fn get_or_fetch<F, Fut, E>(&self, key: &str, ttl: Duration, fetch: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: From<SharedError>,
    {
        if let Some(value) = self.get(key)? {
            return Ok(value);
        }
        let value = fetch().await?;
        if let Err(error) = self.insert(key, &value, ttl) {
            crate::warn!("not cached: {error}");
        }
        Ok(value)
    }
}
