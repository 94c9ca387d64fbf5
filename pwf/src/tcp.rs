//! TCP (network) filters: the same plugin shape over a connection's bytes.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{BufferType, ContextType, PeerType};

use crate::context::{self, Sdk};
use crate::error::{Error, HostError};
use crate::host::{self, StreamKind};
use crate::http::Action;
use crate::log::{self, LogLevel};
use crate::plugin::{Kind, PluginContext, Root};
use crate::{executor, PluginConfig};

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
    ///
    /// ```no_run
    /// use std::rc::Rc;
    /// use pwf::{Error, PluginContext, Tcp, TcpFilter, TcpPlugin};
    ///
    /// struct Echo;
    /// struct EchoFilter;
    /// impl TcpFilter for EchoFilter {}
    ///
    /// impl TcpPlugin for Echo {
    ///     type Config = ();
    ///     type Filter = EchoFilter;
    ///
    ///     fn configure(_: (), cx: &PluginContext) -> Result<Self, Error> {
    ///         pwf::info!("{}: configured", cx.plugin_name());
    ///         Ok(Echo)
    ///     }
    ///
    ///     fn filter(_: &Rc<Self>, _: &Tcp) -> EchoFilter {
    ///         EchoFilter
    ///     }
    /// }
    /// ```
    fn configure(config: Self::Config, cx: &PluginContext) -> Result<Self, Error>;

    /// Creates the filter for a new connection.
    ///
    /// ```no_run
    /// use std::rc::Rc;
    /// use pwf::{Error, PluginContext, Tcp, TcpFilter, TcpPlugin};
    ///
    /// struct Echo;
    /// struct EchoFilter;
    /// impl TcpFilter for EchoFilter {}
    ///
    /// impl TcpPlugin for Echo {
    ///     type Config = ();
    ///     type Filter = EchoFilter;
    ///
    ///     fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
    ///         Ok(Echo)
    ///     }
    ///
    ///     fn filter(_: &Rc<Self>, tcp: &Tcp) -> EchoFilter {
    ///         pwf::debug!("connection {}", tcp.context_id());
    ///         EchoFilter
    ///     }
    /// }
    /// ```
    fn filter(plugin: &Rc<Self>, tcp: &Tcp) -> Self::Filter;

    /// Runs every tick period.
    ///
    /// ```no_run
    /// use std::rc::Rc;
    /// use pwf::{Error, PluginContext, Tcp, TcpFilter, TcpPlugin};
    ///
    /// struct Echo;
    /// struct EchoFilter;
    /// impl TcpFilter for EchoFilter {}
    ///
    /// impl TcpPlugin for Echo {
    ///     type Config = ();
    ///     type Filter = EchoFilter;
    ///
    ///     fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
    ///         Ok(Echo)
    ///     }
    ///
    ///     fn filter(_: &Rc<Self>, _: &Tcp) -> EchoFilter {
    ///         EchoFilter
    ///     }
    ///
    ///     fn on_tick(&self, cx: &PluginContext) {
    ///         pwf::debug!("{}: tick", cx.plugin_name());
    ///     }
    /// }
    /// ```
    fn on_tick(&self, cx: &PluginContext) {
        let _ = cx;
    }

    /// Runs when the shared queue `queue_id` has items.
    ///
    /// ```no_run
    /// use std::rc::Rc;
    /// use pwf::{Error, PluginContext, Tcp, TcpFilter, TcpPlugin};
    ///
    /// struct Echo;
    /// struct EchoFilter;
    /// impl TcpFilter for EchoFilter {}
    ///
    /// impl TcpPlugin for Echo {
    ///     type Config = ();
    ///     type Filter = EchoFilter;
    ///
    ///     fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
    ///         Ok(Echo)
    ///     }
    ///
    ///     fn filter(_: &Rc<Self>, _: &Tcp) -> EchoFilter {
    ///         EchoFilter
    ///     }
    ///
    ///     fn on_queue_ready(&self, _: &PluginContext, queue_id: u32) {
    ///         pwf::debug!("queue {queue_id} has items");
    ///     }
    /// }
    /// ```
    fn on_queue_ready(&self, cx: &PluginContext, queue_id: u32) {
        let _ = (cx, queue_id);
    }
}

