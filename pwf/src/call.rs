//! Outbound HTTP calls: the request builder, the response, and the one
//! callout layer that both [`DispatchGroup`](crate::DispatchGroup) and async
//! tasks stand on.
//!
//! A call is dispatched when [`Request::send`] is called and completes when
//! Envoy calls `on_http_call_response` for its token. pwf reads the response
//! during that callback (the only time the host serves it), stores it, and
//! wakes whoever waits on the [`PendingCall`]. Dropping a `PendingCall`
//! forgets the call: a late response for it finds nothing and is ignored.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use fnv::FnvHashMap;
use proxy_wasm::types::{BufferType, MapType};

use crate::error::{HostError, Status};
use crate::headers::{HeaderValue, Headers};
use crate::host;

/// The timeout of a call when the request does not set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// An HTTP call to an Envoy cluster, built step by step and sent with
/// [`send`](Request::send).
///
/// The three pseudo-headers Envoy requires are always sent: `:method`,
/// `:path`, and `:authority` (the cluster name unless set).
///
/// ```
/// use std::time::Duration;
/// use pwf::Request;
///
/// let request = Request::get("httpbin", "/uuid")
///     .header("accept", "application/json")
///     .timeout(Duration::from_millis(250));
/// assert_eq!(request.cluster(), "httpbin");
/// ```
#[derive(Clone, Debug)]
pub struct Request {
    cluster: String,
    method: String,
    path: String,
    authority: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    trailers: Vec<(String, String)>,
    timeout: Duration,
}

impl Request {
    /// A request with the given method and path, to `cluster`.
    pub fn new(
        method: impl Into<String>,
        cluster: impl Into<String>,
        path: impl Into<String>,
    ) -> Request {
        Request {
            cluster: cluster.into(),
            method: method.into(),
            path: path.into(),
            authority: None,
            headers: Vec::new(),
            body: None,
            trailers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A `GET` request for `path` to `cluster`.
    pub fn get(cluster: impl Into<String>, path: impl Into<String>) -> Request {
        Request::new("GET", cluster, path)
    }

    /// A `POST` request for `path` to `cluster`.
    pub fn post(cluster: impl Into<String>, path: impl Into<String>) -> Request {
        Request::new("POST", cluster, path)
    }

    /// Sets `:authority` (by default, the cluster name).
    pub fn authority(mut self, authority: impl Into<String>) -> Request {
        self.authority = Some(authority.into());
        self
    }

    /// Adds a header. Pseudo-headers given here replace the builder's own.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        let name = name.into();
        match name.as_str() {
            ":method" => self.method = value.into(),
            ":path" => self.path = value.into(),
            ":authority" => self.authority = Some(value.into()),
            _ => self.headers.push((name, value.into())),
        }
        self
    }

    /// Adds every header of `headers`, pseudo-headers included (see
    /// [`header`](Request::header)). Values that are not UTF-8 are skipped:
    /// the host takes call headers as text.
    pub fn headers<'a>(
        mut self,
        headers: impl IntoIterator<Item = (&'a str, &'a HeaderValue)>,
    ) -> Request {
        for (name, value) in headers {
            if let Ok(value) = value.to_str() {
                self = self.header(name, value);
            }
        }
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Some(body.into());
        self
    }

    /// Adds a trailer.
    pub fn trailer(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.trailers.push((name.into(), value.into()));
        self
    }

