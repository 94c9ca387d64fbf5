//! Adds a configured header to every response.
//!
//! The smallest complete pwf plugin: a typed configuration, a plugin type,
//! a filter type and the registration line.
//!
//! Build: `cargo build --target wasm32-wasip1 --release -p add_header`, then
//! run it in Envoy with `examples/add_header/envoy.yaml` (see the README).

#![forbid(unsafe_code)]

use std::rc::Rc;

use pwf::{Action, Error, Http, HttpFilter, Plugin, PluginConfig, PluginContext};

/// The plugin configuration: `{"name": "x-pwf", "value": "hello"}`.
#[derive(PluginConfig, Debug)]
pub struct Config {
    /// The header to add.
    #[config(default = "x-powered-by", non_empty, header_name)]
    pub name: String,
    /// Its value.
    #[config(default = "pwf", header_value)]
    pub value: String,
}

/// The plugin: holds the configuration for every stream.
pub struct AddHeader {
    config: Config,
}

impl Plugin for AddHeader {
    type Config = Config;
    type Filter = AddHeaderFilter;

    fn configure(config: Config, cx: &PluginContext) -> Result<Self, Error> {
        pwf::info!(
            "{}: adding `{}: {}` to every response",
            cx.plugin_name(),
            config.name,
            config.value
        );
        Ok(AddHeader { config })
    }

    fn filter(plugin: &Rc<Self>, _: &Http) -> AddHeaderFilter {
        AddHeaderFilter {
            plugin: plugin.clone(),
        }
    }
}

/// The filter of one stream.
pub struct AddHeaderFilter {
    plugin: Rc<AddHeader>,
}

impl HttpFilter for AddHeaderFilter {
    fn on_response_headers(&mut self, http: &Http, _end_of_stream: bool) -> Result<Action, Error> {
        let config = &self.plugin.config;
        http.set_response_header(&config.name, &config.value)?;
        Ok(Action::Continue)
    }
}

pwf::main!(AddHeader);
