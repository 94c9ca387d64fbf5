//! "Did you mean" suggestions for unknown keys.

/// The known key closest to `unknown`, if it is close enough to be a likely typo: the same
/// key written in another case style (`dispatch_count`), or few edits away (`dispatchCont`).
// Out of line, as `distance`: inlined into their one caller they come out larger.
#[inline(never)]
pub(crate) fn closest<'k>(unknown: &str, known: &[&'k str]) -> Option<&'k str> {
    // Long keys cost quadratic time to compare; nobody mistypes a 200-character key.
    if unknown.len() > MAX_COMPARED {
        return None;
    }
    if let Some(same) = known.iter().find(|key| fold(key).eq(fold(unknown))) {
        return Some(same);
    }
    let mut best = None;
    for key in known {
        let distance = distance(key.as_bytes(), unknown.as_bytes());
        let close_enough = distance <= (key.len() / 3).max(1);
        if close_enough && best.is_none_or(|(best, _)| distance < best) {
            best = Some((distance, *key));
        }
    }
    best.map(|(_, key)| key)
}

/// The key's bytes without ASCII case or separators: `dispatch-count`, `DISPATCH_COUNT` and
/// `dispatchCount` all fold to `dispatchcount`. Other characters stay as they are.
fn fold(key: &str) -> impl Iterator<Item = u8> + '_ {
    key.bytes()
        .filter(|b| *b != b'_' && *b != b'-')
        .map(|b| b.to_ascii_lowercase())
}

/// The longest unknown key compared with the known ones.
const MAX_COMPARED: usize = 200;

/// The Levenshtein distance: how many one-byte insertions, deletions and substitutions turn
/// `a` into `b` (for ASCII keys, as for any keys in a case style, one byte is one character).
/// `b` is at most [`MAX_COMPARED`] bytes long; a longer one is at `usize::MAX`.
#[inline(never)]
fn distance(a: &[u8], b: &[u8]) -> usize {
    // One row of the edit-distance table, updated in place: `row[j]` holds the distance
    // between the prefix of `a` read so far and the first `j` bytes of `b`.
    let mut table = [0; MAX_COMPARED + 1];
    let Some(row) = table.get_mut(..=b.len()) else {
        return usize::MAX;
    };
    for (j, cell) in row.iter_mut().enumerate() {
        *cell = j;
    }
    for (i, ca) in a.iter().enumerate() {
        let (mut diagonal, mut left) = (i, i + 1);
        for (cell, cb) in row.iter_mut().skip(1).zip(b) {
            let above = *cell;
            left = (diagonal + usize::from(ca != cb))
                .min(above + 1)
                .min(left + 1);
            diagonal = above;
            *cell = left;
        }
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
    }
    row.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance(b"dispatchCont", b"dispatchCount"), 1);
        assert_eq!(distance(b"", b"abc"), 3);
        assert_eq!(distance(b"kitten", b"sitting"), 3);
        assert_eq!(distance(b"a", &[b'a'; MAX_COMPARED + 1]), usize::MAX);
    }

    #[test]
    fn closest_suggests_typos_and_other_case_styles() {
        let known = ["dispatchCluster", "dispatchCount"];
        assert_eq!(closest("dispatchCont", &known), Some("dispatchCount"));
        assert_eq!(closest("dispatch_count", &known), Some("dispatchCount"));
        assert_eq!(closest("DISPATCH-CLUSTER", &known), Some("dispatchCluster"));
    }

    #[test]
    fn closest_suggests_nothing_for_distant_keys() {
        assert_eq!(closest("timeout", &["dispatchCount"]), None);
        assert_eq!(closest("b", &["a"]), Some("a"));
        assert_eq!(closest("xy", &["ab"]), None);
    }
}
