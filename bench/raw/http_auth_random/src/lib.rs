//! `examples/http_auth_random` written by hand on the `proxy-wasm` SDK: the
//! baseline the benchmark compares pwf with.
//!
//! Same configuration (`authCluster`, `timeoutMs`, `failOpen`), same log
//! lines, same local responses: the request headers are sent to the auth
//! cluster and the request is paused; an even FNV-1a hash of the answer lets
//! it through, an odd one answers 403, a failed call (no headers, or a status
//! other than 2xx) answers 503 or, with `failOpen`, lets it through.
//!
//! Build: `cargo build --target wasm32-wasip1 --release -p raw_http_auth_random`.

#![forbid(unsafe_code)]

use std::hash::Hasher;
use std::rc::Rc;
use std::time::Duration;

use log::{error, info, warn};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use serde_json::Value;

/// The VM entry point: registers the root context.
mod start {
    use super::*;

    proxy_wasm::main! {{
        proxy_wasm::set_log_level(LogLevel::Trace);
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
            Box::new(HttpAuthRandomRoot { config: Rc::new(Config::default()) })
        });
    }}
}

/// The plugin configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `authCluster`: the cluster that decides.
    pub cluster: String,
    /// `timeoutMs`: the call's timeout.
    pub timeout: Duration,
    /// `failOpen`: let requests through when the auth call fails.
    pub fail_open: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            cluster: "httpbin".to_owned(),
            timeout: Duration::from_millis(5000),
            fail_open: false,
        }
    }
}

/// Reads a duration: milliseconds as a number, or a string such as `"5s"` or
/// `"250ms"`. It must be at least 1 ms.
fn parse_duration(value: &Value) -> Option<Duration> {
    let millis = match value {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => match s.strip_suffix("ms") {
            Some(ms) => ms.parse().ok()?,
            None => s
                .strip_suffix('s')?
                .parse::<u64>()
                .ok()?
                .checked_mul(1000)?,
        },
        _ => return None,
    };
    (1..=u64::from(u32::MAX))
        .contains(&millis)
        .then(|| Duration::from_millis(millis))
}

/// Parses the plugin configuration (empty: every default).
pub fn parse_config(bytes: &[u8]) -> Result<Config, String> {
    let mut config = Config::default();
    if bytes.is_empty() {
        return Ok(config);
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let Value::Object(map) = value else {
        return Err("the configuration must be a JSON object".to_owned());
    };
    for (name, value) in map {
        match (name.as_str(), value) {
            ("authCluster", Value::String(s)) if !s.is_empty() => config.cluster = s,
            ("authCluster", _) => return Err("authCluster: must be a non-empty string".into()),
            ("failOpen", Value::Bool(b)) => config.fail_open = b,
            ("failOpen", _) => return Err("failOpen: must be a boolean".into()),
            ("timeoutMs", value) => {
                config.timeout = parse_duration(&value).ok_or("timeoutMs: not a duration")?;
            }
            (other, _) => return Err(format!("{other}: unknown key")),
        }
    }
    Ok(config)
}

/// Whether `body` is allowed: its FNV-1a hash is even.
pub fn allowed(body: &[u8]) -> bool {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(body);
    hasher.finish() % 2 == 0
}

/// The root context: holds the configuration.
pub struct HttpAuthRandomRoot {
    config: Rc<Config>,
}

impl Context for HttpAuthRandomRoot {}

impl RootContext for HttpAuthRandomRoot {
    fn on_configure(&mut self, _: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match parse_config(&bytes) {
            Ok(config) => {
                self.config = Rc::new(config);
                true
            }
            Err(problem) => {
                error!("http_auth_random: {problem}");
                false
            }
        }
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(HttpAuthRandomFilter {
            config: self.config.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The filter of one stream.
pub struct HttpAuthRandomFilter {
    config: Rc<Config>,
}

impl HttpAuthRandomFilter {
    /// The call failed: answer 503, or let the request through (`paused`:
    /// whether the request waits for a resume). Returns the phase's action.
    fn fail(&self, reason: &str, paused: bool) -> Action {
        let cluster = &self.config.cluster;
        if self.config.fail_open {
            warn!("call to cluster `{cluster}` {reason}; failing open: the request goes on");
            if paused {
                self.resume_http_request();
            }
            Action::Continue
        } else {
            error!("call to cluster `{cluster}` {reason}; failing closed: 503");
            self.send_http_response(
                503,
                vec![("powered-by", "pwf")],
                Some(b"auth service unavailable"),
            );
            Action::Pause
        }
    }
}

impl Context for HttpAuthRandomFilter {
    fn on_http_call_response(&mut self, _: u32, num_headers: usize, body_size: usize, _: usize) {
        if num_headers == 0 {
            self.fail("failed: no response (reset or cut off)", true);
            return;
        }
        let status = self
            .get_http_call_response_header(":status")
            .and_then(|status| status.parse::<u16>().ok());
        match status {
            Some(200..=299) => {}
            Some(status) => {
                self.fail(&format!("answered with status {status}"), true);
                return;
            }
            None => {
                self.fail("failed: no response (reset or cut off)", true);
                return;
            }
        }
        let body = self
            .get_http_call_response_body(0, body_size)
            .unwrap_or_default();
        if allowed(&body) {
            info!("access granted");
            self.resume_http_request();
        } else {
            info!("access forbidden");
            self.send_http_response(403, vec![("powered-by", "pwf")], Some(b"access forbidden"));
        }
    }
}

impl HttpContext for HttpAuthRandomFilter {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let config = self.config.clone();
        let headers = self.get_http_request_headers();
        let headers = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        match self.dispatch_http_call(&config.cluster, headers, None, vec![], config.timeout) {
            Ok(_) => Action::Pause,
            Err(status) => self.fail(&format!("refused by Envoy: {status:?}"), false),
        }
    }
}
