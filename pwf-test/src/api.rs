//! The test-facing API: a host, its VMs (workers), plugins, streams and calls.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::error::Error;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proxy_wasm::types::{LogLevel, MetricType};

use crate::headers::{Headers, IntoHeaders};
use crate::runtime::{self, Input, Phase, VmInner};
use crate::state::{
    tokens_in_order, CallRecord, CallResponse, Shared, State, StreamState, VmState,
    REQUEST_HEADERS, REQUEST_TRAILERS, RESPONSE_HEADERS, RESPONSE_TRAILERS,
};

/// What a stream phase returned, as Envoy sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The filter let the phase through.
    Continue,
    /// The filter stopped iteration (headers) or buffered (bodies).
    Pause,
    /// Envoy would not call the filter now: the stream already ended, was reset, or was
    /// answered by a local response. The plugin was not called.
    Skipped,
    /// The VM failed (a panic, Envoy's trap), now or earlier; the message says why.
    Failed(String),
    /// Envoy held the data without calling the filter: the request headers are paused
    /// (a Pause from headers is StopAllIterationAndWatermark). The body phase runs with
    /// everything held once the stream is resumed.
    Held,
}

/// A side of an HTTP stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The request, towards the upstream.
    Request,
    /// The response, towards the client.
    Response,
}

/// A side of a TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The client's side: bytes from the client, towards the upstream.
    Downstream = 0,
    /// The upstream's side: bytes from the upstream, towards the client.
    Upstream = 1,
}

/// Who closed a side of a TCP connection, as Envoy reports it (`PeerType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    /// Envoy does not say.
    Unknown = 0,
    /// Envoy closed it.
    Local = 1,
    /// The peer closed it.
    Remote = 2,
}

/// A paused side of a TCP connection resumed by the plugin (`proxy_continue_stream`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnectionResume {
    /// Which side was resumed.
    pub side: Side,
    /// The callback the plugin resumed it from.
    pub during: Callback,
    /// The host's step counter then (see [`Resume::step`]).
    pub step: u64,
}

/// Which callback of the plugin was running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Callback {
    /// `proxy_on_context_create`.
    ContextCreate,
    /// `proxy_on_vm_start`.
    VmStart,
    /// `proxy_on_configure`.
    Configure,
    /// `proxy_on_request_headers`.
    RequestHeaders,
    /// `proxy_on_request_body`.
    RequestBody,
    /// `proxy_on_request_trailers`.
    RequestTrailers,
    /// `proxy_on_response_headers`.
    ResponseHeaders,
    /// `proxy_on_response_body`.
    ResponseBody,
    /// `proxy_on_response_trailers`.
    ResponseTrailers,
    /// `proxy_on_new_connection`.
    NewConnection,
    /// `proxy_on_downstream_data`.
    DownstreamData,
    /// `proxy_on_upstream_data`.
    UpstreamData,
    /// `proxy_on_downstream_connection_close`.
    DownstreamClose,
    /// `proxy_on_upstream_connection_close`.
    UpstreamClose,
    /// `proxy_on_http_call_response`.
    CallResponse,
    /// `proxy_on_tick`.
    Tick,
    /// `proxy_on_queue_ready`.
    QueueReady,
    /// `proxy_on_done`.
    Done,
    /// `proxy_on_log`.
    Log,
    /// `proxy_on_delete`.
    Delete,
}

/// A paused stream resumed by the plugin (`proxy_continue_stream`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Resume {
    /// Which side was resumed.
    pub direction: Direction,
    /// The callback the plugin resumed it from.
    pub during: Callback,
    /// The host's step counter then: every callback into any VM of the host is one step,
    /// so steps order events across streams and workers.
    pub step: u64,
}

/// A response the plugin sent itself (`proxy_send_local_response`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LocalResponse {
    /// HTTP status.
    pub status: u32,
    /// The headers the plugin added (Envoy adds `:status`, `content-length` and
    /// `content-type`; see [`Stream::response_header_map`] for the full response).
    pub headers: Headers,
    /// The body.
    pub body: Vec<u8>,
    /// The gRPC status, if the plugin set one.
    pub grpc_status: Option<i32>,
    /// The response code details.
    pub details: String,
}

/// One line the plugin logged.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LogEntry {
    /// Its level.
    pub level: LogLevel,
    /// The message.
    pub message: String,
    /// The VM (worker) that logged it, in start order from 0.
    pub vm: usize,
    /// The context it was logged from.
    pub context_id: u32,
}

/// A metric's value. Workers share metrics by name, as Envoy's stats do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// A counter.
    Counter(u64),
    /// A gauge.
    Gauge(u64),
    /// A histogram: every recorded value, in order.
    Histogram(Vec<u64>),
}

impl Metric {
    pub(crate) fn kind(&self) -> MetricType {
        match self {
            Metric::Counter(_) => MetricType::Counter,
            Metric::Gauge(_) => MetricType::Gauge,
            Metric::Histogram(_) => MetricType::Histogram,
        }
    }
}

/// Where a dispatched call stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallState {
    /// Waiting for the test to answer it.
    Pending,
    /// Answered (whatever the answer).
    Answered,
    /// Its context ended first; Envoy cancelled it, so no answer will reach the plugin.
    Cancelled,
}

/// What happened to an answer given to a call.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// The plugin's `on_http_call_response` ran.
    Delivered,
    /// The call's context had ended; the answer went nowhere, as in Envoy.
    Cancelled,
    /// The call was already answered; nothing was delivered.
    AlreadyAnswered,
    /// The VM failed, now or earlier; the message says why.
    VmFailed(String),
}

/// Why a VM did not start.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StartError {
    /// `on_vm_start` returned false.
    Rejected,
    /// The VM failed (a panic in the entry function or in `on_vm_start`).
    VmFailed(String),
    /// Wasm mode: the module could not be built, is missing, or cannot be loaded (the
    /// message says why).
    Module(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Rejected => f.write_str("the plugin rejected the VM start"),
            StartError::Module(message) => f.write_str(message),
            StartError::VmFailed(message) => write!(f, "the VM failed: {message}"),
        }
    }
}

