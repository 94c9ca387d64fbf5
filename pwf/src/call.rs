//! Outbound HTTP calls: the request builder, the response, and the one
//! callout layer that both [`DispatchGroup`](crate::DispatchGroup) and async
//! tasks stand on.
//!
//! A call is dispatched when [`Request::send`] is called and completes when
//! Envoy calls `on_http_call_response` for its token. pwf reads the response
//! during that callback (the only time the host serves it), stores it, and
//! wakes whoever waits on the [`PendingCall`]. Dropping a `PendingCall`
//! forgets the call: a late response for it finds nothing and is ignored.

use std::borrow::Cow;
use std::cell::{Cell, OnceCell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use proxy_wasm::types::{BufferType, MapType};

use crate::config::timeout_millis;
use crate::context;
use crate::error::{HostError, Status};
use crate::headers::{HeaderValue, Headers, InvalidHeader, Unsendable, NO_HEADERS};
use crate::host;
use crate::shown::Shown;
use crate::slot::fill;
use crate::tokens::TokenMap;

/// The timeout of a call when the request does not set one.
///
/// ```
/// # use pwf_test as _; // links the native host's imports
/// use std::time::Duration;
///
/// assert_eq!(pwf::DEFAULT_TIMEOUT, Duration::from_secs(5));
/// // A call that must answer faster sets its own.
/// let quick = pwf::Request::get("auth", "/check").timeout(Duration::from_millis(200));
/// # let _ = quick;
/// ```
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// An HTTP call to an Envoy cluster, built step by step and sent with
/// [`send`](Request::send).
///
/// The three pseudo-headers Envoy requires are always sent: `:method`,
/// `:path`, and `:authority` (the cluster name unless set).
///
/// ```
/// # use pwf_test as _; // links the native host's imports
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
    /// Shared with every call sent from this request and their responses.
    cluster: Rc<str>,
    method: Cow<'static, str>,
    path: String,
    authority: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    trailers: Vec<(String, String)>,
    /// The size of `headers` as the ABI passes them, pair by pair
    /// ([`pair_bytes`]), added up as they are added: a send checks the
    /// limits without going through them again.
    header_bytes: usize,
    /// The same for `trailers`.
    trailer_bytes: usize,
    timeout: Duration,
    read: Read,
    /// Why the request cannot be sent, found while it was built: the first
    /// problem, reported by [`send`](Request::send).
    refusal: Option<Box<CallErrorKind>>,
}

/// The most pairs Envoy takes in one header or trailer map of a call
/// (proxy-wasm-cpp-host's `PROXY_WASM_HOST_PAIRS_MAX_COUNT`); past it the
/// map arrives empty and the call is refused as if `:path` were missing.
pub(crate) const MAX_PAIRS: usize = 1024;

/// The largest serialized header or trailer map Envoy takes for a call
/// (proxy-wasm-cpp-host's `PROXY_WASM_HOST_PAIRS_MAX_BYTES`): 4 bytes, then
/// 8 per pair, then each name and value with a NUL after it.
pub(crate) const MAX_PAIRS_BYTES: usize = 1 << 20;

/// Headers a call never forwards: hop-by-hop headers (RFC 9110 section
/// 7.6.1), which belong to the client's connection, and the body's framing,
/// which describes the client's body and not the call's.
const NOT_FORWARDED: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "upgrade",
    "transfer-encoding",
    "content-length",
];

/// How much of its response a call reads: what it is, and the function
/// that reads it (none: nothing is read), chosen where the request is built
/// (see docs/architecture.md, "Linking").
#[derive(Clone, Copy)]
struct Read {
    amount: Amount,
    reader: Option<Reader>,
}

/// How much of its response a call reads, as `Debug` shows it.
#[derive(Clone, Copy, Debug)]
enum Amount {
    Whole,
    NoHeaders,
    Status,
    Nothing,
}

/// Reads a response that came, given its body size and trailer count.
type Reader = fn(usize, usize) -> Landed;

impl Read {
    /// Status, headers, body and trailers.
    const WHOLE: Read = Read {
        amount: Amount::Whole,
        reader: Some(read_whole),
    };
    /// Status, body and trailers: not the headers.
    const NO_HEADERS: Read = Read {
        amount: Amount::NoHeaders,
        reader: Some(read_without_headers),
    };
    /// The status alone.
    const STATUS: Read = Read {
        amount: Amount::Status,
        reader: Some(read_status),
    };
    /// Nothing: only whether a response came.
    const NOTHING: Read = Read {
        amount: Amount::Nothing,
        reader: None,
    };
}

impl fmt::Debug for Read {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.amount, f)
    }
}

impl Request {
    /// A request with the given method and path, to `cluster`.
    ///
    /// ```
    /// # use pwf_test as _; // links the native host's imports
    /// use pwf::Request;
    ///
    /// let purge = Request::new("PURGE", "cache", "/images/logo.png");
    /// assert_eq!(purge.cluster(), "cache");
    /// ```
    pub fn new(
        method: impl Into<Cow<'static, str>>,
        cluster: impl AsRef<str>,
        path: impl Into<String>,
    ) -> Request {
        let method = method.into();
        let invalid = crate::headers::check_value(":method", method.as_bytes()).err();
        Request::with_method(method, invalid, cluster.as_ref(), path.into())
    }

    /// A request with `method`, already checked: `invalid` is what its
    /// check found (nothing for the builder's own `GET` and `POST`, which
    /// need no check).
    fn with_method(
        method: Cow<'static, str>,
        invalid: Option<InvalidHeader>,
        cluster: &str,
        path: String,
    ) -> Request {
        let mut request = Request {
            cluster: Rc::from(cluster),
            method,
            path,
            authority: None,
            headers: Vec::new(),
            body: None,
            trailers: Vec::new(),
            header_bytes: 0,
            trailer_bytes: 0,
            timeout: DEFAULT_TIMEOUT,
            read: Read::WHOLE,
            refusal: invalid.map(|invalid| Box::new(CallErrorKind::InvalidHeader(invalid))),
        };
        // The pseudo-headers' values are checked as they are set, once, not
        // at every send of a request built once and sent many times (the
        // cluster is the default `:authority`).
        let cluster = request.cluster.clone();
        let path = std::mem::take(&mut request.path);
        request.check_pseudo(":path", &path);
        request.check_pseudo(":authority", &cluster);
        request.path = path;
        request
    }

