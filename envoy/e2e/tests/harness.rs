//! The harness itself: the upstream's endpoints, the client, and Envoy's lifecycle without
//! any wasm.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use envoy_harness::{load, Client, Envoy, Request, Result, Upstream};

#[test]
fn upstream_uuid_returns_a_random_v4() -> Result<()> {
    let upstream = Upstream::start().unwrap();
    let mut client = Client::new(upstream.port());
    let a = client.get("/uuid")?;
    let b = client.get("/uuid")?;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let uuid = a.json()?["uuid"].as_str().unwrap_or_default().to_owned();
    assert_eq!(uuid.len(), 36, "{uuid}");
    assert_eq!(&uuid[14..15], "4", "{uuid}");
    assert_ne!(a.body, b.body);
    Ok(())
}

#[test]
fn upstream_status_answers_with_the_code() -> Result<()> {
    let upstream = Upstream::start().unwrap();
    let mut client = Client::new(upstream.port());
    assert_eq!(client.get("/status/503")?.status, 503);
    assert_eq!(client.get("/status/204")?.status, 204);
    assert_eq!(client.get("/status/x")?.status, 400);
    Ok(())
}

#[test]
fn upstream_delay_waits_fractional_seconds() -> Result<()> {
    let upstream = Upstream::start().unwrap();
    let start = Instant::now();
    let resp = Client::new(upstream.port()).get("/delay/0.3")?;
    let waited = start.elapsed();
    assert_eq!(resp.status, 200);
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    Ok(())
}

#[test]
fn upstream_anything_echoes_the_request() -> Result<()> {
    let upstream = Upstream::start().unwrap();
    let req = Request::post("/anything/a/b?x=1&x=2", r#"{"k": "v"}"#)
        .header("x-one", "1")
        .header("x-multi", "a")
        .header("x-multi", "b");
    let resp = Client::new(upstream.port()).send(&req)?;
    let echo = resp.json()?;
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/anything/a/b");
    assert_eq!(echo["url"], "/anything/a/b?x=1&x=2");
    assert_eq!(echo["args"]["x"], serde_json::json!(["1", "2"]));
    assert_eq!(echo["headers"]["x-one"], "1");
    assert_eq!(echo["headers"]["x-multi"], serde_json::json!(["a", "b"]));
    assert_eq!(echo["data"], r#"{"k": "v"}"#);
    assert_eq!(echo["json"]["k"], "v");
    Ok(())
}

#[test]
fn upstream_body_returns_exactly_the_given_body() -> Result<()> {
    let upstream = Upstream::start().unwrap();
    let resp = Client::new(upstream.port()).get(
        "/body?b=%7B%22uuid%22%3A%20%227b10a67a-1c67-4199-835b-cbefcd4a63d4%22%7D&status=201&content_type=application/json",
    )?;
    assert_eq!(resp.status, 201);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(
        resp.text(),
        r#"{"uuid": "7b10a67a-1c67-4199-835b-cbefcd4a63d4"}"#
    );
    Ok(())
}

#[test]
fn upstream_response_headers_sets_repeated_headers() -> Result<()> {
    let upstream = Upstream::start().unwrap();
    let resp = Client::new(upstream.port()).get("/response-headers?x-r=1&x-r=2")?;
    assert_eq!(resp.header_all("x-r"), ["1", "2"]);
    Ok(())
}

/// hyper adds a `date` header unless told not to, which changed what Envoy's answers look
/// like in the docs.
#[test]
fn upstream_answers_with_only_the_headers_of_its_route() -> Result<()> {
    let upstream = Upstream::start().unwrap();
    let resp = Client::new(upstream.port()).get("/body?b=hi")?;
    let names: Vec<&str> = resp.headers.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["content-type", "content-length"]);
    Ok(())
}

#[test]
fn upstream_hang_never_answers() {
    let upstream = Upstream::start().unwrap();
    let start = Instant::now();
    let err = Client::new(upstream.port())
        .timeout(Duration::from_millis(300))
        .get("/hang")
        .unwrap_err()
        .to_string();
    assert!(err.contains("timed out"), "{err}");
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[test]
fn upstream_counts_the_requests_it_answers_at_once() {
    let upstream = Upstream::start().unwrap();
    let mut client = Client::new(upstream.port());
    client.get("/").unwrap();
    client.get("/delay/0").unwrap();
    assert_eq!(upstream.peak_in_flight(), 1, "one after the other");
    // Two `/hang`s are in flight together until their clients give up.
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                Client::new(upstream.port())
                    .timeout(Duration::from_secs(2))
                    .get("/hang")
                    .unwrap_err()
            });
        }
    });
    assert_eq!(upstream.peak_in_flight(), 2);
}