impl Error for StartError {}

/// Why a plugin configuration was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ConfigureError {
    /// `on_configure` (or, for a new root context, `on_vm_start`) returned false; Envoy
    /// refuses the configuration.
    Rejected,
    /// The VM failed; the message says why.
    VmFailed(String),
}

impl fmt::Display for ConfigureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigureError::Rejected => f.write_str("the plugin rejected its configuration"),
            ConfigureError::VmFailed(message) => write!(f, "the VM failed: {message}"),
        }
    }
}

impl Error for ConfigureError {}

/// The VM failed (a panic: Envoy's trap); later calls into it fail too.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VmFailed(pub String);

impl fmt::Display for VmFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the VM failed: {}", self.0)
    }
}

impl Error for VmFailed {}

/// The time a host starts at: 2024-01-01T00:00:00Z.
pub const START_TIME: Duration = Duration::from_secs(1_704_067_200);

/// Builds a [`Host`].
#[derive(Debug)]
pub struct HostBuilder {
    vm_id: String,
    plugin_name: String,
    root_id: String,
    clusters: BTreeSet<String>,
    log_level: LogLevel,
    vm_config: Vec<u8>,
    mode: Option<Mode>,
    wasm_module: Option<crate::wasm::Source>,
    profile_functions: bool,
}

/// The release module of package `package` (`<target>/wasm32-wasip1/release/<package>.wasm`,
/// `-` as `_`), after `cargo build --target wasm32-wasip1 --release -p <package>` has run
/// once in this test process, so that it is never missing or older than its code. `Err`
/// says why it could not be built, with cargo's output.
///
/// Wasm mode does this itself for the crate under test; this is for a test that runs
/// another package's module, through [`HostBuilder::wasm_module`].
pub fn release_module(package: &str) -> Result<PathBuf, String> {
    crate::wasm::built_module(package)
}

/// How a [`Host`] runs the plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The plugin crate linked into the test binary: fast, with Rust backtraces.
    Native,
    /// The plugin's compiled `.wasm` in wasmtime: what Envoy loads (`wasm32-wasip1`,
    /// `panic = "abort"`, 32-bit `usize`, pwf's allocator, Envoy's WASI), with its
    /// fuel and linear memory readable ([`Vm::fuel`], [`Vm::memory_pages`]).
    Wasm,
}

impl Mode {
    /// The mode the environment asks for: `PWF_TEST_MODE=wasm` or `native` (unset:
    /// native).
    ///
    /// # Panics
    ///
    /// If `PWF_TEST_MODE` is set to anything else.
    pub fn from_env() -> Mode {
        match std::env::var("PWF_TEST_MODE").as_deref() {
            Err(_) | Ok("") | Ok("native") => Mode::Native,
            Ok("wasm") => Mode::Wasm,
            Ok(other) => panic!("PWF_TEST_MODE must be `native` or `wasm`, not `{other}`"),
        }
    }
}

impl HostBuilder {
    /// Runs the plugin this way, whatever `PWF_TEST_MODE` says (default: [`Mode::from_env`]).
    ///
    /// In [`Mode::Wasm`], [`Host::start_vm`] and [`Host::start_vm_with_root`] ignore
    /// their argument and start the module through its exports (`_initialize`, then
    /// `proxy_on_context_create` and `proxy_on_vm_start`): the module of the crate under
    /// test, `<target>/wasm32-wasip1/release/<crate>.wasm`, built first as
    /// [`release_module`] builds it, unless [`HostBuilder::wasm_module`] names another. A plugin defined in a test exists only
    /// natively: such a test sets [`Mode::Native`].
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Runs the release module of package `package` in wasm mode (implies
    /// [`Mode::Wasm`]), built first as [`release_module`] builds it.
    pub fn wasm_package(mut self, package: &str) -> Self {
        self.mode = Some(Mode::Wasm);
        self.wasm_module = Some(crate::wasm::Source::Package(package.to_owned()));
        self
    }

    /// Runs this module in wasm mode (implies [`Mode::Wasm`]).
    pub fn wasm_module(mut self, path: impl Into<PathBuf>) -> Self {
        self.mode = Some(Mode::Wasm);
        self.wasm_module = Some(crate::wasm::Source::Path(path.into()));
        self
    }

    /// Runs the module in `bytes` in wasm mode (implies [`Mode::Wasm`]).
    pub fn wasm_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.mode = Some(Mode::Wasm);
        self.wasm_module = Some(crate::wasm::Source::Bytes(bytes.into().into()));
        self
    }

    /// Wasm mode: records where the fuel goes function by function
    /// ([`Vm::take_function_profile`]). Slow: for finding where the instructions go.
    pub fn profile_functions(mut self, on: bool) -> Self {
        self.profile_functions = on;
        self
    }

    /// The VM id (shared data and queues are scoped by it); default `""`.
    pub fn vm_id(mut self, vm_id: impl Into<String>) -> Self {
        self.vm_id = vm_id.into();
        self
    }

    /// The plugin name (the `plugin_name` property); default `"plugin"`.
    pub fn plugin_name(mut self, name: impl Into<String>) -> Self {
        self.plugin_name = name.into();
        self
    }

    /// The root id (the `plugin_root_id` property); default `""`.
    pub fn root_id(mut self, root_id: impl Into<String>) -> Self {
        self.root_id = root_id.into();
        self
    }

    /// Declares a cluster that HTTP calls may target; calls to others fail to dispatch.
    pub fn cluster(mut self, name: impl Into<String>) -> Self {
        self.clusters.insert(name.into());
        self
    }