    /// Refuses the request if `value` cannot be pseudo-header `name`'s.
    fn check_pseudo(&mut self, name: &str, value: &str) {
        if let Err(invalid) = crate::headers::check_value(name, value.as_bytes()) {
            self.refuse(CallErrorKind::InvalidHeader(invalid));
        }
    }

    /// Records why the request cannot be sent, unless a problem was found
    /// already (the first one is reported).
    fn refuse(&mut self, kind: CallErrorKind) {
        if self.refusal.is_none() {
            self.refusal = Some(Box::new(kind));
        }
    }

    /// A `GET` request for `path` to `cluster`.
    ///
    /// ```
    /// # use pwf_test as _; // links the native host's imports
    /// let request = pwf::Request::get("httpbin", "/uuid");
    /// assert_eq!(request.cluster(), "httpbin");
    /// ```
    pub fn get(cluster: impl AsRef<str>, path: impl Into<String>) -> Request {
        Request::with_method(Cow::Borrowed("GET"), None, cluster.as_ref(), path.into())
    }

    /// A `POST` request for `path` to `cluster`.
    ///
    /// ```
    /// # use pwf_test as _; // links the native host's imports
    /// let request = pwf::Request::post("audit", "/events")
    ///     .header("content-type", "application/json")
    ///     .body(r#"{"event":"login"}"#);
    /// assert_eq!(request.cluster(), "audit");
    /// ```
    pub fn post(cluster: impl AsRef<str>, path: impl Into<String>) -> Request {
        Request::with_method(Cow::Borrowed("POST"), None, cluster.as_ref(), path.into())
    }

    /// Sets `:authority` (by default, the cluster name).
    ///
    /// ```
    /// # use pwf_test as _; // links the native host's imports
    /// // Cluster `backend`, virtual host `api.example.com`.
    /// let request = pwf::Request::get("backend", "/v1/users").authority("api.example.com");
    /// assert_eq!(request.cluster(), "backend");
    /// ```
    pub fn authority(mut self, authority: impl Into<String>) -> Request {
        let authority = authority.into();
        self.check_pseudo(":authority", &authority);
        self.authority = Some(authority);
        self
    }

