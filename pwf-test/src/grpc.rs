//! gRPC calls in the native host, as Envoy 1.40 carries them (measured with the bare-ABI
//! probe, `envoy/e2e/tests/grpc_probe.rs`):
//!
//! - The `service` bytes are parsed as an `envoy.config.core.v3.GrpcService`; bytes that do
//!   not parse are a cluster name. A `GrpcService` without a target (`envoy_grpc`) aborts
//!   Envoy: here the VM fails with that message.
//! - An unknown cluster: `ParseFailure` for a name, `InternalFailure` for a `GrpcService`
//!   (Envoy then also calls back a close, 14 "Cluster not available", for a token it never
//!   returned; the SDK drops it, so the host leaves it out).
//! - Every call belongs to the root context and is called back on it; an HTTP stream's end
//!   does not cancel it. `proxy_grpc_cancel` does, without a callback.
//! - An answer is `proxy_on_grpc_receive` (status OK, the message in the gRPC receive
//!   buffer) or `proxy_on_grpc_close` with the code, `proxy_get_status` giving Envoy's
//!   text: the service's message then `{via_upstream}`, or Envoy's own (`upstream request
//!   timeout{response_timeout}`, ...). A unary call gets no metadata callbacks.
//!
//! The logic is functions over the host state and byte slices; `abi.rs` holds the thin
//! `extern "C"` shims.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use proxy_wasm::types::Status;

use crate::api::{CallState, Callback, Delivery};
use crate::guest::Export;
use crate::headers::{Headers, IntoHeaders};
use crate::runtime::{self, VmInner};
use crate::state::{tokens_in_order, Shared, State};

/// What Envoy says when the cluster's host refuses the connection.
pub const GRPC_REFUSED_MESSAGE: &str = "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure{upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}}";
/// What Envoy says when a call's timeout passes.
pub const GRPC_TIMEOUT_MESSAGE: &str = "upstream request timeout{response_timeout}";

/// A VM's gRPC state.
#[derive(Default)]
pub(crate) struct GrpcState {
    pub(crate) calls: BTreeMap<u32, GrpcCallRecord>,
    next_call: u32,
    pub(crate) streams: BTreeMap<u32, GrpcStreamRecord>,
    next_stream: u32,
    /// The message being delivered (the gRPC receive buffer).
    pub(crate) receive: Option<Vec<u8>>,
    /// The metadata being delivered to a stream.
    initial: Option<Headers>,
    trailing: Option<Headers>,
}

pub(crate) struct GrpcCallRecord {
    /// The context the code that sent it acted for (a stream, or the root).
    sender: u32,
    cluster: String,
    authority: Option<String>,
    service: String,
    method: String,
    metadata: Headers,
    message: Vec<u8>,
    timeout: Option<Duration>,
    state: CallState,
    step: u64,
}

/// Where the `service` bytes point.
enum Target {
    Cluster(String, Option<String>),
    /// A `GrpcService` with no `envoy_grpc`: Envoy aborts.
    Untargeted,
    /// Not a `GrpcService`: a cluster name.
    Name(String),
}

/// What `proxy_grpc_call` does: checks the target and records the call.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dispatch(
    state: &mut State,
    vm: usize,
    service: &[u8],
    service_name: &[u8],
    method: &[u8],
    metadata: &[u8],
    message: &[u8],
    timeout: u32,
) -> Result<u32, Status> {
    let (cluster, authority) = target(state, service)?;
    let metadata = Headers::deserialize(metadata).ok_or(Status::BadArgument)?;
    let step = state.step;
    let vm_state = state.vm(vm).ok_or(Status::InternalFailure)?;
    let sender = vm_state.switched_from.unwrap_or(vm_state.effective);
    let grpc = &mut vm_state.grpc;
    // Envoy numbers calls 1, 5, 9, ... (streams 2, 6, 10, ...).
    grpc.next_call = grpc.next_call.wrapping_add(4);
    let token = grpc.next_call.wrapping_sub(3);
    grpc.calls.insert(
        token,
        GrpcCallRecord {
            sender,
            cluster,
            authority,
            service: String::from_utf8_lossy(service_name).into_owned(),
            method: String::from_utf8_lossy(method).into_owned(),
            metadata,
            message: message.to_vec(),
            timeout: (timeout > 0).then(|| Duration::from_millis(u64::from(timeout))),
            state: CallState::Pending,
            step,
        },
    );
    Ok(token)
}

