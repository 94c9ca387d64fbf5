//! A test host for proxy-wasm plugins: drive a plugin through Envoy's lifecycle in
//! `cargo test`, with Envoy's semantics and no Envoy, natively or against its `.wasm`.
//!
//! Natively (the default), the plugin crate is linked into the test (as an `rlib`); this
//! crate defines the proxy-wasm host calls that `proxy-wasm` 0.2.5 imports and calls the
//! SDK's `proxy_on_*` entry points. In wasm mode (`PWF_TEST_MODE=wasm`, or
//! [`HostBuilder::mode`]) the same host calls serve the plugin's release module in
//! wasmtime, started through its real exports, with Envoy's WASI; [`Vm::fuel`] and
//! [`Vm::memory_pages`] read what it costs. Each VM (one Envoy worker) runs on its own
//! thread, because the SDK keeps its dispatcher in a thread-local; tests on different
//! threads never see each other.
//!
//! # Example
//!
//! A plugin that asks an auth service before letting a request through, and its test:
//!
//! ```
//! use std::time::Duration;
//! use proxy_wasm::traits::{Context, HttpContext, RootContext};
//! use proxy_wasm::types::{Action as SdkAction, ContextType};
//! use pwf_test::{Action, Delivery, Direction, Host};
//!
//! struct Root;
//! impl Context for Root {}
//! impl RootContext for Root {
//!     fn get_type(&self) -> Option<ContextType> {
//!         Some(ContextType::HttpContext)
//!     }
//!     fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
//!         Some(Box::new(Auth))
//!     }
//! }
//!
//! struct Auth;
//! impl Context for Auth {
//!     fn on_http_call_response(&mut self, _token: u32, headers: usize, _body: usize, _t: usize) {
//!         let allowed = headers > 0
//!             && self.get_http_call_response_header(":status").as_deref() == Some("200");
//!         if allowed {
//!             self.resume_http_request();
//!         } else {
//!             self.send_http_response(403, vec![("x-denied-by", "auth")], Some(b"denied"));
//!         }
//!     }
//! }
//! impl HttpContext for Auth {
//!     fn on_http_request_headers(&mut self, _headers: usize, _eos: bool) -> SdkAction {
//!         let user = self.get_http_request_header("x-user").unwrap_or_default();
//!         let headers = vec![(":method", "GET"), (":path", "/check"), (":authority", "auth"),
//!                            ("x-user", user.as_str())];
//!         match self.dispatch_http_call("auth", headers, None, vec![], Duration::from_secs(1)) {
//!             Ok(_) => SdkAction::Pause,
//!             Err(_) => SdkAction::Continue,
//!         }
//!     }
//! }
//!
//! // The root-context factory the plugin's `proxy_wasm::main!` passes to the SDK.
//! fn root(_context_id: u32) -> Box<dyn RootContext> {
//!     Box::new(Root)
//! }
//!
//! let host = Host::builder().cluster("auth").build();
//! let plugin = host.start_vm_with_root(root).unwrap().configure("").unwrap();
//!
//! // An allowed request: paused until the auth service answers 200, then resumed.
//! let stream = plugin.open_stream();
//! let request = [(":method", "GET"), (":path", "/"), (":authority", "app"), ("x-user", "ann")];
//! assert_eq!(stream.request_headers(request, true), Action::Pause);
//! let calls = stream.pending_calls();
//! assert_eq!(calls.len(), 1);
//! assert_eq!(calls[0].cluster(), "auth");
//! assert_eq!(calls[0].header("x-user").as_deref(), Some("ann"));
//! assert_eq!(calls[0].timeout(), Some(Duration::from_secs(1)));
//! assert_eq!(calls[0].respond(200, [("x-ok", "1")], ""), Delivery::Delivered);
//! assert!(stream.resumed(Direction::Request).is_some());
//! assert_eq!(stream.local_response(), None);
//!
//! // A dead auth service: Envoy answers 503 itself, and the plugin denies.
//! let stream = plugin.open_stream();
//! assert_eq!(stream.request_headers(request, true), Action::Pause);
//! stream.pending_calls()[0].refuse();
//! let denied = stream.local_response().unwrap();
//! assert_eq!((denied.status, denied.body.as_slice()), (403, &b"denied"[..]));
//! assert_eq!(stream.response_header("x-denied-by").as_deref(), Some("auth"));
//! stream.end().unwrap();
//! ```
//!
//! # What it emulates
//!
//! - TCP connections (network filters): [`Plugin::open_connection`] runs
//!   `proxy_on_new_connection`; [`Connection`] delivers bytes each way through the
//!   DownstreamData and UpstreamData buffers (held after a Pause, as Envoy's read buffer
//!   holds them), close events with their [`Peer`], and records what the plugin
//!   forwarded, resumed and closed.
//! - Lifecycle: [`Host::start_vm`] runs the entry function, `on_vm_start` with the VM
//!   configuration; [`Vm::configure`] runs `on_configure` with the plugin configuration
//!   readable only meanwhile; a second `configure` is a listener update (a new root
//!   context). [`Plugin::open_stream`], the [`Stream`] phases, [`Stream::end`].
//! - Header maps are readable and writable only while Envoy holds them for the filter:
//!   during their phase, and after a Pause until the stream is continued. Elsewhere a
//!   value read or a write gets BadArgument, as in Envoy (the raw SDK panics on it).
//! - Local responses are sent once the callback returns and run through the plugin's own
//!   response phases, as Envoy's do; later phases of the stream are [`Action::Skipped`].
//! - HTTP calls: dispatch fails with BadArgument for an undeclared cluster or a missing
//!   `:method`, `:path` or `:authority`; answers, resets ([`Call::reset`]), refusals
//!   (503) and timeouts (504) as Envoy delivers them; a stream's calls die with it.
//! - Shared data: `cas` 0 writes unconditionally, a missing key is inserted whatever the
//!   `cas`, one CAS counter; VMs of one host share the store, so tests can interleave
//!   workers, down to inside a get/set sequence with [`Host::before_set_shared_data`].
//! - Queues (with `on_queue_ready` delivered after the enqueuing callback), metrics,
//!   logs, properties, a test-controlled clock, ticks.
//! - A panic in the plugin fails its VM, as a trap does in Envoy: the phase returns
//!   [`Action::Failed`] with the message, and every later call into that VM fails. Start
//!   VMs from the root-context factory ([`Host::start_vm_with_root`]) so the host can
//!   catch the panic; see [`Host::start_vm`] for the limits of an entry function.
//!
//! Not emulated: gRPC calls and streams (they fail to dispatch), foreign functions
//! (NotFound).

