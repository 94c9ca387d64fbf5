//! Asks Envoy's rate limit service about every request, over gRPC: one limit for a whole
//! fleet of Envoys, counted by the service (envoyproxy/ratelimit over Redis, say).
//!
//! Each request becomes one descriptor of the configured `domain`: one entry per
//! `descriptors` item, whose key is the item's `key` and whose value is the request's
//! `header`. A request without one of those headers is not limited (and not asked about).
//! The plugin calls `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit` on
//! `cluster` and waits at most `timeout`:
//!
//! - `OK`: the request goes on; the service's `response_headers_to_add` go on the response.
//! - `OVER_LIMIT`: 429, with the service's `response_headers_to_add`.
//! - No answer (the service is down, refused, timed out, or answered an error): 503, or the
//!   request goes on when `failOpen` is true.
//!
//! With `cacheUnderLimit` (default `0s`: off), an `OK` answer is reused for that long for
//! the same descriptor, without asking the service: fewer calls, but the service does not
//! count the requests let through from the cache, so up to one window's worth of them
//! passes over the limit (see the README). The answers are kept in a bounded
//! `pwf::SharedCache`, shared by every worker.
//!
//! The counters `global_rate_limit.ok`, `.over_limit`, `.failed` and `.cached` (let
//! through from the cache) count the outcomes.
//!
//! Build: `cargo build --target wasm32-wasip1 --release -p global_rate_limit`, then run it
//! in Envoy with `examples/global_rate_limit/envoy.yaml` (see the README).

#![forbid(unsafe_code)]

pub mod rls;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use pwf::metrics::Counter;
use pwf::{
    Action, Error, GrpcRequest, Http, HttpFilter, LocalResponse, Outcome, Plugin, PluginConfig,
    PluginContext, SharedCache,
};

use crate::rls::{Code, RateLimitDescriptor, RateLimitRequest, RateLimitResponse};

/// The service's full name.
pub const SERVICE: &str = "envoy.service.ratelimit.v3.RateLimitService";
/// The method.
pub const METHOD: &str = "ShouldRateLimit";

/// The plugin configuration.
#[derive(PluginConfig, Debug)]
pub struct Config {
    /// The Envoy cluster of the rate limit service (it must speak HTTP/2).
    #[config(default = "ratelimit", non_empty)]
    pub cluster: String,
    /// The descriptors' domain, as the service's configuration names it.
    #[config(default = "pwf", non_empty)]
    pub domain: String,
    /// The descriptor's entries, in order: `[{"header": "x-api-key", "key": "api_key"}]`.
    #[config(validate = entries_not_empty)]
    pub descriptors: Vec<Entry>,
    /// How long to wait for the service's answer.
    #[config(default = "200ms", validate = pwf::config::call_timeout)]
    pub timeout: Duration,
    /// Whether a request goes on when the service gives no answer (else 503).
    #[config(default = false)]
    pub fail_open: bool,
    /// How long an `OK` ("under limit") answer is reused for the same descriptor without
    /// asking the service; `0s`, the default, asks about every request. Requests let
    /// through from the cache are not counted by the service.
    #[config(default = "0s")]
    pub cache_under_limit: Duration,
}

/// One descriptor entry: its key, and the request header that gives its value.
#[derive(PluginConfig, Debug, Clone)]
pub struct Entry {
    /// The request header.
    #[config(non_empty, header_name)]
    pub header: String,
    /// The descriptor key (`api_key`, `path`, ...).
    #[config(non_empty)]
    pub key: String,
}

fn entries_not_empty(entries: &[Entry]) -> Result<(), pwf::config::Invalid> {
    if entries.is_empty() {
        return Err(pwf::config::Invalid::new(
            "must name at least one header (`[{\"header\": \"x-api-key\", \"key\": \"api_key\"}]`)",
        ));
    }
    Ok(())
}

/// The plugin: its configuration, metrics and cache, shared by every stream of a VM.
pub struct GlobalRateLimit {
    config: Config,
    ok: Counter,
    over_limit: Counter,
    failed: Counter,
    cached: Counter,
    /// The descriptors answered `OK` lately, when `cacheUnderLimit` is on.
    under_limit: Option<SharedCache<bool>>,
}

/// The shared-data table of the "under limit" answers.
pub const CACHE_NAME: &str = "global_rate_limit/under_limit";

impl Plugin for GlobalRateLimit {
    type Config = Config;
    type Filter = GlobalRateLimitFilter;

    fn configure(config: Config, _: &PluginContext) -> Result<Self, Error> {
        let cache = if config.cache_under_limit.is_zero() {
            String::new()
        } else {
            format!(
                ", under-limit answers cached {:?}",
                config.cache_under_limit
            )
        };
        pwf::info!(
            "global_rate_limit: domain {} on cluster {}, timeout {:?}, fail {}{cache}",
            config.domain,
            config.cluster,
            config.timeout,
            if config.fail_open { "open" } else { "closed" },
        );
        Ok(GlobalRateLimit {
            ok: Counter::define("global_rate_limit.ok")?,
            over_limit: Counter::define("global_rate_limit.over_limit")?,
            failed: Counter::define("global_rate_limit.failed")?,
            cached: Counter::define("global_rate_limit.cached")?,
            under_limit: (!config.cache_under_limit.is_zero())
                .then(|| SharedCache::new(CACHE_NAME)),
            config,
        })
    }

