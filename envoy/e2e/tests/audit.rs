//! `examples/audit` in Envoy: a queue hand-off, metrics in `/stats`, a body limit.

use std::time::{Duration, Instant};

use envoy_harness::{Envoy, Request, Result};

#[test]
fn audit_hands_each_request_to_the_plugin_through_the_queue() -> Result<()> {
    let envoy = Envoy::example("audit").start()?;
    assert_eq!(envoy.get("/anything/first")?.status, 200);
    assert_eq!(envoy.get("/anything/second")?.status, 200);
    // The plugin receives the queue's items in `on_queue_ready`, which Envoy
    // posts to the worker; poll until both are listed.
    let deadline = Instant::now() + Duration::from_secs(5);
    let listed = loop {
        let recent = envoy.get("/audit/recent")?;
        assert_eq!(recent.status, 200);
        assert_eq!(recent.header("content-type"), Some("application/json"));
        let json = recent.json()?;
        let paths: Vec<String> = json
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter_map(|e| e["path"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if paths.len() >= 2 || Instant::now() >= deadline {
            break paths;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(listed, ["/anything/first", "/anything/second"]);
    Ok(())
}

#[test]
fn audit_counts_requests_in_envoys_stats() -> Result<()> {
    let envoy = Envoy::example("audit").start()?;
    for _ in 0..3 {
        envoy.get("/anything")?;
    }
    assert_eq!(envoy.stat("wasmcustom.audit.requests")?, Some(3));
    let body = envoy.send(&Request::post("/anything", vec![b'x'; 100]))?;
    assert_eq!(body.status, 200);
    let stats = envoy
        .admin_get("/stats?filter=wasmcustom.audit.body_bytes")?
        .text();
    assert!(
        stats.contains("wasmcustom.audit.body_bytes"),
        "the histogram is listed: {stats}"
    );
    Ok(())
}

#[test]
fn audit_answers_413_past_the_body_limit() -> Result<()> {
    let envoy = Envoy::example("audit")
        .plugin_config(r#"{"maxBodyBytes": 64}"#)
        .start()?;
    let small = envoy.send(&Request::post("/anything", vec![b'a'; 64]))?;
    assert_eq!(small.status, 200, "a body at the limit goes through");
    let echoed = small.json()?;
    assert_eq!(echoed["data"].as_str().map(str::len), Some(64));
    let large = envoy.send(&Request::post("/anything", vec![b'a'; 4096]))?;
    assert_eq!(large.status, 413);
    assert_eq!(large.text(), "request body exceeds the limit of 64 bytes");
    let upstream = envoy.upstream().expect("the harness starts an upstream");
    assert_eq!(
        upstream.request_count(),
        1,
        "the large body never reached it"
    );
    Ok(())
}

#[test]
fn audit_zero_body_limit_makes_envoy_refuse_to_start() -> Result<()> {
    let refusal = Envoy::example("audit")
        .plugin_config(r#"{"maxBodyBytes": 0}"#)
        .start_expect_failure()?;
    assert!(!refusal.status.success());
    assert!(
        refusal.logged("maxBodyBytes: must be in 1..=1048576, got 0"),
        "{}",
        refusal.log
    );
    Ok(())
}
