//! The plugin API through the native test host: phases, errors, panics,
//! configuration and reconfiguration.

use std::cell::Cell;
use std::rc::Rc;

use proxy_wasm::traits::RootContext;
use pwf::{Action, Error, Http, HttpFilter, LocalResponse, Plugin, PluginConfig, PluginContext};
use pwf_test::{Action as HostAction, ConfigureError, Host, LogLevel};

const REQUEST: [(&str, &str); 3] = [(":method", "GET"), (":path", "/"), (":authority", "app")];
const RESPONSE: [(&str, &str); 1] = [(":status", "200")];

#[test]
fn request_header_with_non_utf8_value_is_read_as_bytes() {
    struct Reader;
    impl Plugin for Reader {
        type Config = ();
        type Filter = ReaderFilter;
        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Reader)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> ReaderFilter {
            ReaderFilter
        }
    }
    struct ReaderFilter;
    impl HttpFilter for ReaderFilter {
        fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
            let value = http.request_header("x-bin")?.expect("x-bin is present");
            pwf::info!(
                "bytes={:?} utf8_error={}",
                value.as_bytes(),
                value.to_str().is_err()
            );
            Ok(Action::Continue)
        }
    }

    let host = Host::builder().build();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<Reader>)
        .unwrap()
        .configure("")
        .unwrap();
    let stream = plugin.open_stream();
    let headers: [(&str, &[u8]); 2] = [(":path", b"/"), ("x-bin", &[0xff, b'a', 0xfe])];
    assert_eq!(stream.request_headers(headers, true), HostAction::Continue);
    assert_eq!(
        host.logs(LogLevel::Info),
        ["bytes=[255, 97, 254] utf8_error=true"]
    );
    assert_eq!(plugin.failure(), None);
}

#[test]
fn every_phase_default_continues() {
    struct Defaults;
    impl Plugin for Defaults {
        type Config = ();
        type Filter = DefaultsFilter;
        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Defaults)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> DefaultsFilter {
            DefaultsFilter
        }
    }
    struct DefaultsFilter;
    impl HttpFilter for DefaultsFilter {}

    let host = Host::builder().build();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<Defaults>)
        .unwrap()
        .configure("")
        .unwrap();
    let stream = plugin.open_stream();
    let actions = [
        stream.request_headers(REQUEST, false),
        stream.request_body("body", false),
        stream.request_trailers([("x-t", "1")]),
        stream.response_headers(RESPONSE, false),
        stream.response_body("answer", false),
        stream.response_trailers([("x-t", "2")]),
    ];
    assert_eq!(actions, [const { HostAction::Continue }; 6]);
    stream.end().unwrap();
    assert_eq!(stream.forwarded_request_body(), b"body");
    assert_eq!(stream.forwarded_response_body(), b"answer");
    assert_eq!(stream.local_response(), None);
    assert!(host.log_entries().is_empty());
}

#[test]
fn phase_error_is_logged_and_answered_with_a_500() {
    struct Failing;
    impl Plugin for Failing {
        type Config = ();
        type Filter = FailingFilter;
        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Failing)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> FailingFilter {
            FailingFilter
        }
    }
    struct FailingFilter;
    impl HttpFilter for FailingFilter {
        fn on_request_headers(&mut self, _: &Http, _: bool) -> Result<Action, Error> {
            Err(Error::msg("the token is malformed"))
        }
    }

    let host = Host::builder().build();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<Failing>)
        .unwrap()
        .configure("")
        .unwrap();
    let stream = plugin.open_stream();
    assert_eq!(stream.request_headers(REQUEST, true), HostAction::Pause);
    assert_eq!(stream.local_response().map(|r| r.status), Some(500));
    assert_eq!(
        host.logs(LogLevel::Error),
        ["filter failed: the token is malformed"]
    );
}

#[test]
fn phase_error_is_answered_with_the_plugins_error_response() {
    struct Custom;
    impl Plugin for Custom {
        type Config = ();
        type Filter = CustomFilter;
        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Custom)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> CustomFilter {
            CustomFilter
        }
        fn error_response(error: &Error) -> LocalResponse {
            LocalResponse::new(503)
                .header("x-error", "custom")
                .body(format!("sorry: {error}"))
        }
    }
    struct CustomFilter;
    impl HttpFilter for CustomFilter {
        fn on_request_headers(&mut self, _: &Http, _: bool) -> Result<Action, Error> {
            Err(Error::msg("backend unknown"))
        }
    }

    let host = Host::builder().build();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<Custom>)
        .unwrap()
        .configure("")
        .unwrap();
    let stream = plugin.open_stream();
    assert_eq!(stream.request_headers(REQUEST, true), HostAction::Pause);
    let response = stream.local_response().unwrap();
    assert_eq!(response.status, 503);
    assert_eq!(response.headers.get("x-error"), Some("custom"));
    assert_eq!(response.body, b"sorry: backend unknown");
    assert_eq!(
        host.logs(LogLevel::Error),
        ["filter failed: backend unknown"]
    );
}

