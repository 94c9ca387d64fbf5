//! VM threads and the calls into the plugin.
//!
//! The SDK keeps its dispatcher in a thread-local, so each VM lives on its own OS thread
//! and the test drives it synchronously: it sends a closure and waits for the result.
//!
//! The SDK's entry points are `extern "C"`, which cannot unwind: a panic inside one would
//! abort the test process. VMs started from a root factory catch panics in wrapped
//! contexts (see `guard`). For the rest, a panic hook stops a panicking VM thread before
//! it unwinds, reports the message to the waiting test and parks the thread for good,
//! which is what a trap does to a VM in Envoy.
//!
//! std holds the panic hook's lock while a hook runs, so a thread parked in the hook keeps
//! it forever: after the first park nothing may replace the hook (`take_hook` and
//! `set_hook` would block for good). The host therefore writes the hook only while no VM
//! has parked, and runs the SDK's one-time hook installation (`set_log_level`) itself
//! before the first plugin can, so a plugin's later `set_log_level` never writes it.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, Once, Weak};
use std::thread;

use crate::api::{Action, Callback, LocalResponse, Peer, Side};
use crate::guest::{self, Export};
use crate::headers::Headers;
use crate::state::{
    Body, CallResponse, Context, ContextKind, RootState, Shared, StreamState, REQUEST_HEADERS,
    REQUEST_TRAILERS, RESPONSE_HEADERS, RESPONSE_TRAILERS,
};

type Job = Box<dyn FnOnce() + Send>;
type Reply = Result<Box<dyn Any + Send>, String>;

struct Current {
    shared: Arc<Shared>,
    vm: usize,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
    static IN_EXPORT: Cell<bool> = const { Cell::new(false) };
    static IN_TEST_CODE: Cell<bool> = const { Cell::new(false) };
    static REPLY: RefCell<Option<Sender<Reply>>> = const { RefCell::new(None) };
}

/// The VM this thread runs, if it is a VM thread.
pub(crate) fn current() -> Option<(Arc<Shared>, usize)> {
    CURRENT
        .try_with(|current| {
            current
                .borrow()
                .as_ref()
                .map(|current| (current.shared.clone(), current.vm))
        })
        .ok()
        .flatten()
}

/// Runs test code (a hook) inside a host call: panics there unwind normally, are caught
/// and re-raised on the thread that drove the VM.
pub(crate) fn run_test_code(shared: &Shared, hook: Box<dyn FnOnce() + Send>) {
    let was = IN_TEST_CODE.with(|flag| flag.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(hook));
    IN_TEST_CODE.with(|flag| flag.set(was));
    if let Err(payload) = result {
        shared.lock().test_panic.get_or_insert(payload);
    }
}

static HOOK_ADDRESS: AtomicUsize = AtomicUsize::new(0);
static HOOK_LOCK: Mutex<()> = Mutex::new(());
static PARKED: AtomicUsize = AtomicUsize::new(0);
static SDK_INIT: Once = Once::new();

/// Runs the SDK's one-time logger and panic-hook installation, then turns its logger off
/// again: a plugin that never calls `set_log_level` still logs nothing through `log`.
pub(crate) fn init_sdk() {
    SDK_INIT.call_once(|| {
        proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Trace);
        log::set_max_level(log::LevelFilter::Off);
    });
}

/// Makes sure our panic hook is the outermost one. Plugins may install their own; ours
/// wraps it, so theirs still runs first (and may log the panic through `proxy_log`).
pub(crate) fn ensure_panic_hook() {
    if thread::panicking() || PARKED.load(Ordering::SeqCst) > 0 {
        return;
    }
    let _guard = HOOK_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let previous = panic::take_hook();
    let address = &*previous as *const _ as *const () as usize;
    if address == HOOK_ADDRESS.load(Ordering::SeqCst) {
        panic::set_hook(previous);
        return;
    }
    let hook: Box<dyn Fn(&PanicHookInfo<'_>) + Send + Sync> = Box::new(move |info| {
        previous(info);
        stop_failed_vm(info);
    });
    HOOK_ADDRESS.store(&*hook as *const _ as *const () as usize, Ordering::SeqCst);
    panic::set_hook(hook);
}

