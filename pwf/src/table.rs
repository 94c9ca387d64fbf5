//! [`SharedTable`]: per-key state in Envoy shared data whose memory does not
//! grow with the number of keys.
//!
//! Shared data cannot delete a key, so a key per client is a key forever. A
//! table has a fixed number of slots, each one shared-data key
//! (`<name>/<index>`); a user key is hashed to a slot, and each slot holds a
//! few entries: the key's 128-bit fingerprint, an expiry time and the value.
//!
//! Slot bytes, repeated for each entry (little-endian):
//!
//! ```text
//! fingerprint [16] | expires_at_ms u64 | value length u16 | value
//! ```

use std::cell::Cell;
use std::hash::Hasher;

use crate::error::HostError;
use crate::host;
use crate::shared::{CasLoop, Failure, SharedError, DEFAULT_MAX_ATTEMPTS};

/// How many slots a table has unless set.
///
/// ```
/// assert_eq!(pwf::table::DEFAULT_SLOTS, 4096);
/// ```
pub const DEFAULT_SLOTS: u32 = 4096;

/// How many entries a slot holds unless set.
///
/// ```
/// assert_eq!(pwf::table::DEFAULT_ENTRIES_PER_SLOT, 4);
/// ```
pub const DEFAULT_ENTRIES_PER_SLOT: usize = 4;

/// The longest value an entry holds unless set, in bytes.
///
/// ```
/// assert_eq!(pwf::table::DEFAULT_MAX_VALUE_BYTES, 256);
/// ```
pub const DEFAULT_MAX_VALUE_BYTES: usize = 256;

/// What the memory bound counts for Envoy's own cost of one shared-data key
/// (the key, the map's slot, the bookkeeping), in bytes: a deliberately high
/// figure (Envoy 1.40 was measured at about 120 bytes for a 24-byte key; see
/// the "Rate limiting and caching" guide).
///
/// ```
/// assert_eq!(pwf::table::ENVOY_BYTES_PER_KEY, 400);
/// ```
pub const ENVOY_BYTES_PER_KEY: usize = 400;

/// The bytes of an entry besides its value: fingerprint, expiry, length.
///
/// ```
/// assert_eq!(pwf::table::ENTRY_HEADER_BYTES, 26);
/// ```
pub const ENTRY_HEADER_BYTES: usize = 16 + 8 + 2;

/// A fixed-size table of expiring entries in Envoy shared data, exact across
/// every worker VM.
///
/// - **Bounded:** `slots` shared-data keys, whatever the number of distinct
///   user keys; Envoy holds at most [`memory_bound`](Self::memory_bound)
///   bytes for it:
///   `slots × (ENVOY_BYTES_PER_KEY + entries_per_slot × (ENTRY_HEADER_BYTES + max_value_bytes))`.
/// - **Keys never merge:** an entry is found by the key's 128-bit
///   fingerprint (64-bit FNV-1a and 64-bit SipHash-1-3), never by the slot
///   alone.
/// - **Eviction:** a write drops the slot's expired entries; if the slot is
///   still full, the live entries that expire soonest make room (each is
///   counted in [`evictions`](Self::evictions)). An evicted key starts
///   again from nothing.
/// - **Exact:** every update is a compare-and-swap loop on the slot, with
///   the retry and error rules of [`SharedCounter`](crate::SharedCounter).
///
/// ```no_run
/// use std::time::Duration;
///
/// use pwf::table::{Change, SharedTable};
///
/// // The last path each client asked for, kept for 10 minutes.
/// let last_path = SharedTable::new("last-path").with_slots(1024);
/// let previous = last_path.update("10.0.0.7", |entry, now_ms| {
///     let previous = entry.map(|entry| entry.value().to_vec());
///     (previous, Change::Set(b"/login".to_vec(), now_ms + 600_000))
/// })?;
/// # Ok::<(), pwf::SharedError>(())
/// ```
pub struct SharedTable {
    name: String,
    slots: u32,
    entries_per_slot: usize,
    max_value_bytes: usize,
    max_attempts: u32,
    retries: Cell<u64>,
    evictions: Cell<u64>,
}

