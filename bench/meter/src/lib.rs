//! A minimal proxy-wasm host on wasmtime that counts guest instructions.
//!
//! [`Vm::load`] instantiates a plugin `.wasm` with fuel metering on, runs
//! `_initialize`, creates the root context and runs `proxy_on_vm_start` and
//! `proxy_on_configure`. [`Vm::request`] then drives one HTTP stream through
//! the plugin the way Envoy does (context create, request headers, the
//! responses to the calls the plugin dispatched, response headers, done, log,
//! delete) and returns the fuel each phase consumed, with what the plugin did
//! ([`Outcome`]): the response headers it produced, its local response, its
//! log lines.
//!
//! Fuel counts wasm operators executed in the guest (wasmtime charges one unit
//! per operator, none for host functions), so it is deterministic: the same
//! module and the same inputs consume the same fuel on any machine.
//!
//! The host implements what the benchmarked plugins use, with Envoy's
//! semantics where they matter (shared data CAS, `http_call` argument checks);
//! an import it does not implement traps with the import's name, so a plugin
//! that needs more fails loudly instead of being measured wrong.

mod abi;
mod host;

use std::fmt;

use wasmtime::{Config, Engine, Instance, Linker, Memory, Module, Store, TypedFunc};

pub use crate::abi::LogLevel;
pub use crate::host::{CallResponse, FunctionProfile, LocalResponse, Profile};
use crate::host::{Host, Stream};

/// The fuel a single plugin call may use before the meter gives up.
const FUEL_LIMIT: u64 = 1 << 40;

/// The root context id, as Envoy numbers it.
const ROOT_CONTEXT: i32 = 1;

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

fn wasm_error(what: &str) -> impl Fn(wasmtime::Error) -> MeterError + '_ {
    move |error| MeterError::new(format!("{what}: {error:?}"))
}

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

/// The guest exports the host drives.
struct Exports {
    context_create: TypedFunc<(i32, i32), ()>,
    vm_start: TypedFunc<(i32, i32), i32>,
    configure: TypedFunc<(i32, i32), i32>,
    request_headers: TypedFunc<(i32, i32, i32), i32>,
    response_headers: TypedFunc<(i32, i32, i32), i32>,
    http_call_response: TypedFunc<(i32, i32, i32, i32, i32), ()>,
    done: TypedFunc<i32, i32>,
    log: TypedFunc<i32, ()>,
    delete: TypedFunc<i32, ()>,
}

/// One plugin VM, configured and ready for streams.
pub struct Vm {
    store: Store<Host>,
    memory: Memory,
    exports: Exports,
    next_context: i32,
    pages_at_instantiation: u64,
    startup_fuel: u64,
}

