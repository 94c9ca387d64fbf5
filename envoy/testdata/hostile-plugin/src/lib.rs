//! A pwf plugin for the hostile-input e2e tests (`envoy/e2e/tests/hostile.rs`): it copies
//! what the request asks for into headers and calls, as a careless plugin would, and
//! answers with what pwf and Envoy made of it.
//!
//! The query string drives it (values percent-decoded, so they can hold CR, LF and NUL):
//!
//! - `/set?name=N&value=V`: adds the response header `N: V` on the upstream's response,
//!   and `x-result: set` or `x-result: refused`.
//! - `/raw-set?name=N&value=V`: the same through the SDK alone, past pwf's checks: what
//!   Envoy itself does with such a header.
//! - `/respond?name=N&value=V`: answers locally with the header `N: V`.
//! - `/call?timeout_ms=T&headers=H&value_bytes=B&cluster=C&body_bytes=N`: sends a GET to
//!   cluster `C` (default `httpbin`) for `/status/200` (a POST to `/anything` with a body
//!   of `N` bytes when `N` is given), with `H` extra headers and one header of `B` bytes,
//!   and answers 200 with `answered <status>` or `refused: <error>`.
//! - `/raw-call?...`: the same call through the SDK alone, past pwf's checks, answering
//!   `dispatched` or `refused: <status>`: what Envoy itself does.
//!
//! Build: `cargo build --target wasm32-wasip1 --release -p hostile-plugin`, then run it
//! with `envoy/plugin.yaml`.

#![forbid(unsafe_code)]

use std::rc::Rc;
use std::time::Duration;

use pwf::{
    Action, Error, Http, HttpFilter, LocalResponse, Outcome, Plugin, PluginContext, Request,
};

/// The plugin: no configuration.
pub struct Hostile;

impl Plugin for Hostile {
    type Config = ();
    type Filter = HostileFilter;

    fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
        Ok(Hostile)
    }

    fn filter(_: &Rc<Self>, _: &Http) -> HostileFilter {
        HostileFilter::default()
    }
}

/// The filter of one stream: the header to add on the response, if asked.
#[derive(Default)]
pub struct HostileFilter {
    set: Option<(String, Vec<u8>)>,
    /// Whether to set it through the SDK alone.
    raw: bool,
}

/// `%XX`-decoded bytes of `text` (`+` stays `+`).
fn decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// The path without its query, and the decoded query pairs.
fn parse(target: &str) -> (&str, Vec<(String, Vec<u8>)>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let pairs = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                String::from_utf8_lossy(&decode(key)).into_owned(),
                decode(value),
            )
        })
        .collect();
    (path, pairs)
}

/// What a call should carry, read from the query.
struct CallSpec {
    cluster: String,
    timeout: Duration,
    headers: usize,
    value_bytes: usize,
    body_bytes: usize,
}

impl CallSpec {
    fn read(query: &[(String, Vec<u8>)]) -> CallSpec {
        let get = |key: &str| {
            query
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        let number = |key: &str, default: u64| {
            get(key)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(default)
        };
        CallSpec {
            cluster: get("cluster").unwrap_or_else(|| "httpbin".to_owned()),
            timeout: Duration::from_millis(number("timeout_ms", 5000)),
            headers: number("headers", 0) as usize,
            value_bytes: number("value_bytes", 0) as usize,
            body_bytes: number("body_bytes", 0) as usize,
        }
    }

    /// The extra headers: `x-h0: 1`... and `x-big` of `value_bytes` bytes.
    fn extra(&self) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = (0..self.headers)
            .map(|i| (format!("x-h{i}"), "1".to_owned()))
            .collect();
        if self.value_bytes > 0 {
            headers.push(("x-big".to_owned(), "b".repeat(self.value_bytes)));
        }
        headers
    }
}

fn text(status: u32, body: String) -> LocalResponse {
    LocalResponse::new(status)
        .header("content-type", "text/plain")
        .body(body)
}

impl HttpFilter for HostileFilter {
    fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        let target = http
            .request_header(":path")?
            .unwrap_or_default()
            .to_string();
        let (path, query) = parse(&target);
        let pair = || {
            let get = |key: &str| query.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
            let name = String::from_utf8_lossy(&get("name").unwrap_or_default()).into_owned();
            (name, get("value").unwrap_or_default())
        };
        match path {
            "/set" | "/raw-set" => {
                self.set = Some(pair());
                self.raw = path == "/raw-set";
                Ok(Action::Continue)
            }
            "/respond" => {
                let (name, value) = pair();
                let response = text(200, "local\n".to_owned()).header(name, value);
                Ok(http.spawn(async move { Ok(Outcome::Respond(response)) }))
            }
            "/call" => {
                let spec = CallSpec::read(&query);
                let mut request = if spec.body_bytes > 0 {
                    Request::post(&spec.cluster, "/anything").body(vec![b'a'; spec.body_bytes])
                } else {
                    Request::get(&spec.cluster, "/status/200")
                }
                .timeout(spec.timeout)
                .status_only();
                for (name, value) in spec.extra() {
                    request = request.header(name, value);
                }
                Ok(http.spawn(async move {
                    let body = match request.send() {
                        Ok(call) => match call.await {
                            Ok(response) => format!("answered {}\n", response.status()),
                            Err(error) => format!("failed: {error}\n"),
                        },
                        Err(error) => {
                            pwf::error!("{error}");
                            format!("refused: {error}\n")
                        }
                    };
                    Ok(text(200, body).into())
                }))
            }
            "/raw-call" => {
                let spec = CallSpec::read(&query);
                let extra = spec.extra();
                let mut headers = vec![
                    (":method", "GET"),
                    (":path", "/status/200"),
                    (":authority", spec.cluster.as_str()),
                ];
                headers.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                let body = match proxy_wasm::hostcalls::dispatch_http_call(
                    &spec.cluster,
                    headers,
                    None,
                    Vec::new(),
                    spec.timeout,
                ) {
                    Ok(_) => "dispatched\n".to_owned(),
                    Err(status) => format!("refused: {status:?}\n"),
                };
                Ok(http.respond(text(200, body))?)
            }
            _ => Ok(Action::Continue),
        }
    }

    fn on_response_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        if let Some((name, value)) = &self.set {
            if self.raw {
                let value = String::from_utf8_lossy(value);
                let _ = proxy_wasm::hostcalls::add_map_value(
                    proxy_wasm::types::MapType::HttpResponseHeaders,
                    name,
                    &value,
                );
                return Ok(Action::Continue);
            }
            let result = match http.add_response_header(name, value) {
                Ok(()) => "set",
                Err(error) => {
                    pwf::error!("{error}");
                    "refused"
                }
            };
            http.set_response_header("x-result", result)?;
        }
        Ok(Action::Continue)
    }
}

pwf::main!(Hostile);
