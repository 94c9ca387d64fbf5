//! Limits requests per API key across every worker VM, in bounded memory.
//!
//! Each request is counted against its key: the value of the `keyHeader`
//! request header (`x-api-key` by default), or, without one, the client's IP
//! address without its port. A key gets `limit.requests` requests per fixed
//! window of `limit.per`; the next ones are answered 429 with `retry-after`
//! and Envoy's `x-ratelimit-*` headers, which allowed responses carry too.
//! Paths under an `exemptPrefixes` entry are never counted. The counters
//! `rate_limit.allowed` and `rate_limit.limited` count the decisions.
//!
//! The counts live in a `pwf::RateLimiter`: a fixed number of shared-data
//! keys (`slots`), so Envoy's memory does not grow with the number of keys.
//!
//! Build: `cargo build --target wasm32-wasip1 --release -p rate_limit`, then
//! run it in Envoy with `examples/rate_limit/envoy.yaml` (see the README).

#![forbid(unsafe_code)]

use std::rc::Rc;
use std::time::Duration;

use pwf::metrics::Counter;
use pwf::{
    Action, Decision, Error, Http, HttpFilter, Plugin, PluginConfig, PluginContext, RateLimit,
    RateLimiter,
};

/// The plugin configuration.
#[derive(PluginConfig, Debug)]
pub struct Config {
    /// Requests allowed per key per window: `{"requests": 100, "per": "1m"}`.
    #[config(default = RateLimit::new(100, Duration::from_secs(60)))]
    pub limit: RateLimit,
    /// The request header whose value is the key; without it, the client IP.
    #[config(default = "x-api-key", non_empty)]
    pub key_header: String,
    /// Path prefixes that are never limited nor counted.
    #[config(default)]
    pub exempt_prefixes: Vec<String>,
    /// Shared-data keys of the limiter; it holds 4 keys per slot at once.
    #[config(default = 4096, range = 1..=1_048_576)]
    pub slots: u32,
}

/// The plugin: the limiter and its metrics, shared by every stream of a VM.
pub struct RateLimitPlugin {
    config: Config,
    limiter: RateLimiter,
    allowed: Counter,
    limited: Counter,
}

impl Plugin for RateLimitPlugin {
    type Config = Config;
    type Filter = RateLimitFilter;

    fn configure(config: Config, _: &PluginContext) -> Result<Self, Error> {
        let limiter = RateLimiter::new("rate_limit", config.limit).with_slots(config.slots);
        pwf::info!(
            "rate_limit: {} per key, {} slots, at most {} bytes of shared data",
            config.limit,
            config.slots,
            limiter.memory_bound()
        );
        Ok(RateLimitPlugin {
            limiter,
            allowed: Counter::define("rate_limit.allowed")?,
            limited: Counter::define("rate_limit.limited")?,
            config,
        })
    }

    fn filter(plugin: &Rc<Self>, _: &Http) -> RateLimitFilter {
        RateLimitFilter {
            plugin: plugin.clone(),
            decision: None,
        }
    }
}

/// The filter of one stream: remembers the decision of an allowed request,
/// whose response gets the `x-ratelimit-*` headers.
pub struct RateLimitFilter {
    plugin: Rc<RateLimitPlugin>,
    decision: Option<Decision>,
}

impl RateLimitPlugin {
    /// Whether `path` starts with an exempt prefix.
    fn is_exempt(&self, path: &str) -> bool {
        self.config
            .exempt_prefixes
            .iter()
            .any(|prefix| path.starts_with(prefix.as_str()))
    }

    /// The key of the request: `key:<header value>`, else `ip:<client IP>`.
    /// The prefixes keep an API key that looks like an IP apart from it.
    fn key(&self, http: &Http) -> Result<String, Error> {
        let header = http.request_header(&self.config.key_header)?;
        if let Some(value) = header.as_ref().and_then(|value| value.to_str().ok()) {
            if !value.is_empty() {
                return Ok(format!("key:{value}"));
            }
        }
        let ip = pwf::properties::client_ip()?.unwrap_or_default();
        Ok(format!("ip:{ip}"))
    }
}

impl HttpFilter for RateLimitFilter {
    fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        let plugin = &*self.plugin;
        let path = http.request_header(":path")?;
        if plugin.is_exempt(path.as_ref().and_then(|p| p.to_str().ok()).unwrap_or("")) {
            return Ok(Action::Continue);
        }
        let key = plugin.key(http)?;
        match plugin.limiter.check(&key) {
            Ok(decision) if decision.is_allowed() => {
                plugin.allowed.increment(1)?;
                self.decision = Some(decision);
                Ok(Action::Continue)
            }
            Ok(decision) => {
                plugin.limited.increment(1)?;
                Ok(http.respond(decision.too_many_requests())?)
            }
            // Not counted: the request goes on (fail open), and the log says why.
            Err(error) => {
                pwf::error!("rate_limit: {key} not counted, let through: {error}");
                Ok(Action::Continue)
            }
        }
    }

    fn on_response_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        if let Some(decision) = self.decision {
            for (name, value) in decision.headers() {
                http.set_response_header(name, value)?;
            }
        }
        Ok(Action::Continue)
    }
}

pwf::main!(RateLimitPlugin);
