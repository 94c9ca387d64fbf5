//! Guest instructions of a plugin, per request and per phase, counted by pwf-test's wasm
//! backend: the project's one proxy-wasm host.
//!
//! [`Vm::load`] starts a plugin `.wasm` on a [`pwf_test::Host`] in wasm mode (its
//! `_initialize`, the root context, `proxy_on_vm_start` and `proxy_on_configure`).
//! [`Vm::request`] then drives one HTTP stream through the plugin the way Envoy does
//! (context create, request headers, the answers to the calls the plugin dispatched,
//! response headers, done, log, delete) and returns the fuel each phase consumed, with what
//! the plugin did ([`Outcome`]): the response headers it produced, its local response, its
//! log lines.
//!
//! Fuel counts wasm operators executed in the guest (wasmtime charges one unit per
//! operator, none for host functions), so it is deterministic: the same module and the
//! same inputs consume the same fuel on any machine.

mod abi;

use std::fmt;

pub use crate::abi::LogLevel;
use pwf_test::{Action, Direction, Host};
pub use pwf_test::{FunctionProfile, Profile};

/// A size of wasm linear memory, in 64 KiB pages.
pub const PAGE_SIZE: u64 = 65536;

/// What went wrong loading or driving a plugin.
#[derive(Debug)]
pub struct MeterError(String, bool);

impl MeterError {
    fn new(message: impl Into<String>) -> MeterError {
        MeterError(message.into(), false)
    }

    /// Whether the plugin refused its configuration (`proxy_on_configure`
    /// returned false), as opposed to failing.
    pub fn is_refusal(&self) -> bool {
        self.1
    }
}

impl fmt::Display for MeterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MeterError {}

/// The phases of one stream, in the order Envoy runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// `proxy_on_context_create` for the stream.
    Create,
    /// `proxy_on_request_headers`.
    RequestHeaders,
    /// Every `proxy_on_http_call_response`.
    CallResponses,
    /// `proxy_on_response_headers`.
    ResponseHeaders,
    /// `proxy_on_done`, `proxy_on_log` and `proxy_on_delete`.
    Teardown,
}

impl Phase {
    /// Every phase, in order.
    pub const ALL: [Phase; 5] = [
        Phase::Create,
        Phase::RequestHeaders,
        Phase::CallResponses,
        Phase::ResponseHeaders,
        Phase::Teardown,
    ];

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Create => "create",
            Phase::RequestHeaders => "request headers",
            Phase::CallResponses => "call responses",
            Phase::ResponseHeaders => "response headers",
            Phase::Teardown => "done/log/delete",
        }
    }
}

/// The fuel each phase of one stream consumed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fuel {
    per_phase: [u64; 5],
}

impl Fuel {
    /// The fuel of `phase`.
    pub fn phase(&self, phase: Phase) -> u64 {
        self.per_phase[phase as usize]
    }

    /// The fuel of the whole stream.
    pub fn total(&self) -> u64 {
        self.per_phase.iter().sum()
    }

    fn add(&mut self, phase: Phase, fuel: u64) {
        self.per_phase[phase as usize] += fuel;
    }

    /// Adds `other` phase by phase.
    pub fn accumulate(&mut self, other: &Fuel) {
        for (mine, theirs) in self.per_phase.iter_mut().zip(other.per_phase) {
            *mine += theirs;
        }
    }
}

/// The answer to one HTTP call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallResponse {
    /// Its headers, `:status` first; none means the call failed without a response.
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

/// The input of one stream.
#[derive(Clone, Debug, Default)]
pub struct Exchange {
    /// The request headers the plugin sees.
    pub request_headers: Vec<(String, String)>,
    /// The upstream's response headers (used unless the plugin answers
    /// locally).
    pub response_headers: Vec<(String, String)>,
    /// The answers to the calls the plugin dispatches in this stream: the
    /// `n`-th call gets answer `n % len` (none: every call fails without a
    /// response).
    pub call_responses: Vec<CallResponse>,
}

/// What the plugin did with one stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The response headers after the plugin's response-headers phase.
    pub response_headers: Vec<(String, String)>,
    /// The local response it sent, if any.
    pub local_response: Option<LocalResponse>,
    /// Its log lines (level and message), in order.
    pub logs: Vec<(LogLevel, String)>,
    /// How many calls it dispatched.
    pub calls: usize,
    /// Whether the request was paused and then resumed.
    pub request_resumed: bool,
    /// Whether the response was paused and then resumed.
    pub response_resumed: bool,
}

