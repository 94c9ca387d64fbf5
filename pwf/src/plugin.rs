//! The plugin API: one type for the plugin, one per HTTP stream, one
//! registration line. pwf supplies the SDK's root and HTTP contexts.

use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType};

use crate::config::{ConfigError, PluginConfig, Problems};
use crate::context::{self, Sdk};
use crate::error::{Error, HostError};
use crate::http::{Action, Http, LocalResponse, Phase};
use crate::log::{self, LogLevel};
use crate::{executor, hooks, host};

/// A plugin: its configuration and its plugin-wide state, created each time
/// Envoy configures the plugin, and shared by every stream it filters.
///
/// ```
/// use std::rc::Rc;
/// use pwf::{Action, Error, Http, HttpFilter, Plugin, PluginConfig, PluginContext};
///
/// #[derive(PluginConfig)]
/// struct Config {
///     #[config(default = "x-powered-by")]
///     name: String,
///     #[config(default = "pwf")]
///     value: String,
/// }
///
/// struct AddHeader {
///     config: Config,
/// }
///
/// impl Plugin for AddHeader {
///     type Config = Config;
///     type Filter = AddHeaderFilter;
///
///     fn configure(config: Config, _: &PluginContext) -> Result<Self, Error> {
///         Ok(AddHeader { config })
///     }
///
///     fn filter(plugin: &Rc<Self>, _: &Http) -> AddHeaderFilter {
///         AddHeaderFilter { plugin: plugin.clone() }
///     }
/// }
///
/// struct AddHeaderFilter {
///     plugin: Rc<AddHeader>,
/// }
///
/// impl HttpFilter for AddHeaderFilter {
///     fn on_response_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
///         let config = &self.plugin.config;
///         http.set_response_header(&config.name, &config.value)?;
///         Ok(Action::Continue)
///     }
/// }
///
/// pwf::main!(AddHeader);
/// ```
pub trait Plugin: Sized + 'static {
    /// The plugin configuration (Envoy's `configuration` field), parsed and
    /// validated before [`configure`](Plugin::configure) runs. Use `()` for
    /// a plugin that takes none.
    type Config: PluginConfig;

    /// The filter created for each HTTP stream.
    type Filter: HttpFilter;

    /// Creates the plugin from its configuration. An error rejects the
    /// configuration: Envoy refuses to start, or NACKs the update.
    ///
    /// ```no_run
    /// use std::rc::Rc;
    /// use pwf::{Error, Http, HttpFilter, Plugin, PluginContext};
    ///
    /// struct Demo;
    /// struct DemoFilter;
    /// impl HttpFilter for DemoFilter {}
    ///
    /// impl Plugin for Demo {
    ///     type Config = ();
    ///     type Filter = DemoFilter;
    ///
    ///     fn configure(_: (), cx: &PluginContext) -> Result<Self, Error> {
    ///         // Refuse a configuration the plugin cannot serve.
    ///         if cx.plugin_name().is_empty() {
    ///             return Err(Error::msg("the plugin needs a name"));
    ///         }
    ///         Ok(Demo)
    ///     }
    ///
    ///     fn filter(_: &Rc<Self>, _: &Http) -> DemoFilter {
    ///         DemoFilter
    ///     }
    /// }
    /// ```
    fn configure(config: Self::Config, cx: &PluginContext) -> Result<Self, Error>;

    /// Creates the filter for a new HTTP stream.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use pwf::{Error, Http, HttpFilter, Plugin, PluginContext};
    ///
    /// struct Demo {
    ///     greeting: String,
    /// }
    ///
    /// struct DemoFilter {
    ///     plugin: Rc<Demo>,
    /// }
    /// impl HttpFilter for DemoFilter {}
    ///
    /// impl Plugin for Demo {
    ///     type Config = ();
    ///     type Filter = DemoFilter;
    ///
    ///     fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
    ///         Ok(Demo { greeting: "hello".to_owned() })
    ///     }
    ///
    ///     fn filter(plugin: &Rc<Self>, _: &Http) -> DemoFilter {
    ///         // Each stream keeps a cheap handle on the plugin's state.
    ///         DemoFilter { plugin: plugin.clone() }
    ///     }
    /// }
    /// ```
    fn filter(plugin: &Rc<Self>, http: &Http) -> Self::Filter;

    /// Runs every tick period (see [`PluginContext::set_tick_period`]).
    ///
    /// ```no_run
    /// use std::rc::Rc;
    /// use pwf::{Error, Http, HttpFilter, Plugin, PluginContext};
    ///
    /// struct Demo;
    /// struct DemoFilter;
    /// impl HttpFilter for DemoFilter {}
    ///
    /// impl Plugin for Demo {
    ///     type Config = ();
    ///     type Filter = DemoFilter;
    ///
    ///     fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
    ///         Ok(Demo)
    ///     }
    ///
    ///     fn filter(_: &Rc<Self>, _: &Http) -> DemoFilter {
    ///         DemoFilter
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
    /// use pwf::{Error, Http, HttpFilter, Plugin, PluginContext};
    ///
    /// struct Demo;
    /// struct DemoFilter;
    /// impl HttpFilter for DemoFilter {}
    ///
    /// impl Plugin for Demo {
    ///     type Config = ();
    ///     type Filter = DemoFilter;
    ///
    ///     fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
    ///         Ok(Demo)
    ///     }
    ///
    ///     fn filter(_: &Rc<Self>, _: &Http) -> DemoFilter {
    ///         DemoFilter
    ///     }
    ///
    ///     fn on_queue_ready(&self, cx: &PluginContext, queue_id: u32) {
    ///         pwf::debug!("{}: queue {queue_id} has items", cx.plugin_name());
    ///     }
    /// }
    /// ```
    fn on_queue_ready(&self, cx: &PluginContext, queue_id: u32) {
        let _ = (cx, queue_id);
    }

    /// The response sent when a phase or a task of this plugin's filters
    /// returns an error (after the error is logged). A bare 500 by default.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use pwf::{Error, Http, HttpFilter, LocalResponse, Plugin, PluginContext};
    ///
    /// struct Demo;
    /// struct DemoFilter;
    /// impl HttpFilter for DemoFilter {}
    ///
    /// impl Plugin for Demo {
    ///     type Config = ();
    ///     type Filter = DemoFilter;
    ///
    ///     fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
    ///         Ok(Demo)
    ///     }
    ///
    ///     fn filter(_: &Rc<Self>, _: &Http) -> DemoFilter {
    ///         DemoFilter
    ///     }
    ///
    ///     fn error_response(_: &Error) -> LocalResponse {
    ///         LocalResponse::new(503).header("retry-after", "1")
    ///     }
    /// }
    ///
    /// let response = Demo::error_response(&Error::msg("backend down"));
    /// assert_eq!(response.status(), 503);
    /// ```
    fn error_response(error: &Error) -> LocalResponse {
        let _ = error;
        LocalResponse::new(500)
    }
}

