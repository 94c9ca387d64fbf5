//! The HTTP stream handle a filter works through.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use proxy_wasm::types::{BufferType, MapType};

use crate::error::{Error, HostError};
use crate::executor;
use crate::headers::{HeaderValue, Headers};
use crate::host::{self, StreamKind};
use crate::log::{self, LogLevel};

/// What a phase tells Envoy to do with the stream.
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
    pub fn grpc(code: u32, message: impl Into<Vec<u8>>) -> LocalResponse {
        LocalResponse {
            status: 200,
            headers: Headers::default(),
            body: message.into(),
            grpc_status: Some(code),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<HeaderValue>) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The body (for a gRPC response, the message).
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    pub(crate) fn send(&self) -> Result<(), HostError> {
        let grpc_status = self.grpc_status.map_or(-1, |code| code as i32);
        host::send_local_response(
            self.status,
            &self.headers.as_pairs(),
            &self.body,
            grpc_status,
        )
    }
}

/// Which half of the stream a phase handles.
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
#[derive(Clone, Debug)]
pub struct Http {
    id: u32,
    phase: Phase,
    on_error: fn(&Error) -> LocalResponse,
}

macro_rules! header_map_accessors {
    ($map:expr, $what:literal, $get:ident, $get_all:ident, $set:ident, $add:ident, $remove:ident, $set_all:ident) => {
        #[doc = concat!("The first value of ", $what, " `name`, if present.")]
        pub fn $get(&self, name: &str) -> Result<Option<HeaderValue>, HostError> {
            Ok(host::get_map_value($map, name)?.map(HeaderValue::from))
        }

        #[doc = concat!("Every ", $what, ", in order.")]
        pub fn $get_all(&self) -> Result<Headers, HostError> {
            Ok(Headers::from(host::get_map($map)?))
        }

        #[doc = concat!("Sets ", $what, " `name` to `value`, replacing any values it had.")]
        pub fn $set(&self, name: &str, value: impl AsRef<[u8]>) -> Result<(), HostError> {
            host::replace_map_value($map, name, value.as_ref())
        }

        #[doc = concat!("Adds a value to ", $what, " `name`, keeping any it had.")]
        pub fn $add(&self, name: &str, value: impl AsRef<[u8]>) -> Result<(), HostError> {
            host::add_map_value($map, name, value.as_ref())
        }

        #[doc = concat!("Removes every value of ", $what, " `name`.")]
        pub fn $remove(&self, name: &str) -> Result<(), HostError> {
            host::remove_map_value($map, name)
        }

        #[doc = concat!("Replaces every ", $what, " with `headers`.")]
        pub fn $set_all(&self, headers: &Headers) -> Result<(), HostError> {
            host::set_map($map, &headers.as_pairs())
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
    pub fn context_id(&self) -> u32 {
        self.id
    }

    /// The phase this handle was given in; tasks spawned from it resume this
    /// half of the stream.
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
    pub fn request_body(&self, start: usize, max_size: usize) -> Result<Vec<u8>, HostError> {
        Ok(host::get_buffer(BufferType::HttpRequestBody, start, max_size)?.unwrap_or_default())
    }

    /// Replaces the whole buffered request body.
    pub fn set_request_body(&self, body: &[u8]) -> Result<(), HostError> {
        host::set_buffer(BufferType::HttpRequestBody, 0, u32::MAX as usize, body)
    }

    /// Up to `max_size` bytes of the buffered response body, from `start`.
    pub fn response_body(&self, start: usize, max_size: usize) -> Result<Vec<u8>, HostError> {
        Ok(host::get_buffer(BufferType::HttpResponseBody, start, max_size)?.unwrap_or_default())
    }

    /// Replaces the whole buffered response body.
    pub fn set_response_body(&self, body: &[u8]) -> Result<(), HostError> {
        host::set_buffer(BufferType::HttpResponseBody, 0, u32::MAX as usize, body)
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
            LocalResponse::new(413)
                .header("content-type", "text/plain")
                .body(format!("request body exceeds the limit of {limit} bytes"))
                .send()?;
            return Ok(None);
        }
        if !end_of_stream {
            return Ok(None);
        }
        self.request_body(0, body_size).map(Some)
    }

    /// Answers the client with `response` instead of going on, and returns
    /// [`Action::Pause`] for the phase to return.
    pub fn respond(&self, response: LocalResponse) -> Result<Action, HostError> {
        response.send()?;
        Ok(Action::Pause)
    }

    /// Resumes the half of the stream this handle's phase paused.
    pub fn resume(&self) -> Result<(), HostError> {
        host::continue_stream(match self.phase {
            Phase::Request => StreamKind::HttpRequest,
            Phase::Response => StreamKind::HttpResponse,
        })
    }

    /// Resets the stream: Envoy drops it without a response.
    pub fn reset(&self) -> Result<(), HostError> {
        host::close_stream(match self.phase {
            Phase::Request => StreamKind::HttpRequest,
            Phase::Response => StreamKind::HttpResponse,
        })
    }

    /// Logs `message` at `level` for this stream.
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
        let task = StreamTask {
            task,
            http: self.clone(),
            inline: !executor::is_running(),
        };
        match executor::spawn(self.id, task) {
            Ok(true) => Action::Pause,
            Ok(false) => INLINE_ACTION
                .with(|action| action.take())
                .unwrap_or(Action::Continue),
            Err(executor::Full) => {
                let error = Error::msg("too many tasks in this VM (65536)");
                self.finish(Err(error), true)
            }
        }
    }

    /// Applies a task's result to the stream. `inline` says whether the phase
    /// that spawned it has not returned yet (so there is nothing to resume).
    fn finish(&self, result: Result<Outcome, Error>, inline: bool) -> Action {
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(error) => {
                log::log(LogLevel::Error, &format!("task failed: {error}"));
                Outcome::Respond((self.on_error)(&error))
            }
        };
        match outcome {
            Outcome::Continue if inline => Action::Continue,
            Outcome::Continue => {
                if let Err(error) = self.resume() {
                    log::log(
                        LogLevel::Error,
                        &format!("could not resume the stream: {error}"),
                    );
                }
                Action::Continue
            }
            Outcome::Respond(response) => {
                if let Err(error) = response.send() {
                    log::log(
                        LogLevel::Error,
                        &format!("could not send the local response: {error}"),
                    );
                }
                Action::Pause
            }
        }
    }
}

thread_local! {
    /// The action of a task that ended during its first poll, inside `spawn`.
    static INLINE_ACTION: Cell<Option<Action>> = const { Cell::new(None) };
}

/// A stream's task: the user's future, and what to do with its result.
#[pin_project::pin_project]
struct StreamTask<F> {
    #[pin]
    task: F,
    http: Http,
    /// Whether the next poll runs inside `spawn`, before the phase returned.
    inline: bool,
}

impl<F: Future<Output = Result<Outcome, Error>>> Future for StreamTask<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let inline = std::mem::replace(this.inline, false);
        let result = std::task::ready!(this.task.poll(cx));
        let action = this.http.finish(result, inline);
        if inline {
            INLINE_ACTION.with(|slot| slot.set(Some(action)));
        }
        Poll::Ready(())
    }
}
