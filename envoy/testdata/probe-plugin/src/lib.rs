//! A raw proxy-wasm plugin, written on the SDK alone, that proves the Envoy harness runs wasm.
//!
//! Configuration: `name=value` (for example `x-probe=hello`); the plugin adds the response
//! header `name: value` to every response and logs `probe: request <method> <path>` at info
//! for every request. Empty configuration means `x-probe=hello`. Anything else (no `=`, an
//! empty name) is refused: `on_configure` logs `probe: bad configuration ...` and returns
//! false, so Envoy refuses to start.
//!
//! Build: `cargo build --target wasm32-wasip1 --release -p probe-plugin`, then run it with
//! `envoy/plugin.yaml`.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType};

// The SDK's macro defines the `_initialize` export, which cannot carry a doc comment.
#[allow(missing_docs)]
mod entry {
    use super::{LogLevel, Probe, RootContext};

    proxy_wasm::main! {{
        proxy_wasm::set_log_level(LogLevel::Info);
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Probe::default()) });
    }}
}

/// The header to add, as configured.
#[derive(Clone)]
struct Header {
    name: String,
    value: String,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            name: "x-probe".to_owned(),
            value: "hello".to_owned(),
        }
    }
}

/// Parses `name=value`; `None` when the configuration is not of that form.
fn parse(config: &[u8]) -> Option<Header> {
    if config.is_empty() {
        return Some(Header::default());
    }
    let text = std::str::from_utf8(config).ok()?;
    let (name, value) = text.split_once('=')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    Some(Header {
        name: name.to_owned(),
        value: value.trim().to_owned(),
    })
}

fn log(level: LogLevel, message: &str) {
    // Nothing sensible to do if logging itself fails.
    let _ = hostcalls::log(level, message);
}

#[derive(Default)]
struct Probe {
    header: Header,
}

impl Context for Probe {}

impl RootContext for Probe {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                log(
                    LogLevel::Error,
                    &format!("probe: cannot read configuration: {status:?}"),
                );
                return false;
            }
        };
        match parse(&config) {
            Some(header) => {
                log(
                    LogLevel::Info,
                    &format!("probe: configured {}: {}", header.name, header.value),
                );
                self.header = header;
                true
            }
            None => {
                log(
                    LogLevel::Error,
                    &format!(
                        "probe: bad configuration {:?}: expected name=value",
                        String::from_utf8_lossy(&config)
                    ),
                );
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(ProbeStream {
            header: self.header.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct ProbeStream {
    header: Header,
}

impl Context for ProbeStream {}

impl HttpContext for ProbeStream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let get = |name| {
            hostcalls::get_map_value(MapType::HttpRequestHeaders, name)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        log(
            LogLevel::Info,
            &format!("probe: request {} {}", get(":method"), get(":path")),
        );
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if let Err(status) = hostcalls::add_map_value(
            MapType::HttpResponseHeaders,
            &self.header.name,
            &self.header.value,
        ) {
            log(
                LogLevel::Error,
                &format!("probe: cannot add response header: {status:?}"),
            );
        }
        Action::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_name_and_value() {
        let h = parse(b"x-a = b=c").unwrap();
        assert_eq!((h.name.as_str(), h.value.as_str()), ("x-a", "b=c"));
    }

    #[test]
    fn parse_defaults_when_empty_and_refuses_garbage() {
        assert_eq!(parse(b"").unwrap().name, "x-probe");
        assert!(parse(b"no equals sign").is_none());
        assert!(parse(b"=value").is_none());
        assert!(parse(&[0xff, b'=']).is_none());
    }
}