#[test]
fn request_header_read_in_the_response_phase_is_an_error_not_a_panic() {
    struct Late;
    impl Plugin for Late {
        type Config = ();
        type Filter = LateFilter;
        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Late)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> LateFilter {
            LateFilter
        }
    }
    struct LateFilter;
    impl HttpFilter for LateFilter {
        fn on_response_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
            match http.request_header(":path") {
                Ok(value) => http.set_response_header("x-path", format!("{value:?}"))?,
                Err(error) => http.set_response_header("x-error", error.to_string())?,
            }
            Ok(Action::Continue)
        }
    }

    let host = Host::builder().build();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<Late>)
        .unwrap()
        .configure("")
        .unwrap();
    let stream = plugin.open_stream();
    assert_eq!(stream.request_headers(REQUEST, true), HostAction::Continue);
    assert_eq!(
        stream.response_headers(RESPONSE, true),
        HostAction::Continue
    );
    assert_eq!(
        stream.response_header("x-error").as_deref(),
        Some("host call `get_header_map_value` failed: bad argument")
    );
    assert_eq!(stream.response_header("x-path"), None);
    assert_eq!(plugin.failure(), None);
}

#[test]
fn filter_panic_fails_the_vm_with_its_message() {
    struct Panicky;
    impl Plugin for Panicky {
        type Config = ();
        type Filter = PanickyFilter;
        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Panicky)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> PanickyFilter {
            PanickyFilter
        }
    }
    struct PanickyFilter;
    impl HttpFilter for PanickyFilter {
        fn on_request_headers(&mut self, _: &Http, _: bool) -> Result<Action, Error> {
            panic!("the filter exploded");
        }
    }

    let host = Host::builder().build();
    let vm = host
        .start_vm_with_root(pwf::root_context::<Panicky>)
        .unwrap();
    let plugin = vm.configure("").unwrap();
    let stream = plugin.open_stream();
    let HostAction::Failed(message) = stream.request_headers(REQUEST, true) else {
        panic!("the phase did not fail the VM");
    };
    assert!(message.contains("the filter exploded"), "{message}");
    assert_eq!(vm.failure(), Some(message.clone()));
    assert_eq!(
        plugin.open_stream().request_headers(REQUEST, true),
        HostAction::Failed(message)
    );
}

#[test]
fn filter_panic_is_logged_with_its_message_by_the_registered_hook() {
    struct Panicky;
    impl Plugin for Panicky {
        type Config = ();
        type Filter = PanickyFilter;
        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Panicky)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> PanickyFilter {
            PanickyFilter
        }
    }
    struct PanickyFilter;
    impl HttpFilter for PanickyFilter {
        fn on_request_headers(&mut self, _: &Http, _: bool) -> Result<Action, Error> {
            panic!("the filter exploded too");
        }
    }
    /// Registers the plugin as `pwf::main!` does (which installs pwf's panic
    /// hook), behind the host's guard.
    fn root(context_id: u32) -> Box<dyn RootContext> {
        pwf::register::<Panicky>();
        pwf::root_context::<Panicky>(context_id)
    }

    let host = Host::builder().build();
    let plugin = host
        .start_vm_with_root(root)
        .unwrap()
        .configure("")
        .unwrap();
    let action = plugin.open_stream().request_headers(REQUEST, true);
    assert!(matches!(action, HostAction::Failed(_)), "{action:?}");
    // pwf's hook prefixes its line with "panicked: "; natively the SDK's own
    // hook (installed by the host) logs an unprefixed line too.
    let logged = host.logs(LogLevel::Critical);
    let ours: Vec<_> = logged
        .iter()
        .filter(|line| line.starts_with("panicked: panicked at pwf/tests/plugin.rs:"))
        .collect();
    assert_eq!(ours.len(), 1, "{logged:?}");
    assert!(
        ours[0].ends_with(":\nthe filter exploded too"),
        "{logged:?}"
    );
}

