//! The native backend: the plugin is linked into the test binary, the SDK calls the host
//! through `extern "C"` functions defined here, and the host calls the SDK's `proxy_on_*`
//! entry points directly. Guest memory is the test process's own.

use std::ptr;
use std::slice;

use crate::abi::{self, Fault, Memory};
use crate::guest::Export;

/// The test process's memory, addressed by the raw pointers the SDK passes.
struct NativeMemory(());

impl NativeMemory {
    /// # Safety
    /// Every address and size a host call is given must be valid as the SDK passes them:
    /// readable buffers of their size, writable out-pointers.
    unsafe fn trusting_the_caller() -> NativeMemory {
        NativeMemory(())
    }
}

impl Memory for NativeMemory {
    fn read(&mut self, address: usize, size: usize) -> Result<Vec<u8>, Fault> {
        if address == 0 {
            return Err(Fault);
        }
        // SAFETY: `trusting_the_caller`: the SDK passes a readable buffer of `size` bytes.
        Ok(unsafe { slice::from_raw_parts(address as *const u8, size) }.to_vec())
    }

    fn write(&mut self, address: usize, bytes: &[u8]) -> Result<(), Fault> {
        if address != 0 {
            // SAFETY: `trusting_the_caller`: the SDK passes writable out-pointers of the
            // size of the value written there.
            unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), address as *mut u8, bytes.len()) };
        }
        Ok(())
    }

    fn word_size(&self) -> usize {
        size_of::<usize>()
    }

    fn allocate(&mut self, size: usize) -> Result<usize, Fault> {
        // The SDK takes it back with `Vec::from_raw_parts(p, size, size)`.
        let buffer: Box<[u8]> = vec![0; size].into_boxed_slice();
        Ok(Box::into_raw(buffer) as *mut u8 as usize)
    }
}

macro_rules! native_type {
    (ptr) => {
        usize
    };
    (size) => {
        usize
    };
    ($kind:ident) => {
        $kind
    };
}

macro_rules! native_shims {
    ($(fn $name:ident($($arg:ident: $kind:ident),* $(,)?);)*) => {$(
        /// The host call of the same name (see `abi`).
        #[no_mangle]
        unsafe extern "C" fn $name($($arg: native_type!($kind)),*) -> u32 {
            // SAFETY: the SDK calls with valid buffers and out-pointers.
            let mut memory = unsafe { NativeMemory::trusting_the_caller() };
            abi::code(abi::$name(&mut memory, $($arg),*))
        }
    )*};
}

crate::imports::for_each_import!(native_shims);

extern "C" {
    fn proxy_on_context_create(context_id: u32, root_context_id: u32);
    fn proxy_on_done(context_id: u32) -> bool;
    fn proxy_on_log(context_id: u32);
    fn proxy_on_delete(context_id: u32);
    fn proxy_on_vm_start(context_id: u32, vm_configuration_size: usize) -> bool;
    fn proxy_on_configure(context_id: u32, plugin_configuration_size: usize) -> bool;
    fn proxy_on_tick(context_id: u32);
    fn proxy_on_queue_ready(context_id: u32, queue_id: u32);
    fn proxy_on_request_headers(context_id: u32, num_headers: usize, end_of_stream: bool) -> u32;
    fn proxy_on_request_body(context_id: u32, body_size: usize, end_of_stream: bool) -> u32;
    fn proxy_on_request_trailers(context_id: u32, num_trailers: usize) -> u32;
    fn proxy_on_response_headers(context_id: u32, num_headers: usize, end_of_stream: bool) -> u32;
    fn proxy_on_response_body(context_id: u32, body_size: usize, end_of_stream: bool) -> u32;
    fn proxy_on_response_trailers(context_id: u32, num_trailers: usize) -> u32;
    fn proxy_on_new_connection(context_id: u32) -> u32;
    fn proxy_on_downstream_data(context_id: u32, data_size: usize, end_of_stream: bool) -> u32;
    fn proxy_on_downstream_connection_close(context_id: u32, peer_type: u32);
    fn proxy_on_upstream_data(context_id: u32, data_size: usize, end_of_stream: bool) -> u32;
    fn proxy_on_upstream_connection_close(context_id: u32, peer_type: u32);
    fn proxy_on_http_call_response(
        context_id: u32,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        num_trailers: usize,
    );
    fn proxy_on_grpc_receive(context_id: u32, token: u32, response_size: usize);
    fn proxy_on_grpc_close(context_id: u32, token: u32, status_code: u32);
    fn proxy_on_grpc_receive_initial_metadata(context_id: u32, token: u32, headers: u32);
    fn proxy_on_grpc_receive_trailing_metadata(context_id: u32, token: u32, trailers: u32);
}

/// Calls the SDK's entry point natively; what it returns as a number (0 for none).
pub(crate) fn call(export: Export) -> u32 {
    // SAFETY: the SDK's entry points, linked into this binary, take any values.
    unsafe {
        match export {
            Export::ContextCreate(id, root) => {
                proxy_on_context_create(id, root);
                0
            }
            Export::Done(id) => u32::from(proxy_on_done(id)),
            Export::Log(id) => {
                proxy_on_log(id);
                0
            }
            Export::Delete(id) => {
                proxy_on_delete(id);
                0
            }
            Export::VmStart(id, size) => u32::from(proxy_on_vm_start(id, size)),
            Export::Configure(id, size) => u32::from(proxy_on_configure(id, size)),
            Export::Tick(id) => {
                proxy_on_tick(id);
                0
            }
            Export::QueueReady(id, queue) => {
                proxy_on_queue_ready(id, queue);
                0
            }
            Export::RequestHeaders(id, n, end) => proxy_on_request_headers(id, n, end),
            Export::RequestBody(id, n, end) => proxy_on_request_body(id, n, end),
            Export::RequestTrailers(id, n) => proxy_on_request_trailers(id, n),
            Export::ResponseHeaders(id, n, end) => proxy_on_response_headers(id, n, end),
            Export::ResponseBody(id, n, end) => proxy_on_response_body(id, n, end),
            Export::ResponseTrailers(id, n) => proxy_on_response_trailers(id, n),
            Export::NewConnection(id) => proxy_on_new_connection(id),
            Export::DownstreamData(id, n, end) => proxy_on_downstream_data(id, n, end),
            Export::DownstreamClose(id, peer) => {
                proxy_on_downstream_connection_close(id, peer);
                0
            }
            Export::UpstreamData(id, n, end) => proxy_on_upstream_data(id, n, end),
            Export::UpstreamClose(id, peer) => {
                proxy_on_upstream_connection_close(id, peer);
                0
            }
            Export::HttpCallResponse(id, token, headers, body, trailers) => {
                proxy_on_http_call_response(id, token, headers, body, trailers);
                0
            }
            Export::GrpcReceive(id, token, size) => {
                proxy_on_grpc_receive(id, token, size);
                0
            }
            Export::GrpcInitialMetadata(id, token, count) => {
                proxy_on_grpc_receive_initial_metadata(id, token, count);
                0
            }
            Export::GrpcTrailingMetadata(id, token, count) => {
                proxy_on_grpc_receive_trailing_metadata(id, token, count);
                0
            }
            Export::GrpcClose(id, token, code) => {
                proxy_on_grpc_close(id, token, code);
                0
            }
        }
    }
}
