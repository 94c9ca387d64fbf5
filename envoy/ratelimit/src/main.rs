//! Runs the test gRPC server (rate limit service and echo) on a port, for trying configs by
//! hand: `cargo run -p envoy-ratelimit -- [port] [limit]`.

use std::net::{Ipv4Addr, SocketAddr};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(8081);
    let limit: u32 = args.next().and_then(|l| l.parse().ok()).unwrap_or(10);
    let server =
        envoy_ratelimit::RateLimitServer::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    server.set_limit(limit);
    println!(
        "rate limit service (limit {limit} per descriptor) on 127.0.0.1:{}",
        server.port()
    );
    loop {
        std::thread::park();
    }
}