/// Which side closed a connection.
///
/// ```
/// use pwf::{Peer, Tcp, TcpFilter};
///
/// struct Watch;
///
/// impl TcpFilter for Watch {
///     fn on_downstream_close(&mut self, _: &Tcp, peer: Peer) {
///         if peer == Peer::Remote {
///             pwf::debug!("the client hung up");
///         }
///     }
/// }
/// ```
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
///
/// ```no_run
/// use pwf::{Action, Error, Tcp, TcpFilter};
///
/// struct Count {
///     bytes: usize,
/// }
///
/// impl TcpFilter for Count {
///     fn on_downstream_data(&mut self, _: &Tcp, size: usize, _: bool) -> Result<Action, Error> {
///         self.bytes += size;
///         Ok(Action::Continue)
///     }
///
///     fn on_log(&mut self, _: &Tcp) {
///         pwf::info!("client sent {} bytes", self.bytes);
///     }
/// }
/// ```
pub trait TcpFilter: 'static {
    /// A client connected.
    ///
    /// ```no_run
    /// use pwf::{Action, Error, Peer, Tcp, TcpFilter};
    ///
    /// struct Demo;
    ///
    /// impl TcpFilter for Demo {
    ///     fn on_new_connection(&mut self, tcp: &Tcp) -> Result<Action, Error> {
    ///         pwf::debug!("connection {} opened", tcp.context_id());
    ///         Ok(Action::Continue)
    ///     }
    /// }
    /// ```
    fn on_new_connection(&mut self, tcp: &Tcp) -> Result<Action, Error> {
        let _ = tcp;
        Ok(Action::Continue)
    }

    /// Bytes arrived from the client; `data_size` is the size buffered.
    ///
    /// ```no_run
    /// use pwf::{Action, Error, Peer, Tcp, TcpFilter};
    ///
    /// struct Demo;
    ///
    /// impl TcpFilter for Demo {
    ///     fn on_downstream_data(&mut self, tcp: &Tcp, size: usize, _: bool) -> Result<Action, Error> {
    ///         let data = tcp.downstream_data(0, size)?;
    ///         if data.starts_with(b"QUIT") {
    ///             tcp.close_downstream()?;
    ///         }
    ///         Ok(Action::Continue)
    ///     }
    /// }
    /// ```
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
    ///
    /// ```no_run
    /// use pwf::{Action, Error, Peer, Tcp, TcpFilter};
    ///
    /// struct Demo;
    ///
    /// impl TcpFilter for Demo {
    ///     fn on_upstream_data(&mut self, tcp: &Tcp, size: usize, _: bool) -> Result<Action, Error> {
    ///         let data = tcp.upstream_data(0, size)?;
    ///         tcp.set_upstream_data(&data.to_ascii_uppercase())?;
    ///         Ok(Action::Continue)
    ///     }
    /// }
    /// ```
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
    ///
    /// ```no_run
    /// use pwf::{Action, Error, Peer, Tcp, TcpFilter};
    ///
    /// struct Demo;
    ///
    /// impl TcpFilter for Demo {
    ///     fn on_downstream_close(&mut self, _: &Tcp, peer: Peer) {
    ///         if peer == Peer::Remote {
    ///             pwf::debug!("the client hung up");
    ///         }
    ///     }
    /// }
    /// ```
    fn on_downstream_close(&mut self, tcp: &Tcp, peer: Peer) {
        let _ = (tcp, peer);
    }

    /// The upstream side closed.
    ///
    /// ```no_run
    /// use pwf::{Action, Error, Peer, Tcp, TcpFilter};
    ///
    /// struct Demo;
    ///
    /// impl TcpFilter for Demo {
    ///     fn on_upstream_close(&mut self, tcp: &Tcp, _: Peer) {
    ///         // The upstream is gone: end the client's side too.
    ///         let _ = tcp.close_downstream();
    ///     }
    /// }
    /// ```
    fn on_upstream_close(&mut self, tcp: &Tcp, peer: Peer) {
        let _ = (tcp, peer);
    }

    /// The connection is being logged, at its end.
    ///
    /// ```no_run
    /// use pwf::{Action, Error, Peer, Tcp, TcpFilter};
    ///
    /// struct Demo;
    ///
    /// impl TcpFilter for Demo {
    ///     fn on_log(&mut self, tcp: &Tcp) {
    ///         pwf::info!("connection {} closed", tcp.context_id());
    ///     }
    /// }
    /// ```
    fn on_log(&mut self, tcp: &Tcp) {
        let _ = tcp;
    }
}

