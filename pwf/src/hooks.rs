//! Hooks: what the host's callbacks run for parts of pwf that a plugin may
//! not use.
//!
//! Calls, timers, and the calls a group routes through its stream each set
//! their hook when first used (a call sent, a timer armed, a call routed
//! through a stream). The callbacks (`on_http_call_response`, `on_tick`, a
//! stream's `on_done`) run the hook if it is set, and nothing otherwise. So
//! a callback's code names a slot, never the function in it, and a plugin
//! that never sends a call carries no code to land one: what a plugin does
//! not use costs it no size. docs/architecture.md ("Linking") says more.

use std::cell::Cell;

/// `hook`, hidden from the optimizer on its way into a slot.
///
/// Where one function is the only value ever stored into a slot, the
/// optimizer would call that function directly from the callback that reads
/// the slot, and so link it into every plugin, whether or not the plugin
/// uses what it serves. Hidden, it is linked only where something stores
/// it. Nothing in the language promises this: the size budget
/// (`bench/budget.toml`, checked by `cargo xtask test`) is what catches a
/// plugin that starts linking code it never runs. Without it (`hook`
/// returned as it is), `shared_data` grew by 10.8 kB (4.6 %) and
/// `http_auth_random` by 4.6 kB, and the budget check failed.
pub(crate) fn opaque<F: Copy>(hook: F) -> F {
    std::hint::black_box(hook)
}

/// Lands the response to an HTTP call: token, header count, body size,
/// trailer count.
pub(crate) type CallLanding = fn(u32, usize, usize, usize);

/// Lands the answer to a gRPC call: token, gRPC status, message size.
pub(crate) type GrpcLanding = fn(u32, u32, usize);

#[cfg(feature = "grpc-streams")]
/// Lands a gRPC stream's callback: token, what it is (`grpc_stream::INITIAL`, ...), its
/// count, size or status.
pub(crate) type GrpcStreamLanding = fn(u32, u8, usize);

thread_local! {
    /// Where call responses land, set when the first call is sent.
    static CALL_LANDING: Cell<Option<CallLanding>> = const { Cell::new(None) };
    /// What a tick fires besides the plugin's `on_tick`, set when the first
    /// timer is armed.
    static TICK_TIMERS: Cell<Option<fn()>> = const { Cell::new(None) };
    /// What a stream's end does to the calls routed through it, set when the
    /// first call is routed through a stream.
    static STREAM_ENDED: Cell<Option<fn(u32)>> = const { Cell::new(None) };
    /// Where gRPC call answers land, set when the first gRPC call is sent.
    static GRPC_LANDING: Cell<Option<GrpcLanding>> = const { Cell::new(None) };
    /// Where gRPC stream callbacks land, set when the first stream is opened.
    #[cfg(feature = "grpc-streams")]
    static GRPC_STREAM_LANDING: Cell<Option<GrpcStreamLanding>> = const { Cell::new(None) };
    /// What a stream's end does to the gRPC streams it opened, set when an HTTP or TCP
    /// stream first opens one.
    #[cfg(feature = "grpc-streams")]
    static GRPC_STREAMS_ENDED: Cell<Option<fn(u32)>> = const { Cell::new(None) };
}

/// Routes call responses to `landing` from now on (the only landing there
/// is: once set, it stays).
pub(crate) fn land_calls_with(landing: CallLanding) {
    CALL_LANDING.with(|slot| {
        if slot.get().is_none() {
            slot.set(Some(opaque(landing)));
        }
    });
}

/// Lands gRPC call answers with `landing` from now on.
pub(crate) fn land_grpc_calls_with(landing: GrpcLanding) {
    GRPC_LANDING.with(|slot| slot.set(Some(opaque(landing))));
}

/// Lands gRPC stream callbacks with `landing` from now on.
#[cfg(feature = "grpc-streams")]
pub(crate) fn land_grpc_streams_with(landing: GrpcStreamLanding) {
    GRPC_STREAM_LANDING.with(|slot| slot.set(Some(opaque(landing))));
}

/// Runs `ended` with the id of every stream that ends, from now on: the gRPC streams a
/// stream opened end with it.
#[cfg(feature = "grpc-streams")]
pub(crate) fn on_stream_end_grpc(ended: fn(u32)) {
    GRPC_STREAMS_ENDED.with(|slot| slot.set(Some(opaque(ended))));
}

/// Fires `timers` on every tick from now on.
pub(crate) fn tick_timers_with(timers: fn()) {
    TICK_TIMERS.with(|slot| slot.set(Some(opaque(timers))));
}

/// Runs `ended` with the id of every stream that ends, from now on.
pub(crate) fn on_stream_end(ended: fn(u32)) {
    STREAM_ENDED.with(|slot| slot.set(Some(opaque(ended))));
}

/// A call response: lands it, if a call was ever sent.
pub(crate) fn call_response(token: u32, num_headers: usize, body_size: usize, num_trailers: usize) {
    if let Some(landing) = CALL_LANDING.with(Cell::get) {
        landing(token, num_headers, body_size, num_trailers);
    }
}

/// A gRPC call's answer: lands it, if a gRPC call was ever sent.
pub(crate) fn grpc_response(token: u32, status_code: u32, message_size: usize) {
    if let Some(landing) = GRPC_LANDING.with(Cell::get) {
        landing(token, status_code, message_size);
    }
}

/// A gRPC stream callback: lands it, if a stream was ever opened.
#[cfg(feature = "grpc-streams")]
pub(crate) fn grpc_stream_event(token: u32, kind: u8, value: usize) {
    if let Some(landing) = GRPC_STREAM_LANDING.with(Cell::get) {
        landing(token, kind, value);
    }
}

/// A tick: fires the timers, if one was ever armed.
pub(crate) fn tick() {
    if let Some(timers) = TICK_TIMERS.with(Cell::get) {
        timers();
    }
}

/// A stream (HTTP or TCP) ended: tells the calls routed through it, if a
/// call ever was, and the gRPC streams it opened, if it ever opened one.
pub(crate) fn stream_ended(context_id: u32) {
    if let Some(ended) = STREAM_ENDED.with(Cell::get) {
        ended(context_id);
    }
    #[cfg(feature = "grpc-streams")]
    if let Some(ended) = GRPC_STREAMS_ENDED.with(Cell::get) {
        ended(context_id);
    }
}
