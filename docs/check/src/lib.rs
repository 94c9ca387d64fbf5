//! The guide's and the READMEs' snippets, compiled.
//!
//! Each markdown file of `docs/` and each `README.md` of the repository is the
//! documentation of one empty module below, so `cargo test -p pwf-docs-check --doc` compiles
//! every ` ```rust ` block in them as a doc test, and runs those that are not `no_run`. A
//! block that cannot compile on its own is written ` ```rust,ignore ` right after an HTML
//! comment that says why (`<!-- not compiled: ... -->`); `tests/snippets.rs` holds every
//! file to that.
//!
//! A block fenced ` ```text `, ` ```console ` or ` ```log ` is output, and
//! `tests/snippets.rs` holds what it shows to the tests: every line (after Envoy's
//! `[level][logger] ... ` prefix; not blank lines, `...`, `$ ` commands or `# ` narration)
//! must occur in a test source or a UI `.stderr` file, `<placeholders>` and `...` standing
//! for what varies, and a `wasm log` line whole, Envoy's prefix included. A block that is not
//! real output (a diagram, a file tree), or a transcript that changes from run to run, is
//! written right after `<!-- not checked: ... -->` saying why; the messages of its
//! `wasm log` lines are still checked.

// The guide shows tests as a user writes them in their own crate: a doc test compiles them
// without running them, which is what is wanted here.
#![allow(clippy::test_attr_in_doctest)]

include!(concat!(env!("OUT_DIR"), "/snippets.rs"));
