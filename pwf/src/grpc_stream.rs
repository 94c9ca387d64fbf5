//! gRPC streams: [`GrpcStream`], opened by [`GrpcRequest::open_stream`], read as a
//! [`futures::Stream`] of messages.
//!
//! What Envoy 1.40 does, measured (`envoy/e2e/tests/grpc_probe.rs`): a stream's callbacks
//! come in order: initial metadata (always, empty for a trailers-only answer), each
//! message, trailing metadata, then the close with the status. `proxy_grpc_close`
//! half-closes (the service still answers and closes); `proxy_grpc_cancel` resets the
//! stream upstream, with no more callbacks. Envoy lets a stream outlive the HTTP stream
//! that opened it; pwf does not: a stream opened by an HTTP (or TCP) stream's phase or
//! task belongs to that stream and is cancelled when it ends, wherever its [`GrpcStream`]
//! is held by then, the way that stream's tasks are dropped. One opened by the plugin
//! (its root context: `on_configure`, `on_tick`, a plugin-wide task) lives until it
//! closes or is cancelled. Either way, a [`GrpcStream`] dropped before the close cancels it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures::Stream;
use proxy_wasm::types::{BufferType, MapType};

use crate::grpc::{closed, GrpcError, GrpcErrorKind, GrpcRequest};
use crate::headers::HeaderValue;
use crate::host;

/// What the host told about a stream so far.
#[derive(Default)]
struct StreamState {
    messages: RefCell<VecDeque<Vec<u8>>>,
    initial: RefCell<Option<Vec<(String, HeaderValue)>>>,
    trailing: RefCell<Option<Vec<(String, HeaderValue)>>>,
    /// Set once, at the close: `Ok` for status 0.
    end: RefCell<Option<Result<(), GrpcError>>>,
    /// Whether the stream that opened it ended, which cancelled it.
    owner_ended: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl StreamState {
    fn wake(&self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

#[derive(Clone)]
struct Open {
    token: u32,
    state: Rc<StreamState>,
    cluster: Rc<str>,
    /// The HTTP or TCP stream that opened it, which it ends with; 0: the plugin.
    owner: u32,
}

thread_local! {
    /// The streams open now: few at a time, so a list.
    static GRPC_STREAMS: RefCell<Vec<Open>> = const { RefCell::new(Vec::new()) };
}

/// Removes stream `token` from the open streams.
fn remove(streams: &mut Vec<Open>, token: u32) -> Option<Open> {
    let at = streams.iter().position(|open| open.token == token)?;
    Some(streams.swap_remove(at))
}

impl GrpcRequest {
    /// Opens a stream of the request's method, with its metadata, and sends its message
    /// first if it was given one. The timeout does not apply (Envoy takes none for a
    /// stream); drop or [`cancel`](GrpcStream::cancel) the stream to give up on it.
    pub fn open_stream(&self) -> Result<GrpcStream, GrpcError> {
        let (token, cluster) = self.open()?;
        let state = Rc::new(StreamState::default());
        let owner = crate::context::acting_stream();
        GRPC_STREAMS.with(|streams| {
            streams.borrow_mut().push(Open {
                token,
                state: state.clone(),
                cluster: cluster.clone(),
                owner: owner.unwrap_or(0),
            })
        });
        crate::hooks::land_grpc_streams_with(on_event);
        if owner.is_some() {
            crate::hooks::on_stream_end_grpc(end_opened_by);
        }
        let stream = GrpcStream {
            token,
            state,
            cluster,
            ended: false,
        };
        if let Some(message) = self.first_message() {
            stream.send(message)?;
        }
        Ok(stream)
    }
}

/// A gRPC stream: send messages, half-close, cancel; read the answers as a
/// [`futures::Stream`] of messages, which ends after the last one, or with an error when
/// the stream closed with a status other than `OK`.
///
/// Dropping it before it closed cancels it (Envoy resets it upstream). Read it in a task.
///
/// A stream opened by an HTTP (or TCP) stream, in a phase or a task, belongs to that
/// stream: when it ends, the gRPC stream is cancelled, wherever this handle is held by
/// then (a plugin-wide task, the plugin's state); the handle then reads
/// [`GrpcErrorKind::SenderEnded`] once, and sends fail with it. One opened by the plugin
/// (`on_configure`, `on_tick`, a [`PluginContext::spawn`](crate::PluginContext::spawn)
/// task) lives until it closes or is cancelled.
///
/// ```no_run
/// use futures::StreamExt;
///
/// async fn echo_twice() -> Result<Vec<Vec<u8>>, pwf::Error> {
///     let mut stream = pwf::GrpcRequest::new("echo", "acme.Echo", "Stream").open_stream()?;
///     stream.send(b"one")?;
///     stream.send(b"two")?;
///     stream.close_send()?;
///     let mut answers = Vec::new();
///     while let Some(message) = stream.next().await {
///         answers.push(message?);
///     }
///     Ok(answers)
/// }
/// ```
#[must_use = "a stream is cancelled when dropped"]
pub struct GrpcStream {
    token: u32,
    state: Rc<StreamState>,
    cluster: Rc<str>,
    /// Whether the stream's end was handed out (it is no longer open).
    ended: bool,
}

impl fmt::Debug for GrpcStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcStream")
            .field("token", &self.token)
            .field("cluster", &self.cluster)
            .finish()
    }
}

impl GrpcStream {
    /// The host's token for this stream.
    pub fn token(&self) -> u32 {
        self.token
    }