/// A handle on one TCP connection: its buffered bytes in each direction.
///
/// ```no_run
/// use pwf::{Action, Error, Tcp};
///
/// fn on_downstream_data(tcp: &Tcp, size: usize) -> Result<Action, Error> {
///     let data = tcp.downstream_data(0, size)?;
///     if data.starts_with(b"QUIT") {
///         tcp.close_downstream()?;
///     }
///     Ok(Action::Continue)
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Tcp {
    id: u32,
}

impl Tcp {
    /// The host's id for this connection.
    ///
    /// ```no_run
    /// fn on_new_connection(tcp: &pwf::Tcp) {
    ///     pwf::debug!("connection {}", tcp.context_id());
    /// }
    /// ```
    pub fn context_id(&self) -> u32 {
        self.id
    }

    /// Up to `max_size` buffered bytes from the client, from `start`.
    ///
    /// ```no_run
    /// fn on_downstream_data(tcp: &pwf::Tcp, size: usize) -> Result<(), pwf::Error> {
    ///     let data = tcp.downstream_data(0, size)?;
    ///     pwf::debug!("client sent {} bytes", data.len());
    ///     Ok(())
    /// }
    /// ```
    pub fn downstream_data(&self, start: usize, max_size: usize) -> Result<Vec<u8>, HostError> {
        let data =
            self.on_connection(|| host::get_buffer(BufferType::DownstreamData, start, max_size))?;
        Ok(data.unwrap_or_default())
    }

    /// Replaces the buffered bytes from the client.
    ///
    /// ```no_run
    /// fn on_downstream_data(tcp: &pwf::Tcp, size: usize) -> Result<(), pwf::Error> {
    ///     let data = tcp.downstream_data(0, size)?;
    ///     tcp.set_downstream_data(&data.to_ascii_lowercase())?;
    ///     Ok(())
    /// }
    /// ```
    pub fn set_downstream_data(&self, data: &[u8]) -> Result<(), HostError> {
        self.on_connection(|| {
            host::set_buffer(BufferType::DownstreamData, 0, u32::MAX as usize, data)
        })
    }

    /// Up to `max_size` buffered bytes from the upstream, from `start`.
    ///
    /// ```no_run
    /// fn on_upstream_data(tcp: &pwf::Tcp, size: usize) -> Result<(), pwf::Error> {
    ///     let data = tcp.upstream_data(0, size)?;
    ///     pwf::debug!("upstream sent {} bytes", data.len());
    ///     Ok(())
    /// }
    /// ```
    pub fn upstream_data(&self, start: usize, max_size: usize) -> Result<Vec<u8>, HostError> {
        let data =
            self.on_connection(|| host::get_buffer(BufferType::UpstreamData, start, max_size))?;
        Ok(data.unwrap_or_default())
    }

    /// Replaces the buffered bytes from the upstream.
    ///
    /// ```no_run
    /// fn on_upstream_data(tcp: &pwf::Tcp, size: usize) -> Result<(), pwf::Error> {
    ///     let data = tcp.upstream_data(0, size)?;
    ///     tcp.set_upstream_data(&data.to_ascii_uppercase())?;
    ///     Ok(())
    /// }
    /// ```
    pub fn set_upstream_data(&self, data: &[u8]) -> Result<(), HostError> {
        self.on_connection(|| {
            host::set_buffer(BufferType::UpstreamData, 0, u32::MAX as usize, data)
        })
    }

