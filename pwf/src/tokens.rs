//! [`TokenMap`]: the calls in flight, by the host's token.
//!
//! Every call inserts one entry when it is dispatched and removes it when it
//! lands, so this map is on the hot path of every outbound call. Keys are
//! `u32` tokens, which Envoy hands out in sequence: a multiplicative hash
//! spreads them, linear probing finds them in one or two steps, and removal
//! shifts the following entries back instead of leaving tombstones, so the
//! table never needs rebuilding under churn.

/// An open-addressing map from call tokens to `V`.
pub(crate) struct TokenMap<V> {
    /// A power-of-two number of slots (or none), at most half full.
    slots: Vec<Option<(u32, V)>>,
    len: usize,
    /// 32 minus the number of bits of a slot index.
    shift: u32,
}

impl<V> TokenMap<V> {
    /// An empty map; allocates on the first insert.
    pub(crate) const fn new() -> TokenMap<V> {
        TokenMap {
            slots: Vec::new(),
            len: 0,
            shift: 32,
        }
    }

    /// The number of entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The slot where `token`'s probe sequence starts.
    fn home(&self, token: u32) -> usize {
        // Fibonacci hashing: the top bits of the product by 2^32 / phi.
        // Tokens in sequence land far apart, so neighbours do not cluster.
        (token.wrapping_mul(0x9e37_79b9) >> self.shift) as usize
    }

    fn find(&self, token: u32) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let mut index = self.home(token);
        loop {
            match &self.slots[index] {
                Some((key, _)) if *key == token => return Some(index),
                Some(_) => index = (index + 1) & mask,
                None => return None,
            }
        }
    }

    /// Inserts `value` under `token`, which is not in the map: the host
    /// never hands out a token still in flight (the SDK's own dispatcher
    /// refuses one before this is reached).
    pub(crate) fn insert(&mut self, token: u32, value: V) {
        debug_assert!(self.find(token).is_none(), "token {token} is in flight");
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.mask();
        let mut index = self.home(token);
        while self.slots[index].is_some() {
            index = (index + 1) & mask;
        }
        self.slots[index] = Some((token, value));
        self.len += 1;
    }

    /// Removes and returns the value under `token`.
    pub(crate) fn remove(&mut self, token: u32) -> Option<V> {
        let mut hole = self.find(token)?;
        let (_, value) = self.slots[hole].take()?;
        self.len -= 1;
        // Shift back each following entry that may not stay past the hole.
        let mask = self.mask();
        let mut next = (hole + 1) & mask;
        while let Some((key, _)) = &self.slots[next] {
            let home = self.home(*key);
            // The entry stays if its home lies cyclically in (hole, next].
            let stays = if hole <= next {
                hole < home && home <= next
            } else {
                hole < home || home <= next
            };
            if !stays {
                self.slots[hole] = self.slots[next].take();
                hole = next;
            }
            next = (next + 1) & mask;
        }
        Some(value)
    }

    /// Every token in the map, sorted.
    #[cfg(test)]
    fn tokens(&self) -> Vec<u32> {
        let mut tokens: Vec<u32> = self.slots.iter().flatten().map(|(t, _)| *t).collect();
        tokens.sort_unstable();
        tokens
    }

    fn grow(&mut self) {
        let capacity = (self.slots.len() * 2).max(16);
        self.shift = 32 - capacity.trailing_zeros();
        let old = std::mem::replace(&mut self.slots, Vec::with_capacity(capacity));
        self.slots.resize_with(capacity, || None);
        self.len = 0;
        for (token, value) in old.into_iter().flatten() {
            self.insert(token, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn behaves_like_a_map_under_churn() {
        let mut map = TokenMap::new();
        let mut model = BTreeMap::new();
        // A deterministic mix of inserts and removes over clustered and
        // scattered tokens, enough to grow the table and wrap its probes.
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
        assert_eq!(map.tokens(), model.keys().copied().collect::<Vec<_>>());
        for (token, value) in &model {
            assert_eq!(
                map.find(*token).map(|i| map.slots[i].as_ref().unwrap().1),
                Some(*value)
            );
        }
    }

    #[test]
    fn finds_nothing_when_empty() {
        let mut map: TokenMap<()> = TokenMap::new();
        assert!(map.remove(7).is_none());
        assert_eq!(map.len(), 0);
    }

    #[test]
    fn removal_keeps_colliding_entries_reachable() {
        let mut map = TokenMap::new();
        // Sequential tokens, as Envoy hands them out.
        for token in 1..=40 {
            map.insert(token, token * 10);
        }
        for token in (1..=40).step_by(2) {
            assert_eq!(map.remove(token), Some(token * 10));
        }
        for token in 1..=40 {
            let expected = (token % 2 == 0).then_some(token * 10);
            assert_eq!(map.remove(token), expected, "token {token}");
        }
        assert_eq!(map.len(), 0);
    }
}
