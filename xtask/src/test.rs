//! `cargo xtask test` and `cargo xtask e2e`.

use std::path::PathBuf;

use envoy_harness::{examples, repo_root, tail, Envoy, WASM_TARGET};

use crate::setup;
use crate::steps::{cargo, Steps};

/// The raw proxy-wasm plugin the harness's own e2e tests run.
const PROBE: &str = "probe-plugin";
/// The pwf plugin without `pwf::main!` that Envoy must refuse at load.
const UNREGISTERED: &str = "unregistered-plugin";
/// The pwf plugin the hostile-input e2e tests run.
const HOSTILE: &str = "hostile-plugin";
/// The per-key `SharedCounter` limiter the rate_limit memory test compares with.
const PER_KEY_COUNTER: &str = "per-key-counter";
/// The plugin with faults only its module shows, run by pwf-test's wasm-mode tests.
const BROKEN: &str = "broken-plugin";
/// The plugin the WASI e2e tests measure Envoy with.
const WASI: &str = "wasi-plugin";
/// The bare-ABI plugin that measures Envoy's gRPC calls and streams.
const GRPC_PROBE: &str = "grpc-probe";
/// The crates published on crates.io, in dependency order.
const PUBLISHED: [&str; 6] = [
    "pwf-macros",
    "pwf",
    "pwf-test",
    "envoy-upstream",
    "envoy-ratelimit",
    "envoy-harness",
];
/// The pwf plugin the gRPC stream e2e tests run.
const GRPC_STREAM: &str = "grpc-stream-plugin";
/// The plugin the bench builds to measure what gRPC costs a `.wasm` (`bench/grpc`).
const GRPC_SIZE: &str = "grpc_size";
/// The crate holding the Envoy e2e tests.
const E2E: &str = "envoy-e2e";
/// The test of `bench/runner/tests/budget.rs`: a step of its own, after the release wasm
/// builds, not one of the unit tests.
const BUDGET_TEST: &str = "examples_stay_within_the_size_and_instruction_budget";

/// Which steps to run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Everything: the project's test command.
    All,
    /// The wasm builds, config validation and e2e tests.
    E2e,
}