/// A live entry of a [`SharedTable`], as an update or a read finds it.
///
/// ```no_run
/// let table = pwf::table::SharedTable::new("sessions");
/// if let Some(entry) = table.get("user-1")? {
///     pwf::info!("{} bytes until {} ms", entry.value().len(), entry.expires_at_ms());
/// }
/// # Ok::<(), pwf::SharedError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    value: &'a [u8],
    expires_at_ms: u64,
}

impl<'a> Entry<'a> {
    /// The stored value.
    ///
    /// ```no_run
    /// let table = pwf::table::SharedTable::new("sessions");
    /// let bytes = table.get("user-1")?.map(|entry| entry.value().to_vec());
    /// # Ok::<(), pwf::SharedError>(())
    /// ```
    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// When the entry expires, in milliseconds since the Unix epoch (the
    /// host's clock).
    ///
    /// ```no_run
    /// let table = pwf::table::SharedTable::new("sessions");
    /// let expiry = table.get("user-1")?.map(|entry| entry.expires_at_ms());
    /// # Ok::<(), pwf::SharedError>(())
    /// ```
    pub fn expires_at_ms(&self) -> u64 {
        self.expires_at_ms
    }
}

/// What an update does to its key's entry.
///
/// ```
/// use pwf::table::Change;
///
/// let change = Change::Set(b"1".to_vec(), 1_700_000_060_000);
/// assert_ne!(change, Change::Keep);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Leave the slot as it is: nothing is written.
    Keep,
    /// Store this value, live until this time (milliseconds since the Unix
    /// epoch).
    Set(Vec<u8>, u64),
}

impl SharedTable {
    /// A table whose slots are the shared-data keys `<name>/0`,
    /// `<name>/1`, ... Creating it touches nothing.
    ///
    /// ```
    /// let table = pwf::table::SharedTable::new("ratelimit");
    /// assert_eq!(table.slots(), pwf::table::DEFAULT_SLOTS);
    /// ```
    pub fn new(name: impl Into<String>) -> SharedTable {
        SharedTable {
            name: name.into(),
            slots: DEFAULT_SLOTS,
            entries_per_slot: DEFAULT_ENTRIES_PER_SLOT,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retries: Cell::new(0),
            evictions: Cell::new(0),
        }
    }

    /// Sets the number of slots (at least 1). Every plugin sharing the table
    /// must use the same number.
    ///
    /// ```
    /// let table = pwf::table::SharedTable::new("t").with_slots(1024);
    /// assert_eq!(table.slots(), 1024);
    /// ```
    pub fn with_slots(mut self, slots: u32) -> SharedTable {
        self.slots = slots.max(1);
        self
    }

    /// Sets how many entries a slot holds (1 to 255).
    ///
    /// ```
    /// let table = pwf::table::SharedTable::new("t").with_entries_per_slot(8);
    /// assert_eq!(table.entries_per_slot(), 8);
    /// ```
    pub fn with_entries_per_slot(mut self, entries: usize) -> SharedTable {
        self.entries_per_slot = entries.clamp(1, 255);
        self
    }

    /// Sets the longest value an entry holds, in bytes (at most 65535); a
    /// longer one is refused with [`SharedError::TooLarge`].
    ///
    /// ```
    /// let table = pwf::table::SharedTable::new("t").with_max_value_bytes(64);
    /// assert_eq!(table.max_value_bytes(), 64);
    /// ```
    pub fn with_max_value_bytes(mut self, max: usize) -> SharedTable {
        self.max_value_bytes = max.min(usize::from(u16::MAX));
        self
    }

