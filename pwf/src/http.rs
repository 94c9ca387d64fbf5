//! The HTTP stream handle a filter works through.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use proxy_wasm::types::{BufferType, MapType};

use crate::context;
use crate::error::{Error, HostError};
use crate::executor;
use crate::headers::{self, HeaderValue, Headers};
use crate::host::{self, StreamKind};
use crate::log::{self, LogLevel};

/// What a phase tells Envoy to do with the stream.
///
/// ```
/// use pwf::{Action, Error, Http, HttpFilter};
///
/// struct PassThrough;
///
/// impl HttpFilter for PassThrough {
///     fn on_request_headers(&mut self, _: &Http, end_of_stream: bool) -> Result<Action, Error> {
///         // Hold a request with a body until it has all arrived.
///         Ok(if end_of_stream { Action::Continue } else { Action::Pause })
///     }
/// }
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Go on to the next filter.
    Continue,
    /// Stop here until the stream is resumed (or answered locally).
    Pause,
}

impl From<Action> for proxy_wasm::types::Action {
    fn from(action: Action) -> Self {
        match action {
            Action::Continue => proxy_wasm::types::Action::Continue,
            Action::Pause => proxy_wasm::types::Action::Pause,
        }
    }
}

/// How a task or a [`DispatchGroup`](crate::DispatchGroup) ends a paused stream.
///
/// ```
/// use pwf::{LocalResponse, Outcome};
///
/// fn decide(allowed: bool) -> Outcome {
///     if allowed {
///         Outcome::Continue
///     } else {
///         LocalResponse::new(403).body("forbidden").into()
///     }
/// }
/// assert_eq!(decide(true), Outcome::Continue);
/// assert_eq!(decide(false), Outcome::Respond(LocalResponse::new(403).body("forbidden")));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Resume the stream where it paused.
    Continue,
    /// Answer the client with this response instead.
    Respond(LocalResponse),
}

impl From<LocalResponse> for Outcome {
    fn from(response: LocalResponse) -> Outcome {
        Outcome::Respond(response)
    }
}

/// A response the plugin sends to the client itself.
///
/// ```
/// use pwf::LocalResponse;
///
/// let forbidden = LocalResponse::new(403)
///     .header("powered-by", "pwf")
///     .body("access forbidden");
/// assert_eq!(forbidden.status(), 403);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalResponse {
    status: u32,
    headers: Headers,
    body: Vec<u8>,
    grpc_status: Option<u32>,
}

impl LocalResponse {
    /// A response with this HTTP status and no body.
    ///
    /// ```
    /// let not_found = pwf::LocalResponse::new(404);
    /// assert_eq!(not_found.status(), 404);
    /// assert!(not_found.body_bytes().is_empty());
    /// ```
    pub fn new(status: u32) -> LocalResponse {
        LocalResponse {
            status,
            headers: Headers::default(),
            body: Vec::new(),
            grpc_status: None,
        }
    }

    /// A gRPC response: HTTP 200 with `grpc-status` set to `code` and
    /// `grpc-message` to `message`.
    ///
    /// ```
    /// // gRPC code 16: UNAUTHENTICATED.
    /// let denied = pwf::LocalResponse::grpc(16, "missing credentials");
    /// assert_eq!(denied.status(), 200);
    /// assert_eq!(denied.body_bytes(), b"missing credentials");
    /// ```
    pub fn grpc(code: u32, message: impl Into<Vec<u8>>) -> LocalResponse {
        LocalResponse {
            status: 200,
            headers: Headers::default(),
            body: message.into(),
            grpc_status: Some(code),
        }
    }

