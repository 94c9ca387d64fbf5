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
use crate::headers::Headers;
use crate::runtime::{self, VmInner};
use crate::state::{Shared, State};

/// What Envoy says when the cluster's host refuses the connection.
pub const GRPC_REFUSED_MESSAGE: &str = "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure{upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}}";
/// What Envoy says when a call's timeout passes.
pub const GRPC_TIMEOUT_MESSAGE: &str = "upstream request timeout{response_timeout}";

/// A VM's gRPC state.
#[derive(Default)]
pub(crate) struct GrpcState {
    pub(crate) calls: BTreeMap<u32, GrpcCallRecord>,
    next_call: u32,
    /// The message being delivered (the gRPC receive buffer).
    pub(crate) receive: Option<Vec<u8>>,
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
    let (cluster, authority) = match parse_target(service) {
        Target::Untargeted => panic!(
            "Envoy 1.40 aborts (panic: unset oneof) on gRPC service bytes that parse as a \
             GrpcService without envoy_grpc: {service:?}"
        ),
        Target::Name(name) if !state.clusters.contains(&name) => return Err(Status::ParseFailure),
        Target::Name(name) => (name, None),
        Target::Cluster(name, _) if !state.clusters.contains(&name) => {
            return Err(Status::InternalFailure)
        }
        Target::Cluster(name, authority) => (name, authority),
    };
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

/// What `proxy_grpc_cancel` does.
pub(crate) fn cancel(state: &mut State, vm: usize, token: u32) -> Status {
    let Some(call) = state.vm(vm).and_then(|vm| vm.grpc.calls.get_mut(&token)) else {
        return Status::NotFound;
    };
    if call.state != CallState::Pending {
        return Status::NotFound;
    }
    call.state = CallState::Cancelled;
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
    let mut calls: Vec<(u64, u32)> = vm_state
        .grpc
        .calls
        .iter()
        .filter(|(_, call)| context.is_none_or(|c| call.sender == c))
        .map(|(token, call)| (call.step, *token))
        .collect();
    calls.sort();
    calls
        .into_iter()
        .map(|(_, token)| GrpcCall {
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
