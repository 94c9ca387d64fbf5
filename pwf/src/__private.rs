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

/// Runs the module's static constructors, as a WASI reactor's `_initialize`
/// must before anything else.
pub fn call_ctors() {
    #[cfg(target_os = "wasi")]
    {
        extern "C" {
            fn __wasm_call_ctors();
        }
        // SAFETY: the linker defines it; `_initialize` calls it once, first.
        unsafe { __wasm_call_ctors() }
    }
}
