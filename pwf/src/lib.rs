//! Write Envoy HTTP filters as proxy-wasm plugins, without the boilerplate.

#[doc(hidden)]
pub mod __private;
pub mod config;

pub use config::PluginConfig;
pub use pwf_macros::PluginConfig;
