//! {{project-name}} on the native test host: Envoy's lifecycle, without Envoy.

use pwf_test::{Action, ConfigureError, Host, LogLevel, Vm};

use {{crate_name}}::{{project-name | pascal_case}} as Subject;

/// The plugin's name in Envoy's config (and its default header value).
const NAME: &str = "{{project-name}}";

const REQUEST: [(&str, &str); 3] = [(":method", "GET"), (":path", "/"), (":authority", "app")];
const RESPONSE: [(&str, &str); 1] = [(":status", "200")];

/// Starts one VM of the plugin, as Envoy does for each worker.
fn start(host: &Host) -> Vm {
    host.start_vm_with_root(pwf::root_context::<Subject>).unwrap()
}

#[test]
fn configured_header_is_set_on_the_response() {
    let host = Host::builder().plugin_name(NAME).build();
    let plugin = start(&host)
        .configure(r#"{"name": "x-hello", "value": "world"}"#)
        .unwrap();

    let stream = plugin.open_stream();
    assert_eq!(stream.request_headers(REQUEST, true), Action::Continue);
    assert_eq!(stream.response_headers(RESPONSE, true), Action::Continue);
    assert_eq!(stream.response_header("x-hello").as_deref(), Some("world"));
    stream.end().unwrap();
}

#[test]
fn configure_logs_the_header_it_sets_with_the_plugin_name() {
    let host = Host::builder().plugin_name(NAME).build();
    start(&host)
        .configure(r#"{"name": "x-hello", "value": "world"}"#)
        .unwrap();

    let expected = format!("{NAME}: setting `x-hello: world` on every response");
    assert_eq!(host.logs(LogLevel::Info), [expected]);
}

#[test]
fn empty_configuration_takes_the_defaults() {
    let host = Host::builder().plugin_name(NAME).build();
    let plugin = start(&host).configure("").unwrap();

    let stream = plugin.open_stream();
    stream.request_headers(REQUEST, true);
    stream.response_headers(RESPONSE, true);
    let value = stream.response_header("x-powered-by");
    assert_eq!(value.as_deref(), Some(NAME));
}

#[test]
fn empty_header_name_is_rejected_at_configure() {
    let host = Host::builder().plugin_name(NAME).build();
    let rejected = start(&host).configure(r#"{"name": ""}"#).unwrap_err();

    assert_eq!(rejected, ConfigureError::Rejected);
    let expected = format!("{NAME}: invalid plugin configuration: name: must not be empty");
    assert_eq!(host.logs(LogLevel::Error), [expected]);
}

#[test]
fn misspelled_key_is_rejected_with_the_key_meant() {
    let host = Host::builder().plugin_name(NAME).build();
    let rejected = start(&host).configure(r#"{"nmae": "x-hello"}"#).unwrap_err();

    assert_eq!(rejected, ConfigureError::Rejected);
    let expected =
        format!("{NAME}: invalid plugin configuration: unknown field `nmae`, did you mean `name`?");
    assert_eq!(host.logs(LogLevel::Error), [expected]);
}
