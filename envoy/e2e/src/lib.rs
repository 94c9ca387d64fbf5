//! End-to-end tests: the plugins in a real Envoy, driven through `envoy-harness`.
//!
//! The tests live in `tests/`, one file per plugin (and `harness.rs` for the harness
//! itself; `hostile.rs` for hostile input, with `envoy/testdata/hostile-plugin`). They need the release wasm of the plugins they run, so run them after the
//! builds, as `cargo xtask test` does:
//!
//! ```text
//! cargo build --target wasm32-wasip1 --release -p probe-plugin -p hostile-plugin -p <example>...
//! cargo test -p envoy-e2e
//! ```
//!
//! A test whose wasm is missing fails and says which build command to run.
