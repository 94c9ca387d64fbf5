//! Hostile input in Envoy: header injection over HTTP/1.1 and HTTP/2, bodies and bytes on
//! forwarded calls, out-of-range timeouts and call limits, and logs under overload. The
//! plugin is `envoy/testdata/hostile-plugin` (see its docs for its endpoints), or the
//! example named.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use envoy_harness::{Envoy, Request, Result, Setup};

fn hostile() -> Setup {
    Envoy::template("envoy/plugin.yaml")
        .wasm_of("hostile-plugin")
        .plugin_config("")
}

/// Sends `head` (and nothing else) over HTTP/1.1 on a new connection that the request
/// closes, and returns every byte of the answer.
fn raw_http1(port: u16, head: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to Envoy");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set a read timeout");
    stream.write_all(head).expect("send the request");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

/// `GET target` over HTTP/1.1, raw: the whole answer as text.
fn raw_get(port: u16, target: &str) -> String {
    let head = format!("GET {target} HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n");
    String::from_utf8_lossy(&raw_http1(port, head.as_bytes())).into_owned()
}

/// The header lines of a raw HTTP/1.1 answer (between the status line and the blank line).
fn head_lines(answer: &str) -> Vec<&str> {
    let head = answer.split("\r\n\r\n").next().unwrap_or_default();
    head.split("\r\n").skip(1).collect()
}

/// An HTTP/2 answer: its status and headers, or how the stream ended without one.
#[derive(Debug)]
struct H2Answer {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
}

impl H2Answer {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// `GET target` over HTTP/2 with prior knowledge (h2c), as `curl --http2-prior-knowledge`
/// sends it; an error when the stream or the connection fails.
fn h2_get(port: u16, target: &str) -> std::result::Result<H2Answer, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        let (mut client, connection) = h2::client::handshake(tcp)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = http::Request::get(format!("http://app{target}"))
            .body(())
            .map_err(|e| e.to_string())?;
        let (response, _) = client
            .send_request(request, true)
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(Duration::from_secs(30), response)
            .await
            .map_err(|_| "no answer in 30 s".to_owned())?
            .map_err(|e| format!("stream error: {e}"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect();
        // Read the body to its end, so that a reset after the headers shows too.
        let mut body = response.into_body();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|e| format!("stream error in the body: {e}"))?;
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        Ok(H2Answer { status, headers })
    })
}

/// A value that ends the header early: a second header after it.
const INJECT_HEADER: &str = "hello%0D%0Ax-injected%3A%202";
/// A value that ends the response head early: a body of its own after it.
const INJECT_BODY: &str = "a%0D%0A%0D%0A%3Chtml%3Esmuggled%20body%3C%2Fhtml%3E";

/// What a careless plugin would have caused, through the SDK alone: Envoy writes the value
/// raw over HTTP/1.1 (a header and a body of the value's choosing), and HTTP/2 clients get
/// a protocol error. This is why pwf checks every header itself.
#[test]
fn envoy_writes_cr_lf_from_a_plugin_raw_and_pwf_refuses_it_over_http1() -> Result<()> {
    let envoy = hostile().start()?;
    let port = envoy.port();
    let raw = raw_get(port, &format!("/raw-set?name=x-pwf&value={INJECT_HEADER}"));
    assert!(head_lines(&raw).contains(&"x-injected: 2"), "{raw}");

    for value in [INJECT_HEADER, INJECT_BODY] {
        let answer = raw_get(port, &format!("/set?name=x-pwf&value={value}"));
        let lines = head_lines(&answer);
        assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
        assert!(lines.contains(&"x-result: refused"), "{answer}");
        assert!(
            !lines
                .iter()
                .any(|l| l.starts_with("x-pwf") || l.starts_with("x-injected")),
            "{answer}"
        );
        assert!(!answer.contains("smuggled"), "{answer}");
    }
    envoy.wait_for_log(
        "host call `add_header_map_value` not made: the value of header `x-pwf` has a CR at byte 5",
        Duration::from_secs(5),
    )?;
    Ok(())
}

