//! Typed, validated plugin configuration.

/// A plugin configuration parsed from Envoy's `configuration` bytes.
pub trait PluginConfig: Sized {}
