//! Contexts that wrap a plugin's own and catch its panics before they reach the SDK's
//! `extern "C"` entry points (which cannot unwind). A caught panic fails the VM: the
//! wrapper answers the SDK with a neutral value and never calls the plugin again.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};

use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action, ContextType, NewRootContext, PeerType};

use crate::runtime::payload_message;

thread_local! {
    static FACTORY: Cell<Option<NewRootContext>> = const { Cell::new(None) };
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
    static GUARDING: Cell<bool> = const { Cell::new(false) };
}

/// Registers `factory` with the SDK behind the guard, on the VM thread.
pub(crate) fn install(factory: NewRootContext) {
    FACTORY.with(|slot| slot.set(Some(factory)));
    proxy_wasm::set_root_context(guarded_root);
}

fn guarded_root(context_id: u32) -> Box<dyn RootContext> {
    let inner = FACTORY
        .with(Cell::get)
        .and_then(|factory| guard(None, || Some(factory(context_id))));
    Box::new(Root { inner })
}

/// The message of a panic caught during the current job, if any.
pub(crate) fn take_caught() -> Option<String> {
    CAUGHT.with(|caught| caught.borrow_mut().take())
}

/// Whether a guard is catching panics on this thread right now.
pub(crate) fn guarding() -> bool {
    GUARDING.try_with(Cell::get).unwrap_or(false)
}

fn failed() -> bool {
    CAUGHT.with(|caught| caught.borrow().is_some())
}

fn guard<R>(default: R, call: impl FnOnce() -> R) -> R {
    if failed() {
        return default;
    }
    let was = GUARDING.with(|flag| flag.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(call));
    GUARDING.with(|flag| flag.set(was));
    match result {
        Ok(value) => value,
        Err(payload) => {
            let message = format!("panicked: {}", payload_message(&*payload));
            CAUGHT.with(|caught| {
                caught.borrow_mut().get_or_insert(message);
            });
            default
        }
    }
}

fn fail(message: &str) {
    CAUGHT.with(|caught| {
        caught
            .borrow_mut()
            .get_or_insert_with(|| message.to_string());
    });
}

macro_rules! context_methods {
    () => {
        fn on_http_call_response(
            &mut self,
            token: u32,
            headers: usize,
            body: usize,
            trailers: usize,
        ) {
            if let Some(inner) = self.inner.as_mut() {
                guard((), || {
                    inner.on_http_call_response(token, headers, body, trailers)
                })
            }
        }

        fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
            if let Some(inner) = self.inner.as_mut() {
                guard((), || inner.on_grpc_call_response(token, status, size))
            }
        }

        fn on_grpc_stream_initial_metadata(&mut self, token: u32, elements: u32) {
            if let Some(inner) = self.inner.as_mut() {
                guard((), || {
                    inner.on_grpc_stream_initial_metadata(token, elements)
                })
            }
        }

        fn on_grpc_stream_message(&mut self, token: u32, size: usize) {
            if let Some(inner) = self.inner.as_mut() {
                guard((), || inner.on_grpc_stream_message(token, size))
            }
        }

        fn on_grpc_stream_trailing_metadata(&mut self, token: u32, elements: u32) {
            if let Some(inner) = self.inner.as_mut() {
                guard((), || {
                    inner.on_grpc_stream_trailing_metadata(token, elements)
                })
            }
        }

        fn on_grpc_stream_close(&mut self, token: u32, status: u32) {
            if let Some(inner) = self.inner.as_mut() {
                guard((), || inner.on_grpc_stream_close(token, status))
            }
        }

        fn on_foreign_function(&mut self, function: u32, size: usize) {
            if let Some(inner) = self.inner.as_mut() {
                guard((), || inner.on_foreign_function(function, size))
            }
        }

        fn on_done(&mut self) -> bool {
            match self.inner.as_mut() {
                Some(inner) => guard(true, || inner.on_done()),
                None => true,
            }
        }
    };
}

fn run<C: ?Sized, R>(inner: &mut Option<Box<C>>, default: R, call: impl FnOnce(&mut C) -> R) -> R {
    match inner.as_mut() {
        Some(inner) => guard(default, || call(inner)),
        None => default,
    }
}