/// The filter of one HTTP stream. Every phase has a default that continues.
///
/// A phase returns the [`Action`] Envoy takes, or an error, which pwf logs and
/// answers with the plugin's [`error_response`](Plugin::error_response).
///
/// ```no_run
/// use pwf::{Action, Error, Http, HttpFilter};
///
/// struct Deny;
///
/// impl HttpFilter for Deny {
///     fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
///         if http.request_header("x-blocked")?.is_some() {
///             return Err(Error::msg("blocked client"));
///         }
///         Ok(Action::Continue)
///     }
/// }
/// ```
pub trait HttpFilter: 'static {
    /// The request headers arrived.
    ///
    /// ```no_run
    /// use pwf::{Action, Error, Http, HttpFilter};
    ///
    /// struct Demo;
    ///
    /// impl HttpFilter for Demo {
    ///     fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
    ///         http.set_request_header("x-filtered-by", "pwf")?;
    ///         Ok(Action::Continue)
    ///     }
    /// }
    /// ```
    fn on_request_headers(&mut self, http: &Http, end_of_stream: bool) -> Result<Action, Error> {
        let _ = (http, end_of_stream);
        Ok(Action::Continue)
    }

    /// A chunk of the request body arrived; `body_size` is the size buffered so far.
    ///
    /// ```no_run
    /// use pwf::{Action, Error, Http, HttpFilter};
    ///
    /// struct Demo;
    ///
    /// impl HttpFilter for Demo {
    ///     fn on_request_body(&mut self, http: &Http, size: usize, end: bool) -> Result<Action, Error> {
    ///         if !end {
    ///             // Buffer until the whole body has arrived.
    ///             return Ok(Action::Pause);
    ///         }
    ///         let body = http.request_body(0, size)?;
    ///         pwf::debug!("request body: {} bytes", body.len());
    ///         Ok(Action::Continue)
    ///     }
    /// }
    /// ```
    fn on_request_body(
        &mut self,
        http: &Http,
        body_size: usize,
        end_of_stream: bool,
    ) -> Result<Action, Error> {
        let _ = (http, body_size, end_of_stream);
        Ok(Action::Continue)
    }

    /// The request trailers arrived.
    ///
    /// ```no_run
    /// use pwf::{Action, Error, Http, HttpFilter};
    ///
    /// struct Demo;
    ///
    /// impl HttpFilter for Demo {
    ///     fn on_request_trailers(&mut self, http: &Http) -> Result<Action, Error> {
    ///         if let Some(checksum) = http.request_trailer("x-checksum")? {
    ///             pwf::debug!("checksum {checksum}");
    ///         }
    ///         Ok(Action::Continue)
    ///     }
    /// }
    /// ```
    fn on_request_trailers(&mut self, http: &Http) -> Result<Action, Error> {
        let _ = http;
        Ok(Action::Continue)
    }

    /// The response headers arrived.
    ///
    /// ```no_run
    /// use pwf::{Action, Error, Http, HttpFilter};
    ///
    /// struct Demo;
    ///
    /// impl HttpFilter for Demo {
    ///     fn on_response_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
    ///         http.remove_response_header("server")?;
    ///         Ok(Action::Continue)
    ///     }
    /// }
    /// ```
    fn on_response_headers(&mut self, http: &Http, end_of_stream: bool) -> Result<Action, Error> {
        let _ = (http, end_of_stream);
        Ok(Action::Continue)
    }

    /// A chunk of the response body arrived; `body_size` is the size buffered so far.
    ///
    /// ```no_run
    /// use pwf::{Action, Error, Http, HttpFilter};
    ///
    /// struct Demo;
    ///
    /// impl HttpFilter for Demo {
    ///     fn on_response_body(&mut self, http: &Http, size: usize, end: bool) -> Result<Action, Error> {
    ///         if !end {
    ///             return Ok(Action::Pause);
    ///         }
    ///         let body = http.response_body(0, size)?;
    ///         http.set_response_body(&body.to_ascii_uppercase())?;
    ///         Ok(Action::Continue)
    ///     }
    /// }
    /// ```
    fn on_response_body(
        &mut self,
        http: &Http,
        body_size: usize,
        end_of_stream: bool,
    ) -> Result<Action, Error> {
        let _ = (http, body_size, end_of_stream);
        Ok(Action::Continue)
    }

    /// The response trailers arrived.
    ///
    /// ```no_run
    /// use pwf::{Action, Error, Http, HttpFilter};
    ///
    /// struct Demo;
    ///
    /// impl HttpFilter for Demo {
    ///     fn on_response_trailers(&mut self, http: &Http) -> Result<Action, Error> {
    ///         http.set_response_trailer("x-filtered-by", "pwf")?;
    ///         Ok(Action::Continue)
    ///     }
    /// }
    /// ```
    fn on_response_trailers(&mut self, http: &Http) -> Result<Action, Error> {
        let _ = http;
        Ok(Action::Continue)
    }

    /// The stream ended (completed, reset, or the client went away). Its
    /// pending tasks have been dropped.
    ///
    /// ```
    /// use pwf::{Http, HttpFilter};
    ///
    /// struct Timed {
    ///     finished: bool,
    /// }
    ///
    /// impl HttpFilter for Timed {
    ///     fn on_done(&mut self, _: &Http) {
    ///         self.finished = true;
    ///     }
    /// }
    /// ```
    fn on_done(&mut self, http: &Http) {
        let _ = http;
    }

    /// The stream is being logged (after `on_done`).
    ///
    /// ```no_run
    /// use pwf::{Http, HttpFilter};
    ///
    /// struct Access;
    ///
    /// impl HttpFilter for Access {
    ///     fn on_log(&mut self, http: &Http) {
    ///         if let Ok(Some(status)) = http.response_header(":status") {
    ///             pwf::info!("answered {status}");
    ///         }
    ///     }
    /// }
    /// ```
    fn on_log(&mut self, http: &Http) {
        let _ = http;
    }
}

