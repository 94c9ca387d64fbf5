//! Which host context pwf is working in.
//!
//! Envoy applies every host call to one context: the *effective* one. It is
//! the context whose callback is running, unless the plugin switches it with
//! `proxy_set_effective_context`. pwf decides which context each host call
//! is for (its *target*) in three places:
//!
//! - a task runs for its own stream, whichever callback woke it
//!   ([`in_context`] around each poll);
//! - an [`Http`](crate::Http) or [`Tcp`](crate::Tcp) handle acts on its own
//!   stream, whichever phase or tick uses it;
//! - a call is sent on behalf of the plugin's root context ([`for_root`]):
//!   Envoy then ties the call to the root, so that it outlives the stream
//!   that sent it, and the SDK routes its response to the root, which lives
//!   as long as the plugin. pwf finds the call's waiter by its token.
//!
//! Switching is lazy: a host call that applies to a context ([`sync`])
//! makes its target effective only if it is not already, and nothing
//! switches back. Sending ten calls from a phase switches to the root once;
//! a phase that sends none never switches. Envoy forgets the switch when the
//! callback returns.
//!
//! The SDK records the token of a call under the context whose callback the
//! SDK is running (its "active" context), and drops a response silently when
//! that context has ended. In a stream's callback that is the stream; the one
//! way to make it the root is to enter the SDK's dispatcher through a root
//! callback. [`for_root`] does so once per callback by calling the SDK's
//! `proxy_on_tick` export for the root context; the root recognises that
//! entry ([`rebinding`]) and does nothing else. The SDK holds no borrow of
//! its root contexts during a stream's callback, so this entry is sound
//! there; during a root's callback the SDK's active context is the root
//! already, and nothing is entered.

use std::cell::Cell;

use crate::error::{HostError, Status};

/// Whom the SDK records a call's token under, if the call is sent now.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Sdk {
    /// A root context: the one pwf wants.
    Root,
    /// A stream: pwf enters the SDK through the root first.
    Stream,
    /// Unknown, and the root cannot be entered: a filter is being created,
    /// inside the SDK's borrow of its root contexts.
    Creating,
}

struct Contexts {
    /// The context Envoy applies host calls to now.
    effective: Cell<u32>,
    /// The context the code running now acts for.
    target: Cell<u32>,
    /// While the root is effective for calls: the context they are sent for.
    behalf: Cell<u32>,
    /// The context whose callback is running.
    callback: Cell<u32>,
    /// The root context of the plugin whose callback is running.
    root: Cell<u32>,
    sdk: Cell<Sdk>,
    /// Whether pwf is entering the SDK's dispatcher through a root.
    rebinding: Cell<bool>,
}

thread_local! {
    static CONTEXTS: Contexts = const {
        Contexts {
            effective: Cell::new(0),
            target: Cell::new(0),
            behalf: Cell::new(0),
            callback: Cell::new(0),
            root: Cell::new(0),
            sdk: Cell::new(Sdk::Root),
            rebinding: Cell::new(false),
        }
    };
}

/// Records the start of a callback: the host made `context_id` effective;
/// `root` is its plugin's root context; `sdk` says whom the SDK's
/// dispatcher is running.
pub(crate) fn enter(context_id: u32, root: u32, sdk: Sdk) {
    CONTEXTS.with(|contexts| {
        contexts.effective.set(context_id);
        contexts.target.set(context_id);
        contexts.behalf.set(0);
        contexts.callback.set(context_id);
        contexts.root.set(root);
        contexts.sdk.set(sdk);
    });
}

/// Runs `f` acting for `context_id`: the host calls it makes apply to that
/// context.
pub(crate) fn in_context<R>(context_id: u32, f: impl FnOnce() -> R) -> R {
    let before = CONTEXTS.with(|contexts| contexts.target.replace(context_id));
    let result = f();
    CONTEXTS.with(|contexts| contexts.target.set(before));
    result
}

/// The stream the running code acts for (a phase's, or a task's), or `None` when it acts
/// for the plugin's root context: who owns what it opens.
#[cfg(feature = "grpc-streams")]
pub(crate) fn acting_stream() -> Option<u32> {
    CONTEXTS.with(|contexts| {
        let target = contexts.target.get();
        (target != contexts.root.get()).then_some(target)
    })
}