#[test]
fn upstream_close_cuts_the_body_short() {
    let upstream = Upstream::start().unwrap();
    let err = Client::new(upstream.port())
        .get("/close")
        .unwrap_err()
        .to_string();
    assert!(err.contains("1000-byte body"), "{err}");
}

#[test]
fn upstream_drop_closes_without_an_answer() {
    let upstream = Upstream::start().unwrap();
    let err = Client::new(upstream.port())
        .get("/drop")
        .unwrap_err()
        .to_string();
    assert!(err.contains("without a response"), "{err}");
}

#[test]
fn upstream_unknown_path_is_404_and_garbage_is_400() -> Result<()> {
    let upstream = Upstream::start().unwrap();
    assert_eq!(Client::new(upstream.port()).get("/nope")?.status, 404);
    let mut raw = std::net::TcpStream::connect(upstream.addr()).unwrap();
    raw.write_all(b"not http\r\n\r\n").unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    Ok(())
}

#[test]
fn client_reuses_its_keep_alive_connection() -> Result<()> {
    let upstream = Upstream::start().unwrap();
    let mut client = Client::new(upstream.port());
    for _ in 0..5 {
        assert_eq!(client.get("/")?.status, 200);
    }
    assert_eq!(upstream.connection_count(), 1);
    assert_eq!(upstream.request_count(), 5);
    Ok(())
}

#[test]
fn upstream_records_what_it_received() -> Result<()> {
    let upstream = Upstream::start().unwrap();
    Client::new(upstream.port())
        .send(&Request::post("/anything?q=1", "body").header("x-a", "1"))?;
    let seen = upstream.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].target, "/anything?q=1");
    assert_eq!(seen[0].header("X-A"), Some("1"));
    assert_eq!(seen[0].body, b"body");
    Ok(())
}

#[test]
fn client_reads_chunked_and_close_delimited_bodies() -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let answers: [&[u8]; 2] = [
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-h: 1\r\nx-h: 2\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            b"HTTP/1.0 200 OK\r\n\r\nuntil close",
        ];
        for answer in answers {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf).unwrap();
            conn.write_all(answer).unwrap();
        }
    });
    let chunked = Client::new(port).get("/")?;
    assert_eq!(chunked.text(), "abcde");
    assert_eq!(chunked.header_all("X-H"), ["1", "2"]);
    let until_close = Client::new(port).get("/")?;
    assert_eq!(until_close.text(), "until close");
    server.join().unwrap();
    Ok(())
}

#[test]
fn load_sends_every_request_over_parallel_connections() {
    let upstream = Upstream::start().unwrap();
    let result = load(upstream.port(), &Request::get("/uuid"), 2000, 16);
    assert_eq!(result.responses.len(), 2000);
    assert_eq!(
        result.status_counts().get(&200),
        Some(&2000),
        "{}",
        result.summary(16)
    );
    assert!(result.errors().is_empty());
    assert_eq!(upstream.request_count(), 2000);
    assert_eq!(upstream.connection_count(), 16);
}

#[test]
fn envoy_proxies_to_the_upstream() -> Result<()> {
    let envoy = Envoy::template("envoy/passthrough.yaml").start()?;
    assert_ne!(envoy.port(), 18000, "listener ports must be allocated");
    let resp = envoy.get("/anything/through-envoy")?;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("server"), Some("envoy"));
    assert_eq!(resp.json()?["path"], "/anything/through-envoy");
    let upstream = envoy.upstream().expect("the harness starts an upstream");
    let seen = upstream.requests();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].header("x-request-id").is_some());
    assert_eq!(envoy.stat("cluster.httpbin.upstream_rq_200")?, Some(1));
    Ok(())
}

