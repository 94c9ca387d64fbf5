//! The one seam between pwf and the host.
//!
//! Every call into Envoy goes through this module. Each host status becomes a
//! [`Result`]: nothing here panics, whatever the host answers. The SDK's own
//! `hostcalls` wrappers panic on statuses they do not expect and turn any
//! non-UTF-8 value into a panic, so pwf declares the ABI imports itself and only
//! borrows the SDK for the one call whose bookkeeping the SDK's dispatcher owns:
//! `dispatch_http_call`, which registers the call's token so that
//! `on_http_call_response` reaches the right context.
//!
//! Every call that applies to a context (headers, bodies, properties,
//! resuming, local responses) first makes the context the running code acts
//! for effective (`context::sync`); see the `context` module.

use std::fmt;
use std::ptr::{null, null_mut};

use proxy_wasm::types::{BufferType, MapType, MetricType};

use crate::error::{HostError, Status};
use crate::headers::HeaderValue;

mod abi {
    // The proxy-wasm 0.2.1 ABI, as Envoy exports it. Statuses are read as raw
    // `u32`s so that a status the SDK's enum does not list is data, not
    // undefined behaviour.
    #[link(wasm_import_module = "env")]
    extern "C" {
        pub(super) fn proxy_log(level: u32, data: *const u8, size: usize) -> u32;
        pub(super) fn proxy_get_log_level(level: *mut u32) -> u32;
        pub(super) fn proxy_get_current_time_nanoseconds(time: *mut u64) -> u32;
        pub(super) fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
        pub(super) fn proxy_get_buffer_bytes(
            buffer_type: u32,
            start: usize,
            max_size: usize,
            data: *mut *mut u8,
            size: *mut usize,
        ) -> u32;
        pub(super) fn proxy_set_buffer_bytes(
            buffer_type: u32,
            start: usize,
            size: usize,
            data: *const u8,
            data_size: usize,
        ) -> u32;
        pub(super) fn proxy_get_header_map_pairs(
            map_type: u32,
            data: *mut *mut u8,
            size: *mut usize,
        ) -> u32;
        pub(super) fn proxy_set_header_map_pairs(
            map_type: u32,
            data: *const u8,
            size: usize,
        ) -> u32;
        pub(super) fn proxy_get_header_map_value(
            map_type: u32,
            key: *const u8,
            key_size: usize,
            value: *mut *mut u8,
            value_size: *mut usize,
        ) -> u32;
        pub(super) fn proxy_replace_header_map_value(
            map_type: u32,
            key: *const u8,
            key_size: usize,
            value: *const u8,
            value_size: usize,
        ) -> u32;
        pub(super) fn proxy_remove_header_map_value(
            map_type: u32,
            key: *const u8,
            key_size: usize,
        ) -> u32;
        pub(super) fn proxy_add_header_map_value(
            map_type: u32,
            key: *const u8,
            key_size: usize,
            value: *const u8,
            value_size: usize,
        ) -> u32;
        pub(super) fn proxy_get_property(
            path: *const u8,
            path_size: usize,
            value: *mut *mut u8,
            value_size: *mut usize,
        ) -> u32;
        pub(super) fn proxy_set_property(
            path: *const u8,
            path_size: usize,
            value: *const u8,
            value_size: usize,
        ) -> u32;
        pub(super) fn proxy_get_shared_data(
            key: *const u8,
            key_size: usize,
            value: *mut *mut u8,
            value_size: *mut usize,
            cas: *mut u32,
        ) -> u32;
        pub(super) fn proxy_set_shared_data(
            key: *const u8,
            key_size: usize,
            value: *const u8,
            value_size: usize,
            cas: u32,
        ) -> u32;
        pub(super) fn proxy_register_shared_queue(
            name: *const u8,
            name_size: usize,
            id: *mut u32,
        ) -> u32;
        pub(super) fn proxy_resolve_shared_queue(
            vm_id: *const u8,
            vm_id_size: usize,
            name: *const u8,
            name_size: usize,
            id: *mut u32,
        ) -> u32;
        pub(super) fn proxy_dequeue_shared_queue(
            id: u32,
            data: *mut *mut u8,
            size: *mut usize,
        ) -> u32;
        pub(super) fn proxy_enqueue_shared_queue(id: u32, data: *const u8, size: usize) -> u32;
        pub(super) fn proxy_continue_stream(stream_type: u32) -> u32;
        pub(super) fn proxy_close_stream(stream_type: u32) -> u32;
        pub(super) fn proxy_send_local_response(
            status_code: u32,
            details: *const u8,
            details_size: usize,
            body: *const u8,
            body_size: usize,
            headers: *const u8,
            headers_size: usize,
            grpc_status: i32,
        ) -> u32;
        pub(super) fn proxy_define_metric(
            metric_type: u32,
            name: *const u8,
            name_size: usize,
            id: *mut u32,
        ) -> u32;
        pub(super) fn proxy_increment_metric(id: u32, offset: i64) -> u32;
        pub(super) fn proxy_record_metric(id: u32, value: u64) -> u32;
        pub(super) fn proxy_get_metric(id: u32, value: *mut u64) -> u32;
        pub(super) fn proxy_grpc_cancel(token: u32) -> u32;
        #[cfg(feature = "grpc-streams")]
        pub(super) fn proxy_grpc_send(token: u32, data: *const u8, size: usize, end: bool) -> u32;
        #[cfg(feature = "grpc-streams")]
        pub(super) fn proxy_grpc_close(token: u32) -> u32;
        pub(super) fn proxy_get_status(code: *mut u32, data: *mut *mut u8, size: *mut usize)
            -> u32;
    }
}

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;
const EMPTY: u32 = 7;
const CAS_MISMATCH: u32 = 8;