    /// Sends `message` (serialized protobuf bytes).
    pub fn send(&self, message: &[u8]) -> Result<(), GrpcError> {
        self.check_owner()?;
        host::grpc_send(self.token, message, false).map_err(|e| self.host_error(e))
    }

    /// Half-closes: tells the service that no more messages come. Its answers still do.
    pub fn close_send(&self) -> Result<(), GrpcError> {
        self.check_owner()?;
        host::grpc_close(self.token).map_err(|e| self.host_error(e))
    }

    /// Cancels the stream: Envoy resets it upstream, and nothing more arrives.
    pub fn cancel(mut self) {
        self.cancel_now();
    }

    /// The initial metadata the service sent, once it came (empty for an answer that
    /// was only trailers).
    pub fn initial_metadata(&self) -> Option<Vec<(String, HeaderValue)>> {
        self.state.initial.borrow().clone()
    }

    /// The trailing metadata, once it came (`grpc-status` among them).
    pub fn trailing_metadata(&self) -> Option<Vec<(String, HeaderValue)>> {
        self.state.trailing.borrow().clone()
    }

    /// Fails once the stream that opened it ended (and so cancelled it).
    fn check_owner(&self) -> Result<(), GrpcError> {
        if self.state.owner_ended.get() {
            return Err(GrpcError::new(&self.cluster, GrpcErrorKind::SenderEnded));
        }
        Ok(())
    }

    fn host_error(&self, error: crate::HostError) -> GrpcError {
        GrpcError::new(&self.cluster, GrpcErrorKind::Host(error.status()))
    }

