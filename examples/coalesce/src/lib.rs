//! Request coalescing: concurrent requests for the same key share one
//! outbound call, and every stream that waits for it is resumed with its
//! answer. A plugin-wide task refreshes a value on a timer, and every
//! response carries it.
//!
//! - A request names its key in a header (`keyHeader`, default `x-key`); a
//!   request without one passes through untouched.
//! - The first request for a key sends `GET {lookupPath}{key}` to
//!   `cluster`. Requests for the same key that arrive while that call is in
//!   flight await the same call, through a [`Shared`] future, instead of
//!   sending their own. The answer's status and body length go upstream as
//!   `x-lookup-status` and `x-lookup-bytes`, and back to the client on the
//!   response.
//! - If the stream that sent the call ends first (its client went away), the
//!   others still get the answer: the call belongs to the plugin, not to the
//!   stream, and whichever waiting stream is polled next drives it.
//! - Every `refresh`, a plugin-wide task fetches `refreshPath` and keeps the
//!   answer's length as the value responses carry in `x-refreshed`.
//! - Gauges `coalesce.pending_calls` and `coalesce.live_tasks` sum
//!   [`pwf::runtime`] over the workers, refreshed at every tick.
//!
//! Build: `cargo build --target wasm32-wasip1 --release -p coalesce`, then run
//! it in Envoy with `examples/coalesce/envoy.yaml`.

#![forbid(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use futures::future::{FutureExt, LocalBoxFuture, Shared, WeakShared};
use pwf::metrics::Gauge;
use pwf::{
    Action, CallError, Error, Http, HttpFilter, Outcome, Plugin, PluginConfig, PluginContext,
    Request,
};

/// The plugin configuration.
#[derive(PluginConfig, Debug)]
pub struct Config {
    /// The cluster that answers lookups and refreshes.
    #[config(default = "httpbin", non_empty)]
    pub cluster: String,
    /// The request header that names the key.
    #[config(default = "x-key", non_empty)]
    pub key_header: String,
    /// The path of a lookup, followed by the key.
    #[config(default = "/anything/lookup/", non_empty)]
    pub lookup_path: String,
    /// Each call's timeout (`"5s"`, `"250ms"`).
    #[config(default = "5s", validate = pwf::config::call_timeout)]
    pub timeout: Duration,
    /// What the plugin-wide task fetches.
    #[config(default = "/uuid", non_empty)]
    pub refresh_path: String,
    /// How often it does (and how often the gauges are refreshed).
    #[config(default = "1s")]
    pub refresh: Duration,
}

/// What a lookup answered: status and body length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The answer's HTTP status.
    pub status: u16,
    /// The length of its body.
    pub bytes: usize,
}

/// What a lookup gives every stream that awaits it.
type LookupResult = Result<Answer, CallError>;

/// A lookup in flight, awaited by every stream that wants its key.
type Lookup = Shared<LocalBoxFuture<'static, LookupResult>>;

/// The plugin: its configuration, the lookups in flight, the refreshed value.
pub struct Coalesce {
    config: Config,
    /// Weak: a lookup whose streams have all ended is dropped, its call
    /// forgotten; the tick sweeps its entry.
    in_flight: RefCell<HashMap<Vec<u8>, WeakShared<LocalBoxFuture<'static, LookupResult>>>>,
    /// The refresh task's latest value.
    refreshed: Rc<Cell<usize>>,
    pending_calls: Gauge,
    live_tasks: Gauge,
    /// What this worker last added to each gauge (the gauges sum workers).
    reported: Cell<(i64, i64)>,
}