    /// Adds a header. Pseudo-headers given here replace the builder's own.
    ///
    /// A name that is not a token (or `:` and a token) or a value with a CR,
    /// LF or NUL makes [`send`](Request::send) refuse the request with
    /// [`CallErrorKind::InvalidHeader`]: nothing is sent.
    ///
    /// ```
    /// # use pwf_test as _; // links the native host's imports
    /// let request = pwf::Request::get("auth", "/check")
    ///     .header("authorization", "Bearer token")
    ///     .header(":method", "HEAD"); // replaces `GET`
    /// assert_eq!(request.cluster(), "auth");
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.add_header(name.into(), value.into());
        self
    }

    fn add_header(&mut self, name: String, value: String) {
        if let Err(invalid) = crate::headers::check(&name, value.as_bytes()) {
            return self.refuse(CallErrorKind::InvalidHeader(invalid));
        }
        self.add_checked_header(name, value);
    }

    /// Adds a header whose name and value passed `headers::check`.
    fn add_checked_header(&mut self, name: String, value: String) {
        match name.as_str() {
            ":method" => self.method = Cow::Owned(value),
            ":path" => self.path = value,
            ":authority" => self.authority = Some(value),
            _ => {
                self.header_bytes += pair_bytes(&name, &value);
                self.headers.push((name, value));
            }
        }
    }

    /// Adds every header of `headers`, as they are.
    ///
    /// To pass on a client's request headers, use
    /// [`forward_headers`](Request::forward_headers) instead, which leaves
    /// out what must not be forwarded. Here, a pseudo-header (`:path`...)
    /// would replace the builder's own without saying so, so
    /// [`send`](Request::send) refuses the request with
    /// [`CallErrorKind::PseudoHeader`]; set those with
    /// [`header`](Request::header). A value that is not UTF-8 is refused
    /// with [`CallErrorKind::NotUtf8`] (the host takes call headers as text),
    /// and an invalid header as [`header`](Request::header) says.
    ///
    /// ```
    /// # use pwf_test as _; // links the native host's imports
    /// use pwf::{CallErrorKind, Headers, Request};
    ///
    /// let extra: Headers = [("x-trace", "1"), ("x-tenant", "acme")].into_iter().collect();
    /// let request = Request::get("auth", "/check").headers(extra);
    /// # let _ = request;
    ///
    /// let sneaky: Headers = [(":path", "/admin")].into_iter().collect();
    /// let error = Request::get("auth", "/check").headers(sneaky).send().unwrap_err();
    /// assert!(matches!(error.kind(), CallErrorKind::PseudoHeader(_)));
    /// ```
    pub fn headers(mut self, headers: Headers) -> Request {
        self.headers.reserve(headers.len());
        for (name, value) in headers {
            if name.starts_with(':') {
                self.refuse(CallErrorKind::PseudoHeader(
                    Shown(name.as_bytes()).to_string(),
                ));
                continue;
            }
            self.add_utf8_header(name, value);
        }
        self
    }

    /// Forwards a client's headers on this call: every header of `headers`
    /// but the pseudo-headers, so the builder's method, path and authority
    /// stay; the hop-by-hop headers (`connection`, `keep-alive`,
    /// `proxy-connection`, `te`, `upgrade`, and any named in `connection`);
    /// and the body's framing (`content-length`, `transfer-encoding`), which
    /// describes the client's body, not the call's: Envoy frames the call's
    /// own [`body`](Request::body), if it has one.
    ///
    /// A value that is not UTF-8 makes [`send`](Request::send) refuse the
    /// call with [`CallErrorKind::NotUtf8`], naming the header: the host
    /// takes call headers as text, and a header left out silently could be
    /// the one the service decides on. To keep the client's path, pass it to
    /// the builder.
    ///
    /// ```no_run
    /// # fn f(http: &pwf::Http) -> Result<(), pwf::Error> {
    /// // Ask `auth` about this request: its headers, on a GET to /check.
    /// let call = pwf::Request::get("auth", "/check")
    ///     .forward_headers(http.request_headers()?)
    ///     .send()?;
    /// # Ok(()) }
    /// ```
    pub fn forward_headers(mut self, headers: Headers) -> Request {
        // Names the client's `connection` header lists are hop-by-hop too,
        // compared as bytes: no text is made of them (which linked the lossy
        // UTF-8 conversion: about 2 KB of http_auth_random).
        let mut listed: Vec<Vec<u8>> = Vec::new();
        for value in headers.get_all("connection") {
            for name in value.split(|&byte| byte == b',') {
                listed.push(name.trim_ascii().to_vec());
            }
        }
        self.headers.reserve(headers.len());
        for (name, value) in headers {
            let hop = |other: &[u8]| name.as_bytes().eq_ignore_ascii_case(other);
            if name.starts_with(':')
                || NOT_FORWARDED.iter().any(|n| hop(n.as_bytes()))
                || listed.iter().any(|n| hop(n))
            {
                continue;
            }
            self.add_utf8_header(name, value);
        }
        self
    }

    /// Adds a header whose value must be UTF-8, or records why not.
    fn add_utf8_header(&mut self, name: String, value: HeaderValue) {
        match crate::headers::check_text(&name, value.into_bytes()) {
            Ok(value) => self.add_checked_header(name, value),
            Err(Unsendable::NotUtf8) => {
                self.refuse(CallErrorKind::NotUtf8(Shown(name.as_bytes()).to_string()))
            }
            Err(Unsendable::Invalid(invalid)) => self.refuse(CallErrorKind::InvalidHeader(invalid)),
        }
    }

    /// Sets the body.
    ///
    /// ```
    /// # use pwf_test as _; // links the native host's imports
    /// let request = pwf::Request::post("audit", "/events").body(b"{\"event\":\"login\"}".to_vec());
    /// assert_eq!(request.cluster(), "audit");
    /// ```
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Some(body.into());
        self
    }

    /// Adds a trailer.
    ///
    /// ```
    /// # use pwf_test as _; // links the native host's imports
    /// let request = pwf::Request::post("grpc-backend", "/pkg.Service/Method")
    ///     .header("content-type", "application/grpc")
    ///     .trailer("x-checksum", "9a0364b9");
    /// assert_eq!(request.cluster(), "grpc-backend");
    /// ```
    pub fn trailer(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        let (name, value) = (name.into(), value.into());
        if let Err(invalid) = crate::headers::check(&name, value.as_bytes()) {
            self.refuse(CallErrorKind::InvalidHeader(invalid));
        }
        self.trailer_bytes += pair_bytes(&name, &value);
        self.trailers.push((name, value));
        self
    }

    /// Sets the timeout (default [`DEFAULT_TIMEOUT`]). It must be at least
    /// one millisecond and at most 2147483647 milliseconds (about 24.8
    /// days): Envoy reads 0 as "no timeout", and reads the milliseconds as a
    /// signed 32-bit count, refusing every call from 2^31 on.
    /// [`send`](Request::send) refuses any other, before anything is sent.
    ///
    /// ```
    /// # use pwf_test as _; // links the native host's imports
    /// use std::time::Duration;
    /// use pwf::{CallErrorKind, Request};
    ///
    /// let quick = Request::get("cache", "/lookup").timeout(Duration::from_millis(50));
    /// assert_eq!(quick.cluster(), "cache");
    ///
    /// // A zero timeout is refused before anything is sent.
    /// let error = Request::get("cache", "/lookup").timeout(Duration::ZERO).send().unwrap_err();
    /// assert_eq!(error.kind(), &CallErrorKind::ZeroTimeout);
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = timeout;
        self
    }

    /// Keeps only the response's status: its headers, body and trailers are
    /// not read, which makes the host's callback cheaper. For callers that
    /// only look at the status, as a health probe does.
    ///
    /// ```no_run
    /// // A health probe: only the status matters.
    /// async fn healthy() -> Result<bool, pwf::Error> {
    ///     let response = pwf::Request::get("backend", "/healthz").status_only().send()?.await?;
    ///     Ok(response.is_success())
    /// }
    /// ```
    pub fn status_only(mut self) -> Request {
        self.read = Read::STATUS;
        self
    }

    /// Reads the response's status, body and trailers, but not its headers:
    /// the host hands over one header instead of all of them. For callers
    /// that look at the status and the body, as an auth check does;
    /// [`headers`](Response::headers) of the response is empty.
    ///
    /// ```no_run
    /// async fn verdict(token: &str) -> Result<Vec<u8>, pwf::Error> {
    ///     let response = pwf::Request::get("auth", "/check")
    ///         .header("authorization", token)
    ///         .without_headers()
    ///         .send()?
    ///         .await?;
    ///     Ok(response.error_for_status()?.into_body())
    /// }
    /// ```
    pub fn without_headers(mut self) -> Request {
        self.read = Read::NO_HEADERS;
        self
    }

    /// Reads nothing of the response: the result only says whether one came,
    /// which is the cheapest callback there is. For fan-outs that count
    /// acknowledgements and do not look at them.
    ///
    /// The result is `Ok` when a response came, with nothing in it: its
    /// [`status`](Response::status) is 0 (not read), no headers, no body. It
    /// is an error of kind [`CallErrorKind::Failed`] when the call ended
    /// without one. Envoy answers a refused connection or a timeout with a
    /// 503 or 504 of its own, which count as responses here: use
    /// [`status_only`](Request::status_only) to tell them apart.
    ///
    /// ```no_run
    /// use pwf::{DispatchGroup, Request};
    ///
    /// // Tell every cache to purge; count the ones that answered.
    /// fn purge(group: &mut DispatchGroup) {
    ///     let purge = Request::new("PURGE", "cache", "/all").ignore_response();
    ///     for _ in 0..3 {
    ///         let _ = group.dispatch(&purge);
    ///     }
    /// }
    /// ```
    pub fn ignore_response(mut self) -> Request {
        self.read = Read::NOTHING;
        self
    }

    /// The cluster this request goes to.
    ///
    /// ```
    /// # use pwf_test as _; // links the native host's imports
    /// let request = pwf::Request::get("auth", "/check");
    /// assert_eq!(request.cluster(), "auth");
    /// ```
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Dispatches the call. The returned [`PendingCall`] resolves when the
    /// response arrives. The request is kept: the same request can be sent
    /// again, as often as needed.
    ///
    /// Fails, naming the cluster, when the timeout is out of range or when
    /// Envoy refuses the call (an unknown cluster gives
    /// [`CallErrorKind::Dispatch`] with [`Status::BadArgument`]).
    ///
    /// ```no_run
    /// async fn user_id(token: &str) -> Result<String, pwf::Error> {
    ///     let call = pwf::Request::get("auth", "/whoami")
    ///         .header("authorization", format!("Bearer {token}"))
    ///         .send()?;
    ///     let response = call.await?.error_for_status()?;
    ///     Ok(String::from_utf8_lossy(response.body()).into_owned())
    /// }
    /// ```
    pub fn send(&self) -> Result<PendingCall, CallError> {
        // A PendingCall can be moved anywhere, shared by many streams: its
        // call belongs to the plugin, and outlives the stream that sent it.
        let (token, route) = self.dispatch(false)?;
        let state = Rc::new(SingleState {
            result: Cell::new(None),
            waker: Cell::new(None),
            in_flight: Cell::new(true),
        });
        self.register(token, route, state.clone(), 0);
        Ok(PendingCall { token, state })
    }

    /// Sends the call for a group: its result goes straight to slot `index`
    /// of `group`.
    pub(crate) fn send_to_group(
        &self,
        group: Rc<dyn Landing>,
        index: usize,
    ) -> Result<(), CallError> {
        // A group fans out calls for one stream: they are routed through
        // it, and if the group outlives it, its calls fail when it ends.
        let (token, route) = self.dispatch(true)?;
        self.register(token, route, group, index);
        if route != 0 {
            crate::hooks::on_stream_end(end_routes_through);
        }
        Ok(())
    }

    /// Routes the response of call `token` to slot `index` of `target`.
    fn register(&self, token: u32, route: u32, target: Rc<dyn Landing>, index: usize) {
        let sink = Sink {
            target,
            index,
            route,
            cluster: self.cluster.clone(),
            read: self.read.reader,
        };
        CALLS.with(|calls| calls.borrow_mut().insert(token, sink));
        crate::hooks::land_calls_with(on_response);
    }

    /// An error of this request's call.
    fn error(&self, kind: CallErrorKind) -> CallError {
        CallError::of(&self.cluster, kind)
    }

    /// Checks the request (its refusal, limits, timeout) and dispatches, through the sending stream if
    /// `for_stream` allows it (see `context::for_own_stream`); the call's
    /// token, and the context its response is routed through (0: the root).
    fn dispatch(&self, for_stream: bool) -> Result<(u32, u32), CallError> {
        if let Some(kind) = &self.refusal {
            return Err(self.error((**kind).clone()));
        }
        self.check_limits()?;
        let millis = match timeout_millis(self.timeout) {
            Some(0) => return Err(self.error(CallErrorKind::ZeroTimeout)),
            Some(millis) => millis,
            None => return Err(self.error(CallErrorKind::TimeoutTooLong)),
        };
        let pseudo = [
            (":method", &*self.method),
            (":path", &*self.path),
            (
                ":authority",
                self.authority.as_deref().unwrap_or(&self.cluster),
            ),
        ];
        // Collected from iterators of known length: one allocation, no
        // growth checks.
        let headers: Vec<(&str, &str)> = pseudo
            .into_iter()
            .chain(self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .collect();
        let trailers = self
            .trailers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let send = || {
            host::dispatch_http_call(
                &self.cluster,
                headers,
                self.body.as_deref(),
                trailers,
                Duration::from_millis(u64::from(millis)),
            )
        };
        // Sent on behalf of the plugin's root context (or of the sending
        // stream), so that its response reaches its waiter whichever callback
        // sent it (see `context`).
        let sent = if for_stream {
            context::for_own_stream(send)
        } else {
            context::for_root(send).map(|sent| (sent, 0))
        };
        let (sent, route) = sent.ok_or_else(|| self.error(CallErrorKind::NotInCallback))?;
        let token = sent.map_err(|error| match error.call() {
            "dispatch_http_call" => self.error(CallErrorKind::Dispatch(error.status())),
            // Making the right context effective failed.
            _ => self.error(CallErrorKind::Host(error.status())),
        })?;
        Ok((token, route))
    }
}