    /// Adds a header. Headers are checked when the response is sent: a name
    /// that is not a token, or a value with a CR, LF or NUL, is refused then,
    /// and nothing is sent.
    ///
    /// ```
    /// let redirect = pwf::LocalResponse::new(302).header("location", "/login");
    /// assert_eq!(redirect.headers().get("location").unwrap(), "/login");
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<HeaderValue>) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets the body.
    ///
    /// ```
    /// let teapot = pwf::LocalResponse::new(418).body("I'm a teapot");
    /// assert_eq!(teapot.body_bytes(), b"I'm a teapot");
    /// ```
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The HTTP status.
    ///
    /// ```
    /// let moved = pwf::LocalResponse::new(301).header("location", "/new");
    /// assert_eq!(moved.status(), 301);
    /// ```
    pub fn status(&self) -> u32 {
        self.status
    }

    /// The headers.
    ///
    /// ```
    /// let response = pwf::LocalResponse::new(429).header("retry-after", "30");
    /// assert_eq!(response.headers().len(), 1);
    /// ```
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The body (for a gRPC response, the message).
    ///
    /// ```
    /// let denied = pwf::LocalResponse::new(403).body("denied");
    /// assert_eq!(denied.body_bytes(), b"denied");
    /// ```
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    pub(crate) fn send(&self) -> Result<(), HostError> {
        check_all_for("send_local_response", self.headers.as_pairs())?;
        let grpc_status = self.grpc_status.map_or(-1, |code| code as i32);
        host::send_local_response(
            self.status,
            self.headers.as_pairs(),
            &self.body,
            grpc_status,
        )
    }
}

/// Which half of the stream a phase handles.
///
/// ```no_run
/// use pwf::{Http, Phase};
///
/// // One helper for both halves of the stream.
/// fn tag(http: &Http) -> Result<(), pwf::Error> {
///     match http.phase() {
///         Phase::Request => http.set_request_header("x-seen", "1")?,
///         Phase::Response => http.set_response_header("x-seen", "1")?,
///     }
///     Ok(())
/// }
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The request: headers, body, trailers on their way upstream.
    Request,
    /// The response: headers, body, trailers on their way downstream.
    Response,
}

/// A handle on one HTTP stream: its headers, bodies and trailers, local
/// responses, resuming, and tasks.
///
/// Every phase of an [`HttpFilter`](crate::HttpFilter) gets one. It is cheap to
/// clone, and a clone moved into a task reaches the same stream. Every access
/// goes to the host and returns a `Result`; on a stream that has ended, the
/// host refuses and the call returns an error.
///
/// ```no_run
/// use pwf::{Action, Error, Http};
///
/// fn on_request_headers(http: &Http) -> Result<Action, Error> {
///     let path = http.request_header(":path")?.unwrap_or_default();
///     if path.starts_with(b"/internal/") {
///         http.set_request_header("x-internal", "true")?;
///     }
///     Ok(Action::Continue)
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Http {
    id: u32,
    phase: Phase,
    on_error: fn(&Error) -> LocalResponse,
}

