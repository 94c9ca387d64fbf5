//! The guide's and the READMEs' snippets, compiled.
//!
//! Each markdown file of `docs/` and each `README.md` of the repository is the
//! documentation of one empty module below, so `cargo test -p pwf-docs-check --doc` compiles
//! every ` ```rust ` block in them as a doc test, and runs those that are not `no_run`. A
//! block that cannot compile on its own is written ` ```rust,ignore ` right after an HTML
//! comment that says why (`<!-- not compiled: ... -->`); `tests/snippets.rs` holds every
//! file to that, and holds the log lines the files show to the tests that produce them.

// The guide shows tests as a user writes them in their own crate: a doc test compiles them
// without running them, which is what is wanted here.
#![allow(clippy::test_attr_in_doctest)]

include!(concat!(env!("OUT_DIR"), "/snippets.rs"));