impl Request {
    /// Checks what Envoy checks when it takes the call, to say which limit a
    /// refused call hit: the number and the size of the header and trailer
    /// pairs (the values were checked as they were set).
    fn check_limits(&self) -> Result<(), CallError> {
        let authority = self.authority.as_deref().unwrap_or(&self.cluster);
        let pseudo_bytes = pair_bytes(":method", &self.method)
            + pair_bytes(":path", &self.path)
            + pair_bytes(":authority", authority);
        let headers = (
            self.headers.len() + 3,
            MAP_COUNT_BYTES + pseudo_bytes + self.header_bytes,
        );
        let trailers = (self.trailers.len(), MAP_COUNT_BYTES + self.trailer_bytes);
        // Both maps are within the limits when their sums are: one test
        // where the four cost about 44 guest instructions per call (a
        // fan-out sends many; multiple_dispatches ten per request).
        if headers.0 + trailers.0 <= MAX_PAIRS && headers.1 + trailers.1 <= MAX_PAIRS_BYTES {
            return Ok(());
        }
        self.over_limits([("headers", headers), ("trailers", trailers)])
    }

    /// [`check_limits`](Request::check_limits) of maps that may be over
    /// them: the first limit a map is over, as an error.
    #[cold]
    #[inline(never)]
    fn over_limits(&self, maps: [(&'static str, (usize, usize)); 2]) -> Result<(), CallError> {
        for (what, (count, bytes)) in maps {
            if count > MAX_PAIRS {
                return Err(self.error(CallErrorKind::TooManyHeaders { what, count }));
            }
            if bytes > MAX_PAIRS_BYTES {
                return Err(self.error(CallErrorKind::HeadersTooLarge { what, bytes }));
            }
        }
        Ok(())
    }
}

/// The size of a map as the ABI passes it: 4 bytes of the count, then
/// [`pair_bytes`] for each pair.
const MAP_COUNT_BYTES: usize = 4;

/// The size of one pair in a map as the ABI passes it: 8 bytes of the two
/// lengths, then the name and the value, each with a NUL after it.
fn pair_bytes(name: &str, value: &str) -> usize {
    8 + name.len() + value.len() + 2
}

/// The response to an HTTP call.
///
/// Its headers are kept as the host handed them over, and parsed only when
/// first asked for; [`status`](Response::status) reads them in place.
///
/// ```no_run
/// async fn fetch_uuid() -> Result<String, pwf::Error> {
///     let response = pwf::Request::get("httpbin", "/uuid").send()?.await?;
///     let response = response.error_for_status()?;
///     Ok(String::from_utf8(response.into_body())?)
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Response {
    cluster: Rc<str>,
    status: u16,
    /// Everything but the status; none for a status-only call, which keeps
    /// the response small where it is moved and stored.
    parts: Option<Box<Parts>>,
}

/// What a response read whole holds besides its status.
#[derive(Clone, Debug)]
struct Parts {
    raw_headers: Vec<u8>,
    headers: OnceCell<Headers>,
    body: Vec<u8>,
    trailers: Headers,
}

impl Response {
    /// The `:status` of the response (0 for a call sent with
    /// [`ignore_response`](Request::ignore_response), which reads nothing).
    ///
    /// ```no_run
    /// async fn exists(path: &str) -> Result<bool, pwf::Error> {
    ///     let response = pwf::Request::new("HEAD", "origin", path).send()?.await?;
    ///     Ok(response.status() != 404)
    /// }
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the status is 2xx.
    ///
    /// ```no_run
    /// async fn allowed() -> Result<bool, pwf::Error> {
    ///     let response = pwf::Request::get("auth", "/check").send()?.await?;
    ///     Ok(response.is_success())
    /// }
    /// ```
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (names compare case-insensitively).
    ///
    /// ```no_run
    /// async fn content_type() -> Result<Option<String>, pwf::Error> {
    ///     let response = pwf::Request::get("httpbin", "/json").send()?.await?;
    ///     Ok(response.header("content-type").map(|value| value.to_string()))
    /// }
    /// ```
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers().get(name)
    }

    /// Every header, pseudo-headers included, in order (none for a call sent
    /// with [`status_only`](Request::status_only),
    /// [`without_headers`](Request::without_headers) or
    /// [`ignore_response`](Request::ignore_response)).
    ///
    /// ```no_run
    /// async fn dump() -> Result<(), pwf::Error> {
    ///     let response = pwf::Request::get("httpbin", "/headers").send()?.await?;
    ///     for (name, value) in response.headers() {
    ///         pwf::debug!("{name}: {value}");
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn headers(&self) -> &Headers {
        match &self.parts {
            Some(parts) => parts.headers.get_or_init(|| {
                Headers::from(host::decode_map(&parts.raw_headers).unwrap_or_default())
            }),
            None => &NO_HEADERS,
        }
    }

    /// The body (empty when there was none).
    ///
    /// ```no_run
    /// async fn config_text() -> Result<String, pwf::Error> {
    ///     let response = pwf::Request::get("config", "/plugin.json").send()?.await?;
    ///     Ok(String::from_utf8_lossy(response.body()).into_owned())
    /// }
    /// ```
    pub fn body(&self) -> &[u8] {
        self.parts.as_ref().map_or(&[], |parts| &parts.body)
    }

    /// Takes the body out of the response.
    ///
    /// ```no_run
    /// async fn download() -> Result<Vec<u8>, pwf::Error> {
    ///     let response = pwf::Request::get("assets", "/logo.png").send()?.await?;
    ///     Ok(response.error_for_status()?.into_body())
    /// }
    /// ```
    pub fn into_body(self) -> Vec<u8> {
        self.parts.map_or_else(Vec::new, |parts| parts.body)
    }

    /// The trailers.
    ///
    /// ```no_run
    /// async fn grpc_status() -> Result<Option<String>, pwf::Error> {
    ///     let response = pwf::Request::post("grpc-backend", "/pkg.Service/Method").send()?.await?;
    ///     Ok(response.trailers().get("grpc-status").map(|value| value.to_string()))
    /// }
    /// ```
    pub fn trailers(&self) -> &Headers {
        self.parts
            .as_ref()
            .map_or(&NO_HEADERS, |parts| &parts.trailers)
    }

    /// The cluster that answered.
    ///
    /// ```no_run
    /// async fn fetch() -> Result<(), pwf::Error> {
    ///     let response = pwf::Request::get("auth", "/check").send()?.await?;
    ///     pwf::debug!("{} answered {}", response.cluster(), response.status());
    ///     Ok(())
    /// }
    /// ```
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The response if its status is 2xx, else a [`CallErrorKind::Status`]
    /// error. Envoy answers a refused connection with a 503 and a timeout with
    /// a 504 of its own, so a caller that needs an answer should use this.
    ///
    /// ```no_run
    /// use pwf::CallErrorKind;
    ///
    /// async fn token() -> Result<Option<Vec<u8>>, pwf::Error> {
    ///     match pwf::Request::get("auth", "/token").send()?.await?.error_for_status() {
    ///         Ok(response) => Ok(Some(response.into_body())),
    ///         Err(error) if error.kind() == &CallErrorKind::Status(404) => Ok(None),
    ///         Err(error) => Err(error.into()),
    ///     }
    /// }
    /// ```
    pub fn error_for_status(self) -> Result<Response, CallError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(CallError::of(
                &self.cluster,
                CallErrorKind::Status(self.status),
            ))
        }
    }
}

