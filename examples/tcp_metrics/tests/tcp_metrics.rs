//! `tcp_metrics` on the native test host: its configuration and the metrics it defines.
//!
//! The test host has no TCP stream driver, so connections and their bytes are covered by
//! the Envoy end-to-end test (`envoy/e2e/tests/tcp_metrics.rs`), not here.

use pwf::PluginConfig;
use pwf_test::{ConfigureError, Host, LogLevel, Metric};
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