    fn cancel_now(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        let open = GRPC_STREAMS
            .try_with(|s| {
                s.try_borrow_mut()
                    .ok()
                    .and_then(|mut s| remove(&mut s, self.token))
            })
            .ok()
            .flatten();
        if open.is_some() {
            let _ = host::grpc_cancel(self.token);
        }
    }
}

impl Stream for GrpcStream {
    type Item = Result<Vec<u8>, GrpcError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let message = self.state.messages.borrow_mut().pop_front();
        if let Some(message) = message {
            return Poll::Ready(Some(Ok(message)));
        }
        let end = self.state.end.borrow_mut().take();
        if let Some(end) = end {
            self.ended = true;
            return Poll::Ready(end.err().map(Err));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        if !crate::executor::is_running() {
            let cluster = self.cluster.clone();
            self.cancel_now();
            return Poll::Ready(Some(Err(GrpcError::new(
                &cluster,
                GrpcErrorKind::NotInTask,
            ))));
        }
        self.state.waker.set(Some(cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for GrpcStream {
    fn drop(&mut self) {
        self.cancel_now();
    }
}

/// What the root's stream callbacks deliver.
pub(crate) const INITIAL: u8 = 0;
pub(crate) const MESSAGE: u8 = 1;
pub(crate) const TRAILING: u8 = 2;
pub(crate) const CLOSE: u8 = 3;

/// Delivers one of a stream's callbacks (`kind`, with its count, size or status), then runs
/// whatever it woke.
pub(crate) fn on_event(token: u32, kind: u8, value: usize) {
    if deliver(token, kind, value) {
        crate::executor::run_until_stalled();
    }
}

fn deliver(token: u32, kind: u8, value: usize) -> bool {
    let open = GRPC_STREAMS.with(|streams| {
        let mut streams = streams.borrow_mut();
        if kind == CLOSE {
            remove(&mut streams, token)
        } else {
            streams.iter().find(|open| open.token == token).cloned()
        }
    });
    let Some(open) = open else {
        return false;
    };
    let state = &open.state;
    let fail = |error: crate::HostError| {
        *state.end.borrow_mut() = Some(Err(GrpcError::new(
            &open.cluster,
            GrpcErrorKind::Host(error.status()),
        )));
    };
    match kind {
        INITIAL => match host::get_map(MapType::GrpcReceiveInitialMetadata) {
            Ok(map) => *state.initial.borrow_mut() = Some(map),
            Err(error) => fail(error),
        },
        MESSAGE => match host::get_buffer(BufferType::GrpcReceiveBuffer, 0, value) {
            Ok(message) => state
                .messages
                .borrow_mut()
                .push_back(message.unwrap_or_default()),
            Err(error) => fail(error),
        },
        TRAILING => match host::get_map(MapType::GrpcReceiveTrailingMetadata) {
            Ok(map) => *state.trailing.borrow_mut() = Some(map),
            Err(error) => fail(error),
        },
        _ => {
            let code = u32::try_from(value).unwrap_or(u32::MAX);
            let end = if code == 0 {
                Ok(())
            } else {
                match host::grpc_status() {
                    Ok((_, text)) => Err(closed(&open.cluster, code, &text)),
                    Err(error) => Err(GrpcError::new(
                        &open.cluster,
                        GrpcErrorKind::Host(error.status()),
                    )),
                }
            };
            let mut slot = state.end.borrow_mut();
            if slot.is_none() {
                *slot = Some(end);
            }
        }
    }
    state.wake();
    true
}

/// Cancels every gRPC stream that stream `context_id`, which has ended, opened and that
/// is still open: the handles its tasks held were dropped with them; one held elsewhere
/// reads the error. Then runs what that woke.
fn end_opened_by(context_id: u32) {
    let mut ended = Vec::new();
    let _ = GRPC_STREAMS.try_with(|streams| {
        let Ok(mut streams) = streams.try_borrow_mut() else {
            return;
        };
        streams.retain(|open| {
            let owned = open.owner == context_id;
            if owned {
                ended.push(open.clone());
            }
            !owned
        });
    });
    if ended.is_empty() {
        return;
    }
    for open in ended {
        // Envoy resets it upstream; a failure means it has ended already.
        let _ = host::grpc_cancel(open.token);
        open.state.owner_ended.set(true);
        let mut slot = open.state.end.borrow_mut();
        if slot.is_none() {
            *slot = Some(Err(GrpcError::new(
                &open.cluster,
                GrpcErrorKind::SenderEnded,
            )));
        }
        drop(slot);
        open.state.wake();
    }
    crate::executor::run_until_stalled();
}

/// The streams open now.
pub(crate) fn open_grpc_streams() -> usize {
    GRPC_STREAMS.with(|streams| streams.borrow().len())
}
