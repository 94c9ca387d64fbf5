//! Derive macros for [pwf](https://docs.rs/pwf). Use them through `pwf`, which re-exports them.

mod ast;
mod case;
mod ctxt;
mod expand;
mod fallback;
mod symbol;
mod valid;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Derives `pwf::PluginConfig`: typed, validated plugin configuration read from JSON.
///
/// On a struct with named fields, it implements `pwf::PluginConfig` and
/// `pwf::config::ConfigValue`; on an enum of unit variants, `pwf::config::ConfigValue`, so the
/// enum can be a field read from a string. The attributes (`#[config(default = ...)]`,
/// `rename`, `range`, `non_empty`, `header_name`, `header_value`, `one_of`, `unit`,
/// `validate` on fields; `rename_all`, `validate`, `allow_unknown_keys` on the struct) are
/// described in `pwf::config`.
///
/// ```
/// use pwf::PluginConfig;
///
/// #[derive(PluginConfig, Debug, PartialEq)]
/// enum Balance {
///     RoundRobin,
///     Random,
/// }
///
/// #[derive(PluginConfig)]
/// struct Config {
///     #[config(default = "httpbin", non_empty)]
///     dispatch_cluster: String,
///     #[config(default = 10, range = 1..=100)]
///     dispatch_count: u32,
///     #[config(default = Balance::RoundRobin)]
///     balance: Balance,
/// }
///
/// let config = Config::parse(br#"{"dispatchCount": 3, "balance": "random"}"#).unwrap();
/// assert_eq!(config.dispatch_cluster, "httpbin");
/// assert_eq!(config.dispatch_count, 3);
/// assert_eq!(config.balance, Balance::Random);
/// ```
#[proc_macro_derive(PluginConfig, attributes(config))]
pub fn derive_plugin_config(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input).into()
}
