//! A per-key, per-window rate limit written the direct way: one
//! `SharedCounter` per (key, window), at `<key>.<window number>`.
//!
//! It decides like `examples/rate_limit` (the key is the `keyHeader` value,
//! `limit.requests` per fixed window of `limit.per`, 429 past it), but every
//! new key and every new window is a new shared-data key, which Envoy keeps
//! until it restarts. The e2e memory test and the benchmark run it next to the
//! bounded `RateLimiter` to show the difference.
//!
//! Build: `cargo build --target wasm32-wasip1 --release -p per-key-counter`.

#![forbid(unsafe_code)]

use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use pwf::{
    Action, Error, Http, HttpFilter, LocalResponse, Plugin, PluginConfig, PluginContext, RateLimit,
    SharedCounter,
};

/// The plugin configuration: the keys of `examples/rate_limit` it uses.
#[derive(PluginConfig, Debug)]
pub struct Config {
    /// Requests allowed per key per window.
    #[config(default = RateLimit::new(100, Duration::from_secs(60)))]
    pub limit: RateLimit,
    /// The request header whose value is the key.
    #[config(default = "x-api-key", non_empty)]
    pub key_header: String,
}

/// The plugin.
pub struct PerKeyCounter {
    config: Config,
}

impl Plugin for PerKeyCounter {
    type Config = Config;
    type Filter = PerKeyCounterFilter;

    fn configure(config: Config, _: &PluginContext) -> Result<Self, Error> {
        Ok(PerKeyCounter { config })
    }

    fn filter(plugin: &Rc<Self>, _: &Http) -> PerKeyCounterFilter {
        PerKeyCounterFilter {
            plugin: plugin.clone(),
        }
    }
}

/// The filter of one stream.
pub struct PerKeyCounterFilter {
    plugin: Rc<PerKeyCounter>,
}

impl HttpFilter for PerKeyCounterFilter {
    fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        let config = &self.plugin.config;
        let key = http.request_header(&config.key_header)?;
        let key = key.as_ref().and_then(|k| k.to_str().ok()).unwrap_or("");
        let now = pwf::properties::now()?.duration_since(UNIX_EPOCH)?;
        let window = now.as_millis() / config.limit.per().as_millis();
        let count = SharedCounter::new(format!("{key}.{window}")).increment()?;
        if count <= u64::from(config.limit.requests()) {
            Ok(Action::Continue)
        } else {
            Ok(http.respond(LocalResponse::new(429).body("rate limit exceeded\n"))?)
        }
    }
}

pwf::main!(PerKeyCounter);
