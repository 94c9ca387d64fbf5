//! `tcp_metrics` on the native test host: its configuration, the metrics it defines, and
//! what connections add to them.

use pwf::PluginConfig;
use pwf_test::{Action, ConfigureError, Host, LogLevel, Metric, Peer};
use tcp_metrics::{Config, TcpMetrics};

fn configure(host: &Host, config: &str) -> Result<pwf_test::Plugin, ConfigureError> {
    let vm = host
        .start_vm_with_root(pwf::tcp_root_context::<TcpMetrics>)
        .unwrap();
    vm.configure(config)
}

#[test]
fn configure_with_defaults_defines_the_three_counters_at_zero() {
    let host = Host::default();
    configure(&host, "").unwrap();
    for name in [
        "tcp_metrics.connections",
        "tcp_metrics.downstream_bytes",
        "tcp_metrics.upstream_bytes",
    ] {
        assert_eq!(host.metric(name), Some(Metric::Counter(0)), "{name}");
    }
}

#[test]
fn configure_with_a_prefix_names_the_counters_after_it() {
    let host = Host::default();
    configure(&host, r#"{"prefix": "edge"}"#).unwrap();
    assert_eq!(host.metric("edge.connections"), Some(Metric::Counter(0)));
    assert_eq!(host.metric("tcp_metrics.connections"), None);
}

#[test]
fn configure_with_an_empty_prefix_is_rejected_naming_the_key() {
    let host = Host::default();
    assert_eq!(
        configure(&host, r#"{"prefix": ""}"#).unwrap_err(),
        ConfigureError::Rejected
    );
    assert_eq!(
        host.logs(LogLevel::Error),
        ["plugin: invalid plugin configuration: prefix: must not be empty"]
    );
}

#[test]
fn parse_of_empty_bytes_gives_the_default_prefix() {
    assert_eq!(Config::parse(b"").unwrap().prefix, "tcp_metrics");
}

#[test]
fn schema_lists_prefix_with_its_default() {
    let schema = Config::schema();
    let keys: Vec<&str> = schema.fields().iter().map(|field| field.key()).collect();
    assert_eq!(keys, ["prefix"]);
    assert_eq!(
        schema.field("prefix").unwrap().default(),
        Some("\"tcp_metrics\"")
    );
}

#[test]
fn a_round_trip_counts_the_connection_and_its_bytes_each_way() {
    let host = Host::default();
    let plugin = configure(&host, "").unwrap();
    let connection = plugin.open_connection();
    assert_eq!(connection.opened(), Action::Continue);
    assert_eq!(connection.downstream_data("hello", false), Action::Continue);
    assert_eq!(
        connection.upstream_data("hi there", false),
        Action::Continue
    );
    assert_eq!(connection.downstream_data("!", true), Action::Continue);
    assert_eq!(connection.upstream_data("", true), Action::Continue);
    // The filter only counts: the bytes pass on untouched.
    assert_eq!(connection.forwarded_downstream_data(), b"hello!");
    assert_eq!(connection.forwarded_upstream_data(), b"hi there");
    connection.end().unwrap();
    let second = plugin.open_connection();
    second.downstream_data("abc", true);
    assert_eq!(
        host.metric("tcp_metrics.connections"),
        Some(Metric::Counter(2))
    );
    assert_eq!(
        host.metric("tcp_metrics.downstream_bytes"),
        Some(Metric::Counter(9))
    );
    assert_eq!(
        host.metric("tcp_metrics.upstream_bytes"),
        Some(Metric::Counter(8))
    );
}

#[test]
fn a_zero_byte_end_of_stream_does_not_fail_the_filter() {
    // Envoy refuses a counter increment of zero; the filter must not turn the empty
    // end-of-stream event into an error that closes the connection.
    let host = Host::default();
    let plugin = configure(&host, "").unwrap();
    let connection = plugin.open_connection();
    assert_eq!(connection.downstream_data("", true), Action::Continue);
    assert_eq!(connection.upstream_data("", true), Action::Continue);
    assert!(!connection.closed_by_plugin(pwf_test::Side::Downstream));
    assert!(
        host.logs(LogLevel::Error).is_empty(),
        "{:?}",
        host.logs(LogLevel::Error)
    );
    assert_eq!(
        host.metric("tcp_metrics.downstream_bytes"),
        Some(Metric::Counter(0))
    );
}

#[test]
fn the_close_logs_the_connections_totals() {
    let host = Host::default();
    let plugin = configure(&host, "").unwrap();
    let connection = plugin.open_connection();
    connection.downstream_data("12345", false);
    connection.upstream_data("1234567", false);
    connection.downstream_data("67", true);
    connection.downstream_close(Peer::Remote).unwrap();
    connection.upstream_close(Peer::Local).unwrap();
    connection.end().unwrap();
    assert_eq!(
        host.logs(LogLevel::Info),
        ["connection closed by Remote: 7 bytes in, 7 bytes out"]
    );
}

#[test]
/// The README's demo line: Envoy itself closed the client's side (`Local`).
fn a_close_by_envoy_logs_local_with_the_totals() {
    let host = Host::default();
    let plugin = configure(&host, "").unwrap();
    let connection = plugin.open_connection();
    connection.downstream_data("x".repeat(49), true);
    connection.upstream_data("y".repeat(233), true);
    connection.downstream_close(Peer::Local).unwrap();
    connection.upstream_close(Peer::Remote).unwrap();
    connection.end().unwrap();
    assert_eq!(
        host.logs(LogLevel::Info),
        ["connection closed by Local: 49 bytes in, 233 bytes out"]
    );
}