#[test]
fn header_with_cr_lf_or_a_bad_name_is_refused_and_http2_clients_get_their_answer() -> Result<()> {
    let envoy = hostile().start()?;
    let port = envoy.port();
    let raw = h2_get(port, &format!("/raw-set?name=x-pwf&value={INJECT_HEADER}"));
    assert!(raw.is_err(), "Envoy passed the raw value on: {raw:?}");

    for target in [
        format!("/set?name=x-pwf&value={INJECT_HEADER}"),
        format!("/set?name=x-pwf&value={INJECT_BODY}"),
        "/set?name=x%20pwf&value=1".to_owned(),
        "/set?name=x-pwf&value=a%00b".to_owned(),
    ] {
        let answer = h2_get(port, &target).unwrap_or_else(|e| panic!("{target}: {e}"));
        assert_eq!(answer.status, 404, "{target}");
        assert_eq!(answer.header("x-result"), Some(&b"refused"[..]), "{target}");
        assert_eq!(answer.header("x-pwf"), None, "{target}");
        assert_eq!(answer.header("x-injected"), None, "{target}");
    }
    Ok(())
}

/// Measured: Envoy lowercases a name a plugin gives in upper case, so an HTTP/2 client gets
/// a valid header, and pwf lets upper case through.
#[test]
fn upper_case_header_name_reaches_http2_clients_lowercased() -> Result<()> {
    let envoy = hostile().start()?;
    let answer = h2_get(envoy.port(), "/set?name=X-Upper&value=1").expect("an HTTP/2 answer");
    assert_eq!(answer.header("x-result"), Some(&b"set"[..]));
    assert_eq!(answer.header("x-upper"), Some(&b"1"[..]));
    Ok(())
}

/// A local response with a header pwf refuses is not sent; the error response answers,
/// and the stream does not hang.
#[test]
fn local_response_with_cr_lf_in_a_header_answers_500() -> Result<()> {
    let envoy = hostile().start()?;
    let answer = raw_get(
        envoy.port(),
        &format!("/respond?name=x-pwf&value={INJECT_HEADER}"),
    );
    assert!(answer.starts_with("HTTP/1.1 500 "), "{answer}");
    assert!(!answer.contains("x-injected"), "{answer}");
    let h2 = h2_get(
        envoy.port(),
        &format!("/respond?name=x-pwf&value={INJECT_HEADER}"),
    )
    .expect("an HTTP/2 answer");
    assert_eq!(h2.status, 500);
    Ok(())
}

