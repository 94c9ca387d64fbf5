//! The wasm backend: the plugin's compiled module runs in wasmtime, on its VM's thread,
//! against the same host model as the native backend (`abi`, bound by `imports`), with the
//! WASI functions Envoy provides and no others.
//!
//! Fuel is on: every wasm operator the guest runs costs one unit, so the count is the
//! same on any machine. A trap fails the VM with the panic message the plugin logged.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use wasmtime::{Caller, Config, Engine, Extern, Instance, Linker, Module, Store, Val};

use crate::abi::{self, Fault};
use crate::guest::Export;
use crate::profile::{FunctionProfile, Profile};
use crate::runtime::current;

/// The fuel a VM starts with: far more than any test runs.
const FUEL: u64 = u64::MAX / 2;

/// The data of a VM's store.
#[derive(Default)]
pub(crate) struct Ctx {
    /// The state of `random_get`'s generator.
    random: u64,
    /// Where the fuel went between host calls.
    profile: Profile,
    /// Where the fuel went function by function (when profiling functions).
    functions: FunctionProfile,
}

/// Where a module comes from.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    /// A `.wasm` file.
    Path(PathBuf),
    /// The bytes of one.
    Bytes(std::sync::Arc<[u8]>),
    /// The release module of a package, built before it is loaded.
    Package(String),
}

/// A module instance, on its VM thread.
struct WasmVm {
    store: Store<Ctx>,
    instance: Instance,
}

thread_local! {
    static GUEST: RefCell<Option<WasmVm>> = const { RefCell::new(None) };
}

/// The panic payload of a trap: the message the VM fails with.
pub(crate) struct Trapped(pub(crate) String);

/// The engine: fuel on; with epoch interruption too when profiling functions (a deadline
/// of the current epoch stops at every function entry and loop header).
fn engine(profiling: bool) -> &'static Engine {
    static ENGINES: [OnceLock<Engine>; 2] = [OnceLock::new(), OnceLock::new()];
    ENGINES[usize::from(profiling)].get_or_init(|| {
        let mut config = Config::new();
        config.consume_fuel(true);
        // Fuel counts wasm operators whatever machine code they become: the optimizer
        // would only add compile time.
        config.cranelift_opt_level(wasmtime::OptLevel::None);
        config.epoch_interruption(profiling);
        Engine::new(&config).expect("pwf-test: wasmtime rejects its own configuration")
    })
}

/// Compiles a module; a file once per test process (again if the file changes).
pub(crate) fn load(source: &Source, profiling: bool) -> Result<Module, String> {
    type Cache = Mutex<HashMap<(PathBuf, bool), (Option<SystemTime>, Module)>>;
    static MODULES: OnceLock<Cache> = OnceLock::new();
    let built;
    let path = match source {
        Source::Path(path) => path,
        Source::Package(package) => {
            built = built_module(package)?;
            &built
        }
        Source::Bytes(bytes) => {
            return Module::new(engine(profiling), bytes)
                .map_err(|error| format!("cannot compile the module: {error:#}"));
        }
    };
    let modified = std::fs::metadata(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?
        .modified()
        .ok();
    let cache = MODULES.get_or_init(Default::default);
    let mut cache = cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let key = (path.clone(), profiling);
    if let Some((when, module)) = cache.get(&key) {
        if *when == modified {
            return Ok(module.clone());
        }
    }
    let module = Module::from_file(engine(profiling), path)
        .map_err(|error| format!("cannot compile {}: {error:#}", path.display()))?;
    cache.insert(key, (modified, module.clone()));
    Ok(module)
}

/// The release module of the crate under test, built first (see [`built_module`]): cargo
/// sets `CARGO_PKG_NAME` when it runs a test binary.
pub(crate) fn crate_module() -> Result<PathBuf, String> {
    let package = std::env::var("CARGO_PKG_NAME").map_err(|_| {
        "pwf-test: wasm mode needs CARGO_PKG_NAME (set by `cargo test`) to find the \
         module of the crate under test; or give the path with `HostBuilder::wasm_module`"
            .to_string()
    })?;
    built_module(&package)
}

/// `package`'s release module, after `cargo build --target wasm32-wasip1 --release -p
/// <package>` has run once in this test process: a test never runs a module that is
/// missing, or older than the code. When the module is fresh, cargo only checks.
pub(crate) fn built_module(package: &str) -> Result<PathBuf, String> {
    static BUILT: Mutex<Vec<(String, Result<PathBuf, String>)>> = Mutex::new(Vec::new());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, result)) = built.iter().find(|(name, _)| name == package) {
        return result.clone();
    }
    let result = build(package);
    built.push((package.to_owned(), result.clone()));
    result
}