fn check(call: &'static str, status: u32) -> Result<(), HostError> {
    if status == OK {
        Ok(())
    } else {
        Err(failed(call, status))
    }
}

/// The error of `call` answering `status`: out of line, so that no host call
/// carries the decoding of statuses.
#[cold]
#[inline(never)]
fn failed(call: &'static str, status: u32) -> HostError {
    HostError::new(call, Status::from_raw(status))
}

/// Takes ownership of a buffer the host allocated through
/// `proxy_on_memory_allocate` (a boxed slice: length equals capacity).
///
/// # Safety
/// `data` must be null or a pointer the host returned with `size`, allocated
/// by this module's allocator and not yet owned by anyone else.
unsafe fn take(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        Vec::new()
    } else {
        // SAFETY: guaranteed by the caller, as documented above.
        unsafe { Vec::from_raw_parts(data, size, size) }
    }
}

/// The buffer a host call returned: `Some` on Ok, `None` on the status that
/// means "nothing there" (`absent`), an error naming `call` otherwise.
///
/// # Safety
/// As for [`take`]: on Ok, `data` is null or the host's allocation of `size` bytes.
unsafe fn returned(
    call: &'static str,
    status: u32,
    absent: u32,
    data: *mut u8,
    size: usize,
) -> Result<Option<Vec<u8>>, HostError> {
    match status {
        // SAFETY: guaranteed by the caller, as documented above.
        OK => Ok(Some(unsafe { take(data, size) })),
        status if status == absent => Ok(None),
        status => Err(failed(call, status)),
    }
}

/// A log level, as Envoy numbers them.
///
/// ```
/// use pwf::LogLevel;
///
/// // Levels are ordered, from the most verbose.
/// assert!(LogLevel::Trace < LogLevel::Debug);
/// assert!(LogLevel::Error > LogLevel::Warn);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// The most verbose level.
    Trace = 0,
    /// Debugging detail.
    Debug = 1,
    /// Normal operation.
    Info = 2,
    /// Something unexpected that the plugin handled.
    Warn = 3,
    /// Something failed.
    Error = 4,
    /// The plugin cannot go on.
    Critical = 5,
}

impl LogLevel {
    fn from_raw(raw: u32) -> LogLevel {
        match raw {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            _ => LogLevel::Critical,
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        })
    }
}

pub(crate) fn log(level: LogLevel, message: &str) -> Result<(), HostError> {
    // SAFETY: the pointer and length describe a live `str`.
    let status = unsafe { abi::proxy_log(level as u32, message.as_ptr(), message.len()) };
    check("log", status)
}

