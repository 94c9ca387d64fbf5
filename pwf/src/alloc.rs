//! [`Allocator`]: a small-object allocator for plugin VMs.
//!
//! A proxy-wasm plugin allocates and frees many small, short-lived blocks on
//! every request: header names and values, call bookkeeping, log lines, the
//! buffers the host fills. The default allocator of `wasm32-wasip1`
//! (wasi-libc's dlmalloc) spends a few hundred instructions on each of them.
//! This one keeps a free list per power-of-two size class, from 8 bytes to
//! 4 KiB: an allocation pops a block, a free pushes it back, a handful of
//! instructions each. Blocks come from 32 KiB chunks taken from the system
//! allocator, which also serves every larger allocation.
//!
//! Freed small blocks stay in their class for reuse; they are not handed
//! back to the system allocator (a wasm memory never shrinks either). A
//! plugin VM is single-threaded, so there is no locking.
//!
//! With the default `allocator` feature, pwf installs it as the global
//! allocator of wasm builds. A plugin that brings its own global allocator
//! turns the feature off:
//!
//! ```toml
//! pwf = { version = "0.1", default-features = false }
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr::{self, null_mut};

/// The smallest block: a free block holds the next free block's address.
const MIN_BLOCK: usize = 8;
/// The number of size classes: 8, 16, …, 4096 bytes.
const CLASSES: usize = 10;
/// The largest block a size class serves.
const MAX_BLOCK: usize = MIN_BLOCK << (CLASSES - 1);
/// The size of a chunk taken from the system allocator for small blocks.
const CHUNK: usize = 32 * 1024;

/// The size class of `layout`, or `None` for a large one.
#[inline]
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size().max(layout.align());
    if size > MAX_BLOCK {
        return None;
    }
    if size <= MIN_BLOCK {
        return Some(0);
    }
    // The power of two at or above `size`, as an index from 8 bytes.
    let bits = usize::BITS - (size - 1).leading_zeros();
    Some(bits as usize - MIN_BLOCK.trailing_zeros() as usize)
}

/// The block size of class `class`.
#[inline]
fn block_size(class: usize) -> usize {
    MIN_BLOCK << class
}

/// The state behind [`Allocator`]: one free list per class, and the rest of
/// the current chunk.
struct Pools {
    free: [*mut u8; CLASSES],
    /// The unused part of the current chunk: `next..end`.
    next: usize,
    end: usize,
}

impl Pools {
    const fn new() -> Pools {
        Pools {
            free: [null_mut(); CLASSES],
            next: 0,
            end: 0,
        }
    }

