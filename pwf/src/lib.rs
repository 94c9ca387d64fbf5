//! Write Envoy HTTP filters as proxy-wasm plugins, without the boilerplate.

pub mod config;
#[doc(hidden)]
pub mod __private;

pub use config::PluginConfig;
pub use pwf_macros::PluginConfig;
