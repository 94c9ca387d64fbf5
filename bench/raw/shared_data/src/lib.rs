//! `examples/shared_data` written by hand on the `proxy-wasm` SDK: the
//! baseline the benchmark compares pwf with.
//!
//! Same configuration (`sharedDataKey`, default `shared_data_key`), same log
//! line (`shared value: N`), same response header (`x-shared-value: N`):
//! each request increments an 8-byte little-endian counter with a
//! compare-and-swap loop in the request-headers phase.
//!
//! Build: `cargo build --target wasm32-wasip1 --release -p raw_shared_data`.

#![forbid(unsafe_code)]

use std::rc::Rc;

use log::{error, info};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, Status};
use serde_json::Value;

/// How many compare-and-swap attempts an increment makes.
const MAX_ATTEMPTS: u32 = 64;

/// The VM entry point: registers the root context.
mod start {
    use super::*;

    proxy_wasm::main! {{
        proxy_wasm::set_log_level(LogLevel::Trace);
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
            Box::new(SharedDataRoot { key: Rc::from("") })
        });
    }}
}

/// Reads `sharedDataKey` from the plugin configuration (empty: the default).
pub fn parse_config(bytes: &[u8]) -> Result<String, String> {
    const DEFAULT: &str = "shared_data_key";
    if bytes.is_empty() {
        return Ok(DEFAULT.to_owned());
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let Value::Object(map) = value else {
        return Err("the configuration must be a JSON object".to_owned());
    };
    let mut key = DEFAULT.to_owned();
    for (name, value) in map {
        match (name.as_str(), value) {
            ("sharedDataKey", Value::String(s)) if !s.is_empty() => key = s,
            ("sharedDataKey", _) => return Err("sharedDataKey: must be a non-empty string".into()),
            (other, _) => return Err(format!("{other}: unknown key")),
        }
    }
    Ok(key)
}

/// The root context: holds the counter's key.
pub struct SharedDataRoot {
    key: Rc<str>,
}

impl Context for SharedDataRoot {}

impl RootContext for SharedDataRoot {
    fn on_configure(&mut self, _: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match parse_config(&bytes) {
            Ok(key) => {
                self.key = Rc::from(key);
                true
            }
            Err(problem) => {
                error!("shared_data: {problem}");
                false
            }
        }
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(SharedDataFilter {
            key: self.key.clone(),
            value: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The filter of one stream.
pub struct SharedDataFilter {
    key: Rc<str>,
    value: Option<u64>,
}

impl SharedDataFilter {
    fn increment(&self) -> Option<u64> {
        for _ in 0..MAX_ATTEMPTS {
            let (bytes, cas) = self.get_shared_data(&self.key);
            let current = match bytes {
                None => 0,
                Some(bytes) => u64::from_le_bytes(bytes.as_slice().try_into().ok()?),
            };
            let next = current.checked_add(1)?;
            match self.set_shared_data(&self.key, Some(&next.to_le_bytes()), cas) {
                Ok(()) => return Some(next),
                Err(Status::CasMismatch) => continue,
                Err(_) => return None,
            }
        }
        None
    }
}

impl Context for SharedDataFilter {}

impl HttpContext for SharedDataFilter {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        match self.increment() {
            Some(value) => {
                info!("shared value: {value}");
                self.value = Some(value);
            }
            None => error!("shared key `{}`: increment failed", self.key),
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        if let Some(value) = self.value {
            self.set_http_response_header("x-shared-value", Some(&value.to_string()));
        }
        Action::Continue
    }
}