/// Makes the context the running code acts for effective, if it is not:
/// what every host call that applies to a context does first.
pub(crate) fn sync() -> Result<(), HostError> {
    let (effective, target) =
        CONTEXTS.with(|contexts| (contexts.effective.get(), contexts.target.get()));
    if effective == target {
        Ok(())
    } else {
        switch(target)
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    // The one host call outside `host`: the switch every host call that
    // applies to a context may make first, through `sync`.
    fn proxy_set_effective_context(context_id: u32) -> u32;
}

/// Makes `context_id` effective.
#[inline(never)]
fn switch(context_id: u32) -> Result<(), HostError> {
    // SAFETY: no pointers.
    let status = unsafe { proxy_set_effective_context(context_id) };
    if status != 0 {
        return Err(HostError::new(
            "set_effective_context",
            Status::from_raw(status),
        ));
    }
    CONTEXTS.with(|contexts| contexts.effective.set(context_id));
    Ok(())
}

/// Runs `f` (which sends a call) on behalf of the running plugin's root
/// context: Envoy ties the call to the root, and the SDK records its token
/// under the root. `None` when a filter is being created, when no call can
/// be routed.
pub(crate) fn for_root<R>(
    f: impl FnOnce() -> Result<R, HostError>,
) -> Option<Result<R, HostError>> {
    let (root, sdk) = CONTEXTS.with(|contexts| (contexts.root.get(), contexts.sdk.get()));
    match sdk {
        Sdk::Root => {}
        Sdk::Stream => {
            enter_sdk_through(root);
            CONTEXTS.with(|contexts| contexts.sdk.set(Sdk::Root));
        }
        Sdk::Creating => return None,
    }
    Some(make_root_effective(root).and_then(|()| f()))
}

/// Runs `f` (which sends a call) for the running code's stream, the SDK's
/// active context: the SDK records the call's token under that stream, and
/// Envoy ties the call to it. Otherwise (a task of another stream, a root's
/// callback) as [`for_root`]. Also returns the context the call's response
/// is routed through (0: the root).
///
/// Cheaper than [`for_root`] (no switch, and the SDK finds a stream first),
/// for calls whose waiter ends with the stream; a waiter that outlives it
/// must be told when the stream ends (`call::end_routes_through`).
pub(crate) fn for_own_stream<R>(
    f: impl FnOnce() -> Result<R, HostError>,
) -> Option<(Result<R, HostError>, u32)> {
    let (sdk, callback, target) = CONTEXTS.with(|contexts| {
        (
            contexts.sdk.get(),
            contexts.callback.get(),
            contexts.target.get(),
        )
    });
    if sdk == Sdk::Stream && target == callback {
        Some((sync().and_then(|()| f()), callback))
    } else {
        for_root(f).map(|result| (result, 0))
    }
}

/// Makes `root` effective for a call sent for the running code's context.
/// The switch goes through that context first, so that the host sees whom
/// the root acts for (the native test host lists the call with it).
fn make_root_effective(root: u32) -> Result<(), HostError> {
    let (effective, target, behalf) = CONTEXTS.with(|contexts| {
        (
            contexts.effective.get(),
            contexts.target.get(),
            contexts.behalf.get(),
        )
    });
    if effective == root && (target == root || behalf == target) {
        return Ok(());
    }
    if target != root && effective != target {
        switch(target)?;
    }
    switch(root)?;
    CONTEXTS.with(|contexts| contexts.behalf.set(target));
    Ok(())
}

/// Whether the running root callback is pwf entering the SDK's dispatcher
/// (see the module's documentation): the root must do nothing.
pub(crate) fn rebinding() -> bool {
    CONTEXTS.with(|contexts| contexts.rebinding.get())
}

/// Makes `root` the SDK's active context by entering its dispatcher through
/// the root's `proxy_on_tick`.
fn enter_sdk_through(root: u32) {
    extern "C" {
        // The SDK's own export: defined by `proxy-wasm`, linked into the
        // same module, called here as any Rust function.
        fn proxy_on_tick(context_id: u32);
    }
    CONTEXTS.with(|contexts| contexts.rebinding.set(true));
    // SAFETY: a plain function of the SDK taking an integer. The SDK borrows
    // only its table of root contexts, which no caller of `for_root` holds
    // (`Sdk::Stream` is recorded only in stream callbacks), and `root` is the
    // running plugin's root, which is in that table.
    unsafe { proxy_on_tick(root) };
    CONTEXTS.with(|contexts| contexts.rebinding.set(false));
}
