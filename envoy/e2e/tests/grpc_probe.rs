//! What Envoy 1.40 does with proxy-wasm gRPC calls and streams, measured with the bare-ABI
//! probe (`envoy/testdata/grpc-probe`, no SDK: it sees every status and callback as Envoy
//! gives them) against the test gRPC server (`envoy/ratelimit`). pwf's gRPC layer and the
//! native test host follow these.
//!
//! Not a test here, because it stops Envoy: `service` bytes that parse as a
//! `GrpcService` without a target (empty bytes, or a cluster name such as `hi`, which is a
//! valid protobuf varint field) abort the whole Envoy process (`panic: unset oneof`,
//! `async_client_manager_impl.cc`). pwf therefore never sends a bare cluster name.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use envoy_harness::{Envoy, Request, Result, Setup};

const UNARY: &str = "pwf.test.Echo/Unary";
const STREAM: &str = "pwf.test.Echo/Stream";

fn probe() -> Setup {
    Envoy::template("envoy/testdata/grpc-probe/envoy.yaml").wasm_of("grpc-probe")
}

/// The probe's events for one request, one a line.
fn ask(envoy: &Envoy, headers: &[(&str, &str)]) -> Result<String> {
    let mut req = Request::get("/anything");
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = envoy.send(&req)?;
    assert_eq!(resp.header("x-probe-done"), Some("1"), "{}", resp.text());
    Ok(resp.text())
}

fn call(envoy: &Envoy, service: &str, extra: &[(&str, &str)]) -> Result<String> {
    let mut headers = vec![
        ("x-service", service),
        ("x-method", UNARY),
        ("x-msg", "hello"),
    ];
    headers.extend_from_slice(extra);
    ask(envoy, &headers)
}

#[test]
fn grpc_call_to_a_cluster_by_name_or_by_grpc_service_lands_as_one_receive() -> Result<()> {
    let envoy = probe().start()?;
    for service in ["name:grpc", "proto:grpc", "proto:grpc,auth.example"] {
        let events = call(&envoy, service, &[])?;
        let lines: Vec<&str> = events.lines().collect();
        assert_eq!(lines.len(), 2, "{service}: {events}");
        assert!(lines[0].starts_with("dispatch status=0 token="), "{events}");
        // The callback comes to the root context (1), whichever context sent the call.
        assert!(
            lines[1].contains("receive callback_ctx=1")
                && lines[1].contains("size=5 body=status=0 \"hello\""),
            "{events}"
        );
    }
    Ok(())
}

#[test]
fn grpc_call_to_an_unknown_cluster_fails_the_dispatch() -> Result<()> {
    let envoy = probe().start()?;
    // A bare name: ParseFailure (4).
    assert_eq!(
        call(&envoy, "name:nope", &[])?,
        "dispatch status=4 token=0\n"
    );
    // A GrpcService: InternalFailure (10), and then a close (14, "Cluster not available")
    // for a token the plugin never received, on the root context.
    assert_eq!(
        call(&envoy, "proto:nope", &[])?,
        "dispatch status=10 token=0\n"
    );
    envoy.wait_for_log(
        "(no waiter) close callback_ctx=1 token=",
        Duration::from_secs(5),
    )?;
    assert!(envoy
        .log()
        .contains("status_code=14 grpc_status=status=0 code=14 message=\"Cluster not available\""));
    Ok(())
}

#[test]
fn grpc_call_refused_or_timed_out_closes_with_unavailable_from_envoy() -> Result<()> {
    let envoy = probe().start()?;
    let refused = call(&envoy, "proto:refused", &[])?;
    assert!(
        refused.contains("close callback_ctx=1")
            && refused.contains("status_code=14")
            && refused
                .contains("message=\"upstream connect error or disconnect/reset before headers.")
            && !refused.contains("via_upstream"),
        "{refused}"
    );
    let server = envoy
        .ratelimit()
        .expect("the harness started the gRPC server");
    let resets = server.reset_by_client();
    // The server would answer after 3 s; Envoy's own 300 ms timer closes the call first.
    let timed_out = call(
        &envoy,
        "proto:grpc",
        &[("x-timeout", "300"), ("x-md", "x-test-delay-ms=3000")],
    )?;
    assert!(
        timed_out.contains("status_code=14")
            && timed_out.contains("message=\"upstream request timeout{response_timeout}\""),
        "{timed_out}"
    );
    // The server saw the deadline as `grpc-timeout`, and the reset when it passed.
    let seen = server.calls();
    assert_eq!(seen.last().unwrap().metadata("grpc-timeout"), Some("300m"));
    wait_until(|| server.reset_by_client() == resets + 1);
    Ok(())
}

#[test]
fn grpc_call_without_timeout_sends_grpc_timeout_zero() -> Result<()> {
    let envoy = probe().start()?;
    call(&envoy, "proto:grpc", &[])?;
    let seen = envoy.ratelimit().unwrap().calls();
    assert_eq!(seen.last().unwrap().metadata("grpc-timeout"), Some("0m"));
    Ok(())
}

