//! The host's state, shared by every VM of a [`Host`](crate::Host), and the host calls
//! that read and change it. Nothing here runs plugin code, so nothing here is called with
//! the lock held across a call into a VM.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use proxy_wasm::types::{LogLevel, MetricType, Status};

use crate::api::{
    Callback, ConnectionResume, Direction, LocalResponse, LogEntry, Metric, Resume, Side,
};
use crate::headers::Headers;

/// `WasmResult::BrokenConnection`, what `proxy_get_status` reports during a reset call.
pub(crate) const BROKEN_CONNECTION: u32 = 11;

pub(crate) type Hook = Box<dyn FnOnce() + Send>;

pub(crate) struct Shared {
    state: Mutex<State>,
}

impl Shared {
    pub(crate) fn new(state: State) -> Self {
        Shared {
            state: Mutex::new(state),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub(crate) struct State {
    pub(crate) vm_id: String,
    pub(crate) plugin_name: String,
    pub(crate) root_id: String,
    pub(crate) clusters: BTreeSet<String>,
    pub(crate) log_level: LogLevel,
    pub(crate) now: SystemTime,
    pub(crate) properties: HashMap<Vec<u8>, Vec<u8>>,
    pub(crate) shared_data: HashMap<String, (Vec<u8>, u32)>,
    pub(crate) next_cas: u32,
    pub(crate) forced_cas_mismatches: HashMap<String, u32>,
    pub(crate) set_hooks: Vec<(usize, String, Hook)>,
    pub(crate) queues: Vec<Queue>,
    pub(crate) queue_notifications: VecDeque<(usize, u32, u32)>,
    pub(crate) metrics: Vec<(String, Metric)>,
    pub(crate) logs: Vec<LogEntry>,
    pub(crate) step: u64,
    pub(crate) vms: Vec<VmState>,
    /// A panic raised by test code running inside a host call (a shared-data hook); it is
    /// re-raised on the thread that drove the VM.
    pub(crate) test_panic: Option<Box<dyn Any + Send>>,
}

pub(crate) struct Queue {
    pub(crate) vm_id: String,
    pub(crate) name: String,
    pub(crate) owner: (usize, u32),
    pub(crate) items: VecDeque<Vec<u8>>,
}

#[derive(Default)]
pub(crate) struct VmState {
    pub(crate) failure: Option<String>,
    pub(crate) vm_config: Vec<u8>,
    pub(crate) plugin_config: Option<Vec<u8>>,
    pub(crate) next_context_id: u32,
    pub(crate) next_token: u32,
    pub(crate) next_metric_id: [u32; 3],
    pub(crate) metric_ids: HashMap<u32, usize>,
    pub(crate) effective: u32,
    /// The stream that was effective when the plugin made a root context
    /// effective during this callback: calls sent then are on its behalf.
    pub(crate) switched_from: Option<u32>,
    pub(crate) callback: Option<Callback>,
    pub(crate) contexts: BTreeMap<u32, Context>,
    pub(crate) calls: BTreeMap<u32, CallRecord>,
    pub(crate) call_response: Option<CallResponse>,
    pub(crate) status: (u32, Vec<u8>),
    /// The fuel the VM's module has used so far (wasm mode only).
    pub(crate) fuel: Option<u64>,
    /// The module's linear memory, in 64 KiB pages (wasm mode only).
    pub(crate) memory_pages: Option<u64>,
    /// gRPC calls (see `grpc`).
    pub(crate) grpc: crate::grpc::GrpcState,
}

pub(crate) struct Context {
    pub(crate) root: u32,
    pub(crate) deleted: bool,
    pub(crate) kind: ContextKind,
}

pub(crate) enum ContextKind {
    Root(RootState),
    Stream(Box<StreamState>),
}

#[derive(Default)]
pub(crate) struct RootState {
    pub(crate) tick_period_ms: u32,
    pub(crate) configured: bool,
}

/// The four header maps of a stream, in `MapType` order.
pub(crate) const REQUEST_HEADERS: usize = 0;
pub(crate) const REQUEST_TRAILERS: usize = 1;
pub(crate) const RESPONSE_HEADERS: usize = 2;
pub(crate) const RESPONSE_TRAILERS: usize = 3;

#[derive(Default)]
pub(crate) struct Body {
    /// The buffer the plugin sees: the current chunk, or everything buffered so far.
    pub(crate) current: Option<Vec<u8>>,
    pub(crate) buffering: bool,
    /// What the filter let through.
    pub(crate) forwarded: Vec<u8>,
}

impl Body {
    pub(crate) fn release(&mut self) {
        if let Some(current) = self.current.take() {
            self.forwarded.extend_from_slice(&current);
        }
        self.buffering = false;
    }
}

#[derive(Default)]
pub(crate) struct StreamState {
    pub(crate) maps: [Headers; 4],
    /// Whether Envoy still holds each map for the filter (during its phase, and after a
    /// Pause until the stream is continued).
    pub(crate) held: [bool; 4],
    pub(crate) request_body: Body,
    /// The request body Envoy holds while the request headers are paused, and whether
    /// its end of stream came: delivered to the body phase after the resume.
    pub(crate) held_request_body: Option<(Vec<u8>, bool)>,
    pub(crate) response_body: Body,
    pub(crate) local_response: Option<LocalResponse>,
    pub(crate) local_response_pending: bool,
    pub(crate) response_started: bool,
    pub(crate) resumes: Vec<Resume>,
    pub(crate) reset: Option<Direction>,
    pub(crate) ended: bool,
    pub(crate) properties: HashMap<Vec<u8>, Vec<u8>>,
    /// A TCP connection's bytes from the client.
    pub(crate) downstream: Body,
    /// A TCP connection's bytes from the upstream.
    pub(crate) upstream: Body,
    /// Every `proxy_continue_stream` of a TCP connection, in order.
    pub(crate) connection_resumes: Vec<ConnectionResume>,
    /// The sides of a TCP connection the plugin closed, in order.
    pub(crate) closed_by_plugin: Vec<Side>,
    /// Whether each side of a TCP connection closed (downstream, upstream).
    pub(crate) side_closed: [bool; 2],
}

impl StreamState {
    /// The bytes of one side of a TCP connection.
    pub(crate) fn side(&mut self, side: Side) -> &mut Body {
        match side {
            Side::Downstream => &mut self.downstream,
            Side::Upstream => &mut self.upstream,
        }
    }
}

/// The tokens of `records` in the order they were sent: all of them, or those whose sender
/// (the first of what `sent` gives, with the step it was sent at) is `context`.
pub(crate) fn tokens_in_order<R>(
    records: &BTreeMap<u32, R>,
    sent: impl Fn(&R) -> (u32, u64),
    context: Option<u32>,
) -> Vec<u32> {
    let mut tokens: Vec<(u64, u32)> = records
        .iter()
        .map(|(token, record)| (sent(record), *token))
        .filter(|((sender, _), _)| context.is_none_or(|c| *sender == c))
        .map(|((_, step), token)| (step, token))
        .collect();
    tokens.sort();
    tokens.into_iter().map(|(_, token)| token).collect()
}

pub(crate) struct CallRecord {
    /// The context the call belongs to: Envoy cancels it when that context ends.
    pub(crate) context: u32,
    /// The stream on whose behalf a root context sent it (see `switched_from`).
    pub(crate) on_behalf_of: Option<u32>,
    pub(crate) cluster: String,
    pub(crate) headers: Headers,
    pub(crate) body: Vec<u8>,
    pub(crate) trailers: Headers,
    pub(crate) timeout: Option<Duration>,
    pub(crate) state: crate::api::CallState,
    pub(crate) step: u64,
}

pub(crate) struct CallResponse {
    pub(crate) headers: Headers,
    pub(crate) body: Vec<u8>,
    pub(crate) trailers: Headers,
}

impl State {
    pub(crate) fn vm(&mut self, vm: usize) -> Option<&mut VmState> {
        self.vms.get_mut(vm)
    }

    pub(crate) fn stream(&mut self, vm: usize, id: u32) -> Option<&mut StreamState> {
        match &mut self.vms.get_mut(vm)?.contexts.get_mut(&id)?.kind {
            ContextKind::Stream(stream) => Some(stream),
            ContextKind::Root(_) => None,
        }
    }

    pub(crate) fn root(&mut self, vm: usize, id: u32) -> Option<&mut RootState> {
        match &mut self.vms.get_mut(vm)?.contexts.get_mut(&id)?.kind {
            ContextKind::Root(root) => Some(root),
            ContextKind::Stream(_) => None,
        }
    }

    /// The stream of the effective context, if it is a live stream.
    pub(crate) fn effective_stream(&mut self, vm: usize) -> Option<&mut StreamState> {
        let id = self.vms.get(vm)?.effective;
        let context = self.vms.get_mut(vm)?.contexts.get_mut(&id)?;
        if context.deleted {
            return None;
        }
        match &mut context.kind {
            ContextKind::Stream(stream) => Some(stream),
            ContextKind::Root(_) => None,
        }
    }

    pub(crate) fn effective_root_id(&self, vm: usize) -> u32 {
        self.vms
            .get(vm)
            .and_then(|state| state.contexts.get(&state.effective))
            .map_or(0, |context| context.root)
    }

    pub(crate) fn callback(&self, vm: usize) -> Option<Callback> {
        self.vms.get(vm).and_then(|state| state.callback)
    }

    pub(crate) fn next_step(&mut self) -> u64 {
        self.step += 1;
        self.step
    }

    pub(crate) fn log(&mut self, vm: usize, level: u32, message: String) {
        let Some(level) = log_level(level) else {
            return;
        };
        if (level as u32) < (self.log_level as u32) {
            return;
        }
        let context_id = self.vms.get(vm).map_or(0, |state| state.effective);
        self.logs.push(LogEntry {
            level,
            message,
            vm,
            context_id,
        });
    }

    /// Envoy's `nextCas`: the current value, then increment, never 0.
    fn next_cas(&mut self) -> u32 {
        let cas = self.next_cas;
        self.next_cas = self.next_cas.wrapping_add(1);
        if self.next_cas == 0 {
            self.next_cas = 1;
        }
        cas
    }

    pub(crate) fn get_shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.shared_data.get(key).cloned()
    }

    /// Envoy's `SharedData::set`: `cas` 0 writes unconditionally, a missing key is
    /// inserted whatever `cas` is, otherwise `cas` must match.
    pub(crate) fn set_shared_data(&mut self, key: &str, value: Vec<u8>, cas: u32) -> Status {
        let exists = self.shared_data.contains_key(key);
        if exists && cas != 0 {
            if let Some(remaining) = self.forced_cas_mismatches.get_mut(key) {
                if *remaining > 0 {
                    *remaining -= 1;
                    return Status::CasMismatch;
                }
            }
        }
        if let Some((_, current)) = self.shared_data.get(key) {
            if cas != 0 && cas != *current {
                return Status::CasMismatch;
            }
        }
        let new_cas = self.next_cas();
        self.shared_data.insert(key.to_string(), (value, new_cas));
        Status::Ok
    }

    pub(crate) fn define_metric(&mut self, vm: usize, kind: u32, name: String) -> Option<u32> {
        let metric_type = metric_type(kind)?;
        let index = match self
            .metrics
            .iter()
            .position(|(existing, metric)| *existing == name && metric.kind() == metric_type)
        {
            Some(index) => index,
            None => {
                let metric = match metric_type {
                    MetricType::Counter => Metric::Counter(0),
                    MetricType::Gauge => Metric::Gauge(0),
                    _ => Metric::Histogram(Vec::new()),
                };
                self.metrics.push((name, metric));
                self.metrics.len() - 1
            }
        };
        let state = self.vms.get_mut(vm)?;
        let slot = state.next_metric_id.get_mut(kind as usize)?;
        // Envoy keeps the type in the low two bits of the id and steps by 4.
        let id = (*slot << 2) | kind;
        *slot += 1;
        state.metric_ids.insert(id, index);
        Some(id)
    }

    pub(crate) fn metric_mut(&mut self, vm: usize, id: u32) -> Option<&mut Metric> {
        let index = *self.vms.get(vm)?.metric_ids.get(&id)?;
        self.metrics.get_mut(index).map(|(_, metric)| metric)
    }
}

pub(crate) fn log_level(level: u32) -> Option<LogLevel> {
    Some(match level {
        0 => LogLevel::Trace,
        1 => LogLevel::Debug,
        2 => LogLevel::Info,
        3 => LogLevel::Warn,
        4 => LogLevel::Error,
        5 => LogLevel::Critical,
        _ => return None,
    })
}

fn metric_type(kind: u32) -> Option<MetricType> {
    Some(match kind {
        0 => MetricType::Counter,
        1 => MetricType::Gauge,
        2 => MetricType::Histogram,
        _ => return None,
    })
}
