//! {{project-name}} in a real Envoy: builds the plugin's `.wasm` (`cargo build --target
//! wasm32-wasip1 --release`, once per run), starts Envoy
//! 1.40 (installed on first use) in front of a local upstream, and checks a
//! response. `PWF_ENVOY=/path/to/envoy` uses an Envoy of your own;
//! `PWF_ENVOY_LOG=1` prints Envoy's log even when the test passes.

use envoy_harness::{Envoy, Result};

#[test]
fn envoy_sets_the_configured_header_on_the_response() -> Result<()> {
    let envoy = Envoy::template(concat!(env!("CARGO_MANIFEST_DIR"), "/envoy.yaml"))
        .wasm_of(env!("CARGO_PKG_NAME"))
        .plugin_config(r#"{"name": "x-hello", "value": "world"}"#)
        .start()?;

    let response = envoy.get("/anything")?;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-hello"), Some("world"));
    Ok(())
}