fn build(package: &str) -> Result<PathBuf, String> {
    let command = format!("cargo build --target wasm32-wasip1 --release -p {package}");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cargo = std::process::Command::new(cargo);
    cargo
        .args([
            "build",
            "--quiet",
            "--target",
            "wasm32-wasip1",
            "--release",
            "-p",
        ])
        .arg(package)
        .env("CARGO_TARGET_DIR", target_dir());
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        cargo.current_dir(dir);
    }
    let output = cargo
        .output()
        .map_err(|error| format!("pwf-test: wasm mode: `{command}` did not start: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "pwf-test: wasm mode: `{command}` failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        ));
    }
    let path = module_path(package);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "pwf-test: wasm mode: `{command}` wrote no {} (is `{package}` a `cdylib`?)",
            path.display()
        ))
    }
}

/// Where `cargo build --target wasm32-wasip1 --release -p <package>` writes the module.
pub(crate) fn module_path(package: &str) -> PathBuf {
    let file = format!("{}.wasm", package.replace('-', "_"));
    target_dir()
        .join("wasm32-wasip1")
        .join("release")
        .join(file)
}

/// Says that the module at `path` is missing.
pub(crate) fn missing(path: &Path) -> String {
    format!("pwf-test: wasm mode: {} is missing", path.display())
}

/// The target directory: `CARGO_TARGET_DIR`, else the one holding this test binary
/// (cargo marks it with `CACHEDIR.TAG`), else the workspace's `target`.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        if dir.is_absolute() {
            return dir;
        }
        if let Ok(cwd) = std::env::current_dir() {
            return cwd.join(dir);
        }
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe
            .ancestors()
            .skip(1)
            .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        {
            return dir.to_path_buf();
        }
    }
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    manifest
        .as_deref()
        .and_then(|dir| dir.ancestors().find(|dir| dir.join("target").is_dir()))
        .map_or_else(|| PathBuf::from("target"), |dir| dir.join("target"))
}

/// Whether `engine` is the one that profiles functions.
fn profiling(engine: &Engine) -> bool {
    Engine::same(engine, self::engine(true))
}

