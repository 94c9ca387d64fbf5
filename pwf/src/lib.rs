//! Write Envoy HTTP filters as proxy-wasm plugins, without the boilerplate.
//!
//! A plugin is one type for the plugin (its configuration and plugin-wide
//! state), one type per HTTP stream (the filter), and one registration line.
//!
//! # Example
//!
//! ```
//! use std::rc::Rc;
//! use pwf::{Action, Error, Http, HttpFilter, Plugin, PluginConfig, PluginContext};
//!
//! #[derive(PluginConfig)]
//! struct Config {
//!     #[config(default = "x-powered-by", non_empty)]
//!     name: String,
//!     #[config(default = "pwf")]
//!     value: String,
//! }
//!
//! struct AddHeader {
//!     config: Config,
//! }
//!
//! impl Plugin for AddHeader {
//!     type Config = Config;
//!     type Filter = Filter;
//!
//!     fn configure(config: Config, _: &PluginContext) -> Result<Self, Error> {
//!         Ok(AddHeader { config })
//!     }
//!
//!     fn filter(plugin: &Rc<Self>, _: &Http) -> Filter {
//!         Filter { plugin: plugin.clone() }
//!     }
//! }
//!
//! struct Filter {
//!     plugin: Rc<AddHeader>,
//! }
//!
//! impl HttpFilter for Filter {
//!     fn on_response_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
//!         http.set_response_header(&self.plugin.config.name, &self.plugin.config.value)?;
//!         Ok(Action::Continue)
//!     }
//! }
//!
//! pwf::main!(AddHeader);
//! ```
//!
//! # Features
//! - [`#[derive(PluginConfig)]`](derive@PluginConfig): typed, validated
//!   configuration, rejected at load with messages that name the field.
//! - [`SharedCounter`] and [`SharedValue`]: exact shared state across workers.
//! - [`RateLimiter`], [`SharedCache`] and [`SharedTable`]: per-key shared
//!   state whose memory stays bounded, whatever the number of keys.
//! - [`Request`] and [`DispatchGroup`]: outbound calls without token maps.
//! - [`Http::spawn`]: async filters that `.await` their calls.
//! - Every host status is a `Result`; pwf never panics on one.
//! - The `pwf-test` crate: a native test host with Envoy's semantics.

#![deny(missing_docs)]

// The native test host defines the host imports for the unit tests.
#[cfg(test)]
use pwf_test as _;

mod call;
mod context;
mod error;
mod executor;
mod group;
mod grpc;
#[cfg(feature = "grpc-streams")]
mod grpc_stream;
mod headers;
mod hooks;
mod host;
mod http;
mod plugin;
mod queue;
mod ratelimit;
mod shared;
mod shown;
mod slot;
mod tcp;
mod tokens;

pub mod alloc;
pub mod cache;
pub mod config;
pub mod log;
pub mod metrics;
pub mod properties;
pub mod table;
pub mod timer;

/// What the VM's runtime holds right now: for metrics, diagnostics and tests.
pub mod runtime {
    /// The number of HTTP calls dispatched and still awaited in this VM.
    ///
    /// ```
    /// // Nothing is in flight before the first call.
    /// assert_eq!(pwf::runtime::pending_calls(), 0);
    /// ```
    pub fn pending_calls() -> usize {
        crate::call::pending_calls()
    }

    /// The number of tasks alive in this VM (pending, not yet dropped).
    ///
    /// ```
    /// // No task runs before a filter or the plugin spawns one.
    /// assert_eq!(pwf::runtime::live_tasks(), 0);
    /// ```
    pub fn live_tasks() -> usize {
        crate::executor::live_tasks()
    }

    /// The gRPC calls in flight (sent, not yet answered nor cancelled).
    ///
    /// ```
    /// # use pwf_test as _; // links the native host's imports
    /// assert_eq!(pwf::runtime::pending_grpc_calls(), 0);
    /// ```
    pub fn pending_grpc_calls() -> usize {
        crate::grpc::pending_grpc_calls()
    }

    /// The gRPC streams open (opened, not yet closed nor cancelled).
    #[cfg(feature = "grpc-streams")]
    ///
    /// ```
    /// # use pwf_test as _; // links the native host's imports
    /// assert_eq!(pwf::runtime::open_grpc_streams(), 0);
    /// ```
    pub fn open_grpc_streams() -> usize {
        crate::grpc_stream::open_grpc_streams()
    }
}

#[doc(hidden)]
pub mod __private;

/// The global allocator of a plugin VM: see [`alloc`].
#[cfg(all(
    feature = "allocator",
    target_family = "wasm",
    not(target_feature = "atomics")
))]
#[global_allocator]
// SAFETY: a wasm32 module without the `atomics` feature runs on one thread.
static GLOBAL: alloc::Allocator = unsafe { alloc::Allocator::new() };

pub use cache::SharedCache;
pub use call::{CallError, CallErrorKind, PendingCall, Request, Response, DEFAULT_TIMEOUT};
pub use config::PluginConfig;
pub use error::{Error, HostError, Status};
pub use group::{CallResult, DispatchGroup};
pub use grpc::{GrpcError, GrpcErrorKind, GrpcRequest, GrpcResponse, PendingGrpcCall};
#[cfg(feature = "grpc-streams")]
pub use grpc_stream::GrpcStream;
pub use headers::{HeaderValue, Headers, InvalidHeader};
pub use http::{Action, Http, LocalResponse, Outcome, Phase};
pub use log::LogLevel;
pub use plugin::{register, root_context, HttpFilter, Plugin, PluginContext};
pub use pwf_macros::PluginConfig;
pub use queue::SharedQueue;
pub use ratelimit::{Decision, RateLimit, RateLimiter};
pub use shared::{SharedCounter, SharedError, SharedValue, DEFAULT_MAX_ATTEMPTS};
pub use table::SharedTable;
pub use tcp::{register_tcp, tcp_root_context, Peer, Tcp, TcpFilter, TcpPlugin};

// The README's and the guide's snippets (docs/features/grpc.md and sharing.md among them) are
// compiled once, by `docs/check`, not here as well: there every page is a module named after
// its file (`docs_features_sharing_md`), so a failing snippet names the page it is on, and
// the test command shows that check failing on a broken snippet.