/// The cluster and authority `service` points at, as Envoy checks them.
fn target(state: &State, service: &[u8]) -> Result<(String, Option<String>), Status> {
    match parse_target(service) {
        Target::Untargeted => panic!(
            "Envoy 1.40 aborts (panic: unset oneof) on gRPC service bytes that parse as a \
             GrpcService without envoy_grpc: {service:?}"
        ),
        Target::Name(name) if !state.clusters.contains(&name) => Err(Status::ParseFailure),
        Target::Name(name) => Ok((name, None)),
        Target::Cluster(name, _) if !state.clusters.contains(&name) => Err(Status::InternalFailure),
        Target::Cluster(name, authority) => Ok((name, authority)),
    }
}

/// What `proxy_grpc_cancel` does, to a call or a stream.
pub(crate) fn cancel(state: &mut State, vm: usize, token: u32) -> Status {
    let Some(grpc) = state.vm(vm).map(|vm| &mut vm.grpc) else {
        return Status::NotFound;
    };
    let found = match grpc.calls.get_mut(&token) {
        Some(call) => Some(&mut call.state),
        None => grpc.streams.get_mut(&token).map(|stream| &mut stream.state),
    };
    let Some(call_state) = found else {
        return Status::NotFound;
    };
    if *call_state != CallState::Pending {
        return Status::NotFound;
    }
    *call_state = CallState::Cancelled;
    Status::Ok
}

/// The gRPC receive buffer (`BufferType::GrpcReceiveBuffer`).
pub(crate) fn receive_buffer(state: &mut State, vm: usize) -> Option<Vec<u8>> {
    state.vm(vm)?.grpc.receive.clone()
}

fn parse_target(bytes: &[u8]) -> Target {
    let name = || Target::Name(String::from_utf8_lossy(bytes).into_owned());
    let Some(outer) = fields(bytes) else {
        return name();
    };
    let Some(envoy_grpc) = outer.iter().rev().find(|(n, _)| *n == 1) else {
        return Target::Untargeted;
    };
    let Some(inner) = fields(envoy_grpc.1) else {
        return name();
    };
    let text = |number: u64| {
        inner
            .iter()
            .rev()
            .find(|(n, _)| *n == number)
            .map(|(_, v)| std::str::from_utf8(v).map(str::to_owned))
    };
    match (text(1), text(2)) {
        (Some(Err(_)), _) | (_, Some(Err(_))) => name(),
        (cluster, authority) => Target::Cluster(
            cluster.and_then(Result::ok).unwrap_or_default(),
            authority.and_then(Result::ok),
        ),
    }
}