    /// Envoy's log level: what `proxy_get_log_level` answers; lower lines are dropped.
    /// Default `Trace` (keep everything).
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = level;
        self
    }

    /// The VM configuration every VM of this host starts with.
    pub fn vm_config(mut self, config: impl AsRef<[u8]>) -> Self {
        self.vm_config = config.as_ref().to_vec();
        self
    }

    /// Builds the host.
    pub fn build(self) -> Host {
        let state = State {
            vm_id: self.vm_id,
            plugin_name: self.plugin_name,
            root_id: self.root_id,
            clusters: self.clusters,
            log_level: self.log_level,
            now: UNIX_EPOCH + START_TIME,
            properties: HashMap::new(),
            shared_data: HashMap::new(),
            next_cas: 1,
            forced_cas_mismatches: HashMap::new(),
            set_hooks: Vec::new(),
            queues: Vec::new(),
            queue_notifications: VecDeque::new(),
            metrics: Vec::new(),
            logs: Vec::new(),
            step: 0,
            vms: Vec::new(),
            test_panic: None,
        };
        Host {
            shared: Arc::new(Shared::new(state)),
            handles: Arc::new(Mutex::new(Vec::new())),
            vm_config: self.vm_config,
            mode: self.mode.unwrap_or_else(Mode::from_env),
            wasm_module: self.wasm_module,
            profile_functions: self.profile_functions,
        }
    }
}

/// An emulated Envoy: clusters, shared data, queues, metrics, logs, properties and a
/// clock, shared by every VM (worker) started from it.
#[derive(Clone)]
pub struct Host {
    shared: Arc<Shared>,
    handles: Arc<Mutex<Vec<Weak<VmInner>>>>,
    vm_config: Vec<u8>,
    mode: Mode,
    wasm_module: Option<crate::wasm::Source>,
    profile_functions: bool,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host").finish_non_exhaustive()
    }
}

impl Default for Host {
    fn default() -> Self {
        Host::builder().build()
    }
}

fn property_path(path: &[&str]) -> Vec<u8> {
    path.join("\0").into_bytes()
}

impl Host {
    /// Starts building a host.
    pub fn builder() -> HostBuilder {
        HostBuilder {
            vm_id: String::new(),
            plugin_name: "plugin".to_string(),
            root_id: String::new(),
            clusters: BTreeSet::new(),
            log_level: LogLevel::Trace,
            vm_config: Vec::new(),
            mode: None,
            wasm_module: None,
            profile_functions: false,
        }
    }

    /// How this host runs plugins.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Starts a VM (one worker) on its own thread: runs `entry` (the plugin's
    /// registration, e.g. `pwf::register::<MyPlugin>` or a fn calling
    /// `proxy_wasm::set_root_context`), creates the root context and runs `on_vm_start`
    /// with the host's VM configuration.
    ///
    /// The host cannot wrap contexts registered by an entry function, so a plugin panic
    /// meets the SDK's `extern "C"` entry points, which cannot unwind. The host then stops
    /// the VM thread inside the panic hook (the VM fails, as with
    /// [`Host::start_vm_with_root`]), but that thread keeps std's panic-hook lock: the
    /// test harness blocks on it when the test binary exits. Use an entry function only
    /// for plugins that do not panic, or start from the root factory.
    pub fn start_vm(&self, entry: fn()) -> Result<Vm, StartError> {
        self.start_vm_with_config(entry, self.vm_config.clone())
    }

    /// Like [`Host::start_vm`], with this VM configuration.
    pub fn start_vm_with_config(
        &self,
        entry: fn(),
        vm_config: impl AsRef<[u8]>,
    ) -> Result<Vm, StartError> {
        self.start(Entry::Function(entry), vm_config.as_ref())
    }

    /// Starts a VM from the plugin's root-context factory, the function a plugin passes
    /// to `proxy_wasm::set_root_context`. Prefer this to [`Host::start_vm`]: the host
    /// then wraps the plugin's contexts and catches a panic before it reaches the SDK's
    /// `extern "C"` entry points, so a panicking plugin fails only its VM.
    pub fn start_vm_with_root(
        &self,
        root: proxy_wasm::types::NewRootContext,
    ) -> Result<Vm, StartError> {
        self.start(Entry::Root(root), &self.vm_config.clone())
    }

    /// Like [`Host::start_vm_with_root`], with this VM configuration.
    pub fn start_vm_with_root_and_config(
        &self,
        root: proxy_wasm::types::NewRootContext,
        vm_config: impl AsRef<[u8]>,
    ) -> Result<Vm, StartError> {
        self.start(Entry::Root(root), vm_config.as_ref())
    }

