//! Counts requests across every worker VM with an exact shared counter.
//!
//! Each request increments the counter at `sharedDataKey` once, in the
//! request-headers phase, logs `shared value: N`, and carries `N` back to the
//! client in the `x-shared-value` response header. Unlike the Go SDK's
//! `shared_data` example, nothing resets the counter at VM start, and two
//! workers creating the key at once lose no increment.
//!
//! Build: `cargo build --target wasm32-wasip1 --release -p shared_data`, then
//! run it in Envoy with `examples/shared_data/envoy.yaml` (see the README).

#![forbid(unsafe_code)]

use std::rc::Rc;

use pwf::{Action, Error, Http, HttpFilter, Plugin, PluginConfig, PluginContext, SharedCounter};

/// The plugin configuration.
#[derive(PluginConfig, Debug)]
pub struct Config {
    /// The shared-data key of the counter.
    #[config(default = "shared_data_key", non_empty)]
    pub shared_data_key: String,
}

/// The plugin: one counter handle, shared by every stream of this VM.
pub struct SharedData {
    counter: SharedCounter,
}

impl Plugin for SharedData {
    type Config = Config;
    type Filter = SharedDataFilter;

    fn configure(config: Config, _: &PluginContext) -> Result<Self, Error> {
        Ok(SharedData {
            counter: SharedCounter::new(config.shared_data_key),
        })
    }

    fn filter(plugin: &Rc<Self>, _: &Http) -> SharedDataFilter {
        SharedDataFilter {
            plugin: plugin.clone(),
            value: None,
        }
    }
}

/// The filter of one stream: remembers the value its request got.
pub struct SharedDataFilter {
    plugin: Rc<SharedData>,
    value: Option<u64>,
}

impl HttpFilter for SharedDataFilter {
    fn on_request_headers(&mut self, _: &Http, _: bool) -> Result<Action, Error> {
        match self.plugin.counter.increment() {
            Ok(value) => {
                pwf::info!("shared value: {value}");
                self.value = Some(value);
            }
            // The request goes on; only the count is lost, and said so.
            Err(error) => pwf::error!("{error}"),
        }
        Ok(Action::Continue)
    }

    fn on_response_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        if let Some(value) = self.value {
            http.set_response_header("x-shared-value", value.to_string())?;
        }
        Ok(Action::Continue)
    }
}

pwf::main!(SharedData);