pub(crate) fn log_level() -> Result<LogLevel, HostError> {
    let mut level = 0;
    // SAFETY: `level` is a valid place for the host to write.
    let status = unsafe { abi::proxy_get_log_level(&mut level) };
    check("get_log_level", status).map(|()| LogLevel::from_raw(level))
}

pub(crate) fn current_time_nanos() -> Result<u64, HostError> {
    let mut time = 0;
    // SAFETY: `time` is a valid place for the host to write.
    let status = unsafe { abi::proxy_get_current_time_nanoseconds(&mut time) };
    check("get_current_time_nanoseconds", status).map(|()| time)
}

pub(crate) fn set_tick_period_millis(period: u32) -> Result<(), HostError> {
    // SAFETY: no pointers.
    check("set_tick_period_milliseconds", unsafe {
        abi::proxy_set_tick_period_milliseconds(period)
    })
}

pub(crate) fn get_buffer(
    buffer: BufferType,
    start: usize,
    max_size: usize,
) -> Result<Option<Vec<u8>>, HostError> {
    crate::context::sync()?;
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: `data` and `size` are valid places for the host to write.
    let status = unsafe {
        abi::proxy_get_buffer_bytes(buffer as u32, start, max_size, &mut data, &mut size)
    };
    match status {
        // SAFETY: the host allocated `data` with `size` bytes for us.
        OK if !data.is_null() => Ok(Some(unsafe { take(data, size) })),
        OK | NOT_FOUND => Ok(None),
        status => Err(failed("get_buffer_bytes", status)),
    }
}

pub(crate) fn set_buffer(
    buffer: BufferType,
    start: usize,
    size: usize,
    value: &[u8],
) -> Result<(), HostError> {
    crate::context::sync()?;
    // SAFETY: the pointer and length describe a live slice.
    let status = unsafe {
        abi::proxy_set_buffer_bytes(buffer as u32, start, size, value.as_ptr(), value.len())
    };
    check("set_buffer_bytes", status)
}

pub(crate) fn get_map(map: MapType) -> Result<Vec<(String, HeaderValue)>, HostError> {
    let bytes = get_map_raw(map)?;
    decode_map(&bytes).ok_or(HostError::new(
        "get_header_map_pairs",
        Status::SerializationFailure,
    ))
}

/// A header map in the host's serialized form, to be read with
/// [`find_in_map`] or [`decode_map`].
pub(crate) fn get_map_raw(map: MapType) -> Result<Vec<u8>, HostError> {
    crate::context::sync()?;
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: `data` and `size` are valid places for the host to write.
    let status = unsafe { abi::proxy_get_header_map_pairs(map as u32, &mut data, &mut size) };
    check("get_header_map_pairs", status)?;
    // SAFETY: the host allocated `data` with `size` bytes for us.
    Ok(unsafe { take(data, size) })
}

pub(crate) fn set_map<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    map: MapType,
    pairs: &[(K, V)],
) -> Result<(), HostError> {
    crate::context::sync()?;
    let bytes = encode_map(pairs);
    // SAFETY: the pointer and length describe a live buffer.
    let status =
        unsafe { abi::proxy_set_header_map_pairs(map as u32, bytes.as_ptr(), bytes.len()) };
    check("set_header_map_pairs", status)
}

pub(crate) fn get_map_value(map: MapType, key: &str) -> Result<Option<Vec<u8>>, HostError> {
    crate::context::sync()?;
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: the key is a live `str`; `data` and `size` are valid places to write.
    let status = unsafe {
        abi::proxy_get_header_map_value(map as u32, key.as_ptr(), key.len(), &mut data, &mut size)
    };
    // SAFETY: on Ok the host allocated `data` with `size` bytes for us.
    unsafe { returned("get_header_map_value", status, NOT_FOUND, data, size) }
}

pub(crate) fn replace_map_value(map: MapType, key: &str, value: &[u8]) -> Result<(), HostError> {
    crate::context::sync()?;
    // SAFETY: both pointers and lengths describe live slices.
    let status = unsafe {
        abi::proxy_replace_header_map_value(
            map as u32,
            key.as_ptr(),
            key.len(),
            value.as_ptr(),
            value.len(),
        )
    };
    check("replace_header_map_value", status)
}

