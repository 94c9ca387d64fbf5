//! The proxy-wasm host calls (`proxy_*` imports of the SDK), defined natively.
//!
//! Each one finds the VM of the calling thread and answers with Envoy's semantics. None of
//! them panics: a panic here would cross an `extern "C"` boundary.

#![allow(clippy::missing_safety_doc)]

use std::ptr::null_mut;
use std::slice;
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

/// Reads guest memory handed to a host call.
///
/// # Safety
/// `data` must be null or point to `size` readable bytes.
unsafe fn input<'a>(data: *const u8, size: usize) -> &'a [u8] {
    if data.is_null() || size == 0 {
        &[]
    } else {
        // SAFETY: the caller passes a valid buffer of `size` bytes.
        unsafe { slice::from_raw_parts(data, size) }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Hands bytes to the plugin: a buffer from the Rust allocator with len == capacity (the
/// SDK rebuilds it with `Vec::from_raw_parts(p, n, n)`), or null for nothing, as Envoy
/// does for empty values.
///
/// # Safety
/// `data` and `size` must be null or valid for writes.
unsafe fn output(bytes: &[u8], data: *mut *mut u8, size: *mut usize) {
    if data.is_null() || size.is_null() {
        return;
    }
    let (pointer, length) = if bytes.is_empty() {
        (null_mut(), 0)
    } else {
        let boxed: Box<[u8]> = bytes.into();
        let length = boxed.len();
        (Box::into_raw(boxed) as *mut u8, length)
    };
    // SAFETY: the caller passes valid out-pointers.
    unsafe {
        *data = pointer;
        *size = length;
    }
}

/// # Safety
/// `out` must be null or valid for writes.
unsafe fn write<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: checked non-null; the caller passes a valid out-pointer.
        unsafe { *out = value };
    }
}

/// Runs `f` with the calling thread's VM, or answers `fallback` on a thread without one.
fn with_vm(fallback: Status, f: impl FnOnce(&mut State, usize) -> Status) -> Status {
    match current() {
        Some((shared, vm)) => f(&mut shared.lock(), vm),
        None => fallback,
    }
}

#[no_mangle]
unsafe extern "C" fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> Status {
    // SAFETY: the SDK passes a valid buffer.
    let message = text(unsafe { input(message_data, message_size) });
    match current() {
        Some((shared, vm)) => shared.lock().log(vm, level, message),
        None => eprintln!("{message}"),
    }
    Status::Ok
}

#[no_mangle]
unsafe extern "C" fn proxy_get_log_level(return_level: *mut u32) -> Status {
    let level = current().map_or(0, |(shared, _)| shared.lock().log_level as u32);
    // SAFETY: the SDK passes a valid out-pointer.
    unsafe { write(return_level, level) };
    Status::Ok
}

#[no_mangle]
unsafe extern "C" fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> Status {
    let now = current().map_or(UNIX_EPOCH, |(shared, _)| shared.lock().now);
    let nanos = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos();
    // SAFETY: the SDK passes a valid out-pointer.
    unsafe { write(return_time, u64::try_from(nanos).unwrap_or(u64::MAX)) };
    Status::Ok
}

#[no_mangle]
extern "C" fn proxy_set_tick_period_milliseconds(period: u32) -> Status {
    with_vm(Status::Ok, |state, vm| {
        let root = state.effective_root_id(vm);
        if let Some(root) = state.root(vm, root) {
            root.tick_period_ms = period;
        }
        Status::Ok
    })
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

#[no_mangle]
unsafe extern "C" fn proxy_get_buffer_bytes(
    buffer_type: u32,
    start: usize,
    max_size: usize,
    return_buffer_data: *mut *mut u8,
    return_buffer_size: *mut usize,
) -> Status {
    with_vm(Status::NotFound, |state, vm| {
        let Some(bytes) = buffer(state, vm, buffer_type) else {
            return Status::NotFound;
        };
        let begin = start.min(bytes.len());
        let end = start.saturating_add(max_size).min(bytes.len());
        let part = bytes.get(begin..end).unwrap_or_default();
        // SAFETY: the SDK passes valid out-pointers.
        unsafe { output(part, return_buffer_data, return_buffer_size) };
        Status::Ok
    })
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

#[no_mangle]
unsafe extern "C" fn proxy_set_buffer_bytes(
    buffer_type: u32,
    start: usize,
    size: usize,
    buffer_data: *const u8,
    buffer_size: usize,
) -> Status {
    // SAFETY: the SDK passes a valid buffer.
    let data = unsafe { input(buffer_data, buffer_size) };
    with_vm(Status::BadArgument, |state, vm| {
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
            Some(current) => splice(current, start, size, data),
            None => Status::BadArgument,
        }
    })
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

#[no_mangle]
unsafe extern "C" fn proxy_get_header_map_pairs(
    map_type: u32,
    return_map_data: *mut *mut u8,
    return_map_size: *mut usize,
) -> Status {
    with_vm(Status::Ok, |state, vm| {
        let bytes = match readable_map(state, vm, map_type) {
            Some(map) if !map.is_empty() => map.serialize(),
            _ => Vec::new(),
        };
        // SAFETY: the SDK passes valid out-pointers.
        unsafe { output(&bytes, return_map_data, return_map_size) };
        Status::Ok
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_set_header_map_pairs(
    map_type: u32,
    map_data: *const u8,
    map_size: usize,
) -> Status {
    // SAFETY: the SDK passes a valid buffer.
    let Some(pairs) = Headers::deserialize(unsafe { input(map_data, map_size) }) else {
        return Status::BadArgument;
    };
    with_vm(Status::BadArgument, |state, vm| {
        match writable_map(state, vm, map_type) {
            Some(map) => {
                *map = pairs;
                Status::Ok
            }
            None => Status::BadArgument,
        }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_get_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
    return_value_data: *mut *mut u8,
    return_value_size: *mut usize,
) -> Status {
    // SAFETY: the SDK passes a valid buffer.
    let key = text(unsafe { input(key_data, key_size) });
    with_vm(Status::BadArgument, |state, vm| {
        let Some(map) = readable_map(state, vm, map_type) else {
            return Status::BadArgument;
        };
        match map.get_bytes(&key) {
            Some(value) => {
                // SAFETY: the SDK passes valid out-pointers.
                unsafe { output(value, return_value_data, return_value_size) };
                Status::Ok
            }
            None => Status::NotFound,
        }
    })
}

fn change_map(map_type: u32, change: impl FnOnce(&mut Headers)) -> Status {
    with_vm(Status::BadArgument, |state, vm| {
        match writable_map(state, vm, map_type) {
            Some(map) => {
                change(map);
                Status::Ok
            }
            None => Status::BadArgument,
        }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_remove_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
) -> Status {
    // SAFETY: the SDK passes a valid buffer.
    let key = text(unsafe { input(key_data, key_size) });
    change_map(map_type, |map| map.remove(&key))
}

#[no_mangle]
unsafe extern "C" fn proxy_replace_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
    value_data: *const u8,
    value_size: usize,
) -> Status {
    // SAFETY: the SDK passes valid buffers.
    let (key, value) = unsafe {
        (
            text(input(key_data, key_size)),
            input(value_data, value_size),
        )
    };
    change_map(map_type, |map| map.set(&key, value))
}

#[no_mangle]
unsafe extern "C" fn proxy_add_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
    value_data: *const u8,
    value_size: usize,
) -> Status {
    // SAFETY: the SDK passes valid buffers.
    let (key, value) = unsafe {
        (
            text(input(key_data, key_size)),
            input(value_data, value_size),
        )
    };
    change_map(map_type, |map| map.append(&key, value))
}

#[no_mangle]
unsafe extern "C" fn proxy_get_property(
    path_data: *const u8,
    path_size: usize,
    return_value_data: *mut *mut u8,
    return_value_size: *mut usize,
) -> Status {
    // SAFETY: the SDK passes a valid buffer.
    let path = unsafe { input(path_data, path_size) }.to_vec();
    with_vm(Status::NotFound, |state, vm| {
        let from_stream = state
            .effective_stream(vm)
            .and_then(|stream| stream.properties.get(&path).cloned());
        let value = from_stream
            .or_else(|| state.properties.get(&path).cloned())
            .or_else(|| match path.as_slice() {
                b"plugin_name" => Some(state.plugin_name.clone().into_bytes()),
                b"plugin_root_id" => Some(state.root_id.clone().into_bytes()),
                b"plugin_vm_id" => Some(state.vm_id.clone().into_bytes()),
                _ => None,
            });
        match value {
            Some(value) => {
                // SAFETY: the SDK passes valid out-pointers.
                unsafe { output(&value, return_value_data, return_value_size) };
                Status::Ok
            }
            None => Status::NotFound,
        }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_set_property(
    path_data: *const u8,
    path_size: usize,
    value_data: *const u8,
    value_size: usize,
) -> Status {
    // SAFETY: the SDK passes valid buffers.
    let (path, value) = unsafe { (input(path_data, path_size), input(value_data, value_size)) };
    with_vm(Status::NotFound, |state, vm| {
        // Envoy keeps these in the stream's filter state: a root context has none.
        match state.effective_stream(vm) {
            Some(stream) => {
                stream.properties.insert(path.to_vec(), value.to_vec());
                Status::Ok
            }
            None => Status::NotFound,
        }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_get_shared_data(
    key_data: *const u8,
    key_size: usize,
    return_value_data: *mut *mut u8,
    return_value_size: *mut usize,
    return_cas: *mut u32,
) -> Status {
    // SAFETY: the SDK passes a valid buffer.
    let key = text(unsafe { input(key_data, key_size) });
    with_vm(Status::NotFound, |state, _| {
        match state.get_shared_data(&key) {
            Some((value, cas)) => {
                // SAFETY: the SDK passes valid out-pointers.
                unsafe {
                    output(&value, return_value_data, return_value_size);
                    write(return_cas, cas);
                }
                Status::Ok
            }
            None => Status::NotFound,
        }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_set_shared_data(
    key_data: *const u8,
    key_size: usize,
    value_data: *const u8,
    value_size: usize,
    cas: u32,
) -> Status {
    // SAFETY: the SDK passes valid buffers.
    let (key, value) = unsafe {
        (
            text(input(key_data, key_size)),
            input(value_data, value_size),
        )
    };
    let Some((shared, vm)) = current() else {
        return Status::InternalFailure;
    };
    run_set_hook(&shared, vm, &key);
    let status = shared.lock().set_shared_data(&key, value.to_vec(), cas);
    status
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

#[no_mangle]
unsafe extern "C" fn proxy_register_shared_queue(
    name_data: *const u8,
    name_size: usize,
    return_id: *mut u32,
) -> Status {
    // SAFETY: the SDK passes a valid buffer.
    let name = text(unsafe { input(name_data, name_size) });
    with_vm(Status::InternalFailure, |state, vm| {
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
        // SAFETY: the SDK passes a valid out-pointer.
        unsafe { write(return_id, index as u32 + 1) };
        Status::Ok
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_resolve_shared_queue(
    vm_id_data: *const u8,
    vm_id_size: usize,
    name_data: *const u8,
    name_size: usize,
    return_id: *mut u32,
) -> Status {
    // SAFETY: the SDK passes valid buffers.
    let (vm_id, name) = unsafe {
        (
            text(input(vm_id_data, vm_id_size)),
            text(input(name_data, name_size)),
        )
    };
    with_vm(Status::NotFound, |state, _| {
        match state
            .queues
            .iter()
            .position(|queue| queue.vm_id == vm_id && queue.name == name)
        {
            Some(index) => {
                // SAFETY: the SDK passes a valid out-pointer.
                unsafe { write(return_id, index as u32 + 1) };
                Status::Ok
            }
            None => Status::NotFound,
        }
    })
}

fn queue(state: &mut State, id: u32) -> Option<&mut Queue> {
    state.queues.get_mut((id as usize).checked_sub(1)?)
}

#[no_mangle]
unsafe extern "C" fn proxy_dequeue_shared_queue(
    queue_id: u32,
    return_value_data: *mut *mut u8,
    return_value_size: *mut usize,
) -> Status {
    with_vm(Status::NotFound, |state, _| {
        let Some(queue) = queue(state, queue_id) else {
            return Status::NotFound;
        };
        match queue.items.pop_front() {
            Some(item) => {
                // SAFETY: the SDK passes valid out-pointers.
                unsafe { output(&item, return_value_data, return_value_size) };
                Status::Ok
            }
            None => Status::Empty,
        }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_enqueue_shared_queue(
    queue_id: u32,
    value_data: *const u8,
    value_size: usize,
) -> Status {
    // SAFETY: the SDK passes a valid buffer.
    let value = unsafe { input(value_data, value_size) }.to_vec();
    with_vm(Status::NotFound, |state, _| {
        let Some(queue) = queue(state, queue_id) else {
            return Status::NotFound;
        };
        queue.items.push_back(value);
        let (owner_vm, owner_root) = queue.owner;
        state
            .queue_notifications
            .push_back((owner_vm, owner_root, queue_id));
        Status::Ok
    })
}

#[no_mangle]
extern "C" fn proxy_continue_stream(stream_type: u32) -> Status {
    with_vm(Status::BadArgument, |state, vm| {
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
    })
}

#[no_mangle]
extern "C" fn proxy_close_stream(stream_type: u32) -> Status {
    with_vm(Status::BadArgument, |state, vm| {
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
    })
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn proxy_send_local_response(
    status_code: u32,
    status_code_details_data: *const u8,
    status_code_details_size: usize,
    body_data: *const u8,
    body_size: usize,
    headers_data: *const u8,
    headers_size: usize,
    grpc_status: i32,
) -> Status {
    // SAFETY: the SDK passes valid buffers.
    let (details, body, headers) = unsafe {
        (
            text(input(status_code_details_data, status_code_details_size)),
            input(body_data, body_size).to_vec(),
            Headers::deserialize(input(headers_data, headers_size)),
        )
    };
    let Some(headers) = headers else {
        return Status::BadArgument;
    };
    with_vm(Status::Ok, |state, vm| {
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
        Status::Ok
    })
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn proxy_http_call(
    upstream_data: *const u8,
    upstream_size: usize,
    headers_data: *const u8,
    headers_size: usize,
    body_data: *const u8,
    body_size: usize,
    trailers_data: *const u8,
    trailers_size: usize,
    timeout: u32,
    return_token: *mut u32,
) -> Status {
    // SAFETY: the SDK passes valid buffers.
    let (cluster, headers, body, trailers) = unsafe {
        (
            text(input(upstream_data, upstream_size)),
            Headers::deserialize(input(headers_data, headers_size)),
            input(body_data, body_size).to_vec(),
            Headers::deserialize(input(trailers_data, trailers_size)),
        )
    };
    let (Some(headers), Some(trailers)) = (headers, trailers) else {
        return Status::BadArgument;
    };
    with_vm(Status::InternalFailure, |state, vm| {
        if timeout > i32::MAX as u32 || !state.clusters.contains(&cluster) {
            return Status::BadArgument;
        }
        if [":method", ":path", ":authority"]
            .iter()
            .any(|name| !headers.contains(name))
        {
            return Status::BadArgument;
        }
        let step = state.step;
        let Some(vm_state) = state.vm(vm) else {
            return Status::InternalFailure;
        };
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
        // SAFETY: the SDK passes a valid out-pointer.
        unsafe { write(return_token, token) };
        Status::Ok
    })
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn proxy_grpc_call(
    upstream_data: *const u8,
    upstream_size: usize,
    service_name_data: *const u8,
    service_name_size: usize,
    method_name_data: *const u8,
    method_name_size: usize,
    initial_metadata_data: *const u8,
    initial_metadata_size: usize,
    message_data_data: *const u8,
    message_data_size: usize,
    timeout: u32,
    return_callout_id: *mut u32,
) -> Status {
    // SAFETY: the SDK passes valid buffers.
    let (service, service_name, method, metadata, message) = unsafe {
        (
            input(upstream_data, upstream_size),
            input(service_name_data, service_name_size),
            input(method_name_data, method_name_size),
            input(initial_metadata_data, initial_metadata_size),
            input(message_data_data, message_data_size),
        )
    };
    with_vm(Status::InternalFailure, |state, vm| {
        match crate::grpc::dispatch(
            state,
            vm,
            service,
            service_name,
            method,
            metadata,
            message,
            timeout,
        ) {
            Ok(token) => {
                // SAFETY: the SDK passes a valid out-pointer.
                unsafe { write(return_callout_id, token) };
                Status::Ok
            }
            Err(status) => status,
        }
    })
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn proxy_grpc_stream(
    upstream_data: *const u8,
    upstream_size: usize,
    service_name_data: *const u8,
    service_name_size: usize,
    method_name_data: *const u8,
    method_name_size: usize,
    initial_metadata_data: *const u8,
    initial_metadata_size: usize,
    return_stream_id: *mut u32,
) -> Status {
    // SAFETY: the SDK passes valid buffers.
    let (service, service_name, method, metadata) = unsafe {
        (
            input(upstream_data, upstream_size),
            input(service_name_data, service_name_size),
            input(method_name_data, method_name_size),
            input(initial_metadata_data, initial_metadata_size),
        )
    };
    with_vm(Status::InternalFailure, |state, vm| {
        match crate::grpc::open_stream(state, vm, service, service_name, method, metadata) {
            Ok(token) => {
                // SAFETY: the SDK passes a valid out-pointer.
                unsafe { write(return_stream_id, token) };
                Status::Ok
            }
            Err(status) => status,
        }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_grpc_send(
    token: u32,
    message_ptr: *const u8,
    message_len: usize,
    end_stream: bool,
) -> Status {
    // SAFETY: the SDK passes a valid buffer.
    let message = unsafe { input(message_ptr, message_len) };
    with_vm(Status::NotFound, |state, vm| {
        crate::grpc::send(state, vm, token, message, end_stream)
    })
}

#[no_mangle]
extern "C" fn proxy_grpc_cancel(token_id: u32) -> Status {
    with_vm(Status::NotFound, |state, vm| {
        crate::grpc::cancel(state, vm, token_id)
    })
}

#[no_mangle]
extern "C" fn proxy_grpc_close(token_id: u32) -> Status {
    with_vm(Status::NotFound, |state, vm| {
        crate::grpc::close(state, vm, token_id)
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_get_status(
    return_code: *mut u32,
    return_message_data: *mut *mut u8,
    return_message_size: *mut usize,
) -> Status {
    let (code, message) = current()
        .and_then(|(shared, vm)| shared.lock().vm(vm).map(|vm| vm.status.clone()))
        .unwrap_or_default();
    // SAFETY: the SDK passes valid out-pointers.
    unsafe {
        write(return_code, code);
        output(&message, return_message_data, return_message_size);
    }
    Status::Ok
}

#[no_mangle]
extern "C" fn proxy_set_effective_context(context_id: u32) -> Status {
    with_vm(Status::BadArgument, |state, vm| {
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
    })
}

#[no_mangle]
extern "C" fn proxy_call_foreign_function(
    _function_name_data: *const u8,
    _function_name_size: usize,
    _arguments_data: *const u8,
    _arguments_size: usize,
    _results_data: *mut *mut u8,
    _results_size: *mut usize,
) -> Status {
    Status::NotFound
}

#[no_mangle]
extern "C" fn proxy_done() -> Status {
    Status::Ok
}

#[no_mangle]
unsafe extern "C" fn proxy_define_metric(
    metric_type: u32,
    name_data: *const u8,
    name_size: usize,
    return_id: *mut u32,
) -> Status {
    // SAFETY: the SDK passes a valid buffer.
    let name = text(unsafe { input(name_data, name_size) });
    with_vm(Status::BadArgument, |state, vm| {
        match state.define_metric(vm, metric_type, name) {
            Some(id) => {
                // SAFETY: the SDK passes a valid out-pointer.
                unsafe { write(return_id, id) };
                Status::Ok
            }
            None => Status::BadArgument,
        }
    })
}

fn id_type(metric_id: u32) -> Option<MetricType> {
    match metric_id & 3 {
        0 => Some(MetricType::Counter),
        1 => Some(MetricType::Gauge),
        2 => Some(MetricType::Histogram),
        _ => None,
    }
}

#[no_mangle]
extern "C" fn proxy_increment_metric(metric_id: u32, offset: i64) -> Status {
    with_vm(Status::NotFound, |state, vm| {
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
    })
}

#[no_mangle]
extern "C" fn proxy_record_metric(metric_id: u32, value: u64) -> Status {
    with_vm(Status::NotFound, |state, vm| {
        match state.metric_mut(vm, metric_id) {
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
        }
    })
}

#[no_mangle]
unsafe extern "C" fn proxy_get_metric(metric_id: u32, return_value: *mut u64) -> Status {
    with_vm(Status::NotFound, |state, vm| {
        if !matches!(
            id_type(metric_id),
            Some(MetricType::Counter | MetricType::Gauge)
        ) {
            return Status::BadArgument;
        }
        match state.metric_mut(vm, metric_id) {
            Some(Metric::Counter(value) | Metric::Gauge(value)) => {
                // SAFETY: the SDK passes a valid out-pointer.
                unsafe { write(return_value, *value) };
                Status::Ok
            }
            _ => Status::NotFound,
        }
    })
}