fn stop_failed_vm(info: &PanicHookInfo<'_>) {
    let in_export = IN_EXPORT.try_with(Cell::get).unwrap_or(false);
    let in_test_code = IN_TEST_CODE.try_with(Cell::get).unwrap_or(false);
    if !in_export || in_test_code || crate::guard::guarding() {
        return;
    }
    let message = match info.location() {
        Some(location) => format!(
            "panicked at {location}: {}",
            payload_message(info.payload())
        ),
        None => format!("panicked: {}", payload_message(info.payload())),
    };
    PARKED.fetch_add(1, Ordering::SeqCst);
    if let Ok(Some(reply)) = REPLY.try_with(|reply| reply.borrow_mut().take()) {
        let _ = reply.send(Err(message));
    }
    loop {
        thread::park();
    }
}

pub(crate) fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}

/// Calls an entry point of the guest, marking the thread as inside the VM; what it
/// returns as a number.
pub(crate) fn export(call: Export) -> u32 {
    IN_EXPORT.with(|flag| flag.set(true));
    let result = guest::call(call);
    IN_EXPORT.with(|flag| flag.set(false));
    result
}

fn verdict(raw: u32) -> bool {
    raw != 0
}

/// One VM: its thread and its slot in the shared state.
pub(crate) struct VmInner {
    pub(crate) shared: Arc<Shared>,
    pub(crate) handles: Arc<Mutex<Vec<Weak<VmInner>>>>,
    pub(crate) index: usize,
    sender: Sender<Job>,
}

impl VmInner {
    pub(crate) fn spawn(
        shared: Arc<Shared>,
        handles: Arc<Mutex<Vec<Weak<VmInner>>>>,
        index: usize,
    ) -> Result<Arc<VmInner>, String> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let thread_shared = shared.clone();
        thread::Builder::new()
            .name(format!("pwf-test-vm-{index}"))
            .spawn(move || {
                CURRENT.with(|current| {
                    *current.borrow_mut() = Some(Current {
                        shared: thread_shared,
                        vm: index,
                    })
                });
                while let Ok(job) = receiver.recv() {
                    job();
                }
            })
            .map_err(|error| format!("cannot start the VM thread: {error}"))?;
        let inner = Arc::new(VmInner {
            shared,
            handles: handles.clone(),
            index,
            sender,
        });
        handles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Arc::downgrade(&inner));
        Ok(inner)
    }

    /// Fails the VM with `message`, unless it failed before.
    pub(crate) fn fail(&self, message: &str) {
        if let Some(vm) = self.shared.lock().vms.get_mut(self.index) {
            vm.failure.get_or_insert_with(|| message.to_string());
        }
    }

    /// Reads the VM's slot in the host state.
    pub(crate) fn with_state<R>(
        &self,
        read: impl FnOnce(&crate::state::VmState) -> Option<R>,
    ) -> Option<R> {
        self.shared.lock().vms.get(self.index).and_then(read)
    }

    pub(crate) fn failure(&self) -> Option<String> {
        self.shared
            .lock()
            .vms
            .get(self.index)
            .and_then(|vm| vm.failure.clone())
    }

    /// Runs `job` on the VM thread and waits for it. `Err` carries the message of the
    /// panic that failed the VM, now or before.
    pub(crate) fn exec<R: Send + 'static>(
        &self,
        job: impl FnOnce(&Arc<Shared>, usize) -> R + Send + 'static,
    ) -> Result<R, String> {
        if let Some(failure) = self.failure() {
            return Err(failure);
        }
        if let Some((shared, vm)) = current() {
            assert!(
                !(Arc::ptr_eq(&shared, &self.shared) && vm == self.index),
                "pwf-test: a VM cannot be driven from inside one of its own callbacks"
            );
        }
        let (reply_sender, reply) = mpsc::channel::<Reply>();
        let shared = self.shared.clone();
        let index = self.index;
        let wrapped: Job = Box::new(move || {
            REPLY.with(|slot| *slot.borrow_mut() = Some(reply_sender));
            let result = panic::catch_unwind(AssertUnwindSafe(|| job(&shared, index)));
            let message = match (result, crate::guard::take_caught()) {
                (_, Some(caught)) => Err(caught),
                (Ok(value), None) => Ok(Box::new(value) as Box<dyn Any + Send>),
                (Err(payload), None) => match payload.downcast::<crate::wasm::Trapped>() {
                    Ok(trapped) => Err(trapped.0),
                    Err(payload) => Err(format!("panicked: {}", payload_message(&*payload))),
                },
            };
            if let Some(sender) = REPLY.with(|slot| slot.borrow_mut().take()) {
                let _ = sender.send(message);
            }
        });
        let outcome = match self.sender.send(wrapped) {
            Ok(()) => reply
                .recv()
                .unwrap_or_else(|_| Err("the VM thread ended".to_string())),
            Err(_) => Err("the VM thread ended".to_string()),
        };
        if let Some(payload) = self.shared.lock().test_panic.take() {
            panic::resume_unwind(payload);
        }
        match outcome {
            Ok(value) => {
                self.deliver_queue_notifications();
                value
                    .downcast::<R>()
                    .map(|value| *value)
                    .map_err(|_| "pwf-test: unexpected reply type".to_string())
            }
            Err(message) => {
                if let Some(vm) = self.shared.lock().vms.get_mut(self.index) {
                    vm.failure.get_or_insert_with(|| message.clone());
                }
                Err(message)
            }
        }
    }

    /// Delivers `proxy_on_queue_ready` for what was enqueued, as Envoy does once the
    /// enqueuing callback is over. Only the outermost driver delivers.
    fn deliver_queue_notifications(&self) {
        if current().is_some() {
            return;
        }
        loop {
            let next = self.shared.lock().queue_notifications.pop_front();
            let Some((vm, root, queue)) = next else {
                return;
            };
            let handle = self
                .handles
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .get(vm)
                .and_then(Weak::upgrade);
            if let Some(handle) = handle {
                let _ = handle.exec(move |shared, vm| {
                    enter(shared, vm, root, Callback::QueueReady);
                    export(Export::QueueReady(root, queue));
                    leave(shared, vm);
                    deliver_held_bodies(shared, vm);
                });
            }
        }
    }
}