#[test]
fn envoys_run_side_by_side() -> Result<()> {
    let a = Envoy::template("envoy/passthrough.yaml").start()?;
    let b = Envoy::template("envoy/passthrough.yaml").start()?;
    assert_ne!(a.port(), b.port());
    assert_ne!(a.admin(), b.admin());
    assert_eq!(a.get("/status/201")?.status, 201);
    assert_eq!(b.get("/status/202")?.status, 202);
    Ok(())
}

#[test]
fn envoy_uses_a_given_upstream() -> Result<()> {
    let upstream = Upstream::start().unwrap();
    let envoy = Envoy::template("envoy/passthrough.yaml")
        .upstream(&upstream)
        .start()?;
    assert!(envoy.upstream().is_none());
    assert_eq!(envoy.get("/uuid")?.status, 200);
    assert_eq!(upstream.request_count(), 1);
    Ok(())
}

#[test]
fn envoy_reports_a_dead_upstream_as_503() -> Result<()> {
    let upstream = Upstream::start().unwrap();
    let envoy = Envoy::template("envoy/passthrough.yaml")
        .upstream(&upstream)
        .start()?;
    drop(upstream);
    assert_eq!(envoy.get("/")?.status, 503);
    Ok(())
}

#[test]
fn envoy_stops_cleanly() -> Result<()> {
    let envoy = Envoy::template("envoy/passthrough.yaml").start()?;
    let port = envoy.port();
    let log = envoy.log_path().to_path_buf();
    let status = envoy.stop()?;
    assert!(status.success(), "{status}");
    assert!(!log.exists(), "the run directory is removed");
    assert!(Client::new(port).get("/").is_err());
    Ok(())
}

#[test]
fn envoy_logs_are_readable() -> Result<()> {
    let envoy = Envoy::template("envoy/passthrough.yaml").start()?;
    let line = envoy.wait_for_log("starting main dispatch loop", Duration::from_secs(5))?;
    assert!(line.contains("[info]"), "{line}");
    let err = envoy
        .wait_for_log("no such line", Duration::from_millis(100))
        .unwrap_err()
        .to_string();
    assert!(err.contains("log tail"), "{err}");
    Ok(())
}

const BROKEN: &str = "\
static_resources:
  listeners:
  - name: main
    address:
      socket_address:
        address: 127.0.0.1
        port_value: 0 # pwf:listener_port
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: main
          route_config:
            virtual_hosts:
            - name: all
              domains: [\"*\"]
              routes:
              - match: { prefix: \"/\" }
                route: { cluster: no_such_cluster }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
admin:
  address:
    socket_address:
      address: 127.0.0.1
      port_value: 0 # pwf:admin_port
";

#[test]
fn envoy_refuses_a_broken_config() -> Result<()> {
    let refusal = Envoy::yaml(BROKEN).start_expect_failure()?;
    assert!(!refusal.status.success());
    assert!(refusal.log.contains("no_such_cluster"), "{}", refusal.log);
    Ok(())
}

#[test]
fn start_reports_why_envoy_exited() {
    let err = Envoy::yaml(BROKEN).start().unwrap_err().to_string();
    assert!(err.contains("exited with"), "{err}");
    assert!(err.contains("no_such_cluster"), "{err}");
}

#[test]
fn start_expect_failure_fails_when_envoy_starts() {
    let err = Envoy::template("envoy/passthrough.yaml")
        .start_expect_failure()
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected to refuse"), "{err}");
}

#[test]
fn validate_accepts_the_shipped_config_and_rejects_a_broken_one() -> Result<()> {
    let ok = Envoy::template("envoy/passthrough.yaml").validate()?;
    assert!(ok.ok, "{}", ok.output);
    let broken = Envoy::yaml(BROKEN).validate()?;
    assert!(!broken.ok);
    assert!(
        broken.output.contains("no_such_cluster"),
        "{}",
        broken.output
    );
    Ok(())
}

#[test]
fn setting_an_unknown_marker_is_an_error() {
    let err = Envoy::template("envoy/passthrough.yaml")
        .plugin_config("{}")
        .render()
        .unwrap_err()
        .to_string();
    assert!(err.contains("# pwf:plugin_config"), "{err}");
}
