//! The wasm path: the raw proxy-wasm probe plugin (`envoy/testdata/probe-plugin`) in Envoy.

use std::time::Duration;

use envoy_harness::{load, Envoy, Request, Result, Setup};

fn probe() -> Setup {
    Envoy::template("envoy/plugin.yaml").wasm_of("probe-plugin")
}

#[test]
fn probe_adds_the_configured_response_header() -> Result<()> {
    let envoy = probe().plugin_config("x-probe=e2e").start()?;
    let resp = envoy.get("/anything/probe")?;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-probe"), Some("e2e"));
    envoy.wait_for_log("probe: request GET /anything/probe", Duration::from_secs(5))?;
    assert!(envoy
        .wasm_log()
        .iter()
        .any(|l| l.contains("probe: configured x-probe: e2e")));
    Ok(())
}

#[test]
fn probe_header_is_on_every_response_under_load() -> Result<()> {
    let envoy = probe().concurrency(2).start()?;
    let result = load(envoy.port(), &Request::get("/status/204"), 400, 8);
    assert_eq!(
        result.status_counts().get(&204),
        Some(&400),
        "{}",
        result.summary(8)
    );
    assert!(result
        .responses
        .iter()
        .flatten()
        .all(|r| r.header("x-probe") == Some("hello")));
    Ok(())
}

#[test]
fn probe_bad_config_makes_envoy_refuse_to_start() -> Result<()> {
    let refusal = probe()
        .plugin_config("no equals sign")
        .start_expect_failure()?;
    assert!(!refusal.status.success());
    let wasm = refusal.wasm_log();
    assert!(
        wasm.iter()
            .any(|l| l.contains("probe: bad configuration \"no equals sign\"")),
        "{}",
        refusal.log
    );
    Ok(())
}

#[test]
fn probe_bad_config_fails_validation() -> Result<()> {
    let validation = probe().plugin_config("no equals sign").validate()?;
    assert!(!validation.ok);
    assert!(
        validation.output.contains("probe: bad configuration"),
        "{}",
        validation.output
    );
    Ok(())
}

#[test]
fn shipped_template_runs_as_is() -> Result<()> {
    let envoy = Envoy::template("envoy/plugin.yaml").start()?;
    assert_eq!(envoy.get("/")?.header("x-probe"), Some("hello"));
    Ok(())
}

#[test]
fn a_pwf_plugin_without_its_registration_line_is_refused_at_load() -> Result<()> {
    let unregistered = || Envoy::template("envoy/plugin.yaml").wasm_of("unregistered-plugin");
    // pwf's `_initialize` calls the registration `pwf::main!` defines; without
    // it the symbol is left to the host, which has no such import.
    let expected = "missing import: env.pwf_main_registers_the_plugin";

    let validation = unregistered().validate()?;
    assert!(!validation.ok, "{}", validation.output);
    assert!(
        validation.output.contains(expected),
        "{}",
        validation.output
    );

    let refusal = unregistered().start_expect_failure()?;
    assert!(!refusal.status.success());
    assert!(refusal.log.contains(expected), "{}", refusal.log);
    Ok(())
}
