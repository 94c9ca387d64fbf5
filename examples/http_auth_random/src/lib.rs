//! Asks an auth cluster about every request, in straight-line async code,
//! and allows or denies it by the parity of the answer's FNV-1a hash.
//!
//! On request headers it forwards the request's headers to `authCluster`,
//! on a GET for the request's own path (as the Go example does), and awaits
//! the answer. Forwarding leaves out the pseudo-headers, the hop-by-hop
//! headers and the body's framing (`content-length`, `transfer-encoding`):
//! the call has no body, and a forwarded `content-length` would make the
//! auth service wait for one. An even hash of the answer's body lets
//! the request through; an odd one answers 403 `access forbidden` with
//! `powered-by: pwf`. A failed call (no response, or a status other than 2xx:
//! Envoy answers a refused connection with 503 and a timeout with 504) is
//! logged and answered 503, or let through when `failOpen` is set. A call
//! pwf refuses to send because of the request itself (a header value that
//! is not UTF-8, which call headers cannot carry) is answered 400 whatever
//! `failOpen` says: the request cannot be checked, so it does not pass.
//!
//! Build: `cargo build --target wasm32-wasip1 --release -p http_auth_random`,
//! then run it in Envoy with `examples/http_auth_random/envoy.yaml`.

#![forbid(unsafe_code)]

use std::hash::Hasher;
use std::rc::Rc;
use std::time::Duration;

use pwf::log::{Limited, LogLevel};
use pwf::{
    Action, CallErrorKind, Error, Http, HttpFilter, LocalResponse, Outcome, Plugin, PluginConfig,
    PluginContext, Request, Response,
};

/// The plugin configuration.
#[derive(PluginConfig, Debug)]
pub struct Config {
    /// The cluster that decides.
    #[config(default = "httpbin", non_empty)]
    pub auth_cluster: String,
    /// The call's timeout (`5000`, `"5s"`, `"250ms"`).
    #[config(default = "5000ms", validate = pwf::config::call_timeout)]
    pub timeout_ms: Duration,
    /// Let requests through when the auth call fails.
    #[config(default = false)]
    pub fail_open: bool,
}

/// Whether `body` is allowed: its FNV-1a hash is even.
///
/// The `fnv` crate computes 64-bit FNV-1a. Its parity equals that of 32-bit
/// FNV-1a (the Go example's `fnv.New32a`): each step XORs a byte into the low
/// bits and multiplies by an odd prime, which keeps the parity, and both
/// offset bases are odd. So the low bit of either hash is 1 XOR the low bits of
/// all the bytes.
pub fn allowed(body: &[u8]) -> bool {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(body);
    hasher.finish() % 2 == 0
}

/// The plugin: holds the configuration.
pub struct HttpAuthRandom {
    config: Config,
}

impl Plugin for HttpAuthRandom {
    type Config = Config;
    type Filter = HttpAuthRandomFilter;

    fn configure(config: Config, _: &PluginContext) -> Result<Self, Error> {
        Ok(HttpAuthRandom { config })
    }

    fn filter(plugin: &Rc<Self>, _: &Http) -> HttpAuthRandomFilter {
        HttpAuthRandomFilter {
            plugin: plugin.clone(),
        }
    }
}

/// Failed auth calls come at the rate of requests when the auth service is
/// down: 10 lines per 10 s at most, and the counter
/// `http_auth_random.failed` counts them all.
static FAILED: Limited = Limited::new("http_auth_random.failed", 10, Duration::from_secs(10));

/// The filter of one stream.
pub struct HttpAuthRandomFilter {
    plugin: Rc<HttpAuthRandom>,
}

impl HttpFilter for HttpAuthRandomFilter {
    fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        let config = &self.plugin.config;
        let headers = http.request_headers()?;
        // The client's path, as the Go example sends it: the auth service
        // sees what is asked for.
        let path = headers.get(":path").map(|path| path.to_string());
        // Only the answer's status and body count: its headers are not read.
        let request = Request::get(&config.auth_cluster, path.unwrap_or_else(|| "/".to_owned()))
            .forward_headers(headers)
            .timeout(config.timeout_ms)
            .without_headers();
        let fail_open = config.fail_open;
        Ok(http.spawn(async move {
            let answer = match request.send() {
                Ok(call) => call.await.and_then(Response::error_for_status),
                Err(error) => Err(error),
            };
            Ok(match answer {
                Ok(response) if allowed(response.body()) => {
                    pwf::info!("access granted");
                    Outcome::Continue
                }
                Ok(_) => {
                    pwf::info!("access forbidden");
                    LocalResponse::new(403)
                        .header("powered-by", "pwf")
                        .body("access forbidden")
                        .into()
                }
                // The request itself cannot be forwarded: never fail open.
                Err(error) if refused_for_the_request(error.kind()) => {
                    pwf::warn!("{error}; the request cannot be checked: 400");
                    LocalResponse::new(400)
                        .header("powered-by", "pwf")
                        .body("request headers cannot be checked")
                        .into()
                }
                Err(error) if fail_open => {
                    FAILED.log(
                        LogLevel::Warn,
                        format_args!("{error}; failing open: the request goes on"),
                    );
                    Outcome::Continue
                }
                Err(error) => {
                    FAILED.log(
                        LogLevel::Error,
                        format_args!("{error}; failing closed: 503"),
                    );
                    LocalResponse::new(503)
                        .header("powered-by", "pwf")
                        .body("auth service unavailable")
                        .into()
                }
            })
        }))
    }
}

/// Whether pwf refused the call because of what the client sent, rather
/// than because the auth service failed.
fn refused_for_the_request(kind: &CallErrorKind) -> bool {
    matches!(
        kind,
        CallErrorKind::NotUtf8(_)
            | CallErrorKind::InvalidHeader(_)
            | CallErrorKind::TooManyHeaders { .. }
            | CallErrorKind::HeadersTooLarge { .. }
    )
}

pwf::main!(HttpAuthRandom);