/// Makes `context` the effective context of a callback.
pub(crate) fn enter(shared: &Shared, vm: usize, context: u32, callback: Callback) {
    let mut state = shared.lock();
    state.next_step();
    if let Some(vm) = state.vm(vm) {
        vm.effective = context;
        vm.switched_from = None;
        vm.callback = Some(callback);
    }
}

pub(crate) fn leave(shared: &Shared, vm: usize) {
    if let Some(vm) = shared.lock().vm(vm) {
        vm.callback = None;
    }
}

fn new_context_id(shared: &Shared, vm: usize) -> u32 {
    let mut state = shared.lock();
    let Some(vm) = state.vm(vm) else {
        return 0;
    };
    vm.next_context_id += 1;
    vm.next_context_id
}

/// Creates a root context and runs `on_vm_start`; returns its id and the verdict.
pub(crate) fn start_root(shared: &Shared, vm: usize) -> (u32, bool) {
    let root = new_context_id(shared, vm);
    let config_size = {
        let mut state = shared.lock();
        let Some(state) = state.vm(vm) else {
            return (root, false);
        };
        state.contexts.insert(
            root,
            Context {
                root,
                deleted: false,
                kind: ContextKind::Root(RootState::default()),
            },
        );
        state.vm_config.len()
    };
    enter(shared, vm, root, Callback::ContextCreate);
    export(Export::ContextCreate(root, 0));
    enter(shared, vm, root, Callback::VmStart);
    let started = verdict(export(Export::VmStart(root, config_size)));
    leave(shared, vm);
    (root, started)
}

/// Runs `on_configure` on `root` with the plugin configuration readable only meanwhile.
pub(crate) fn configure(shared: &Shared, vm: usize, root: u32, config: Vec<u8>) -> bool {
    let size = config.len();
    if let Some(state) = shared.lock().vm(vm) {
        state.plugin_config = Some(config);
    }
    enter(shared, vm, root, Callback::Configure);
    let accepted = verdict(export(Export::Configure(root, size)));
    leave(shared, vm);
    let mut state = shared.lock();
    if let Some(state) = state.vm(vm) {
        state.plugin_config = None;
    }
    if let Some(root) = state.root(vm, root) {
        root.configured = true;
    }
    accepted
}

pub(crate) fn open_stream(shared: &Shared, vm: usize, root: u32) -> u32 {
    let id = new_context_id(shared, vm);
    if let Some(state) = shared.lock().vm(vm) {
        state.contexts.insert(
            id,
            Context {
                root,
                deleted: false,
                kind: ContextKind::Stream(Box::default()),
            },
        );
    }
    enter(shared, vm, id, Callback::ContextCreate);
    export(Export::ContextCreate(id, root));
    leave(shared, vm);
    id
}

