//! Items used by the code that pwf's macros generate. Not public API.

pub use crate::config::derive::*;
pub use proxy_wasm;
pub use serde_json::{Map, Value};

use std::marker::PhantomData;

/// Picks `register` or `register_tcp` for `pwf::main!` by the traits the
/// plugin type implements (autoref specialization on a concrete type).
pub struct Register<P>(PhantomData<P>);

impl<P> Register<P> {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Register(PhantomData)
    }
}

pub trait RegisterHttp {
    fn register(&self);
}

impl<P: crate::Plugin> RegisterHttp for &&Register<P> {
    fn register(&self) {
        crate::register::<P>();
    }
}

pub trait RegisterTcp {
    fn register(&self);
}

impl<P: crate::TcpPlugin> RegisterTcp for &Register<P> {
    fn register(&self) {
        crate::register_tcp::<P>();
    }
}

/// The module's entry point in wasm builds: Envoy calls it once when it
/// loads the module. It runs the static constructors, as a WASI reactor's
/// `_initialize` must before anything else, then the registration that
/// `pwf::main!` defines in the plugin crate. Without `pwf::main!` that
/// symbol is undefined, and the module does not link.
#[cfg(target_family = "wasm")]
#[no_mangle]
pub extern "C" fn _initialize() {
    extern "C" {
        fn __wasm_call_ctors();
        fn pwf_main_registers_the_plugin();
    }
    // SAFETY: the linker defines the first, and `pwf::main!` the second, a
    // plain function without arguments; `_initialize` runs once, first.
    unsafe {
        __wasm_call_ctors();
        pwf_main_registers_the_plugin();
    }
}