macro_rules! header_map_accessors {
    ($map:expr, $what:literal, $get:ident, $get_all:ident, $set:ident, $add:ident, $remove:ident, $set_all:ident) => {
        #[doc = concat!("The first value of ", $what, " `name`, if present.")]
        ///
        /// ```no_run
        /// fn f(http: &pwf::Http) -> Result<(), pwf::Error> {
        #[doc = concat!("     if let Some(tenant) = http.", stringify!($get), "(\"x-tenant\")? {")]
        ///         pwf::info!("tenant: {tenant}");
        ///     }
        ///     Ok(())
        /// }
        /// ```
        pub fn $get(&self, name: &str) -> Result<Option<HeaderValue>, HostError> {
            Ok(self
                .on_stream(|| host::get_map_value($map, name))?
                .map(HeaderValue::from))
        }

        #[doc = concat!("Every ", $what, ", in order.")]
        ///
        /// ```no_run
        /// fn f(http: &pwf::Http) -> Result<(), pwf::Error> {
        #[doc = concat!("     for (name, value) in &http.", stringify!($get_all), "()? {")]
        ///         pwf::debug!("{name}: {value}");
        ///     }
        ///     Ok(())
        /// }
        /// ```
        pub fn $get_all(&self) -> Result<Headers, HostError> {
            Ok(Headers::from(self.on_stream(|| host::get_map($map))?))
        }

        #[doc = concat!("Sets ", $what, " `name` to `value`, replacing any values it had.")]
        ///
        /// Refused before the host call, with an error whose
        /// [`invalid_header`](HostError::invalid_header) says why, when `name`
        /// is not a token (or `:` and a token) or `value` has a CR, LF or NUL.
        ///
        /// ```no_run
        /// fn f(http: &pwf::Http) -> Result<(), pwf::Error> {
        #[doc = concat!("     http.", stringify!($set), "(\"x-tenant\", \"acme\")?;")]
        ///     Ok(())
        /// }
        /// ```
        pub fn $set(&self, name: &str, value: impl AsRef<[u8]>) -> Result<(), HostError> {
            check_for("replace_header_map_value", name, value.as_ref())?;
            self.on_stream(|| host::replace_map_value($map, name, value.as_ref()))
        }

        #[doc = concat!("Adds a value to ", $what, " `name`, keeping any it had.")]
        ///
        /// Refused before the host call, with an error whose
        /// [`invalid_header`](HostError::invalid_header) says why, when `name`
        /// is not a token (or `:` and a token) or `value` has a CR, LF or NUL.
        ///
        /// ```no_run
        /// fn f(http: &pwf::Http) -> Result<(), pwf::Error> {
        #[doc = concat!("     http.", stringify!($add), "(\"x-tag\", \"cached\")?;")]
        ///     Ok(())
        /// }
        /// ```
        pub fn $add(&self, name: &str, value: impl AsRef<[u8]>) -> Result<(), HostError> {
            check_for("add_header_map_value", name, value.as_ref())?;
            self.on_stream(|| host::add_map_value($map, name, value.as_ref()))
        }

        #[doc = concat!("Removes every value of ", $what, " `name`.")]
        ///
        /// ```no_run
        /// fn f(http: &pwf::Http) -> Result<(), pwf::Error> {
        #[doc = concat!("     http.", stringify!($remove), "(\"x-internal-token\")?;")]
        ///     Ok(())
        /// }
        /// ```
        pub fn $remove(&self, name: &str) -> Result<(), HostError> {
            self.on_stream(|| host::remove_map_value($map, name))
        }

        #[doc = concat!("Replaces every ", $what, " with `headers`.")]
        ///
        /// Refused before the host call, with an error whose
        /// [`invalid_header`](HostError::invalid_header) says why, when `name`
        /// is not a token (or `:` and a token) or `value` has a CR, LF or NUL.
        ///
        /// ```no_run
        /// fn f(http: &pwf::Http) -> Result<(), pwf::Error> {
        #[doc = concat!("     let mut all = http.", stringify!($get_all), "()?;")]
        ///     all.remove("x-internal-token");
        ///     all.insert("x-tenant", "acme");
        #[doc = concat!("     http.", stringify!($set_all), "(&all)?;")]
        ///     Ok(())
        /// }
        /// ```
        pub fn $set_all(&self, headers: &Headers) -> Result<(), HostError> {
            check_all_for("set_header_map_pairs", headers.as_pairs())?;
            self.on_stream(|| host::set_map($map, headers.as_pairs()))
        }
    };
}

impl Http {
    pub(crate) fn new(id: u32, phase: Phase, on_error: fn(&Error) -> LocalResponse) -> Http {
        Http {
            id,
            phase,
            on_error,
        }
    }

    /// The host's id for this stream.
    ///
    /// ```no_run
    /// fn on_request_headers(http: &pwf::Http) {
    ///     pwf::debug!("stream {}: request headers", http.context_id());
    /// }
    /// ```
    pub fn context_id(&self) -> u32 {
        self.id
    }

    /// The phase this handle was given in; tasks spawned from it resume this
    /// half of the stream.
    ///
    /// ```no_run
    /// fn on_response_headers(http: &pwf::Http) {
    ///     assert_eq!(http.phase(), pwf::Phase::Response);
    /// }
    /// ```
    pub fn phase(&self) -> Phase {
        self.phase
    }

    header_map_accessors!(
        MapType::HttpRequestHeaders,
        "request header",
        request_header,
        request_headers,
        set_request_header,
        add_request_header,
        remove_request_header,
        set_request_headers
    );
    header_map_accessors!(
        MapType::HttpResponseHeaders,
        "response header",
        response_header,
        response_headers,
        set_response_header,
        add_response_header,
        remove_response_header,
        set_response_headers
    );
    header_map_accessors!(
        MapType::HttpRequestTrailers,
        "request trailer",
        request_trailer,
        request_trailers,
        set_request_trailer,
        add_request_trailer,
        remove_request_trailer,
        set_request_trailers
    );
    header_map_accessors!(
        MapType::HttpResponseTrailers,
        "response trailer",
        response_trailer,
        response_trailers,
        set_response_trailer,
        add_response_trailer,
        remove_response_trailer,
        set_response_trailers
    );

