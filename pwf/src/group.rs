//! [`DispatchGroup`]: pause a stream, fan out calls, resume once all landed.

use std::borrow::Borrow;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::call::{self, CallError, CallErrorKind, Landing, Request, Response};
use crate::error::Error;
use crate::executor;
use crate::http::{Action, Http, Outcome};
use crate::slot::fill;

/// The result of one call of a group.
///
/// ```
/// use pwf::CallResult;
///
/// fn answered(results: &[CallResult]) -> usize {
///     results.iter().filter(|result| result.is_ok()).count()
/// }
/// assert_eq!(answered(&[]), 0);
/// ```
pub type CallResult = Result<Response, CallError>;

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
pub struct DispatchGroup {
    state: Rc<GroupState>,
}

impl Default for DispatchGroup {
    fn default() -> Self {
        DispatchGroup::new()
    }
}

impl DispatchGroup {
    /// An empty group.
    ///
    /// ```
    /// let group = pwf::DispatchGroup::new();
    /// assert!(group.is_empty());
    /// assert_eq!(group.pending(), 0);
    /// ```
    pub fn new() -> DispatchGroup {
        DispatchGroup::with_capacity(0)
    }

    /// An empty group with room for `calls` calls, so that dispatching them
    /// does not grow it.
    ///
    /// ```
    /// let group = pwf::DispatchGroup::with_capacity(10);
    /// assert!(group.is_empty());
    /// ```
    pub fn with_capacity(calls: usize) -> DispatchGroup {
        DispatchGroup {
            state: Rc::new(GroupState {
                results: RefCell::new(Vec::with_capacity(calls)),
                pending: Cell::new(0),
                waker: Cell::new(None),
                on_landed: RefCell::new(None),
                waiting: Cell::new(None),
            }),
        }
    }

    /// Sends `request` now. A call Envoy refuses is kept in the group as an
    /// error result, in its place, and also returned, so it can be logged.
    ///
    /// `request` can be given by reference: one request sent many times is
    /// built once.
    ///
    /// ```no_run
    /// use pwf::{DispatchGroup, Request};
    ///
    /// fn fan_out(group: &mut DispatchGroup) {
    ///     for cluster in ["us", "eu"] {
    ///         if let Err(error) = group.dispatch(Request::get(cluster, "/uuid")) {
    ///             pwf::warn!("not sent: {error}");
    ///         }
    ///     }
    /// }
    /// ```
    pub fn dispatch(&mut self, request: impl Borrow<Request>) -> Result<(), CallError> {
        let state = &self.state;
        let index = state.results.borrow().len();
        let sent = request.borrow().send_to_group(state.clone(), index);
        let slot = match &sent {
            Ok(()) => {
                state.pending.set(state.pending.get() + 1);
                GroupState::placeholder()
            }
            Err(error) => Err(error.clone()),
        };
        state.results.borrow_mut().push(slot);
        sent
    }

    /// Runs `callback` each time a call lands, with its result and the number
    /// of calls still pending. It runs inside the host's callback for that
    /// call, before the group completes.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    ///
    /// let failed = Rc::new(Cell::new(0));
    /// let seen = failed.clone();
    /// let group = pwf::DispatchGroup::new().on_landed(move |result, _pending| {
    ///     if result.is_err() {
    ///         seen.set(seen.get() + 1);
    ///     }
    /// });
    /// assert!(group.is_empty());
    /// assert_eq!(failed.get(), 0); // nothing has landed yet
    /// ```
    pub fn on_landed(self, callback: impl FnMut(&CallResult, usize) + 'static) -> Self {
        *self.state.on_landed.borrow_mut() = Some(Box::new(callback));
        self
    }

    /// The number of calls in the group, refused ones included.
    ///
    /// ```no_run
    /// fn sent(group: &mut pwf::DispatchGroup) -> usize {
    ///     // A refused call still counts: it holds an error result.
    ///     let _ = group.dispatch(pwf::Request::get("httpbin", "/uuid"));
    ///     group.len()
    /// }
    /// ```
    pub fn len(&self) -> usize {
        self.state.results.borrow().len()
    }

