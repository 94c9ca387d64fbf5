//! gRPC unary calls as futures: [`GrpcRequest`], [`PendingGrpcCall`], [`GrpcResponse`],
//! [`GrpcError`].
//!
//! Built on the same callout layer as HTTP calls: sent on behalf of the root context (so a
//! call's answer reaches its waiter wherever it was sent from), awaited in a task, and
//! cancelled when its waiter is dropped (a stream that ends drops its tasks).
//!
//! What Envoy 1.40 does, measured (`envoy/e2e/tests/grpc_probe.rs`), and what pwf makes of it:
//!
//! - The `service` bytes are a serialized `envoy.config.core.v3.GrpcService`, or else a
//!   cluster name. Bytes that parse as a `GrpcService` without a target (no bytes, or a name
//!   such as `hi`) abort the whole Envoy process; pwf always sends a `GrpcService`
//!   (`envoy_grpc { cluster_name, authority }`), so a cluster's name is never misread.
//! - An unknown cluster makes the dispatch fail with `InternalFailure`
//!   ([`GrpcErrorKind::Dispatch`]).
//! - A refused connection, a reset and a timeout come back as status 14 (`UNAVAILABLE`)
//!   made by Envoy ([`GrpcErrorKind::Transport`]); a status the service sent comes with
//!   its message ([`GrpcErrorKind::Status`]). Envoy marks the second kind
//!   (`{via_upstream}` after the message), which is how pwf tells them apart.
//! - A unary call gets neither initial nor trailing metadata from Envoy: a
//!   [`GrpcResponse`] is the message alone.
//! - A timeout of 0 is sent to the service as `grpc-timeout: 0m`, an expired deadline to
//!   most gRPC servers: pwf refuses it ([`GrpcErrorKind::ZeroTimeout`]).
//! - A call outlives the HTTP stream that sent it unless cancelled; `proxy_grpc_cancel`
//!   resets it upstream. pwf cancels a call whose [`PendingGrpcCall`] is dropped before
//!   its answer.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::call::DEFAULT_TIMEOUT;
use crate::config::timeout_millis;
use crate::context;
use crate::error::Status;
use crate::host;
use crate::shown::Shown;
use crate::tokens::TokenMap;

/// A gRPC unary call to build and [`send`](GrpcRequest::send).
///
/// The message is the serialized protobuf request (with the `prost` feature,
/// [`GrpcRequest::encode`] serializes one); the answer is a [`GrpcResponse`].
///
/// ```no_run
/// use std::time::Duration;
///
/// async fn check(user: &str) -> Result<Vec<u8>, pwf::Error> {
///     let call = pwf::GrpcRequest::new("policy", "acme.policy.v1.Policy", "Check")
///         .metadata("x-user", user)
///         .message(b"\x0a\x03abc".to_vec())
///         .timeout(Duration::from_millis(250))
///         .send()?;
///     Ok(call.await?.into_message())
/// }
/// ```
#[derive(Clone, Debug)]
pub struct GrpcRequest {
    cluster: Rc<str>,
    authority: Option<String>,
    service: String,
    method: String,
    metadata: Vec<(String, Vec<u8>)>,
    /// `None`: no message given (a unary call sends an empty one).
    message: Option<Vec<u8>>,
    timeout: Duration,
    /// Why the request cannot be sent, found while it was built.
    refusal: Option<GrpcErrorKind>,
}

impl GrpcRequest {
    /// A call of `method` of `service` (its full protobuf name,
    /// `package.Service`) on the Envoy cluster `cluster`, with an empty message
    /// and a timeout of [`DEFAULT_TIMEOUT`].
    ///
    /// The cluster must speak HTTP/2 (`http2_protocol_options`), as gRPC needs.
    pub fn new(
        cluster: impl AsRef<str>,
        service: impl Into<String>,
        method: impl Into<String>,
    ) -> GrpcRequest {
        GrpcRequest {
            cluster: Rc::from(cluster.as_ref()),
            authority: None,
            service: service.into(),
            method: method.into(),
            metadata: Vec::new(),
            message: None,
            timeout: DEFAULT_TIMEOUT,
            refusal: None,
        }
    }

