//! [`TokenMap`]: the calls in flight, by the host's token.
//!
//! Every call inserts one entry when it is dispatched and removes it when it
//! lands, so this map is on the hot path of every outbound call. Envoy hands
//! out tokens in sequence, in steps of a power of two (Envoy 1.40 here: 4),
//! so the calls in flight at any time hold a narrow window of tokens. A
//! direct-mapped table indexed by the token's bits above that step holds them
//! with no hashing and no probing: one slot to look at on insert and on
//! removal. The table doubles when half full. A token whose slot is taken (a
//! call still in flight a whole table ago) waits in a short list instead.
//!
//! Simpler maps were measured in its place (`pwf-bench --check-budget`,
//! `multiple_dispatches`, ten calls a request): a `Vec` of entries scanned
//! by token ran 3.0 % more guest instructions a request (2.5 kB smaller),
//! and the `hashbrown` map the SDK links 7.7 % more (1.4 kB larger), both
//! past the budget's 1 %.

/// A map from call tokens to `V`: a direct-mapped table, and a list for the
/// tokens whose slot is taken.
pub(crate) struct TokenMap<V> {
    /// A power-of-two number of slots (or none); a token lives in slot
    /// [`TokenMap::index`] or in `overflow`.
    direct: Vec<Option<(u32, V)>>,
    /// Entries in `direct`.
    direct_len: usize,
    /// The trailing zero bits every token seen so far has: the step between
    /// tokens, which the index leaves out (at most 31).
    step: u32,
    /// Entries whose slot was taken, in no order. Few: a slot is taken only
    /// by a call older than a whole table of calls after it, and each
    /// rebuild moves them back into the table where it can.
    overflow: Vec<(u32, V)>,
}

/// The direct table's first size, and the largest it doubles to (1.5 MiB of
/// slots, for that many calls in flight at once).
const DIRECT_MIN: usize = 16;
const DIRECT_MAX: usize = 1 << 16;

impl<V> TokenMap<V> {
    /// An empty map; allocates on the first insert.
    pub(crate) const fn new() -> TokenMap<V> {
        TokenMap {
            direct: Vec::new(),
            direct_len: 0,
            step: 31,
            overflow: Vec::new(),
        }
    }

    /// The number of entries.
    pub(crate) fn len(&self) -> usize {
        self.direct_len + self.overflow.len()
    }

    /// The direct table's slot for `token`: its bits above the step, so
    /// tokens in sequence take consecutive slots.
    fn index(&self, token: u32) -> usize {
        (token >> self.step) as usize & self.direct.len().wrapping_sub(1)
    }

    /// Inserts `value` under `token`, which is not in the map: the host
    /// never hands out a token still in flight (the SDK's own dispatcher
    /// refuses one before this is reached).
    #[inline]
    pub(crate) fn insert(&mut self, token: u32, value: V) {
        let step = token.trailing_zeros().min(self.step);
        if self.direct_len * 2 >= self.direct.len() && self.direct.len() < DIRECT_MAX
            || step != self.step
        {
            self.rebuild(step);
        }
        let index = self.index(token);
        match self.direct.get_mut(index) {
            Some(slot @ None) => {
                *slot = Some((token, value));
                self.direct_len += 1;
            }
            _ => self.overflow.push((token, value)),
        }
    }

    /// Removes and returns the value under `token`.
    #[inline]
    pub(crate) fn remove(&mut self, token: u32) -> Option<V> {
        let index = self.index(token);
        if let Some(slot) = self.direct.get_mut(index) {
            if matches!(slot, Some((key, _)) if *key == token) {
                self.direct_len -= 1;
                return slot.take().map(|(_, value)| value);
            }
        }
        if self.overflow.is_empty() {
            return None;
        }
        let position = self.overflow.iter().position(|(key, _)| *key == token)?;
        Some(self.overflow.swap_remove(position).1)
    }

