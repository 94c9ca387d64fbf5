//! One GET per connection, timed, through the harness's client: the checks
//! and latency samples of the Envoy part (the load itself comes from `wrk`).

use std::time::{Duration, Instant};

pub(crate) use envoy_harness::Response;

use crate::Result;

/// GETs `path` from 127.0.0.1:`port` on a new connection; returns the
/// response and how long it took, from the connect to the last byte of the
/// body.
pub(crate) fn get(port: u16, path: &str) -> Result<(Response, Duration)> {
    let start = Instant::now();
    let response = envoy_harness::Client::new(port).get(path)?;
    Ok((response, start.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_returns_the_status_headers_and_body() {
        let upstream = envoy_upstream::Upstream::start().unwrap();
        let (response, elapsed) = get(upstream.port(), "/body?b=hello&status=201").unwrap();
        assert_eq!(response.status, 201);
        assert_eq!(response.body, b"hello");
        assert_eq!(response.header("Content-Length"), Some("5"));
        assert!(elapsed > Duration::ZERO);
    }

    #[test]
    fn get_fails_when_nothing_listens() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        assert!(get(port, "/").is_err());
    }
}