    /// Sets the timeout (default [`DEFAULT_TIMEOUT`]). It must be at least
    /// one millisecond and at most `u32::MAX` milliseconds: Envoy reads 0 as
    /// "no timeout", and the ABI carries milliseconds as a `u32`.
    /// [`send`](Request::send) rejects any other.
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = timeout;
        self
    }

    /// The cluster this request goes to.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Dispatches the call. The returned [`PendingCall`] resolves when the
    /// response arrives.
    ///
    /// Fails, naming the cluster, when the timeout is out of range or when
    /// Envoy refuses the call (an unknown cluster gives
    /// [`CallErrorKind::Dispatch`] with [`Status::BadArgument`]).
    pub fn send(self) -> Result<PendingCall, CallError> {
        let millis = self.timeout.as_millis();
        if millis == 0 {
            return Err(CallError::new(self.cluster, CallErrorKind::ZeroTimeout));
        }
        if millis > u128::from(u32::MAX) {
            return Err(CallError::new(self.cluster, CallErrorKind::TimeoutTooLong));
        }
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(3 + self.headers.len());
        headers.push((":method", &self.method));
        headers.push((":path", &self.path));
        headers.push((
            ":authority",
            self.authority.as_deref().unwrap_or(&self.cluster),
        ));
        headers.extend(self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let trailers = self
            .trailers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let token = match host::dispatch_http_call(
            &self.cluster,
            headers,
            self.body.as_deref(),
            trailers,
            self.timeout,
        ) {
            Ok(token) => token,
            Err(error) => {
                return Err(CallError::new(
                    self.cluster,
                    CallErrorKind::Dispatch(error.status()),
                ))
            }
        };
        CALLS.with(|calls| {
            calls.borrow_mut().insert(
                token,
                CallState {
                    waker: None,
                    result: None,
                },
            )
        });
        Ok(PendingCall {
            token,
            cluster: Some(self.cluster),
        })
    }
}

/// The response to an HTTP call.
#[derive(Clone, Debug)]
pub struct Response {
    cluster: String,
    status: u16,
    headers: Headers,
    body: Vec<u8>,
    trailers: Headers,
}

impl Response {
    /// The `:status` of the response.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers.get(name)
    }

    /// Every header, pseudo-headers included, in order.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The body (empty when there was none).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Takes the body out of the response.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// The trailers.
    pub fn trailers(&self) -> &Headers {
        &self.trailers
    }

    /// The cluster that answered.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The response if its status is 2xx, else a [`CallErrorKind::Status`]
    /// error. Envoy answers a refused connection with a 503 and a timeout with
    /// a 504 of its own, so a caller that needs an answer should use this.
    pub fn error_for_status(self) -> Result<Response, CallError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(CallError::new(
                self.cluster,
                CallErrorKind::Status(self.status),
            ))
        }
    }
}

/// Why a call did not produce a usable response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallErrorKind {
    /// The timeout was zero, which Envoy would read as "no timeout".
    ZeroTimeout,
    /// The timeout does not fit the ABI's `u32` milliseconds.
    TimeoutTooLong,
    /// Envoy refused to dispatch the call. `BadArgument` means an unknown
    /// cluster or a missing `:method`, `:path` or `:authority`.
    Dispatch(Status),
    /// The call failed without a response: Envoy delivered it with zero
    /// headers (the stream was reset, or the response was cut off).
    Failed,
    /// The response came, with a status the caller did not accept.
    Status(u16),
    /// The host failed to hand over the response.
    Host(Status),
}

/// A call that did not produce a usable response, naming the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError {
    cluster: String,
    kind: CallErrorKind,
}

impl CallError {
    fn new(cluster: String, kind: CallErrorKind) -> CallError {
        CallError { cluster, kind }
    }

    /// The cluster the call went to.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// What went wrong.
    pub fn kind(&self) -> &CallErrorKind {
        &self.kind
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cluster = &self.cluster;
        match &self.kind {
            CallErrorKind::ZeroTimeout => write!(
                f,
                "call to cluster `{cluster}` not sent: a zero timeout means no timeout to Envoy; give at least 1ms"
            ),
            CallErrorKind::TimeoutTooLong => write!(
                f,
                "call to cluster `{cluster}` not sent: the timeout exceeds u32::MAX milliseconds"
            ),
            CallErrorKind::Dispatch(Status::BadArgument) => write!(
                f,
                "call to cluster `{cluster}` refused by Envoy (bad argument): the cluster is unknown, or :method, :path or :authority is missing"
            ),
            CallErrorKind::Dispatch(status) => {
                write!(f, "call to cluster `{cluster}` refused by Envoy: {status}")
            }
            CallErrorKind::Failed => write!(
                f,
                "call to cluster `{cluster}` failed: no response (reset or cut off)"
            ),
            CallErrorKind::Status(status) => {
                write!(f, "call to cluster `{cluster}` answered with status {status}")
            }
            CallErrorKind::Host(status) => write!(
                f,
                "call to cluster `{cluster}`: the host failed to hand over the response: {status}"
            ),
        }
    }
}