    /// Sets how many times an update is tried before it fails with
    /// [`SharedError::Contended`] (at least 1; default
    /// [`DEFAULT_MAX_ATTEMPTS`]).
    ///
    /// ```
    /// let table = pwf::table::SharedTable::new("t").with_max_attempts(8);
    /// assert_eq!(table.slots(), 4096);
    /// ```
    pub fn with_max_attempts(mut self, max_attempts: u32) -> SharedTable {
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// The table's name: the prefix of its slots' keys.
    ///
    /// ```
    /// assert_eq!(pwf::table::SharedTable::new("t").name(), "t");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The number of slots.
    ///
    /// ```
    /// assert_eq!(pwf::table::SharedTable::new("t").slots(), 4096);
    /// ```
    pub fn slots(&self) -> u32 {
        self.slots
    }

    /// How many entries a slot holds.
    ///
    /// ```
    /// assert_eq!(pwf::table::SharedTable::new("t").entries_per_slot(), 4);
    /// ```
    pub fn entries_per_slot(&self) -> usize {
        self.entries_per_slot
    }

    /// The longest value an entry holds, in bytes.
    ///
    /// ```
    /// assert_eq!(pwf::table::SharedTable::new("t").max_value_bytes(), 256);
    /// ```
    pub fn max_value_bytes(&self) -> usize {
        self.max_value_bytes
    }

    /// The shared-data key of the slot that holds `key`.
    ///
    /// ```
    /// let table = pwf::table::SharedTable::new("ratelimit").with_slots(16);
    /// let slot = table.slot_key("api-key-1");
    /// assert!(slot.starts_with("ratelimit/"));
    /// assert_eq!(slot, table.slot_key("api-key-1"));
    /// ```
    pub fn slot_key(&self, key: &str) -> String {
        let index = fnv1a(key.as_bytes()) % u64::from(self.slots);
        format!("{}/{index}", self.name)
    }

    /// The most memory Envoy holds for this table, in bytes, whatever the
    /// number of keys:
    /// `slots × (ENVOY_BYTES_PER_KEY + entries_per_slot × (ENTRY_HEADER_BYTES + max_value_bytes))`.
    ///
    /// ```
    /// let table = pwf::table::SharedTable::new("t")
    ///     .with_slots(1024)
    ///     .with_entries_per_slot(4)
    ///     .with_max_value_bytes(4);
    /// assert_eq!(table.memory_bound(), 1024 * (400 + 4 * (26 + 4)));
    /// ```
    pub fn memory_bound(&self) -> usize {
        let slot = ENVOY_BYTES_PER_KEY
            + self.entries_per_slot * (ENTRY_HEADER_BYTES + self.max_value_bytes);
        self.slots as usize * slot
    }

    /// How many compare-and-swaps this handle lost and retried, in total.
    ///
    /// ```
    /// assert_eq!(pwf::table::SharedTable::new("t").retries(), 0);
    /// ```
    pub fn retries(&self) -> u64 {
        self.retries.get()
    }

    /// How many live entries this handle's writes evicted to make room, in
    /// total: a table too small for its keys shows here (export it as a
    /// metric).
    ///
    /// ```
    /// assert_eq!(pwf::table::SharedTable::new("t").evictions(), 0);
    /// ```
    pub fn evictions(&self) -> u64 {
        self.evictions.get()
    }

    /// The live entry of `key`, copied out of its slot.
    ///
    /// ```no_run
    /// let table = pwf::table::SharedTable::new("sessions");
    /// match table.get("user-1")? {
    ///     Some(entry) => pwf::info!("{} bytes", entry.value().len()),
    ///     None => pwf::info!("no session"),
    /// }
    /// # Ok::<(), pwf::SharedError>(())
    /// ```
    pub fn get(&self, key: &str) -> Result<Option<OwnedEntry>, SharedError> {
        let cas = self.cas(key);
        let now = now_ms().map_err(|error| cas.error(Failure::Host(error)))?;
        let Some(bytes) = cas.read()? else {
            return Ok(None);
        };
        let fingerprint = fingerprint(key);
        let entries = parse(&bytes).map_err(|failure| cas.error(failure))?;
        Ok(entries
            .into_iter()
            .find(|stored| stored.fingerprint == fingerprint && stored.expires_at_ms > now)
            .map(|stored| OwnedEntry {
                value: stored.value.to_vec(),
                expires_at_ms: stored.expires_at_ms,
            }))
    }

    /// Updates the entry of `key` atomically: `f` gets the live entry (or
    /// `None`) and the host's time in milliseconds since the Unix epoch, and
    /// returns what to give back and the [`Change`]. `f` may run more than
    /// once, when another worker wrote the slot first.
    ///
    /// # Errors
    ///
    /// [`SharedError::TooLarge`] for a value longer than
    /// [`max_value_bytes`](Self::max_value_bytes), and the errors of
    /// [`SharedCounter`](crate::SharedCounter).
    ///
    /// ```no_run
    /// use pwf::table::{Change, SharedTable};
    ///
    /// // Logins per user per hour, in 1024 slots.
    /// let logins = SharedTable::new("logins").with_slots(1024);
    /// let count = logins.update("user-1", |entry, now_ms| {
    ///     let (count, expires) = match entry {
    ///         Some(entry) => (entry.value()[0].saturating_add(1), entry.expires_at_ms()),
    ///         None => (1, now_ms + 3_600_000),
    ///     };
    ///     (count, Change::Set(vec![count], expires))
    /// })?;
    /// # Ok::<(), pwf::SharedError>(())
    /// ```
    pub fn update<T>(
        &self,
        key: &str,
        mut f: impl FnMut(Option<Entry<'_>>, u64) -> (T, Change),
    ) -> Result<T, SharedError> {
        let cas = self.cas(key);
        let fingerprint = fingerprint(key);
        let mut evicted = 0;
        let result = cas.attempt(|current| {
            let now = now_ms().map_err(Failure::Host)?;
            let entries = match current {
                Some(bytes) => parse(bytes)?,
                None => Vec::new(),
            };
            let mine = entries
                .iter()
                .find(|stored| stored.fingerprint == fingerprint && stored.expires_at_ms > now)
                .map(|stored| Entry {
                    value: stored.value,
                    expires_at_ms: stored.expires_at_ms,
                });
            let (value, change) = f(mine, now);
            let Change::Set(new, expires_at_ms) = change else {
                return Ok((value, None));
            };
            if new.len() > self.max_value_bytes {
                return Err(Failure::TooLarge {
                    size: new.len(),
                    max: self.max_value_bytes,
                });
            }
            let (bytes, dropped) = self.rewrite(&entries, fingerprint, &new, expires_at_ms, now);
            evicted = dropped;
            Ok((value, Some(bytes)))
        });
        self.retries.set(self.retries.get() + cas.retries.get());
        match result {
            Ok(value) => {
                self.evictions.set(self.evictions.get() + evicted);
                Ok(value)
            }
            Err(failure) => Err(cas.error(failure)),
        }
    }

    /// The slot with `key`'s entry set: the new entry first, then the other
    /// live entries; when more than fit, the ones that expire soonest are
    /// left out. Returns the bytes and how many live entries were left out.
    fn rewrite(
        &self,
        entries: &[Stored<'_>],
        fingerprint: [u8; 16],
        value: &[u8],
        expires_at_ms: u64,
        now: u64,
    ) -> (Vec<u8>, u64) {
        let mut kept: Vec<&Stored<'_>> = entries
            .iter()
            .filter(|stored| stored.fingerprint != fingerprint && stored.expires_at_ms > now)
            .collect();
        let room = self.entries_per_slot - 1;
        let mut dropped = 0;
        if kept.len() > room {
            // Latest expiry first; a stable sort keeps ties in slot order.
            kept.sort_by_key(|stored| std::cmp::Reverse(stored.expires_at_ms));
            dropped = (kept.len() - room) as u64;
            kept.truncate(room);
        }
        let size = ENTRY_HEADER_BYTES * (kept.len() + 1)
            + value.len()
            + kept.iter().map(|stored| stored.value.len()).sum::<usize>();
        let mut bytes = Vec::with_capacity(size);
        encode(&mut bytes, &fingerprint, expires_at_ms, value);
        for stored in kept {
            encode(
                &mut bytes,
                &stored.fingerprint,
                stored.expires_at_ms,
                stored.value,
            );
        }
        (bytes, dropped)
    }

    fn cas(&self, key: &str) -> CasLoop {
        let mut cas = CasLoop::new(self.slot_key(key));
        cas.max_attempts = self.max_attempts;
        cas
    }
}

/// A live entry copied out of a [`SharedTable`] by [`SharedTable::get`].
///
/// ```no_run
/// let table = pwf::table::SharedTable::new("sessions");
/// let entry: Option<pwf::table::OwnedEntry> = table.get("user-1")?;
/// # Ok::<(), pwf::SharedError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedEntry {
    value: Vec<u8>,
    expires_at_ms: u64,
}

impl OwnedEntry {
    /// The stored value.
    ///
    /// ```no_run
    /// let table = pwf::table::SharedTable::new("sessions");
    /// let bytes: Option<Vec<u8>> = table.get("user-1")?.map(|e| e.value().to_vec());
    /// # Ok::<(), pwf::SharedError>(())
    /// ```
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The stored value, taken out.
    ///
    /// ```no_run
    /// let table = pwf::table::SharedTable::new("sessions");
    /// let bytes: Option<Vec<u8>> = table.get("user-1")?.map(|e| e.into_value());
    /// # Ok::<(), pwf::SharedError>(())
    /// ```
    pub fn into_value(self) -> Vec<u8> {
        self.value
    }

    /// When the entry expires, in milliseconds since the Unix epoch.
    ///
    /// ```no_run
    /// let table = pwf::table::SharedTable::new("sessions");
    /// let expiry = table.get("user-1")?.map(|e| e.expires_at_ms());
    /// # Ok::<(), pwf::SharedError>(())
    /// ```
    pub fn expires_at_ms(&self) -> u64 {
        self.expires_at_ms
    }
}

/// The host's time in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> Result<u64, HostError> {
    host::current_time_nanos().map(|nanos| nanos / 1_000_000)
}

/// One entry as stored in a slot.
struct Stored<'a> {
    fingerprint: [u8; 16],
    expires_at_ms: u64,
    value: &'a [u8],
}