struct Root {
    inner: Option<Box<dyn RootContext>>,
}

impl Context for Root {
    context_methods!();
}

impl RootContext for Root {
    fn on_vm_start(&mut self, size: usize) -> bool {
        run(&mut self.inner, false, |c| c.on_vm_start(size))
    }

    fn on_configure(&mut self, size: usize) -> bool {
        run(&mut self.inner, false, |c| c.on_configure(size))
    }

    fn on_tick(&mut self) {
        run(&mut self.inner, (), |c| c.on_tick())
    }

    fn on_queue_ready(&mut self, queue: u32) {
        run(&mut self.inner, (), |c| c.on_queue_ready(queue))
    }

    fn on_log(&mut self) {
        run(&mut self.inner, (), |c| c.on_log())
    }

    fn create_http_context(&self, id: u32) -> Option<Box<dyn HttpContext>> {
        let inner = self.inner.as_ref()?;
        let created = guard(None, || inner.create_http_context(id));
        if created.is_none() {
            fail("create_http_context returned None");
        }
        Some(Box::new(Http { inner: created }))
    }

    fn create_stream_context(&self, id: u32) -> Option<Box<dyn StreamContext>> {
        let inner = self.inner.as_ref()?;
        let created = guard(None, || inner.create_stream_context(id));
        if created.is_none() {
            fail("create_stream_context returned None");
        }
        Some(Box::new(Tcp { inner: created }))
    }

    fn get_type(&self) -> Option<ContextType> {
        let kind = self
            .inner
            .as_ref()
            .and_then(|inner| guard(None, || inner.get_type()));
        if kind.is_none() {
            fail("missing ContextType on root_context");
            return Some(ContextType::HttpContext);
        }
        kind
    }
}

struct Http {
    inner: Option<Box<dyn HttpContext>>,
}

impl Context for Http {
    context_methods!();
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, n: usize, eos: bool) -> Action {
        run(&mut self.inner, Action::Pause, |c| {
            c.on_http_request_headers(n, eos)
        })
    }

    fn on_http_request_body(&mut self, n: usize, eos: bool) -> Action {
        run(&mut self.inner, Action::Pause, |c| {
            c.on_http_request_body(n, eos)
        })
    }

    fn on_http_request_trailers(&mut self, n: usize) -> Action {
        run(&mut self.inner, Action::Pause, |c| {
            c.on_http_request_trailers(n)
        })
    }

    fn on_http_response_headers(&mut self, n: usize, eos: bool) -> Action {
        run(&mut self.inner, Action::Pause, |c| {
            c.on_http_response_headers(n, eos)
        })
    }

    fn on_http_response_body(&mut self, n: usize, eos: bool) -> Action {
        run(&mut self.inner, Action::Pause, |c| {
            c.on_http_response_body(n, eos)
        })
    }

    fn on_http_response_trailers(&mut self, n: usize) -> Action {
        run(&mut self.inner, Action::Pause, |c| {
            c.on_http_response_trailers(n)
        })
    }

    fn on_log(&mut self) {
        run(&mut self.inner, (), |c| c.on_log())
    }
}

struct Tcp {
    inner: Option<Box<dyn StreamContext>>,
}

impl Context for Tcp {
    context_methods!();
}

impl StreamContext for Tcp {
    fn on_new_connection(&mut self) -> Action {
        run(&mut self.inner, Action::Pause, |c| c.on_new_connection())
    }

    fn on_downstream_data(&mut self, n: usize, eos: bool) -> Action {
        run(&mut self.inner, Action::Pause, |c| {
            c.on_downstream_data(n, eos)
        })
    }

    fn on_downstream_close(&mut self, peer: PeerType) {
        run(&mut self.inner, (), |c| c.on_downstream_close(peer))
    }

    fn on_upstream_data(&mut self, n: usize, eos: bool) -> Action {
        run(&mut self.inner, Action::Pause, |c| {
            c.on_upstream_data(n, eos)
        })
    }

    fn on_upstream_close(&mut self, peer: PeerType) {
        run(&mut self.inner, (), |c| c.on_upstream_close(peer))
    }

    fn on_log(&mut self) {
        run(&mut self.inner, (), |c| c.on_log())
    }
}
