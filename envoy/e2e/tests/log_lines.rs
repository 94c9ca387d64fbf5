//! The whole log lines Envoy 1.40 writes for a configuration the plugin refuses and for a
//! panic in a phase, as docs/concepts.md and docs/troubleshooting.md show them.
//!
//! Measured: a line the plugin writes while it is configured carries the VM's id
//! (`wasm log <vm_id>: `, `wasm log: ` without one); a line written for a stream carries
//! the plugin's name and the VM's id (`wasm log <name> <vm_id>: `). pwf starts each
//! configuration problem with the plugin's name itself.

use envoy_harness::{repo_root, Envoy, Result, Setup};

/// `config` (a path from the repository root) with its plugin, named `plugin` there,
/// renamed `my-plugin` and its VM given the id `vm_id`, running the release wasm of
/// `package`.
fn my_plugin(config: &str, plugin: &str, vm_id: &str, package: &str) -> Setup {
    let yaml = std::fs::read_to_string(repo_root().join(config)).expect("the config reads");
    let renamed = yaml
        .replace(&format!("name: {plugin}\n"), "name: my-plugin\n")
        .replace(
            &format!("vm_id: {plugin}\n"),
            &format!("vm_id: \"{vm_id}\"\n"),
        );
    assert_ne!(renamed, yaml, "{config} names its plugin {plugin}");
    Envoy::yaml(&renamed).wasm_of(package)
}

/// The messages of Envoy's log lines at `level` (`error`, `critical`...), without the
/// prefix (`[time][thread][level][logger] [source:line] `); a line without that prefix
/// (the rest of a message written over several lines) follows as it is.
fn messages<'a>(log: &'a str, level: &str) -> Vec<&'a str> {
    let tag = format!("[{level}]");
    let mut found = Vec::new();
    let mut in_level = false;
    for line in log.lines() {
        match line.split_once("] [source/") {
            Some((head, rest)) if line.starts_with('[') => {
                in_level = head.contains(&tag);
                if in_level {
                    found.push(rest.split_once("] ").map_or(rest, |(_, message)| message));
                }
            }
            _ if in_level && !line.starts_with('[') => found.push(line),
            _ => in_level = false,
        }
    }
    found
}

/// add_header refusing `{"name": ""}` with a typo besides, as `my-plugin` in VM `vm_id`.
fn refuse(vm_id: &str) -> Result<String> {
    let refusal = my_plugin(
        "examples/add_header/envoy.yaml",
        "add_header",
        vm_id,
        "add_header",
    )
    .plugin_config(r#"{"name": "", "nmae": "x-pwf", "value": "hello"}"#)
    .start_expect_failure()?;
    assert_eq!(refusal.status.code(), Some(1), "{}", refusal.log);
    Ok(refusal.log)
}

/// broken-plugin as `my-plugin` in VM `vm_id`, asked to panic in its request headers
/// phase: the whole log after the panicking request and one more.
fn panic(vm_id: &str) -> Result<String> {
    let envoy = my_plugin("envoy/plugin.yaml", "probe", vm_id, "broken-plugin")
        .plugin_config("")
        .start()?;
    assert_eq!(envoy.get("/panic")?.status, 503);
    // FAIL_CLOSED, the default: the failed VM answers every later request 503.
    assert_eq!(envoy.get("/anything")?.status, 503);
    Ok(envoy.log())
}

#[test]
fn refused_configuration_is_logged_under_the_vm_id_and_envoy_exits() -> Result<()> {
    let log = refuse("my-vm")?;
    let errors = messages(&log, "error");
    for line in [
        "wasm log my-vm: my-plugin: invalid plugin configuration: name: must not be empty",
        "wasm log my-vm: my-plugin: invalid plugin configuration: unknown field `nmae`, did you mean `name`?",
        "Wasm VM failed Failed to configure base Wasm plugin",
    ] {
        assert!(errors.contains(&line), "no error line {line:?} in {errors:#?}");
    }
    let critical = messages(&log, "critical");
    assert!(
        critical.contains(&"Plugin my-plugin failed to load"),
        "{critical:#?}"
    );
    assert!(
        critical.iter().any(|line| line
            .starts_with("error `Unable to create Wasm plugin my-plugin` initializing config ")),
        "{critical:#?}"
    );
    Ok(())
}

#[test]
fn panic_in_a_phase_is_logged_under_the_plugin_name_and_vm_id_and_fails_the_vm() -> Result<()> {
    let log = panic("my-vm")?;
    let critical = messages(&log, "critical");
    let at = critical
        .iter()
        .position(|line| line.starts_with("wasm log my-plugin my-vm: panicked: "))
        .unwrap_or_else(|| panic!("no panic line in {critical:#?}"));
    // The location, then the message on the next line, as Rust formats a panic.
    assert!(
        critical[at].starts_with(
            "wasm log my-plugin my-vm: panicked: panicked at pwf-test/testdata/broken-plugin/src/lib.rs:"
        ) && critical[at].ends_with(':'),
        "{}",
        critical[at]
    );
    assert_eq!(
        critical.get(at + 1),
        Some(&"broken-plugin: /panic was asked for")
    );
    let errors = messages(&log, "error");
    assert!(
        errors.contains(
            &"Function: proxy_on_request_headers failed: Uncaught RuntimeError: unreachable"
        ),
        "{errors:#?}"
    );
    Ok(())
}

#[test]
fn without_a_vm_id_configure_lines_carry_no_name_and_stream_lines_the_plugin_name() -> Result<()> {
    let log = refuse("")?;
    let errors = messages(&log, "error");
    let line = "wasm log: my-plugin: invalid plugin configuration: name: must not be empty";
    assert!(errors.contains(&line), "{errors:#?}");
    let critical = messages(&panic("")?, "critical").join("\n");
    assert!(
        critical.contains("wasm log my-plugin: panicked: panicked at "),
        "{critical}"
    );
    Ok(())
}