    /// Up to `max_size` bytes of the buffered request body, from `start`.
    ///
    /// ```no_run
    /// fn on_request_body(http: &pwf::Http, body_size: usize) -> Result<(), pwf::Error> {
    ///     // The first 16 bytes buffered so far.
    ///     let head = http.request_body(0, 16.min(body_size))?;
    ///     pwf::debug!("body starts with {head:?}");
    ///     Ok(())
    /// }
    /// ```
    pub fn request_body(&self, start: usize, max_size: usize) -> Result<Vec<u8>, HostError> {
        let body =
            self.on_stream(|| host::get_buffer(BufferType::HttpRequestBody, start, max_size))?;
        Ok(body.unwrap_or_default())
    }

    /// Replaces the whole buffered request body.
    ///
    /// ```no_run
    /// fn on_request_body(http: &pwf::Http, end_of_stream: bool) -> Result<(), pwf::Error> {
    ///     if end_of_stream {
    ///         http.set_request_body(br#"{"redacted":true}"#)?;
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn set_request_body(&self, body: &[u8]) -> Result<(), HostError> {
        self.on_stream(|| host::set_buffer(BufferType::HttpRequestBody, 0, u32::MAX as usize, body))
    }

    /// Up to `max_size` bytes of the buffered response body, from `start`.
    ///
    /// ```no_run
    /// fn on_response_body(http: &pwf::Http, body_size: usize, end: bool) -> Result<(), pwf::Error> {
    ///     if end {
    ///         let body = http.response_body(0, body_size)?;
    ///         pwf::info!("response body: {} bytes", body.len());
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn response_body(&self, start: usize, max_size: usize) -> Result<Vec<u8>, HostError> {
        let body =
            self.on_stream(|| host::get_buffer(BufferType::HttpResponseBody, start, max_size))?;
        Ok(body.unwrap_or_default())
    }

    /// Replaces the whole buffered response body.
    ///
    /// ```no_run
    /// fn on_response_body(http: &pwf::Http, body_size: usize, end: bool) -> Result<(), pwf::Error> {
    ///     if end {
    ///         let body = http.response_body(0, body_size)?;
    ///         http.set_response_body(&body.to_ascii_uppercase())?;
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn set_response_body(&self, body: &[u8]) -> Result<(), HostError> {
        self.on_stream(|| {
            host::set_buffer(BufferType::HttpResponseBody, 0, u32::MAX as usize, body)
        })
    }

