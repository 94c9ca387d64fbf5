//! TCP (network) filters: the same plugin shape over a connection's bytes.

use std::rc::Rc;

use proxy_wasm::traits::{Context, StreamContext};
use proxy_wasm::types::{BufferType, PeerType};

use crate::error::{Error, HostError};
use crate::host::{self, StreamKind};
use crate::http::Action;
use crate::log::{self, LogLevel};
use crate::plugin::PluginContext;
use crate::{call, executor, PluginConfig};

/// A TCP plugin: configuration and plugin-wide state, like [`Plugin`](crate::Plugin),
/// with a [`TcpFilter`] per connection. Register it with [`main!`](crate::main).
///
/// ```
/// use std::rc::Rc;
/// use pwf::{Action, Error, PluginContext, Tcp, TcpFilter, TcpPlugin};
///
/// struct Upper;
///
/// impl TcpPlugin for Upper {
///     type Config = ();
///     type Filter = UpperFilter;
///
///     fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
///         Ok(Upper)
///     }
///
///     fn filter(_: &Rc<Self>, _: &Tcp) -> UpperFilter {
///         UpperFilter
///     }
/// }
///
/// struct UpperFilter;
///
/// impl TcpFilter for UpperFilter {
///     fn on_upstream_data(&mut self, tcp: &Tcp, size: usize, _: bool) -> Result<Action, Error> {
///         let data = tcp.upstream_data(0, size)?;
///         tcp.set_upstream_data(&data.to_ascii_uppercase())?;
///         Ok(Action::Continue)
///     }
/// }
///
/// pwf::main!(Upper);
/// ```
pub trait TcpPlugin: Sized + 'static {
    /// The plugin configuration, as for an HTTP plugin.
    type Config: PluginConfig;

    /// The filter created for each connection.
    type Filter: TcpFilter;

    /// Creates the plugin from its configuration; an error rejects it.
    fn configure(config: Self::Config, cx: &PluginContext) -> Result<Self, Error>;

    /// Creates the filter for a new connection.
    fn filter(plugin: &Rc<Self>, tcp: &Tcp) -> Self::Filter;

    /// Runs every tick period.
    fn on_tick(&self, cx: &PluginContext) {
        let _ = cx;
    }

    /// Runs when the shared queue `queue_id` has items.
    fn on_queue_ready(&self, cx: &PluginContext, queue_id: u32) {
        let _ = (cx, queue_id);
    }
}

/// Which side closed a connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Envoy closed it.
    Local,
    /// The peer closed it.
    Remote,
    /// Envoy does not say.
    Unknown,
}

/// The filter of one TCP connection. Every event has a default that continues.
///
/// An error from an event is logged and closes the connection.
pub trait TcpFilter: 'static {
    /// A client connected.
    fn on_new_connection(&mut self, tcp: &Tcp) -> Result<Action, Error> {
        let _ = tcp;
        Ok(Action::Continue)
    }

    /// Bytes arrived from the client; `data_size` is the size buffered.
    fn on_downstream_data(
        &mut self,
        tcp: &Tcp,
        data_size: usize,
        end_of_stream: bool,
    ) -> Result<Action, Error> {
        let _ = (tcp, data_size, end_of_stream);
        Ok(Action::Continue)
    }

    /// Bytes arrived from the upstream; `data_size` is the size buffered.
    fn on_upstream_data(
        &mut self,
        tcp: &Tcp,
        data_size: usize,
        end_of_stream: bool,
    ) -> Result<Action, Error> {
        let _ = (tcp, data_size, end_of_stream);
        Ok(Action::Continue)
    }

    /// The client side closed.
    fn on_downstream_close(&mut self, tcp: &Tcp, peer: Peer) {
        let _ = (tcp, peer);
    }

    /// The upstream side closed.
    fn on_upstream_close(&mut self, tcp: &Tcp, peer: Peer) {
        let _ = (tcp, peer);
    }

    /// The connection is being logged, at its end.
    fn on_log(&mut self, tcp: &Tcp) {
        let _ = tcp;
    }
}

/// A handle on one TCP connection: its buffered bytes in each direction.
#[derive(Clone, Debug)]
pub struct Tcp {
    id: u32,
}

impl Tcp {
    /// The host's id for this connection.
    pub fn context_id(&self) -> u32 {
        self.id
    }

    /// Up to `max_size` buffered bytes from the client, from `start`.
    pub fn downstream_data(&self, start: usize, max_size: usize) -> Result<Vec<u8>, HostError> {
        Ok(host::get_buffer(BufferType::DownstreamData, start, max_size)?.unwrap_or_default())
    }