pub(crate) fn add_map_value(map: MapType, key: &str, value: &[u8]) -> Result<(), HostError> {
    crate::context::sync()?;
    // SAFETY: both pointers and lengths describe live slices.
    let status = unsafe {
        abi::proxy_add_header_map_value(
            map as u32,
            key.as_ptr(),
            key.len(),
            value.as_ptr(),
            value.len(),
        )
    };
    check("add_header_map_value", status)
}

pub(crate) fn remove_map_value(map: MapType, key: &str) -> Result<(), HostError> {
    crate::context::sync()?;
    // SAFETY: the pointer and length describe a live `str`.
    let status = unsafe { abi::proxy_remove_header_map_value(map as u32, key.as_ptr(), key.len()) };
    check("remove_header_map_value", status)
}

fn encode_path(path: &[&str]) -> Vec<u8> {
    // Grown as it goes: a path is a few short segments, read once or twice per plugin.
    let mut bytes = Vec::new();
    for (i, part) in path.iter().enumerate() {
        if i > 0 {
            bytes.push(0);
        }
        bytes.extend_from_slice(part.as_bytes());
    }
    bytes
}

pub(crate) fn get_property(path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
    get_property_encoded(&encode_path(path))
}

/// [`get_property`] of a path already encoded (segments joined by NUL bytes).
pub(crate) fn get_property_encoded(path: &[u8]) -> Result<Option<Vec<u8>>, HostError> {
    crate::context::sync()?;
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: the path is a live buffer; `data` and `size` are valid places to write.
    let status =
        unsafe { abi::proxy_get_property(path.as_ptr(), path.len(), &mut data, &mut size) };
    // SAFETY: on Ok the host allocated `data` with `size` bytes for us.
    unsafe { returned("get_property", status, NOT_FOUND, data, size) }
}

pub(crate) fn set_property(path: &[&str], value: &[u8]) -> Result<(), HostError> {
    crate::context::sync()?;
    let path = encode_path(path);
    // SAFETY: both pointers and lengths describe live buffers.
    let status =
        unsafe { abi::proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len()) };
    check("set_property", status)
}

/// A shared-data entry: its bytes and the CAS token of its last write.
pub(crate) struct SharedEntry {
    pub(crate) value: Vec<u8>,
    pub(crate) cas: u32,
}

pub(crate) fn get_shared_data(key: &str) -> Result<Option<SharedEntry>, HostError> {
    let (mut data, mut size, mut cas) = (null_mut(), 0, 0);
    // SAFETY: the key is a live `str`; the out-pointers are valid places to write.
    let status = unsafe {
        abi::proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas)
    };
    match status {
        // SAFETY: the host allocated `data` with `size` bytes for us.
        OK => Ok(Some(SharedEntry {
            value: unsafe { take(data, size) },
            cas,
        })),
        NOT_FOUND => Ok(None),
        status => Err(failed("get_shared_data", status)),
    }
}

/// The outcome of a conditional shared-data write.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum CasWrite {
    Written,
    Mismatch,
}

pub(crate) fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<CasWrite, HostError> {
    // SAFETY: both pointers and lengths describe live buffers.
    let status = unsafe {
        abi::proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    };
    match status {
        OK => Ok(CasWrite::Written),
        CAS_MISMATCH => Ok(CasWrite::Mismatch),
        status => Err(failed("set_shared_data", status)),
    }
}

pub(crate) fn register_shared_queue(name: &str) -> Result<u32, HostError> {
    let mut id = 0;
    // SAFETY: the name is a live `str`; `id` is a valid place to write.
    let status = unsafe { abi::proxy_register_shared_queue(name.as_ptr(), name.len(), &mut id) };
    check("register_shared_queue", status).map(|()| id)
}

pub(crate) fn resolve_shared_queue(vm_id: &str, name: &str) -> Result<Option<u32>, HostError> {
    let mut id = 0;
    // SAFETY: both strings are live; `id` is a valid place to write.
    let status = unsafe {
        abi::proxy_resolve_shared_queue(
            vm_id.as_ptr(),
            vm_id.len(),
            name.as_ptr(),
            name.len(),
            &mut id,
        )
    };
    match status {
        OK => Ok(Some(id)),
        NOT_FOUND => Ok(None),
        status => Err(failed("resolve_shared_queue", status)),
    }
}

