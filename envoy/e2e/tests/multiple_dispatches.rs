//! `examples/multiple_dispatches` in Envoy.

use std::time::Duration;

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
    let resp = envoy.get("/anything")?;
    assert_eq!(resp.header("total-dispatched"), Some("3"));
    // Had the request gone on before the calls were answered, it would have been the fourth
    // request in flight at the upstream.
    let upstream = envoy.upstream().expect("the harness starts an upstream");
    assert_eq!(upstream.peak_in_flight(), 3);
    assert_eq!(upstream.request_count(), 4);
    Ok(())
}

#[test]
fn multiple_dispatches_zero_count_makes_envoy_refuse_to_start() -> Result<()> {
    let refusal = Envoy::example("multiple_dispatches")
        .plugin_config(r#"{"dispatchCount": 0}"#)
        .start_expect_failure()?;
    assert!(!refusal.status.success());
    // The whole lines docs/features/configuration.md shows.
    for line in [
        "] wasm log multiple_dispatches: multiple_dispatches: invalid plugin configuration: dispatchCount: must be in 1..=100, got 0\n",
        "] Plugin multiple_dispatches failed to load\n",
    ] {
        assert!(refusal.log.contains(line), "no {line:?} in\n{}", refusal.log);
    }
    Ok(())
}

#[test]
fn multiple_dispatches_head_request_shows_total_dispatched() -> Result<()> {
    let envoy = Envoy::example("multiple_dispatches").start()?;
    let resp = envoy.send(&envoy_harness::Request::new("HEAD", "/anything"))?;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("total-dispatched"), Some("10"));
    Ok(())
}

#[test]
fn multiple_dispatches_unknown_cluster_still_answers_and_logs_the_error() -> Result<()> {
    let envoy = Envoy::example("multiple_dispatches")
        .plugin_config(r#"{"dispatchCluster": "no_such_cluster", "dispatchCount": 3}"#)
        .start()?;
    let resp = envoy.get("/anything")?;
    assert_eq!(resp.status, 200, "the response goes on at once");
    assert_eq!(resp.header("total-dispatched"), Some("0"));
    let log = envoy.wait_for_log("no_such_cluster", Duration::from_secs(5))?;
    assert!(
        log.contains("[error]") && log.contains("call to cluster `no_such_cluster` refused"),
        "{log}"
    );
    let errors = envoy
        .wasm_log()
        .iter()
        .filter(|l| l.contains("call to cluster `no_such_cluster` refused"))
        .count();
    assert_eq!(errors, 3, "one error line per refused dispatch");
    assert!(!envoy.log().contains("panicked"), "{}", envoy.log());
    // The VM is alive: a second request is served the same way.
    assert_eq!(
        envoy.get("/anything")?.header("total-dispatched"),
        Some("0")
    );
    Ok(())
}

#[test]
fn multiple_dispatches_calls_run_in_parallel() -> Result<()> {
    let envoy = Envoy::example("multiple_dispatches")
        .plugin_config(r#"{"dispatchCount": 5, "dispatchPath": "/delay/0.3"}"#)
        .start()?;
    let resp = envoy.get("/anything")?;
    assert_eq!(resp.header("total-dispatched"), Some("5"));
    // In series, one call would be answered before the next is sent.
    let upstream = envoy.upstream().expect("the harness starts an upstream");
    assert_eq!(upstream.peak_in_flight(), 5);
    Ok(())
}
