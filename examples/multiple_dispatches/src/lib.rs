//! Pauses each response, sends `dispatchCount` HTTP calls in parallel, and
//! resumes it once every call has landed, with `total-dispatched: N` (the
//! number of calls that got a response) added.
//!
//! Built on [`pwf::DispatchGroup`]: no token bookkeeping, no
//! `on_http_call_response`, and a refused dispatch is logged, not a panic.
//!
//! Build: `cargo build --target wasm32-wasip1 --release -p multiple_dispatches`,
//! then run it in Envoy with `examples/multiple_dispatches/envoy.yaml`.

#![forbid(unsafe_code)]

use std::rc::Rc;
use std::time::Duration;

use pwf::log::{Limited, LogLevel};
use pwf::{
    Action, DispatchGroup, Error, Http, HttpFilter, Outcome, Plugin, PluginConfig, PluginContext,
    Request,
};

/// The plugin configuration.
#[derive(PluginConfig, Debug)]
pub struct Config {
    /// The cluster the calls go to.
    #[config(default = "httpbin", non_empty)]
    pub dispatch_cluster: String,
    /// How many calls each response waits for.
    #[config(default = 10, range = 1..=100)]
    pub dispatch_count: u32,
    /// The path each call asks for.
    #[config(default = "/", non_empty, header_value)]
    pub dispatch_path: String,
    /// Each call's timeout (`5000`, `"5s"`, `"250ms"`).
    #[config(default = "5000ms", validate = pwf::config::call_timeout)]
    pub timeout_ms: Duration,
}

/// The plugin: holds the configuration, and the request every call sends,
/// built once.
pub struct MultipleDispatches {
    config: Config,
    request: Request,
}

impl Plugin for MultipleDispatches {
    type Config = Config;
    type Filter = MultipleDispatchesFilter;

    fn configure(config: Config, _: &PluginContext) -> Result<Self, Error> {
        // Only whether each call was answered counts: read nothing of the
        // responses.
        let request = Request::get(&config.dispatch_cluster, &config.dispatch_path)
            .timeout(config.timeout_ms)
            .ignore_response();
        Ok(MultipleDispatches { config, request })
    }

    fn filter(plugin: &Rc<Self>, _: &Http) -> MultipleDispatchesFilter {
        MultipleDispatchesFilter {
            plugin: plugin.clone(),
        }
    }
}

/// Refused dispatches come at the rate of requests under overload (a full
/// circuit breaker refuses every call): 10 lines per 10 s at most, and the
/// counter `multiple_dispatches.refused` counts them all.
static REFUSED: Limited = Limited::new("multiple_dispatches.refused", 10, Duration::from_secs(10));

/// The filter of one stream.
pub struct MultipleDispatchesFilter {
    plugin: Rc<MultipleDispatches>,
}

impl HttpFilter for MultipleDispatchesFilter {
    fn on_response_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        let plugin = &self.plugin;
        let count = plugin.config.dispatch_count;
        let mut group = DispatchGroup::with_capacity(count as usize);
        for _ in 0..count {
            if let Err(error) = group.dispatch(&plugin.request) {
                REFUSED.log(LogLevel::Error, format_args!("{error}"));
            }
        }
        let group = group.on_landed(|_, pending| {
            if pending > 0 {
                pwf::info!("pending dispatched requests: {pending}");
            }
        });
        Ok(group.wait(http, |http, results| {
            let answered = results.iter().filter(|result| result.is_ok()).count();
            http.set_response_header("total-dispatched", answered.to_string())?;
            pwf::info!("response resumed after processed {answered} dispatched request");
            Ok(Outcome::Continue)
        }))
    }
}

pwf::main!(MultipleDispatches);
