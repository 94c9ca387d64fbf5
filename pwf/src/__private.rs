//! Items used by the code that `#[derive(PluginConfig)]` generates. Not public API.

pub use crate::config::derive::*;
pub use serde_json::{Map, Value};