    /// The `:authority` of the call (Envoy's default is the cluster's name).
    pub fn authority(mut self, authority: impl Into<String>) -> GrpcRequest {
        self.authority = Some(authority.into());
        self
    }

    /// Adds request metadata `name: value`. Names are lowercase (`a-z`, `0-9`, `-`, `_`,
    /// `.`); a value is text without CR, LF or NUL, unless the name ends in `-bin`
    /// (binary metadata, which Envoy base64-encodes). A bad pair makes
    /// [`send`](GrpcRequest::send) fail with [`GrpcErrorKind::InvalidMetadata`].
    pub fn metadata(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> GrpcRequest {
        let (name, value) = (name.into(), value.into());
        let name_ok = !name.is_empty()
            && name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            });
        let value_ok =
            name.ends_with("-bin") || !value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0));
        if (!name_ok || !value_ok) && self.refusal.is_none() {
            self.refusal = Some(GrpcErrorKind::InvalidMetadata(name.clone()));
        }
        self.metadata.push((name, value));
        self
    }

    /// The request message: serialized protobuf bytes.
    pub fn message(mut self, message: impl Into<Vec<u8>>) -> GrpcRequest {
        self.message = Some(message.into());
        self
    }

    /// The request message, serialized from a `prost` message.
    #[cfg(feature = "prost")]
    pub fn encode(self, message: &impl prost::Message) -> GrpcRequest {
        let bytes = message.encode_to_vec();
        self.message(bytes)
    }

    /// How long Envoy waits for the answer (default [`DEFAULT_TIMEOUT`]); the service
    /// sees it as the call's deadline (`grpc-timeout`). At least 1 ms.
    pub fn timeout(mut self, timeout: Duration) -> GrpcRequest {
        self.timeout = timeout;
        self
    }

    /// The cluster the call goes to.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Sends the call; the returned [`PendingGrpcCall`] resolves to its answer.
    ///
    /// Fails when the request is invalid or when Envoy refuses it
    /// ([`GrpcErrorKind::Dispatch`]: most likely no cluster has that name). Send it from
    /// a phase or a task, not while a filter is being created.
    pub fn send(&self) -> Result<PendingGrpcCall, GrpcError> {
        let token = self.dispatch()?;
        let state = Rc::new(CallState::default());
        GRPC_CALLS.with(|calls| {
            calls.borrow_mut().insert(
                token,
                Waiting {
                    state: state.clone(),
                    cluster: self.cluster.clone(),
                },
            )
        });
        crate::hooks::land_grpc_calls_with(on_response);
        Ok(PendingGrpcCall {
            token,
            state,
            done: false,
        })
    }

    fn error(&self, kind: GrpcErrorKind) -> GrpcError {
        GrpcError::new(&self.cluster, kind)
    }

    /// The message given, if any (a stream sends it first).
    #[cfg(feature = "grpc-streams")]
    pub(crate) fn first_message(&self) -> Option<&[u8]> {
        self.message.as_deref()
    }

    /// Opens a stream of this request's method, through the root as calls are: its token,
    /// and the cluster.
    #[cfg(feature = "grpc-streams")]
    pub(crate) fn open(&self) -> Result<(u32, Rc<str>), GrpcError> {
        if let Some(kind) = &self.refusal {
            return Err(self.error(kind.clone()));
        }
        let service = grpc_service(&self.cluster, self.authority.as_deref())
            .ok_or_else(|| self.error(GrpcErrorKind::ServiceTooLong))?;
        let metadata = self
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        let sent = context::for_root(|| {
            host::open_grpc_stream(&service, &self.service, &self.method, metadata)
        })
        .ok_or_else(|| self.error(GrpcErrorKind::NotInCallback))?;
        let token = sent.map_err(|error| match error.call() {
            "open_grpc_stream" => self.error(GrpcErrorKind::Dispatch(error.status())),
            _ => self.error(GrpcErrorKind::Host(error.status())),
        })?;
        Ok((token, self.cluster.clone()))
    }

    fn dispatch(&self) -> Result<u32, GrpcError> {
        if let Some(kind) = &self.refusal {
            return Err(self.error(kind.clone()));
        }
        let millis = match timeout_millis(self.timeout) {
            Some(0) => return Err(self.error(GrpcErrorKind::ZeroTimeout)),
            Some(millis) => millis,
            None => return Err(self.error(GrpcErrorKind::TimeoutTooLong)),
        };
        let service = grpc_service(&self.cluster, self.authority.as_deref())
            .ok_or_else(|| self.error(GrpcErrorKind::ServiceTooLong))?;
        let metadata = self
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        let sent = context::for_root(|| {
            host::dispatch_grpc_call(
                &service,
                &self.service,
                &self.method,
                metadata,
                self.message.as_deref().unwrap_or_default(),
                Duration::from_millis(u64::from(millis)),
            )
        })
        .ok_or_else(|| self.error(GrpcErrorKind::NotInCallback))?;
        sent.map_err(|error| match error.call() {
            "dispatch_grpc_call" => self.error(GrpcErrorKind::Dispatch(error.status())),
            _ => self.error(GrpcErrorKind::Host(error.status())),
        })
    }
}