/// What a plugin can reach outside a stream: its name, the VM
/// configuration, the tick period, plugin-wide tasks.
///
/// ```no_run
/// use std::time::Duration;
/// use pwf::{Error, PluginContext};
///
/// fn configure(cx: &PluginContext) -> Result<(), Error> {
///     pwf::info!("{}: configured", cx.plugin_name());
///     cx.set_tick_period(Duration::from_secs(10))?;
///     Ok(())
/// }
/// ```
pub struct PluginContext {
    id: u32,
    name: String,
    vm_config: Vec<u8>,
}

impl PluginContext {
    /// The plugin's name in Envoy's config (`name` of the wasm plugin).
    ///
    /// ```no_run
    /// fn configure(cx: &pwf::PluginContext) {
    ///     pwf::info!("{}: ready", cx.plugin_name());
    /// }
    /// ```
    pub fn plugin_name(&self) -> &str {
        &self.name
    }

    /// The host's id for the plugin's root context.
    ///
    /// ```no_run
    /// fn configure(cx: &pwf::PluginContext) {
    ///     pwf::debug!("root context {}", cx.context_id());
    /// }
    /// ```
    pub fn context_id(&self) -> u32 {
        self.id
    }

    /// Parses the VM configuration (Envoy's `vm_config.configuration`) into
    /// `T`, with the same checks and messages as the plugin configuration.
    ///
    /// ```no_run
    /// use pwf::{Error, PluginConfig, PluginContext};
    ///
    /// #[derive(PluginConfig)]
    /// struct VmConfig {
    ///     #[config(default = "us-east-1")]
    ///     region: String,
    /// }
    ///
    /// fn configure(cx: &PluginContext) -> Result<String, Error> {
    ///     let vm: VmConfig = cx.vm_config()?;
    ///     Ok(vm.region)
    /// }
    /// ```
    pub fn vm_config<T: PluginConfig>(&self) -> Result<T, ConfigError> {
        T::parse(&self.vm_config)
    }

