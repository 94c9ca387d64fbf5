//! The host side: the state a plugin sees, and the imports that serve it.

use std::collections::HashMap;

use wasmtime::{Caller, Extern, Linker, Memory};

use crate::abi::{self, buffer, map, status, LogLevel};
use crate::{Exchange, VmOptions};

type Result<T> = wasmtime::Result<T>;

/// The answer to one HTTP call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallResponse {
    /// Its headers; none means the call failed without a response.
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Vec<u8>,
    /// Its trailers.
    pub trailers: Vec<(String, String)>,
}

/// A local response the plugin sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalResponse {
    /// The status code.
    pub status: u32,
    /// The headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// One HTTP stream's state.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    pub(crate) id: u32,
    pub(crate) request_headers: Vec<(String, String)>,
    pub(crate) request_trailers: Vec<(String, String)>,
    pub(crate) response_headers: Vec<(String, String)>,
    pub(crate) response_trailers: Vec<(String, String)>,
    pub(crate) request_body: Vec<u8>,
    pub(crate) response_body: Vec<u8>,
    /// The response being delivered by `proxy_on_http_call_response`.
    pub(crate) call_response: CallResponse,
    /// Calls in flight: token and the call's index in this stream.
    pub(crate) calls: Vec<(u32, usize)>,
    pub(crate) calls_dispatched: usize,
    pub(crate) local_response: Option<LocalResponse>,
    pub(crate) request_resumed: bool,
    pub(crate) response_resumed: bool,
}

impl Stream {
    pub(crate) fn new(id: u32, exchange: &Exchange) -> Stream {
        Stream {
            id,
            request_headers: exchange.request_headers.clone(),
            response_headers: exchange.response_headers.clone(),
            ..Stream::default()
        }
    }
}

/// Where the guest's fuel goes between host calls: each segment runs from
/// one boundary (an export entered, or a host import called) to the next (an
/// import called, or `return`). The fuel of the guest allocations that return
/// an import's data counts in the segment that starts at that import.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    mark: u64,
    label: &'static str,
    /// Fuel between two boundaries, by (from, to).
    pub segments: HashMap<(&'static str, &'static str), u64>,
    /// Host calls, by import.
    pub calls: HashMap<&'static str, u64>,
}

impl Profile {
    /// Starts a segment at `label`, with `fuel` in the tank.
    pub(crate) fn start(&mut self, label: &'static str, fuel: u64) {
        self.mark = fuel;
        self.label = label;
    }

    /// Crosses a boundary at fuel level `fuel`.
    pub(crate) fn cross(&mut self, label: &'static str, fuel: u64) {
        let spent = self.mark.saturating_sub(fuel);
        *self.segments.entry((self.label, label)).or_default() += spent;
        self.mark = fuel;
        self.label = label;
    }
}

/// Where the guest's fuel goes, function by function: filled when
/// [`VmOptions::function_profile`] is set. The meter stops at every function
/// entry and loop header and charges the fuel spent since the last stop to
/// the call stack seen then.
#[derive(Clone, Debug, Default)]
pub struct FunctionProfile {
    last: Option<(u64, Vec<String>)>,
    /// Fuel spent in each function itself.
    pub exclusive: HashMap<String, u64>,
    /// Fuel spent in each function and everything it called.
    pub inclusive: HashMap<String, u64>,
}

impl FunctionProfile {
    /// A stop at fuel level `fuel` with `stack` (innermost first).
    pub(crate) fn stop(&mut self, fuel: u64, stack: Option<Vec<String>>) {
        if let Some((mark, last)) = self.last.take() {
            let spent = mark.saturating_sub(fuel);
            if let Some(leaf) = last.first() {
                *self.exclusive.entry(leaf.clone()).or_default() += spent;
            }
            let mut seen: Vec<&String> = Vec::with_capacity(last.len());
            for name in &last {
                if !seen.contains(&name) {
                    seen.push(name);
                    *self.inclusive.entry(name.clone()).or_default() += spent;
                }
            }
        }
        self.last = stack.map(|stack| (fuel, stack));
    }
}

/// Counts a host call and the guest fuel spent since the last boundary.
fn enter(caller: &mut Caller<'_, Host>, import: &'static str) {
    let fuel = caller.get_fuel().unwrap_or(0);
    let profile = &mut caller.data_mut().profile;
    *profile.calls.entry(import).or_default() += 1;
    profile.cross(import, fuel);
}

