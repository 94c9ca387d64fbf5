//! `examples/global_rate_limit` in Envoy at `--concurrency 2`, asking the test rate limit
//! service (`envoy/ratelimit`, a real in-memory counter) over gRPC.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use envoy_harness::{load, Behaviour, Envoy, RateLimitServer, Request, Result, Setup};

/// What the plugin logs when it is configured as `service_down_*` configures it, with
/// Envoy's prefix.
const CONFIGURED_LINE: &str =
    "wasm log global_rate_limit: global_rate_limit: domain pwf on cluster ratelimit, timeout 200ms, fail closed";
/// What the plugin logs when the rate limit service refuses the connection, with Envoy's
/// prefix (the answer comes to the root context).
const REFUSED_LINE: &str = "wasm log global_rate_limit: global_rate_limit: no answer, refused: gRPC call to cluster `ratelimit` failed in Envoy, status 14 (UNAVAILABLE): upstream connect error or disconnect/reset before headers. reset reason: remote connection failure (upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused})";

fn config(fail_open: bool, timeout: &str) -> String {
    format!(
        r#"{{"descriptors": [{{"header": "x-api-key", "key": "api_key"}}], "timeout": "{timeout}", "failOpen": {fail_open}}}"#
    )
}

fn example(fail_open: bool, timeout: &str) -> Setup {
    Envoy::example("global_rate_limit")
        .plugin_config(&config(fail_open, timeout))
        .concurrency(2)
}

fn keyed(key: &str) -> Request {
    Request::get("/anything").header("x-api-key", key)
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a port");
    listener.local_addr().expect("its address").port()
}

#[test]
fn limit_holds_exactly_across_workers() -> Result<()> {
    let server = RateLimitServer::start().expect("starting the rate limit service");
    server.set_limit(5);
    let envoy = example(false, "2s").ratelimit(&server).start()?;
    let result = load(envoy.port(), &keyed("alice"), 40, 8);
    let counts = result.status_counts();
    assert_eq!(counts.get(&200), Some(&5), "{}", result.summary(8));
    assert_eq!(counts.get(&429), Some(&35), "{}", result.summary(8));
    assert_eq!(server.count("pwf|api_key=alice"), 40);
    let limited = result
        .responses
        .iter()
        .flatten()
        .find(|r| r.status == 429)
        .expect("a 429");
    assert_eq!(limited.header("x-ratelimit-limit"), Some("5"));
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
    // Another key has its own count; a request without the header is not asked about.
    assert_eq!(envoy.send(&keyed("bob"))?.status, 200);
    assert_eq!(envoy.get("/anything")?.status, 200);
    assert_eq!(server.calls().len(), 41);
    Ok(())
}

#[test]
fn service_down_fails_closed_with_503_or_open_with_200() -> Result<()> {
    let port = closed_port();
    let closed = example(false, "200ms")
        .set("ratelimit_port", port.to_string())
        .start()?;
    let resp = closed.send(&keyed("alice"))?;
    assert_eq!(resp.status, 503);
    assert_eq!(resp.text(), "rate limit service unavailable\n");
    // The whole lines, as examples/global_rate_limit/README.md shows them.
    closed.wait_for_log(CONFIGURED_LINE, Duration::from_secs(5))?;
    closed.wait_for_log(REFUSED_LINE, Duration::from_secs(5))?;

    let open = example(true, "1s")
        .set("ratelimit_port", port.to_string())
        .start()?;
    assert_eq!(open.send(&keyed("alice"))?.status, 200);
    open.wait_for_log("no answer, let through", Duration::from_secs(5))?;
    Ok(())
}

#[test]
fn hang_past_the_timeout_gets_the_configured_answer_and_the_call_reset() -> Result<()> {
    for (fail_open, status) in [(false, 503), (true, 200)] {
        let server = RateLimitServer::start().expect("starting the rate limit service");
        server.set_behaviour(Behaviour::Hang);
        let envoy = example(fail_open, "300ms").ratelimit(&server).start()?;
        // The service never answers: only Envoy's 300 ms timer can end the call.
        let resp = envoy.send(&keyed("alice"))?;
        assert_eq!(resp.status, status);
        envoy.wait_for_log("upstream request timeout", Duration::from_secs(5))?;
        wait_until("the service sees the call reset", || {
            server.reset_by_client() == 1
        });
    }
    Ok(())
}

#[test]
fn client_abort_mid_call_leaves_nothing_pending() -> Result<()> {
    let server = RateLimitServer::start().expect("starting the rate limit service");
    server.set_behaviour(Behaviour::Hang);
    let envoy = example(false, "10s").ratelimit(&server).start()?;
    let mut socket = TcpStream::connect(("127.0.0.1", envoy.port())).expect("connecting");
    socket
        .write_all(b"GET /anything HTTP/1.1\r\nhost: app\r\nx-api-key: alice\r\n\r\n")
        .expect("writing the request");
    wait_until("the call reaches the service", || server.in_flight() == 1);
    drop(socket);
    // The stream ends; pwf drops its task, whose PendingGrpcCall cancels the call, and
    // Envoy resets it upstream, long before the 10 s timeout.
    wait_until("the call is reset", || {
        server.in_flight() == 0 && server.reset_by_client() == 1
    });
    Ok(())
}

#[test]
fn cached_under_limit_answers_skip_the_service_and_let_more_than_the_limit_through() -> Result<()> {
    let server = RateLimitServer::start().expect("starting the rate limit service");
    server.set_limit(1);
    let config =
        r#"{"descriptors": [{"header": "x-api-key", "key": "api_key"}], "cacheUnderLimit": "60s"}"#;
    let envoy = Envoy::example("global_rate_limit")
        .plugin_config(config)
        .concurrency(2)
        .ratelimit(&server)
        .start()?;
    // The first answer is cached in shared data, which both workers read: the service is
    // asked once, and the nine requests after it pass over its limit of 1.
    for _ in 0..10 {
        assert_eq!(envoy.send(&keyed("alice"))?.status, 200);
    }
    assert_eq!(server.count("pwf|api_key=alice"), 1);
    // Another descriptor is asked about; an over-limit answer is never cached.
    assert_eq!(envoy.send(&keyed("bob"))?.status, 200);
    assert_eq!(envoy.send(&keyed("bob"))?.status, 200);
    assert_eq!(server.count("pwf|api_key=bob"), 1);
    server.reset_counts();
    server.set_limit(0);
    assert_eq!(envoy.send(&keyed("carol"))?.status, 429);
    assert_eq!(envoy.send(&keyed("carol"))?.status, 429);
    assert_eq!(server.count("pwf|api_key=carol"), 2);
    assert_eq!(server.calls().len(), 4);
    envoy.wait_for_log(
        "global_rate_limit: domain pwf on cluster ratelimit, timeout 200ms, fail closed, under-limit answers cached 60s",
        Duration::from_secs(5),
    )?;
    Ok(())
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 5 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}