    /// Asks the host to call [`Plugin::on_tick`] every `period`
    /// (whole milliseconds; zero stops the ticks).
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// fn configure(cx: &pwf::PluginContext) -> Result<(), pwf::Error> {
    ///     // `Plugin::on_tick` runs every 500 ms from now on.
    ///     cx.set_tick_period(Duration::from_millis(500))?;
    ///     Ok(())
    /// }
    /// ```
    pub fn set_tick_period(&self, period: Duration) -> Result<(), HostError> {
        let millis = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
        host::set_tick_period_millis(millis)?;
        crate::timer::ticking(millis > 0);
        Ok(())
    }

    /// Runs a plugin-wide task: for example one that fetches something at
    /// start. It is polled like a stream's task, from host callbacks, and
    /// dropped when the plugin's root context goes away. An error is logged.
    ///
    /// ```no_run
    /// use pwf::{PluginContext, Request};
    ///
    /// fn configure(cx: &PluginContext) {
    ///     cx.spawn(async {
    ///         let response = Request::get("config", "/flags").send()?.await?;
    ///         pwf::info!("flags: {}", String::from_utf8_lossy(response.body()));
    ///         Ok(())
    ///     });
    /// }
    /// ```
    pub fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = Result<(), Error>> + 'static,
    {
        let name = self.name.clone();
        let task = async move {
            if let Err(error) = task.await {
                log::__log_fmt(
                    LogLevel::Error,
                    format_args!("{name}: task failed: {error:#}"),
                );
            }
        };
        if let Err(full) = executor::spawn(self.id, task) {
            log::__log_fmt(LogLevel::Error, format_args!("{}: {full}", self.name));
        }
    }
}