impl Coalesce {
    /// The lookup of `key`: the one in flight, or a new one.
    fn lookup(self: &Rc<Self>, key: &[u8]) -> Result<Lookup, CallError> {
        if let Some(lookup) = self
            .in_flight
            .borrow()
            .get(key)
            .and_then(WeakShared::upgrade)
        {
            return Ok(lookup);
        }
        let path = format!(
            "{}{}",
            self.config.lookup_path,
            String::from_utf8_lossy(key)
        );
        let call = Request::get(&self.config.cluster, path)
            .timeout(self.config.timeout)
            .without_headers()
            .send()?;
        let plugin = Rc::downgrade(self);
        let owned_key = key.to_vec();
        let lookup = async move {
            let answer = call.await;
            // Done: the next request for the key sends a new call.
            if let Some(plugin) = plugin.upgrade() {
                plugin.in_flight.borrow_mut().remove(&owned_key);
            }
            let response = answer?;
            Ok(Answer {
                status: response.status(),
                bytes: response.body().len(),
            })
        }
        .boxed_local()
        .shared();
        if let Some(weak) = lookup.downgrade() {
            self.in_flight.borrow_mut().insert(key.to_vec(), weak);
        }
        Ok(lookup)
    }

    /// Adds this worker's change of the runtime's figures to the gauges.
    fn report(&self) {
        let now = (
            pwf::runtime::pending_calls() as i64,
            pwf::runtime::live_tasks() as i64,
        );
        let before = self.reported.replace(now);
        for (gauge, delta) in [
            (&self.pending_calls, now.0 - before.0),
            (&self.live_tasks, now.1 - before.1),
        ] {
            if delta != 0 {
                if let Err(error) = gauge.add(delta) {
                    pwf::warn!("could not update a gauge: {error}");
                }
            }
        }
    }
}

impl Plugin for Coalesce {
    type Config = Config;
    type Filter = CoalesceFilter;

    fn configure(config: Config, cx: &PluginContext) -> Result<Self, Error> {
        cx.set_tick_period(config.refresh)?;
        let refreshed = Rc::new(Cell::new(0));
        let request = Request::get(&config.cluster, &config.refresh_path).timeout(config.timeout);
        cx.spawn(refresh(request, config.refresh, refreshed.clone()));
        Ok(Coalesce {
            in_flight: RefCell::default(),
            refreshed,
            pending_calls: Gauge::define("coalesce.pending_calls")?,
            live_tasks: Gauge::define("coalesce.live_tasks")?,
            reported: Cell::new((0, 0)),
            config,
        })
    }

    fn filter(plugin: &Rc<Self>, _: &Http) -> CoalesceFilter {
        CoalesceFilter {
            plugin: plugin.clone(),
            answer: Rc::default(),
        }
    }

    fn on_tick(&self, _: &PluginContext) {
        // Lookups no stream waits for any more.
        self.in_flight
            .borrow_mut()
            .retain(|_, lookup| lookup.upgrade().is_some());
        self.report();
    }
}

/// The plugin-wide task: sends `request` now and then every `every`, and
/// keeps the length of each answer in `value`. It lives as long as the
/// plugin's root context.
async fn refresh(request: Request, every: Duration, value: Rc<Cell<usize>>) -> Result<(), Error> {
    let mut ticks = pwf::timer::interval(every);
    loop {
        match request.send()?.await {
            Ok(response) => value.set(response.body().len()),
            Err(error) => pwf::warn!("refresh failed: {error}"),
        }
        ticks.tick().await;
    }
}

/// The filter of one stream: the answer its lookup got, for the response.
pub struct CoalesceFilter {
    plugin: Rc<Coalesce>,
    answer: Rc<Cell<Option<Answer>>>,
}

impl HttpFilter for CoalesceFilter {
    fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        let plugin = &self.plugin;
        let Some(key) = http.request_header(&plugin.config.key_header)? else {
            return Ok(Action::Continue);
        };
        let lookup = plugin.lookup(key.as_bytes())?;
        let (handle, answer) = (http.clone(), self.answer.clone());
        Ok(http.spawn(async move {
            let found = lookup.await?;
            answer.set(Some(found));
            handle.set_request_header("x-lookup-status", found.status.to_string())?;
            handle.set_request_header("x-lookup-bytes", found.bytes.to_string())?;
            Ok(Outcome::Continue)
        }))
    }

    fn on_response_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        if let Some(found) = self.answer.get() {
            http.set_response_header("x-lookup-status", found.status.to_string())?;
            http.set_response_header("x-lookup-bytes", found.bytes.to_string())?;
        }
        http.set_response_header("x-refreshed", self.plugin.refreshed.get().to_string())?;
        Ok(Action::Continue)
    }
}

pwf::main!(Coalesce);