/// `envoy.config.core.v3.GrpcService { envoy_grpc (1) { cluster_name (1), authority (2) } }`,
/// as text (the SDK passes the service as a `&str`): every length must fit one varint byte,
/// so that the bytes are ASCII around the names. `None` when they do not.
fn grpc_service(cluster: &str, authority: Option<&str>) -> Option<String> {
    let authority_len = authority.map_or(0, |a| 2 + a.len());
    let inner = 2 + cluster.len() + authority_len;
    if inner >= 0x80 || cluster.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(2 + inner);
    out.push('\u{0a}');
    out.push(char::from(inner as u8));
    out.push('\u{0a}');
    out.push(char::from(cluster.len() as u8));
    out.push_str(cluster);
    if let Some(authority) = authority {
        out.push('\u{12}');
        out.push(char::from(authority.len() as u8));
        out.push_str(authority);
    }
    Some(out)
}

/// The answer to a gRPC unary call whose status was `OK`: the response message.
///
/// Envoy 1.40 hands a plugin no metadata (initial or trailing) for a unary call, so there
/// is none here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcResponse {
    cluster: Rc<str>,
    message: Vec<u8>,
}

impl GrpcResponse {
    /// The response message: serialized protobuf bytes.
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// The response message, owned.
    pub fn into_message(self) -> Vec<u8> {
        self.message
    }

    /// The cluster that answered.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The response message, parsed as a `prost` message.
    #[cfg(feature = "prost")]
    pub fn decode<M: prost::Message + Default>(&self) -> Result<M, GrpcError> {
        M::decode(self.message.as_slice())
            .map_err(|_| GrpcError::new(&self.cluster, GrpcErrorKind::Decode))
    }
}