pub(crate) fn dequeue_shared_queue(id: u32) -> Result<Option<Vec<u8>>, HostError> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: `data` and `size` are valid places for the host to write.
    let status = unsafe { abi::proxy_dequeue_shared_queue(id, &mut data, &mut size) };
    // SAFETY: on Ok the host allocated `data` with `size` bytes for us.
    unsafe { returned("dequeue_shared_queue", status, EMPTY, data, size) }
}

pub(crate) fn enqueue_shared_queue(id: u32, value: &[u8]) -> Result<(), HostError> {
    // SAFETY: the pointer and length describe a live slice.
    let status = unsafe { abi::proxy_enqueue_shared_queue(id, value.as_ptr(), value.len()) };
    check("enqueue_shared_queue", status)
}

/// Which way of a stream a resume or a close applies to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum StreamKind {
    HttpRequest = 0,
    HttpResponse = 1,
    Downstream = 2,
    Upstream = 3,
}

pub(crate) fn continue_stream(kind: StreamKind) -> Result<(), HostError> {
    crate::context::sync()?;
    // SAFETY: no pointers.
    check("continue_stream", unsafe {
        abi::proxy_continue_stream(kind as u32)
    })
}

pub(crate) fn close_stream(kind: StreamKind) -> Result<(), HostError> {
    crate::context::sync()?;
    // SAFETY: no pointers.
    check("close_stream", unsafe {
        abi::proxy_close_stream(kind as u32)
    })
}

pub(crate) fn send_local_response<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    status: u32,
    headers: &[(K, V)],
    body: &[u8],
    grpc_status: i32,
) -> Result<(), HostError> {
    crate::context::sync()?;
    let headers = encode_map(headers);
    // SAFETY: every pointer and length describes a live buffer.
    let status = unsafe {
        abi::proxy_send_local_response(
            status,
            null(),
            0,
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            grpc_status,
        )
    };
    check("send_local_response", status)
}

pub(crate) fn define_metric(kind: MetricType, name: &str) -> Result<u32, HostError> {
    let mut id = 0;
    // SAFETY: the name is a live `str`; `id` is a valid place to write.
    let status =
        unsafe { abi::proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) };
    check("define_metric", status).map(|()| id)
}

pub(crate) fn increment_metric(id: u32, offset: i64) -> Result<(), HostError> {
    // SAFETY: no pointers.
    check("increment_metric", unsafe {
        abi::proxy_increment_metric(id, offset)
    })
}

pub(crate) fn record_metric(id: u32, value: u64) -> Result<(), HostError> {
    // SAFETY: no pointers.
    check("record_metric", unsafe {
        abi::proxy_record_metric(id, value)
    })
}

pub(crate) fn get_metric(id: u32) -> Result<u64, HostError> {
    let mut value = 0;
    // SAFETY: `value` is a valid place to write.
    let status = unsafe { abi::proxy_get_metric(id, &mut value) };
    check("get_metric", status).map(|()| value)
}

/// Sends an HTTP call through the SDK, whose dispatcher must learn the token
/// so that `on_http_call_response` is routed back to this context.
pub(crate) fn dispatch_http_call(
    cluster: &str,
    headers: Vec<(&str, &str)>,
    body: Option<&[u8]>,
    trailers: Vec<(&str, &str)>,
    timeout: std::time::Duration,
) -> Result<u32, HostError> {
    // The SDK wrapper returns Ok, BadArgument or InternalFailure, the only
    // statuses Envoy's `http_call` produces for valid memory.
    proxy_wasm::hostcalls::dispatch_http_call(cluster, headers, body, trailers, timeout)
        .map_err(|status| failed("dispatch_http_call", status as u32))
}

/// Sends a gRPC call through the SDK, whose dispatcher must learn the token so that
/// `on_grpc_call_response` is routed back to this context. `service` is a serialized
/// `GrpcService` (see the `grpc` module).
pub(crate) fn dispatch_grpc_call(
    service: &str,
    service_name: &str,
    method: &str,
    metadata: Vec<(&str, &[u8])>,
    message: &[u8],
    timeout: std::time::Duration,
) -> Result<u32, HostError> {
    // The SDK wrapper returns Ok, ParseFailure or InternalFailure, the statuses Envoy
    // 1.40's `grpc_call` gave for valid memory in every case measured (an unknown
    // cluster is InternalFailure).
    proxy_wasm::hostcalls::dispatch_grpc_call(
        service,
        service_name,
        method,
        metadata,
        Some(message),
        timeout,
    )
    .map_err(|status| failed("dispatch_grpc_call", status as u32))
}

