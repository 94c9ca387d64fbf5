//! `examples/add_header` in Envoy.

use envoy_harness::{Envoy, Result};

#[test]
fn add_header_adds_the_configured_response_header() -> Result<()> {
    let envoy = Envoy::example("add_header")
        .plugin_config(r#"{"name": "x-e2e", "value": "from the plugin"}"#)
        .start()?;
    let resp = envoy.get("/anything")?;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header_all("x-e2e"), ["from the plugin"]);
    let teapot = envoy.get("/status/418")?;
    assert_eq!(teapot.status, 418);
    assert_eq!(teapot.header("x-e2e"), Some("from the plugin"));
    Ok(())
}

#[test]
fn add_header_shipped_config_adds_x_pwf_hello() -> Result<()> {
    let envoy = Envoy::example("add_header").start()?;
    let resp = envoy.get("/anything")?;
    assert_eq!(resp.header("x-pwf"), Some("hello"));
    assert!(
        envoy.wasm_log().iter().any(|l| l.contains("x-pwf: hello")),
        "configure logs the header it adds"
    );
    Ok(())
}

#[test]
fn add_header_replaces_an_upstream_header_of_the_same_name() -> Result<()> {
    let envoy = Envoy::example("add_header")
        .plugin_config(r#"{"name": "x-r", "value": "plugin"}"#)
        .start()?;
    let resp = envoy.get("/response-headers?x-r=upstream")?;
    assert_eq!(resp.header_all("x-r"), ["plugin"]);
    Ok(())
}

#[test]
fn add_header_empty_name_makes_envoy_refuse_to_start() -> Result<()> {
    let refusal = Envoy::example("add_header")
        .plugin_config(r#"{"name": "", "value": "hello"}"#)
        .start_expect_failure()?;
    assert!(!refusal.status.success());
    let problem = refusal
        .wasm_log()
        .into_iter()
        .find(|l| l.contains("[error]") && l.contains("name"));
    assert!(
        problem.is_some_and(|l| l.contains("add_header")),
        "an error line names the plugin and the field:\n{}",
        refusal.log
    );
    Ok(())
}

#[test]
fn add_header_non_object_config_makes_envoy_refuse_to_start() -> Result<()> {
    let refusal = Envoy::example("add_header")
        .plugin_config(r#"["x-pwf", "hello"]"#)
        .start_expect_failure()?;
    assert!(!refusal.status.success());
    assert!(refusal.logged("[error]"), "{}", refusal.log);
    Ok(())
}
