//! The proxy-wasm imports, listed once: each backend turns this list into its bindings of
//! the host model in `abi` (`native`: `extern "C"` functions the linked SDK calls; `wasm`:
//! wasmtime linker functions). Adding an import is a function in `abi` and a line here.
//!
//! Each argument has a kind: `u32`, `i32`, `u64`, `i64`, `bool`, `ptr` (a guest address)
//! or `size` (a guest `usize`). The host model takes `ptr` and `size` as `usize`.

/// Calls `$backend!` with the list of imports.
macro_rules! for_each_import {
    ($backend:ident) => {
        $backend! {
            fn proxy_log(level: u32, message_data: ptr, message_size: size);
            fn proxy_get_log_level(return_level: ptr);
            fn proxy_get_current_time_nanoseconds(return_time: ptr);
            fn proxy_set_tick_period_milliseconds(period: u32);
            fn proxy_get_buffer_bytes(buffer_type: u32, start: size, max_size: size, return_data: ptr, return_size: ptr);
            fn proxy_set_buffer_bytes(buffer_type: u32, start: size, size: size, data: ptr, data_size: size);
            fn proxy_get_header_map_pairs(map_type: u32, return_data: ptr, return_size: ptr);
            fn proxy_set_header_map_pairs(map_type: u32, data: ptr, size: size);
            fn proxy_get_header_map_value(map_type: u32, key_data: ptr, key_size: size, return_data: ptr, return_size: ptr);
            fn proxy_remove_header_map_value(map_type: u32, key_data: ptr, key_size: size);
            fn proxy_replace_header_map_value(map_type: u32, key_data: ptr, key_size: size, value_data: ptr, value_size: size);
            fn proxy_add_header_map_value(map_type: u32, key_data: ptr, key_size: size, value_data: ptr, value_size: size);
            fn proxy_get_property(path_data: ptr, path_size: size, return_data: ptr, return_size: ptr);
            fn proxy_set_property(path_data: ptr, path_size: size, value_data: ptr, value_size: size);
            fn proxy_get_shared_data(key_data: ptr, key_size: size, return_data: ptr, return_size: ptr, return_cas: ptr);
            fn proxy_set_shared_data(key_data: ptr, key_size: size, value_data: ptr, value_size: size, cas: u32);
            fn proxy_register_shared_queue(name_data: ptr, name_size: size, return_id: ptr);
            fn proxy_resolve_shared_queue(vm_id_data: ptr, vm_id_size: size, name_data: ptr, name_size: size, return_id: ptr);
            fn proxy_dequeue_shared_queue(queue_id: u32, return_data: ptr, return_size: ptr);
            fn proxy_enqueue_shared_queue(queue_id: u32, value_data: ptr, value_size: size);
            fn proxy_continue_stream(stream_type: u32);
            fn proxy_close_stream(stream_type: u32);
            fn proxy_send_local_response(status_code: u32, details_data: ptr, details_size: size, body_data: ptr, body_size: size, headers_data: ptr, headers_size: size, grpc_status: i32);
            fn proxy_http_call(upstream_data: ptr, upstream_size: size, headers_data: ptr, headers_size: size, body_data: ptr, body_size: size, trailers_data: ptr, trailers_size: size, timeout: u32, return_token: ptr);
            fn proxy_grpc_call(upstream_data: ptr, upstream_size: size, service_data: ptr, service_size: size, method_data: ptr, method_size: size, metadata_data: ptr, metadata_size: size, message_data: ptr, message_size: size, timeout: u32, return_id: ptr);
            fn proxy_grpc_stream(upstream_data: ptr, upstream_size: size, service_data: ptr, service_size: size, method_data: ptr, method_size: size, metadata_data: ptr, metadata_size: size, return_id: ptr);
            fn proxy_grpc_send(token: u32, message_data: ptr, message_size: size, end_stream: bool);
            fn proxy_grpc_cancel(token: u32);
            fn proxy_grpc_close(token: u32);
            fn proxy_get_status(return_code: ptr, return_message_data: ptr, return_message_size: ptr);
            fn proxy_set_effective_context(context_id: u32);
            fn proxy_call_foreign_function(name_data: ptr, name_size: size, arguments_data: ptr, arguments_size: size, return_data: ptr, return_size: ptr);
            fn proxy_done();
            fn proxy_define_metric(metric_type: u32, name_data: ptr, name_size: size, return_id: ptr);
            fn proxy_increment_metric(metric_id: u32, offset: i64);
            fn proxy_record_metric(metric_id: u32, value: u64);
            fn proxy_get_metric(metric_id: u32, return_value: ptr);
        }
    };
}

pub(crate) use for_each_import;
