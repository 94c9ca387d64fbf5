//! `examples/shared_data` in Envoy.

use envoy_harness::{load, Envoy, Request, Result};

#[test]
fn shared_data_counts_every_request_across_workers_exactly() -> Result<()> {
    let envoy = Envoy::example("shared_data").concurrency(2).start()?;
    let result = load(envoy.port(), &Request::get("/status/200"), 2000, 16);
    assert_eq!(
        result.status_counts().get(&200),
        Some(&2000),
        "{}",
        result.summary(16)
    );
    let mut values: Vec<u64> = result
        .responses
        .iter()
        .flatten()
        .filter_map(|r| r.header("x-shared-value")?.parse().ok())
        .collect();
    values.sort_unstable();
    assert_eq!(values, (1..=2000).collect::<Vec<u64>>(), "each value once");
    assert_eq!(
        envoy.get("/anything")?.header("x-shared-value"),
        Some("2001")
    );
    envoy.wait_for_log("shared value: 2001", std::time::Duration::from_secs(5))?;
    Ok(())
}

#[test]
fn shared_data_keys_count_separately() -> Result<()> {
    let envoy = Envoy::example("shared_data")
        .plugin_config(r#"{"sharedDataKey": "e2e_key"}"#)
        .start()?;
    for expected in ["1", "2", "3"] {
        assert_eq!(
            envoy.get("/anything")?.header("x-shared-value"),
            Some(expected)
        );
    }
    Ok(())
}

#[test]
fn shared_data_empty_key_makes_envoy_refuse_to_start() -> Result<()> {
    let refusal = Envoy::example("shared_data")
        .plugin_config(r#"{"sharedDataKey": ""}"#)
        .start_expect_failure()?;
    assert!(!refusal.status.success());
    assert!(
        refusal
            .wasm_log()
            .iter()
            .any(|l| l.contains("[error]") && l.contains("sharedDataKey")),
        "{}",
        refusal.log
    );
    Ok(())
}