    /// Whether the group holds no call.
    ///
    /// ```
    /// let group = pwf::DispatchGroup::new();
    /// assert!(group.is_empty());
    /// assert_eq!(group.len(), 0);
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of calls dispatched and not landed yet.
    ///
    /// ```no_run
    /// fn in_flight(group: &mut pwf::DispatchGroup) -> usize {
    ///     let _ = group.dispatch(pwf::Request::get("httpbin", "/delay/1"));
    ///     group.pending()
    /// }
    /// ```
    pub fn pending(&self) -> usize {
        self.state.pending.get()
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
    ///
    /// ```no_run
    /// use pwf::{Action, DispatchGroup, Error, Http, LocalResponse, Outcome, Request};
    ///
    /// fn on_request_headers(http: &Http) -> Result<Action, Error> {
    ///     let mut group = DispatchGroup::new();
    ///     let _ = group.dispatch(Request::get("auth", "/check"));
    ///     let _ = group.dispatch(Request::get("quota", "/check"));
    ///     Ok(group.wait(http, |_, results| {
    ///         if results.iter().all(|result| matches!(result, Ok(r) if r.is_success())) {
    ///             Ok(Outcome::Continue)
    ///         } else {
    ///             Ok(LocalResponse::new(403).into())
    ///         }
    ///     }))
    /// }
    /// ```
    pub fn wait<F>(self, http: &Http, done: F) -> Action
    where
        F: FnOnce(&Http, Vec<CallResult>) -> Result<Outcome, Error> + 'static,
    {
        // Inside a task the phase has returned: the group waits as a task of
        // its own, and resumes the stream when done.
        let in_task = executor::is_running();
        if !in_task && self.state.pending.get() == 0 {
            return http.finish(done(http, self.state.take_results()), true);
        }
        // Parked as a task of the stream, polled by the last landing (or,
        // inside a task with nothing pending, right after the task being
        // polled): if the stream ends first, it is dropped, and the group's
        // late responses are ignored.
        let state = self.state.clone();
        let waiting = Waiting {
            group: self,
            done: Some(done),
            http: http.clone(),
        };
        match executor::park(http.context_id(), waiting) {
            Ok(task) => {
                if state.pending.get() == 0 {
                    executor::poll_now(task);
                } else {
                    state.waiting.set(Some(task));
                }
                Action::Pause
            }
            Err(full) => http.finish(Err(full.into()), true),
        }
    }
}

/// What a [`DispatchGroup`](crate::DispatchGroup) shares with the callout
/// layer: the results as they land, and who to wake when the last one has.
pub(crate) struct GroupState {
    /// One slot per call, in dispatch order; a call still pending holds a
    /// placeholder until it lands.
    pub(crate) results: RefCell<Vec<Result<Response, CallError>>>,
    pub(crate) pending: Cell<usize>,
    pub(crate) waker: Cell<Option<Waker>>,
    pub(crate) on_landed: RefCell<Option<OnLanded>>,
    /// The task [`wait`](crate::DispatchGroup::wait) parked, which the last
    /// landing polls, in place of waking it.
    pub(crate) waiting: Cell<Option<executor::TaskRef>>,
}

impl GroupState {
    /// The slot value of a call that has not landed yet; never handed out,
    /// since the results are only read once every call has landed.
    pub(crate) fn placeholder() -> Result<Response, CallError> {
        Err(CallError::new(String::new(), CallErrorKind::Failed))
    }

    /// Every result, in dispatch order, once the last call has landed.
    pub(crate) fn take_results(&self) -> Vec<Result<Response, CallError>> {
        std::mem::take(&mut *self.results.borrow_mut())
    }
}

/// A group's callback for each call that lands.
pub(crate) type OnLanded = Box<dyn FnMut(&Result<Response, CallError>, usize)>;

impl Landing for GroupState {
    /// Stores the result of call `index`, tells `on_landed`, and wakes the
    /// group when it was the last.
    fn land(&self, index: usize, result: Result<Response, CallError>) {
        let pending = self.pending.get().saturating_sub(1);
        self.pending.set(pending);
        if let Ok(mut on_landed) = self.on_landed.try_borrow_mut() {
            if let Some(on_landed) = on_landed.as_mut() {
                on_landed(&result, pending);
            }
        }
        // Each call lands once, over the placeholder its slot was given when
        // it was sent, which owns nothing: it is forgotten, as
        // `slot::fill` forgets an empty slot's `None` (dropping it here costs
        // about 60 guest instructions a landing in `multiple_dispatches`).
        // The slot is there: were it not, the result would be forgotten too.
        let result = match self.results.borrow_mut().get_mut(index) {
            Some(slot) => std::mem::replace(slot, result),
            None => result,
        };
        std::mem::forget(result);
        if pending == 0 {
            if let Some(waiting) = self.waiting.take() {
                executor::poll_now(waiting);
            } else if let Some(waker) = self.waker.take() {
                waker.wake();
            }
        }
    }
}

/// A group's [`wait`](DispatchGroup::wait): once no call is pending, runs
/// `done` and finishes the stream with its outcome.
struct Waiting<F> {
    group: DispatchGroup,
    done: Option<F>,
    http: Http,
}

// Nothing in it is ever pinned.
impl<F> Unpin for Waiting<F> {}

impl<F> Future for Waiting<F>
where
    F: FnOnce(&Http, Vec<CallResult>) -> Result<Outcome, Error>,
{
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.group.state.pending.get() > 0 {
            return Poll::Pending;
        }
        if let Some(done) = this.done.take() {
            let result = done(&this.http, this.group.state.take_results());
            this.http.decide(result);
        }
        Poll::Ready(())
    }
}

impl Future for DispatchGroup {
    type Output = Vec<CallResult>;

    /// Ready once the last call has landed; the callout layer wakes the group
    /// then, and only then, so it is polled once per wait, not once per call.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<CallResult>> {
        let state = &self.state;
        if state.pending.get() > 0 && !executor::is_running() {
            // A blocking executor would wait forever: responses come only
            // after the running callback returns.
            call::abandon_group(Rc::as_ptr(state).cast());
        }
        if state.pending.get() > 0 {
            let waker = match state.waker.take() {
                Some(waker) if waker.will_wake(cx.waker()) => waker,
                _ => cx.waker().clone(),
            };
            // The waker was taken out above.
            fill(&state.waker, waker);
            return Poll::Pending;
        }
        Poll::Ready(state.take_results())
    }
}

impl Drop for DispatchGroup {
    fn drop(&mut self) {
        // Late responses for a dropped group are ignored.
        if self.state.pending.get() > 0 {
            call::forget_group(Rc::as_ptr(&self.state).cast());
        }
    }
}