#[cfg(not(target_arch = "wasm32"))]
mod abi;
#[cfg(not(target_arch = "wasm32"))]
mod api;
#[cfg(not(target_arch = "wasm32"))]
mod grpc;
#[cfg(not(target_arch = "wasm32"))]
mod guard;
#[cfg(not(target_arch = "wasm32"))]
mod guest;
#[cfg(not(target_arch = "wasm32"))]
mod headers;
#[cfg(not(target_arch = "wasm32"))]
mod imports;
#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(not(target_arch = "wasm32"))]
mod profile;
#[cfg(not(target_arch = "wasm32"))]
mod runtime;
#[cfg(not(target_arch = "wasm32"))]
mod state;
#[cfg(not(target_arch = "wasm32"))]
mod wasm;

#[cfg(not(target_arch = "wasm32"))]
pub use api::{
    release_module, Action, Call, CallState, Callback, ConfigureError, Connection,
    ConnectionResume, Delivery, Direction, Host, HostBuilder, LocalResponse, LogEntry, Metric,
    Mode, Peer, Plugin, Resume, Side, StartError, Stream, Vm, VmFailed, REFUSED_BODY, START_TIME,
    TIMEOUT_BODY,
};
#[cfg(not(target_arch = "wasm32"))]
pub use grpc::{GrpcCall, GrpcStreamCall, GRPC_REFUSED_MESSAGE, GRPC_TIMEOUT_MESSAGE};
#[cfg(not(target_arch = "wasm32"))]
pub use headers::{Headers, IntoHeaders};
#[cfg(not(target_arch = "wasm32"))]
pub use profile::{FunctionProfile, Profile};
#[cfg(not(target_arch = "wasm32"))]
pub use proxy_wasm::types::LogLevel;
