//! A plugin on the bare proxy-wasm ABI (no SDK, no pwf) that measures how Envoy carries gRPC
//! calls and streams. It declares the host imports and callback exports itself, so every
//! status Envoy returns and every callback Envoy makes is seen as is (the SDK panics on a
//! status it does not expect, and drops callbacks it did not register).
//!
//! Per request, request headers say what to do:
//!
//! - `x-service`: the `service` bytes. `name:<text>` sends `<text>` as is (a cluster name);
//!   `proto:<cluster>[,<authority>]` sends a serialized `envoy.config.core.v3.GrpcService`
//!   with `envoy_grpc { cluster_name, authority }`.
//! - `x-method`: `<package.Service>/<Method>`.
//! - `x-timeout`: the timeout argument, in ms (calls only).
//! - `x-md`: initial metadata, `k=v,k=v`.
//! - `x-msg`: the message (text); absent means no message.
//! - `x-mode`: `call` (default): a unary call, answered when it lands. `stream`: opens a
//!   stream, sends `x-msg` (with end of stream when `x-end: 1`), answers when it closes.
//!   `stream-close`: as `stream`, and closes the stream after the first message arrives.
//!   `stream-cancel`: as `stream`, and cancels it after the first message arrives.
//!   `call-cancel`: a unary call cancelled at once; answers at once.
//!   `none`: no call: passes.
//! - `x-root: 1`: send the call on behalf of the root context.
//!
//! Every status and callback is logged (`grpc-probe ctx=<id>: <event>`) and the request is
//! answered with a local 200 whose body is the events, one a line.

#![allow(unsafe_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::ptr::null_mut;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, data: *const u8, size: usize) -> u32;
    fn proxy_get_header_map_value(
        map: u32,
        key: *const u8,
        key_size: usize,
        out: *mut *mut u8,
        out_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(map: u32, out: *mut *mut u8, out_size: *mut usize) -> u32;
    fn proxy_get_buffer_bytes(
        buffer: u32,
        start: usize,
        max: usize,
        out: *mut *mut u8,
        out_size: *mut usize,
    ) -> u32;
    fn proxy_get_status(code: *mut u32, out: *mut *mut u8, out_size: *mut usize) -> u32;
    fn proxy_grpc_call(
        service: *const u8,
        service_size: usize,
        service_name: *const u8,
        service_name_size: usize,
        method: *const u8,
        method_size: usize,
        metadata: *const u8,
        metadata_size: usize,
        message: *const u8,
        message_size: usize,
        timeout_ms: u32,
        token: *mut u32,
    ) -> u32;
    fn proxy_grpc_stream(
        service: *const u8,
        service_size: usize,
        service_name: *const u8,
        service_name_size: usize,
        method: *const u8,
        method_size: usize,
        metadata: *const u8,
        metadata_size: usize,
        token: *mut u32,
    ) -> u32;
    fn proxy_grpc_send(token: u32, message: *const u8, size: usize, end_stream: u32) -> u32;
    fn proxy_grpc_cancel(token: u32) -> u32;
    fn proxy_grpc_close(token: u32) -> u32;
    fn proxy_send_local_response(
        status: u32,
        details: *const u8,
        details_size: usize,
        body: *const u8,
        body_size: usize,
        headers: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_set_effective_context(context: u32) -> u32;
}

#[derive(Default)]
struct Probe {
    /// context id → its parent (0 for a root).
    parents: HashMap<u32, u32>,
    /// token → (stream context that waits, mode).
    tokens: HashMap<u32, (u32, String)>,
    /// stream context → its events so far.
    events: HashMap<u32, Vec<String>>,
}

thread_local! {
    static PROBE: RefCell<Probe> = RefCell::new(Probe::default());
}

fn log(context: u32, text: &str) {
    let line = format!("grpc-probe ctx={context}: {text}");
    unsafe {
        proxy_log(2, line.as_ptr(), line.len());
    }
}

fn event(stream: u32, text: String) {
    log(stream, &text);
    PROBE.with(|p| p.borrow_mut().events.entry(stream).or_default().push(text));
}

/// Takes ownership of host-allocated bytes.
fn owned(ptr: *mut u8, size: usize) -> Vec<u8> {
    if ptr.is_null() {
        return Vec::new();
    }
    unsafe { Vec::from_raw_parts(ptr, size, size) }
}

fn header(name: &str) -> Option<String> {
    let mut ptr = null_mut();
    let mut size = 0;
    let status =
        unsafe { proxy_get_header_map_value(0, name.as_ptr(), name.len(), &mut ptr, &mut size) };
    if status != 0 || ptr.is_null() {
        return None;
    }
    Some(String::from_utf8_lossy(&owned(ptr, size)).into_owned())
}

fn serialize_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

fn parse_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    let word = |at: usize| -> Option<usize> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    let Some(n) = word(0) else {
        return Vec::new();
    };
    let mut sizes = Vec::new();
    for i in 0..n {
        match (word(4 + 8 * i), word(8 + 8 * i)) {
            (Some(k), Some(v)) => sizes.push((k, v)),
            _ => return Vec::new(),
        }
    }
    let mut at = 4 + 8 * n;
    let mut out = Vec::new();
    for (k, v) in sizes {
        let key = bytes.get(at..at + k).unwrap_or_default();
        at += k + 1;
        let value = bytes.get(at..at + v).unwrap_or_default();
        at += v + 1;
        out.push((
            String::from_utf8_lossy(key).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }
    out
}

fn map_pairs(map: u32) -> String {
    let mut ptr = null_mut();
    let mut size = 0;
    let status = unsafe { proxy_get_header_map_pairs(map, &mut ptr, &mut size) };
    let pairs = parse_pairs(&owned(ptr, size));
    let shown: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("status={status} [{}]", shown.join(","))
}

fn grpc_body(size: usize) -> String {
    let mut ptr = null_mut();
    let mut got = 0;
    let status = unsafe { proxy_get_buffer_bytes(5, 0, size, &mut ptr, &mut got) };
    format!(
        "status={status} {:?}",
        String::from_utf8_lossy(&owned(ptr, got))
    )
}

fn grpc_status() -> String {
    let mut code = 0;
    let mut ptr = null_mut();
    let mut size = 0;
    let status = unsafe { proxy_get_status(&mut code, &mut ptr, &mut size) };
    format!(
        "status={status} code={code} message={:?}",
        String::from_utf8_lossy(&owned(ptr, size))
    )
}

/// `varint` of a protobuf length.
fn varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// `GrpcService { envoy_grpc (1) { cluster_name (1), authority (2) } }`.
fn grpc_service(cluster: &str, authority: Option<&str>) -> Vec<u8> {
    let mut inner = vec![0x0a];
    varint(cluster.len(), &mut inner);
    inner.extend_from_slice(cluster.as_bytes());
    if let Some(authority) = authority {
        inner.push(0x12);
        varint(authority.len(), &mut inner);
        inner.extend_from_slice(authority.as_bytes());
    }
    let mut out = vec![0x0a];
    varint(inner.len(), &mut out);
    out.extend_from_slice(&inner);
    out
}

fn answer(stream: u32) {
    let body = PROBE.with(|p| p.borrow_mut().events.remove(&stream).unwrap_or_default());
    let body = body.join("\n") + "\n";
    let headers = serialize_pairs(&[("x-probe-done", "1")]);
    unsafe {
        proxy_set_effective_context(stream);
        let status = proxy_send_local_response(
            200,
            null_mut(),
            0,
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        );
        if status != 0 {
            log(stream, &format!("send_local_response status={status}"));
        }
    }
}

/// `_initialize`: nothing to set up.
#[no_mangle]
pub extern "C" fn _initialize() {}

/// ABI version marker.
#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// Memory for the host to write into.
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut buffer = Vec::<u8>::with_capacity(size);
    let ptr = buffer.as_mut_ptr();
    std::mem::forget(buffer);
    ptr
}

/// A context is created.
#[no_mangle]
pub extern "C" fn proxy_on_context_create(context: u32, parent: u32) {
    PROBE.with(|p| p.borrow_mut().parents.insert(context, parent));
}

/// VM start.
#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_context: u32, _size: usize) -> u32 {
    1
}