/// Opens a TCP connection as Envoy's network filter does: `proxy_on_context_create`,
/// then `proxy_on_new_connection`.
pub(crate) fn open_connection(shared: &Shared, vm: usize, root: u32) -> (u32, Action) {
    let id = open_stream(shared, vm, root);
    enter(shared, vm, id, Callback::NewConnection);
    let raw = export(Export::NewConnection(id));
    leave(shared, vm);
    (id, action(raw))
}

/// Runs a data event of a TCP connection. As in Envoy's network filters, bytes a Pause
/// held stay in the connection's buffer and the next event sees them with the new ones.
pub(crate) fn connection_data(
    shared: &Shared,
    vm: usize,
    id: u32,
    side: Side,
    chunk: Vec<u8>,
    end_of_stream: bool,
) -> Action {
    let size = {
        let mut state = shared.lock();
        let Some(stream) = state.stream(vm, id) else {
            return Action::Skipped;
        };
        let closed = stream.side_closed[side as usize] || !stream.closed_by_plugin.is_empty();
        if stream.ended || closed {
            return Action::Skipped;
        }
        take_chunk(stream.side(side), chunk)
    };
    let raw = match side {
        Side::Downstream => {
            enter(shared, vm, id, Callback::DownstreamData);
            export(Export::DownstreamData(id, size, end_of_stream))
        }
        Side::Upstream => {
            enter(shared, vm, id, Callback::UpstreamData);
            export(Export::UpstreamData(id, size, end_of_stream))
        }
    };
    leave(shared, vm);
    let result = action(raw);
    if let Some(stream) = shared.lock().stream(vm, id) {
        let body = stream.side(side);
        if result == Action::Continue {
            body.release();
        } else {
            body.buffering = true;
        }
    }
    result
}

/// Runs a close event of a TCP connection, once per side; `false` if it was skipped.
pub(crate) fn connection_close(
    shared: &Shared,
    vm: usize,
    id: u32,
    side: Side,
    peer: Peer,
) -> bool {
    {
        let mut state = shared.lock();
        let Some(stream) = state.stream(vm, id) else {
            return false;
        };
        if stream.ended || stream.side_closed[side as usize] {
            return false;
        }
        stream.side_closed[side as usize] = true;
    }
    let peer = peer as u32;
    match side {
        Side::Downstream => {
            enter(shared, vm, id, Callback::DownstreamClose);
            export(Export::DownstreamClose(id, peer));
        }
        Side::Upstream => {
            enter(shared, vm, id, Callback::UpstreamClose);
            export(Export::UpstreamClose(id, peer));
        }
    }
    leave(shared, vm);
    true
}

pub(crate) fn tick(shared: &Shared, vm: usize, root: u32) {
    enter(shared, vm, root, Callback::Tick);
    export(Export::Tick(root));
    leave(shared, vm);
    deliver_held_bodies(shared, vm);
}

fn action(raw: u32) -> Action {
    if raw == 0 {
        Action::Continue
    } else {
        Action::Pause
    }
}

/// Which phase of a stream to run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    RequestHeaders,
    RequestBody,
    RequestTrailers,
    ResponseHeaders,
    ResponseBody,
    ResponseTrailers,
}

impl Phase {
    fn is_request(self) -> bool {
        matches!(
            self,
            Phase::RequestHeaders | Phase::RequestBody | Phase::RequestTrailers
        )
    }

    fn callback(self) -> Callback {
        match self {
            Phase::RequestHeaders => Callback::RequestHeaders,
            Phase::RequestBody => Callback::RequestBody,
            Phase::RequestTrailers => Callback::RequestTrailers,
            Phase::ResponseHeaders => Callback::ResponseHeaders,
            Phase::ResponseBody => Callback::ResponseBody,
            Phase::ResponseTrailers => Callback::ResponseTrailers,
        }
    }
}

/// What a phase carries in.
pub(crate) enum Input {
    Map(Headers),
    Body(Vec<u8>),
}