    fn start(&self, entry: Entry, vm_config: &[u8]) -> Result<Vm, StartError> {
        let module = match self.mode {
            Mode::Native => None,
            Mode::Wasm => {
                let source = match &self.wasm_module {
                    Some(crate::wasm::Source::Package(package)) => crate::wasm::Source::Path(
                        crate::wasm::built_module(package).map_err(StartError::Module)?,
                    ),
                    Some(source) => source.clone(),
                    None => crate::wasm::Source::Path(
                        crate::wasm::crate_module().map_err(StartError::Module)?,
                    ),
                };
                if let crate::wasm::Source::Path(path) = &source {
                    if !path.is_file() {
                        return Err(StartError::Module(crate::wasm::missing(path)));
                    }
                }
                Some(
                    crate::wasm::load(&source, self.profile_functions)
                        .map_err(StartError::Module)?,
                )
            }
        };
        let index = {
            let mut state = self.shared.lock();
            state.vms.push(VmState {
                vm_config: vm_config.to_vec(),
                ..VmState::default()
            });
            state.vms.len() - 1
        };
        let inner = VmInner::spawn(self.shared.clone(), self.handles.clone(), index)
            .map_err(StartError::VmFailed)?;
        let started = inner.exec(move |shared, vm| {
            match module {
                Some(module) => crate::wasm::start(&module)?,
                None => {
                    runtime::init_sdk();
                    runtime::ensure_panic_hook();
                    match entry {
                        Entry::Function(entry) => entry(),
                        Entry::Root(root) => crate::guard::install(root),
                    }
                    runtime::ensure_panic_hook();
                }
            }
            Ok::<_, String>(runtime::start_root(shared, vm))
        });
        match started {
            Ok(Ok((root, true))) => Ok(Vm {
                inner,
                fresh_root: Arc::new(Mutex::new(Some(root))),
            }),
            Ok(Ok((_, false))) => Err(StartError::Rejected),
            Ok(Err(message)) => {
                inner.fail(&message);
                Err(StartError::Module(message))
            }
            Err(message) => Err(StartError::VmFailed(message)),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.lock()
    }

    /// The messages logged at exactly `level`, in order, by every VM.
    pub fn logs(&self, level: LogLevel) -> Vec<String> {
        self.state()
            .logs
            .iter()
            .filter(|entry| entry.level == level)
            .map(|entry| entry.message.clone())
            .collect()
    }

    /// Every log line, in order.
    pub fn log_entries(&self) -> Vec<LogEntry> {
        self.state().logs.clone()
    }

    /// A metric by the name the plugin defined it with.
    pub fn metric(&self, name: &str) -> Option<Metric> {
        self.state()
            .metrics
            .iter()
            .find(|(defined, _)| defined == name)
            .map(|(_, metric)| metric.clone())
    }

    /// A shared-data value.
    pub fn shared_data(&self, key: &str) -> Option<Vec<u8>> {
        self.state().get_shared_data(key).map(|(value, _)| value)
    }

    /// A shared-data value with its CAS.
    pub fn shared_data_with_cas(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.state().get_shared_data(key)
    }

    /// Writes shared data unconditionally, as a plugin writing with `cas` 0 would.
    pub fn set_shared_data(&self, key: &str, value: impl AsRef<[u8]>) {
        self.state()
            .set_shared_data(key, value.as_ref().to_vec(), 0);
    }

    /// Runs `hook` once, just before the next `set_shared_data` of `key` by `vm`, while
    /// that worker waits inside its host call. The hook may drive other workers (not
    /// `vm` itself): this reproduces the interleavings of real workers.
    pub fn before_set_shared_data(&self, vm: &Vm, key: &str, hook: impl FnOnce() + Send + 'static) {
        self.state()
            .set_hooks
            .push((vm.inner.index, key.to_string(), Box::new(hook)));
    }

    /// Makes the next `times` conditional writes (`cas` != 0) of an existing `key` fail
    /// with CasMismatch, as if another worker had always written first.
    pub fn fail_cas(&self, key: &str, times: u32) {
        self.state()
            .forced_cas_mismatches
            .insert(key.to_string(), times);
    }

    /// The host's clock (what `proxy_get_current_time_nanoseconds` answers). It starts
    /// at [`START_TIME`] after the epoch and moves only when the test moves it.
    pub fn now(&self) -> SystemTime {
        self.state().now
    }

    /// Sets the clock.
    pub fn set_time(&self, now: SystemTime) {
        self.state().now = now;
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut state = self.state();
        state.now += by;
    }

    /// Sets a property for every context (a stream's own properties win), e.g.
    /// `host.set_property(&["source", "address"], "10.0.0.1:4000")`.
    pub fn set_property(&self, path: &[&str], value: impl AsRef<[u8]>) {
        self.state()
            .properties
            .insert(property_path(path), value.as_ref().to_vec());
    }

    /// Every HTTP call dispatched by any VM, in dispatch order.
    pub fn calls(&self) -> Vec<Call> {
        let handles = self
            .handles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let mut calls: Vec<(u64, Call)> = Vec::new();
        let state = self.state();
        for (index, vm) in state.vms.iter().enumerate() {
            let Some(handle) = handles.get(index).and_then(Weak::upgrade) else {
                continue;
            };
            for (token, call) in &vm.calls {
                calls.push((
                    call.step,
                    Call {
                        vm: handle.clone(),
                        token: *token,
                    },
                ));
            }
        }
        calls.sort_by_key(|(step, call)| (*step, call.vm.index, call.token));
        calls.into_iter().map(|(_, call)| call).collect()
    }

    /// Every gRPC call dispatched by any VM, in dispatch order (by VM).
    pub fn grpc_calls(&self) -> Vec<crate::GrpcCall> {
        let handles = self
            .handles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        handles
            .iter()
            .filter_map(Weak::upgrade)
            .flat_map(|vm| crate::grpc::calls_of(&vm, None))
            .collect()
    }

    /// The calls still waiting for an answer.
    pub fn pending_calls(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|call| call.state() == CallState::Pending)
            .collect()
    }

    /// The host's step counter: one step per callback into any VM.
    pub fn step(&self) -> u64 {
        self.state().step
    }
}

enum Entry {
    Function(fn()),
    Root(proxy_wasm::types::NewRootContext),
}

/// One VM: a worker thread running one instance of the plugin.
#[derive(Clone)]
pub struct Vm {
    inner: Arc<VmInner>,
    fresh_root: Arc<Mutex<Option<u32>>>,
}

impl fmt::Debug for Vm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vm")
            .field("index", &self.inner.index)
            .finish()
    }
}

impl Vm {
    /// Configures the plugin: runs `on_configure` with `config` readable during it only.
    ///
    /// The first call configures the root context created at start. Each later call
    /// creates a new root context (`on_vm_start`, then `on_configure`), as Envoy does on
    /// a listener update; shared data survives.
    pub fn configure(&self, config: impl AsRef<[u8]>) -> Result<Plugin, ConfigureError> {
        let config = config.as_ref().to_vec();
        let fresh = self
            .fresh_root
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let outcome = self.inner.exec(move |shared, vm| {
            let (root, started) = match fresh {
                Some(root) => (root, true),
                None => runtime::start_root(shared, vm),
            };
            (
                root,
                started && runtime::configure(shared, vm, root, config),
            )
        });
        match outcome {
            Ok((root, true)) => Ok(Plugin {
                vm: self.inner.clone(),
                root,
            }),
            Ok((_, false)) => Err(ConfigureError::Rejected),
            Err(message) => Err(ConfigureError::VmFailed(message)),
        }
    }

