//! Filling a slot that is known to be empty.

use std::cell::Cell;

/// Puts `value` into `slot`, which is empty: a call's result that lands
/// once, a waker taken out just before, a task put back after its poll.
///
/// The `None` it replaces owns nothing, so it is forgotten instead of
/// dropped: the caller carries no drop code for a value that is never
/// there. Debug builds check that the slot was empty; were it not, the old
/// value would leak, not be dropped twice. A `&mut Option<T>` is filled
/// through [`Cell::from_mut`].
pub(crate) fn fill<T>(slot: &Cell<Option<T>>, value: T) {
    let old = slot.replace(Some(value));
    debug_assert!(old.is_none(), "filled a slot that was not empty");
    std::mem::forget(old);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_puts_the_value_into_an_empty_slot() {
        let slot = Cell::new(None);
        fill(&slot, 7);
        assert_eq!(slot.take(), Some(7));

        let mut plain = None;
        fill(Cell::from_mut(&mut plain), "task");
        assert_eq!(plain, Some("task"));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "filled a slot that was not empty")]
    fn fill_of_a_full_slot_fails_in_debug_builds() {
        let slot = Cell::new(Some(1));
        fill(&slot, 2);
    }
}