impl Vm {
    /// Compiles and instantiates `wasm`, then starts and configures the
    /// plugin. Fails if the plugin refuses its configuration.
    pub fn load(wasm: &[u8], options: VmOptions) -> Result<Vm, MeterError> {
        let mut config = Config::new();
        config.consume_fuel(true);
        // Fuel counts wasm operators, whatever machine code they become: the
        // optimizer would only add compile time (a fifth of the budget check's).
        config.cranelift_opt_level(wasmtime::OptLevel::None);
        let function_profile = options.function_profile;
        if function_profile {
            // A deadline of the current epoch stops at every function entry
            // and loop header.
            config.epoch_interruption(true);
        }
        let engine = Engine::new(&config).map_err(wasm_error("engine"))?;
        let module = Module::new(&engine, wasm).map_err(wasm_error("compile"))?;
        let mut linker = Linker::new(&engine);
        host::define(&mut linker).map_err(wasm_error("linker"))?;
        linker
            .define_unknown_imports_as_traps(&module)
            .map_err(wasm_error("linker"))?;
        let mut store = Store::new(&engine, Host::new(options));
        store.set_fuel(FUEL_LIMIT).map_err(wasm_error("fuel"))?;
        if function_profile {
            store.set_epoch_deadline(0);
            store.epoch_deadline_callback(|mut store| {
                let fuel = store.get_fuel()?;
                let trace = wasmtime::WasmBacktrace::capture(&store);
                let stack = trace
                    .frames()
                    .iter()
                    .map(|frame| {
                        frame
                            .func_name()
                            .map_or_else(|| format!("func {}", frame.func_index()), str::to_owned)
                    })
                    .collect();
                store.data_mut().functions.stop(fuel, Some(stack));
                Ok(wasmtime::UpdateDeadline::Continue(0))
            });
        }
        let instance = linker
            .instantiate(&mut store, &module)
            .map_err(wasm_error("instantiate"))?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| MeterError::new("the module exports no memory"))?;
        let exports = Exports::get(&instance, &mut store)?;
        let mut vm = Vm {
            store,
            memory,
            exports,
            next_context: ROOT_CONTEXT + 1,
            pages_at_instantiation: 0,
            startup_fuel: 0,
        };
        if let Ok(initialize) = instance.get_typed_func::<(), ()>(&mut vm.store, "_initialize") {
            vm.startup_fuel += vm.metered(|store| initialize.call(store, ()), "_initialize")?;
        }
        vm.pages_at_instantiation = vm.memory_pages();
        let create = vm.exports.context_create.clone();
        vm.startup_fuel += vm.metered(
            |store| create.call(store, (ROOT_CONTEXT, 0)),
            "proxy_on_context_create(root)",
        )?;
        vm.store.data_mut().effective_context = ROOT_CONTEXT as u32;
        let vm_start = vm.exports.vm_start.clone();
        let mut started = 0;
        vm.startup_fuel += vm.metered(
            |store| {
                started = vm_start.call(store, (ROOT_CONTEXT, 0))?;
                Ok(())
            },
            "proxy_on_vm_start",
        )?;
        if started == 0 {
            return Err(MeterError::new("proxy_on_vm_start returned false"));
        }
        let size = vm.store.data().configuration.len() as i32;
        let configure = vm.exports.configure.clone();
        let mut configured = 0;
        vm.startup_fuel += vm.metered(
            |store| {
                configured = configure.call(store, (ROOT_CONTEXT, size))?;
                Ok(())
            },
            "proxy_on_configure",
        )?;
        if configured == 0 {
            let logs = vm.store.data().logs.clone();
            return Err(MeterError(
                format!("proxy_on_configure returned false; logs: {logs:?}"),
                true,
            ));
        }
        Ok(vm)
    }

    /// Linear memory right after instantiation and `_initialize`, in pages.
    pub fn pages_at_instantiation(&self) -> u64 {
        self.pages_at_instantiation
    }

    /// Linear memory now, in pages.
    pub fn memory_pages(&self) -> u64 {
        self.memory.size(&self.store)
    }

    /// The fuel of `_initialize`, the root context, `on_vm_start` and
    /// `on_configure`.
    pub fn startup_fuel(&self) -> u64 {
        self.startup_fuel
    }

    /// Every log line so far, the startup's included, and clears them.
    pub fn take_logs(&mut self) -> Vec<(LogLevel, String)> {
        std::mem::take(&mut self.store.data_mut().logs)
    }

    /// The function profile of every call so far, and clears it (empty
    /// unless [`VmOptions::function_profile`] is set).
    pub fn take_function_profile(&mut self) -> FunctionProfile {
        std::mem::take(&mut self.store.data_mut().functions)
    }

    /// The profile of every call so far, and clears it.
    pub fn take_profile(&mut self) -> Profile {
        std::mem::take(&mut self.store.data_mut().profile)
    }

    /// Sets the level of Envoy's `wasm` logger.
    pub fn set_log_level(&mut self, level: LogLevel) {
        self.store.data_mut().log_level = level;
    }

    /// The value of a shared-data key, if set.
    pub fn shared_data(&self, key: &str) -> Option<Vec<u8>> {
        self.store
            .data()
            .shared
            .get(key.as_bytes())
            .map(|(value, _)| value.clone())
    }

    /// Runs `call` on a full fuel tank and returns the fuel it consumed.
    fn metered(
        &mut self,
        call: impl FnOnce(&mut Store<Host>) -> wasmtime::Result<()>,
        what: &'static str,
    ) -> Result<u64, MeterError> {
        self.store
            .set_fuel(FUEL_LIMIT)
            .map_err(wasm_error("fuel"))?;
        self.store.data_mut().profile.start(what, FUEL_LIMIT);
        call(&mut self.store).map_err(|error| {
            let logs = &self.store.data().logs;
            MeterError::new(format!("{what}: {error:?}; logs: {logs:?}"))
        })?;
        let left = self.store.get_fuel().map_err(wasm_error("fuel"))?;
        self.store.data_mut().profile.cross("return", left);
        self.store.data_mut().functions.stop(left, None);
        Ok(FUEL_LIMIT - left)
    }

    /// Drives one stream through the plugin and returns the fuel of each
    /// phase and what the plugin did.
    pub fn request(&mut self, exchange: &Exchange) -> Result<(Fuel, Outcome), MeterError> {
        let context = self.next_context;
        self.next_context += 1;
        let logs_before = self.store.data().logs.len();
        {
            let host = self.store.data_mut();
            host.stream = Stream::new(context as u32, exchange);
            host.effective_context = context as u32;
        }
        let mut fuel = Fuel::default();
        let exports = &self.exports;
        let (create, request_headers, response_headers) = (
            exports.context_create.clone(),
            exports.request_headers.clone(),
            exports.response_headers.clone(),
        );
        let (done, log, delete) = (
            exports.done.clone(),
            exports.log.clone(),
            exports.delete.clone(),
        );

        fuel.add(
            Phase::Create,
            self.metered(
                |store| create.call(store, (context, ROOT_CONTEXT)),
                "proxy_on_context_create",
            )?,
        );
        let headers = exchange.request_headers.len() as i32;
        let mut action = 0;
        fuel.add(
            Phase::RequestHeaders,
            self.metered(
                |store| {
                    store.data_mut().effective_context = context as u32;
                    action = request_headers.call(store, (context, headers, 0))?;
                    Ok(())
                },
                "proxy_on_request_headers",
            )?,
        );
        if action != 0 {
            self.deliver_calls(context, exchange, &mut fuel)?;
            let stream = &self.store.data().stream;
            if !stream.request_resumed && stream.local_response.is_none() {
                return Err(MeterError::new(
                    "the request stayed paused after every call landed",
                ));
            }
        }
        {
            let host = self.store.data_mut();
            if let Some(local) = &host.stream.local_response {
                let mut headers = vec![(":status".to_owned(), local.status.to_string())];
                headers.extend(local.headers.iter().cloned());
                host.stream.response_headers = headers;
            }
        }
        let headers = self.store.data().stream.response_headers.len() as i32;
        let mut action = 0;
        fuel.add(
            Phase::ResponseHeaders,
            self.metered(
                |store| {
                    store.data_mut().effective_context = context as u32;
                    action = response_headers.call(store, (context, headers, 0))?;
                    Ok(())
                },
                "proxy_on_response_headers",
            )?,
        );
        if action != 0 {
            self.deliver_calls(context, exchange, &mut fuel)?;
            if !self.store.data().stream.response_resumed {
                return Err(MeterError::new(
                    "the response stayed paused after every call landed",
                ));
            }
        }
        fuel.add(
            Phase::Teardown,
            self.metered(
                |store| {
                    store.data_mut().effective_context = context as u32;
                    done.call(&mut *store, context)?;
                    log.call(&mut *store, context)?;
                    delete.call(&mut *store, context)
                },
                "proxy_on_done/log/delete",
            )?,
        );
        let host = self.store.data_mut();
        let stream = std::mem::take(&mut host.stream);
        let outcome = Outcome {
            response_headers: stream.response_headers,
            local_response: stream.local_response,
            logs: host.logs.split_off(logs_before),
            calls: stream.calls_dispatched,
            request_resumed: stream.request_resumed,
            response_resumed: stream.response_resumed,
        };
        if let Some(problem) = host.problems.first() {
            return Err(MeterError::new(format!("host misuse: {problem}")));
        }
        Ok((fuel, outcome))
    }

    /// Answers every call the stream has in flight, in dispatch order, until
    /// none is left.
    fn deliver_calls(
        &mut self,
        context: i32,
        exchange: &Exchange,
        fuel: &mut Fuel,
    ) -> Result<(), MeterError> {
        let callback = self.exports.http_call_response.clone();
        loop {
            let next = {
                let stream = &mut self.store.data_mut().stream;
                if stream.calls.is_empty() {
                    break;
                }
                let (token, index) = stream.calls.remove(0);
                let answers = &exchange.call_responses;
                let response = match answers.len() {
                    0 => CallResponse::default(),
                    len => answers[index % len].clone(),
                };
                (token, response)
            };
            let (token, response) = next;
            let headers = response.headers.len() as i32;
            let body = response.body.len() as i32;
            let trailers = response.trailers.len() as i32;
            self.store.data_mut().stream.call_response = response;
            fuel.add(
                Phase::CallResponses,
                self.metered(
                    |store| {
                        store.data_mut().effective_context = ROOT_CONTEXT as u32;
                        callback.call(store, (context, token as i32, headers, body, trailers))
                    },
                    "proxy_on_http_call_response",
                )?,
            );
            self.store.data_mut().stream.call_response = CallResponse::default();
        }
        Ok(())
    }
}

impl Exports {
    fn get(instance: &Instance, store: &mut Store<Host>) -> Result<Exports, MeterError> {
        fn get<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
            instance: &Instance,
            store: &mut Store<Host>,
            name: &str,
        ) -> Result<TypedFunc<P, R>, MeterError> {
            instance
                .get_typed_func(&mut *store, name)
                .map_err(|error| MeterError::new(format!("export {name}: {error:?}")))
        }
        Ok(Exports {
            context_create: get(instance, store, "proxy_on_context_create")?,
            vm_start: get(instance, store, "proxy_on_vm_start")?,
            configure: get(instance, store, "proxy_on_configure")?,
            request_headers: get(instance, store, "proxy_on_request_headers")?,
            response_headers: get(instance, store, "proxy_on_response_headers")?,
            http_call_response: get(instance, store, "proxy_on_http_call_response")?,
            done: get(instance, store, "proxy_on_done")?,
            log: get(instance, store, "proxy_on_log")?,
            delete: get(instance, store, "proxy_on_delete")?,
        })
    }
}
