//! The test command's proof that `cargo xtask new` makes a working plugin:
//! a crate generated from `templates/plugin` builds for wasm32-wasip1, passes
//! its own test natively and against its module, and runs in Envoy.

use std::path::{Path, PathBuf};
use std::process::Command;

use envoy_harness::{repo_root, tail, target_dir, Envoy, WASM_TARGET};

use crate::scaffold;
use crate::steps;

/// The generated crate's name: the one docs/getting-started.md uses, so that the log lines
/// it shows are the ones checked here.
const NAME: &str = "hello";
/// What the generated plugin logs when configured, as docs/getting-started.md shows it.
const CONFIGURED: &str = "wasm log hello: hello: setting `x-hello: world` on every response";
/// What Envoy logs when the generated plugin refuses `{"name": ""}`, as
/// docs/getting-started.md shows it.
const REFUSED: [&str; 2] = [
    "wasm log hello: hello: invalid plugin configuration: name: must not be empty",
    "Plugin hello failed to load",
];

/// Generates the crate under the target directory, then builds, tests and
/// runs it.
pub(crate) fn run() -> Result<(), String> {
    let root = repo_root();
    let work = target_dir().join("template-check");
    let dir = work.join(NAME);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("removing {}: {e}", dir.display()))?;
    }
    let written = scaffold::new_plugin(NAME, &dir, &root.join("pwf")).map_err(|e| e.to_string())?;
    println!("generated {} files in {}", written.len(), dir.display());
    // The workspace's lock file pins the same dependency versions, so the
    // generated crate builds from the local cargo cache.
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))
        .map_err(|e| format!("copying Cargo.lock: {e}"))?;
    // A target directory of its own that survives between runs.
    let target = work.join("target");

    let cargo = |args: &[&str], mode: &str| -> Result<(), String> {
        let mut cmd = Command::new(steps::cargo_bin());
        cmd.args(args)
            .env("CARGO_TARGET_DIR", &target)
            .env("PWF_TEST_MODE", mode);
        steps::run_in(
            &mut cmd,
            &format!(
                "(in {}) PWF_TEST_MODE={mode} cargo {}",
                dir.display(),
                args.join(" ")
            ),
            &dir,
        )
    };
    cargo(&["build", "--target", WASM_TARGET, "--release"], "native")?;
    // The plugin's own test, natively and against the module just built.
    cargo(&["test"], "native")?;
    cargo(&["test"], "wasm")?;

    let wasm: PathBuf = target
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{}.wasm", NAME.replace('-', "_")));
    run_in_envoy(&dir.join("envoy.yaml"), &wasm)
}

/// Runs the generated plugin in Envoy. Envoy's log is shown only when this fails (or with
/// `PWF_ENVOY_LOG=1`): on success the test command prints one line for it.
fn run_in_envoy(config: &Path, wasm: &Path) -> Result<(), String> {
    let envoy = Envoy::template(config)
        .wasm(wasm)
        .quiet()
        .start()
        .map_err(|e| e.to_string())?;
    let with_log =
        |why: String| format!("{why}\n--- envoy log tail ---\n{}", tail(&envoy.log(), 40));
    let response = envoy
        .get("/anything")
        .map_err(|e| with_log(e.to_string()))?;
    println!(
        "GET /anything through the generated plugin: {} with x-hello: {:?}",
        response.status,
        response.header("x-hello")
    );
    // The line the generated README shows, as Envoy writes it.
    envoy
        .wait_for_log(CONFIGURED, std::time::Duration::from_secs(10))
        .map_err(|e| with_log(e.to_string()))?;
    if response.status != 200 || response.header("x-hello") != Some("world") {
        return Err(with_log(format!(
            "the generated plugin did not set `x-hello: world`: status {}, headers {:?}",
            response.status, response.headers
        )));
    }
    drop(envoy);
    // A configuration the plugin refuses: Envoy exits, saying why.
    let refusal = Envoy::template(config)
        .wasm(wasm)
        .plugin_config(r#"{"name": ""}"#)
        .quiet()
        .start_expect_failure()
        .map_err(|e| e.to_string())?;
    if let Some(missing) = REFUSED.iter().find(|line| !refusal.log.contains(*line)) {
        return Err(format!(
            "Envoy refusing {{\"name\": \"\"}} did not log `{missing}` (exit {}):\n{}",
            refusal.status,
            tail(&refusal.log, 40)
        ));
    }
    println!(
        "{{\"name\": \"\"}} refused: Envoy exited with {}",
        refusal.status
    );
    Ok(())
}

/// The crate `cargo xtask generate-check` makes with `cargo generate`.
const GENERATED: &str = "gen-demo";

/// `cargo xtask generate-check`: `templates/plugin` as a `cargo generate` template. Generates
/// a crate from it with `cargo generate` (which the user installs: `cargo install
/// cargo-generate`), takes pwf's crates from this checkout instead of crates.io (where they
/// are not published yet) with the `[patch.crates-io]` section `cargo xtask new` writes,
/// and runs the crate's `cargo test`: its native tests and its e2e test in Envoy.
///
/// Not a step of `cargo xtask test`: that installs everything it needs itself, and building
/// cargo-generate would add minutes to every clean run for one check.
pub(crate) fn cargo_generate() -> Result<(), String> {
    let root = repo_root();
    let envoy = crate::setup::envoy()?;
    let work = target_dir().join("template-check");
    let out = work.join("cargo-generate");
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| format!("removing {}: {e}", out.display()))?;
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let template = root.join("templates/plugin");
    let mut generate = Command::new(steps::cargo_bin());
    generate
        .args(["generate", "--path"])
        .arg(&template)
        .args([
            "--name",
            GENERATED,
            "--vcs",
            "none",
            "--silent",
            "--destination",
        ])
        .arg(&out);
    steps::run(
        &mut generate,
        &format!(
            "cargo generate --path {} --name {GENERATED} --vcs none --silent --destination {}",
            template.display(),
            out.display()
        ),
    )
    .map_err(|e| format!("{e}\n(is cargo-generate installed? `cargo install cargo-generate`)"))?;
    let dir = out.join(GENERATED);
    let manifest = dir.join("Cargo.toml");
    let mut cargo_toml = std::fs::read_to_string(&manifest)
        .map_err(|e| format!("reading {}: {e}", manifest.display()))?;
    if cargo_toml.contains("[patch.crates-io]") {
        return Err(format!(
            "{} already patches crates.io: cargo generate should leave the crates.io versions",
            manifest.display()
        ));
    }
    cargo_toml.push_str(&scaffold::patch_section(&root));
    std::fs::write(&manifest, cargo_toml)
        .map_err(|e| format!("writing {}: {e}", manifest.display()))?;
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))
        .map_err(|e| format!("copying Cargo.lock: {e}"))?;
    let mut test = Command::new(steps::cargo_bin());
    test.arg("test")
        .env("CARGO_TARGET_DIR", work.join("target"))
        .env("PWF_TEST_MODE", "native")
        .env("PWF_ENVOY", &envoy);
    steps::run_in(
        &mut test,
        &format!("(in {}) PWF_TEST_MODE=native cargo test", dir.display()),
        &dir,
    )
}