#[cfg(feature = "grpc-streams")]
/// Opens a gRPC stream through the SDK, whose dispatcher must learn the token so that the
/// stream's callbacks are routed back to this context. `service` is a serialized
/// `GrpcService` (see the `grpc` module).
pub(crate) fn open_grpc_stream(
    service: &str,
    service_name: &str,
    method: &str,
    metadata: Vec<(&str, &[u8])>,
) -> Result<u32, HostError> {
    // The SDK wrapper returns Ok, ParseFailure or InternalFailure, as for calls (an
    // unknown cluster is InternalFailure, measured).
    proxy_wasm::hostcalls::open_grpc_stream(service, service_name, method, metadata)
        .map_err(|status| failed("open_grpc_stream", status as u32))
}

#[cfg(feature = "grpc-streams")]
/// Sends `message` on gRPC stream `token`.
pub(crate) fn grpc_send(token: u32, message: &[u8], end_stream: bool) -> Result<(), HostError> {
    // SAFETY: the pointer and length describe a live slice.
    let status =
        unsafe { abi::proxy_grpc_send(token, message.as_ptr(), message.len(), end_stream) };
    check("grpc_send", status)
}

#[cfg(feature = "grpc-streams")]
/// Half-closes gRPC stream `token` (measured: the service still answers and closes).
pub(crate) fn grpc_close(token: u32) -> Result<(), HostError> {
    // SAFETY: no pointers.
    check("grpc_close", unsafe { abi::proxy_grpc_close(token) })
}

/// Cancels gRPC call or stream `token`: Envoy resets it upstream, and calls back no more.
pub(crate) fn grpc_cancel(token: u32) -> Result<(), HostError> {
    // SAFETY: no pointers.
    check("grpc_cancel", unsafe { abi::proxy_grpc_cancel(token) })
}

/// The status of the gRPC call or stream being called back for: its code and Envoy's
/// message (the service's `grpc-message`, then `{details}`).
pub(crate) fn grpc_status() -> Result<(u32, Vec<u8>), HostError> {
    let (mut code, mut data, mut size) = (0, null_mut(), 0);
    // SAFETY: the three are valid places for the host to write.
    let status = unsafe { abi::proxy_get_status(&mut code, &mut data, &mut size) };
    check("get_status", status)?;
    // SAFETY: on Ok, the host allocated `data` with `size` bytes for us (or left it null).
    Ok((code, unsafe { take(data, size) }))
}

/// Serializes header pairs in the proxy-wasm map format.
pub(crate) fn encode_map<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(k, v)| 8 + k.as_ref().len() + v.as_ref().len() + 2)
        .sum::<usize>();
    // Written in place: the size is exact, so nothing grows.
    let mut bytes = vec![0; size];
    let mut at = 0;
    let mut put = |data: &[u8], terminated: bool| {
        if let Some(to) = bytes.get_mut(at..at + data.len()) {
            to.copy_from_slice(data);
        }
        // The NUL after a key or a value is already there.
        at += data.len() + usize::from(terminated);
    };
    put(&(pairs.len() as u32).to_le_bytes(), false);
    for (k, v) in pairs {
        put(&(k.as_ref().len() as u32).to_le_bytes(), false);
        put(&(v.as_ref().len() as u32).to_le_bytes(), false);
    }
    for (k, v) in pairs {
        put(k.as_ref(), true);
        put(v.as_ref(), true);
    }
    bytes
}

/// The name-value entries of a map in the proxy-wasm serialized format, in
/// order, read in place. An entry is `None` where the bytes are malformed
/// (and nothing follows it).
struct MapEntries<'a> {
    bytes: &'a [u8],
    count: usize,
    next: usize,
    data: usize,
}