    /// Why the VM failed, if it did.
    pub fn failure(&self) -> Option<String> {
        self.inner.failure()
    }

    /// The VM's index in its host, from 0 in start order.
    pub fn index(&self) -> usize {
        self.inner.index
    }

    /// Wasm mode: the module's linear memory now, in 64 KiB pages; `None` natively (the
    /// plugin shares the test process's memory). Linear memory only grows: a plugin that
    /// keeps something per request shows here as growth over many requests.
    pub fn memory_pages(&self) -> Option<u64> {
        self.inner.with_state(|vm| vm.memory_pages)
    }

    /// Wasm mode: the fuel the module has used so far, from its `_initialize` on (one
    /// unit per wasm operator executed, so the same on any machine); `None` natively.
    /// The difference across a phase is that phase's cost in guest instructions.
    pub fn fuel(&self) -> Option<u64> {
        self.inner.with_state(|vm| vm.fuel)
    }

    /// Wasm mode: where the fuel went between host calls since the last take, and the
    /// host calls made; `None` natively or once the VM failed.
    pub fn take_profile(&self) -> Option<crate::Profile> {
        let taken = self.inner.exec(|_, _| crate::wasm::take_profile());
        taken.ok().flatten()
    }

    /// Wasm mode, with [`HostBuilder::profile_functions`]: where the fuel went function
    /// by function since the last take.
    pub fn take_function_profile(&self) -> Option<crate::FunctionProfile> {
        let taken = self.inner.exec(|_, _| crate::wasm::take_function_profile());
        taken.ok().flatten()
    }
}

/// A configured plugin: one root context of a VM.
#[derive(Clone)]
pub struct Plugin {
    vm: Arc<VmInner>,
    root: u32,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("vm", &self.vm.index)
            .field("root", &self.root)
            .finish()
    }
}

impl Plugin {
    /// Opens an HTTP stream (`proxy_on_context_create`). If the VM fails, the stream's
    /// phases return [`Action::Failed`].
    pub fn open_stream(&self) -> Stream {
        let root = self.root;
        let id = self
            .vm
            .exec(move |shared, vm| runtime::open_stream(shared, vm, root))
            .unwrap_or(0);
        Stream {
            vm: self.vm.clone(),
            id,
        }
    }

    /// Opens a TCP connection as Envoy's network filter does: `proxy_on_context_create`,
    /// then `proxy_on_new_connection`, whose answer [`Connection::opened`] keeps. If the VM
    /// fails, the connection's events return [`Action::Failed`].
    pub fn open_connection(&self) -> Connection {
        let root = self.root;
        let (id, opened) = match self
            .vm
            .exec(move |shared, vm| runtime::open_connection(shared, vm, root))
        {
            Ok((id, opened)) => (id, opened),
            Err(message) => (0, Action::Failed(message)),
        };
        Connection {
            vm: self.vm.clone(),
            id,
            opened,
        }
    }

    /// Runs `proxy_on_tick` once.
    pub fn tick(&self) -> Result<(), VmFailed> {
        let root = self.root;
        self.vm
            .exec(move |shared, vm| runtime::tick(shared, vm, root))
            .map_err(VmFailed)
    }

    /// The tick period the plugin asked for, if any.
    pub fn tick_period(&self) -> Option<Duration> {
        let root = self.root;
        let period = self
            .vm
            .shared
            .lock()
            .root(self.vm.index, root)
            .map_or(0, |root| root.tick_period_ms);
        (period > 0).then(|| Duration::from_millis(u64::from(period)))
    }

    /// The calls dispatched from the root context (e.g. in `on_tick`), in order.
    ///
    /// A call the root sent on a stream's behalf (the plugin made the root
    /// effective from that stream, sent the call, and switched back, as pwf
    /// does so that a call outlives its stream) is listed with the stream, not
    /// here. Either way it belongs to the root: the stream's end does not
    /// cancel it.
    pub fn calls(&self) -> Vec<Call> {
        calls_of(&self.vm, self.root)
    }

    /// The gRPC calls of this plugin's VM, in dispatch order (Envoy ties every one to the
    /// root context).
    pub fn grpc_calls(&self) -> Vec<crate::GrpcCall> {
        crate::grpc::calls_of(&self.vm, None)
    }

    /// The gRPC streams of this plugin's VM, in open order.
    pub fn grpc_streams(&self) -> Vec<crate::GrpcStreamCall> {
        crate::grpc::streams_of(&self.vm, None)
    }

    /// The root context's id.
    pub fn context_id(&self) -> u32 {
        self.root
    }

    /// Why the VM failed, if it did.
    pub fn failure(&self) -> Option<String> {
        self.vm.failure()
    }
}

fn calls_of(vm: &Arc<VmInner>, context: u32) -> Vec<Call> {
    let state = vm.shared.lock();
    let Some(vm_state) = state.vms.get(vm.index) else {
        return Vec::new();
    };
    let sender = |call: &CallRecord| (call.on_behalf_of.unwrap_or(call.context), call.step);
    tokens_in_order(&vm_state.calls, sender, Some(context))
        .into_iter()
        .map(|token| Call {
            vm: vm.clone(),
            token,
        })
        .collect()
}

/// A property as the plugin would read it from stream (or connection) `id`: its own, else
/// the host's.
fn stream_property(vm: &VmInner, id: u32, path: &[&str]) -> Option<Vec<u8>> {
    let key = property_path(path);
    let mut state = vm.shared.lock();
    let own = state
        .stream(vm.index, id)
        .and_then(|s| s.properties.get(&key).cloned());
    own.or_else(|| state.properties.get(&key).cloned())
}

/// Sets a property for stream (or connection) `id` only.
fn set_stream_property(vm: &VmInner, id: u32, path: &[&str], value: &[u8]) {
    let key = property_path(path);
    let mut state = vm.shared.lock();
    if let Some(stream) = state.stream(vm.index, id) {
        stream.properties.insert(key, value.to_vec());
    }
}

