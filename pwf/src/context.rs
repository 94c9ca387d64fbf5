//! Which host context pwf is working in.
//!
//! Envoy applies every host call to one context: the *effective* one. It is
//! the context whose callback is running, unless the plugin switches it with
//! `proxy_set_effective_context`. pwf switches it in three places:
//!
//! - a task is polled with its own stream effective, whichever callback
//!   woke it ([`in_context`]);
//! - an [`Http`](crate::Http) or [`Tcp`](crate::Tcp) handle acts on its own
//!   stream, whichever phase or tick uses it;
//! - a call is sent on behalf of the plugin's root context ([`for_root`]):
//!   Envoy then ties the call to the root, so that it outlives the stream
//!   that sent it, and the SDK routes its response to the root, which lives
//!   as long as the plugin. pwf finds the call's waiter by its token.
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

use crate::error::HostError;
use crate::host;

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
        contexts.root.set(root);
        contexts.sdk.set(sdk);
    });
}

/// The context Envoy applies host calls to now.
pub(crate) fn effective() -> u32 {
    CONTEXTS.with(|contexts| contexts.effective.get())
}

/// Runs `f` with `context_id` effective, and makes the context effective
/// before it effective again afterwards. Fails, without running `f`, when
/// the host refuses the switch (the context has ended).
pub(crate) fn in_context<R>(context_id: u32, f: impl FnOnce() -> R) -> Result<R, HostError> {
    let before = effective();
    if before == context_id {
        return Ok(f());
    }
    host::set_effective_context(context_id)?;
    CONTEXTS.with(|contexts| contexts.effective.set(context_id));
    let result = f();
    if host::set_effective_context(before).is_ok() {
        CONTEXTS.with(|contexts| contexts.effective.set(before));
    }
    Ok(result)
}

/// Runs `f` (which sends a call) on behalf of the running plugin's root
/// context: Envoy ties the call to the root, and the SDK records its token
/// under the root. `None` when a filter is being created, when no call can
/// be routed.
pub(crate) fn for_root<R>(f: impl FnOnce() -> R) -> Option<R> {
    let (root, sdk) = CONTEXTS.with(|contexts| (contexts.root.get(), contexts.sdk.get()));
    match sdk {
        Sdk::Root => {}
        Sdk::Stream => {
            enter_sdk_through(root);
            CONTEXTS.with(|contexts| contexts.sdk.set(Sdk::Root));
        }
        Sdk::Creating => return None,
    }
    // The root is alive while its plugin's callback runs: the switch holds.
    in_context(root, f).ok()
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