/// `add_header` with CR/LF in its configured value once split every response.
#[test]
fn add_header_with_cr_lf_in_the_value_makes_envoy_refuse_to_start() -> Result<()> {
    let refusal = Envoy::example("add_header")
        .plugin_config(r#"{"name": "x-pwf", "value": "hello\r\nx-injected: 2"}"#)
        .start_expect_failure()?;
    assert!(!refusal.status.success());
    assert!(
        refusal.logged(
            r#"value: must be a header value without CR, LF or NUL, got "hello\r\nx-injected: 2" with a CR at byte 5"#
        ),
        "{}",
        refusal.log
    );
    Ok(())
}

/// `{"uuid": "7b10a67a-1c67-4199-835b-cbefcd4a63d4"}`: its FNV-1a hash is even.
const EVEN: &str = "/body?b=%7B%22uuid%22%3A%20%227b10a67a-1c67-4199-835b-cbefcd4a63d4%22%7D";

/// A POST's `content-length` was forwarded on the bodiless auth call: the auth service
/// waited for a body, and every POST got 503 after the whole timeout. With a timeout longer
/// than the client waits, the old behaviour fails this test by the client giving up.
#[test]
fn http_auth_random_answers_a_post_with_a_body_without_forwarding_its_framing() -> Result<()> {
    let envoy = Envoy::example("http_auth_random")
        .plugin_config(r#"{"authCluster": "httpbin", "timeoutMs": "120s"}"#)
        .start()?;
    let resp = envoy.send(&Request::post(EVEN, "a=1"))?;
    assert_eq!(resp.status, 200, "{resp}");
    let upstream = envoy.upstream().expect("the harness starts an upstream");
    let seen = upstream.requests();
    let auth = &seen[0];
    assert_eq!((auth.method.as_str(), auth.target.as_str()), ("GET", EVEN));
    assert_eq!(auth.header("content-length"), None, "{auth:?}");
    assert_eq!(auth.header("transfer-encoding"), None, "{auth:?}");
    assert!(auth.body.is_empty());
    // The request itself goes on with its body.
    assert_eq!(seen[1].method, "POST");
    assert_eq!(seen[1].body, b"a=1");
    Ok(())
}

/// A header value that is not UTF-8 was left out of the auth call silently and still sent
/// upstream: a policy on that header could be bypassed. Now the request is answered 400,
/// even with `failOpen`, and reaches nothing.
#[test]
fn http_auth_random_answers_400_to_a_header_that_is_not_utf8_even_failing_open() -> Result<()> {
    let envoy = Envoy::example("http_auth_random")
        .plugin_config(r#"{"authCluster": "httpbin", "failOpen": true}"#)
        .start()?;
    let mut bytes =
        format!("GET {EVEN} HTTP/1.1\r\nhost: app\r\nconnection: close\r\ncookie: a=").into_bytes();
    bytes.extend_from_slice(b"\xe9\r\n\r\n");
    let answer = String::from_utf8_lossy(&raw_http1(envoy.port(), &bytes)).into_owned();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(
        answer.ends_with("request headers cannot be checked"),
        "{answer}"
    );
    let upstream = envoy.upstream().expect("the harness starts an upstream");
    assert_eq!(
        upstream.request_count(),
        0,
        "neither the auth call nor the request"
    );
    envoy.wait_for_log(
        "call to cluster `httpbin` not sent: the value of header `cookie` is not UTF-8",
        Duration::from_secs(5),
    )?;
    Ok(())
}

/// Timeouts of 2^31 ms and more were accepted, and Envoy then refused every call:
/// `multiple_dispatches` answered `total-dispatched: 0`.
#[test]
fn timeout_of_2_pow_31_ms_is_refused_at_load_and_at_the_call() -> Result<()> {
    let refusal = Envoy::example("multiple_dispatches")
        .plugin_config(r#"{"timeoutMs": 2147483648}"#)
        .start_expect_failure()?;
    assert!(
        refusal.logged(
            "timeoutMs: must be at most 2147483647ms (Envoy reads a signed 32-bit count of milliseconds), got 2147483.648s"
        ),
        "{}",
        refusal.log
    );

    let envoy = hostile().start()?;
    // Envoy's own limit, through the SDK alone: the last value it takes, and the first it
    // refuses.
    assert_eq!(
        envoy.get("/raw-call?timeout_ms=2147483647")?.text(),
        "dispatched\n"
    );
    assert_eq!(
        envoy.get("/raw-call?timeout_ms=2147483648")?.text(),
        "refused: BadArgument\n"
    );
    assert_eq!(
        envoy.get("/call?timeout_ms=2147483647")?.text(),
        "answered 200\n"
    );
    assert_eq!(
        envoy.get("/call?timeout_ms=2147483648")?.text(),
        "refused: call to cluster `httpbin` not sent: the timeout is 2147483648ms or more, and \
         Envoy takes at most 2147483647ms (a signed 32-bit count)\n"
    );
    Ok(())
}

/// Too many or too large call headers came back as "the cluster is unknown, or a
/// pseudo-header is missing". pwf's limits are Envoy's, to the pair and to the byte.
#[test]
fn call_header_limits_are_envoys_and_named_when_hit() -> Result<()> {
    let envoy = hostile().start()?;
    // 1021 headers and the 3 pseudo-headers: 1024 pairs.
    assert_eq!(envoy.get("/raw-call?headers=1021")?.text(), "dispatched\n");
    assert_eq!(
        envoy.get("/raw-call?headers=1022")?.text(),
        "refused: BadArgument\n"
    );
    // The upstream itself answers 400 to that many headers: the call went out.
    assert!(envoy
        .get("/call?headers=1021")?
        .text()
        .starts_with("answered "));
    assert_eq!(
        envoy.get("/call?headers=1022")?.text(),
        "refused: call to cluster `httpbin` not sent: 1025 headers (pseudo-headers included), \
         and Envoy takes at most 1024\n"
    );
    // A value of 1048484 bytes makes the map exactly 1 MiB; one more byte is too much.
    assert_eq!(
        envoy.get("/raw-call?value_bytes=1048484")?.text(),
        "dispatched\n"
    );
    assert_eq!(
        envoy.get("/raw-call?value_bytes=1048485")?.text(),
        "refused: BadArgument\n"
    );
    assert!(envoy
        .get("/call?value_bytes=1048484")?
        .text()
        .starts_with("answered "));
    assert_eq!(
        envoy.get("/call?value_bytes=1048485")?.text(),
        "refused: call to cluster `httpbin` not sent: the headers take 1048577 bytes as the \
         host gets them, and Envoy takes at most 1048576\n"
    );
    // A call with a body: Envoy sets its `content-length` itself.
    assert_eq!(envoy.get("/call?body_bytes=5")?.text(), "answered 200\n");
    let upstream = envoy.upstream().expect("the harness starts an upstream");
    let post = upstream
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("the call with a body");
    assert_eq!(post.header("content-length"), Some("5"));
    assert_eq!(post.body, b"aaaaa");
    Ok(())
}

/// `audit` took `maxBodyBytes` up to 16 MiB, but a body past Envoy's buffer limit (the
/// listener's `per_connection_buffer_limit_bytes`, 1 MiB by default) got Envoy's own 413,
/// not the plugin's. The field now stops at 1 MiB, the example's listener buffers 2 MiB,
/// and each body over the field's limit gets the plugin's 413.
#[test]
fn audit_max_body_bytes_is_bounded_by_envoys_buffer_limit() -> Result<()> {
    let refusal = Envoy::example("audit")
        .plugin_config(r#"{"maxBodyBytes": 16777216}"#)
        .start_expect_failure()?;
    assert!(
        refusal.logged("maxBodyBytes: must be in 1..=1048576, got 16777216"),
        "{}",
        refusal.log
    );
    let envoy = Envoy::example("audit")
        .plugin_config(r#"{"maxBodyBytes": 1048576}"#)
        .start()?;
    let resp = envoy.send(&Request::post("/anything", vec![b'a'; 1048577]))?;
    assert_eq!(resp.status, 413);
    assert_eq!(
        resp.text(),
        "request body exceeds the limit of 1048576 bytes"
    );
    // A body past the listener's buffer too is refused as well, by whichever
    // sees it first: the plugin, or Envoy's buffer limit when the body
    // arrives faster than the plugin's body phases run (seen in one run of
    // three under load).
    let resp = envoy.send(&Request::post("/anything", vec![b'a'; 3 << 20]))?;
    assert_eq!(resp.status, 413);
    assert!(
        [
            "request body exceeds the limit of 1048576 bytes",
            "Payload Too Large"
        ]
        .contains(&resp.text().as_str()),
        "{}",
        resp.text()
    );
    let resp = envoy.send(&Request::post("/status/204", vec![b'a'; 1048576]))?;
    assert_eq!(resp.status, 204);
    Ok(())
}

/// Under overload a refused call logged one error line per call (125,370 lines in 30 s at
/// 512 connections). With a circuit breaker that admits one request at a time, every call
/// `multiple_dispatches` makes is refused; the lines stay within the limit (10 per 10 s,
/// then one summary), and the counter counts every refusal.
#[test]
fn overload_refusing_every_call_logs_a_bounded_number_of_lines() -> Result<()> {
    let template = std::fs::read_to_string(
        envoy_harness::repo_root().join("examples/multiple_dispatches/envoy.yaml"),
    )
    .expect("the example's envoy.yaml");
    let one_at_a_time = template.replacen(
        "    connect_timeout: 5s\n",
        "    connect_timeout: 5s\n    circuit_breakers:\n      thresholds:\n      - { max_connections: 1, max_pending_requests: 1, max_requests: 1 }\n",
        1,
    );
    assert_ne!(
        one_at_a_time, template,
        "the cluster gets a circuit breaker"
    );
    let envoy = Envoy::yaml(&one_at_a_time)
        .wasm_of("multiple_dispatches")
        .plugin_config(
            r#"{"dispatchCluster": "httpbin", "dispatchCount": 10, "dispatchPath": "/uuid"}"#,
        )
        .concurrency(1)
        .start()?;
    let requests = 50;
    for _ in 0..requests {
        let resp = envoy.get("/anything")?;
        assert_eq!(resp.status, 200);
    }
    let refused: Vec<String> = envoy
        .wasm_log()
        .into_iter()
        .filter(|l| l.contains("refused by Envoy"))
        .collect();
    assert!(!refused.is_empty());
    // 10 lines per 10 s: one interval, unless the machine is slow enough for the requests
    // to span more, each of which then starts with a summary line.
    let summaries = envoy
        .wasm_log()
        .iter()
        .filter(|l| l.contains("more lines like the one above were not logged"))
        .count();
    assert!(
        refused.len() <= 10 * (summaries + 1),
        "{} lines:\n{}",
        refused.len(),
        refused.join("\n")
    );
    assert!(
        refused[0].contains(
            "call to cluster `httpbin` refused by Envoy (internal failure): the call ended as it \
             started; most likely the cluster's circuit breaker is open (too many calls to it at \
             once), or it has no healthy host"
        ),
        "{}",
        refused[0]
    );
    let counted = envoy
        .stat("wasmcustom.multiple_dispatches.refused")?
        .unwrap_or(0);
    // At most one call of each request gets past the breaker; the counter has the rest.
    assert!(counted >= 9 * requests as u64, "counted {counted}");
    Ok(())
}

/// The listener of `lds.yaml`: `add_header` with `config`.
fn lds_listener(wasm: &std::path::Path, config: &str) -> String {
    format!(
        r#"resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: main
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
  filter_chains:
  - filters:
    - name: envoy.filters.network.http_connection_manager
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
        stat_prefix: main
        route_config:
          virtual_hosts:
          - {{ name: all, domains: ["*"], routes: [{{ match: {{ prefix: "/" }}, route: {{ cluster: httpbin }} }}] }}
        http_filters:
        - name: envoy.filters.http.wasm
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
            config:
              name: add_header
              vm_config:
                vm_id: add_header
                runtime: envoy.wasm.runtime.v8
                code: {{ local: {{ filename: {wasm} }} }}
              configuration:
                "@type": type.googleapis.com/google.protobuf.StringValue
                value: '{config}'
        - name: envoy.filters.http.router
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"#,
        wasm = wasm.display()
    )
}

/// A refused configuration arriving by LDS: the update is rejected, traffic goes on with the
/// previous one, and each worker reports the refusal (what docs/concepts.md says).
#[test]
fn lds_update_with_a_bad_configuration_is_rejected_and_traffic_goes_on() -> Result<()> {
    let wasm = envoy_harness::built_wasm_artifact("add_header")?;
    let dir = envoy_harness::repo_root()
        .join("envoy/.run")
        .join(format!("lds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory for lds.yaml");
    let lds = dir.join("lds.yaml");
    let write = |config: &str| {
        let next = dir.join("lds.next.yaml");
        std::fs::write(&next, lds_listener(&wasm, config)).expect("write lds.next.yaml");
        std::fs::rename(&next, &lds).expect("move it over lds.yaml");
    };
    write(r#"{"name": "x-pwf", "value": "first"}"#);
    let bootstrap = format!(
        r#"node: {{ id: e2e, cluster: e2e }}
dynamic_resources:
  lds_config:
    resource_api_version: V3
    path_config_source: {{ path: {lds} }}
static_resources:
  clusters:
  - name: httpbin
    connect_timeout: 5s
    type: STATIC
    load_assignment:
      cluster_name: httpbin
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address:
                address: 127.0.0.1
                port_value: 18080 # pwf:upstream_port
admin:
  address:
    socket_address:
      address: 127.0.0.1
      port_value: 18001 # pwf:admin_port
"#,
        lds = lds.display()
    );
    let envoy = Envoy::yaml(&bootstrap).concurrency(2).start()?;
    assert_eq!(envoy.get("/anything")?.header("x-pwf"), Some("first"));

    write(r#"{"name": "", "value": "second"}"#);
    envoy.wait_for_log("Filesystem config update rejected", Duration::from_secs(10))?;
    let fail_closed = "Plugin configured to fail closed failed to load";
    let log = envoy.log();
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    // The plugin's configure ran once, on the main thread, and refused...
    assert_eq!(
        count("] wasm log add_header: add_header: invalid plugin configuration: name: must not be empty"),
        1,
        "{log}"
    );
    // ...and Envoy reports it at critical level on the main thread, and on none, one or
    // both of the 2 workers, in their own time (2 or 3 lines in all, measured).
    assert_eq!(count("Plugin add_header failed to load"), 1, "{log}");
    assert!((1..=3).contains(&count(fail_closed)), "{log}");
    assert_eq!(
        count("lds: listener 'main' config rejected: Unable to create Wasm plugin add_header"),
        1
    );
    // Traffic goes on through the previous configuration.
    assert_eq!(envoy.get("/anything")?.header("x-pwf"), Some("first"));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
