//! pwf's gRPC streams in Envoy: `envoy/testdata/grpc-stream-plugin` streams words to the
//! test echo service (`envoy/ratelimit`).

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use envoy_harness::{Envoy, Request, Result, Setup};

fn plugin() -> Setup {
    Envoy::template("envoy/testdata/grpc-probe/envoy.yaml").wasm_of("grpc-stream-plugin")
}

#[test]
fn grpc_stream_echoes_every_message_then_ends_with_the_trailers() -> Result<()> {
    let envoy = plugin().start()?;
    let resp = envoy.send(
        &Request::get("/anything")
            .header("x-say", "one,two,three")
            .header("x-md", "x-test-trailer=t1=v1"),
    )?;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "one\ntwo\nthree\ntrailer t1=v1\n");
    Ok(())
}

#[test]
fn grpc_stream_closed_with_a_status_ends_with_the_error() -> Result<()> {
    let envoy = plugin().start()?;
    let resp = envoy.send(
        &Request::get("/anything")
            .header("x-say", "one")
            .header("x-md", "x-test-status=9,x-test-message=stop"),
    )?;
    assert_eq!(resp.status, 502);
    assert_eq!(
        resp.text(),
        "gRPC call to cluster `grpc` answered status 9 (FAILED_PRECONDITION): stop\n"
    );
    Ok(())
}

#[test]
fn grpc_stream_open_when_the_client_leaves_is_reset_upstream() -> Result<()> {
    let envoy = plugin().start()?;
    client_leaves_and_the_stream_is_reset(&envoy, "")
}

/// A gRPC stream belongs to the HTTP stream that opened it, even when a plugin-wide task
/// holds it: before pwf cancelled such a stream at its HTTP stream's end, it stayed open
/// upstream after the client left.
#[test]
fn grpc_stream_handed_to_a_plugin_task_is_reset_when_its_client_leaves() -> Result<()> {
    let envoy = plugin().start()?;
    client_leaves_and_the_stream_is_reset(&envoy, "x-hand-over: 1\r\n")?;
    envoy.wait_for_log(
        "ended: gRPC call to cluster `grpc` cancelled: the stream that opened it ended first",
        Duration::from_secs(5),
    )?;
    Ok(())
}

/// Sends a request whose gRPC stream hangs (with `extra` header lines), closes the client
/// connection once the stream reaches the service, and waits for the service to see it
/// reset.
fn client_leaves_and_the_stream_is_reset(envoy: &Envoy, extra: &str) -> Result<()> {
    let server = envoy
        .ratelimit()
        .expect("the harness started the gRPC server");
    let mut socket = TcpStream::connect(("127.0.0.1", envoy.port())).expect("connecting");
    let request = format!(
        "GET /anything HTTP/1.1\r\nhost: app\r\nx-say: one\r\nx-md: x-test-hang=1\r\n{extra}\r\n"
    );
    socket
        .write_all(request.as_bytes())
        .expect("writing the request");
    wait_until("the stream reaches the service", || server.in_flight() == 1);
    drop(socket);
    wait_until("the stream is reset", || {
        server.in_flight() == 0 && server.reset_by_client() == 1
    });
    Ok(())
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 5 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}