/// An HTTP stream through the plugin.
///
/// Phase methods run one of the plugin's phases as Envoy calls it and return what the
/// plugin returned. Reading methods show the stream as it is now, including the plugin's
/// changes.
#[derive(Clone)]
pub struct Stream {
    vm: Arc<VmInner>,
    id: u32,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("vm", &self.vm.index)
            .field("id", &self.id)
            .finish()
    }
}

impl Stream {
    fn phase(&self, phase: Phase, input: Input, end_of_stream: bool) -> Action {
        let id = self.id;
        self.vm
            .exec(move |shared, vm| {
                runtime::run_phase(shared, vm, id, phase, input, end_of_stream, false)
            })
            .unwrap_or_else(Action::Failed)
    }

    fn read<R: Default>(&self, read: impl FnOnce(&StreamState) -> R) -> R {
        let mut state = self.vm.shared.lock();
        state
            .stream(self.vm.index, self.id)
            .map_or_else(R::default, |s| read(s))
    }

    /// Runs the request headers phase.
    pub fn request_headers(&self, headers: impl IntoHeaders, end_of_stream: bool) -> Action {
        let headers = headers.into_headers();
        self.phase(Phase::RequestHeaders, Input::Map(headers), end_of_stream)
    }

    /// Runs the request body phase with one chunk. After a Pause the plugin sees every
    /// chunk buffered so far, as with Envoy's `StopIterationAndBuffer`.
    pub fn request_body(&self, chunk: impl AsRef<[u8]>, end_of_stream: bool) -> Action {
        let chunk = chunk.as_ref().to_vec();
        self.phase(Phase::RequestBody, Input::Body(chunk), end_of_stream)
    }

    /// Runs the request trailers phase.
    pub fn request_trailers(&self, trailers: impl IntoHeaders) -> Action {
        let trailers = trailers.into_headers();
        self.phase(Phase::RequestTrailers, Input::Map(trailers), true)
    }

    /// Runs the response headers phase.
    pub fn response_headers(&self, headers: impl IntoHeaders, end_of_stream: bool) -> Action {
        let headers = headers.into_headers();
        self.phase(Phase::ResponseHeaders, Input::Map(headers), end_of_stream)
    }

    /// Runs the response body phase with one chunk.
    pub fn response_body(&self, chunk: impl AsRef<[u8]>, end_of_stream: bool) -> Action {
        let chunk = chunk.as_ref().to_vec();
        self.phase(Phase::ResponseBody, Input::Body(chunk), end_of_stream)
    }

    /// Runs the response trailers phase.
    pub fn response_trailers(&self, trailers: impl IntoHeaders) -> Action {
        let trailers = trailers.into_headers();
        self.phase(Phase::ResponseTrailers, Input::Map(trailers), true)
    }

    /// Ends the stream as Envoy does: `on_done`, `on_log`, `on_delete`. Its pending calls
    /// are cancelled: answering them later reaches nothing. Ending twice does nothing.
    pub fn end(&self) -> Result<(), VmFailed> {
        let id = self.id;
        self.vm
            .exec(move |shared, vm| {
                runtime::end_stream(shared, vm, id);
            })
            .map_err(VmFailed)
    }

    /// The current request headers.
    pub fn request_header_map(&self) -> Headers {
        self.read(|s| s.maps[REQUEST_HEADERS].clone())
    }

    /// The first value of a current request header.
    pub fn request_header(&self, name: &str) -> Option<String> {
        self.read(|s| s.maps[REQUEST_HEADERS].get(name).map(str::to_string))
    }

    /// The current request trailers.
    pub fn request_trailer_map(&self) -> Headers {
        self.read(|s| s.maps[REQUEST_TRAILERS].clone())
    }

    /// The current response headers (after a local response: the one Envoy built).
    pub fn response_header_map(&self) -> Headers {
        self.read(|s| s.maps[RESPONSE_HEADERS].clone())
    }

    /// The first value of a current response header.
    pub fn response_header(&self, name: &str) -> Option<String> {
        self.read(|s| s.maps[RESPONSE_HEADERS].get(name).map(str::to_string))
    }

    /// The current response trailers.
    pub fn response_trailer_map(&self) -> Headers {
        self.read(|s| s.maps[RESPONSE_TRAILERS].clone())
    }

    /// The request body the filter let through so far.
    pub fn forwarded_request_body(&self) -> Vec<u8> {
        self.read(|s| s.request_body.forwarded.clone())
    }

    /// The request body the filter holds (buffered after a Pause), if any.
    pub fn buffered_request_body(&self) -> Option<Vec<u8>> {
        self.read(|s| s.request_body.current.clone())
    }

    /// The response body the filter let through so far.
    pub fn forwarded_response_body(&self) -> Vec<u8> {
        self.read(|s| s.response_body.forwarded.clone())
    }

    /// The response body the filter holds (buffered after a Pause), if any.
    pub fn buffered_response_body(&self) -> Option<Vec<u8>> {
        self.read(|s| s.response_body.current.clone())
    }

    /// The local response the plugin sent, if any (the first one).
    pub fn local_response(&self) -> Option<LocalResponse> {
        self.read(|s| s.local_response.clone())
    }

    /// Every `proxy_continue_stream` of this stream, in order.
    pub fn resumes(&self) -> Vec<Resume> {
        self.read(|s| s.resumes.clone())
    }

    /// The first time the plugin resumed this side, if it did.
    pub fn resumed(&self, direction: Direction) -> Option<Resume> {
        self.read(|s| s.resumes.iter().find(|r| r.direction == direction).copied())
    }

    /// The side the plugin reset (`proxy_close_stream`), if it did.
    pub fn reset_by_plugin(&self) -> Option<Direction> {
        self.read(|s| s.reset)
    }

    /// Whether the stream ended.
    pub fn is_ended(&self) -> bool {
        self.read(|s| s.ended)
    }