    /// Resumes the client-to-upstream direction after a pause.
    ///
    /// ```no_run
    /// // Later, from a callback, for a connection a data event paused.
    /// fn approved(tcp: &pwf::Tcp) -> Result<(), pwf::Error> {
    ///     tcp.resume_downstream()?;
    ///     Ok(())
    /// }
    /// ```
    pub fn resume_downstream(&self) -> Result<(), HostError> {
        self.on_connection(|| host::continue_stream(StreamKind::Downstream))
    }

    /// Resumes the upstream-to-client direction after a pause.
    ///
    /// ```no_run
    /// fn approved(tcp: &pwf::Tcp) -> Result<(), pwf::Error> {
    ///     tcp.resume_upstream()?;
    ///     Ok(())
    /// }
    /// ```
    pub fn resume_upstream(&self) -> Result<(), HostError> {
        self.on_connection(|| host::continue_stream(StreamKind::Upstream))
    }

    /// Closes the connection to the client.
    ///
    /// ```no_run
    /// fn on_downstream_data(tcp: &pwf::Tcp, size: usize) -> Result<(), pwf::Error> {
    ///     if size > 1 << 20 {
    ///         tcp.close_downstream()?; // too much at once
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn close_downstream(&self) -> Result<(), HostError> {
        self.on_connection(|| host::close_stream(StreamKind::Downstream))
    }

    /// Closes the connection to the upstream.
    ///
    /// ```no_run
    /// fn on_upstream_data(tcp: &pwf::Tcp, size: usize) -> Result<(), pwf::Error> {
    ///     if tcp.upstream_data(0, size)?.starts_with(b"-ERR") {
    ///         tcp.close_upstream()?;
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn close_upstream(&self) -> Result<(), HostError> {
        self.on_connection(|| host::close_stream(StreamKind::Upstream))
    }

    /// Runs a host call for this handle's connection: a handle acts on its
    /// own connection, whichever callback is running.
    fn on_connection<R>(
        &self,
        call: impl FnOnce() -> Result<R, HostError>,
    ) -> Result<R, HostError> {
        context::in_context(self.id, call)
    }
}

struct Connection<P: TcpPlugin> {
    tcp: Tcp,
    /// The root context of the plugin it belongs to.
    root: u32,
    filter: Option<P::Filter>,
}

/// Registers TCP plugin `P` as the VM's root context, as [`register`](crate::register) does
/// for an HTTP plugin. [`main!`](crate::main) picks the right one.
///
/// ```no_run
/// # use std::rc::Rc;
/// # use pwf::{Error, PluginContext, Tcp, TcpFilter, TcpPlugin};
/// # struct Echo;
/// # struct EchoFilter;
/// # impl TcpFilter for EchoFilter {}
/// # impl TcpPlugin for Echo {
/// #     type Config = ();
/// #     type Filter = EchoFilter;
/// #     fn configure(_: (), _: &PluginContext) -> Result<Self, Error> { Ok(Echo) }
/// #     fn filter(_: &Rc<Self>, _: &Tcp) -> EchoFilter { EchoFilter }
/// # }
/// let host = pwf_test::Host::builder().build();
/// let vm = host.start_vm(pwf::register_tcp::<Echo>).unwrap();
/// # let _ = vm;
/// ```
pub fn register_tcp<P: TcpPlugin>() {
    crate::plugin::install_panic_hook();
    proxy_wasm::set_root_context(tcp_root_context::<P>);
}