/// Runs one phase of a stream, as Envoy's filter would be called.
pub(crate) fn run_phase(
    shared: &Shared,
    vm: usize,
    id: u32,
    phase: Phase,
    input: Input,
    end_of_stream: bool,
    from_local_response: bool,
) -> Action {
    let size = {
        let mut state = shared.lock();
        let Some(stream) = state.stream(vm, id) else {
            return Action::Skipped;
        };
        let answered_locally = stream.local_response.is_some() && !from_local_response;
        if stream.ended || stream.reset.is_some() || answered_locally {
            return Action::Skipped;
        }
        if !phase.is_request() {
            stream.response_started = true;
        }
        if phase == Phase::RequestBody && stream.held[REQUEST_HEADERS] {
            // The headers are paused: Envoy buffers the body without calling the filter.
            let chunk = match input {
                Input::Body(chunk) => chunk,
                Input::Map(_) => Vec::new(),
            };
            let held = stream
                .held_request_body
                .get_or_insert_with(Default::default);
            held.0.extend_from_slice(&chunk);
            held.1 |= end_of_stream;
            return Action::Held;
        }
        prepare(stream, phase, input)
    };
    enter(shared, vm, id, phase.callback());
    let raw = export(match phase {
        Phase::RequestHeaders => Export::RequestHeaders(id, size, end_of_stream),
        Phase::RequestBody => Export::RequestBody(id, size, end_of_stream),
        Phase::RequestTrailers => Export::RequestTrailers(id, size),
        Phase::ResponseHeaders => Export::ResponseHeaders(id, size, end_of_stream),
        Phase::ResponseBody => Export::ResponseBody(id, size, end_of_stream),
        Phase::ResponseTrailers => Export::ResponseTrailers(id, size),
    });
    leave(shared, vm);
    let result = action(raw);
    if let Some(stream) = shared.lock().stream(vm, id) {
        finish(stream, phase, result == Action::Continue);
    }
    after_callback(shared, vm, id);
    result
}

fn prepare(stream: &mut StreamState, phase: Phase, input: Input) -> usize {
    let map = match phase {
        Phase::RequestHeaders => REQUEST_HEADERS,
        Phase::RequestTrailers => REQUEST_TRAILERS,
        Phase::ResponseHeaders => RESPONSE_HEADERS,
        Phase::ResponseTrailers => RESPONSE_TRAILERS,
        Phase::RequestBody | Phase::ResponseBody => {
            let body = if phase == Phase::RequestBody {
                &mut stream.request_body
            } else {
                &mut stream.response_body
            };
            let chunk = match input {
                Input::Body(chunk) => chunk,
                Input::Map(_) => Vec::new(),
            };
            return take_chunk(body, chunk);
        }
    };
    let headers = match input {
        Input::Map(headers) => headers,
        Input::Body(_) => Headers::new(),
    };
    let size = headers.len();
    stream.maps[map] = headers;
    stream.held[map] = true;
    size
}

/// Envoy's body buffering: after a Pause the filter sees everything buffered so far.
fn take_chunk(body: &mut Body, chunk: Vec<u8>) -> usize {
    let current = match (body.buffering, body.current.take()) {
        (true, Some(mut buffered)) => {
            buffered.extend_from_slice(&chunk);
            buffered
        }
        _ => chunk,
    };
    let size = current.len();
    body.current = Some(current);
    size
}

fn finish(stream: &mut StreamState, phase: Phase, continued: bool) {
    let map = match phase {
        Phase::RequestHeaders => REQUEST_HEADERS,
        Phase::RequestTrailers => REQUEST_TRAILERS,
        Phase::ResponseHeaders => RESPONSE_HEADERS,
        Phase::ResponseTrailers => RESPONSE_TRAILERS,
        Phase::RequestBody | Phase::ResponseBody => {
            let body = if phase == Phase::RequestBody {
                &mut stream.request_body
            } else {
                &mut stream.response_body
            };
            if continued {
                body.release();
            } else {
                body.buffering = true;
            }
            return;
        }
    };
    if continued {
        stream.held[map] = false;
    }
}

/// Delivers the request bodies Envoy held behind paused headers to the streams that
/// were resumed since, as one body phase with everything held.
fn deliver_held_bodies(shared: &Shared, vm: usize) {
    loop {
        let next = {
            let mut state = shared.lock();
            let Some(vm_state) = state.vm(vm) else {
                return;
            };
            vm_state.contexts.iter_mut().find_map(|(id, context)| {
                let ContextKind::Stream(stream) = &mut context.kind else {
                    return None;
                };
                if context.deleted || stream.held[REQUEST_HEADERS] {
                    return None;
                }
                stream.held_request_body.take().map(|held| (*id, held))
            })
        };
        let Some((id, (body, end_of_stream))) = next else {
            return;
        };
        run_phase(
            shared,
            vm,
            id,
            Phase::RequestBody,
            Input::Body(body),
            end_of_stream,
            false,
        );
    }
}