/// Settings of a [`Vm`].
#[derive(Clone, Debug)]
pub struct VmOptions {
    /// The plugin configuration bytes (`proxy_on_configure`).
    pub configuration: Vec<u8>,
    /// The level Envoy's `wasm` logger runs at: lines below it are dropped,
    /// and `proxy_get_log_level` returns it.
    pub log_level: LogLevel,
    /// The clusters `proxy_http_call` accepts.
    pub clusters: Vec<String>,
    /// The plugin name (property `plugin_name`).
    pub plugin_name: String,
    /// Whether to profile function by function ([`Vm::take_function_profile`]):
    /// slow, for finding where the fuel goes.
    pub function_profile: bool,
}

impl Default for VmOptions {
    fn default() -> VmOptions {
        VmOptions {
            configuration: Vec::new(),
            log_level: LogLevel::Info,
            clusters: vec!["httpbin".to_owned()],
            plugin_name: "bench".to_owned(),
            function_profile: false,
        }
    }
}

/// One plugin VM, configured and ready for streams.
pub struct Vm {
    host: Host,
    vm: pwf_test::Vm,
    plugin: pwf_test::Plugin,
    pages_at_instantiation: u64,
    startup_fuel: u64,
    logs_taken: usize,
}

fn pairs(headers: &pwf_test::Headers) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(key, value)| (key.to_owned(), String::from_utf8_lossy(value).into_owned()))
        .collect()
}

impl Vm {
    /// Compiles and instantiates `wasm`, then starts and configures the
    /// plugin. Fails if the plugin refuses its configuration.
    pub fn load(wasm: &[u8], options: VmOptions) -> Result<Vm, MeterError> {
        let mut builder = Host::builder()
            .wasm_bytes(wasm)
            .profile_functions(options.function_profile)
            .plugin_name(options.plugin_name.as_str())
            .log_level(options.log_level.to_host());
        for cluster in &options.clusters {
            builder = builder.cluster(cluster.as_str());
        }
        let host = builder.build();
        let vm = host
            .start_vm(|| {})
            .map_err(|error| MeterError::new(format!("start: {error}")))?;
        let pages_at_instantiation = vm.memory_pages().unwrap_or(0);
        let plugin = match vm.configure(&options.configuration) {
            Ok(plugin) => plugin,
            Err(pwf_test::ConfigureError::Rejected) => {
                let logs: Vec<String> = host.log_entries().into_iter().map(|e| e.message).collect();
                return Err(MeterError(
                    format!("proxy_on_configure returned false; logs: {logs:?}"),
                    true,
                ));
            }
            Err(error) => return Err(MeterError::new(format!("configure: {error}"))),
        };
        let startup_fuel = vm.fuel().unwrap_or(0);
        Ok(Vm {
            host,
            vm,
            plugin,
            pages_at_instantiation,
            startup_fuel,
            logs_taken: 0,
        })
    }

    /// Linear memory right after start-up (`_initialize`, the root context and
    /// `proxy_on_vm_start`), in pages.
    pub fn pages_at_instantiation(&self) -> u64 {
        self.pages_at_instantiation
    }

    /// Linear memory now, in pages.
    pub fn memory_pages(&self) -> u64 {
        self.vm.memory_pages().unwrap_or(0)
    }

    /// The fuel of `_initialize`, the root context, `on_vm_start` and
    /// `on_configure`.
    pub fn startup_fuel(&self) -> u64 {
        self.startup_fuel
    }

    /// Every log line since the last take (the startup's included), and clears them.
    pub fn take_logs(&mut self) -> Vec<(LogLevel, String)> {
        let entries = self.host.log_entries();
        let taken = entries
            .into_iter()
            .skip(self.logs_taken)
            .map(|entry| (LogLevel::from_host(entry.level), entry.message))
            .collect::<Vec<_>>();
        self.logs_taken += taken.len();
        taken
    }

    /// The function profile of every call so far, and clears it (empty
    /// unless [`VmOptions::function_profile`] is set).
    pub fn take_function_profile(&mut self) -> FunctionProfile {
        self.vm.take_function_profile().unwrap_or_default()
    }

