//! The proxy-wasm host calls (the `proxy_*` imports of the SDK), once, over the host state
//! and a [`Memory`]: the one host model both backends share.
//!
//! Each function finds the VM of the calling thread and answers with Envoy's semantics. The
//! guest's pointers arrive as addresses; [`Memory`] reads and writes them, natively in the
//! test process (`native`), in a module's linear memory under wasmtime (`wasm`). The list
//! of imports that binds these functions to both backends is in `imports`. None of them
//! panics: natively a panic here would cross an `extern "C"` boundary.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::types::{MetricType, Status};

use crate::api::{
    CallState, Callback, ConnectionResume, Direction, LocalResponse, Metric, Resume, Side,
};
use crate::headers::Headers;
use crate::runtime::{current, run_test_code};
use crate::state::{
    CallRecord, Queue, Shared, State, StreamState, REQUEST_HEADERS, REQUEST_TRAILERS,
};

/// A guest pointer or size that does not fit the guest's memory: Envoy answers
/// `InvalidMemoryAccess`.
#[derive(Debug)]
pub(crate) struct Fault;

/// `WasmResult::InvalidMemoryAccess`, the status of a [`Fault`].
pub(crate) const INVALID_MEMORY_ACCESS: u32 = 6;

/// What a host call answers: a status, or a fault on guest memory.
pub(crate) type Answer = Result<Status, Fault>;

/// The status code a host call returns to the guest.
pub(crate) fn code(answer: Answer) -> u32 {
    match answer {
        Ok(status) => status as u32,
        Err(Fault) => INVALID_MEMORY_ACCESS,
    }
}

/// The guest's memory, as a host call sees it.
pub(crate) trait Memory {
    /// The `size` bytes at `address`.
    fn read(&mut self, address: usize, size: usize) -> Result<Vec<u8>, Fault>;
    /// Writes `bytes` at `address`.
    fn write(&mut self, address: usize, bytes: &[u8]) -> Result<(), Fault>;
    /// The size of the guest's `usize`, in bytes.
    fn word_size(&self) -> usize;
    /// Allocates `size` bytes that the guest owns from then on (the SDK frees them).
    fn allocate(&mut self, size: usize) -> Result<usize, Fault>;
}

/// Reads guest memory handed to a host call (nothing for a size of 0).
fn input(memory: &mut dyn Memory, address: usize, size: usize) -> Result<Vec<u8>, Fault> {
    if size == 0 {
        Ok(Vec::new())
    } else {
        memory.read(address, size)
    }
}

fn text(memory: &mut dyn Memory, address: usize, size: usize) -> Result<String, Fault> {
    Ok(String::from_utf8_lossy(&input(memory, address, size)?).into_owned())
}

fn put_u32(memory: &mut dyn Memory, address: usize, value: u32) -> Result<(), Fault> {
    memory.write(address, &value.to_le_bytes())
}

fn put_u64(memory: &mut dyn Memory, address: usize, value: u64) -> Result<(), Fault> {
    memory.write(address, &value.to_le_bytes())
}

fn put_word(memory: &mut dyn Memory, address: usize, value: usize) -> Result<(), Fault> {
    let bytes = (value as u64).to_le_bytes();
    let size = memory.word_size().min(bytes.len());
    memory.write(address, &bytes[..size])
}

/// Hands bytes to the plugin: a buffer the guest owns with len == capacity (the SDK
/// rebuilds it with `Vec::from_raw_parts(p, n, n)`), or null for nothing, as Envoy does for
/// empty values.
fn output(memory: &mut dyn Memory, bytes: &[u8], data: usize, size: usize) -> Result<(), Fault> {
    let address = if bytes.is_empty() {
        0
    } else {
        let address = memory.allocate(bytes.len())?;
        memory.write(address, bytes)?;
        address
    };
    put_word(memory, data, address)?;
    put_word(memory, size, bytes.len())
}

/// Runs `f` with the calling thread's VM (`None` on a thread without one). Nothing here
/// touches guest memory: that happens once the state is unlocked.
fn with_vm<R>(f: impl FnOnce(&mut State, usize) -> R) -> Option<R> {
    let (shared, vm) = current()?;
    let mut state = shared.lock();
    Some(f(&mut state, vm))
}