/// Why a call did not produce a usable response.
///
/// ```no_run
/// use pwf::{CallErrorKind, Response};
///
/// async fn lookup() -> Result<Option<Response>, pwf::Error> {
///     match pwf::Request::get("cache", "/lookup").send()?.await {
///         Ok(response) => Ok(Some(response)),
///         // The cache is best effort: a reset or a missing answer is a miss.
///         Err(error) if matches!(error.kind(), CallErrorKind::Failed) => Ok(None),
///         Err(error) => Err(error.into()),
///     }
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallErrorKind {
    /// The timeout was zero, which Envoy would read as "no timeout".
    ZeroTimeout,
    /// The timeout is 2^31 milliseconds or more: Envoy reads the
    /// milliseconds as a signed 32-bit count and refuses such a call.
    TimeoutTooLong,
    /// A header or trailer name is not a token, or a value has a CR, LF or
    /// NUL; nothing was sent.
    InvalidHeader(InvalidHeader),
    /// The value of this header (named as messages show it) is not UTF-8:
    /// call headers go to the host as text, and pwf does not leave a header
    /// out silently. Nothing was sent.
    NotUtf8(String),
    /// [`Request::headers`] was given this pseudo-header (named as messages
    /// show it), which would have replaced the builder's own silently.
    PseudoHeader(String),
    /// More header (or trailer) pairs than Envoy takes for a call,
    /// pseudo-headers included: at most 1024.
    TooManyHeaders {
        /// `"headers"` or `"trailers"`.
        what: &'static str,
        /// How many there are.
        count: usize,
    },
    /// The header (or trailer) map is larger than Envoy takes for a call:
    /// at most 1 MiB as the ABI passes it (8 bytes per pair, then each name
    /// and value with a NUL after it).
    HeadersTooLarge {
        /// `"headers"` or `"trailers"`.
        what: &'static str,
        /// Their size as the ABI passes them.
        bytes: usize,
    },
    /// Envoy refused to dispatch the call. pwf checks the timeout and the
    /// headers first, so `BadArgument` means, most likely, that no cluster
    /// has that name; `InternalFailure` that Envoy ended the call as it
    /// started it: most likely the cluster's circuit breaker is open, or it
    /// has no healthy host.
    Dispatch(Status),
    /// The call failed without a response: Envoy delivered it with zero
    /// headers (the stream was reset, or the response was cut off).
    Failed,
    /// The response came, with a status the caller did not accept.
    Status(u16),
    /// The host failed to hand over the response.
    Host(Status),
    /// The call was awaited outside pwf's executor (with a blocking
    /// executor such as `futures::executor::block_on`, say), where its
    /// response can never arrive: the host delivers it only after the
    /// running callback has returned.
    NotInTask,
    /// The stream that sent the call (a [`DispatchGroup`](crate::DispatchGroup)'s,
    /// awaited by another stream) ended before the response came: a group's
    /// calls belong to the stream that dispatched them.
    SenderEnded,
    /// The call was sent while a filter was being created
    /// ([`Plugin::filter`](crate::Plugin::filter)), when the SDK cannot
    /// route its response; send it from a phase.
    NotInCallback,
}