/// Registers plugin `P` as the VM's root context. [`main!`](crate::main)
/// calls it from the module's `_initialize`; the native test host calls it
/// to start a VM.
///
/// ```no_run
/// # use std::rc::Rc;
/// # use pwf::{Error, Http, HttpFilter, Plugin, PluginContext};
/// # struct Hello;
/// # struct HelloFilter;
/// # impl HttpFilter for HelloFilter {}
/// # impl Plugin for Hello {
/// #     type Config = ();
/// #     type Filter = HelloFilter;
/// #     fn configure(_: (), _: &PluginContext) -> Result<Self, Error> { Ok(Hello) }
/// #     fn filter(_: &Rc<Self>, _: &Http) -> HelloFilter { HelloFilter }
/// # }
/// // What `pwf::main!(Hello)` runs when Envoy loads the module; a native
/// // test host can run it as the VM's entry function too.
/// let host = pwf_test::Host::builder().build();
/// let vm = host.start_vm(pwf::register::<Hello>).unwrap();
/// # let _ = vm;
/// ```
pub fn register<P: Plugin>() {
    install_panic_hook();
    proxy_wasm::set_root_context(root_context::<P>);
}

/// The root context of plugin `P`, as the SDK's `set_root_context` takes it.
///
/// [`register`] uses it. A host that sets up the root context itself takes
/// it directly: the native test host starts a VM with
/// `host.start_vm_with_root(pwf::root_context::<MyPlugin>)`, which also
/// catches a panic before it crosses the SDK's `extern "C"` entry points.
///
/// ```no_run
/// # use std::rc::Rc;
/// # use pwf::{Error, Http, HttpFilter, Plugin, PluginContext};
/// # struct Hello;
/// # struct HelloFilter;
/// # impl HttpFilter for HelloFilter {}
/// # impl Plugin for Hello {
/// #     type Config = ();
/// #     type Filter = HelloFilter;
/// #     fn configure(_: (), _: &PluginContext) -> Result<Self, Error> { Ok(Hello) }
/// #     fn filter(_: &Rc<Self>, _: &Http) -> HelloFilter { HelloFilter }
/// # }
/// let host = pwf_test::Host::builder().build();
/// let plugin = host.start_vm_with_root(pwf::root_context::<Hello>).unwrap().configure("").unwrap();
/// # let _ = plugin;
/// ```
pub fn root_context<P: Plugin>(context_id: u32) -> Box<dyn RootContext> {
    Box::new(Root::<HttpKind<P>>::new(context_id))
}

/// What the root context needs of a plugin, HTTP or TCP.
pub(crate) trait Kind: 'static {
    type Plugin: 'static;
    type Config: PluginConfig;
    const CONTEXT: ContextType;
    fn configure(config: Self::Config, cx: &PluginContext) -> Result<Self::Plugin, Error>;
    fn on_tick(plugin: &Self::Plugin, cx: &PluginContext);
    fn on_queue_ready(plugin: &Self::Plugin, cx: &PluginContext, queue_id: u32);
    fn http_context(
        plugin: Option<&Rc<Self::Plugin>>,
        root: u32,
        id: u32,
    ) -> Option<Box<dyn HttpContext>>;
    fn stream_context(
        plugin: Option<&Rc<Self::Plugin>>,
        root: u32,
        id: u32,
    ) -> Option<Box<dyn proxy_wasm::traits::StreamContext>>;
}

pub(crate) struct HttpKind<P>(std::marker::PhantomData<P>);

impl<P: Plugin> Kind for HttpKind<P> {
    type Plugin = P;
    type Config = P::Config;
    const CONTEXT: ContextType = ContextType::HttpContext;

    fn configure(config: P::Config, cx: &PluginContext) -> Result<P, Error> {
        P::configure(config, cx)
    }

    fn on_tick(plugin: &P, cx: &PluginContext) {
        plugin.on_tick(cx);
    }

    fn on_queue_ready(plugin: &P, cx: &PluginContext, queue_id: u32) {
        plugin.on_queue_ready(cx, queue_id);
    }

    fn http_context(plugin: Option<&Rc<P>>, root: u32, id: u32) -> Option<Box<dyn HttpContext>> {
        let filter = plugin.map(|plugin| {
            let http = Http::new(id, Phase::Request, P::error_response);
            P::filter(plugin, &http)
        });
        Some(Box::new(Stream::<P> { id, root, filter }))
    }

    fn stream_context(
        _: Option<&Rc<P>>,
        _: u32,
        _: u32,
    ) -> Option<Box<dyn proxy_wasm::traits::StreamContext>> {
        None
    }
}

