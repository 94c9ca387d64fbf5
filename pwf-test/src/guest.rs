//! The guest's entry points (`proxy_on_*` exports), and which backend runs them on the
//! calling VM thread: the natively linked plugin, or a module in wasmtime.

/// One call into the guest, with its arguments.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Export {
    ContextCreate(u32, u32),
    Done(u32),
    Log(u32),
    Delete(u32),
    VmStart(u32, usize),
    Configure(u32, usize),
    Tick(u32),
    QueueReady(u32, u32),
    RequestHeaders(u32, usize, bool),
    RequestBody(u32, usize, bool),
    RequestTrailers(u32, usize),
    ResponseHeaders(u32, usize, bool),
    ResponseBody(u32, usize, bool),
    ResponseTrailers(u32, usize),
    NewConnection(u32),
    DownstreamData(u32, usize, bool),
    DownstreamClose(u32, u32),
    UpstreamData(u32, usize, bool),
    UpstreamClose(u32, u32),
    HttpCallResponse(u32, u32, usize, usize, usize),
    GrpcInitialMetadata(u32, u32, u32),
    GrpcReceive(u32, u32, usize),
    GrpcTrailingMetadata(u32, u32, u32),
    GrpcClose(u32, u32, u32),
}

impl Export {
    /// The export's name in a module.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Export::ContextCreate(..) => "proxy_on_context_create",
            Export::Done(..) => "proxy_on_done",
            Export::Log(..) => "proxy_on_log",
            Export::Delete(..) => "proxy_on_delete",
            Export::VmStart(..) => "proxy_on_vm_start",
            Export::Configure(..) => "proxy_on_configure",
            Export::Tick(..) => "proxy_on_tick",
            Export::QueueReady(..) => "proxy_on_queue_ready",
            Export::RequestHeaders(..) => "proxy_on_request_headers",
            Export::RequestBody(..) => "proxy_on_request_body",
            Export::RequestTrailers(..) => "proxy_on_request_trailers",
            Export::ResponseHeaders(..) => "proxy_on_response_headers",
            Export::ResponseBody(..) => "proxy_on_response_body",
            Export::ResponseTrailers(..) => "proxy_on_response_trailers",
            Export::NewConnection(..) => "proxy_on_new_connection",
            Export::DownstreamData(..) => "proxy_on_downstream_data",
            Export::DownstreamClose(..) => "proxy_on_downstream_connection_close",
            Export::UpstreamData(..) => "proxy_on_upstream_data",
            Export::UpstreamClose(..) => "proxy_on_upstream_connection_close",
            Export::HttpCallResponse(..) => "proxy_on_http_call_response",
            Export::GrpcInitialMetadata(..) => "proxy_on_grpc_receive_initial_metadata",
            Export::GrpcReceive(..) => "proxy_on_grpc_receive",
            Export::GrpcTrailingMetadata(..) => "proxy_on_grpc_receive_trailing_metadata",
            Export::GrpcClose(..) => "proxy_on_grpc_close",
        }
    }

    /// The arguments as the ABI's 32-bit numbers.
    pub(crate) fn args(self) -> Vec<u32> {
        let size = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        match self {
            Export::Done(id)
            | Export::Log(id)
            | Export::Delete(id)
            | Export::Tick(id)
            | Export::NewConnection(id) => vec![id],
            Export::ContextCreate(id, other)
            | Export::QueueReady(id, other)
            | Export::DownstreamClose(id, other)
            | Export::UpstreamClose(id, other) => vec![id, other],
            Export::VmStart(id, n)
            | Export::Configure(id, n)
            | Export::RequestTrailers(id, n)
            | Export::ResponseTrailers(id, n) => vec![id, size(n)],
            Export::RequestHeaders(id, n, end)
            | Export::RequestBody(id, n, end)
            | Export::ResponseHeaders(id, n, end)
            | Export::ResponseBody(id, n, end)
            | Export::DownstreamData(id, n, end)
            | Export::UpstreamData(id, n, end) => vec![id, size(n), u32::from(end)],
            Export::HttpCallResponse(id, token, headers, body, trailers) => {
                vec![id, token, size(headers), size(body), size(trailers)]
            }
            Export::GrpcReceive(id, token, n) => vec![id, token, size(n)],
            Export::GrpcClose(id, token, code)
            | Export::GrpcInitialMetadata(id, token, code)
            | Export::GrpcTrailingMetadata(id, token, code) => vec![id, token, code],
        }
    }
}

/// Runs `export` in the guest of the calling VM thread: the module if the VM runs one,
/// else the natively linked plugin. What it returns as a number (0 for nothing).
pub(crate) fn call(export: Export) -> u32 {
    match crate::wasm::call(export) {
        Some(result) => result,
        None => crate::native::call(export),
    }
}
