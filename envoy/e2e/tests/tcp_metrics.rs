//! `examples/tcp_metrics` in Envoy: a TCP round trip through a `tcp_proxy`
//! listener, with the network filter's counters in `/stats`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use envoy_harness::{Envoy, Result};

/// Sends `request` over one raw TCP connection and reads until the peer closes.
fn round_trip(port: u16, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to Envoy");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set a read timeout");
    stream.write_all(request).expect("write the request");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read the answer");
    answer
}

#[test]
fn tcp_metrics_round_trip_is_counted_exactly() -> Result<()> {
    let envoy = Envoy::example("tcp_metrics").start()?;
    let request = b"GET /anything HTTP/1.1\r\nhost: tcp\r\nconnection: close\r\n\r\n";
    let answer = round_trip(envoy.port(), request);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("\"/anything\""),
        "the upstream echoed the path: {text}"
    );

    // The counters are updated as the bytes pass; the close is logged.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let upstream_bytes = envoy.stat("wasmcustom.tcp_metrics.upstream_bytes")?;
        if upstream_bytes == Some(answer.len() as u64) || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(envoy.stat("wasmcustom.tcp_metrics.connections")?, Some(1));
    assert_eq!(
        envoy.stat("wasmcustom.tcp_metrics.downstream_bytes")?,
        Some(request.len() as u64)
    );
    assert_eq!(
        envoy.stat("wasmcustom.tcp_metrics.upstream_bytes")?,
        Some(answer.len() as u64)
    );
    envoy.wait_for_log(
        &format!("{} bytes in, {} bytes out", request.len(), answer.len()),
        Duration::from_secs(5),
    )?;
    // A zero-byte end of stream once made a zero increment fail and close the connection.
    let errors: Vec<String> = envoy
        .wasm_log()
        .into_iter()
        .filter(|l| l.contains("[error]"))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    Ok(())
}

#[test]
fn tcp_metrics_counts_every_connection() -> Result<()> {
    let envoy = Envoy::example("tcp_metrics")
        .plugin_config(r#"{"prefix": "e2e"}"#)
        .start()?;
    for _ in 0..3 {
        round_trip(
            envoy.port(),
            b"GET /status/204 HTTP/1.1\r\nhost: tcp\r\nconnection: close\r\n\r\n",
        );
    }
    assert_eq!(envoy.stat("wasmcustom.e2e.connections")?, Some(3));
    Ok(())
}