    /// Buffers the whole request body, up to `limit` bytes, for a
    /// [`on_request_body`](crate::HttpFilter::on_request_body) phase that
    /// needs all of it at once. Pass the phase's `body_size` and
    /// `end_of_stream`.
    ///
    /// - `Ok(Some(body))`: the body is complete; the phase decides.
    /// - `Ok(None)`: return [`Action::Pause`]. Either more is coming (Envoy
    ///   buffers it and calls the phase again), or the body passed `limit`
    ///   and the client was answered `413 Payload Too Large`.
    ///
    /// Nothing is ever buffered past `limit`.
    ///
    /// ```no_run
    /// use pwf::{Action, Error, Http};
    ///
    /// fn on_request_body(http: &Http, size: usize, end: bool) -> Result<Action, Error> {
    ///     let Some(body) = http.read_full_request_body(size, end, 64 * 1024)? else {
    ///         return Ok(Action::Pause);
    ///     };
    ///     http.set_request_body(&body.to_ascii_uppercase())?;
    ///     Ok(Action::Continue)
    /// }
    /// ```
    pub fn read_full_request_body(
        &self,
        body_size: usize,
        end_of_stream: bool,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, HostError> {
        if body_size > limit {
            let too_large = LocalResponse::new(413)
                .header("content-type", "text/plain")
                .body(format!("request body exceeds the limit of {limit} bytes"));
            self.on_stream(|| too_large.send())?;
            return Ok(None);
        }
        if !end_of_stream {
            return Ok(None);
        }
        self.request_body(0, body_size).map(Some)
    }

    /// Answers the client with `response` instead of going on, and returns
    /// [`Action::Pause`] for the phase to return.
    ///
    /// ```no_run
    /// use pwf::{Action, Error, Http, LocalResponse};
    ///
    /// fn on_request_headers(http: &Http) -> Result<Action, Error> {
    ///     if http.request_header("authorization")?.is_none() {
    ///         return Ok(http.respond(LocalResponse::new(401).body("sign in first"))?);
    ///     }
    ///     Ok(Action::Continue)
    /// }
    /// ```
    pub fn respond(&self, response: LocalResponse) -> Result<Action, HostError> {
        self.on_stream(|| response.send())?;
        Ok(Action::Pause)
    }

    /// Resumes the half of the stream this handle's phase paused.
    ///
    /// A handle kept by a phase that returned [`Action::Pause`] resumes its
    /// own stream from any later callback: another stream's phase, a tick,
    /// a call response. On a stream that has ended, the host refuses.
    ///
    /// ```no_run
    /// // Called later, from any callback, for a stream a phase paused.
    /// fn approved(http: &pwf::Http) -> Result<(), pwf::Error> {
    ///     http.set_request_header("x-approved", "true")?;
    ///     http.resume()?;
    ///     Ok(())
    /// }
    /// ```
    pub fn resume(&self) -> Result<(), HostError> {
        self.on_stream(|| {
            host::continue_stream(match self.phase {
                Phase::Request => StreamKind::HttpRequest,
                Phase::Response => StreamKind::HttpResponse,
            })
        })
    }

    /// Resets the stream: Envoy drops it without a response.
    ///
    /// ```no_run
    /// use pwf::{Action, Error, Http};
    ///
    /// fn on_request_headers(http: &Http) -> Result<Action, Error> {
    ///     if http.request_header("x-scanner")?.is_some() {
    ///         http.reset()?; // no answer at all
    ///         return Ok(Action::Pause);
    ///     }
    ///     Ok(Action::Continue)
    /// }
    /// ```
    pub fn reset(&self) -> Result<(), HostError> {
        self.on_stream(|| {
            host::close_stream(match self.phase {
                Phase::Request => StreamKind::HttpRequest,
                Phase::Response => StreamKind::HttpResponse,
            })
        })
    }

    /// Runs a host call with this handle's stream effective: a handle acts
    /// on its own stream, whichever callback is running.
    fn on_stream<R>(&self, call: impl FnOnce() -> Result<R, HostError>) -> Result<R, HostError> {
        context::in_context(self.id, call)
    }

    /// Logs `message` at `level` for this stream.
    ///
    /// ```no_run
    /// use pwf::{Http, LogLevel};
    ///
    /// fn on_done(http: &Http) {
    ///     http.log(LogLevel::Info, "stream done");
    /// }
    /// ```
    pub fn log(&self, level: LogLevel, message: &str) {
        log::log(level, message);
    }

    /// Runs `task` for this stream, and returns the [`Action`] the phase must
    /// return: [`Action::Pause`] while the task is pending.
    ///
    /// The task runs at once until it first waits; if it finishes then, the
    /// phase continues (or answers) without pausing. Otherwise the stream
    /// stays paused until the task ends: [`Outcome::Continue`] resumes it,
    /// [`Outcome::Respond`] answers the client, and an error is logged and
    /// answered with the plugin's
    /// [`error_response`](crate::Plugin::error_response) (a 500 by default).
    /// When the stream ends first, the task is dropped.
    ///
    /// ```no_run
    /// use pwf::{Action, Http, Outcome, Request};
    ///
    /// fn on_request_headers(http: &mut Http) -> Action {
    ///     let handle = http.clone();
    ///     http.spawn(async move {
    ///         let answer = Request::get("auth", "/check").send()?.await?;
    ///         handle.set_request_header("x-auth-status", answer.status().to_string())?;
    ///         Ok(Outcome::Continue)
    ///     })
    /// }
    /// ```
    pub fn spawn<F>(&self, task: F) -> Action
    where
        F: Future<Output = Result<Outcome, Error>> + 'static,
    {
        // Spawned by a phase (not from inside a task): this task decides
        // the stream. From inside a task: a helper, which never resumes it.
        let task = StreamTask {
            task,
            http: self.clone(),
            decides: !executor::is_running(),
        };
        match executor::spawn(self.id, task) {
            Ok(true) => Action::Pause,
            Ok(false) if self.in_own_phase() => PHASE
                .with(|phase| phase.decision.take())
                .unwrap_or(Action::Continue),
            Ok(false) => Action::Continue,
            Err(full) => self.finish(Err(full.into()), self.in_own_phase()),
        }
    }

    /// Whether this handle's stream is running one of its phases now.
    fn in_own_phase(&self) -> bool {
        PHASE.with(|phase| phase.context.get() == self.id)
    }

    /// Applies the result of the task (or group) that decides the stream.
    /// While the stream's phase runs, nothing is resumed: the phase returns
    /// the decision. Afterwards, the stream was paused for it: `Continue`
    /// resumes it.
    pub(crate) fn decide(&self, result: Result<Outcome, Error>) {
        let in_phase = self.in_own_phase();
        let action = self.finish(result, in_phase);
        if in_phase {
            PHASE.with(|phase| phase.decision.set(Some(action)));
        }
    }

    /// Applies a task's result to the stream. `inline` says whether the phase
    /// that spawned it has not returned yet (so there is nothing to resume).
    pub(crate) fn finish(&self, result: Result<Outcome, Error>, inline: bool) -> Action {
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(error) => {
                TASK_FAILED.log(LogLevel::Error, format_args!("task failed: {error:#}"));
                Outcome::Respond((self.on_error)(&error))
            }
        };
        match outcome {
            Outcome::Continue if inline => Action::Continue,
            Outcome::Continue => {
                if let Err(error) = self.resume() {
                    log::__log_fmt(
                        LogLevel::Error,
                        format_args!("could not resume the stream: {error}"),
                    );
                }
                Action::Continue
            }
            Outcome::Respond(response) => {
                if let Err(error) = self.on_stream(|| response.send()) {
                    log::__log_fmt(
                        LogLevel::Error,
                        format_args!("could not send the local response: {error}"),
                    );
                    // A response refused before the host call (an invalid
                    // header) would leave the stream paused for good: the
                    // error response answers instead.
                    if error.invalid_header().is_some() {
                        let fallback = (self.on_error)(&error.into());
                        let _ = self.on_stream(|| fallback.send());
                    }
                }
                Action::Pause
            }
        }
    }
}

