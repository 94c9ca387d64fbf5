//! A raw proxy-wasm SDK plugin whose behaviour each test scripts with a closure.
//!
//! The VM configuration names the script; the plugin runs it at every event. The script
//! answers `true` for Continue (or "accepted") and `false` for Pause (or "rejected").

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType};

/// A plugin event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    VmStart,
    Configure(usize),
    RequestHeaders(usize, bool),
    RequestBody(usize, bool),
    ResponseHeaders(usize, bool),
    ResponseBody(usize, bool),
    CallResponse {
        token: u32,
        headers: usize,
        body: usize,
        trailers: usize,
    },
    Tick,
    QueueReady(u32),
    Done,
    Log,
}

pub type Script = Arc<dyn Fn(Event) -> bool + Send + Sync>;

static SCRIPTS: Mutex<Option<HashMap<String, Script>>> = Mutex::new(None);

/// Registers a script under a unique name and returns the name, to pass as the VM
/// configuration.
pub fn script(name: &str, f: impl Fn(Event) -> bool + Send + Sync + 'static) -> String {
    SCRIPTS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(name.to_string(), Arc::new(f));
    name.to_string()
}

fn find(name: &str) -> Option<Script> {
    SCRIPTS.lock().unwrap().as_ref()?.get(name).cloned()
}

/// The plugin's root-context factory.
pub fn root(_context_id: u32) -> Box<dyn RootContext> {
    Box::new(Root { script: None })
}

/// The plugin's entry function, as `proxy_wasm::main!` would run it.
pub fn entry() {
    proxy_wasm::set_root_context(root);
}

struct Root {
    script: Option<Script>,
}

impl Root {
    fn run(&self, event: Event) -> bool {
        self.script.as_ref().is_none_or(|script| script(event))
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, trailers: usize) {
        self.run(Event::CallResponse {
            token,
            headers,
            body,
            trailers,
        });
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        let name = hostcalls::get_buffer(BufferType::VmConfiguration, 0, usize::MAX)
            .unwrap()
            .unwrap_or_default();
        self.script = find(&String::from_utf8(name).unwrap());
        self.run(Event::VmStart)
    }

    fn on_configure(&mut self, size: usize) -> bool {
        self.run(Event::Configure(size))
    }

    fn on_tick(&mut self) {
        self.run(Event::Tick);
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        self.run(Event::QueueReady(queue_id));
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            script: self.script.clone(),
        }))
    }
}

struct Stream {
    script: Option<Script>,
}

impl Stream {
    fn run(&self, event: Event) -> bool {
        self.script.as_ref().is_none_or(|script| script(event))
    }

    fn action(&self, event: Event) -> Action {
        if self.run(event) {
            Action::Continue
        } else {
            Action::Pause
        }
    }
}

impl Context for Stream {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, trailers: usize) {
        self.run(Event::CallResponse {
            token,
            headers,
            body,
            trailers,
        });
    }

    fn on_done(&mut self) -> bool {
        self.run(Event::Done)
    }
}

impl HttpContext for Stream {
    fn on_log(&mut self) {
        self.run(Event::Log);
    }

    fn on_http_request_headers(&mut self, n: usize, eos: bool) -> Action {
        self.action(Event::RequestHeaders(n, eos))
    }

    fn on_http_request_body(&mut self, n: usize, eos: bool) -> Action {
        self.action(Event::RequestBody(n, eos))
    }

    fn on_http_response_headers(&mut self, n: usize, eos: bool) -> Action {
        self.action(Event::ResponseHeaders(n, eos))
    }

    fn on_http_response_body(&mut self, n: usize, eos: bool) -> Action {
        self.action(Event::ResponseBody(n, eos))
    }
}

/// Raw host calls, to see the statuses the SDK would panic on.
pub mod raw {
    extern "C" {
        pub fn proxy_get_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
            return_value_data: *mut *mut u8,
            return_value_size: *mut usize,
        ) -> u32;
        pub fn proxy_http_call(
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
        ) -> u32;
        pub fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
        pub fn proxy_set_effective_context(context_id: u32) -> u32;
        pub fn proxy_set_property(
            path_data: *const u8,
            path_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> u32;
    }

    /// The status of reading request header `name`.
    pub fn request_header_status(name: &str) -> u32 {
        let mut data = std::ptr::null_mut();
        let mut size = 0;
        let status = unsafe {
            proxy_get_header_map_value(0, name.as_ptr(), name.len(), &mut data, &mut size)
        };
        if !data.is_null() {
            drop(unsafe { Vec::from_raw_parts(data, size, size) });
        }
        status
    }
}

/// Serializes header pairs the way the SDK does.
pub fn serialize(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut bytes = (pairs.len() as u32).to_le_bytes().to_vec();
    for (k, v) in pairs {
        bytes.extend_from_slice(&(k.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        bytes.extend_from_slice(k.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(v.as_bytes());
        bytes.push(0);
    }
    bytes
}