/// Configure.
#[no_mangle]
pub extern "C" fn proxy_on_configure(_context: u32, _size: usize) -> u32 {
    1
}

/// Request headers: dispatch what the headers ask for.
#[no_mangle]
pub extern "C" fn proxy_on_request_headers(stream: u32, _headers: u32, _eos: u32) -> u32 {
    let mode = header("x-mode").unwrap_or_else(|| "call".to_owned());
    if mode == "none" {
        return 0;
    }
    let service_spec = header("x-service").unwrap_or_default();
    let service = if let Some(name) = service_spec.strip_prefix("name:") {
        name.as_bytes().to_vec()
    } else if let Some(rest) = service_spec.strip_prefix("proto:") {
        let (cluster, authority) = match rest.split_once(',') {
            Some((c, a)) => (c, Some(a)),
            None => (rest, None),
        };
        grpc_service(cluster, authority)
    } else {
        Vec::new()
    };
    let method = header("x-method").unwrap_or_default();
    let (service_name, method_name) = method.split_once('/').unwrap_or((&method, ""));
    let timeout: u32 = header("x-timeout")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let md = header("x-md").unwrap_or_default();
    let md_pairs: Vec<(&str, &str)> = md.split(',').filter_map(|kv| kv.split_once('=')).collect();
    let metadata = serialize_pairs(&md_pairs);
    let message = header("x-msg");
    let root = header("x-root").is_some();
    if root {
        let parent = PROBE.with(|p| p.borrow().parents.get(&stream).copied().unwrap_or(0));
        unsafe { proxy_set_effective_context(parent) };
    }
    let mut token = 0;
    if mode.starts_with("call") {
        let (msg_ptr, msg_len) = message
            .as_ref()
            .map_or((std::ptr::null(), 0), |m| (m.as_ptr(), m.len()));
        let status = unsafe {
            proxy_grpc_call(
                service.as_ptr(),
                service.len(),
                service_name.as_ptr(),
                service_name.len(),
                method_name.as_ptr(),
                method_name.len(),
                metadata.as_ptr(),
                metadata.len(),
                msg_ptr,
                msg_len,
                timeout,
                &mut token,
            )
        };
        event(stream, format!("dispatch status={status} token={token}"));
        if root {
            unsafe { proxy_set_effective_context(stream) };
        }
        if status != 0 {
            answer(stream);
            return 1;
        }
        if mode == "call-cancel" {
            let status = unsafe { proxy_grpc_cancel(token) };
            event(stream, format!("cancel status={status}"));
            PROBE.with(|p| p.borrow_mut().tokens.insert(token, (0, mode)));
            answer(stream);
            return 1;
        }
    } else {
        let status = unsafe {
            proxy_grpc_stream(
                service.as_ptr(),
                service.len(),
                service_name.as_ptr(),
                service_name.len(),
                method_name.as_ptr(),
                method_name.len(),
                metadata.as_ptr(),
                metadata.len(),
                &mut token,
            )
        };
        event(stream, format!("open status={status} token={token}"));
        if status != 0 {
            if root {
                unsafe { proxy_set_effective_context(stream) };
            }
            answer(stream);
            return 1;
        }
        if let Some(message) = &message {
            let end = header("x-end").is_some();
            let status =
                unsafe { proxy_grpc_send(token, message.as_ptr(), message.len(), end as u32) };
            event(stream, format!("send end={end} status={status}"));
        }
        if root {
            unsafe { proxy_set_effective_context(stream) };
        }
    }
    PROBE.with(|p| p.borrow_mut().tokens.insert(token, (stream, mode)));
    1
}

