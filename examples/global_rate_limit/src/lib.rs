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
//! The counters `global_rate_limit.ok`, `.over_limit` and `.failed` count the outcomes.
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
    PluginContext,
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

/// The plugin: its configuration and metrics, shared by every stream of a VM.
pub struct GlobalRateLimit {
    config: Config,
    ok: Counter,
    over_limit: Counter,
    failed: Counter,
}

impl Plugin for GlobalRateLimit {
    type Config = Config;
    type Filter = GlobalRateLimitFilter;

    fn configure(config: Config, _: &PluginContext) -> Result<Self, Error> {
        pwf::info!(
            "global_rate_limit: domain {} on cluster {}, timeout {:?}, fail {}",
            config.domain,
            config.cluster,
            config.timeout,
            if config.fail_open { "open" } else { "closed" }
        );
        Ok(GlobalRateLimit {
            ok: Counter::define("global_rate_limit.ok")?,
            over_limit: Counter::define("global_rate_limit.over_limit")?,
            failed: Counter::define("global_rate_limit.failed")?,
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