    /// Keeps only the entries whose value `keep` accepts.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        for slot in &mut self.direct {
            if matches!(slot, Some((_, value)) if !keep(value)) {
                *slot = None;
                self.direct_len -= 1;
            }
        }
        self.overflow.retain(|(_, value)| keep(value));
    }

    /// Moves every entry to its slot in a direct table indexed with `step`,
    /// doubled if it is half full; an entry whose slot is taken goes to the
    /// overflow list.
    #[cold]
    #[inline(never)]
    fn rebuild(&mut self, step: u32) {
        let mut capacity = self.direct.len().max(DIRECT_MIN);
        if self.direct_len * 2 >= capacity && capacity < DIRECT_MAX {
            capacity *= 2;
        }
        let mut slots = Vec::with_capacity(capacity);
        slots.resize_with(capacity, || None);
        let mut old = std::mem::replace(&mut self.direct, slots);
        let mut overflow = std::mem::take(&mut self.overflow);
        self.step = step;
        self.direct_len = 0;
        // Popped until empty: the lists are known empty when dropped, so no
        // code drops entries left in them.
        while let Some(slot) = old.pop() {
            if let Some((token, value)) = slot {
                self.place(token, value);
            }
        }
        while let Some((token, value)) = overflow.pop() {
            self.place(token, value);
        }
    }

    /// Puts an entry in its slot, or in the overflow list if that is taken.
    fn place(&mut self, token: u32, value: V) {
        let index = self.index(token);
        match &mut self.direct[index] {
            slot @ None => {
                *slot = Some((token, value));
                self.direct_len += 1;
            }
            Some(_) => self.overflow.push((token, value)),
        }
    }

    /// Every token in the map, sorted.
    #[cfg(test)]
    fn tokens(&self) -> Vec<u32> {
        let mut tokens: Vec<u32> = self.direct.iter().flatten().map(|(t, _)| *t).collect();
        tokens.extend(self.overflow.iter().map(|(t, _)| *t));
        tokens.sort_unstable();
        tokens
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A deterministic mix of inserts and removes over clustered and
    /// scattered tokens, enough to grow the tables, wrap the probes and fill
    /// the overflow list; checked against a `BTreeMap` at every step.
    fn churn(map: &mut TokenMap<u32>) -> BTreeMap<u32, u32> {
        let mut model = BTreeMap::new();
        let mut seed = 0x2545_f491_u32;
        for step in 0..20_000u32 {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let token = if step % 3 == 0 { seed } else { seed % 64 };
            if seed % 5 < 3 {
                if model.insert(token, step).is_some() {
                    map.remove(token);
                }
                map.insert(token, step);
            } else {
                assert_eq!(map.remove(token), model.remove(&token));
            }
            assert_eq!(map.len(), model.len());
        }
        model
    }

    #[test]
    fn behaves_like_a_map_under_churn() {
        let mut map = TokenMap::new();
        let model = churn(&mut map);
        assert!(
            !map.overflow.is_empty(),
            "the churn never reached the overflow list"
        );
        assert_eq!(map.tokens(), model.keys().copied().collect::<Vec<_>>());
        for (token, value) in model {
            assert_eq!(map.remove(token), Some(value), "token {token}");
        }
        assert_eq!(map.len(), 0);
    }

    #[test]
    fn retain_keeps_exactly_the_accepted_entries() {
        let mut map = TokenMap::new();
        let model = churn(&mut map);
        assert!(!map.overflow.is_empty());
        map.retain(|value| value % 3 != 0);
        let kept: BTreeMap<u32, u32> = model.into_iter().filter(|(_, v)| v % 3 != 0).collect();
        assert_eq!(map.len(), kept.len());
        assert_eq!(map.tokens(), kept.keys().copied().collect::<Vec<_>>());
        for (token, value) in kept {
            assert_eq!(map.remove(token), Some(value), "token {token}");
        }
        assert_eq!(map.len(), 0);
    }

    #[test]
    fn finds_nothing_when_empty() {
        let mut map: TokenMap<()> = TokenMap::new();
        assert!(map.remove(7).is_none());
        assert_eq!(map.len(), 0);
    }

    #[test]
    fn tokens_in_sequence_take_no_probing() {
        // Envoy's HTTP call tokens go up in steps of 4; other hosts' in 1 or 2.
        for step in [1, 2, 4, 8] {
            let mut map = TokenMap::new();
            let tokens: Vec<u32> = (0..200).map(|i| (7 + i) * step).collect();
            for &token in &tokens {
                map.insert(token, token * 10);
            }
            assert!(map.overflow.is_empty(), "step {step}");
            assert_eq!(map.len(), 200);
            for &token in &tokens {
                assert_eq!(map.remove(token), Some(token * 10), "step {step}");
            }
            assert_eq!(map.len(), 0);
        }
    }

    #[test]
    fn a_token_off_the_step_so_far_keeps_every_entry_reachable() {
        let mut map = TokenMap::new();
        for token in (1..=20).map(|i| i * 8) {
            map.insert(token, token);
        }
        assert_eq!(map.step, 3);
        // An odd token: the index takes every bit from now on.
        map.insert(41, 41);
        assert_eq!(map.step, 0);
        for token in (1..=20).map(|i| i * 8).chain([41]) {
            assert_eq!(map.remove(token), Some(token), "token {token}");
        }
        assert_eq!(map.len(), 0);
    }

    #[test]
    fn a_call_stuck_in_flight_neither_blocks_nor_grows_the_table() {
        let mut map = TokenMap::new();
        // One call that never lands, then ten thousand that do, ten at a time.
        map.insert(4, 4);
        let mut next = 8;
        for _ in 0..1_000 {
            let batch: Vec<u32> = (0..10).map(|i| next + 4 * i).collect();
            next += 40;
            for &token in &batch {
                map.insert(token, token);
            }
            for &token in &batch {
                assert_eq!(map.remove(token), Some(token));
            }
            assert_eq!(map.len(), 1);
        }
        assert!(map.direct.len() <= 32, "grew to {}", map.direct.len());
        assert_eq!(map.remove(4), Some(4));
        assert_eq!(map.len(), 0);
    }

    #[test]
    fn tokens_colliding_in_the_direct_table_stay_reachable() {
        let mut map = TokenMap::new();
        // Tokens a whole table apart share a slot.
        let tokens: Vec<u32> = (0..8).map(|i| 5 + i * (DIRECT_MAX as u32)).collect();
        for &token in &tokens {
            map.insert(token, token);
        }
        assert!(!map.overflow.is_empty());
        for &token in tokens.iter().rev() {
            assert_eq!(map.remove(token), Some(token));
        }
        assert_eq!(map.len(), 0);
    }
}