/// The protobuf fields of `bytes` (number, and the bytes of a length-delimited one), or
/// `None` when they do not parse.
fn fields(mut bytes: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    fn varint(bytes: &mut &[u8]) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = bytes.split_first()?;
            *bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        let number = key >> 3;
        if number == 0 {
            return None;
        }
        match key & 7 {
            0 => {
                varint(&mut bytes)?;
            }
            1 | 5 => {
                let size = if key & 7 == 1 { 8 } else { 4 };
                bytes = bytes.get(size..)?;
            }
            2 => {
                let len = usize::try_from(varint(&mut bytes)?).ok()?;
                let value = bytes.get(..len)?;
                bytes = &bytes[len..];
                out.push((number, value));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// A gRPC call a plugin dispatched, to inspect and answer.
#[derive(Clone)]
pub struct GrpcCall {
    vm: Arc<VmInner>,
    token: u32,
}

impl fmt::Debug for GrpcCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcCall")
            .field("vm", &self.vm.index)
            .field("token", &self.token)
            .field("cluster", &self.cluster())
            .field("method", &self.path())
            .finish()
    }
}

/// The gRPC calls of `vm`, in dispatch order: all of them, or those sent by code acting
/// for `context`.
pub(crate) fn calls_of(vm: &Arc<VmInner>, context: Option<u32>) -> Vec<GrpcCall> {
    let state = vm.shared.lock();
    let Some(vm_state) = state.vms.get(vm.index) else {
        return Vec::new();
    };
    tokens_in_order(&vm_state.grpc.calls, |c| (c.sender, c.step), context)
        .into_iter()
        .map(|token| GrpcCall {
            vm: vm.clone(),
            token,
        })
        .collect()
}

impl GrpcCall {
    fn read<R: Default>(&self, read: impl FnOnce(&GrpcCallRecord) -> R) -> R {
        let state = self.vm.shared.lock();
        state
            .vms
            .get(self.vm.index)
            .and_then(|vm| vm.grpc.calls.get(&self.token))
            .map_or_else(R::default, read)
    }

    /// The target cluster.
    pub fn cluster(&self) -> String {
        self.read(|c| c.cluster.clone())
    }

    /// The `:authority` asked for, if any.
    pub fn authority(&self) -> Option<String> {
        self.read(|c| c.authority.clone())
    }

    /// The service's full name (`package.Service`).
    pub fn service(&self) -> String {
        self.read(|c| c.service.clone())
    }

    /// The method's name.
    pub fn method(&self) -> String {
        self.read(|c| c.method.clone())
    }

    /// `/package.Service/Method`, the path the service sees.
    pub fn path(&self) -> String {
        self.read(|c| format!("/{}/{}", c.service, c.method))
    }

    /// The request metadata.
    pub fn metadata(&self) -> Headers {
        self.read(|c| c.metadata.clone())
    }

    /// The request message.
    pub fn message(&self) -> Vec<u8> {
        self.read(|c| c.message.clone())
    }

    /// The timeout; `None` for 0 (which Envoy sends as `grpc-timeout: 0m`).
    pub fn timeout(&self) -> Option<Duration> {
        self.read(|c| c.timeout)
    }

    /// Where the call stands: `Cancelled` once the plugin cancelled it.
    pub fn state(&self) -> CallState {
        self.read(|c| Some(c.state)).unwrap_or(CallState::Cancelled)
    }

    /// The token the plugin got for it.
    pub fn token(&self) -> u32 {
        self.token
    }

    /// The context the sending code acted for (the stream, for a call pwf sent on the
    /// root's behalf).
    pub fn context_id(&self) -> u32 {
        self.read(|c| c.sender)
    }

    /// Answers `OK` with `message`: `proxy_on_grpc_receive`.
    pub fn respond(&self, message: impl AsRef<[u8]>) -> Delivery {
        self.deliver(Ok(message.as_ref().to_vec()))
    }

    /// Ends the call with a status the service sent (`code` 1 to 16, and its message), as
    /// Envoy passes it on: `proxy_on_grpc_close`, the message followed by `{via_upstream}`.
    pub fn respond_status(&self, code: u32, message: &str) -> Delivery {
        self.deliver(Err((code, format!("{message}{{via_upstream}}"))))
    }

    /// Ends the call as Envoy does when the service refuses the connection: 14
    /// ([`GRPC_REFUSED_MESSAGE`]).
    pub fn refuse(&self) -> Delivery {
        self.deliver(Err((14, GRPC_REFUSED_MESSAGE.to_owned())))
    }

    /// Ends the call as Envoy does when its timeout passes: 14
    /// ([`GRPC_TIMEOUT_MESSAGE`]).
    pub fn time_out(&self) -> Delivery {
        self.deliver(Err((14, GRPC_TIMEOUT_MESSAGE.to_owned())))
    }

    fn deliver(&self, answer: Result<Vec<u8>, (u32, String)>) -> Delivery {
        let token = self.token;
        let delivered = self.vm.exec(move |shared, vm| {
            let root = {
                let mut state = shared.lock();
                let Some(vm_state) = state.vm(vm) else {
                    return Delivery::Cancelled;
                };
                let Some(call) = vm_state.grpc.calls.get_mut(&token) else {
                    return Delivery::Cancelled;
                };
                match call.state {
                    CallState::Answered => return Delivery::AlreadyAnswered,
                    CallState::Cancelled => return Delivery::Cancelled,
                    CallState::Pending => call.state = CallState::Answered,
                }
                let sender = call.sender;
                vm_state.contexts.get(&sender).map_or(sender, |c| c.root)
            };
            deliver(shared, vm, root, token, answer);
            Delivery::Delivered
        });
        delivered.unwrap_or_else(Delivery::VmFailed)
    }
}

/// Calls the root back with the answer to call `token`.
fn deliver(
    shared: &Shared,
    vm: usize,
    root: u32,
    token: u32,
    answer: Result<Vec<u8>, (u32, String)>,
) {
    let code = match &answer {
        Ok(_) => 0,
        Err((code, _)) => *code,
    };
    let size = answer.as_ref().map_or(0, Vec::len);
    if let Some(state) = shared.lock().vm(vm) {
        match answer {
            Ok(message) => {
                state.grpc.receive = Some(message);
                state.status = (0, Vec::new());
            }
            Err((code, text)) => state.status = (code, text.into_bytes()),
        }
    }
    runtime::enter(shared, vm, root, Callback::CallResponse);
    runtime::export(if code == 0 {
        Export::GrpcReceive(root, token, size)
    } else {
        Export::GrpcClose(root, token, code)
    });
    runtime::leave(shared, vm);
    if let Some(state) = shared.lock().vm(vm) {
        state.grpc.receive = None;
        state.status = (0, Vec::new());
    }
}

/// A gRPC stream a plugin opened (`proxy_grpc_stream`).
pub(crate) struct GrpcStreamRecord {
    sender: u32,
    cluster: String,
    service: String,
    method: String,
    metadata: Headers,
    sent: Vec<Vec<u8>>,
    half_closed: bool,
    state: CallState,
    step: u64,
}

/// What `proxy_grpc_stream` does: checks the target as for a call and records the stream.
pub(crate) fn open_stream(
    state: &mut State,
    vm: usize,
    service: &[u8],
    service_name: &[u8],
    method: &[u8],
    metadata: &[u8],
) -> Result<u32, Status> {
    let (cluster, _) = target(state, service)?;
    let metadata = Headers::deserialize(metadata).ok_or(Status::BadArgument)?;
    let step = state.step;
    let vm_state = state.vm(vm).ok_or(Status::InternalFailure)?;
    let sender = vm_state.switched_from.unwrap_or(vm_state.effective);
    let grpc = &mut vm_state.grpc;
    grpc.next_stream = grpc.next_stream.wrapping_add(4);
    let token = grpc.next_stream.wrapping_sub(2);
    grpc.streams.insert(
        token,
        GrpcStreamRecord {
            sender,
            cluster,
            service: String::from_utf8_lossy(service_name).into_owned(),
            method: String::from_utf8_lossy(method).into_owned(),
            metadata,
            sent: Vec::new(),
            half_closed: false,
            state: CallState::Pending,
            step,
        },
    );
    Ok(token)
}

/// What `proxy_grpc_send` does.
pub(crate) fn send(state: &mut State, vm: usize, token: u32, message: &[u8], end: bool) -> Status {
    let Some(stream) = state.vm(vm).and_then(|vm| vm.grpc.streams.get_mut(&token)) else {
        return Status::NotFound;
    };
    if stream.state != CallState::Pending || stream.half_closed {
        return Status::NotFound;
    }
    stream.sent.push(message.to_vec());
    stream.half_closed = end;
    Status::Ok
}

/// What `proxy_grpc_close` does: a half-close (measured: the service still answers).
pub(crate) fn close(state: &mut State, vm: usize, token: u32) -> Status {
    let Some(stream) = state.vm(vm).and_then(|vm| vm.grpc.streams.get_mut(&token)) else {
        return Status::NotFound;
    };
    if stream.state != CallState::Pending {
        return Status::NotFound;
    }
    stream.half_closed = true;
    Status::Ok
}

/// The gRPC metadata maps served during a stream's callbacks (map types 4 and 5).
pub(crate) fn receive_map(state: &mut State, vm: usize, map_type: u32) -> Option<Headers> {
    let grpc = &state.vm(vm)?.grpc;
    if map_type == 4 {
        grpc.initial.clone()
    } else {
        grpc.trailing.clone()
    }
}

/// A gRPC stream a plugin opened, to inspect and answer piece by piece.
#[derive(Clone)]
pub struct GrpcStreamCall {
    vm: Arc<VmInner>,
    token: u32,
}

impl fmt::Debug for GrpcStreamCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcStreamCall")
            .field("vm", &self.vm.index)
            .field("token", &self.token)
            .field("method", &self.path())
            .finish()
    }
}