/// Envoy sends a local response once the callback that asked for it returns, through the
/// response path of the filter chain: the plugin sees it in its response phases. That
/// holds for any stream the callback made effective, not only the callback's own context:
/// a call answered on the root's callback can resume a stream's task, which answers. A
/// body held behind paused headers reaches the plugin once the callback that resumed them
/// returns.
fn after_callback(shared: &Shared, vm: usize, id: u32) {
    after_local_response(shared, vm, id);
    while let Some(other) = pending_local_response(shared, vm) {
        after_local_response(shared, vm, other);
    }
    deliver_held_bodies(shared, vm);
}

/// A stream of the VM whose local response has not been sent yet.
fn pending_local_response(shared: &Shared, vm: usize) -> Option<u32> {
    let mut state = shared.lock();
    state
        .vm(vm)?
        .contexts
        .iter()
        .find_map(|(id, context)| match &context.kind {
            ContextKind::Stream(stream) if stream.local_response_pending && !context.deleted => {
                Some(*id)
            }
            _ => None,
        })
}

fn after_local_response(shared: &Shared, vm: usize, id: u32) {
    let local = {
        let mut state = shared.lock();
        let Some(stream) = state.stream(vm, id) else {
            return;
        };
        if !std::mem::take(&mut stream.local_response_pending) || stream.response_started {
            return;
        }
        stream.local_response.clone()
    };
    let Some(local) = local else {
        return;
    };
    let (headers, body) = local_reply(&local);
    let has_body = !body.is_empty();
    run_phase(
        shared,
        vm,
        id,
        Phase::ResponseHeaders,
        Input::Map(headers),
        !has_body,
        true,
    );
    if has_body {
        run_phase(
            shared,
            vm,
            id,
            Phase::ResponseBody,
            Input::Body(body),
            true,
            true,
        );
    }
}

/// The response Envoy builds for `sendLocalReply`.
pub(crate) fn local_reply(local: &LocalResponse) -> (Headers, Vec<u8>) {
    let mut headers = Headers::new();
    headers.append(":status", local.status.to_string());
    for (key, value) in local.headers.iter() {
        headers.append(key, value);
    }
    if !local.body.is_empty() {
        headers.set("content-length", local.body.len().to_string());
        if !headers.contains("content-type") {
            headers.append("content-type", "text/plain");
        }
    }
    (headers, local.body.clone())
}

/// Delivers a call's answer (`None`: the reset callback with zero headers).
pub(crate) fn deliver_call_response(
    shared: &Shared,
    vm: usize,
    token: u32,
    context: u32,
    response: Option<CallResponse>,
) {
    let (headers, body, trailers) = response.as_ref().map_or((0, 0, 0), |response| {
        (
            response.headers.len(),
            response.body.len(),
            response.trailers.len(),
        )
    });
    if let Some(state) = shared.lock().vm(vm) {
        state.status = if response.is_some() {
            (0, Vec::new())
        } else {
            (crate::state::BROKEN_CONNECTION, b"reset".to_vec())
        };
        state.call_response = response;
    }
    enter(shared, vm, context, Callback::CallResponse);
    export(Export::HttpCallResponse(
        context, token, headers, body, trailers,
    ));
    leave(shared, vm);
    if let Some(state) = shared.lock().vm(vm) {
        state.call_response = None;
        state.status = (0, Vec::new());
    }
    after_callback(shared, vm, context);
}

/// Ends a stream as Envoy does: `on_done`, `on_log`, `on_delete`; then its pending calls
/// are cancelled, so their answers never reach the plugin.
pub(crate) fn end_stream(shared: &Shared, vm: usize, id: u32) -> Option<bool> {
    {
        let mut state = shared.lock();
        let stream = state.stream(vm, id)?;
        if stream.ended {
            return None;
        }
        stream.ended = true;
    }
    enter(shared, vm, id, Callback::Done);
    let done = verdict(export(Export::Done(id)));
    enter(shared, vm, id, Callback::Log);
    export(Export::Log(id));
    enter(shared, vm, id, Callback::Delete);
    export(Export::Delete(id));
    leave(shared, vm);
    let mut state = shared.lock();
    if let Some(state) = state.vm(vm) {
        if let Some(context) = state.contexts.get_mut(&id) {
            context.deleted = true;
        }
        for call in state.calls.values_mut() {
            if call.context == id && call.state == crate::api::CallState::Pending {
                call.state = crate::api::CallState::Cancelled;
            }
        }
    }
    Some(done)
}