/// Logs a panic's message and location through the host before the VM traps
/// (release builds abort on panic). In a wasm VM that line is all: the
/// default hook's stderr lines would only add noise to Envoy's log. Natively
/// (under the test host) the previous hook runs too.
pub(crate) fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(not(target_arch = "wasm32"))]
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            log::log(LogLevel::Critical, &format!("panicked: {info}"));
            #[cfg(not(target_arch = "wasm32"))]
            previous(info);
        }));
    });
}

pub(crate) struct Root<K: Kind> {
    id: u32,
    vm_config: Vec<u8>,
    cx: Option<PluginContext>,
    plugin: Option<Rc<K::Plugin>>,
}

impl<K: Kind> Root<K> {
    pub(crate) fn new(id: u32) -> Root<K> {
        Root {
            id,
            vm_config: Vec::new(),
            cx: None,
            plugin: None,
        }
    }

    fn plugin_name() -> String {
        match host::get_property_encoded(b"plugin_name") {
            Ok(Some(name)) if !name.is_empty() => crate::shown::lossy(&name),
            _ => {
                // The type's own name: what follows the last `:` of its path.
                let full = std::any::type_name::<K::Plugin>();
                let start = full
                    .bytes()
                    .rposition(|byte| byte == b':')
                    .map_or(0, |colon| colon + 1);
                full.get(start..).unwrap_or("plugin").to_owned()
            }
        }
    }
}

impl<K: Kind> Context for Root<K> {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        num_trailers: usize,
    ) {
        context::enter(self.id, self.id, Sdk::Root);
        hooks::call_response(token_id, num_headers, body_size, num_trailers);
    }

    fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
        // Every gRPC call is sent on behalf of the root (Envoy ties them to it anyway).
        context::enter(self.id, self.id, Sdk::Root);
        hooks::grpc_response(token_id, status_code, response_size);
    }

    #[cfg(feature = "grpc-streams")]
    fn on_grpc_stream_initial_metadata(&mut self, token_id: u32, num_elements: u32) {
        context::enter(self.id, self.id, Sdk::Root);
        hooks::grpc_stream_event(token_id, 0, num_elements as usize);
    }

    #[cfg(feature = "grpc-streams")]
    fn on_grpc_stream_message(&mut self, token_id: u32, message_size: usize) {
        context::enter(self.id, self.id, Sdk::Root);
        hooks::grpc_stream_event(token_id, 1, message_size);
    }

    #[cfg(feature = "grpc-streams")]
    fn on_grpc_stream_trailing_metadata(&mut self, token_id: u32, num_elements: u32) {
        context::enter(self.id, self.id, Sdk::Root);
        hooks::grpc_stream_event(token_id, 2, num_elements as usize);
    }

    #[cfg(feature = "grpc-streams")]
    fn on_grpc_stream_close(&mut self, token_id: u32, status_code: u32) {
        context::enter(self.id, self.id, Sdk::Root);
        hooks::grpc_stream_event(token_id, 3, status_code as usize);
    }

    fn on_done(&mut self) -> bool {
        executor::cancel_context(self.id);
        true
    }
}

impl<K: Kind> Drop for Root<K> {
    fn drop(&mut self) {
        executor::cancel_context(self.id);
    }
}

/// Reads the plugin configuration the host gave, and logs what the operator must see: each
/// unknown key that a struct with `allow_unknown_keys` ignored, at warning level, or, when the
/// configuration is refused (`None`), each of its problems, at error level.
fn read_logged<C: PluginConfig>(name: &str, bytes: &[u8]) -> Option<C> {
    let mut config = None;
    let read = read_and_log(name, bytes, &mut crate::config::read_into(&mut config));
    config.filter(|_| read)
}

/// The part of [`read_logged`] that does not depend on the configuration's type, with the
/// drops of the problems it logs. Whether the configuration was read without a problem.
fn read_and_log(
    name: &str,
    bytes: &[u8],
    read: &mut dyn FnMut(&serde_json::Value, &mut Problems) -> bool,
) -> bool {
    match crate::config::read_config(bytes, read) {
        Ok(ignored) => {
            for key in &ignored {
                log::__log_fmt(
                    LogLevel::Warn,
                    format_args!("{name}: plugin configuration: {key}"),
                );
            }
            true
        }
        Err(error) => {
            for problem in error.problems() {
                log::__log_fmt(
                    LogLevel::Error,
                    format_args!("{name}: invalid plugin configuration: {problem}"),
                );
            }
            false
        }
    }
}