fn waiter(token: u32) -> (u32, String) {
    PROBE.with(|p| {
        p.borrow()
            .tokens
            .get(&token)
            .cloned()
            .unwrap_or((0, String::new()))
    })
}

/// Initial metadata of a stream (or call).
#[no_mangle]
pub extern "C" fn proxy_on_grpc_receive_initial_metadata(context: u32, token: u32, n: u32) {
    let (stream, _) = waiter(token);
    let pairs = map_pairs(4);
    let text = format!("initial_metadata callback_ctx={context} token={token} n={n} {pairs}");
    if stream == 0 {
        log(context, &format!("(no waiter) {text}"));
    } else {
        event(stream, text);
    }
}

/// A message (a call's response, or a stream's next message).
#[no_mangle]
pub extern "C" fn proxy_on_grpc_receive(context: u32, token: u32, size: usize) {
    let (stream, mode) = waiter(token);
    let text = format!(
        "receive callback_ctx={context} token={token} size={size} body={} grpc_status={}",
        grpc_body(size),
        grpc_status()
    );
    if stream == 0 {
        log(context, &format!("(no waiter) {text}"));
        return;
    }
    event(stream, text);
    if mode.starts_with("call") {
        answer(stream);
    } else if mode == "stream-close" {
        let status = unsafe { proxy_grpc_close(token) };
        event(stream, format!("close status={status}"));
    } else if mode == "stream-cancel" {
        let status = unsafe { proxy_grpc_cancel(token) };
        event(stream, format!("cancel status={status}"));
        answer(stream);
    }
}

/// Trailing metadata.
#[no_mangle]
pub extern "C" fn proxy_on_grpc_receive_trailing_metadata(context: u32, token: u32, n: u32) {
    let (stream, _) = waiter(token);
    let pairs = map_pairs(5);
    let text = format!("trailing_metadata callback_ctx={context} token={token} n={n} {pairs}");
    if stream == 0 {
        log(context, &format!("(no waiter) {text}"));
    } else {
        event(stream, text);
    }
}

/// A call failed, or a stream closed.
#[no_mangle]
pub extern "C" fn proxy_on_grpc_close(context: u32, token: u32, status_code: u32) {
    let (stream, _) = waiter(token);
    let text = format!(
        "close callback_ctx={context} token={token} status_code={status_code} grpc_status={}",
        grpc_status()
    );
    if stream == 0 {
        log(context, &format!("(no waiter) {text}"));
        return;
    }
    event(stream, text);
    answer(stream);
}

/// The stream is done.
#[no_mangle]
pub extern "C" fn proxy_on_done(context: u32) -> u32 {
    log(context, "done");
    PROBE.with(|p| {
        let mut p = p.borrow_mut();
        p.events.remove(&context);
        p.tokens.retain(|_, (s, _)| *s != context);
    });
    1
}

/// Log phase.
#[no_mangle]
pub extern "C" fn proxy_on_log(_context: u32) {}

/// The context is deleted.
#[no_mangle]
pub extern "C" fn proxy_on_delete(context: u32) {
    PROBE.with(|p| p.borrow_mut().parents.remove(&context));
}
