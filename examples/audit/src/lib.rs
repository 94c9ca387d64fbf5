//! Hands each request to the plugin through a shared queue, counts it in
//! Envoy's stats, and bounds request bodies.
//!
//! - Each request is counted (`wasmcustom.audit.requests` in Envoy's
//!   `/stats`), and its method and path are enqueued, as JSON, on the shared
//!   queue `queueName`.
//! - The plugin receives them in `on_queue_ready` and keeps the last
//!   `keepRecent` in shared data; `GET /audit/recent` answers with them.
//! - A request body is buffered up to `maxBodyBytes`; past that the client
//!   gets `413`. Each complete body's size is recorded in the histogram
//!   `wasmcustom.audit.body_bytes`.
//!
//! Build: `cargo build --target wasm32-wasip1 --release -p audit`, then run it
//! in Envoy with `examples/audit/envoy.yaml`.

#![forbid(unsafe_code)]

use std::rc::Rc;

use pwf::metrics::{Counter, Histogram};
use pwf::{
    Action, Error, Http, HttpFilter, LocalResponse, Plugin, PluginConfig, PluginContext,
    SharedQueue, SharedValue,
};
use serde::{Deserialize, Serialize};

/// The plugin configuration.
#[derive(PluginConfig, Debug)]
pub struct Config {
    /// The shared queue requests are handed over on.
    #[config(default = "audit", non_empty)]
    pub queue_name: String,
    /// The largest request body let through, in bytes. At most 1 MiB: Envoy
    /// buffers a body the plugin holds up to the listener's
    /// `per_connection_buffer_limit_bytes` (1 MiB unless set; 2 MiB in
    /// `envoy.yaml`, so that the plugin's limit is reached first), and
    /// answers a larger one `413 Payload Too Large` itself.
    #[config(default = 1024, range = 1..=1048576)]
    pub max_body_bytes: usize,
    /// How many recent requests `/audit/recent` shows.
    #[config(default = 10, range = 1..=1000)]
    pub keep_recent: usize,
}

/// One request, as handed over on the queue.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The request method.
    pub method: String,
    /// The request path.
    pub path: String,
}

/// The path that answers with the recent requests.
pub const RECENT_PATH: &str = "/audit/recent";

/// The plugin: the queue, the metrics, and the recent list.
pub struct Audit {
    config: Config,
    queue: SharedQueue,
    requests: Counter,
    body_bytes: Histogram,
    recent: SharedValue<Vec<Entry>>,
}

impl Plugin for Audit {
    type Config = Config;
    type Filter = AuditFilter;

    fn configure(config: Config, _: &PluginContext) -> Result<Self, Error> {
        Ok(Audit {
            queue: SharedQueue::register(&config.queue_name)?,
            requests: Counter::define("audit.requests")?,
            body_bytes: Histogram::define("audit.body_bytes")?,
            recent: SharedValue::new(format!("audit.recent.{}", config.queue_name)),
            config,
        })
    }

    fn filter(plugin: &Rc<Self>, _: &Http) -> AuditFilter {
        AuditFilter {
            plugin: plugin.clone(),
        }
    }

    fn on_queue_ready(&self, _: &PluginContext, queue_id: u32) {
        let queue = SharedQueue::from_id(queue_id);
        let keep = self.config.keep_recent;
        loop {
            match queue.dequeue_json::<Entry>() {
                Ok(Some(entry)) => {
                    let kept = self.recent.update(|recent| {
                        let mut recent = recent.unwrap_or_default();
                        recent.push(entry.clone());
                        let excess = recent.len().saturating_sub(keep);
                        recent.drain(..excess);
                        recent
                    });
                    if let Err(error) = kept {
                        pwf::error!("{error}");
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    pwf::error!("audit queue: {error}");
                    break;
                }
            }
        }
    }
}

/// The filter of one stream.
pub struct AuditFilter {
    plugin: Rc<Audit>,
}

impl HttpFilter for AuditFilter {
    fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        let plugin = &self.plugin;
        plugin.requests.increment(1)?;
        let method = http.request_header(":method")?.unwrap_or_default();
        let path = http.request_header(":path")?.unwrap_or_default();
        if path == RECENT_PATH {
            let recent = plugin.recent.get()?.unwrap_or_default();
            let body = serde_json::to_vec(&recent)?;
            return Ok(http.respond(
                LocalResponse::new(200)
                    .header("content-type", "application/json")
                    .body(body),
            )?);
        }
        plugin.queue.enqueue_json(&Entry {
            method: method.to_string(),
            path: path.to_string(),
        })?;
        Ok(Action::Continue)
    }

    fn on_request_body(
        &mut self,
        http: &Http,
        body_size: usize,
        end_of_stream: bool,
    ) -> Result<Action, Error> {
        let limit = self.plugin.config.max_body_bytes;
        let Some(body) = http.read_full_request_body(body_size, end_of_stream, limit)? else {
            return Ok(Action::Pause);
        };
        self.plugin.body_bytes.record(body.len() as u64)?;
        Ok(Action::Continue)
    }
}

pwf::main!(Audit);