/// The root context of TCP plugin `P`; see [`root_context`](crate::root_context).
///
/// ```no_run
/// # use std::rc::Rc;
/// # use pwf::{Error, PluginContext, Tcp, TcpFilter, TcpPlugin};
/// # struct Echo;
/// # struct EchoFilter;
/// # impl TcpFilter for EchoFilter {}
/// # impl TcpPlugin for Echo {
/// #     type Config = ();
/// #     type Filter = EchoFilter;
/// #     fn configure(_: (), _: &PluginContext) -> Result<Self, Error> { Ok(Echo) }
/// #     fn filter(_: &Rc<Self>, _: &Tcp) -> EchoFilter { EchoFilter }
/// # }
/// let host = pwf_test::Host::builder().build();
/// let plugin = host.start_vm_with_root(pwf::tcp_root_context::<Echo>).unwrap().configure("").unwrap();
/// # let _ = plugin;
/// ```
pub fn tcp_root_context<P: TcpPlugin>(context_id: u32) -> Box<dyn RootContext> {
    Box::new(Root::<TcpKind<P>>::new(context_id))
}

pub(crate) struct TcpKind<P>(std::marker::PhantomData<P>);

impl<P: TcpPlugin> Kind for TcpKind<P> {
    type Plugin = P;
    type Config = P::Config;
    const CONTEXT: ContextType = ContextType::StreamContext;

    fn configure(config: P::Config, cx: &PluginContext) -> Result<P, Error> {
        P::configure(config, cx)
    }

    fn on_tick(plugin: &P, cx: &PluginContext) {
        plugin.on_tick(cx);
    }

    fn on_queue_ready(plugin: &P, cx: &PluginContext, queue_id: u32) {
        plugin.on_queue_ready(cx, queue_id);
    }

    fn http_context(_: Option<&Rc<P>>, _: u32, _: u32) -> Option<Box<dyn HttpContext>> {
        None
    }

    fn stream_context(
        plugin: Option<&Rc<P>>,
        root: u32,
        id: u32,
    ) -> Option<Box<dyn proxy_wasm::traits::StreamContext>> {
        Some(connection::<P>(plugin, root, id))
    }
}

fn connection<P: TcpPlugin>(plugin: Option<&Rc<P>>, root: u32, id: u32) -> Box<dyn StreamContext> {
    let tcp = Tcp { id };
    let filter = plugin.map(|plugin| P::filter(plugin, &tcp));
    Box::new(Connection::<P> { tcp, root, filter })
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
        context::enter(self.tcp.id, self.root, Sdk::Stream);
        let Some(filter) = &mut self.filter else {
            return proxy_wasm::types::Action::Continue;
        };
        let action = match run(filter, &self.tcp) {
            Ok(action) => action.into(),
            Err(error) => {
                log::__log_fmt(
                    LogLevel::Error,
                    format_args!("filter failed, closing: {error:#}"),
                );
                let _ = self.tcp.close_downstream();
                proxy_wasm::types::Action::Pause
            }
        };
        // Tasks the event woke run now, as after an HTTP phase.
        executor::run_until_stalled();
        action
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
        context::enter(self.tcp.id, self.root, Sdk::Stream);
        crate::hooks::call_response(token_id, num_headers, body_size, num_trailers);
    }

    fn on_done(&mut self) -> bool {
        context::enter(self.tcp.id, self.root, Sdk::Stream);
        executor::cancel_context(self.tcp.id);
        crate::hooks::stream_ended(self.tcp.id);
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
        context::enter(self.tcp.id, self.root, Sdk::Stream);
        if let Some(filter) = &mut self.filter {
            filter.on_downstream_close(&self.tcp, peer(peer_type));
        }
        executor::run_until_stalled();
    }

    fn on_upstream_close(&mut self, peer_type: PeerType) {
        context::enter(self.tcp.id, self.root, Sdk::Stream);
        if let Some(filter) = &mut self.filter {
            filter.on_upstream_close(&self.tcp, peer(peer_type));
        }
        executor::run_until_stalled();
    }

    fn on_log(&mut self) {
        context::enter(self.tcp.id, self.root, Sdk::Stream);
        if let Some(filter) = &mut self.filter {
            filter.on_log(&self.tcp);
        }
        executor::run_until_stalled();
    }
}