/// Instantiates `module` for the calling VM thread and runs its `_initialize` (the
/// plugin's registration), as Envoy does when it loads a module.
pub(crate) fn start(module: &Module) -> Result<(), String> {
    for import in module.imports() {
        if (import.module(), import.name()) == ("env", "pwf_main_registers_the_plugin") {
            return Err(
                "the module does not register a plugin: its `_initialize` imports \
                 `env.pwf_main_registers_the_plugin`, which `pwf::main!(YourPlugin);` \
                 defines (Envoy refuses to load it: missing import)"
                    .to_string(),
            );
        }
    }
    let engine = module.engine();
    let mut linker = Linker::new(engine);
    define_env(&mut linker).map_err(|error| format!("pwf-test: {error:#}"))?;
    define_wasi(&mut linker).map_err(|error| format!("pwf-test: {error:#}"))?;
    let mut store = Store::new(
        engine,
        Ctx {
            random: 0x9e37_79b9_7f4a_7c15,
            ..Ctx::default()
        },
    );
    store.set_fuel(FUEL).map_err(|error| format!("{error}"))?;
    if profiling(engine) {
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
    let instance = linker.instantiate(&mut store, module).map_err(|error| {
        format!("the module cannot be loaded (Envoy refuses it too): {error:#}")
    })?;
    GUEST.with(|guest| *guest.borrow_mut() = Some(WasmVm { store, instance }));
    if let Some(initialize) = GUEST.with(|guest| {
        let mut guest = guest.borrow_mut();
        let vm = guest.as_mut()?;
        vm.instance.get_func(&mut vm.store, "_initialize")
    }) {
        run(|store| initialize.call(store, &[], &mut []), "_initialize")?;
    }
    Ok(())
}

/// The profile between host calls of the calling thread's module so far, and clears it
/// (`None` if the thread runs natively).
pub(crate) fn take_profile() -> Option<Profile> {
    with_ctx(|ctx| std::mem::take(&mut ctx.profile))
}

/// The function profile of the calling thread's module so far, and clears it.
pub(crate) fn take_function_profile() -> Option<FunctionProfile> {
    with_ctx(|ctx| std::mem::take(&mut ctx.functions))
}

fn with_ctx<R>(f: impl FnOnce(&mut Ctx) -> R) -> Option<R> {
    GUEST.with(|guest| {
        let mut guest = guest.borrow_mut();
        Some(f(guest.as_mut()?.store.data_mut()))
    })
}

/// Runs `export` if the calling thread runs a module (`None` if it runs natively).
/// A trap unwinds with [`Trapped`], which fails the VM.
pub(crate) fn call(export: Export) -> Option<u32> {
    let func = GUEST.with(|guest| {
        let mut guest = guest.borrow_mut();
        let vm = guest.as_mut()?;
        Some(vm.instance.get_func(&mut vm.store, export.name()))
    })?;
    // Envoy skips an export the module does not have.
    let Some(func) = func else {
        return Some(0);
    };
    let args: Vec<Val> = export
        .args()
        .into_iter()
        .map(|arg| Val::I32(arg as i32))
        .collect();
    let outcome = run(
        |store| {
            let mut results = vec![Val::I32(0); func.ty(&*store).results().len()];
            func.call(&mut *store, &args, &mut results)?;
            Ok(results.first().and_then(Val::i32).unwrap_or(0) as u32)
        },
        export.name(),
    );
    match outcome {
        Ok(value) => Some(value),
        Err(message) => std::panic::resume_unwind(Box::new(Trapped(message))),
    }
}

/// Runs a call into the module, then records the VM's fuel and memory in the host state.
/// `Err` carries the message a trap fails the VM with.
fn run<R>(
    call: impl FnOnce(&mut Store<Ctx>) -> wasmtime::Result<R>,
    what: &'static str,
) -> Result<R, String> {
    let logs_before = current().map_or(0, |(shared, _)| shared.lock().logs.len());
    // The guest's own calls back into the host lock this thread's guest again only
    // through the store they are given, never through `GUEST`.
    let (result, fuel, pages) = GUEST.with(|guest| {
        let mut guest = guest.borrow_mut();
        let vm = guest
            .as_mut()
            .expect("pwf-test: no module on this VM thread");
        let before = vm.store.get_fuel().unwrap_or(FUEL);
        vm.store.data_mut().profile.start(what, before);
        let result = call(&mut vm.store);
        let left = vm.store.get_fuel().unwrap_or(FUEL);
        let data = vm.store.data_mut();
        data.profile.cross("return", left);
        data.functions.stop(left, None);
        let fuel = FUEL - left;
        let pages = vm
            .instance
            .get_memory(&mut vm.store, "memory")
            .map(|memory| memory.size(&vm.store));
        (result, fuel, pages)
    });
    let Some((shared, index)) = current() else {
        return result.map_err(|error| format!("{what}: {}", error.root_cause()));
    };
    let mut state = shared.lock();
    if let Some(vm) = state.vm(index) {
        vm.fuel = Some(fuel);
        vm.memory_pages = pages;
    }
    result.map_err(|error| {
        let logged = state.logs[logs_before.min(state.logs.len())..]
            .iter()
            .find(|entry| entry.vm == index && entry.level == proxy_wasm::types::LogLevel::Critical)
            .map(|entry| entry.message.clone());
        match logged {
            Some(message) => message,
            // The trap itself, without wasmtime's backtrace of the module.
            None => format!("wasm trap in {what}: {}", error.root_cause()),
        }
    })
}

/// A module's linear memory, as the host model sees it from inside a host call.
struct WasmMemory<'a, 'b> {
    caller: &'a mut Caller<'b, Ctx>,
    memory: wasmtime::Memory,
    /// A trap inside `proxy_on_memory_allocate`: the host call ends with it.
    trap: Option<wasmtime::Error>,
}

impl<'a, 'b> WasmMemory<'a, 'b> {
    fn new(caller: &'a mut Caller<'b, Ctx>) -> wasmtime::Result<Self> {
        let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
            wasmtime::bail!("the module exports no memory");
        };
        Ok(WasmMemory {
            caller,
            memory,
            trap: None,
        })
    }

    fn finish(self, answer: abi::Answer) -> wasmtime::Result<u32> {
        match self.trap {
            Some(trap) => Err(trap),
            None => Ok(abi::code(answer)),
        }
    }
}

impl abi::Memory for WasmMemory<'_, '_> {
    fn read(&mut self, address: usize, size: usize) -> Result<Vec<u8>, Fault> {
        let end = address.checked_add(size).ok_or(Fault)?;
        let data = self.memory.data(&*self.caller);
        data.get(address..end).map(<[u8]>::to_vec).ok_or(Fault)
    }

    fn write(&mut self, address: usize, bytes: &[u8]) -> Result<(), Fault> {
        let end = address.checked_add(bytes.len()).ok_or(Fault)?;
        let data = self.memory.data_mut(&mut *self.caller);
        data.get_mut(address..end)
            .ok_or(Fault)?
            .copy_from_slice(bytes);
        Ok(())
    }