/// The host's state.
pub(crate) struct Host {
    pub(crate) profile: Profile,
    pub(crate) functions: FunctionProfile,
    pub(crate) configuration: Vec<u8>,
    pub(crate) log_level: LogLevel,
    pub(crate) logs: Vec<(LogLevel, String)>,
    clusters: Vec<String>,
    plugin_name: String,
    /// Shared data: value and CAS per key.
    pub(crate) shared: HashMap<Vec<u8>, (Vec<u8>, u32)>,
    /// The last CAS handed out; Envoy's counter is global across keys.
    cas: u32,
    next_token: u32,
    pub(crate) effective_context: u32,
    metrics: Vec<u64>,
    pub(crate) stream: Stream,
    /// Calls the plugin made that Envoy would reject or misroute.
    pub(crate) problems: Vec<String>,
    clock: u64,
}

impl Host {
    pub(crate) fn new(options: VmOptions) -> Host {
        Host {
            profile: Profile::default(),
            functions: FunctionProfile::default(),
            configuration: options.configuration,
            log_level: options.log_level,
            logs: Vec::new(),
            clusters: options.clusters,
            plugin_name: options.plugin_name,
            shared: HashMap::new(),
            cas: 0,
            next_token: 0,
            effective_context: 0,
            metrics: Vec::new(),
            stream: Stream::default(),
            problems: Vec::new(),
            clock: 1_700_000_000_000_000_000,
        }
    }

    /// The header map `kind`, checking that stream maps are touched from the
    /// stream's context.
    fn map(&mut self, kind: i32) -> Option<&mut Vec<(String, String)>> {
        let stream_map = matches!(
            kind,
            map::REQUEST_HEADERS
                | map::REQUEST_TRAILERS
                | map::RESPONSE_HEADERS
                | map::RESPONSE_TRAILERS
        );
        if stream_map && self.effective_context != self.stream.id {
            self.problems.push(format!(
                "header map {kind} used from context {} instead of stream {}",
                self.effective_context, self.stream.id
            ));
        }
        Some(match kind {
            map::REQUEST_HEADERS => &mut self.stream.request_headers,
            map::REQUEST_TRAILERS => &mut self.stream.request_trailers,
            map::RESPONSE_HEADERS => &mut self.stream.response_headers,
            map::RESPONSE_TRAILERS => &mut self.stream.response_trailers,
            map::CALL_RESPONSE_HEADERS => &mut self.stream.call_response.headers,
            map::CALL_RESPONSE_TRAILERS => &mut self.stream.call_response.trailers,
            _ => return None,
        })
    }

    fn buffer(&self, kind: i32) -> Option<&[u8]> {
        Some(match kind {
            buffer::REQUEST_BODY => &self.stream.request_body,
            buffer::RESPONSE_BODY => &self.stream.response_body,
            buffer::CALL_RESPONSE_BODY => &self.stream.call_response.body,
            buffer::PLUGIN_CONFIGURATION => &self.configuration,
            buffer::VM_CONFIGURATION => &[],
            _ => return None,
        })
    }

    fn check_stream_context(&mut self, what: &str) {
        if self.effective_context != self.stream.id {
            self.problems.push(format!(
                "{what} from context {} instead of stream {}",
                self.effective_context, self.stream.id
            ));
        }
    }
}

fn memory(caller: &mut Caller<'_, Host>) -> Result<Memory> {
    caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .ok_or_else(|| wasmtime::format_err!("the module exports no memory"))
}

fn read(caller: &mut Caller<'_, Host>, ptr: i32, len: i32) -> Result<Vec<u8>> {
    let memory = memory(caller)?;
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    memory
        .data(&caller)
        .get(ptr..ptr + len)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| wasmtime::format_err!("guest range {ptr}+{len} out of bounds"))
}

fn read_string(caller: &mut Caller<'_, Host>, ptr: i32, len: i32) -> Result<String> {
    Ok(String::from_utf8_lossy(&read(caller, ptr, len)?).into_owned())
}

