//! [`DispatchGroup`]: pause a stream, fan out calls, resume once all landed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::call::{CallError, PendingCall, Request, Response};
use crate::error::Error;
use crate::http::{Action, Http, Outcome};

/// The result of one call of a group.
pub type CallResult = Result<Response, CallError>;

type OnLanded = Box<dyn FnMut(&CallResult, usize)>;

enum Slot {
    Pending(PendingCall),
    Done(CallResult),
}

/// A set of HTTP calls whose results are wanted together.
///
/// [`dispatch`](DispatchGroup::dispatch) sends each call at once, so they run
/// in parallel. [`wait`](DispatchGroup::wait) pauses the stream until every
/// call has landed, in whatever order, then hands every result, in dispatch
/// order, to one completion callback, which decides how the stream goes on.
/// pwf routes each response to its group: there is no token to keep and no
/// `on_http_call_response` to write.
///
/// ```no_run
/// use pwf::{Action, DispatchGroup, Error, Http, Outcome, Request};
///
/// fn on_response_headers(http: &Http) -> Result<Action, Error> {
///     let mut group = DispatchGroup::new();
///     for _ in 0..3 {
///         if let Err(error) = group.dispatch(Request::get("httpbin", "/uuid")) {
///             pwf::error!("{error}");
///         }
///     }
///     Ok(group.wait(http, |http, results| {
///         let answered = results.iter().filter(|result| result.is_ok()).count();
///         http.set_response_header("total-dispatched", answered.to_string())?;
///         Ok(Outcome::Continue)
///     }))
/// }
/// ```
///
/// The group is also a future of its results, for async code:
/// `let results = group.await;`.
#[derive(Default)]
pub struct DispatchGroup {
    slots: Vec<Slot>,
    pending: usize,
    on_landed: Option<OnLanded>,
}

impl DispatchGroup {
    /// An empty group.
    pub fn new() -> DispatchGroup {
        DispatchGroup::default()
    }

    /// Sends `request` now. A call Envoy refuses is kept in the group as an
    /// error result, in its place, and also returned, so it can be logged.
    pub fn dispatch(&mut self, request: Request) -> Result<(), CallError> {
        match request.send() {
            Ok(call) => {
                self.slots.push(Slot::Pending(call));
                self.pending += 1;
                Ok(())
            }
            Err(error) => {
                self.slots.push(Slot::Done(Err(error.clone())));
                Err(error)
            }
        }
    }

    /// Runs `callback` each time a call lands, with its result and the number
    /// of calls still pending.
    pub fn on_landed(mut self, callback: impl FnMut(&CallResult, usize) + 'static) -> Self {
        self.on_landed = Some(Box::new(callback));
        self
    }

    /// The number of calls in the group, refused ones included.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the group holds no call.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The number of calls dispatched and not landed yet.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Pauses the stream until every call has landed, then runs `done` with
    /// every result in dispatch order; its [`Outcome`] resumes the stream
    /// (exactly once) or answers the client. Returns the [`Action`] for the
    /// phase to return: when no call is pending, `done` runs at once and the
    /// stream does not pause.
    ///
    /// In a request phase it pauses and resumes the request; in a response
    /// phase, the response. When the stream ends first, the group is dropped
    /// and late responses are ignored.
    pub fn wait<F>(self, http: &Http, done: F) -> Action
    where
        F: FnOnce(&Http, Vec<CallResult>) -> Result<Outcome, Error> + 'static,
    {
        let handle = http.clone();
        http.spawn(async move {
            let results = self.await;
            done(&handle, results)
        })
    }
}

impl Future for DispatchGroup {
    type Output = Vec<CallResult>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<CallResult>> {
        let this = &mut *self;
        for slot in &mut this.slots {
            if let Slot::Pending(call) = slot {
                if let Poll::Ready(result) = Pin::new(call).poll(cx) {
                    this.pending -= 1;
                    if let Some(callback) = &mut this.on_landed {
                        callback(&result, this.pending);
                    }
                    *slot = Slot::Done(result);
                }
            }
        }
        if this.pending > 0 {
            return Poll::Pending;
        }
        let results = std::mem::take(&mut this.slots)
            .into_iter()
            .filter_map(|slot| match slot {
                Slot::Done(result) => Some(result),
                Slot::Pending(_) => None,
            })
            .collect();
        Poll::Ready(results)
    }
}