    /// A block of class `class`.
    ///
    /// # Safety
    ///
    /// Single-threaded use only.
    #[inline]
    unsafe fn alloc(&mut self, class: usize) -> *mut u8 {
        let head = self.free[class];
        if !head.is_null() {
            // SAFETY: a free block starts with the address of the next one.
            self.free[class] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        // SAFETY: forwarded.
        unsafe { self.carve(class) }
    }

    /// A block of class `class` cut from the current chunk, or from a new one.
    #[cold]
    unsafe fn carve(&mut self, class: usize) -> *mut u8 {
        let size = block_size(class);
        // Blocks are aligned to their size (chunks are aligned to MAX_BLOCK).
        let mut start = (self.next + size - 1) & !(size - 1);
        if self.next == 0 || start + size > self.end {
            // The rest of the old chunk is left: at most one block of each
            // class, and only when a larger block did not fit.
            // SAFETY: the layout is non-zero and its alignment a power of two.
            let chunk =
                unsafe { System.alloc(Layout::from_size_align_unchecked(CHUNK, MAX_BLOCK)) };
            if chunk.is_null() {
                return null_mut();
            }
            self.next = chunk as usize;
            self.end = self.next + CHUNK;
            start = self.next;
        }
        self.next = start + size;
        start as *mut u8
    }

    /// Returns a block of class `class`.
    ///
    /// # Safety
    ///
    /// `block` came from [`alloc`](Pools::alloc) with the same class and is
    /// not used after this.
    #[inline]
    unsafe fn dealloc(&mut self, block: *mut u8, class: usize) {
        // SAFETY: the block is at least 8 bytes and aligned to its size.
        unsafe { block.cast::<*mut u8>().write(self.free[class]) };
        self.free[class] = block;
    }
}

/// The small-object allocator pwf installs in wasm builds (see the
/// [module documentation](self)): free lists per power-of-two size class up
/// to 4 KiB, the system allocator beyond.
///
/// It is meant for a single-threaded plugin VM: only one thread may ever use
/// one instance, which is what a `wasm32-wasip1` module guarantees. Nothing
/// in it is synchronized, so creating one is `unsafe`: the caller promises
/// that single thread.
///
/// ```
/// use std::alloc::{GlobalAlloc, Layout};
///
/// // SAFETY: used by this thread only, and dropped here.
/// let allocator = unsafe { pwf::alloc::Allocator::new() };
/// let layout = Layout::from_size_align(24, 8).unwrap();
/// unsafe {
///     let block = allocator.alloc(layout);
///     assert!(!block.is_null());
///     allocator.dealloc(block, layout);
///     // The freed block is handed out again first.
///     assert_eq!(allocator.alloc(layout), block);
///     allocator.dealloc(block, layout);
/// }
/// ```
///
/// Safe code cannot create one, so it cannot install one as the global
/// allocator of a multi-threaded program:
///
/// ```compile_fail
/// #[global_allocator]
/// static GLOBAL: pwf::alloc::Allocator = pwf::alloc::Allocator::new();
/// ```
pub struct Allocator {
    pools: UnsafeCell<Pools>,
}

impl Allocator {
    /// An allocator with no memory yet.
    ///
    /// # Safety
    ///
    /// Only one thread may ever use the allocator: as the global allocator,
    /// only in a single-threaded program (a `wasm32` module without the
    /// `atomics` feature, as pwf installs it); otherwise, from the thread
    /// that created it.
    pub const unsafe fn new() -> Allocator {
        Allocator {
            pools: UnsafeCell::new(Pools::new()),
        }
    }
}

// SAFETY: every instance is created through the `unsafe` `new`, whose caller
// promises that one thread only uses it; pwf's global instance is installed
// only in single-threaded wasm builds (see `lib.rs`).
unsafe impl Sync for Allocator {}

// SAFETY: small blocks are aligned to their power-of-two size, which is at
// least the layout's alignment; large ones come from `System` with the
// caller's layout, and move on `realloc`. `dealloc` and `realloc` find the
// class from the layout the block was allocated with, as `GlobalAlloc`
// guarantees.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            // SAFETY: single-threaded (see `Sync`), no reentrancy: `System`
            // never calls back.
            Some(class) => unsafe { (*self.pools.get()).alloc(class) },
            // SAFETY: forwarded.
            None => unsafe { System.alloc(layout) },
        }
    }

    #[inline]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match class_of(layout) {
            // SAFETY: as in `alloc`; the block has this class.
            Some(class) => unsafe { (*self.pools.get()).dealloc(block, class) },
            // SAFETY: forwarded.
            None => unsafe { System.dealloc(block, layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            Some(class) => {
                // SAFETY: as in `alloc`.
                let block = unsafe { (*self.pools.get()).alloc(class) };
                if !block.is_null() {
                    // SAFETY: the block has at least `layout.size()` bytes.
                    unsafe { ptr::write_bytes(block, 0, layout.size()) };
                }
                block
            }
            // SAFETY: forwarded.
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `GlobalAlloc::realloc` requires a valid new layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let old = class_of(layout);
        if old.is_some() && old == class_of(new_layout) {
            // Still fits its block.
            return block;
        }
        // Anything else moves to a block of its new size, large blocks too
        // (docs/architecture.md, "Linking", says why).
        // SAFETY: a fresh block for the new layout, the old contents copied,
        // the old block freed with its own layout.
        unsafe {
            let moved = self.alloc(new_layout);
            if !moved.is_null() {
                ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                self.dealloc(block, layout);
            }
            moved
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_the_powers_of_two_from_8_to_4096() {
        let class = |size, align| class_of(Layout::from_size_align(size, align).unwrap());
        assert_eq!(class(1, 1), Some(0));
        assert_eq!(class(8, 8), Some(0));
        assert_eq!(class(9, 1), Some(1));
        assert_eq!(class(16, 1), Some(1));
        assert_eq!(class(17, 1), Some(2));
        assert_eq!(class(1, 64), Some(3), "alignment counts as size");
        assert_eq!(class(4096, 1), Some(9));
        assert_eq!(class(4097, 1), None);
        assert_eq!(class(8, 8192), None);
        for class in 0..CLASSES {
            let size = block_size(class);
            assert_eq!(
                class_of(Layout::from_size_align(size, 1).unwrap()),
                Some(class)
            );
        }
    }

    /// A deterministic mix of allocations, frees and reallocations of every
    /// size and alignment: each live block keeps its contents, is aligned,
    /// and overlaps no other.
    #[test]
    fn blocks_keep_their_contents_and_never_overlap() {
        // SAFETY: used by this test's thread only.
        let allocator = unsafe { Allocator::new() };
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        let mut seed = 0x9e37_79b9_u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for step in 0..20_000u32 {
            let roll = next();
            if live.is_empty() || roll % 3 != 0 {
                let size = match roll % 7 {
                    0 => 1 + next() as usize % 16,
                    1..=4 => 1 + next() as usize % 600,
                    5 => 1 + next() as usize % 5000,
                    _ => 1 + next() as usize % 70_000,
                };
                let align = 1 << (next() % 8);
                let layout = Layout::from_size_align(size, align).unwrap();
                let fill = step as u8;
                // SAFETY: a valid non-zero layout.
                let block = unsafe { allocator.alloc(layout) };
                assert!(!block.is_null());
                assert_eq!(block as usize % align, 0, "aligned to {align}");
                // SAFETY: the block has `size` bytes.
                unsafe { ptr::write_bytes(block, fill, size) };
                live.push((block, layout, fill));
            } else if roll % 2 == 0 {
                let (block, layout, fill) = live.swap_remove(next() as usize % live.len());
                // SAFETY: the block is live with this layout.
                let bytes = unsafe { std::slice::from_raw_parts(block, layout.size()) };
                assert!(bytes.iter().all(|b| *b == fill), "contents kept");
                // SAFETY: as above.
                unsafe { allocator.dealloc(block, layout) };
            } else {
                let index = next() as usize % live.len();
                let (block, layout, fill) = live[index];
                let new_size = 1 + next() as usize % 9000;
                // SAFETY: the block is live with this layout.
                let moved = unsafe { allocator.realloc(block, layout, new_size) };
                assert!(!moved.is_null());
                let kept = layout.size().min(new_size);
                // SAFETY: the block has at least `kept` bytes.
                let bytes = unsafe { std::slice::from_raw_parts(moved, kept) };
                assert!(bytes.iter().all(|b| *b == fill), "contents moved");
                let layout = Layout::from_size_align(new_size, layout.align()).unwrap();
                // SAFETY: the block has `new_size` bytes.
                unsafe { ptr::write_bytes(moved, fill, new_size) };
                live[index] = (moved, layout, fill);
            }
            if step % 1000 == 0 {
                let mut spans: Vec<(usize, usize)> = live
                    .iter()
                    .map(|(block, layout, _)| (*block as usize, *block as usize + layout.size()))
                    .collect();
                spans.sort_unstable();
                assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "no overlap");
            }
        }
        for (block, layout, _) in live {
            // SAFETY: the block is live with this layout.
            unsafe { allocator.dealloc(block, layout) };
        }
    }

    #[test]
    fn alloc_zeroed_zeroes_a_reused_block() {
        // SAFETY: used by this test's thread only.
        let allocator = unsafe { Allocator::new() };
        let layout = Layout::from_size_align(100, 4).unwrap();
        // SAFETY: valid layouts; each block is written within its size.
        unsafe {
            let block = allocator.alloc(layout);
            ptr::write_bytes(block, 0xaa, 100);
            allocator.dealloc(block, layout);
            let zeroed = allocator.alloc_zeroed(layout);
            assert_eq!(zeroed, block, "the freed block is reused");
            assert!(std::slice::from_raw_parts(zeroed, 100)
                .iter()
                .all(|b| *b == 0));
            allocator.dealloc(zeroed, layout);
        }
    }
}