/// A call that did not produce a usable response, naming the cluster.
///
/// ```
/// # use pwf_test as _; // links the native host's imports
/// use std::time::Duration;
///
/// let error = pwf::Request::get("auth", "/check").timeout(Duration::ZERO).send().unwrap_err();
/// assert_eq!(error.cluster(), "auth");
/// assert_eq!(
///     error.to_string(),
///     "call to cluster `auth` not sent: a zero timeout means no timeout to Envoy; give at least 1ms"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError {
    cluster: String,
    kind: CallErrorKind,
}

impl CallError {
    pub(crate) fn new(cluster: String, kind: CallErrorKind) -> CallError {
        CallError { cluster, kind }
    }

    /// An error of a call to `cluster`: one copy of the name, made here only.
    #[inline(never)]
    fn of(cluster: &str, kind: CallErrorKind) -> CallError {
        CallError::new(cluster.to_owned(), kind)
    }

    /// The cluster the call went to.
    ///
    /// ```no_run
    /// async fn fetch() -> Result<(), pwf::Error> {
    ///     match pwf::Request::get("auth", "/check").send()?.await {
    ///         Ok(response) => pwf::debug!("status {}", response.status()),
    ///         Err(error) => pwf::warn!("call to `{}` failed: {error}", error.cluster()),
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// What went wrong.
    ///
    /// ```
    /// # use pwf_test as _; // links the native host's imports
    /// use std::time::Duration;
    /// use pwf::CallErrorKind;
    ///
    /// let error = pwf::Request::get("auth", "/").timeout(Duration::MAX).send().unwrap_err();
    /// assert!(matches!(error.kind(), CallErrorKind::TimeoutTooLong));
    /// ```
    pub fn kind(&self) -> &CallErrorKind {
        &self.kind
    }
}