/// What went wrong with a gRPC call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrpcErrorKind {
    /// The timeout was zero: Envoy would send it as an expired deadline
    /// (`grpc-timeout: 0m`).
    ZeroTimeout,
    /// The timeout is 2^31 milliseconds or more, which Envoy refuses.
    TimeoutTooLong,
    /// This metadata name is not lowercase `a-z0-9-_.`, or its value has a CR, LF or NUL
    /// (allowed only in a `-bin` name). Nothing was sent.
    InvalidMetadata(String),
    /// The cluster name is empty, or the cluster name and authority are together longer
    /// than 123 bytes. Nothing was sent.
    ServiceTooLong,
    /// Envoy refused to dispatch the call: `InternalFailure` most likely means that no
    /// cluster has that name.
    Dispatch(Status),
    /// The service answered with this non-`OK` status.
    Status {
        /// The gRPC status code (1 to 16).
        code: u32,
        /// The status message the service sent (`grpc-message`).
        message: String,
    },
    /// Envoy ended the call without an answer from the service: a refused connection, a
    /// reset, a timeout (`details` is `response_timeout`), no healthy host.
    Transport {
        /// The gRPC status code Envoy gave (14, `UNAVAILABLE`, for all of those).
        code: u32,
        /// Envoy's message ("upstream request timeout", ...).
        message: String,
        /// Envoy's response code details (`response_timeout`, ...).
        details: String,
    },
    /// The response message is not the expected protobuf message.
    #[cfg(feature = "prost")]
    Decode,
    /// The host failed to hand over the answer.
    Host(Status),
    /// The call was awaited outside pwf's executor, where its answer can never arrive.
    NotInTask,
    /// The call was sent while a filter was being created; send it from a phase.
    NotInCallback,
    /// The HTTP or TCP stream that opened this gRPC stream ended, and so cancelled it: a
    /// gRPC stream belongs to the stream that opened it.
    #[cfg(feature = "grpc-streams")]
    SenderEnded,
}

/// A gRPC call that did not produce an `OK` answer, naming the cluster.
///
/// ```
/// # use pwf_test as _; // links the native host's imports
/// use std::time::Duration;
///
/// let error = pwf::GrpcRequest::new("rls", "svc.S", "M")
///     .timeout(Duration::ZERO)
///     .send()
///     .unwrap_err();
/// assert_eq!(
///     error.to_string(),
///     "gRPC call to cluster `rls` not sent: a zero timeout is an expired deadline to the service; give at least 1ms"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcError {
    cluster: String,
    kind: GrpcErrorKind,
}

impl GrpcError {
    pub(crate) fn new(cluster: &str, kind: GrpcErrorKind) -> GrpcError {
        GrpcError {
            cluster: cluster.to_owned(),
            kind,
        }
    }

    /// The cluster the call went to.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// What went wrong.
    pub fn kind(&self) -> &GrpcErrorKind {
        &self.kind
    }

    /// The gRPC status code of a call that ended, whoever ended it.
    pub fn code(&self) -> Option<u32> {
        match &self.kind {
            GrpcErrorKind::Status { code, .. } | GrpcErrorKind::Transport { code, .. } => {
                Some(*code)
            }
            _ => None,
        }
    }

    /// Whether Envoy ended the call because its timeout passed.
    pub fn is_timeout(&self) -> bool {
        matches!(&self.kind, GrpcErrorKind::Transport { details, .. } if details == "response_timeout")
    }
}

impl fmt::Display for GrpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gRPC call to cluster {}", Shown(self.cluster.as_bytes()))?;
        match &self.kind {
            GrpcErrorKind::ZeroTimeout => f.write_str(
                " not sent: a zero timeout is an expired deadline to the service; give at least 1ms",
            ),
            GrpcErrorKind::TimeoutTooLong => f.write_str(
                " not sent: the timeout is 2147483648ms or more, and Envoy takes at most 2147483647ms",
            ),
            GrpcErrorKind::InvalidMetadata(name) => write!(
                f,
                " not sent: metadata {} must be lowercase a-z0-9-_. with a value without CR, LF or NUL (unless its name ends in -bin)",
                Shown(name.as_bytes())
            ),
            GrpcErrorKind::ServiceTooLong => f.write_str(
                " not sent: the cluster name must be 1 to 123 bytes, with the authority",
            ),
            GrpcErrorKind::Dispatch(status) => write!(
                f,
                " refused by Envoy ({status}): is there a cluster of that name?"
            ),
            GrpcErrorKind::Status { code, message } => {
                write!(f, " answered status {code} ({})", code_name(*code))?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            GrpcErrorKind::Transport {
                code,
                message,
                details,
            } => write!(
                f,
                " failed in Envoy, status {code} ({}): {message} ({details})",
                code_name(*code)
            ),
            #[cfg(feature = "prost")]
            GrpcErrorKind::Decode => f.write_str(" answered a message that does not decode"),
            GrpcErrorKind::Host(status) => {
                write!(f, " lost: the host failed to hand over its answer ({status})")
            }
            GrpcErrorKind::NotInTask => f.write_str(
                " awaited outside pwf's executor, where its answer can never arrive; await it in a task (Http::spawn, PluginContext::spawn)",
            ),
            GrpcErrorKind::NotInCallback => f.write_str(
                " not sent: sent while a filter was being created; send it from a phase",
            ),
            #[cfg(feature = "grpc-streams")]
            GrpcErrorKind::SenderEnded => {
                f.write_str(" cancelled: the stream that opened it ended first")
            }
        }
    }
}