/// The gRPC streams of `vm`, in open order: all, or those opened by code acting for
/// `context`.
pub(crate) fn streams_of(vm: &Arc<VmInner>, context: Option<u32>) -> Vec<GrpcStreamCall> {
    let state = vm.shared.lock();
    let Some(vm_state) = state.vms.get(vm.index) else {
        return Vec::new();
    };
    tokens_in_order(&vm_state.grpc.streams, |s| (s.sender, s.step), context)
        .into_iter()
        .map(|token| GrpcStreamCall {
            vm: vm.clone(),
            token,
        })
        .collect()
}

impl GrpcStreamCall {
    fn read<R: Default>(&self, read: impl FnOnce(&GrpcStreamRecord) -> R) -> R {
        let state = self.vm.shared.lock();
        state
            .vms
            .get(self.vm.index)
            .and_then(|vm| vm.grpc.streams.get(&self.token))
            .map_or_else(R::default, read)
    }

    /// The target cluster.
    pub fn cluster(&self) -> String {
        self.read(|s| s.cluster.clone())
    }

    /// `/package.Service/Method`.
    pub fn path(&self) -> String {
        self.read(|s| format!("/{}/{}", s.service, s.method))
    }

    /// The request metadata.
    pub fn metadata(&self) -> Headers {
        self.read(|s| s.metadata.clone())
    }