impl fmt::Display for CallError {
    /// One prefix, then each kind's text, and the value it names (an HTTP
    /// status is shown as a `u32`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code;
        let (text, value, after): (&str, Option<&dyn fmt::Display>, &str) = match &self.kind {
            CallErrorKind::ZeroTimeout => (
                " not sent: a zero timeout means no timeout to Envoy; give at least 1ms",
                None,
                "",
            ),
            CallErrorKind::TimeoutTooLong => (
                " not sent: the timeout is 2147483648ms or more, and Envoy takes at most 2147483647ms (a signed 32-bit count)",
                None,
                "",
            ),
            CallErrorKind::InvalidHeader(invalid) => (" not sent: ", Some(invalid), ""),
            CallErrorKind::NotUtf8(name) => (
                " not sent: the value of header ",
                Some(name),
                " is not UTF-8, and call headers go to the host as text",
            ),
            CallErrorKind::PseudoHeader(name) => (
                " not sent: `headers` was given pseudo-header ",
                Some(name),
                ", which would replace the builder's own; set it with `header`, or use `forward_headers`",
            ),
            CallErrorKind::TooManyHeaders { what, count } => {
                write!(f, "call to cluster {} not sent: {count} {what}", Shown(self.cluster.as_bytes()))?;
                return f.write_str(if *what == "headers" {
                    " (pseudo-headers included), and Envoy takes at most 1024"
                } else {
                    ", and Envoy takes at most 1024"
                });
            }
            CallErrorKind::HeadersTooLarge { what, bytes } => {
                return write!(
                    f,
                    "call to cluster {} not sent: the {what} take {bytes} bytes as the host gets them, and Envoy takes at most 1048576",
                    Shown(self.cluster.as_bytes())
                );
            }
            CallErrorKind::Dispatch(Status::BadArgument) => (
                " refused by Envoy (bad argument): most likely no cluster has that name (pwf checked the timeout and the headers)",
                None,
                "",
            ),
            CallErrorKind::Dispatch(Status::InternalFailure) => (
                " refused by Envoy (internal failure): the call ended as it started; most likely the cluster's circuit breaker is open (too many calls to it at once), or it has no healthy host",
                None,
                "",
            ),
            CallErrorKind::Dispatch(status) => (" refused by Envoy: ", Some(status), ""),
            CallErrorKind::Failed => (" failed: no response (reset or cut off)", None, ""),
            CallErrorKind::Status(status) => {
                code = u32::from(*status);
                (" answered with status ", Some(&code), "")
            }
            CallErrorKind::Host(status) => (
                ": the host failed to hand over the response: ",
                Some(status),
                "",
            ),
            CallErrorKind::NotInTask => (
                " awaited outside pwf's executor, where no response can arrive: await it in Http::spawn or PluginContext::spawn",
                None,
                "",
            ),
            CallErrorKind::SenderEnded => (": its stream ended first", None, ""),
            CallErrorKind::NotInCallback => (
                " not sent while a filter is created: send it from a phase",
                None,
                "",
            ),
        };
        f.write_str("call to cluster ")?;
        fmt::Display::fmt(&Shown(self.cluster.as_bytes()), f)?;
        f.write_str(text)?;
        if let Some(value) = value {
            write!(f, "{value}")?;
        }
        f.write_str(after)
    }
}

impl std::error::Error for CallError {}

/// Where a call's result goes, and how to read it.
struct Sink {
    /// Who waits for the result: a [`PendingCall`]'s state or a group's.
    target: Rc<dyn Landing>,
    /// The result's slot in `target`.
    index: usize,
    /// The stream the SDK routes the response through; 0: the root.
    route: u32,
    cluster: Rc<str>,
    read: Option<Reader>,
}

impl Sink {
    /// Whether the result goes to the group at address `group` (its
    /// state's address: a plain pointer, so that asking needs no `Landing`).
    fn lands_in(&self, group: *const ()) -> bool {
        std::ptr::addr_eq(Rc::as_ptr(&self.target), group)
    }
}

/// Who waits for a call's result: the one [`PendingCall`] that waits for
/// it, or a group (`group::GroupState`), woken once, when its last call
/// lands.
pub(crate) trait Landing {
    /// Takes the result of the call in slot `index`.
    fn land(&self, index: usize, result: Result<Response, CallError>);
}

/// What a [`PendingCall`] shares with the callout layer.
struct SingleState {
    result: Cell<Option<Result<Response, CallError>>>,
    waker: Cell<Option<Waker>>,
    /// Whether the call waits in `CALLS` for its response: from its dispatch
    /// until it lands or is forgotten.
    in_flight: Cell<bool>,
}

thread_local! {
    static CALLS: RefCell<TokenMap<Sink>> = const { RefCell::new(TokenMap::new()) };
}

/// Forgets call `token`: its response, if it comes, is ignored.
pub(crate) fn forget(token: u32) {
    let _ = CALLS.try_with(|calls| calls.borrow_mut().remove(token));
}

/// Forgets every call of `group` still in flight: a group dropped before
/// its calls landed (its stream ended). Looks through every call in flight,
/// which a group that completes never needs.
pub(crate) fn forget_group(group: *const ()) {
    let _ = CALLS.try_with(|calls| calls.borrow_mut().retain(|sink| !sink.lands_in(group)));
}

/// Fails every call whose response was to be routed through stream
/// `context_id`, which has ended: the SDK now drops those responses. Only a
/// group that outlived its stream (awaited by another one) still waits for
/// them; its own stream's tasks and groups were dropped already. Then runs
/// what that woke.
fn end_routes_through(context_id: u32) {
    fail_calls(|sink| sink.route == context_id, CallErrorKind::SenderEnded);
    crate::executor::run_until_stalled();
}

/// Forgets call `token`, awaited outside pwf's executor: its error.
#[cold]
fn abandon(token: u32) -> CallError {
    let sink = CALLS.with(|calls| calls.borrow_mut().remove(token));
    let cluster = sink.map(|sink| sink.cluster);
    CallError::of(cluster.as_deref().unwrap_or(""), CallErrorKind::NotInTask)
}

/// Forgets every call of `group` still in flight, awaited outside pwf's
/// executor: each one's result becomes that error.
#[cold]
pub(crate) fn abandon_group(group: *const ()) {
    fail_calls(|sink| sink.lands_in(group), CallErrorKind::NotInTask);
}

/// Removes the calls in flight that `matches` picks, and lands each with an
/// error of `kind`, with no borrow held.
fn fail_calls(matches: impl Fn(&Sink) -> bool, kind: CallErrorKind) {
    let mut failed = Vec::new();
    let _ = CALLS.try_with(|calls| {
        let Ok(mut calls) = calls.try_borrow_mut() else {
            return;
        };
        if calls.len() == 0 {
            return;
        }
        calls.retain(|sink| {
            let fails = matches(sink);
            if fails {
                failed.push((sink.target.clone(), sink.index, sink.cluster.clone()));
            }
            !fails
        });
    });
    for (target, index, cluster) in failed {
        target.land(index, Err(CallError::of(&cluster, kind.clone())));
    }
}

