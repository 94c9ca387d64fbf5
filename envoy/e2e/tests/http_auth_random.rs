//! `examples/http_auth_random` in Envoy.
//!
//! The auth call carries the original request headers, `:path` included, so the request's
//! path picks what the upstream answers the call: `/body?b=...` makes the answer's body,
//! and so its hash parity, known.

use envoy_harness::{Envoy, Result, Upstream};

/// `{"uuid": "7b10a67a-1c67-4199-835b-cbefcd4a63d4"}`: its FNV-1a hash is even.
const EVEN: &str = "/body?b=%7B%22uuid%22%3A%20%227b10a67a-1c67-4199-835b-cbefcd4a63d4%22%7D";
/// `{"uuid": "7b10a67a-1c67-4199-835b-cbefcd4a63d5"}`: its FNV-1a hash is odd.
const ODD: &str = "/body?b=%7B%22uuid%22%3A%20%227b10a67a-1c67-4199-835b-cbefcd4a63d5%22%7D";

#[test]
fn http_auth_random_lets_an_even_answer_through() -> Result<()> {
    let envoy = Envoy::example("http_auth_random").start()?;
    let resp = envoy.get(EVEN)?;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.text(),
        r#"{"uuid": "7b10a67a-1c67-4199-835b-cbefcd4a63d4"}"#
    );
    let upstream = envoy.upstream().expect("the harness starts an upstream");
    assert_eq!(
        upstream.request_count(),
        2,
        "the auth call, then the request"
    );
    assert!(envoy
        .wasm_log()
        .iter()
        .any(|l| l.contains("access granted")));
    Ok(())
}

#[test]
fn http_auth_random_forbids_an_odd_answer() -> Result<()> {
    let envoy = Envoy::example("http_auth_random").start()?;
    let resp = envoy.get(ODD)?;
    assert_eq!(resp.status, 403);
    assert_eq!(resp.header("powered-by"), Some("pwf"));
    assert_eq!(resp.text(), "access forbidden");
    let upstream = envoy.upstream().expect("the harness starts an upstream");
    assert_eq!(upstream.request_count(), 1, "only the auth call");
    Ok(())
}

#[test]
fn http_auth_random_fails_closed_when_the_auth_call_fails() -> Result<()> {
    let envoy = Envoy::example("http_auth_random").start()?;
    // The upstream answers the auth call with 500, then with a dropped connection (503
    // from Envoy): neither answer's body may decide.
    for path in ["/status/500", "/drop"] {
        let resp = envoy.get(path)?;
        assert_eq!(resp.status, 503, "{path}");
        assert_eq!(resp.text(), "auth service unavailable", "{path}");
    }
    Ok(())
}

#[test]
fn http_auth_random_times_out_the_auth_call() -> Result<()> {
    let envoy = Envoy::example("http_auth_random")
        .plugin_config(r#"{"timeoutMs": "200ms"}"#)
        .start()?;
    // The auth service would answer after 3 s; Envoy's 200 ms timer answers the call first,
    // with its own 504, and the plugin fails closed.
    let resp = envoy.get("/delay/3")?;
    assert_eq!(resp.status, 503);
    assert_eq!(resp.text(), "auth service unavailable");
    envoy.wait_for_log(
        "504; failing closed: 503",
        std::time::Duration::from_secs(5),
    )?;
    Ok(())
}

#[test]
fn http_auth_random_fails_open_when_configured() -> Result<()> {
    let envoy = Envoy::example("http_auth_random")
        .plugin_config(r#"{"failOpen": true}"#)
        .start()?;
    let resp = envoy.get("/status/500")?;
    assert_eq!(resp.status, 500, "the request itself reached the upstream");
    assert!(envoy.wasm_log().iter().any(|l| l.contains("failing open")));
    Ok(())
}

/// The issue's odd body: `{"uuid": "aaaaaaaa-1c67-4199-835b-cbefcd4a63d4"}`.
const ODD_FROM_THE_ISSUE: &str =
    "/body?b=%7B%22uuid%22%3A%20%22aaaaaaaa-1c67-4199-835b-cbefcd4a63d4%22%7D";

#[test]
fn http_auth_random_forbids_the_known_odd_body() -> Result<()> {
    let envoy = Envoy::example("http_auth_random").start()?;
    let resp = envoy.get(ODD_FROM_THE_ISSUE)?;
    assert_eq!(resp.status, 403);
    assert_eq!(resp.text(), "access forbidden");
    envoy.wait_for_log("access forbidden", std::time::Duration::from_secs(5))?;
    Ok(())
}

#[test]
fn http_auth_random_fails_closed_when_the_auth_upstream_is_down() -> Result<()> {
    // An upstream that was there and is gone: its port now refuses connections.
    let gone = Upstream::start().expect("the upstream starts");
    let port = gone.port();
    drop(gone);
    let envoy = Envoy::example("http_auth_random")
        .set("upstream_port", port.to_string())
        .start()?;
    let resp = envoy.get("/anything")?;
    assert_eq!(resp.status, 503);
    assert_eq!(resp.header("powered-by"), Some("pwf"));
    assert_eq!(resp.text(), "auth service unavailable");
    let log = envoy.wait_for_log("failing closed", std::time::Duration::from_secs(5))?;
    assert!(log.contains("answered with status 503"), "{log}");
    Ok(())
}

#[test]
fn http_auth_random_client_that_goes_away_leaves_the_vm_healthy() -> Result<()> {
    let envoy = Envoy::example("http_auth_random").start()?;
    // The client gives up while the auth call is still pending: Envoy tears the
    // stream down, and the call's late answer must find nothing to touch.
    let gave_up = envoy
        .client()
        .timeout(std::time::Duration::from_millis(200))
        .get("/delay/0.6");
    assert!(gave_up.is_err(), "the client timed out first");
    std::thread::sleep(std::time::Duration::from_millis(800));
    let resp = envoy.get(EVEN)?;
    assert_eq!(resp.status, 200, "the VM still serves");
    assert!(!envoy.log().contains("panicked"), "{}", envoy.log());
    assert!(!envoy.log().contains("wasm vm failed"), "{}", envoy.log());
    Ok(())
}