pub(crate) fn run(scope: Scope) -> Result<(), String> {
    let examples = examples().map_err(|e| e.to_string())?;
    // Everything built for wasm32-wasip1: the core, the examples, the test plugins.
    let mut wasm_packages: Vec<&str> = examples.iter().map(|e| e.package.as_str()).collect();
    wasm_packages.extend([
        PROBE,
        UNREGISTERED,
        HOSTILE,
        PER_KEY_COUNTER,
        BROKEN,
        WASI,
        GRPC_PROBE,
        GRPC_STREAM,
        GRPC_SIZE,
    ]);
    let packages = |first: &[&'static str]| -> Vec<String> {
        first
            .iter()
            .map(|s| (*s).to_owned())
            .chain(
                wasm_packages
                    .iter()
                    .flat_map(|p| ["-p".to_owned(), (*p).to_owned()]),
            )
            .collect()
    };

    let mut steps = Steps::new(if scope == Scope::All { 14 } else { 4 });
    steps.run(
        "install what is missing (wasm32-wasip1 target, Envoy 1.40)",
        || {
            setup::wasm_target()?;
            setup::envoy().map(drop)
        },
    )?;
    if scope == Scope::All {
        steps.run("rustfmt", || cargo(&["fmt", "--all", "--", "--check"]))?;
        steps.run("clippy (host)", || {
            cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ])
        })?;
        steps.run(&format!("clippy ({WASM_TARGET})"), || {
            let mut args = packages(&["clippy", "--target", WASM_TARGET, "-p", "pwf"]);
            args.extend(["--", "-D", "warnings"].map(str::to_owned));
            cargo(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })?;
    }
    // One package per build: cargo unifies a dependency's features over the packages of a
    // build, so building them together would give each module the pwf features of every
    // other (the `grpc-streams` callbacks in all of them). Each module is built as its
    // own crate's `cargo build` builds it, and as pwf-test's wasm mode rebuilds it.
    steps.run("release wasm builds", || {
        wasm_packages.iter().try_for_each(|package| {
            cargo(&["build", "--target", WASM_TARGET, "--release", "-p", package])
        })
    })?;
    if scope == Scope::All {
        // The wasm-mode tests of pwf-test run the release modules built above.
        steps.run("unit tests", || {
            cargo(&[
                "test",
                "--workspace",
                "--exclude",
                E2E,
                "--",
                "--skip",
                BUDGET_TEST,
            ])
        })?;
        steps.run(
            "the examples' tests against their release modules (PWF_TEST_MODE=wasm)",
            || {
                let mut args = vec!["test".to_owned()];
                for example in &examples {
                    args.extend(["-p".to_owned(), example.package.clone()]);
                }
                let shown = format!("PWF_TEST_MODE=wasm cargo {}", args.join(" "));
                crate::steps::run(
                    std::process::Command::new(crate::steps::cargo_bin())
                        .args(&args)
                        .env("PWF_TEST_MODE", "wasm"),
                    &shown,
                )
            },
        )?;
        steps.run(
            "cargo package: the published crates, built from their packages",
            || {
                // A package left by an earlier run with other contents makes cargo refuse
                // the new one ("checksum ... changed between lock files").
                let packages = envoy_harness::target_dir().join("package");
                if packages.exists() {
                    std::fs::remove_dir_all(&packages)
                        .map_err(|e| format!("removing {}: {e}", packages.display()))?;
                }
                let mut args = vec!["package", "--quiet"];
                for package in PUBLISHED {
                    args.extend(["-p", package]);
                }
                cargo(&args)
            },
        )?;
        steps.run(
            "the snippet check fails on a broken snippet (docs/check)",
            crate::docs_check::broken_snippet_fails_the_check,
        )?;
        steps.run(
            "size and instruction budget (bench/budget.toml)",
            check_budget,
        )?;
    }
    steps.run(
        "envoy --mode validate (every Envoy config)",
        validate_configs,
    )?;
    steps.run("Envoy e2e tests", || cargo(&["test", "-p", E2E]))?;
    if scope == Scope::All {
        steps.run(
            "OCI image layout of add_header, written and verified",
            || {
                let root = repo_root();
                let image = crate::oci::package(&root, "add_header", "latest")
                    .map_err(|e| e.to_string())?;
                println!(
                    "{} (manifest {}, wasm {} bytes)",
                    image.layout.display(),
                    image.manifest_digest,
                    image.wasm_size
                );
                Ok(())
            },
        )?;
        steps.run(
            "a plugin from `cargo xtask new`: wasm build, its test natively and in wasm mode, Envoy",
            crate::template_check::run,
        )?;
    }
    steps.summary();
    Ok(())
}

/// Holds the examples' sizes and instructions per request to `bench/budget.toml`, with the
/// release builds of the step before. Selected by name among the test targets the unit tests
/// built: cargo then resolves the same features and finds everything built, where
/// `--test budget` or `cargo run -p pwf-bench` would build wasmtime a second time.
fn check_budget() -> Result<(), String> {
    cargo(&[
        "test",
        "--quiet",
        "--workspace",
        "--exclude",
        E2E,
        "--tests",
        "--",
        "--exact",
        BUDGET_TEST,
    ])
}

/// Every Envoy config: the `*.yaml` under `envoy/` and `examples/` (hidden directories,
/// `target` and Docker Compose files skipped).
fn configs() -> Vec<PathBuf> {
    let root = repo_root();
    let mut found = Vec::new();
    let mut stack = vec![root.join("envoy"), root.join("examples")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    stack.push(path);
                }
            } else if (name.ends_with(".yaml") || name.ends_with(".yml"))
                && !name.starts_with("docker-compose")
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn validate_configs() -> Result<(), String> {
    let root = repo_root();
    let configs = configs();
    if configs.is_empty() {
        return Err("no Envoy configs found under envoy/ or examples/".to_owned());
    }
    let mut failed = Vec::new();
    for config in &configs {
        let shown = config.strip_prefix(&root).unwrap_or(config);
        // As shipped, except that a `target/` wasm path follows the target directory in use.
        let validation = Envoy::template(config)
            .validate()
            .map_err(|e| e.to_string())?;
        if validation.ok {
            println!("ok      {}", shown.display());
        } else {
            println!(
                "FAILED  {}\n{}",
                shown.display(),
                tail(&validation.output, 25)
            );
            failed.push(shown.display().to_string());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("Envoy rejects {}", failed.join(", ")))
    }
}