/// A dispatched call; resolves to its response.
///
/// Dropping it forgets the call: its response, if it ever comes, is ignored.
///
/// ```no_run
/// use pwf::{Http, Outcome, Request};
///
/// fn check(http: &Http) -> pwf::Action {
///     // Dispatched now; the task waits for the answer.
///     let Ok(call) = Request::get("auth", "/check").send() else {
///         return pwf::Action::Continue;
///     };
///     http.spawn(async move {
///         let response = call.await?;
///         pwf::info!("auth answered {}", response.status());
///         Ok(Outcome::Continue)
///     })
/// }
/// ```
#[derive(Debug)]
#[must_use = "a call's response is only seen by awaiting its PendingCall"]
pub struct PendingCall {
    token: u32,
    state: Rc<SingleState>,
}

impl fmt::Debug for SingleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SingleState")
    }
}

impl PendingCall {
    /// The host's token for this call.
    ///
    /// ```no_run
    /// let call = pwf::Request::get("httpbin", "/uuid").send()?;
    /// pwf::debug!("dispatched call {}", call.token());
    /// # Ok::<(), pwf::CallError>(())
    /// ```
    pub fn token(&self) -> u32 {
        self.token
    }
}

impl Future for PendingCall {
    type Output = Result<Response, CallError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(result) = self.state.result.take() {
            return Poll::Ready(result);
        }
        if !crate::executor::is_running() {
            // A blocking executor would wait forever: the response comes
            // only after the running callback returns.
            self.state.in_flight.set(false);
            return Poll::Ready(Err(abandon(self.token)));
        }
        let waker = match self.state.waker.take() {
            Some(waker) if waker.will_wake(cx.waker()) => waker,
            _ => cx.waker().clone(),
        };
        // The waker was taken out above.
        fill(&self.state.waker, waker);
        Poll::Pending
    }
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        // A result that landed and was never awaited is dropped with the
        // state.
        if self.state.in_flight.get() {
            forget(self.token);
        }
    }
}

/// What every context does in `on_http_call_response`: deliver the
/// response to its call, then run whatever it woke.
pub(crate) fn on_response(token: u32, num_headers: usize, body_size: usize, num_trailers: usize) {
    deliver(token, num_headers, body_size, num_trailers);
    crate::executor::run_until_stalled();
}

/// Delivers the response to call `token`, read from the host now, during
/// `on_http_call_response`. Returns whether anyone was waiting for it.
fn deliver(token: u32, num_headers: usize, body_size: usize, num_trailers: usize) -> bool {
    let Some(sink) = CALLS.with(|calls| calls.borrow_mut().remove(token)) else {
        return false;
    };
    let read = match sink.read {
        _ if num_headers == 0 => Err(CallErrorKind::Failed),
        // Nothing to read: no call for it.
        None => Ok((0, None)),
        Some(read) => read(body_size, num_trailers),
    };
    let result = match read {
        Ok((status, parts)) => Ok(Response {
            cluster: sink.cluster,
            status,
            parts,
        }),
        Err(kind) => Err(CallError::of(&sink.cluster, kind)),
    };
    sink.target.land(sink.index, result);
    true
}

impl Landing for SingleState {
    fn land(&self, _: usize, result: Result<Response, CallError>) {
        self.in_flight.set(false);
        // A call lands once.
        fill(&self.result, result);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// What a call read of its response: the status, and the rest if read.
type Landed = Result<(u16, Option<Box<Parts>>), CallErrorKind>;

/// Reads a status code.
fn parse_status(value: &[u8]) -> Option<u16> {
    match *value {
        [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// The response's status alone: one small host call instead of the whole
/// header map and the body.
fn read_status(_: usize, _: usize) -> Landed {
    let status = host::get_map_value(MapType::HttpCallResponseHeaders, ":status")
        .map_err(|error| CallErrorKind::Host(error.status()))?
        .and_then(|value| parse_status(&value))
        .ok_or(CallErrorKind::Failed)?;
    Ok((status, None))
}

/// The whole response: status, headers, body and trailers.
fn read_whole(body_size: usize, num_trailers: usize) -> Landed {
    read_response(body_size, num_trailers, true)
}

/// The status, the body and the trailers: not the headers.
fn read_without_headers(body_size: usize, num_trailers: usize) -> Landed {
    read_response(body_size, num_trailers, false)
}

/// Reads the status, the body, the trailers, and the headers if
/// `with_headers`.
fn read_response(body_size: usize, num_trailers: usize, with_headers: bool) -> Landed {
    let host_error = |error: HostError| CallErrorKind::Host(error.status());
    let (status, raw_headers) = if with_headers {
        let raw_headers =
            host::get_map_raw(MapType::HttpCallResponseHeaders).map_err(host_error)?;
        let status = host::find_in_map(&raw_headers, ":status")
            .and_then(parse_status)
            .ok_or(CallErrorKind::Failed)?;
        (status, raw_headers)
    } else {
        (read_status(0, 0)?.0, Vec::new())
    };
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
    let parts = Parts {
        raw_headers,
        headers: OnceCell::new(),
        body,
        trailers,
    };
    Ok((status, Some(Box::new(parts))))
}

/// Calls in flight in this VM, for tests and diagnostics.
pub(crate) fn pending_calls() -> usize {
    CALLS.with(|calls| calls.borrow().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_debug_says_how_much_of_the_response_is_read() {
        let read = |request: Request| {
            let shown = format!("{request:?}");
            let at = shown.find("read: ").expect("a read field") + "read: ".len();
            let end = shown[at..].find(',').map_or(shown.len(), |end| at + end);
            shown[at..end].to_owned()
        };
        let get = || Request::get("auth", "/check");
        assert_eq!(read(get()), "Whole");
        assert_eq!(read(get().without_headers()), "NoHeaders");
        assert_eq!(read(get().status_only()), "Status");
        assert_eq!(read(get().ignore_response()), "Nothing");
    }
}