    /// The messages the plugin sent, in order.
    pub fn sent(&self) -> Vec<Vec<u8>> {
        self.read(|s| s.sent.clone())
    }

    /// Whether the plugin half-closed it (`proxy_grpc_close`, or a send with end of stream).
    pub fn is_half_closed(&self) -> bool {
        self.read(|s| s.half_closed)
    }

    /// `Pending` while open, `Answered` once closed by [`close`](Self::close) or
    /// [`refuse`](Self::refuse), `Cancelled` once the plugin cancelled it.
    pub fn state(&self) -> CallState {
        self.read(|s| Some(s.state)).unwrap_or(CallState::Cancelled)
    }

    /// The token the plugin got for it.
    pub fn token(&self) -> u32 {
        self.token
    }

    /// Delivers the service's initial metadata (`proxy_on_grpc_receive_initial_metadata`).
    pub fn initial_metadata(&self, metadata: impl IntoHeaders) -> Delivery {
        self.deliver(Event::Initial(metadata.into_headers()))
    }

    /// Delivers a message (`proxy_on_grpc_receive`).
    pub fn message(&self, message: impl AsRef<[u8]>) -> Delivery {
        self.deliver(Event::Message(message.as_ref().to_vec()))
    }

    /// Delivers the trailing metadata (`proxy_on_grpc_receive_trailing_metadata`).
    pub fn trailing_metadata(&self, metadata: impl IntoHeaders) -> Delivery {
        self.deliver(Event::Trailing(metadata.into_headers()))
    }

