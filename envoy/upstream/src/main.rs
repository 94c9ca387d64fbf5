//! `envoy-upstream [--port N]`: serves the httpbin stand-in on `127.0.0.1:N` (default 18080,
//! the port the shipped Envoy configs point at; 0 picks a free one) and prints the bound port
//! on the first line of stdout.

use std::io::Write;
use std::process::ExitCode;

const USAGE: &str = "usage: envoy-upstream [--port N]   (default 18080; 0 picks a free port)";

fn main() -> ExitCode {
    let mut port: u16 = 18080;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => match args.next().map(|p| p.parse()) {
                Some(Ok(p)) => port = p,
                _ => {
                    eprintln!("--port needs a port number\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument `{other}`\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let upstream = match envoy_upstream::Upstream::bind(("127.0.0.1", port)) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("envoy-upstream: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{}", upstream.port())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    drop(out);
    upstream.wait();
    ExitCode::SUCCESS
}
