//! `examples/multiple_dispatches` in Envoy.

use std::time::{Duration, Instant};

use envoy_harness::{Envoy, Result};

#[test]
fn multiple_dispatches_resumes_after_every_call_landed() -> Result<()> {
    let envoy = Envoy::example("multiple_dispatches").start()?;
    let resp = envoy.get("/anything")?;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("total-dispatched"), Some("10"));
    let upstream = envoy.upstream().expect("the harness starts an upstream");
    assert_eq!(upstream.request_count(), 11, "the request and its 10 calls");
    envoy.wait_for_log(
        "response resumed after processed 10 dispatched request",
        Duration::from_secs(5),
    )?;
    Ok(())
}

#[test]
fn multiple_dispatches_waits_for_the_slowest_call() -> Result<()> {
    let envoy = Envoy::example("multiple_dispatches")
        .plugin_config(r#"{"dispatchCount": 3, "dispatchPath": "/delay/0.3"}"#)
        .start()?;
    let start = Instant::now();
    let resp = envoy.get("/anything")?;
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(resp.header("total-dispatched"), Some("3"));
    Ok(())
}

#[test]
fn multiple_dispatches_zero_count_makes_envoy_refuse_to_start() -> Result<()> {
    let refusal = Envoy::example("multiple_dispatches")
        .plugin_config(r#"{"dispatchCount": 0}"#)
        .start_expect_failure()?;
    assert!(!refusal.status.success());
    assert!(
        refusal
            .wasm_log()
            .iter()
            .any(|l| l.contains("dispatchCount: must be in 1..=100, got 0")),
        "{}",
        refusal.log
    );
    Ok(())
}