impl<K: Kind> RootContext for Root<K> {
    fn on_vm_start(&mut self, vm_configuration_size: usize) -> bool {
        context::enter(self.id, self.id, Sdk::Root);
        match host::get_buffer(BufferType::VmConfiguration, 0, vm_configuration_size) {
            Ok(bytes) => {
                self.vm_config = bytes.unwrap_or_default();
                true
            }
            Err(error) => {
                log::__log_fmt(
                    LogLevel::Error,
                    format_args!("could not read the VM configuration: {error}"),
                );
                false
            }
        }
    }

    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        context::enter(self.id, self.id, Sdk::Root);
        let name = Self::plugin_name();
        let bytes = match host::get_buffer(
            BufferType::PluginConfiguration,
            0,
            plugin_configuration_size,
        ) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(error) => {
                log::__log_fmt(
                    LogLevel::Error,
                    format_args!("{name}: could not read the plugin configuration: {error}"),
                );
                return false;
            }
        };
        let Some(config) = read_logged::<K::Config>(&name, &bytes) else {
            return false;
        };
        // Read: the bytes are not kept while the plugin configures.
        drop(bytes);
        let cx = PluginContext {
            id: self.id,
            name,
            vm_config: self.vm_config.clone(),
        };
        match K::configure(config, &cx) {
            Ok(plugin) => {
                self.plugin = Some(Rc::new(plugin));
                self.cx = Some(cx);
                executor::run_until_stalled();
                true
            }
            Err(error) => {
                log::__log_fmt(
                    LogLevel::Error,
                    format_args!("{}: configure failed: {error:#}", cx.name),
                );
                false
            }
        }
    }

    fn on_tick(&mut self) {
        if context::rebinding() {
            // pwf entering the SDK through this root to send a call: no tick.
            return;
        }
        context::enter(self.id, self.id, Sdk::Root);
        if let (Some(plugin), Some(cx)) = (&self.plugin, &self.cx) {
            K::on_tick(plugin, cx);
        }
        hooks::tick();
        executor::run_until_stalled();
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        context::enter(self.id, self.id, Sdk::Root);
        if let (Some(plugin), Some(cx)) = (&self.plugin, &self.cx) {
            K::on_queue_ready(plugin, cx, queue_id);
        }
        executor::run_until_stalled();
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(K::CONTEXT)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // The SDK runs this inside its borrow of the root contexts.
        context::enter(context_id, self.id, Sdk::Creating);
        K::http_context(self.plugin.as_ref(), self.id, context_id)
    }

    fn create_stream_context(
        &self,
        context_id: u32,
    ) -> Option<Box<dyn proxy_wasm::traits::StreamContext>> {
        context::enter(context_id, self.id, Sdk::Creating);
        K::stream_context(self.plugin.as_ref(), self.id, context_id)
    }
}

/// The SDK's HTTP context for one stream: runs the filter's phases.
struct Stream<P: Plugin> {
    id: u32,
    /// The root context of the plugin it belongs to.
    root: u32,
    /// `None` when the plugin is not configured: the stream passes through.
    filter: Option<P::Filter>,
}

impl<P: Plugin> Stream<P> {
    fn phase(
        &mut self,
        phase: Phase,
        run: impl FnOnce(&mut P::Filter, &Http) -> Result<Action, Error>,
    ) -> proxy_wasm::types::Action {
        context::enter(self.id, self.root, Sdk::Stream);
        let Some(filter) = &mut self.filter else {
            return proxy_wasm::types::Action::Continue;
        };
        let http = Http::new(self.id, phase, P::error_response);
        crate::http::enter_phase(self.id);
        let action = match run(filter, &http) {
            Ok(action) => action.into(),
            Err(error) => {
                log::__log_fmt(LogLevel::Error, format_args!("filter failed: {error:#}"));
                if let Err(send) = P::error_response(&error).send() {
                    log::__log_fmt(
                        LogLevel::Error,
                        format_args!("could not send the error response: {send}"),
                    );
                }
                proxy_wasm::types::Action::Pause
            }
        };
        // Tasks the phase woke (a channel send, say) run now, not at some
        // later call response or tick.
        executor::run_until_stalled();
        // A deciding task that finished before the phase returned decides
        // what the phase returns: the stream was never paused for it.
        match crate::http::leave_phase() {
            Some(decided) if action == proxy_wasm::types::Action::Pause => decided.into(),
            _ => action,
        }
    }
}