impl std::error::Error for CallError {}

struct CallState {
    waker: Option<Waker>,
    result: Option<Result<Response, CallErrorKind>>,
}

thread_local! {
    static CALLS: RefCell<FnvHashMap<u32, CallState>> = RefCell::default();
}

/// A dispatched call; resolves to its response.
///
/// Dropping it forgets the call: its response, if it ever comes, is ignored.
#[derive(Debug)]
#[must_use = "a call's response is only seen by awaiting its PendingCall"]
pub struct PendingCall {
    token: u32,
    cluster: Option<String>,
}

impl PendingCall {
    /// The host's token for this call.
    pub fn token(&self) -> u32 {
        self.token
    }
}

impl Future for PendingCall {
    type Output = Result<Response, CallError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let token = self.token;
        let result = CALLS.with(|calls| {
            let mut calls = calls.borrow_mut();
            let state = calls.get_mut(&token)?;
            match state.result.take() {
                Some(result) => {
                    calls.remove(&token);
                    Some(result)
                }
                None => {
                    match &mut state.waker {
                        Some(waker) if waker.will_wake(cx.waker()) => {}
                        slot => *slot = Some(cx.waker().clone()),
                    }
                    None
                }
            }
        });
        let Some(result) = result else {
            return Poll::Pending;
        };
        let cluster = self.cluster.take().unwrap_or_default();
        Poll::Ready(match result {
            Ok(mut response) => {
                response.cluster = cluster;
                Ok(response)
            }
            Err(kind) => Err(CallError::new(cluster, kind)),
        })
    }
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        let _ = CALLS.try_with(|calls| calls.borrow_mut().remove(&self.token));
    }
}

/// Delivers the response to call `token`, read from the host now, during
/// `on_http_call_response`. Returns whether anyone was waiting for it.
pub(crate) fn deliver(
    token: u32,
    num_headers: usize,
    body_size: usize,
    num_trailers: usize,
) -> bool {
    let known = CALLS.with(|calls| calls.borrow().contains_key(&token));
    if !known {
        return false;
    }
    let result = read_response(num_headers, body_size, num_trailers);
    let waker = CALLS.with(|calls| {
        let mut calls = calls.borrow_mut();
        let state = calls.get_mut(&token)?;
        state.result = Some(result);
        state.waker.take()
    });
    if let Some(waker) = waker {
        waker.wake();
    }
    true
}

fn read_response(
    num_headers: usize,
    body_size: usize,
    num_trailers: usize,
) -> Result<Response, CallErrorKind> {
    if num_headers == 0 {
        return Err(CallErrorKind::Failed);
    }
    let host_error = |error: HostError| CallErrorKind::Host(error.status());
    let headers =
        Headers::from(host::get_map(MapType::HttpCallResponseHeaders).map_err(host_error)?);
    let status = headers
        .get(":status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .ok_or(CallErrorKind::Failed)?;
    let body = if body_size > 0 {
        host::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .map_err(host_error)?
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let trailers = if num_trailers > 0 {
        Headers::from(host::get_map(MapType::HttpCallResponseTrailers).map_err(host_error)?)
    } else {
        Headers::default()
    };
    Ok(Response {
        cluster: String::new(),
        status,
        headers,
        body,
        trailers,
    })
}

/// Calls in flight in this VM, for tests and diagnostics.
pub(crate) fn pending_calls() -> usize {
    CALLS.with(|calls| calls.borrow().len())
}
