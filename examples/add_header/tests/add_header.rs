//! `add_header` on the native test host.

use add_header::{AddHeader, Config};
use pwf::PluginConfig;
use pwf_test::{Action, ConfigureError, Host, LogLevel, Plugin};

const REQUEST: [(&str, &str); 3] = [(":method", "GET"), (":path", "/"), (":authority", "app")];

fn configured(host: &Host, config: &str) -> Plugin {
    let vm = host
        .start_vm_with_root(pwf::root_context::<AddHeader>)
        .unwrap();
    vm.configure(config).unwrap()
}

#[test]
fn response_with_default_config_gets_x_powered_by_pwf() {
    let host = Host::default();
    let stream = configured(&host, "").open_stream();
    assert_eq!(stream.request_headers(REQUEST, true), Action::Continue);
    assert_eq!(
        stream.response_headers([(":status", "200")], true),
        Action::Continue
    );
    assert_eq!(
        stream.response_header("x-powered-by").as_deref(),
        Some("pwf")
    );
}

#[test]
fn response_with_custom_config_gets_the_configured_header() {
    let host = Host::default();
    let stream = configured(&host, r#"{"name": "x-pwf", "value": "hello"}"#).open_stream();
    stream.request_headers(REQUEST, true);
    assert_eq!(
        stream.response_headers([(":status", "200")], true),
        Action::Continue
    );
    assert_eq!(stream.response_header("x-pwf").as_deref(), Some("hello"));
    assert_eq!(stream.response_header("x-powered-by"), None);
}

#[test]
fn response_header_of_the_same_name_from_upstream_is_replaced() {
    let host = Host::default();
    let stream = configured(&host, r#"{"name": "x-pwf", "value": "hello"}"#).open_stream();
    stream.request_headers(REQUEST, true);
    stream.response_headers([(":status", "200"), ("x-pwf", "upstream")], true);
    assert_eq!(stream.response_header_map().get_all("x-pwf"), ["hello"]);
}

#[test]
fn configure_with_an_empty_name_is_rejected_naming_the_key() {
    let host = Host::default();
    let vm = host
        .start_vm_with_root(pwf::root_context::<AddHeader>)
        .unwrap();
    assert_eq!(
        vm.configure(r#"{"name": "", "value": "hello"}"#)
            .unwrap_err(),
        ConfigureError::Rejected
    );
    assert_eq!(
        host.logs(LogLevel::Error),
        ["plugin: invalid plugin configuration: name: must not be empty"]
    );
}

#[test]
fn configure_logs_the_header_it_adds() {
    let host = Host::builder().plugin_name("add_header").build();
    configured(&host, r#"{"name": "x-pwf", "value": "hello"}"#);
    assert_eq!(
        host.logs(LogLevel::Info),
        ["add_header: adding `x-pwf: hello` to every response"]
    );
}

#[test]
fn schema_lists_name_and_value_with_their_defaults() {
    let schema = Config::schema();
    let keys: Vec<&str> = schema.fields().iter().map(|field| field.key()).collect();
    assert_eq!(keys, ["name", "value"]);
    let name = schema.field("name").unwrap();
    assert_eq!(name.default(), Some("\"x-powered-by\""));
    let value = schema.field("value").unwrap();
    assert_eq!(value.default(), Some("\"pwf\""));
}

/// A value with CR/LF once went to Envoy as it was and split every response.
#[test]
fn configure_with_cr_lf_in_the_value_or_a_space_in_the_name_is_rejected() {
    let host = Host::default();
    let vm = host
        .start_vm_with_root(pwf::root_context::<AddHeader>)
        .unwrap();
    assert_eq!(
        vm.configure(r#"{"name": "x pwf", "value": "hello\r\nx-injected: 2"}"#)
            .unwrap_err(),
        ConfigureError::Rejected
    );
    assert_eq!(
        host.logs(LogLevel::Error),
        [
            "plugin: invalid plugin configuration: name: must be a header name (a token: letters, digits and !#$%&'*+-.^_`|~), got \"x pwf\" with a space at byte 1",
            "plugin: invalid plugin configuration: value: must be a header value without CR, LF or NUL, got \"hello\\r\\nx-injected: 2\" with a CR at byte 5",
        ]
    );
}
