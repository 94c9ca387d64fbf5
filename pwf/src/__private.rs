//! Items used by the code that `#[derive(PluginConfig)]` generates. Not public API.