impl std::error::Error for GrpcError {}

/// The name of gRPC status `code`.
fn code_name(code: u32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES.get(code as usize).copied().unwrap_or("unknown code")
}

/// Splits Envoy's status message into the message and its response code details: Envoy
/// appends `{details}` (with braces nested inside), `{via_upstream}` when the service sent
/// the status.
fn split_details(text: &str) -> (&str, &str) {
    if !text.ends_with('}') {
        return (text, "");
    }
    let mut depth = 0usize;
    for (at, c) in text.char_indices().rev() {
        match c {
            '}' => depth += 1,
            '{' => {
                depth -= 1;
                if depth == 0 {
                    return (&text[..at], &text[at + 1..text.len() - 1]);
                }
            }
            _ => {}
        }
    }
    (text, "")
}

/// The error of a call that closed with `code` and Envoy's status text.
pub(crate) fn closed(cluster: &str, code: u32, text: &[u8]) -> GrpcError {
    let text = crate::shown::lossy(text);
    let (message, details) = split_details(&text);
    let kind = if details == "via_upstream" {
        GrpcErrorKind::Status {
            code,
            message: message.to_owned(),
        }
    } else {
        GrpcErrorKind::Transport {
            code,
            message: message.to_owned(),
            details: details.to_owned(),
        }
    };
    GrpcError::new(cluster, kind)
}

#[derive(Default)]
struct CallState {
    result: Cell<Option<Result<GrpcResponse, GrpcError>>>,
    waker: Cell<Option<Waker>>,
}

struct Waiting {
    state: Rc<CallState>,
    cluster: Rc<str>,
}

thread_local! {
    static GRPC_CALLS: RefCell<TokenMap<Waiting>> = const { RefCell::new(TokenMap::new()) };
}

/// A gRPC call in flight; resolves to its answer.
///
/// Dropping it before the answer cancels the call (Envoy resets it upstream).
#[derive(Debug)]
#[must_use = "a call's answer is only seen by awaiting its PendingGrpcCall"]
pub struct PendingGrpcCall {
    token: u32,
    state: Rc<CallState>,
    done: bool,
}

impl fmt::Debug for CallState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallState")
    }
}

impl PendingGrpcCall {
    /// The host's token for this call.
    pub fn token(&self) -> u32 {
        self.token
    }
}

impl Future for PendingGrpcCall {
    type Output = Result<GrpcResponse, GrpcError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(result) = self.state.result.take() {
            self.done = true;
            return Poll::Ready(result);
        }
        if !crate::executor::is_running() {
            self.done = true;
            let waiting = GRPC_CALLS.with(|calls| calls.borrow_mut().remove(self.token));
            let _ = host::grpc_cancel(self.token);
            let cluster = waiting.map(|w| w.cluster);
            return Poll::Ready(Err(GrpcError::new(
                cluster.as_deref().unwrap_or(""),
                GrpcErrorKind::NotInTask,
            )));
        }
        let waker = match self.state.waker.take() {
            Some(waker) if waker.will_wake(cx.waker()) => waker,
            _ => cx.waker().clone(),
        };
        self.state.waker.set(Some(waker));
        Poll::Pending
    }
}