#[test]
fn grpc_call_with_a_non_ok_status_closes_with_the_message_and_no_trailers() -> Result<()> {
    let envoy = probe().start()?;
    let events = call(
        &envoy,
        "proto:grpc",
        &[(
            "x-md",
            "x-test-status=7,x-test-message=no way,x-test-trailer=t1=v1",
        )],
    )?;
    let lines: Vec<&str> = events.lines().collect();
    // No trailing-metadata callback for a unary call: the trailer is lost.
    assert_eq!(lines.len(), 2, "{events}");
    assert!(
        lines[1].contains("status_code=7")
            && lines[1].contains("code=7 message=\"no way{via_upstream}\""),
        "{events}"
    );
    // An OK answer with trailers and header metadata: one receive, no metadata callbacks.
    let events = call(
        &envoy,
        "proto:grpc",
        &[("x-md", "x-test-trailer=t1=v1,x-test-header=h1=v1")],
    )?;
    assert_eq!(events.lines().count(), 2, "{events}");
    assert!(events.contains("receive callback_ctx=1"), "{events}");
    Ok(())
}

#[test]
fn grpc_stream_delivers_metadata_messages_trailers_and_close() -> Result<()> {
    let envoy = probe().start()?;
    let events = ask(
        &envoy,
        &[
            ("x-mode", "stream"),
            ("x-service", "proto:grpc"),
            ("x-method", STREAM),
            ("x-msg", "s1"),
            ("x-end", "1"),
            ("x-md", "x-test-trailer=t1=v1,x-test-header=h1=v1"),
        ],
    )?;
    let kinds: Vec<&str> = events
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        [
            "open",
            "send",
            "initial_metadata",
            "receive",
            "trailing_metadata",
            "close"
        ],
        "{events}"
    );
    assert!(
        events.contains("[:status=200,content-type=application/grpc,h1=v1,"),
        "{events}"
    );
    assert!(events.contains("[grpc-status=0,t1=v1]"), "{events}");
    assert!(events.contains("status_code=0"), "{events}");

    // proxy_grpc_close half-closes: the server ends the stream and the close still comes.
    let events = ask(
        &envoy,
        &[
            ("x-mode", "stream-close"),
            ("x-service", "proto:grpc"),
            ("x-method", STREAM),
            ("x-msg", "s1"),
        ],
    )?;
    assert!(
        events.contains("close status=0\ntrailing_metadata"),
        "{events}"
    );
    assert!(
        events.ends_with("status_code=0 grpc_status=status=0 code=0 message=\"via_upstream\"\n")
    );

    // A trailers-only refusal: empty initial metadata, the status in the trailers.
    let events = ask(
        &envoy,
        &[
            ("x-mode", "stream"),
            ("x-service", "proto:grpc"),
            ("x-method", STREAM),
            ("x-msg", "s1"),
            ("x-md", "x-test-status=9,x-test-message=stop"),
        ],
    )?;
    assert!(
        events.contains("initial_metadata callback_ctx=1"),
        "{events}"
    );
    assert!(events.contains("n=0 status=0 []"), "{events}");
    assert!(
        events.contains("code=9 message=\"stop{via_upstream}\""),
        "{events}"
    );
    Ok(())
}

#[test]
fn grpc_calls_and_streams_outlive_their_http_stream_unless_cancelled() -> Result<()> {
    let envoy = probe().start()?;
    let server = envoy.ratelimit().unwrap();
    for (mode, method) in [("call", UNARY), ("stream", STREAM)] {
        let before = server.in_flight();
        let mut socket =
            TcpStream::connect(("127.0.0.1", envoy.port())).expect("connecting to Envoy");
        write!(
            socket,
            "GET /anything HTTP/1.1\r\nhost: x\r\nx-mode: {mode}\r\nx-service: proto:grpc\r\n\
             x-method: {method}\r\nx-msg: abort\r\nx-md: x-test-hang=1\r\n\r\n"
        )
        .expect("writing the request");
        wait_until(|| server.in_flight() == before + 1);
        let resets = server.reset_by_client();
        drop(socket);
        // The client is gone and its stream done; the call is still open upstream.
        envoy.wait_for_log("done", Duration::from_secs(5))?;
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(server.in_flight(), before + 1, "{mode}");
        assert_eq!(server.reset_by_client(), resets, "{mode}");
    }
    // proxy_grpc_cancel resets the call upstream.
    let resets = server.reset_by_client();
    let events = ask(
        &envoy,
        &[
            ("x-mode", "call-cancel"),
            ("x-service", "proto:grpc"),
            ("x-method", UNARY),
            ("x-msg", "c"),
            ("x-md", "x-test-delay-ms=2000"),
        ],
    )?;
    assert!(events.contains("cancel status=0"), "{events}");
    wait_until(|| server.reset_by_client() == resets + 1);
    Ok(())
}

fn wait_until(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "condition not met within 5 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}
