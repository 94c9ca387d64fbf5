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

/// The optimal string alignment distance: how many one-byte insertions, deletions,
/// substitutions and swaps of two neighbouring bytes turn `a` into `b` (for ASCII keys, as for
/// any keys in a case style, one byte is one character). A swap counts as one edit, so
/// `nmae` is one edit from `name`, as a typist sees it. `b` is at most [`MAX_COMPARED`] bytes
/// long; a longer one is at `usize::MAX`.
///
/// Written here rather than taken from `strsim` (`osa_distance`; clap takes its suggestions
/// from the same crate) for size: measured in the three budgeted examples, `strsim` made each
/// `.wasm` 1.4 kB larger as built and 1.06 kB larger after `wasm-opt -O3` (it compares `char`s
/// and allocates its rows).
#[inline(never)]
fn distance(a: &[u8], b: &[u8]) -> usize {
    // Three rows of the edit-distance table: `row[j]` is the distance between the first `i`
    // bytes of `a` and the first `j` of `b`, `previous` the same for `i - 1`, and `before`
    // for `i - 2` (a swap looks two rows back).
    let mut tables = [[0; MAX_COMPARED + 1]; 3];
    if b.len() > MAX_COMPARED {
        return usize::MAX;
    }
    let [before, previous, row] = &mut tables;
    for (j, cell) in previous.iter_mut().enumerate().take(b.len() + 1) {
        *cell = j;
    }
    for (i, &ca) in a.iter().enumerate() {
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            let mut best = substitution.min(previous[j + 1] + 1).min(row[j] + 1);
            let swapped = i > 0 && j > 0 && ca == b[j - 1] && a[i - 1] == cb;
            if swapped {
                best = best.min(before[j - 1] + 1);
            }
            row[j + 1] = best;
        }
        std::mem::swap(before, previous);
        std::mem::swap(previous, row);
    }
    previous[b.len()]
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
    /// Swapped letters were two edits, and short keys got no suggestion.
    fn distance_counts_a_swap_as_one_edit() {
        assert_eq!(distance(b"name", b"nmae"), 1);
        assert_eq!(distance(b"value", b"vaule"), 1);
        assert_eq!(distance(b"ab", b"ba"), 1);
        assert_eq!(distance(b"abc", b"ca"), 3);
    }

    #[test]
    fn closest_suggests_keys_with_swapped_letters() {
        assert_eq!(closest("nmae", &["name", "port"]), Some("name"));
        assert_eq!(closest("vaule", &["value"]), Some("value"));
        assert_eq!(closest("prot", &["name", "port"]), Some("port"));
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
