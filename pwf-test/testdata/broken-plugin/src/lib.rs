//! A plugin with a fault per request path, each one invisible to a native test and
//! caught against the compiled module (pwf-test's `tests/wasm_mode.rs`):
//!
//! - `/sleep`: `std::thread::sleep` in a phase (Envoy answers WASI `poll_oneoff` at once,
//!   without an event: the sleep returns early or panics the VM);
//! - `/panic`: a panic with a message;
//! - `/leak`: 1 KiB leaked per request (linear memory grows);
//! - `/alloc`: an allocation pattern over every size class of `pwf::alloc`, reallocs
//!   across classes and alignments up to 4096, contents checked; answers
//!   `x-alloc-checked: <blocks>` on the request, or panics naming the first bad block.
//!
//! Build: `cargo build --target wasm32-wasip1 --release -p broken-plugin`.

use std::alloc::{alloc, dealloc, realloc, Layout};
use std::rc::Rc;
use std::time::Duration;

use pwf::{Action, Error, Http, HttpFilter, Plugin, PluginContext};

/// The plugin: its filter does what the request path says.
pub struct Broken;

impl Plugin for Broken {
    type Config = ();
    type Filter = BrokenFilter;

    fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
        Ok(Broken)
    }

    fn filter(_: &Rc<Self>, _: &Http) -> BrokenFilter {
        BrokenFilter
    }
}

/// The filter of [`Broken`].
pub struct BrokenFilter;

impl HttpFilter for BrokenFilter {
    fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        let path = http.request_header(":path")?.unwrap_or_default();
        match path.as_bytes() {
            b"/sleep" => std::thread::sleep(Duration::from_millis(1)),
            b"/panic" => panic!("broken-plugin: /panic was asked for"),
            b"/leak" => {
                Box::leak(vec![7u8; 1024].into_boxed_slice());
            }
            b"/alloc" => {
                let blocks = stress_allocator();
                http.set_request_header("x-alloc-checked", blocks.to_string())?;
            }
            _ => {}
        }
        Ok(Action::Continue)
    }
}

/// Fills `size` bytes at `block` with a pattern that names the block.
///
/// # Safety
/// `block` must be valid for `size` bytes of writes.
unsafe fn fill(block: *mut u8, size: usize, seed: usize) {
    for n in 0..size {
        // SAFETY: the caller passes a block of `size` bytes.
        unsafe { *block.add(n) = (seed.wrapping_mul(31).wrapping_add(n) % 251) as u8 };
    }
}

/// Whether the first `size` bytes at `block` still hold their pattern.
///
/// # Safety
/// `block` must be valid for `size` bytes of reads.
unsafe fn intact(block: *const u8, size: usize, seed: usize) -> bool {
    // SAFETY: the caller passes a block of `size` bytes.
    (0..size)
        .all(|n| unsafe { *block.add(n) } == (seed.wrapping_mul(31).wrapping_add(n) % 251) as u8)
}

/// Allocates blocks of every size class (1 byte to 8 KiB, so past the largest class too),
/// at alignments 1 to 4096, grows and shrinks them across classes with `realloc`, and
/// checks every block's contents after every step, with all blocks alive at once (so an
/// overlap shows). Returns the number of blocks checked; panics on the first bad one.
fn stress_allocator() -> usize {
    let mut sizes = Vec::new();
    let mut size = 1;
    while size <= 8192 {
        sizes.extend([size - 1, size, size + 1].into_iter().filter(|&s| s > 0));
        size *= 2;
    }
    let mut blocks: Vec<(*mut u8, Layout, usize)> = Vec::new();
    for (index, &size) in sizes.iter().enumerate() {
        let mut align = 1;
        while align <= 4096 {
            let layout = Layout::from_size_align(size, align).expect("a valid layout");
            // SAFETY: the layout has a non-zero size.
            let block = unsafe { alloc(layout) };
            assert!(!block.is_null(), "alloc({size}, align {align}) failed");
            assert_eq!(
                block as usize % align,
                0,
                "alloc({size}) is not aligned to {align}"
            );
            let seed = index * 13 + align;
            // SAFETY: `block` has `size` bytes.
            unsafe { fill(block, size, seed) };
            blocks.push((block, layout, seed));
            align *= 8;
        }
    }
    let check = |blocks: &[(*mut u8, Layout, usize)], step: &str| {
        for &(block, layout, seed) in blocks {
            // SAFETY: every block is alive with its layout's size.
            let ok = unsafe { intact(block, layout.size(), seed) };
            assert!(
                ok,
                "{step}: block of {} bytes (align {}) lost its contents",
                layout.size(),
                layout.align()
            );
        }
    };
    check(&blocks, "after alloc");
    // Grow every other block to the next-but-one class and shrink the rest, so that
    // reallocs cross classes both ways while every other block stays put.
    for (n, entry) in blocks.iter_mut().enumerate() {
        let (block, layout, seed) = *entry;
        let new_size = if n % 2 == 0 {
            layout.size() * 4 + 3
        } else {
            layout.size().div_ceil(3)
        };
        // SAFETY: `block` was allocated with `layout`; the new size is not zero.
        let moved = unsafe { realloc(block, layout, new_size) };
        assert!(
            !moved.is_null(),
            "realloc({} -> {new_size}) failed",
            layout.size()
        );
        assert_eq!(
            moved as usize % layout.align(),
            0,
            "realloc lost the alignment {}",
            layout.align()
        );
        let kept = layout.size().min(new_size);
        // SAFETY: `moved` has `new_size` bytes, of which `kept` were copied.
        let ok = unsafe { intact(moved, kept, seed) };
        assert!(
            ok,
            "realloc({} -> {new_size}, align {}) lost the contents",
            layout.size(),
            layout.align()
        );
        // SAFETY: as above.
        unsafe { fill(moved, new_size, seed) };
        let layout = Layout::from_size_align(new_size, layout.align()).expect("a valid layout");
        *entry = (moved, layout, seed);
    }
    check(&blocks, "after realloc");
    // Free every third block, allocate again from the free lists, check everything.
    let mut kept = Vec::new();
    for (n, (block, layout, seed)) in blocks.into_iter().enumerate() {
        if n % 3 == 0 {
            // SAFETY: allocated with `layout`.
            unsafe { dealloc(block, layout) };
            // SAFETY: the layout has a non-zero size.
            let again = unsafe { alloc(layout) };
            assert!(!again.is_null());
            // SAFETY: `again` has the layout's size.
            unsafe { fill(again, layout.size(), seed + 1) };
            kept.push((again, layout, seed + 1));
        } else {
            kept.push((block, layout, seed));
        }
    }
    check(&kept, "after reuse");
    let count = kept.len();
    for (block, layout, _) in kept {
        // SAFETY: allocated with `layout`.
        unsafe { dealloc(block, layout) };
    }
    count
}

pwf::main!(Broken);