fn write(caller: &mut Caller<'_, Host>, ptr: i32, bytes: &[u8]) -> Result<()> {
    let memory = memory(caller)?;
    let ptr = ptr as u32 as usize;
    memory
        .data_mut(&mut *caller)
        .get_mut(ptr..ptr + bytes.len())
        .ok_or_else(|| wasmtime::format_err!("guest range {ptr}+{} out of bounds", bytes.len()))?
        .copy_from_slice(bytes);
    Ok(())
}

fn write_u32(caller: &mut Caller<'_, Host>, ptr: i32, value: u32) -> Result<()> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Copies `bytes` into memory the guest allocates, and stores the pointer and
/// size where the guest asked: how the host returns data.
fn give(caller: &mut Caller<'_, Host>, bytes: &[u8], ret_ptr: i32, ret_size: i32) -> Result<()> {
    let allocate = caller
        .get_export("proxy_on_memory_allocate")
        .or_else(|| caller.get_export("malloc"))
        .and_then(Extern::into_func)
        .ok_or_else(|| wasmtime::format_err!("the module exports no allocator"))?
        .typed::<i32, i32>(&*caller)?;
    let ptr = allocate.call(&mut *caller, bytes.len() as i32)?;
    if ptr == 0 {
        wasmtime::bail!(
            "the guest allocator returned null for {} bytes",
            bytes.len()
        );
    }
    write(caller, ptr, bytes)?;
    write_u32(caller, ret_ptr, ptr as u32)?;
    write_u32(caller, ret_size, bytes.len() as u32)
}

/// Defines every import the host implements.
pub(crate) fn define(linker: &mut Linker<Host>) -> Result<()> {
    define_env(linker)?;
    define_wasi(linker)
}

fn define_env(linker: &mut Linker<Host>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_log",
        |mut caller: Caller<'_, Host>, level: i32, ptr: i32, len: i32| -> Result<i32> {
            enter(&mut caller, "proxy_log");
            let message = read_string(&mut caller, ptr, len)?;
            let Some(level) = LogLevel::from_abi(level) else {
                return Ok(status::BAD_ARGUMENT);
            };
            let host = caller.data_mut();
            if level >= host.log_level {
                host.logs.push((level, message));
            }
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_log_level",
        |mut caller: Caller<'_, Host>, ret: i32| -> Result<i32> {
            enter(&mut caller, "proxy_get_log_level");
            let level = caller.data().log_level.to_abi();
            write_u32(&mut caller, ret, level as u32)?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut caller: Caller<'_, Host>, ret: i32| -> Result<i32> {
            enter(&mut caller, "proxy_get_current_time_nanoseconds");
            let host = caller.data_mut();
            host.clock += 1_000;
            let now = host.clock;
            write(&mut caller, ret, &now.to_le_bytes())?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut caller: Caller<'_, Host>, _period: i32| -> i32 {
            enter(&mut caller, "proxy_set_tick_period_milliseconds");
            status::OK
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut caller: Caller<'_, Host>,
         kind: i32,
         start: i32,
         max: i32,
         ret_ptr: i32,
         ret_size: i32|
         -> Result<i32> {
            enter(&mut caller, "proxy_get_buffer_bytes");
            let Some(buffer) = caller.data().buffer(kind) else {
                return Ok(status::BAD_ARGUMENT);
            };
            let start = start as u32 as usize;
            let end = start.saturating_add(max as u32 as usize).min(buffer.len());
            if start >= end {
                return Ok(status::NOT_FOUND);
            }
            let bytes = buffer[start..end].to_vec();
            give(&mut caller, &bytes, ret_ptr, ret_size)?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut caller: Caller<'_, Host>,
         kind: i32,
         start: i32,
         size: i32,
         ptr: i32,
         len: i32|
         -> Result<i32> {
            enter(&mut caller, "proxy_set_buffer_bytes");
            let bytes = read(&mut caller, ptr, len)?;
            let stream = &mut caller.data_mut().stream;
            let target = match kind {
                buffer::REQUEST_BODY => &mut stream.request_body,
                buffer::RESPONSE_BODY => &mut stream.response_body,
                _ => return Ok(status::BAD_ARGUMENT),
            };
            let start = (start as u32 as usize).min(target.len());
            let end = start.saturating_add(size as u32 as usize).min(target.len());
            target.splice(start..end, bytes);
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut caller: Caller<'_, Host>, kind: i32, ret_ptr: i32, ret_size: i32| -> Result<i32> {
            enter(&mut caller, "proxy_get_header_map_pairs");
            let Some(pairs) = caller.data_mut().map(kind) else {
                return Ok(status::BAD_ARGUMENT);
            };
            let bytes = abi::encode_map(pairs);
            give(&mut caller, &bytes, ret_ptr, ret_size)?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut caller: Caller<'_, Host>, kind: i32, ptr: i32, len: i32| -> Result<i32> {
            enter(&mut caller, "proxy_set_header_map_pairs");
            let bytes = read(&mut caller, ptr, len)?;
            let Some(pairs) = abi::decode_map(&bytes) else {
                return Ok(status::BAD_ARGUMENT);
            };
            let Some(map) = caller.data_mut().map(kind) else {
                return Ok(status::BAD_ARGUMENT);
            };
            *map = pairs;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut caller: Caller<'_, Host>,
         kind: i32,
         key_ptr: i32,
         key_len: i32,
         ret_ptr: i32,
         ret_size: i32|
         -> Result<i32> {
            enter(&mut caller, "proxy_get_header_map_value");
            let key = read_string(&mut caller, key_ptr, key_len)?;
            let Some(map) = caller.data_mut().map(kind) else {
                return Ok(status::BAD_ARGUMENT);
            };
            let Some(value) = map
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(&key))
                .map(|(_, value)| value.clone())
            else {
                return Ok(status::NOT_FOUND);
            };
            give(&mut caller, value.as_bytes(), ret_ptr, ret_size)?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut caller: Caller<'_, Host>,
         kind: i32,
         key_ptr: i32,
         key_len: i32,
         value_ptr: i32,
         value_len: i32|
         -> Result<i32> {
            enter(&mut caller, "proxy_replace_header_map_value");
            let key = read_string(&mut caller, key_ptr, key_len)?;
            let value = read_string(&mut caller, value_ptr, value_len)?;
            let Some(map) = caller.data_mut().map(kind) else {
                return Ok(status::BAD_ARGUMENT);
            };
            let mut found = false;
            map.retain_mut(|(name, old)| {
                if !name.eq_ignore_ascii_case(&key) {
                    return true;
                }
                if found {
                    return false;
                }
                found = true;
                *old = value.clone();
                true
            });
            if !found {
                map.push((key, value));
            }
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut caller: Caller<'_, Host>,
         kind: i32,
         key_ptr: i32,
         key_len: i32,
         value_ptr: i32,
         value_len: i32|
         -> Result<i32> {
            enter(&mut caller, "proxy_add_header_map_value");
            let key = read_string(&mut caller, key_ptr, key_len)?;
            let value = read_string(&mut caller, value_ptr, value_len)?;
            let Some(map) = caller.data_mut().map(kind) else {
                return Ok(status::BAD_ARGUMENT);
            };
            map.push((key, value));
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut caller: Caller<'_, Host>, kind: i32, key_ptr: i32, key_len: i32| -> Result<i32> {
            enter(&mut caller, "proxy_remove_header_map_value");
            let key = read_string(&mut caller, key_ptr, key_len)?;
            let Some(map) = caller.data_mut().map(kind) else {
                return Ok(status::BAD_ARGUMENT);
            };
            map.retain(|(name, _)| !name.eq_ignore_ascii_case(&key));
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut caller: Caller<'_, Host>,
         path_ptr: i32,
         path_len: i32,
         ret_ptr: i32,
         ret_size: i32|
         -> Result<i32> {
            enter(&mut caller, "proxy_get_property");
            let path = read(&mut caller, path_ptr, path_len)?;
            let value = match path.as_slice() {
                b"plugin_name" => caller.data().plugin_name.clone().into_bytes(),
                b"plugin_root_id" => caller.data().plugin_name.clone().into_bytes(),
                b"plugin_vm_id" => Vec::new(),
                _ => return Ok(status::NOT_FOUND),
            };
            give(&mut caller, &value, ret_ptr, ret_size)?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut caller: Caller<'_, Host>,
         key_ptr: i32,
         key_len: i32,
         ret_ptr: i32,
         ret_size: i32,
         ret_cas: i32|
         -> Result<i32> {
            enter(&mut caller, "proxy_get_shared_data");
            let key = read(&mut caller, key_ptr, key_len)?;
            let Some((value, cas)) = caller.data().shared.get(&key).cloned() else {
                return Ok(status::NOT_FOUND);
            };
            give(&mut caller, &value, ret_ptr, ret_size)?;
            write_u32(&mut caller, ret_cas, cas)?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut caller: Caller<'_, Host>,
         key_ptr: i32,
         key_len: i32,
         value_ptr: i32,
         value_len: i32,
         cas: i32|
         -> Result<i32> {
            enter(&mut caller, "proxy_set_shared_data");
            let key = read(&mut caller, key_ptr, key_len)?;
            let value = read(&mut caller, value_ptr, value_len)?;
            let host = caller.data_mut();
            // Envoy: cas 0 writes unconditionally, a missing key is inserted
            // whatever the cas, and one counter numbers every write.
            if let Some((_, current)) = host.shared.get(&key) {
                if cas != 0 && *current != cas as u32 {
                    return Ok(status::CAS_MISMATCH);
                }
            }
            host.cas = host.cas.wrapping_add(1).max(1);
            let next = host.cas;
            host.shared.insert(key, (value, next));
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_continue_stream",
        |mut caller: Caller<'_, Host>, kind: i32| -> i32 {
            enter(&mut caller, "proxy_continue_stream");
            let host = caller.data_mut();
            host.check_stream_context("continue_stream");
            match kind {
                abi::stream::REQUEST => host.stream.request_resumed = true,
                abi::stream::RESPONSE => host.stream.response_resumed = true,
                _ => return status::BAD_ARGUMENT,
            }
            status::OK
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_close_stream",
        |mut caller: Caller<'_, Host>, _kind: i32| -> i32 {
            enter(&mut caller, "proxy_close_stream");
            caller.data_mut().check_stream_context("close_stream");
            status::OK
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut caller: Caller<'_, Host>,
         code: i32,
         _details_ptr: i32,
         _details_len: i32,
         body_ptr: i32,
         body_len: i32,
         headers_ptr: i32,
         headers_len: i32,
         _grpc: i32|
         -> Result<i32> {
            enter(&mut caller, "proxy_send_local_response");
            let body = read(&mut caller, body_ptr, body_len)?;
            let headers = read(&mut caller, headers_ptr, headers_len)?;
            let Some(headers) = abi::decode_map(&headers) else {
                return Ok(status::BAD_ARGUMENT);
            };
            let host = caller.data_mut();
            host.check_stream_context("send_local_response");
            host.stream.local_response = Some(LocalResponse {
                status: code as u32,
                headers,
                body,
            });
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut caller: Caller<'_, Host>,
         cluster_ptr: i32,
         cluster_len: i32,
         headers_ptr: i32,
         headers_len: i32,
         body_ptr: i32,
         body_len: i32,
         trailers_ptr: i32,
         trailers_len: i32,
         _timeout: i32,
         ret_token: i32|
         -> Result<i32> {
            enter(&mut caller, "proxy_http_call");
            let cluster = read_string(&mut caller, cluster_ptr, cluster_len)?;
            let headers = read(&mut caller, headers_ptr, headers_len)?;
            read(&mut caller, body_ptr, body_len)?;
            read(&mut caller, trailers_ptr, trailers_len)?;
            let Some(headers) = abi::decode_map(&headers) else {
                return Ok(status::BAD_ARGUMENT);
            };
            let has = |name: &str| headers.iter().any(|(key, _)| key == name);
            let host = caller.data_mut();
            // Envoy: an unknown cluster or a missing pseudo-header is refused.
            if !host.clusters.contains(&cluster)
                || !has(":method")
                || !has(":path")
                || !has(":authority")
            {
                return Ok(status::BAD_ARGUMENT);
            }
            host.next_token += 1;
            let token = host.next_token;
            let index = host.stream.calls_dispatched;
            host.stream.calls.push((token, index));
            host.stream.calls_dispatched += 1;
            write_u32(&mut caller, ret_token, token)?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut caller: Caller<'_, Host>, context: i32| -> i32 {
            enter(&mut caller, "proxy_set_effective_context");
            caller.data_mut().effective_context = context as u32;
            status::OK
        },
    )?;
    linker.func_wrap("env", "proxy_done", |mut caller: Caller<'_, Host>| -> i32 {
        enter(&mut caller, "proxy_done");
        status::OK
    })?;
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut caller: Caller<'_, Host>, _kind: i32, _ptr: i32, _len: i32, ret: i32| -> Result<i32> {
            enter(&mut caller, "proxy_define_metric");
            let host = caller.data_mut();
            host.metrics.push(0);
            let id = host.metrics.len() as u32;
            write_u32(&mut caller, ret, id)?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_increment_metric",
        |mut caller: Caller<'_, Host>, id: i32, offset: i64| -> i32 {
            enter(&mut caller, "proxy_increment_metric");
            match caller
                .data_mut()
                .metrics
                .get_mut((id as usize).wrapping_sub(1))
            {
                Some(value) => {
                    *value = value.wrapping_add_signed(offset);
                    status::OK
                }
                None => status::NOT_FOUND,
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_record_metric",
        |mut caller: Caller<'_, Host>, id: i32, value: i64| -> i32 {
            enter(&mut caller, "proxy_record_metric");
            match caller
                .data_mut()
                .metrics
                .get_mut((id as usize).wrapping_sub(1))
            {
                Some(slot) => {
                    *slot = value as u64;
                    status::OK
                }
                None => status::NOT_FOUND,
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_metric",
        |mut caller: Caller<'_, Host>, id: i32, ret: i32| -> Result<i32> {
            enter(&mut caller, "proxy_get_metric");
            let Some(value) = caller
                .data()
                .metrics
                .get((id as usize).wrapping_sub(1))
                .copied()
            else {
                return Ok(status::NOT_FOUND);
            };
            write(&mut caller, ret, &value.to_le_bytes())?;
            Ok(status::OK)
        },
    )?;
    Ok(())
}

fn define_wasi(linker: &mut Linker<Host>) -> Result<()> {
    const WASI: &str = "wasi_snapshot_preview1";
    const ERRNO_SUCCESS: i32 = 0;
    const ERRNO_BADF: i32 = 8;
    linker.func_wrap(
        WASI,
        "fd_write",
        |mut caller: Caller<'_, Host>, fd: i32, iovs: i32, count: i32, ret: i32| -> Result<i32> {
            if fd != 1 && fd != 2 {
                return Ok(ERRNO_BADF);
            }
            let mut written = 0u32;
            for n in 0..count {
                let iov = read(&mut caller, iovs + n * 8, 8)?;
                let len = u32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                written += len;
            }
            write_u32(&mut caller, ret, written)?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    for name in ["environ_sizes_get", "args_sizes_get"] {
        linker.func_wrap(
            WASI,
            name,
            |mut caller: Caller<'_, Host>, count: i32, size: i32| -> Result<i32> {
                write_u32(&mut caller, count, 0)?;
                write_u32(&mut caller, size, 0)?;
                Ok(ERRNO_SUCCESS)
            },
        )?;
    }
    for name in ["environ_get", "args_get"] {
        linker.func_wrap(WASI, name, |_: Caller<'_, Host>, _: i32, _: i32| -> i32 {
            ERRNO_SUCCESS
        })?;
    }
    linker.func_wrap(
        WASI,
        "clock_time_get",
        |mut caller: Caller<'_, Host>, _id: i32, _precision: i64, ret: i32| -> Result<i32> {
            let host = caller.data_mut();
            host.clock += 1_000;
            let now = host.clock;
            write(&mut caller, ret, &now.to_le_bytes())?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(
        WASI,
        "random_get",
        |mut caller: Caller<'_, Host>, ptr: i32, len: i32| -> Result<i32> {
            // Deterministic bytes: the meter must give the same count twice.
            let bytes: Vec<u8> = (0..len as u32).map(|n| (n * 31 + 7) as u8).collect();
            write(&mut caller, ptr, &bytes)?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(WASI, "sched_yield", |_: Caller<'_, Host>| -> i32 {
        ERRNO_SUCCESS
    })?;
    linker.func_wrap(
        WASI,
        "proc_exit",
        |_: Caller<'_, Host>, code: i32| -> Result<()> {
            wasmtime::bail!("the guest called proc_exit({code})")
        },
    )?;
    Ok(())
}