    /// Replaces the buffered bytes from the client.
    pub fn set_downstream_data(&self, data: &[u8]) -> Result<(), HostError> {
        host::set_buffer(BufferType::DownstreamData, 0, u32::MAX as usize, data)
    }

    /// Up to `max_size` buffered bytes from the upstream, from `start`.
    pub fn upstream_data(&self, start: usize, max_size: usize) -> Result<Vec<u8>, HostError> {
        Ok(host::get_buffer(BufferType::UpstreamData, start, max_size)?.unwrap_or_default())
    }

    /// Replaces the buffered bytes from the upstream.
    pub fn set_upstream_data(&self, data: &[u8]) -> Result<(), HostError> {
        host::set_buffer(BufferType::UpstreamData, 0, u32::MAX as usize, data)
    }

    /// Resumes the client-to-upstream direction after a pause.
    pub fn resume_downstream(&self) -> Result<(), HostError> {
        host::continue_stream(StreamKind::Downstream)
    }

    /// Resumes the upstream-to-client direction after a pause.
    pub fn resume_upstream(&self) -> Result<(), HostError> {
        host::continue_stream(StreamKind::Upstream)
    }

    /// Closes the connection to the client.
    pub fn close_downstream(&self) -> Result<(), HostError> {
        host::close_stream(StreamKind::Downstream)
    }

    /// Closes the connection to the upstream.
    pub fn close_upstream(&self) -> Result<(), HostError> {
        host::close_stream(StreamKind::Upstream)
    }
}

struct Connection<P: TcpPlugin> {
    tcp: Tcp,
    filter: Option<P::Filter>,
}

pub(crate) fn connection<P: TcpPlugin>(plugin: Option<&Rc<P>>, id: u32) -> Box<dyn StreamContext> {
    let tcp = Tcp { id };
    let filter = plugin.map(|plugin| P::filter(plugin, &tcp));
    Box::new(Connection::<P> { tcp, filter })
}

fn peer(peer: PeerType) -> Peer {
    match peer {
        PeerType::Local => Peer::Local,
        PeerType::Remote => Peer::Remote,
        _ => Peer::Unknown,
    }
}

impl<P: TcpPlugin> Connection<P> {
    fn event(
        &mut self,
        run: impl FnOnce(&mut P::Filter, &Tcp) -> Result<Action, Error>,
    ) -> proxy_wasm::types::Action {
        executor::enter_context(self.tcp.id);
        let Some(filter) = &mut self.filter else {
            return proxy_wasm::types::Action::Continue;
        };
        match run(filter, &self.tcp) {
            Ok(action) => action.into(),
            Err(error) => {
                log::log(LogLevel::Error, &format!("filter failed, closing: {error}"));
                let _ = self.tcp.close_downstream();
                proxy_wasm::types::Action::Pause
            }
        }
    }
}

impl<P: TcpPlugin> Context for Connection<P> {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        num_trailers: usize,
    ) {
        executor::enter_context(self.tcp.id);
        call::deliver(token_id, num_headers, body_size, num_trailers);
        executor::run_until_stalled();
    }

    fn on_done(&mut self) -> bool {
        executor::cancel_context(self.tcp.id);
        true
    }
}

impl<P: TcpPlugin> Drop for Connection<P> {
    fn drop(&mut self) {
        executor::cancel_context(self.tcp.id);
    }
}

impl<P: TcpPlugin> StreamContext for Connection<P> {
    fn on_new_connection(&mut self) -> proxy_wasm::types::Action {
        self.event(|filter, tcp| filter.on_new_connection(tcp))
    }

    fn on_downstream_data(
        &mut self,
        data_size: usize,
        end_of_stream: bool,
    ) -> proxy_wasm::types::Action {
        self.event(|filter, tcp| filter.on_downstream_data(tcp, data_size, end_of_stream))
    }

    fn on_upstream_data(
        &mut self,
        data_size: usize,
        end_of_stream: bool,
    ) -> proxy_wasm::types::Action {
        self.event(|filter, tcp| filter.on_upstream_data(tcp, data_size, end_of_stream))
    }

    fn on_downstream_close(&mut self, peer_type: PeerType) {
        executor::enter_context(self.tcp.id);
        if let Some(filter) = &mut self.filter {
            filter.on_downstream_close(&self.tcp, peer(peer_type));
        }
    }

    fn on_upstream_close(&mut self, peer_type: PeerType) {
        executor::enter_context(self.tcp.id);
        if let Some(filter) = &mut self.filter {
            filter.on_upstream_close(&self.tcp, peer(peer_type));
        }
    }

    fn on_log(&mut self) {
        executor::enter_context(self.tcp.id);
        if let Some(filter) = &mut self.filter {
            filter.on_log(&self.tcp);
        }
    }
}