    fn word_size(&self) -> usize {
        4
    }

    fn allocate(&mut self, size: usize) -> Result<usize, Fault> {
        let Some(Extern::Func(allocate)) = self.caller.get_export("proxy_on_memory_allocate")
        else {
            return Err(Fault);
        };
        let size = u32::try_from(size).map_err(|_| Fault)?;
        let result = allocate
            .typed::<u32, u32>(&*self.caller)
            .and_then(|allocate| allocate.call(&mut *self.caller, size));
        match result {
            Ok(0) => Err(Fault),
            Ok(address) => Ok(address as usize),
            Err(trap) => {
                self.trap = Some(trap);
                Err(Fault)
            }
        }
    }
}

macro_rules! wasm_type {
    (ptr) => {
        u32
    };
    (size) => {
        u32
    };
    (bool) => {
        i32
    };
    ($kind:ident) => {
        $kind
    };
}

macro_rules! from_wasm {
    (ptr, $value:ident) => {
        $value as usize
    };
    (size, $value:ident) => {
        $value as usize
    };
    (bool, $value:ident) => {
        $value != 0
    };
    ($kind:ident, $value:ident) => {
        $value
    };
}

macro_rules! wasm_imports {
    ($(fn $name:ident($($arg:ident: $kind:ident),* $(,)?);)*) => {
        /// Binds every proxy-wasm import to the host model.
        fn define_env(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
            $(
                linker.func_wrap(
                    "env",
                    stringify!($name),
                    |mut caller: Caller<'_, Ctx>, $($arg: wasm_type!($kind)),*| {
                        let fuel = caller.get_fuel().unwrap_or(0);
                        caller.data_mut().profile.import(stringify!($name), fuel);
                        let mut memory = WasmMemory::new(&mut caller)?;
                        let answer = abi::$name(&mut memory, $(from_wasm!($kind, $arg)),*);
                        memory.finish(answer)
                    },
                )?;
            )*
            Ok(())
        }
    };
}

crate::imports::for_each_import!(wasm_imports);

/// WASI's `errno` values the functions below answer.
mod errno {
    pub(super) const SUCCESS: u32 = 0;
    pub(super) const BADF: u32 = 8;
    pub(super) const INVAL: u32 = 28;
    pub(super) const NOSYS: u32 = 52;
}

/// Why a call of WASI `poll_oneoff` (`std::thread::sleep`, a blocking wait) fails the VM.
const POLL_ONEOFF: &str = "the plugin called WASI `poll_oneoff` (`std::thread::sleep` or a \
    blocking wait): Envoy 1.40 answers it at once, without an event, so in Envoy the sleep \
    returns without waiting or panics the VM (`left: 58, right: 27`), depending on leftover \
    memory. A phase cannot wait; pause it on a call or a timer instead";