    /// The profile of every call so far, and clears it.
    pub fn take_profile(&mut self) -> Profile {
        self.vm.take_profile().unwrap_or_default()
    }

    /// The value of a shared-data key, if set.
    pub fn shared_data(&self, key: &str) -> Option<Vec<u8>> {
        self.host.shared_data(key)
    }

    fn fuel(&self) -> u64 {
        self.vm.fuel().unwrap_or(0)
    }

    fn failed(&self, what: &str) -> MeterError {
        let logs: Vec<String> = self
            .host
            .log_entries()
            .into_iter()
            .map(|entry| entry.message)
            .collect();
        MeterError::new(format!(
            "{what}: {}; logs: {logs:?}",
            self.vm.failure().unwrap_or_default()
        ))
    }

    /// Drives one stream through the plugin and returns the fuel of each
    /// phase and what the plugin did.
    pub fn request(&mut self, exchange: &Exchange) -> Result<(Fuel, Outcome), MeterError> {
        let mut fuel = Fuel::default();
        let mut mark = self.fuel();
        let mut charge = |vm: &Vm, phase: Phase, fuel: &mut Fuel| {
            let now = vm.fuel();
            fuel.add(phase, now - mark);
            mark = now;
        };
        let stream = self.plugin.open_stream();
        charge(self, Phase::Create, &mut fuel);
        let action = stream.request_headers(&exchange.request_headers[..], false);
        charge(self, Phase::RequestHeaders, &mut fuel);
        if let Action::Failed(_) = action {
            return Err(self.failed("proxy_on_request_headers"));
        }
        let mut answered = 0;
        if action == Action::Pause {
            self.deliver_calls(&stream, exchange, &mut answered)?;
            charge(self, Phase::CallResponses, &mut fuel);
            if stream.resumed(Direction::Request).is_none() && stream.local_response().is_none() {
                return Err(MeterError::new(
                    "the request stayed paused after every call landed",
                ));
            }
        }
        // A local response ran the response phases already, in the callback that sent it.
        if stream.local_response().is_none() {
            let action = stream.response_headers(&exchange.response_headers[..], false);
            charge(self, Phase::ResponseHeaders, &mut fuel);
            if let Action::Failed(_) = action {
                return Err(self.failed("proxy_on_response_headers"));
            }
            if action == Action::Pause {
                self.deliver_calls(&stream, exchange, &mut answered)?;
                charge(self, Phase::CallResponses, &mut fuel);
                if stream.resumed(Direction::Response).is_none() {
                    return Err(MeterError::new(
                        "the response stayed paused after every call landed",
                    ));
                }
            }
        }
        stream
            .end()
            .map_err(|_| self.failed("proxy_on_done/log/delete"))?;
        charge(self, Phase::Teardown, &mut fuel);
        let outcome = Outcome {
            response_headers: pairs(&stream.response_header_map()),
            local_response: stream.local_response().map(|local| LocalResponse {
                status: local.status,
                headers: pairs(&local.headers),
                body: local.body,
            }),
            logs: self.take_logs(),
            calls: stream.calls().len(),
            request_resumed: stream.resumed(Direction::Request).is_some(),
            response_resumed: stream.resumed(Direction::Response).is_some(),
        };
        Ok((fuel, outcome))
    }

    /// Answers every call the stream has in flight, in dispatch order, until
    /// none is left: the `n`-th call of the stream gets answer `n % len`.
    fn deliver_calls(
        &self,
        stream: &pwf_test::Stream,
        exchange: &Exchange,
        answered: &mut usize,
    ) -> Result<(), MeterError> {
        loop {
            let pending = stream.pending_calls();
            let Some(call) = pending.first() else {
                return Ok(());
            };
            let answers = &exchange.call_responses;
            let response = match answers.len() {
                0 => CallResponse::default(),
                len => answers[*answered % len].clone(),
            };
            *answered += 1;
            match response.headers.split_first() {
                Some(((name, status), rest)) if name == ":status" => {
                    let status = status.parse().unwrap_or(200);
                    call.respond_with_trailers(
                        status,
                        rest,
                        &response.body,
                        &response.trailers[..],
                    );
                }
                _ => {
                    call.reset();
                }
            }
            if self.vm.failure().is_some() {
                return Err(self.failed("proxy_on_http_call_response"));
            }
        }
    }
}