    fn filter(plugin: &Rc<Self>, _: &Http) -> GlobalRateLimitFilter {
        GlobalRateLimitFilter {
            plugin: plugin.clone(),
            response_headers: Rc::default(),
        }
    }
}

/// The filter of one stream: the headers the service asked to add to its response.
pub struct GlobalRateLimitFilter {
    plugin: Rc<GlobalRateLimit>,
    response_headers: Rc<RefCell<Vec<(String, String)>>>,
}

impl GlobalRateLimit {
    /// The request to the service for these headers, or `None` when one is missing.
    fn request(&self, http: &Http) -> Result<Option<RateLimitRequest>, Error> {
        let mut descriptor = RateLimitDescriptor::default();
        for entry in &self.config.descriptors {
            let Some(value) = http.request_header(&entry.header)? else {
                return Ok(None);
            };
            descriptor.entries.push(rls::Entry {
                key: entry.key.clone(),
                value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            });
        }
        Ok(Some(RateLimitRequest {
            domain: self.config.domain.clone(),
            descriptors: vec![descriptor],
            hits_addend: 1,
        }))
    }

    /// The cache key of `request`: the cluster, the domain and every entry, each part
    /// preceded by its length, so that no two descriptors share a key.
    fn cache_key(&self, request: &RateLimitRequest) -> String {
        let mut key = String::new();
        let mut part = |text: &str| {
            key.push_str(&text.len().to_string());
            key.push(':');
            key.push_str(text);
        };
        part(&self.config.cluster);
        part(&request.domain);
        for descriptor in &request.descriptors {
            for entry in &descriptor.entries {
                part(&entry.key);
                part(&entry.value);
            }
        }
        key
    }

    /// Whether the service said lately that the request with cache key `key` is under its
    /// limit. A cache that cannot be read is no answer: the service is asked.
    fn cached_under_limit(&self, key: &str) -> bool {
        let Some(cache) = &self.under_limit else {
            return false;
        };
        match cache.get(key) {
            Ok(cached) => cached == Some(true),
            Err(error) => {
                pwf::warn!("global_rate_limit: cache not read: {error}");
                false
            }
        }
    }

    /// Remembers the service's `OK` for `key`, for `cacheUnderLimit`.
    fn cache_under_limit(&self, key: &str) {
        if let Some(cache) = &self.under_limit {
            if let Err(error) = cache.insert(key, &true, self.config.cache_under_limit) {
                pwf::warn!("global_rate_limit: answer not cached: {error}");
            }
        }
    }

    /// What a request gets when the service gave no answer.
    fn no_answer(&self, why: &dyn std::fmt::Display) -> Result<Outcome, Error> {
        self.failed.increment(1)?;
        if self.config.fail_open {
            pwf::warn!("global_rate_limit: no answer, let through: {why}");
            Ok(Outcome::Continue)
        } else {
            pwf::warn!("global_rate_limit: no answer, refused: {why}");
            Ok(Outcome::Respond(
                LocalResponse::new(503).body("rate limit service unavailable\n"),
            ))
        }
    }
}

impl HttpFilter for GlobalRateLimitFilter {
    fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        let plugin = self.plugin.clone();
        let Some(request) = plugin.request(http)? else {
            return Ok(Action::Continue);
        };
        let key = plugin
            .under_limit
            .as_ref()
            .map(|_| plugin.cache_key(&request));
        if let Some(key) = &key {
            if plugin.cached_under_limit(key) {
                plugin.cached.increment(1)?;
                return Ok(Action::Continue);
            }
        }
        let call = GrpcRequest::new(&plugin.config.cluster, SERVICE, METHOD)
            .encode(&request)
            .timeout(plugin.config.timeout)
            .send();
        let headers = self.response_headers.clone();
        Ok(http.spawn(async move {
            let answer = match call {
                Ok(call) => call.await,
                Err(error) => Err(error),
            };
            let response: RateLimitResponse = match answer.and_then(|a| a.decode()) {
                Ok(response) => response,
                Err(error) => return plugin.no_answer(&error),
            };
            let add: Vec<(String, String)> = response
                .response_headers_to_add
                .into_iter()
                .map(|h| (h.key, h.value))
                .collect();
            match Code::try_from(response.overall_code) {
                Ok(Code::Ok) => {
                    plugin.ok.increment(1)?;
                    if let Some(key) = &key {
                        plugin.cache_under_limit(key);
                    }
                    *headers.borrow_mut() = add;
                    Ok(Outcome::Continue)
                }
                Ok(Code::OverLimit) => {
                    plugin.over_limit.increment(1)?;
                    let mut reply = LocalResponse::new(429);
                    for (name, value) in add {
                        reply = reply.header(name, value);
                    }
                    Ok(Outcome::Respond(reply.body("rate limited\n")))
                }
                _ => plugin.no_answer(&format_args!(
                    "the service answered overall code {}",
                    response.overall_code
                )),
            }
        }))
    }

    fn on_response_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        for (name, value) in self.response_headers.borrow().iter() {
            http.set_response_header(name, value)?;
        }
        Ok(Action::Continue)
    }
}

pwf::main!(GlobalRateLimit);