impl<P: Plugin> Context for Stream<P> {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        num_trailers: usize,
    ) {
        context::enter(self.id, self.root, Sdk::Stream);
        hooks::call_response(token_id, num_headers, body_size, num_trailers);
    }

    fn on_done(&mut self) -> bool {
        context::enter(self.id, self.root, Sdk::Stream);
        executor::cancel_context(self.id);
        if let Some(filter) = &mut self.filter {
            filter.on_done(&Http::new(self.id, Phase::Response, P::error_response));
        }
        // A group of this stream's awaited by another stream: its calls fail
        // now, rather than never land.
        hooks::stream_ended(self.id);
        true
    }
}

impl<P: Plugin> Drop for Stream<P> {
    fn drop(&mut self) {
        executor::cancel_context(self.id);
    }
}

impl<P: Plugin> HttpContext for Stream<P> {
    fn on_http_request_headers(
        &mut self,
        _num_headers: usize,
        end_of_stream: bool,
    ) -> proxy_wasm::types::Action {
        self.phase(Phase::Request, |filter, http| {
            filter.on_request_headers(http, end_of_stream)
        })
    }

    fn on_http_request_body(
        &mut self,
        body_size: usize,
        end_of_stream: bool,
    ) -> proxy_wasm::types::Action {
        self.phase(Phase::Request, |filter, http| {
            filter.on_request_body(http, body_size, end_of_stream)
        })
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> proxy_wasm::types::Action {
        self.phase(Phase::Request, |filter, http| {
            filter.on_request_trailers(http)
        })
    }

    fn on_http_response_headers(
        &mut self,
        _num_headers: usize,
        end_of_stream: bool,
    ) -> proxy_wasm::types::Action {
        self.phase(Phase::Response, |filter, http| {
            filter.on_response_headers(http, end_of_stream)
        })
    }

    fn on_http_response_body(
        &mut self,
        body_size: usize,
        end_of_stream: bool,
    ) -> proxy_wasm::types::Action {
        self.phase(Phase::Response, |filter, http| {
            filter.on_response_body(http, body_size, end_of_stream)
        })
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> proxy_wasm::types::Action {
        self.phase(Phase::Response, |filter, http| {
            filter.on_response_trailers(http)
        })
    }

    fn on_log(&mut self) {
        context::enter(self.id, self.root, Sdk::Stream);
        if let Some(filter) = &mut self.filter {
            filter.on_log(&Http::new(self.id, Phase::Response, P::error_response));
        }
        executor::run_until_stalled();
    }
}

/// Registers a plugin type, HTTP ([`Plugin`]) or TCP
/// ([`TcpPlugin`](crate::TcpPlugin)), as the module's entry point.
///
/// ```text
/// pwf::main!(MyPlugin);
/// ```
///
/// Every plugin crate has this line once, in its `lib.rs`. It defines the
/// registration that the module's `_initialize` export (pwf's own, which
/// Envoy calls when it loads the module) runs: [`register::<MyPlugin>`]
/// (or [`register_tcp`](crate::register_tcp)).
///
/// A crate that forgets it still builds, but Envoy refuses the module at
/// load, and `envoy --mode validate` fails, with: `Failed to load Wasm module
/// due to a missing import: env.pwf_main_registers_the_plugin` (the linker
/// leaves the undefined registration to the host, which has no such import).
#[macro_export]
macro_rules! main {
    ($plugin:ty) => {
        /// Registers the plugin: the module's `_initialize` calls it once,
        /// when Envoy loads the module.
        #[no_mangle]
        pub extern "C" fn pwf_main_registers_the_plugin() {
            #[allow(unused_imports)]
            use $crate::__private::{RegisterHttp as _, RegisterTcp as _};
            (&&$crate::__private::Register::<$plugin>::new()).register();
        }
    };
}