/// The phase running now, and what its deciding task decided during it.
struct PhaseState {
    /// The stream whose phase runs (0: none).
    context: Cell<u32>,
    /// The action of the deciding task that finished while the phase ran.
    decision: Cell<Option<Action>>,
}

/// Failed tasks come at the rate of requests when what they wait on fails:
/// 10 lines per 10 s at most, and the counter `pwf.task_failed` counts them
/// all.
static TASK_FAILED: log::Limited =
    log::Limited::new("pwf.task_failed", 10, std::time::Duration::from_secs(10));

thread_local! {
    static PHASE: PhaseState = const {
        PhaseState {
            context: Cell::new(0),
            decision: Cell::new(None),
        }
    };
}

/// Marks the start of a phase of stream `context_id`.
pub(crate) fn enter_phase(context_id: u32) {
    PHASE.with(|phase| {
        phase.context.set(context_id);
        phase.decision.set(None);
    });
}

/// Marks the end of the phase (after the tasks it woke ran); the action of
/// its deciding task, if that task finished while the phase ran.
pub(crate) fn leave_phase() -> Option<Action> {
    PHASE.with(|phase| {
        phase.context.set(0);
        phase.decision.take()
    })
}

/// A stream's task: the user's future, and what to do with its result.
#[pin_project::pin_project]
struct StreamTask<F> {
    #[pin]
    task: F,
    http: Http,
    /// Whether its result decides the stream (resumes it or answers it).
    /// A helper task's `Continue` does nothing; its response or error still
    /// answers the client.
    decides: bool,
}

impl<F: Future<Output = Result<Outcome, Error>>> Future for StreamTask<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let result = std::task::ready!(this.task.poll(cx));
        if *this.decides {
            this.http.decide(result);
        } else {
            this.http.finish(result, true);
        }
        Poll::Ready(())
    }
}

/// `headers::check` for the setter whose host call is `call`: its error if refused.
fn check_for(call: &'static str, name: &str, value: &[u8]) -> Result<(), HostError> {
    headers::check(name, value).map_err(|invalid| HostError::refused_header(call, invalid))
}

/// `headers::check` on every pair, for the host call `call` that takes them all.
fn check_all_for<K: AsRef<str>, V: AsRef<[u8]>>(
    call: &'static str,
    pairs: &[(K, V)],
) -> Result<(), HostError> {
    for (name, value) in pairs {
        check_for(call, name.as_ref(), value.as_ref())?;
    }
    Ok(())
}
