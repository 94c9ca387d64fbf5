//! `examples/multiple_dispatches` written by hand on the `proxy-wasm` SDK:
//! the baseline the benchmark compares pwf with.
//!
//! Same configuration (`dispatchCluster`, `dispatchCount`, `dispatchPath`,
//! `timeoutMs`), same log lines, same `total-dispatched` header: the response
//! headers phase sends `dispatchCount` calls, pauses, counts the callbacks
//! down and resumes when the last one lands.
//!
//! Build: `cargo build --target wasm32-wasip1 --release -p raw_multiple_dispatches`.

#![forbid(unsafe_code)]

use std::rc::Rc;
use std::time::Duration;

use log::{error, info};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use serde_json::Value;

/// The VM entry point: registers the root context.
mod start {
    use super::*;

    proxy_wasm::main! {{
        proxy_wasm::set_log_level(LogLevel::Trace);
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
            Box::new(MultipleDispatchesRoot { config: Rc::new(Config::default()) })
        });
    }}
}

/// The plugin configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `dispatchCluster`: the cluster the calls go to.
    pub cluster: String,
    /// `dispatchCount`: how many calls each response waits for (1..=100).
    pub count: u32,
    /// `dispatchPath`: the path each call asks for.
    pub path: String,
    /// `timeoutMs`: each call's timeout.
    pub timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            cluster: "httpbin".to_owned(),
            count: 10,
            path: "/".to_owned(),
            timeout: Duration::from_millis(5000),
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
            ("dispatchCluster", Value::String(s)) if !s.is_empty() => config.cluster = s,
            ("dispatchPath", Value::String(s)) if !s.is_empty() => config.path = s,
            ("dispatchCount", value) => {
                config.count = value
                    .as_u64()
                    .filter(|n| (1..=100).contains(n))
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or("dispatchCount: must be in 1..=100")?;
            }
            ("timeoutMs", value) => {
                config.timeout = parse_duration(&value).ok_or("timeoutMs: not a duration")?;
            }
            (other @ ("dispatchCluster" | "dispatchPath"), _) => {
                return Err(format!("{other}: must be a non-empty string"))
            }
            (other, _) => return Err(format!("{other}: unknown key")),
        }
    }
    Ok(config)
}

/// The root context: holds the configuration.
pub struct MultipleDispatchesRoot {
    config: Rc<Config>,
}

impl Context for MultipleDispatchesRoot {}

impl RootContext for MultipleDispatchesRoot {
    fn on_configure(&mut self, _: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match parse_config(&bytes) {
            Ok(config) => {
                self.config = Rc::new(config);
                true
            }
            Err(problem) => {
                error!("multiple_dispatches: {problem}");
                false
            }
        }
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(MultipleDispatchesFilter {
            config: self.config.clone(),
            pending: 0,
            answered: 0,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The filter of one stream.
pub struct MultipleDispatchesFilter {
    config: Rc<Config>,
    pending: u32,
    answered: u32,
}

impl MultipleDispatchesFilter {
    fn finish(&mut self) {
        let answered = self.answered;
        self.set_http_response_header("total-dispatched", Some(&answered.to_string()));
        info!("response resumed after processed {answered} dispatched request");
    }
}

impl Context for MultipleDispatchesFilter {
    fn on_http_call_response(&mut self, _: u32, num_headers: usize, _: usize, _: usize) {
        self.pending = self.pending.saturating_sub(1);
        if num_headers > 0 {
            self.answered += 1;
        }
        if self.pending > 0 {
            info!("pending dispatched requests: {}", self.pending);
            return;
        }
        self.finish();
        self.resume_http_response();
    }
}

impl HttpContext for MultipleDispatchesFilter {
    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        let config = self.config.clone();
        for _ in 0..config.count {
            let headers = vec![
                (":method", "GET"),
                (":path", config.path.as_str()),
                (":authority", config.cluster.as_str()),
            ];
            match self.dispatch_http_call(&config.cluster, headers, None, vec![], config.timeout) {
                Ok(_) => self.pending += 1,
                Err(status) => error!(
                    "call to cluster `{}` refused by Envoy: {status:?}",
                    config.cluster
                ),
            }
        }
        if self.pending == 0 {
            self.finish();
            return Action::Continue;
        }
        Action::Pause
    }
}