/// The entries of a slot's bytes.
fn parse(mut bytes: &[u8]) -> Result<Vec<Stored<'_>>, Failure> {
    let mut entries = Vec::new();
    while !bytes.is_empty() {
        let Some((header, rest)) = bytes.split_first_chunk::<ENTRY_HEADER_BYTES>() else {
            return Err(corrupt(bytes.len()));
        };
        let (fingerprint, rest_of_header) = header.split_at(16);
        let (expires, len) = rest_of_header.split_at(8);
        let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
        if rest.len() < len {
            return Err(corrupt(bytes.len()));
        }
        let (value, rest) = rest.split_at(len);
        entries.push(Stored {
            fingerprint: fingerprint.try_into().unwrap_or([0; 16]),
            expires_at_ms: u64::from_le_bytes(expires.try_into().unwrap_or([0; 8])),
            value,
        });
        bytes = rest;
    }
    Ok(entries)
}

#[cold]
#[inline(never)]
fn corrupt(left: usize) -> Failure {
    Failure::Corrupt(format!(
        "not a table slot: {left} bytes left that are no whole entry"
    ))
}

fn encode(bytes: &mut Vec<u8>, fingerprint: &[u8; 16], expires_at_ms: u64, value: &[u8]) {
    bytes.extend_from_slice(fingerprint);
    bytes.extend_from_slice(&expires_at_ms.to_le_bytes());
    // At most `u16::MAX` by `with_max_value_bytes`.
    bytes.extend_from_slice(&(value.len() as u16).to_le_bytes());
    bytes.extend_from_slice(value);
}

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The key's 128-bit fingerprint: 64-bit FNV-1a, then 64-bit SipHash-1-3
/// (std's `DefaultHasher` with its fixed keys), little-endian.
fn fingerprint(key: &str) -> [u8; 16] {
    let mut sip = std::hash::DefaultHasher::new();
    sip.write(key.as_bytes());
    let mut out = [0; 16];
    out[..8].copy_from_slice(&fnv1a(key.as_bytes()).to_le_bytes());
    out[8..].copy_from_slice(&sip.finish().to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_back_what_encode_wrote() {
        let mut bytes = Vec::new();
        encode(&mut bytes, &[1; 16], 7, b"abc");
        encode(&mut bytes, &[2; 16], 9, b"");
        let entries = parse(&bytes).ok().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            (
                entries[0].fingerprint,
                entries[0].expires_at_ms,
                entries[0].value
            ),
            ([1; 16], 7, &b"abc"[..])
        );
        assert_eq!(
            (
                entries[1].fingerprint,
                entries[1].expires_at_ms,
                entries[1].value
            ),
            ([2; 16], 9, &b""[..])
        );
    }

    #[test]
    fn parse_refuses_a_cut_entry() {
        let mut bytes = Vec::new();
        encode(&mut bytes, &[1; 16], 7, b"abc");
        assert!(parse(&bytes[..bytes.len() - 1]).is_err());
        assert!(parse(&bytes[..5]).is_err());
    }

    #[test]
    fn fingerprint_differs_for_keys_of_one_fnv_slot() {
        // Both hashes must agree for two keys to share an entry.
        assert_ne!(fingerprint("a"), fingerprint("b"));
        assert_eq!(fingerprint("a"), fingerprint("a"));
    }

    #[test]
    fn fnv1a_matches_the_published_test_vector() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