    /// Closes the stream with the service's status (`proxy_on_grpc_close`): 0 for `OK`.
    pub fn close(&self, code: u32, message: &str) -> Delivery {
        let text = if code == 0 {
            "via_upstream".to_owned()
        } else {
            format!("{message}{{via_upstream}}")
        };
        self.deliver(Event::Close(code, text))
    }

    /// Ends the stream as Envoy does when the service refuses the connection: empty
    /// initial metadata, trailers with the status, then the close (14).
    pub fn refuse(&self) -> Delivery {
        let delivered = self.initial_metadata(Headers::new());
        if delivered != Delivery::Delivered {
            return delivered;
        }
        let mut trailers = Headers::new();
        trailers.append(":status", "200");
        trailers.append("content-type", "application/grpc");
        trailers.append("grpc-status", "14");
        trailers.append("grpc-message", "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure");
        self.trailing_metadata(trailers);
        self.deliver(Event::Close(14, GRPC_REFUSED_MESSAGE.to_owned()))
    }

    fn deliver(&self, event: Event) -> Delivery {
        let token = self.token;
        let delivered = self.vm.exec(move |shared, vm| {
            let root = {
                let mut state = shared.lock();
                let Some(vm_state) = state.vm(vm) else {
                    return Delivery::Cancelled;
                };
                let Some(stream) = vm_state.grpc.streams.get_mut(&token) else {
                    return Delivery::Cancelled;
                };
                match stream.state {
                    CallState::Answered => return Delivery::AlreadyAnswered,
                    CallState::Cancelled => return Delivery::Cancelled,
                    CallState::Pending => {}
                }
                if matches!(event, Event::Close(..)) {
                    stream.state = CallState::Answered;
                }
                let sender = stream.sender;
                vm_state.contexts.get(&sender).map_or(sender, |c| c.root)
            };
            deliver_event(shared, vm, root, token, event);
            Delivery::Delivered
        });
        delivered.unwrap_or_else(Delivery::VmFailed)
    }
}

enum Event {
    Initial(Headers),
    Message(Vec<u8>),
    Trailing(Headers),
    Close(u32, String),
}

fn deliver_event(shared: &Shared, vm: usize, root: u32, token: u32, event: Event) {
    if let Some(state) = shared.lock().vm(vm) {
        match &event {
            Event::Initial(map) => state.grpc.initial = Some(map.clone()),
            Event::Trailing(map) => state.grpc.trailing = Some(map.clone()),
            Event::Message(message) => state.grpc.receive = Some(message.clone()),
            Event::Close(code, text) => state.status = (*code, text.clone().into_bytes()),
        }
    }
    runtime::enter(shared, vm, root, Callback::CallResponse);
    let count = |map: &Headers| u32::try_from(map.len()).unwrap_or(u32::MAX);
    runtime::export(match &event {
        Event::Initial(map) => Export::GrpcInitialMetadata(root, token, count(map)),
        Event::Message(message) => Export::GrpcReceive(root, token, message.len()),
        Event::Trailing(map) => Export::GrpcTrailingMetadata(root, token, count(map)),
        Event::Close(code, _) => Export::GrpcClose(root, token, *code),
    });
    runtime::leave(shared, vm);
    if let Some(state) = shared.lock().vm(vm) {
        state.grpc.initial = None;
        state.grpc.trailing = None;
        state.grpc.receive = None;
        state.status = (0, Vec::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_target_reads_a_grpc_service_or_takes_a_name() {
        assert!(matches!(
            parse_target(b"\x0a\x0a\x0a\x03rls\x12\x03a.b"),
            Target::Cluster(c, Some(a)) if c == "rls" && a == "a.b"
        ));
        assert!(matches!(parse_target(b"ratelimit"), Target::Name(n) if n == "ratelimit"));
        // `hi` is field 13, varint 105: a GrpcService without a target.
        assert!(matches!(parse_target(b"hi"), Target::Untargeted));
        assert!(matches!(parse_target(b""), Target::Untargeted));
    }
}