impl<'a> MapEntries<'a> {
    fn new(bytes: &'a [u8]) -> MapEntries<'a> {
        let count = read_u32(bytes, 0).unwrap_or(0);
        let data = count.saturating_mul(8).saturating_add(4);
        MapEntries {
            bytes,
            count,
            next: 0,
            data,
        }
    }

    fn entry(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        let key_len = read_u32(self.bytes, 4 + self.next * 8)?;
        let value_len = read_u32(self.bytes, 8 + self.next * 8)?;
        let key = self.bytes.get(self.data..self.data.checked_add(key_len)?)?;
        self.data = self.data.checked_add(key_len + 1)?;
        let value = self
            .bytes
            .get(self.data..self.data.checked_add(value_len)?)?;
        self.data = self.data.checked_add(value_len + 1)?;
        Some((key, value))
    }
}

impl<'a> Iterator for MapEntries<'a> {
    type Item = Option<(&'a [u8], &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.count {
            return None;
        }
        let entry = self.entry();
        self.next = if entry.is_some() {
            self.next + 1
        } else {
            self.count
        };
        Some(entry)
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let raw = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize)
}

/// The first value of `key` (compared case-insensitively) in a serialized
/// map, read in place; `None` if absent or if the bytes are malformed.
pub(crate) fn find_in_map<'a>(bytes: &'a [u8], key: &str) -> Option<&'a [u8]> {
    for entry in MapEntries::new(bytes) {
        let (name, value) = entry?;
        if name.eq_ignore_ascii_case(key.as_bytes()) {
            return Some(value);
        }
    }
    None
}

/// Parses the proxy-wasm map format; `None` if the bytes are malformed.
///
/// Names that are not UTF-8 are decoded lossily; values stay bytes.
pub(crate) fn decode_map(bytes: &[u8]) -> Option<Vec<(String, HeaderValue)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    read_u32(bytes, 0)?;
    let entries = MapEntries::new(bytes);
    if entries.data > bytes.len() {
        return None;
    }
    // `count` entries fit in the bytes: `data` (past the sizes) is in bounds.
    let mut pairs = Vec::with_capacity(entries.count);
    for entry in entries {
        let (name, value) = entry?;
        // Envoy's names are ASCII, which is cheaper to check than UTF-8;
        // any other name is decoded as before (text if UTF-8).
        let name = match crate::headers::ascii_str(name) {
            Some(name) => name.to_owned(),
            None => crate::shown::lossy(name),
        };
        pairs.push((name, HeaderValue::from(value)));
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_map_round_trips_encode_map() {
        let pairs: &[(&str, &[u8])] = &[(":status", b"200"), ("x-bin", &[0xff, 0x00, 0x41])];
        let decoded = decode_map(&encode_map(pairs)).unwrap();
        assert_eq!(decoded[0], (":status".to_owned(), HeaderValue::from("200")));
        assert_eq!(
            decoded[1],
            (
                "x-bin".to_owned(),
                HeaderValue::from(vec![0xff, 0x00, 0x41])
            )
        );
    }

    #[test]
    fn decode_map_rejects_truncated_bytes_without_panicking() {
        let bytes = encode_map(&[("key", b"value")]);
        for end in 1..bytes.len() - 1 {
            assert!(decode_map(&bytes[..end]).is_none(), "prefix of {end} bytes");
        }
        assert!(decode_map(&[0xff, 0xff, 0xff, 0xff]).is_none());
    }

    #[test]
    fn find_in_map_reads_values_in_place() {
        let pairs: &[(&str, &[u8])] = &[(":status", b"200"), ("X-Id", b"7"), ("x-id", b"8")];
        let bytes = encode_map(pairs);
        assert_eq!(find_in_map(&bytes, ":status"), Some(&b"200"[..]));
        assert_eq!(
            find_in_map(&bytes, "x-id"),
            Some(&b"7"[..]),
            "the first one"
        );
        assert_eq!(find_in_map(&bytes, "missing"), None);
        assert_eq!(find_in_map(&bytes[..5], ":status"), None, "truncated");
    }

    #[test]
    fn encode_path_joins_with_nul() {
        assert_eq!(encode_path(&["request", "path"]), b"request\0path");
        assert_eq!(encode_path(&[]), b"");
    }
}