    /// A property as the plugin would read it from this stream.
    pub fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        stream_property(&self.vm, self.id, path)
    }

    /// Sets a property for this stream only (e.g. `request.path` of this request).
    pub fn set_property(&self, path: &[&str], value: impl AsRef<[u8]>) {
        set_stream_property(&self.vm, self.id, path, value.as_ref());
    }

    /// The calls this stream dispatched, in order, with those its plugin's
    /// root context sent on its behalf (see [`Plugin::calls`]).
    pub fn calls(&self) -> Vec<Call> {
        calls_of(&self.vm, self.id)
    }

    /// The gRPC calls sent by code acting for this stream, in order (pwf sends them on the
    /// root's behalf; Envoy ties them to the root, so the stream's end does not cancel
    /// them).
    pub fn grpc_calls(&self) -> Vec<crate::GrpcCall> {
        crate::grpc::calls_of(&self.vm, Some(self.id))
    }

    /// The gRPC streams opened by code acting for this stream, in order.
    pub fn grpc_streams(&self) -> Vec<crate::GrpcStreamCall> {
        crate::grpc::streams_of(&self.vm, Some(self.id))
    }

    /// The calls of this stream still waiting for an answer.
    pub fn pending_calls(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|call| call.state() == CallState::Pending)
            .collect()
    }

    /// The stream's context id.
    pub fn context_id(&self) -> u32 {
        self.id
    }
}

/// A TCP connection through the plugin (a network filter).
///
/// Event methods run one of the plugin's connection callbacks as Envoy calls it and
/// return what the plugin returned. Reading methods show the connection as it is now,
/// including the plugin's changes.
#[derive(Clone)]
pub struct Connection {
    vm: Arc<VmInner>,
    id: u32,
    opened: Action,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("vm", &self.vm.index)
            .field("id", &self.id)
            .finish()
    }
}

impl Connection {
    fn read<R: Default>(&self, read: impl FnOnce(&StreamState) -> R) -> R {
        let mut state = self.vm.shared.lock();
        state
            .stream(self.vm.index, self.id)
            .map_or_else(R::default, |s| read(s))
    }

    fn data(&self, side: Side, bytes: &[u8], end_of_stream: bool) -> Action {
        let id = self.id;
        let bytes = bytes.to_vec();
        self.vm
            .exec(move |shared, vm| {
                runtime::connection_data(shared, vm, id, side, bytes, end_of_stream)
            })
            .unwrap_or_else(Action::Failed)
    }

    fn close(&self, side: Side, peer: Peer) -> Result<(), VmFailed> {
        let id = self.id;
        self.vm
            .exec(move |shared, vm| {
                runtime::connection_close(shared, vm, id, side, peer);
            })
            .map_err(VmFailed)
    }

    /// What `proxy_on_new_connection` returned when the connection opened.
    pub fn opened(&self) -> Action {
        self.opened.clone()
    }

    /// Bytes from the client: `proxy_on_downstream_data` with the downstream buffer. After
    /// a Pause the plugin sees every byte held so far, as Envoy's read buffer keeps them.
    /// [`Action::Skipped`] once the connection ended, the downstream side closed or the
    /// plugin closed the connection.
    pub fn downstream_data(&self, bytes: impl AsRef<[u8]>, end_of_stream: bool) -> Action {
        self.data(Side::Downstream, bytes.as_ref(), end_of_stream)
    }

    /// Bytes from the upstream: `proxy_on_upstream_data` with the upstream buffer, as
    /// [`Connection::downstream_data`] does for the client's bytes.
    pub fn upstream_data(&self, bytes: impl AsRef<[u8]>, end_of_stream: bool) -> Action {
        self.data(Side::Upstream, bytes.as_ref(), end_of_stream)
    }

    /// The client side closed: `proxy_on_downstream_connection_close` with `peer`. Envoy
    /// reports each side once; a second close, or one after the end, does nothing.
    pub fn downstream_close(&self, peer: Peer) -> Result<(), VmFailed> {
        self.close(Side::Downstream, peer)
    }

    /// The upstream side closed: `proxy_on_upstream_connection_close` with `peer`, once.
    pub fn upstream_close(&self, peer: Peer) -> Result<(), VmFailed> {
        self.close(Side::Upstream, peer)
    }

    /// Ends the connection as Envoy does: `on_done`, `on_log`, `on_delete`. Its pending
    /// calls are cancelled. Ending twice does nothing.
    pub fn end(&self) -> Result<(), VmFailed> {
        let id = self.id;
        self.vm
            .exec(move |shared, vm| {
                runtime::end_stream(shared, vm, id);
            })
            .map_err(VmFailed)
    }

    /// The client's bytes the filter let through towards the upstream so far, as the
    /// plugin left them.
    pub fn forwarded_downstream_data(&self) -> Vec<u8> {
        self.read(|s| s.downstream.forwarded.clone())
    }

    /// The client's bytes the filter holds (after a Pause), if any.
    pub fn buffered_downstream_data(&self) -> Option<Vec<u8>> {
        self.read(|s| s.downstream.current.clone())
    }

    /// The upstream's bytes the filter let through towards the client so far, as the
    /// plugin left them.
    pub fn forwarded_upstream_data(&self) -> Vec<u8> {
        self.read(|s| s.upstream.forwarded.clone())
    }

    /// The upstream's bytes the filter holds (after a Pause), if any.
    pub fn buffered_upstream_data(&self) -> Option<Vec<u8>> {
        self.read(|s| s.upstream.current.clone())
    }

    /// Every `proxy_continue_stream` of this connection, in order.
    pub fn resumes(&self) -> Vec<ConnectionResume> {
        self.read(|s| s.connection_resumes.clone())
    }

    /// The first time the plugin resumed `side`, if it did.
    pub fn resumed(&self, side: Side) -> Option<ConnectionResume> {
        self.read(|s| {
            s.connection_resumes
                .iter()
                .find(|r| r.side == side)
                .copied()
        })
    }

    /// Whether the plugin closed `side` (`proxy_close_stream`).
    pub fn closed_by_plugin(&self, side: Side) -> bool {
        self.read(|s| s.closed_by_plugin.contains(&side))
    }

