//! Derive macros for [pwf](https://docs.rs/pwf). Use them through `pwf`, which re-exports them.

use proc_macro::TokenStream;

/// Derives `pwf::PluginConfig`: typed, validated plugin configuration.
#[proc_macro_derive(PluginConfig, attributes(config))]
pub fn derive_plugin_config(input: TokenStream) -> TokenStream {
    let _ = input;
    TokenStream::new()
}