impl Drop for PendingGrpcCall {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let waiting = GRPC_CALLS
            .try_with(|calls| {
                calls
                    .try_borrow_mut()
                    .ok()
                    .and_then(|mut c| c.remove(self.token))
            })
            .ok()
            .flatten();
        if waiting.is_some() {
            // Still in flight: Envoy resets it upstream. A failure means it has
            // ended already; nothing to do.
            let _ = host::grpc_cancel(self.token);
        }
    }
}

/// What the root does in `on_grpc_call_response`: delivers the answer to its call, then
/// runs whatever it woke.
pub(crate) fn on_response(token: u32, status_code: u32, size: usize) {
    if deliver(token, status_code, size) {
        crate::executor::run_until_stalled();
    }
}

fn deliver(token: u32, status_code: u32, size: usize) -> bool {
    let Some(waiting) = GRPC_CALLS.with(|calls| calls.borrow_mut().remove(token)) else {
        return false;
    };
    let result = if status_code == 0 {
        match host::get_buffer(proxy_wasm::types::BufferType::GrpcReceiveBuffer, 0, size) {
            Ok(message) => Ok(GrpcResponse {
                cluster: waiting.cluster.clone(),
                message: message.unwrap_or_default(),
            }),
            Err(error) => Err(GrpcError::new(
                &waiting.cluster,
                GrpcErrorKind::Host(error.status()),
            )),
        }
    } else {
        match host::grpc_status() {
            Ok((_, text)) => Err(closed(&waiting.cluster, status_code, &text)),
            Err(error) => Err(GrpcError::new(
                &waiting.cluster,
                GrpcErrorKind::Host(error.status()),
            )),
        }
    };
    waiting.state.result.set(Some(result));
    if let Some(waker) = waiting.state.waker.take() {
        waker.wake();
    }
    true
}

/// The calls in flight.
pub(crate) fn pending_grpc_calls() -> usize {
    GRPC_CALLS.with(|calls| calls.borrow().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_details_takes_the_outer_braces_at_the_end() {
        assert_eq!(
            split_details("no way{via_upstream}"),
            ("no way", "via_upstream")
        );
        assert_eq!(
            split_details("upstream connect error. reset{a{b|c}}"),
            ("upstream connect error. reset", "a{b|c}")
        );
        assert_eq!(split_details("plain"), ("plain", ""));
        assert_eq!(split_details("odd}"), ("odd}", ""));
    }

    #[test]
    fn grpc_service_is_a_serialized_envoy_grpc_target() {
        assert_eq!(
            grpc_service("rls", None).unwrap().as_bytes(),
            b"\x0a\x05\x0a\x03rls"
        );
        assert_eq!(
            grpc_service("rls", Some("a.b")).unwrap().as_bytes(),
            b"\x0a\x0a\x0a\x03rls\x12\x03a.b"
        );
        assert_eq!(grpc_service("", None), None);
        assert_eq!(grpc_service(&"c".repeat(126), None), None);
        assert!(grpc_service(&"c".repeat(125), None).is_some());
    }

    #[test]
    fn closed_tells_a_service_status_from_an_envoy_failure() {
        let status = closed("rls", 7, b"no way{via_upstream}");
        assert_eq!(
            status.kind(),
            &GrpcErrorKind::Status {
                code: 7,
                message: "no way".to_owned()
            }
        );
        assert_eq!(
            status.to_string(),
            "gRPC call to cluster `rls` answered status 7 (PERMISSION_DENIED): no way"
        );
        let timeout = closed("rls", 14, b"upstream request timeout{response_timeout}");
        assert!(timeout.is_timeout());
        assert_eq!(timeout.code(), Some(14));
    }
}