    /// Whether the connection ended.
    pub fn is_ended(&self) -> bool {
        self.read(|s| s.ended)
    }

    /// A property as the plugin would read it from this connection.
    pub fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        stream_property(&self.vm, self.id, path)
    }

    /// Sets a property for this connection only (e.g. `source.address`).
    pub fn set_property(&self, path: &[&str], value: impl AsRef<[u8]>) {
        set_stream_property(&self.vm, self.id, path, value.as_ref());
    }

    /// The calls this connection dispatched, in order.
    pub fn calls(&self) -> Vec<Call> {
        calls_of(&self.vm, self.id)
    }

    /// The connection's context id.
    pub fn context_id(&self) -> u32 {
        self.id
    }
}

/// The body Envoy answers a refused connection with.
pub const REFUSED_BODY: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: connection failure";

/// The body Envoy answers a timed-out call with.
pub const TIMEOUT_BODY: &str = "upstream request timeout";

/// An HTTP call the plugin dispatched (`proxy_http_call`).
#[derive(Clone)]
pub struct Call {
    vm: Arc<VmInner>,
    token: u32,
}

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("vm", &self.vm.index)
            .field("token", &self.token)
            .field("cluster", &self.cluster())
            .field("headers", &self.headers())
            .finish()
    }
}

impl Call {
    fn read<R: Default>(&self, read: impl FnOnce(&CallRecord) -> R) -> R {
        let state = self.vm.shared.lock();
        state
            .vms
            .get(self.vm.index)
            .and_then(|vm| vm.calls.get(&self.token))
            .map_or_else(R::default, read)
    }

    /// The target cluster.
    pub fn cluster(&self) -> String {
        self.read(|c| c.cluster.clone())
    }

    /// The request headers.
    pub fn headers(&self) -> Headers {
        self.read(|c| c.headers.clone())
    }

    /// The first value of a request header.
    pub fn header(&self, name: &str) -> Option<String> {
        self.read(|c| c.headers.get(name).map(str::to_string))
    }

    /// The request body.
    pub fn body(&self) -> Vec<u8> {
        self.read(|c| c.body.clone())
    }

    /// The request trailers.
    pub fn trailers(&self) -> Headers {
        self.read(|c| c.trailers.clone())
    }

    /// The timeout; `None` for 0, which Envoy takes as no timeout.
    pub fn timeout(&self) -> Option<Duration> {
        self.read(|c| c.timeout)
    }

    /// Where the call stands.
    pub fn state(&self) -> CallState {
        self.read(|c| Some(c.state)).unwrap_or(CallState::Cancelled)
    }

    /// The token the plugin got for it.
    pub fn token(&self) -> u32 {
        self.token
    }

    /// The context that dispatched it.
    pub fn context_id(&self) -> u32 {
        self.read(|c| c.context)
    }

    /// Answers with a response: `:status`, then `headers`, and `body`.
    pub fn respond(
        &self,
        status: u16,
        headers: impl IntoHeaders,
        body: impl AsRef<[u8]>,
    ) -> Delivery {
        self.respond_with_trailers(status, headers, body, Headers::new())
    }

    /// Answers with a response that has trailers.
    pub fn respond_with_trailers(
        &self,
        status: u16,
        headers: impl IntoHeaders,
        body: impl AsRef<[u8]>,
        trailers: impl IntoHeaders,
    ) -> Delivery {
        let mut all = Headers::new();
        all.append(":status", status.to_string());
        for (key, value) in headers.into_headers().iter() {
            all.append(key, value);
        }
        self.deliver(Some(CallResponse {
            headers: all,
            body: body.as_ref().to_vec(),
            trailers: trailers.into_headers(),
        }))
    }

    /// Fails the call as a reset does: Envoy's callback with zero headers, no body, and
    /// `proxy_get_status` answering BrokenConnection "reset". In Envoy this happens when
    /// a response is cut off mid-body.
    pub fn reset(&self) -> Delivery {
        self.deliver(None)
    }

    /// Same as [`Call::reset`].
    pub fn fail(&self) -> Delivery {
        self.reset()
    }

    /// Answers as Envoy does when the upstream refuses the connection or closes before
    /// answering: a 503 with Envoy's body ([`REFUSED_BODY`]).
    pub fn refuse(&self) -> Delivery {
        self.envoy_reply(503, REFUSED_BODY)
    }

    /// Answers as Envoy does when the call times out: a 504 with body
    /// [`TIMEOUT_BODY`].
    pub fn time_out(&self) -> Delivery {
        self.envoy_reply(504, TIMEOUT_BODY)
    }

    fn envoy_reply(&self, status: u16, body: &str) -> Delivery {
        let headers = [
            ("content-length", body.len().to_string()),
            ("content-type", "text/plain".to_string()),
        ];
        self.respond(status, headers, body)
    }

    fn deliver(&self, response: Option<CallResponse>) -> Delivery {
        let token = self.token;
        let delivered = self.vm.exec(move |shared, vm| {
            let context = {
                let mut state = shared.lock();
                let Some(vm_state) = state.vm(vm) else {
                    return Delivery::Cancelled;
                };
                let Some(context) = vm_state.calls.get(&token).map(|c| c.context) else {
                    return Delivery::Cancelled;
                };
                let alive = vm_state.contexts.get(&context).is_some_and(|c| !c.deleted);
                let Some(call) = vm_state.calls.get_mut(&token) else {
                    return Delivery::Cancelled;
                };
                match call.state {
                    CallState::Answered => return Delivery::AlreadyAnswered,
                    CallState::Cancelled => return Delivery::Cancelled,
                    CallState::Pending if !alive => {
                        call.state = CallState::Cancelled;
                        return Delivery::Cancelled;
                    }
                    CallState::Pending => call.state = CallState::Answered,
                }
                context
            };
            runtime::deliver_call_response(shared, vm, token, context, response);
            Delivery::Delivered
        });
        delivered.unwrap_or_else(Delivery::VmFailed)
    }
}