pub(crate) fn proxy_log(memory: &mut dyn Memory, level: u32, data: usize, size: usize) -> Answer {
    let message = text(memory, data, size)?;
    match current() {
        Some((shared, vm)) => shared.lock().log(vm, level, message),
        None => eprintln!("{message}"),
    }
    Ok(Status::Ok)
}

pub(crate) fn proxy_get_log_level(memory: &mut dyn Memory, return_level: usize) -> Answer {
    let level = with_vm(|state, _| state.log_level as u32).unwrap_or(0);
    put_u32(memory, return_level, level)?;
    Ok(Status::Ok)
}

/// The host clock, in nanoseconds since the epoch (also WASI's clocks).
pub(crate) fn now_nanos() -> u64 {
    let now = with_vm(|state, _| state.now).unwrap_or(UNIX_EPOCH);
    let nanos = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

pub(crate) fn proxy_get_current_time_nanoseconds(
    memory: &mut dyn Memory,
    return_time: usize,
) -> Answer {
    put_u64(memory, return_time, now_nanos())?;
    Ok(Status::Ok)
}

pub(crate) fn proxy_set_tick_period_milliseconds(_: &mut dyn Memory, period: u32) -> Answer {
    with_vm(|state, vm| {
        let root = state.effective_root_id(vm);
        if let Some(root) = state.root(vm, root) {
            root.tick_period_ms = period;
        }
    });
    Ok(Status::Ok)
}

/// The bytes behind a buffer type, as Envoy's `getBuffer` finds them (`None`: no buffer,
/// NotFound).
fn buffer(state: &mut State, vm: usize, buffer_type: u32) -> Option<Vec<u8>> {
    match buffer_type {
        0 | 1 => {
            let stream = state.effective_stream(vm)?;
            let body = if buffer_type == 0 {
                &stream.request_body
            } else {
                &stream.response_body
            };
            Some(body.current.clone().unwrap_or_default())
        }
        2 | 3 => {
            let stream = state.effective_stream(vm)?;
            let side = if buffer_type == 2 {
                &stream.downstream
            } else {
                &stream.upstream
            };
            Some(side.current.clone().unwrap_or_default())
        }
        4 => Some(state.vm(vm)?.call_response.as_ref()?.body.clone()),
        5 => crate::grpc::receive_buffer(state, vm),
        6 => Some(state.vm(vm)?.vm_config.clone()),
        7 => state.vm(vm)?.plugin_config.clone(),
        _ => None,
    }
}

pub(crate) fn proxy_get_buffer_bytes(
    memory: &mut dyn Memory,
    buffer_type: u32,
    start: usize,
    max_size: usize,
    return_data: usize,
    return_size: usize,
) -> Answer {
    let bytes = with_vm(|state, vm| buffer(state, vm, buffer_type)).flatten();
    let Some(bytes) = bytes else {
        return Ok(Status::NotFound);
    };
    let begin = start.min(bytes.len());
    let end = start.saturating_add(max_size).min(bytes.len());
    output(memory, &bytes[begin..end], return_data, return_size)?;
    Ok(Status::Ok)
}

/// Envoy's `Buffer::copyFrom`: prepend (start 0, size 0), replace all (start 0, size >=
/// length), append (start >= length); anything else is BadArgument.
fn splice(buffer: &mut Vec<u8>, start: usize, size: usize, data: &[u8]) -> Status {
    if start == 0 && size == 0 {
        let mut joined = data.to_vec();
        joined.extend_from_slice(buffer);
        *buffer = joined;
    } else if start == 0 && size >= buffer.len() {
        *buffer = data.to_vec();
    } else if start >= buffer.len() {
        buffer.extend_from_slice(data);
    } else {
        return Status::BadArgument;
    }
    Status::Ok
}

pub(crate) fn proxy_set_buffer_bytes(
    memory: &mut dyn Memory,
    buffer_type: u32,
    start: usize,
    size: usize,
    data: usize,
    data_size: usize,
) -> Answer {
    let data = input(memory, data, data_size)?;
    let status = with_vm(|state, vm| {
        let Some(stream) = state.effective_stream(vm) else {
            return Status::BadArgument;
        };
        let body = match buffer_type {
            0 => &mut stream.request_body,
            1 => &mut stream.response_body,
            2 => &mut stream.downstream,
            3 => &mut stream.upstream,
            _ => return Status::BadArgument,
        };
        match body.current.as_mut() {
            Some(current) => splice(current, start, size, &data),
            None => Status::BadArgument,
        }
    });
    Ok(status.unwrap_or(Status::BadArgument))
}

/// The map Envoy's `getConstMap` would read, if it exists now.
fn readable_map(state: &mut State, vm: usize, map_type: u32) -> Option<Headers> {
    let in_log = state.callback(vm) == Some(Callback::Log);
    match map_type {
        0..=3 => {
            let index = map_type as usize;
            let stream = state.effective_stream(vm)?;
            if in_log {
                // Envoy's access-log phase sees the final maps, except request trailers.
                (index != REQUEST_TRAILERS).then(|| stream.maps[index].clone())
            } else {
                stream.held[index].then(|| stream.maps[index].clone())
            }
        }
        6 => Some(state.vm(vm)?.call_response.as_ref()?.headers.clone()),
        7 => Some(state.vm(vm)?.call_response.as_ref()?.trailers.clone()),
        4 | 5 => crate::grpc::receive_map(state, vm, map_type),
        _ => None,
    }
}

/// The map Envoy's `getMap` would change, if the filter holds it now.
fn writable_map(state: &mut State, vm: usize, map_type: u32) -> Option<&mut Headers> {
    if state.callback(vm) == Some(Callback::Log) || map_type > 3 {
        return None;
    }
    let index = map_type as usize;
    let stream: &mut StreamState = state.effective_stream(vm)?;
    if stream.held[index] {
        stream.maps.get_mut(index)
    } else {
        None
    }
}

pub(crate) fn proxy_get_header_map_pairs(
    memory: &mut dyn Memory,
    map_type: u32,
    return_data: usize,
    return_size: usize,
) -> Answer {
    let bytes = with_vm(|state, vm| match readable_map(state, vm, map_type) {
        Some(map) if !map.is_empty() => map.serialize(),
        _ => Vec::new(),
    });
    output(memory, &bytes.unwrap_or_default(), return_data, return_size)?;
    Ok(Status::Ok)
}

pub(crate) fn proxy_set_header_map_pairs(
    memory: &mut dyn Memory,
    map_type: u32,
    data: usize,
    size: usize,
) -> Answer {
    let Some(pairs) = Headers::deserialize(&input(memory, data, size)?) else {
        return Ok(Status::BadArgument);
    };
    change_map(map_type, |map| *map = pairs)
}

pub(crate) fn proxy_get_header_map_value(
    memory: &mut dyn Memory,
    map_type: u32,
    key_data: usize,
    key_size: usize,
    return_data: usize,
    return_size: usize,
) -> Answer {
    let key = text(memory, key_data, key_size)?;
    let value = with_vm(|state, vm| {
        let map = readable_map(state, vm, map_type).ok_or(Status::BadArgument)?;
        map.get_bytes(&key)
            .map(<[u8]>::to_vec)
            .ok_or(Status::NotFound)
    });
    match value.unwrap_or(Err(Status::BadArgument)) {
        Ok(value) => {
            output(memory, &value, return_data, return_size)?;
            Ok(Status::Ok)
        }
        Err(status) => Ok(status),
    }
}

fn change_map(map_type: u32, change: impl FnOnce(&mut Headers)) -> Answer {
    let status = with_vm(|state, vm| match writable_map(state, vm, map_type) {
        Some(map) => {
            change(map);
            Status::Ok
        }
        None => Status::BadArgument,
    });
    Ok(status.unwrap_or(Status::BadArgument))
}

pub(crate) fn proxy_remove_header_map_value(
    memory: &mut dyn Memory,
    map_type: u32,
    key_data: usize,
    key_size: usize,
) -> Answer {
    let key = text(memory, key_data, key_size)?;
    change_map(map_type, |map| map.remove(&key))
}

pub(crate) fn proxy_replace_header_map_value(
    memory: &mut dyn Memory,
    map_type: u32,
    key_data: usize,
    key_size: usize,
    value_data: usize,
    value_size: usize,
) -> Answer {
    let key = text(memory, key_data, key_size)?;
    let value = input(memory, value_data, value_size)?;
    change_map(map_type, |map| map.set(&key, value))
}

pub(crate) fn proxy_add_header_map_value(
    memory: &mut dyn Memory,
    map_type: u32,
    key_data: usize,
    key_size: usize,
    value_data: usize,
    value_size: usize,
) -> Answer {
    let key = text(memory, key_data, key_size)?;
    let value = input(memory, value_data, value_size)?;
    change_map(map_type, |map| map.append(&key, value))
}

pub(crate) fn proxy_get_property(
    memory: &mut dyn Memory,
    path_data: usize,
    path_size: usize,
    return_data: usize,
    return_size: usize,
) -> Answer {
    let path = input(memory, path_data, path_size)?;
    let value = with_vm(|state, vm| {
        let from_stream = state
            .effective_stream(vm)
            .and_then(|stream| stream.properties.get(&path).cloned());
        from_stream
            .or_else(|| state.properties.get(&path).cloned())
            .or_else(|| match path.as_slice() {
                b"plugin_name" => Some(state.plugin_name.clone().into_bytes()),
                b"plugin_root_id" => Some(state.root_id.clone().into_bytes()),
                b"plugin_vm_id" => Some(state.vm_id.clone().into_bytes()),
                _ => None,
            })
    });
    match value.flatten() {
        Some(value) => {
            output(memory, &value, return_data, return_size)?;
            Ok(Status::Ok)
        }
        None => Ok(Status::NotFound),
    }
}

pub(crate) fn proxy_set_property(
    memory: &mut dyn Memory,
    path_data: usize,
    path_size: usize,
    value_data: usize,
    value_size: usize,
) -> Answer {
    let path = input(memory, path_data, path_size)?;
    let value = input(memory, value_data, value_size)?;
    let status = with_vm(|state, vm| {
        // Envoy keeps these in the stream's filter state: a root context has none.
        match state.effective_stream(vm) {
            Some(stream) => {
                stream.properties.insert(path, value);
                Status::Ok
            }
            None => Status::NotFound,
        }
    });
    Ok(status.unwrap_or(Status::NotFound))
}

pub(crate) fn proxy_get_shared_data(
    memory: &mut dyn Memory,
    key_data: usize,
    key_size: usize,
    return_data: usize,
    return_size: usize,
    return_cas: usize,
) -> Answer {
    let key = text(memory, key_data, key_size)?;
    match with_vm(|state, _| state.get_shared_data(&key)).flatten() {
        Some((value, cas)) => {
            output(memory, &value, return_data, return_size)?;
            put_u32(memory, return_cas, cas)?;
            Ok(Status::Ok)
        }
        None => Ok(Status::NotFound),
    }
}

pub(crate) fn proxy_set_shared_data(
    memory: &mut dyn Memory,
    key_data: usize,
    key_size: usize,
    value_data: usize,
    value_size: usize,
    cas: u32,
) -> Answer {
    let key = text(memory, key_data, key_size)?;
    let value = input(memory, value_data, value_size)?;
    let Some((shared, vm)) = current() else {
        return Ok(Status::InternalFailure);
    };
    run_set_hook(&shared, vm, &key);
    let status = shared.lock().set_shared_data(&key, value, cas);
    Ok(status)
}

/// Runs the test's "before the next set of this key on this worker" hook, outside the
/// lock, so it can drive other workers while this one waits inside its host call.
fn run_set_hook(shared: &Arc<Shared>, vm: usize, key: &str) {
    let hook = {
        let mut state = shared.lock();
        let position = state
            .set_hooks
            .iter()
            .position(|(hook_vm, hook_key, _)| *hook_vm == vm && hook_key == key);
        position.map(|position| state.set_hooks.remove(position).2)
    };
    if let Some(hook) = hook {
        run_test_code(shared, hook);
    }
}

pub(crate) fn proxy_register_shared_queue(
    memory: &mut dyn Memory,
    name_data: usize,
    name_size: usize,
    return_id: usize,
) -> Answer {
    let name = text(memory, name_data, name_size)?;
    let id = with_vm(|state, vm| {
        let owner = (vm, state.effective_root_id(vm));
        let vm_id = state.vm_id.clone();
        let existing = state
            .queues
            .iter()
            .position(|queue| queue.vm_id == vm_id && queue.name == name);
        let index = match existing {
            Some(index) => {
                if let Some(queue) = state.queues.get_mut(index) {
                    queue.owner = owner;
                }
                index
            }
            None => {
                state.queues.push(Queue {
                    vm_id,
                    name,
                    owner,
                    items: Default::default(),
                });
                state.queues.len() - 1
            }
        };
        index as u32 + 1
    });
    let Some(id) = id else {
        return Ok(Status::InternalFailure);
    };
    put_u32(memory, return_id, id)?;
    Ok(Status::Ok)
}

pub(crate) fn proxy_resolve_shared_queue(
    memory: &mut dyn Memory,
    vm_id_data: usize,
    vm_id_size: usize,
    name_data: usize,
    name_size: usize,
    return_id: usize,
) -> Answer {
    let vm_id = text(memory, vm_id_data, vm_id_size)?;
    let name = text(memory, name_data, name_size)?;
    let index = with_vm(|state, _| {
        state
            .queues
            .iter()
            .position(|queue| queue.vm_id == vm_id && queue.name == name)
    });
    match index.flatten() {
        Some(index) => {
            put_u32(memory, return_id, index as u32 + 1)?;
            Ok(Status::Ok)
        }
        None => Ok(Status::NotFound),
    }
}

fn queue(state: &mut State, id: u32) -> Option<&mut Queue> {
    state.queues.get_mut((id as usize).checked_sub(1)?)
}

pub(crate) fn proxy_dequeue_shared_queue(
    memory: &mut dyn Memory,
    queue_id: u32,
    return_data: usize,
    return_size: usize,
) -> Answer {
    let item = with_vm(|state, _| {
        let queue = queue(state, queue_id).ok_or(Status::NotFound)?;
        queue.items.pop_front().ok_or(Status::Empty)
    });
    match item.unwrap_or(Err(Status::NotFound)) {
        Ok(item) => {
            output(memory, &item, return_data, return_size)?;
            Ok(Status::Ok)
        }
        Err(status) => Ok(status),
    }
}

pub(crate) fn proxy_enqueue_shared_queue(
    memory: &mut dyn Memory,
    queue_id: u32,
    value_data: usize,
    value_size: usize,
) -> Answer {
    let value = input(memory, value_data, value_size)?;
    let status = with_vm(|state, _| {
        let Some(queue) = queue(state, queue_id) else {
            return Status::NotFound;
        };
        queue.items.push_back(value);
        let (owner_vm, owner_root) = queue.owner;
        state
            .queue_notifications
            .push_back((owner_vm, owner_root, queue_id));
        Status::Ok
    });
    Ok(status.unwrap_or(Status::NotFound))
}

pub(crate) fn proxy_continue_stream(_: &mut dyn Memory, stream_type: u32) -> Answer {
    let status = with_vm(|state, vm| {
        let during = state.callback(vm).unwrap_or(Callback::ContextCreate);
        let step = state.step;
        let direction = match stream_type {
            0 => Direction::Request,
            1 => Direction::Response,
            2 | 3 => {
                let side = if stream_type == 2 {
                    Side::Downstream
                } else {
                    Side::Upstream
                };
                if let Some(stream) = state.effective_stream(vm) {
                    stream
                        .connection_resumes
                        .push(ConnectionResume { side, during, step });
                    stream.side(side).release();
                }
                return Status::Ok;
            }
            _ => return Status::BadArgument,
        };
        if let Some(stream) = state.effective_stream(vm) {
            stream.resumes.push(Resume {
                direction,
                during,
                step,
            });
            // Envoy drops its hold on the request side whichever side resumes.
            stream.held[REQUEST_HEADERS] = false;
            stream.held[REQUEST_TRAILERS] = false;
            match direction {
                Direction::Request => stream.request_body.release(),
                Direction::Response => stream.response_body.release(),
            }
        }
        Status::Ok
    });
    Ok(status.unwrap_or(Status::BadArgument))
}

pub(crate) fn proxy_close_stream(_: &mut dyn Memory, stream_type: u32) -> Answer {
    let status = with_vm(|state, vm| {
        let direction = match stream_type {
            0 => Direction::Request,
            1 => Direction::Response,
            2 | 3 => {
                let side = if stream_type == 2 {
                    Side::Downstream
                } else {
                    Side::Upstream
                };
                if let Some(stream) = state.effective_stream(vm) {
                    if !stream.closed_by_plugin.contains(&side) {
                        stream.closed_by_plugin.push(side);
                    }
                }
                return Status::Ok;
            }
            _ => return Status::BadArgument,
        };
        if let Some(stream) = state.effective_stream(vm) {
            stream.reset.get_or_insert(direction);
        }
        Status::Ok
    });
    Ok(status.unwrap_or(Status::BadArgument))
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn proxy_send_local_response(
    memory: &mut dyn Memory,
    status_code: u32,
    details_data: usize,
    details_size: usize,
    body_data: usize,
    body_size: usize,
    headers_data: usize,
    headers_size: usize,
    grpc_status: i32,
) -> Answer {
    let details = text(memory, details_data, details_size)?;
    let body = input(memory, body_data, body_size)?;
    let Some(headers) = Headers::deserialize(&input(memory, headers_data, headers_size)?) else {
        return Ok(Status::BadArgument);
    };
    with_vm(|state, vm| {
        if let Some(stream) = state.effective_stream(vm) {
            if stream.local_response.is_none() {
                stream.local_response = Some(LocalResponse {
                    status: status_code,
                    headers,
                    body,
                    grpc_status: (grpc_status >= 0).then_some(grpc_status),
                    details,
                });
                stream.local_response_pending = true;
            }
        }
    });
    Ok(Status::Ok)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn proxy_http_call(
    memory: &mut dyn Memory,
    upstream_data: usize,
    upstream_size: usize,
    headers_data: usize,
    headers_size: usize,
    body_data: usize,
    body_size: usize,
    trailers_data: usize,
    trailers_size: usize,
    timeout: u32,
    return_token: usize,
) -> Answer {
    let cluster = text(memory, upstream_data, upstream_size)?;
    let headers = Headers::deserialize(&input(memory, headers_data, headers_size)?);
    let body = input(memory, body_data, body_size)?;
    let trailers = Headers::deserialize(&input(memory, trailers_data, trailers_size)?);
    let (Some(headers), Some(trailers)) = (headers, trailers) else {
        return Ok(Status::BadArgument);
    };
    let token = with_vm(|state, vm| {
        // Envoy reads the timeout as a signed 32-bit count of milliseconds.
        if timeout > i32::MAX as u32 || !state.clusters.contains(&cluster) {
            return Err(Status::BadArgument);
        }
        if [":method", ":path", ":authority"]
            .iter()
            .any(|name| !headers.contains(name))
        {
            return Err(Status::BadArgument);
        }
        let step = state.step;
        let vm_state = state.vm(vm).ok_or(Status::InternalFailure)?;
        let mut token = vm_state.next_token;
        loop {
            token = token.wrapping_add(1);
            if token != 0 && !vm_state.calls.contains_key(&token) {
                break;
            }
        }
        vm_state.next_token = token;
        let context = vm_state.effective;
        let on_behalf_of = vm_state.switched_from;
        vm_state.calls.insert(
            token,
            CallRecord {
                context,
                on_behalf_of,
                cluster,
                headers,
                body,
                trailers,
                timeout: (timeout > 0).then(|| Duration::from_millis(u64::from(timeout))),
                state: CallState::Pending,
                step,
            },
        );
        Ok(token)
    });
    answer_token(memory, token, return_token)
}

/// What a call that dispatches returns: its token written at `at`, or the status the
/// dispatch was refused with (`None`: no VM is running, InternalFailure).
fn answer_token(memory: &mut dyn Memory, token: Option<Result<u32, Status>>, at: usize) -> Answer {
    match token.unwrap_or(Err(Status::InternalFailure)) {
        Ok(token) => {
            put_u32(memory, at, token)?;
            Ok(Status::Ok)
        }
        Err(status) => Ok(status),
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn proxy_grpc_call(
    memory: &mut dyn Memory,
    upstream_data: usize,
    upstream_size: usize,
    service_name_data: usize,
    service_name_size: usize,
    method_name_data: usize,
    method_name_size: usize,
    initial_metadata_data: usize,
    initial_metadata_size: usize,
    message_data: usize,
    message_size: usize,
    timeout: u32,
    return_callout_id: usize,
) -> Answer {
    let service = input(memory, upstream_data, upstream_size)?;
    let service_name = input(memory, service_name_data, service_name_size)?;
    let method = input(memory, method_name_data, method_name_size)?;
    let metadata = input(memory, initial_metadata_data, initial_metadata_size)?;
    let message = input(memory, message_data, message_size)?;
    let token = with_vm(|state, vm| {
        crate::grpc::dispatch(
            state,
            vm,
            &service,
            &service_name,
            &method,
            &metadata,
            &message,
            timeout,
        )
    });
    answer_token(memory, token, return_callout_id)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn proxy_grpc_stream(
    memory: &mut dyn Memory,
    upstream_data: usize,
    upstream_size: usize,
    service_name_data: usize,
    service_name_size: usize,
    method_name_data: usize,
    method_name_size: usize,
    initial_metadata_data: usize,
    initial_metadata_size: usize,
    return_stream_id: usize,
) -> Answer {
    let service = input(memory, upstream_data, upstream_size)?;
    let service_name = input(memory, service_name_data, service_name_size)?;
    let method = input(memory, method_name_data, method_name_size)?;
    let metadata = input(memory, initial_metadata_data, initial_metadata_size)?;
    let token = with_vm(|state, vm| {
        crate::grpc::open_stream(state, vm, &service, &service_name, &method, &metadata)
    });
    answer_token(memory, token, return_stream_id)
}

pub(crate) fn proxy_grpc_send(
    memory: &mut dyn Memory,
    token: u32,
    message_data: usize,
    message_size: usize,
    end_stream: bool,
) -> Answer {
    let message = input(memory, message_data, message_size)?;
    Ok(
        with_vm(|state, vm| crate::grpc::send(state, vm, token, &message, end_stream))
            .unwrap_or(Status::NotFound),
    )
}

pub(crate) fn proxy_grpc_cancel(_: &mut dyn Memory, token: u32) -> Answer {
    Ok(with_vm(|state, vm| crate::grpc::cancel(state, vm, token)).unwrap_or(Status::NotFound))
}

pub(crate) fn proxy_grpc_close(_: &mut dyn Memory, token: u32) -> Answer {
    Ok(with_vm(|state, vm| crate::grpc::close(state, vm, token)).unwrap_or(Status::NotFound))
}

pub(crate) fn proxy_get_status(
    memory: &mut dyn Memory,
    return_code: usize,
    return_message_data: usize,
    return_message_size: usize,
) -> Answer {
    let (code, message) = with_vm(|state, vm| state.vm(vm).map(|vm| vm.status.clone()))
        .flatten()
        .unwrap_or_default();
    put_u32(memory, return_code, code)?;
    output(memory, &message, return_message_data, return_message_size)?;
    Ok(Status::Ok)
}

pub(crate) fn proxy_set_effective_context(_: &mut dyn Memory, context_id: u32) -> Answer {
    let status = with_vm(|state, vm| {
        let Some(vm) = state.vm(vm) else {
            return Status::BadArgument;
        };
        let is_root = |context: &crate::state::Context| {
            matches!(context.kind, crate::state::ContextKind::Root(_))
        };
        match vm.contexts.get(&context_id) {
            Some(context) if !context.deleted => {
                let to_root = is_root(context);
                let from_stream = vm
                    .contexts
                    .get(&vm.effective)
                    .is_some_and(|from| !is_root(from));
                vm.switched_from = match (to_root, from_stream) {
                    (true, true) => Some(vm.effective),
                    (true, false) => vm.switched_from,
                    (false, _) => None,
                };
                vm.effective = context_id;
                Status::Ok
            }
            _ => Status::BadArgument,
        }
    });
    Ok(status.unwrap_or(Status::BadArgument))
}

pub(crate) fn proxy_call_foreign_function(
    _: &mut dyn Memory,
    _function_name_data: usize,
    _function_name_size: usize,
    _arguments_data: usize,
    _arguments_size: usize,
    _results_data: usize,
    _results_size: usize,
) -> Answer {
    Ok(Status::NotFound)
}

pub(crate) fn proxy_done(_: &mut dyn Memory) -> Answer {
    Ok(Status::Ok)
}

pub(crate) fn proxy_define_metric(
    memory: &mut dyn Memory,
    metric_type: u32,
    name_data: usize,
    name_size: usize,
    return_id: usize,
) -> Answer {
    let name = text(memory, name_data, name_size)?;
    match with_vm(|state, vm| state.define_metric(vm, metric_type, name)).flatten() {
        Some(id) => {
            put_u32(memory, return_id, id)?;
            Ok(Status::Ok)
        }
        None => Ok(Status::BadArgument),
    }
}

fn id_type(metric_id: u32) -> Option<MetricType> {
    match metric_id & 3 {
        0 => Some(MetricType::Counter),
        1 => Some(MetricType::Gauge),
        2 => Some(MetricType::Histogram),
        _ => None,
    }
}

pub(crate) fn proxy_increment_metric(_: &mut dyn Memory, metric_id: u32, offset: i64) -> Answer {
    let status = with_vm(|state, vm| {
        if id_type(metric_id) == Some(MetricType::Histogram) || id_type(metric_id).is_none() {
            return Status::BadArgument;
        }
        match state.metric_mut(vm, metric_id) {
            Some(Metric::Counter(value)) if offset > 0 => {
                *value = value.wrapping_add(offset.unsigned_abs());
                Status::Ok
            }
            Some(Metric::Counter(_)) => Status::BadArgument,
            Some(Metric::Gauge(value)) => {
                *value = if offset > 0 {
                    value.wrapping_add(offset.unsigned_abs())
                } else {
                    value.wrapping_sub(offset.unsigned_abs())
                };
                Status::Ok
            }
            _ => Status::NotFound,
        }
    });
    Ok(status.unwrap_or(Status::NotFound))
}

pub(crate) fn proxy_record_metric(_: &mut dyn Memory, metric_id: u32, value: u64) -> Answer {
    let status = with_vm(|state, vm| match state.metric_mut(vm, metric_id) {
        Some(Metric::Counter(current)) => {
            *current = current.wrapping_add(value);
            Status::Ok
        }
        Some(Metric::Gauge(current)) => {
            *current = value;
            Status::Ok
        }
        Some(Metric::Histogram(values)) => {
            values.push(value);
            Status::Ok
        }
        None => Status::NotFound,
    });
    Ok(status.unwrap_or(Status::NotFound))
}

pub(crate) fn proxy_get_metric(
    memory: &mut dyn Memory,
    metric_id: u32,
    return_value: usize,
) -> Answer {
    let value = with_vm(|state, vm| {
        if !matches!(
            id_type(metric_id),
            Some(MetricType::Counter | MetricType::Gauge)
        ) {
            return Err(Status::BadArgument);
        }
        match state.metric_mut(vm, metric_id) {
            Some(Metric::Counter(value) | Metric::Gauge(value)) => Ok(*value),
            _ => Err(Status::NotFound),
        }
    });
    match value.unwrap_or(Err(Status::NotFound)) {
        Ok(value) => {
            put_u64(memory, return_value, value)?;
            Ok(Status::Ok)
        }
        Err(status) => Ok(status),
    }
}