/// The WASI functions Envoy 1.40 provides (proxy-wasm-cpp-host), answering as it does.
/// An import outside this list makes instantiation fail, as Envoy refuses such a module.
fn define_wasi(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    const WASI: &str = "wasi_snapshot_preview1";

    fn memory<'a, 'b>(caller: &'a mut Caller<'b, Ctx>) -> wasmtime::Result<WasmMemory<'a, 'b>> {
        WasmMemory::new(caller)
    }
    fn fault(_: Fault) -> wasmtime::Error {
        wasmtime::Error::msg("out-of-bounds guest pointer in a WASI call")
    }
    use abi::Memory as _;

    // Standard output and error go to Envoy's log, at info and error.
    linker.func_wrap(
        WASI,
        "fd_write",
        |mut caller: Caller<'_, Ctx>, fd: u32, iovs: u32, count: u32, written: u32| {
            if fd != 1 && fd != 2 {
                return Ok(errno::BADF);
            }
            let mut memory = memory(&mut caller)?;
            let mut text = Vec::new();
            for n in 0..count as usize {
                let iov = memory.read(iovs as usize + n * 8, 8).map_err(fault)?;
                let address = u32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]) as usize;
                let size = u32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]) as usize;
                text.extend(memory.read(address, size).map_err(fault)?);
            }
            let size = text.len() as u32;
            memory
                .write(written as usize, &size.to_le_bytes())
                .map_err(fault)?;
            let level = if fd == 1 { 2 } else { 4 };
            let line = String::from_utf8_lossy(&text);
            let line = line.strip_suffix('\n').unwrap_or(&line).to_string();
            if let Some((shared, vm)) = current() {
                shared.lock().log(vm, level, line);
            }
            Ok(errno::SUCCESS)
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_fdstat_get",
        |mut caller: Caller<'_, Ctx>, fd: u32, stat: u32| {
            if fd != 1 && fd != 2 {
                return Ok(errno::BADF);
            }
            // A character device, no flags, the rights to write.
            let mut bytes = [0u8; 24];
            bytes[0] = 2;
            bytes[8..16].copy_from_slice(&64u64.to_le_bytes());
            memory(&mut caller)?
                .write(stat as usize, &bytes)
                .map_err(fault)?;
            Ok(errno::SUCCESS)
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_read",
        |_: Caller<'_, Ctx>, _: u32, _: u32, _: u32, _: u32| errno::NOSYS,
    )?;
    linker.func_wrap(
        WASI,
        "fd_seek",
        |_: Caller<'_, Ctx>, _: u32, _: i64, _: u32, _: u32| errno::NOSYS,
    )?;
    linker.func_wrap(WASI, "fd_close", |_: Caller<'_, Ctx>, _: u32| errno::NOSYS)?;
    linker.func_wrap(
        WASI,
        "fd_fdstat_set_flags",
        |_: Caller<'_, Ctx>, _: u32, _: u32| errno::NOSYS,
    )?;
    // No preopened directories: `BADF` ends the guest's search for them.
    linker.func_wrap(
        WASI,
        "fd_prestat_get",
        |_: Caller<'_, Ctx>, _: u32, _: u32| errno::BADF,
    )?;
    linker.func_wrap(
        WASI,
        "fd_prestat_dir_name",
        |_: Caller<'_, Ctx>, _: u32, _: u32, _: u32| errno::NOSYS,
    )?;
    linker.func_wrap(
        WASI,
        "path_open",
        |_: Caller<'_, Ctx>,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: i64,
         _: i64,
         _: u32,
         _: u32| errno::NOSYS,
    )?;
    // No environment variables and no arguments (Envoy passes the VM's configured
    // environment variables; the test host configures none).
    for name in ["environ_sizes_get", "args_sizes_get"] {
        linker.func_wrap(
            WASI,
            name,
            |mut caller: Caller<'_, Ctx>, count: u32, size: u32| {
                let mut memory = memory(&mut caller)?;
                memory.write(count as usize, &[0; 4]).map_err(fault)?;
                memory.write(size as usize, &[0; 4]).map_err(fault)?;
                Ok(errno::SUCCESS)
            },
        )?;
    }
    for name in ["environ_get", "args_get"] {
        linker.func_wrap(WASI, name, |_: Caller<'_, Ctx>, _: u32, _: u32| {
            errno::SUCCESS
        })?;
    }
    // The realtime and monotonic clocks read the host's test clock.
    linker.func_wrap(
        WASI,
        "clock_time_get",
        |mut caller: Caller<'_, Ctx>, id: u32, _precision: u64, time: u32| {
            if id > 1 {
                return Ok(errno::INVAL);
            }
            let now = abi::now_nanos();
            memory(&mut caller)?
                .write(time as usize, &now.to_le_bytes())
                .map_err(fault)?;
            Ok(errno::SUCCESS)
        },
    )?;
    // Deterministic bytes (xorshift), so that a run repeats; Envoy's are random.
    linker.func_wrap(
        WASI,
        "random_get",
        |mut caller: Caller<'_, Ctx>, buffer: u32, size: u32| {
            let mut state = caller.data().random;
            let bytes: Vec<u8> = (0..size)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            caller.data_mut().random = state;
            memory(&mut caller)?
                .write(buffer as usize, &bytes)
                .map_err(fault)?;
            Ok(errno::SUCCESS)
        },
    )?;
    linker.func_wrap(WASI, "sched_yield", |_: Caller<'_, Ctx>| errno::SUCCESS)?;
    // Envoy 1.40 answers `poll_oneoff` at once: success, no events, and no event record
    // written (envoy/e2e/tests/wasi.rs). `thread::sleep` then reads a record it never got,
    // so in Envoy it returns without waiting or panics the VM, depending on what was left
    // in memory. A test cannot rely on either, so this host fails the VM and says why.
    linker.func_wrap(
        WASI,
        "poll_oneoff",
        |_: Caller<'_, Ctx>, _: u32, _: u32, _: u32, _: u32| -> wasmtime::Result<u32> {
            wasmtime::bail!("{POLL_ONEOFF}")
        },
    )?;
    linker.func_wrap(
        WASI,
        "proc_exit",
        |_: Caller<'_, Ctx>, code: u32| -> wasmtime::Result<()> {
            wasmtime::bail!("the plugin called proc_exit({code})")
        },
    )?;
    Ok(())
}
