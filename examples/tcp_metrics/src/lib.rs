//! A TCP filter: counts connections and the bytes each way in Envoy's stats.
//!
//! Each connection increments `wasmcustom.<prefix>.connections`; the bytes
//! from the client and from the upstream add to
//! `wasmcustom.<prefix>.downstream_bytes` and `.upstream_bytes`. When a
//! connection closes, its totals are logged.
//!
//! Build: `cargo build --target wasm32-wasip1 --release -p tcp_metrics`, then
//! run it in Envoy with `examples/tcp_metrics/envoy.yaml` (a `tcp_proxy`
//! listener).

#![forbid(unsafe_code)]

use std::rc::Rc;

use pwf::metrics::Counter;
use pwf::{Action, Error, Peer, PluginConfig, PluginContext, Tcp, TcpFilter, TcpPlugin};

/// The plugin configuration.
#[derive(PluginConfig, Debug)]
pub struct Config {
    /// The prefix of the metric names.
    #[config(default = "tcp_metrics", non_empty)]
    pub prefix: String,
}

/// The plugin: the three counters.
pub struct TcpMetrics {
    connections: Counter,
    downstream_bytes: Counter,
    upstream_bytes: Counter,
}

impl TcpPlugin for TcpMetrics {
    type Config = Config;
    type Filter = ConnectionFilter;

    fn configure(config: Config, _: &PluginContext) -> Result<Self, Error> {
        let prefix = &config.prefix;
        Ok(TcpMetrics {
            connections: Counter::define(&format!("{prefix}.connections"))?,
            downstream_bytes: Counter::define(&format!("{prefix}.downstream_bytes"))?,
            upstream_bytes: Counter::define(&format!("{prefix}.upstream_bytes"))?,
        })
    }

    fn filter(plugin: &Rc<Self>, _: &Tcp) -> ConnectionFilter {
        ConnectionFilter {
            plugin: plugin.clone(),
            downstream: 0,
            upstream: 0,
        }
    }
}

/// The filter of one connection: its own totals.
pub struct ConnectionFilter {
    plugin: Rc<TcpMetrics>,
    downstream: u64,
    upstream: u64,
}

impl TcpFilter for ConnectionFilter {
    fn on_new_connection(&mut self, _: &Tcp) -> Result<Action, Error> {
        self.plugin.connections.increment(1)?;
        Ok(Action::Continue)
    }

    fn on_downstream_data(&mut self, _: &Tcp, size: usize, _: bool) -> Result<Action, Error> {
        self.downstream += size as u64;
        self.plugin.downstream_bytes.increment(size as u64)?;
        Ok(Action::Continue)
    }

    fn on_upstream_data(&mut self, _: &Tcp, size: usize, _: bool) -> Result<Action, Error> {
        self.upstream += size as u64;
        self.plugin.upstream_bytes.increment(size as u64)?;
        Ok(Action::Continue)
    }

    fn on_downstream_close(&mut self, _: &Tcp, peer: Peer) {
        pwf::info!(
            "connection closed by {peer:?}: {} bytes in, {} bytes out",
            self.downstream,
            self.upstream
        );
    }
}

pwf::main!(TcpMetrics);