#[test]
fn configure_with_an_invalid_config_logs_each_problem_naming_the_plugin() {
    #[derive(PluginConfig)]
    struct Config {
        #[config(non_empty)]
        cluster: String,
        #[config(default = 3, range = 1..=10)]
        retries: u32,
    }
    struct Strict;
    impl Plugin for Strict {
        type Config = Config;
        type Filter = StrictFilter;
        fn configure(config: Config, _: &PluginContext) -> Result<Self, Error> {
            pwf::info!("accepted {} {}", config.cluster, config.retries);
            Ok(Strict)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> StrictFilter {
            StrictFilter
        }
    }
    struct StrictFilter;
    impl HttpFilter for StrictFilter {}

    let host = Host::builder().plugin_name("authz").build();
    let vm = host
        .start_vm_with_root(pwf::root_context::<Strict>)
        .unwrap();
    let result = vm.configure(r#"{"cluster": "", "retries": 0}"#);
    assert_eq!(result.unwrap_err(), ConfigureError::Rejected);
    assert!(host.logs(LogLevel::Info).is_empty());
    assert_eq!(
        host.logs(LogLevel::Error),
        [
            "authz: invalid plugin configuration: cluster: must not be empty",
            "authz: invalid plugin configuration: retries: must be in 1..=10, got 0",
        ]
    );
}

#[test]
fn configure_without_a_plugin_name_names_the_plugin_by_its_type() {
    #[derive(PluginConfig)]
    struct Config {
        #[config(range = 1..=10)]
        retries: u32,
    }
    struct Unnamed;
    impl Plugin for Unnamed {
        type Config = Config;
        type Filter = UnnamedFilter;
        fn configure(config: Config, _: &PluginContext) -> Result<Self, Error> {
            pwf::info!("accepted {}", config.retries);
            Ok(Unnamed)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> UnnamedFilter {
            UnnamedFilter
        }
    }
    struct UnnamedFilter;
    impl HttpFilter for UnnamedFilter {}

    let host = Host::builder().plugin_name("").build();
    let vm = host
        .start_vm_with_root(pwf::root_context::<Unnamed>)
        .unwrap();
    assert_eq!(
        vm.configure(r#"{"retries": 11}"#).unwrap_err(),
        ConfigureError::Rejected
    );
    assert_eq!(
        host.logs(LogLevel::Error),
        ["Unnamed: invalid plugin configuration: retries: must be in 1..=10, got 11"]
    );
}

#[test]
fn configure_returning_an_error_rejects_the_config_and_logs_it() {
    struct Refusing;
    impl Plugin for Refusing {
        type Config = ();
        type Filter = RefusingFilter;
        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Err(Error::msg("no backend is reachable"))
        }
        fn filter(_: &Rc<Self>, _: &Http) -> RefusingFilter {
            RefusingFilter
        }
    }
    struct RefusingFilter;
    impl HttpFilter for RefusingFilter {}

    let host = Host::builder().plugin_name("gate").build();
    let vm = host
        .start_vm_with_root(pwf::root_context::<Refusing>)
        .unwrap();
    assert_eq!(vm.configure("").unwrap_err(), ConfigureError::Rejected);
    assert_eq!(
        host.logs(LogLevel::Error),
        ["gate: configure failed: no backend is reachable"]
    );
}

#[test]
fn vm_config_is_parsed_into_its_type() {
    #[derive(PluginConfig)]
    struct VmConfig {
        region: String,
        #[config(default = 2)]
        shards: u32,
    }
    struct Regional;
    impl Plugin for Regional {
        type Config = ();
        type Filter = RegionalFilter;
        fn configure(_: (), cx: &PluginContext) -> Result<Self, Error> {
            let vm: VmConfig = cx.vm_config()?;
            pwf::info!("region={} shards={}", vm.region, vm.shards);
            Ok(Regional)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> RegionalFilter {
            RegionalFilter
        }
    }
    struct RegionalFilter;
    impl HttpFilter for RegionalFilter {}

    let host = Host::builder()
        .vm_config(r#"{"region": "eu-west"}"#)
        .build();
    host.start_vm_with_root(pwf::root_context::<Regional>)
        .unwrap()
        .configure("")
        .unwrap();
    assert_eq!(host.logs(LogLevel::Info), ["region=eu-west shards=2"]);
}

#[test]
fn vm_config_with_a_problem_is_an_error_naming_it() {
    #[derive(PluginConfig)]
    struct VmConfig {
        #[config(range = 1..=8)]
        shards: u32,
    }
    struct Regional;
    impl Plugin for Regional {
        type Config = ();
        type Filter = RegionalFilter;
        fn configure(_: (), cx: &PluginContext) -> Result<Self, Error> {
            match cx.vm_config::<VmConfig>() {
                Ok(vm) => pwf::info!("accepted {}", vm.shards),
                Err(error) => pwf::warn!("{error}"),
            }
            Ok(Regional)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> RegionalFilter {
            RegionalFilter
        }
    }
    struct RegionalFilter;
    impl HttpFilter for RegionalFilter {}

    let host = Host::builder().vm_config(r#"{"shards": 9}"#).build();
    host.start_vm_with_root(pwf::root_context::<Regional>)
        .unwrap()
        .configure("")
        .unwrap();
    assert_eq!(
        host.logs(LogLevel::Warn),
        ["shards: must be in 1..=8, got 9"]
    );
    assert!(host.logs(LogLevel::Info).is_empty());
}

#[test]
fn reconfigure_applies_to_new_streams_while_an_open_stream_keeps_its_config() {
    #[derive(PluginConfig)]
    struct Config {
        tag: String,
    }
    struct Tagger {
        tag: String,
    }
    impl Plugin for Tagger {
        type Config = Config;
        type Filter = TaggerFilter;
        fn configure(config: Config, _: &PluginContext) -> Result<Self, Error> {
            Ok(Tagger { tag: config.tag })
        }
        fn filter(plugin: &Rc<Self>, _: &Http) -> TaggerFilter {
            TaggerFilter {
                plugin: plugin.clone(),
            }
        }
    }
    struct TaggerFilter {
        plugin: Rc<Tagger>,
    }
    impl HttpFilter for TaggerFilter {
        fn on_response_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
            http.set_response_header("x-tag", &self.plugin.tag)?;
            Ok(Action::Continue)
        }
    }

    let host = Host::builder().build();
    let vm = host
        .start_vm_with_root(pwf::root_context::<Tagger>)
        .unwrap();
    let old = vm.configure(r#"{"tag": "old"}"#).unwrap();
    let open = old.open_stream();
    assert_eq!(open.request_headers(REQUEST, true), HostAction::Continue);

    let new = vm.configure(r#"{"tag": "new"}"#).unwrap();
    let fresh = new.open_stream();
    assert_eq!(fresh.request_headers(REQUEST, true), HostAction::Continue);
    assert_eq!(fresh.response_headers(RESPONSE, true), HostAction::Continue);
    assert_eq!(open.response_headers(RESPONSE, true), HostAction::Continue);

    assert_eq!(fresh.response_header("x-tag").as_deref(), Some("new"));
    assert_eq!(open.response_header("x-tag").as_deref(), Some("old"));
}

#[test]
fn filter_is_given_the_one_plugin_every_stream_shares() {
    struct Counting {
        streams: Cell<u32>,
    }
    impl Plugin for Counting {
        type Config = ();
        type Filter = CountingFilter;
        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Counting {
                streams: Cell::new(0),
            })
        }
        fn filter(plugin: &Rc<Self>, _: &Http) -> CountingFilter {
            plugin.streams.set(plugin.streams.get() + 1);
            CountingFilter {
                plugin: plugin.clone(),
            }
        }
    }
    struct CountingFilter {
        plugin: Rc<Counting>,
    }
    impl HttpFilter for CountingFilter {
        fn on_request_headers(&mut self, _: &Http, _: bool) -> Result<Action, Error> {
            pwf::info!(
                "streams={} holders={}",
                self.plugin.streams.get(),
                Rc::strong_count(&self.plugin)
            );
            Ok(Action::Continue)
        }
    }

    let host = Host::builder().build();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<Counting>)
        .unwrap()
        .configure("")
        .unwrap();
    let first = plugin.open_stream();
    let second = plugin.open_stream();
    first.request_headers(REQUEST, true);
    second.request_headers(REQUEST, true);
    // The root context holds one reference, each open stream's filter another.
    assert_eq!(
        host.logs(LogLevel::Info),
        ["streams=2 holders=3", "streams=2 holders=3"]
    );
}

#[test]
fn stream_end_runs_on_done_then_on_log() {
    struct Ending;
    impl Plugin for Ending {
        type Config = ();
        type Filter = EndingFilter;
        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Ending)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> EndingFilter {
            EndingFilter
        }
    }
    struct EndingFilter;
    impl HttpFilter for EndingFilter {
        fn on_done(&mut self, _: &Http) {
            pwf::info!("done");
        }
        fn on_log(&mut self, http: &Http) {
            let path = http.request_header(":path").ok().flatten();
            pwf::info!("log {}", path.map(|p| p.to_string()).unwrap_or_default());
        }
    }

    let host = Host::builder().build();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<Ending>)
        .unwrap()
        .configure("")
        .unwrap();
    let stream = plugin.open_stream();
    stream.request_headers(REQUEST, true);
    assert!(host.logs(LogLevel::Info).is_empty());
    stream.end().unwrap();
    assert_eq!(host.logs(LogLevel::Info), ["done", "log /"]);
}
