//! Items used by the code that pwf's macros generate. Not public API.

pub use proxy_wasm;
