//! {{project-name}}: adds a configured header to every response.
//!
//! Build: `cargo build --target wasm32-wasip1 --release`, then run it in
//! Envoy with `envoy.yaml` (see the README).

#![forbid(unsafe_code)]

use std::rc::Rc;

use pwf::{Action, Error, Http, HttpFilter, Plugin, PluginConfig, PluginContext};

/// The plugin configuration, e.g. `{"name": "x-hello", "value": "world"}`.
#[derive(PluginConfig, Debug)]
pub struct {{project-name | pascal_case}}Config {
    /// The response header to set.
    #[config(default = "x-powered-by", non_empty)]
    pub name: String,
    /// Its value.
    #[config(default = "{{project-name}}")]
    pub value: String,
}

/// The plugin: created each time Envoy configures it, shared by every stream
/// of the worker.
pub struct {{project-name | pascal_case}} {
    config: {{project-name | pascal_case}}Config,
}

impl Plugin for {{project-name | pascal_case}} {
    type Config = {{project-name | pascal_case}}Config;
    type Filter = {{project-name | pascal_case}}Filter;

    fn configure(config: Self::Config, cx: &PluginContext) -> Result<Self, Error> {
        pwf::info!(
            "{}: setting `{}: {}` on every response",
            cx.plugin_name(),
            config.name,
            config.value
        );
        Ok(Self { config })
    }

    fn filter(plugin: &Rc<Self>, _: &Http) -> Self::Filter {
        {{project-name | pascal_case}}Filter {
            plugin: plugin.clone(),
        }
    }
}

/// The filter of one HTTP stream.
pub struct {{project-name | pascal_case}}Filter {
    plugin: Rc<{{project-name | pascal_case}}>,
}

impl HttpFilter for {{project-name | pascal_case}}Filter {
    fn on_response_headers(&mut self, http: &Http, _end_of_stream: bool) -> Result<Action, Error> {
        let config = &self.plugin.config;
        http.set_response_header(&config.name, &config.value)?;
        Ok(Action::Continue)
    }
}

pwf::main!({{project-name | pascal_case}});
