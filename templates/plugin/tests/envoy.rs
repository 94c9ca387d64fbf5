//! {{project-name}} in a real Envoy: builds the plugin's `.wasm`, starts Envoy
//! 1.40 (installed on first use) in front of a local upstream, and checks a
//! response. `PWF_ENVOY=/path/to/envoy` uses an Envoy of your own;
//! `PWF_ENVOY_LOG=1` prints Envoy's log even when the test passes.

use std::path::PathBuf;
use std::process::Command;

use envoy_harness::{wasm_artifact, Envoy, Result, WASM_TARGET};

/// Builds the release `.wasm` of this crate, as Envoy loads it.
fn build_wasm() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(["build", "--target", WASM_TARGET, "--release"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "building the wasm failed (is the target installed? rustup target add {WASM_TARGET})"
    );
    wasm_artifact(env!("CARGO_PKG_NAME")).expect("the wasm was just built")
}

#[test]
fn envoy_sets_the_configured_header_on_the_response() -> Result<()> {
    let envoy = Envoy::template(concat!(env!("CARGO_MANIFEST_DIR"), "/envoy.yaml"))
        .wasm(build_wasm())
        .plugin_config(r#"{"name": "x-hello", "value": "world"}"#)
        .start()?;

    let response = envoy.get("/anything")?;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-hello"), Some("world"));
    Ok(())
}
