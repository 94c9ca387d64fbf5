//! What Envoy 1.40's WASI layer gives a plugin, and when it delivers a request body held
//! behind paused headers, measured with `envoy/testdata/wasi-plugin`. pwf-test's wasm
//! backend (`pwf-test/src/wasm.rs`) answers the same way, and `pwf-test/tests/wasm_mode.rs`
//! runs the same plugin against it.

use std::time::Duration;

use envoy_harness::{Envoy, Request, Result, Setup};

fn wasi() -> Setup {
    Envoy::template("envoy/plugin.yaml")
        .wasm_of("wasi-plugin")
        .plugin_config("")
}

/// The plugin's lines (`wasi-plugin: ...`) with their Envoy log level, once `last` is in.
fn lines(envoy: &Envoy, last: &str) -> Result<Vec<(String, String)>> {
    envoy.wait_for_log(last, Duration::from_secs(5))?;
    Ok(envoy
        .log()
        .lines()
        .filter_map(|line| {
            let (_, text) = line.split_once("wasi-plugin: ")?;
            let level = line.split("][").nth(2)?.to_owned();
            Some((level, text.to_owned()))
        })
        .collect())
}

#[test]
fn standard_output_and_error_go_to_the_log_at_info_and_error() -> Result<()> {
    let envoy = wasi().start()?;
    envoy.get("/stdout")?;
    envoy.get("/stderr")?;
    let lines = lines(&envoy, "/stderr: done")?;
    assert!(
        lines.contains(&("info".into(), "printed to stdout".into())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("error".into(), "printed to stderr".into())),
        "{lines:?}"
    );
    Ok(())
}

#[test]
fn environment_is_empty_clocks_run_random_differs_and_files_are_not_found() -> Result<()> {
    let envoy = wasi().start()?;
    for path in ["/env", "/clock", "/random", "/file"] {
        assert_eq!(envoy.get(path)?.status, 404, "{path}");
    }
    let lines = lines(&envoy, "/file: ")?;
    let said = |start: &str| {
        lines
            .iter()
            .find(|(_, text)| text.starts_with(start))
            .map(|(_, text)| text.clone())
            .unwrap_or_default()
    };
    assert_eq!(said("/env"), "/env: 0 variables, 0 arguments");
    assert!(said("/clock").contains("s since the epoch"), "{lines:?}");
    assert_eq!(said("/random"), "/random: two seeds differ: true");
    assert!(
        said("/file").contains("code: 44, kind: NotFound"),
        "{lines:?}"
    );
    Ok(())
}

/// Envoy's `poll_oneoff` answers success at once, reports no events and writes no event
/// record. std's `thread::sleep` (wasi-libc's `clock_nanosleep`) then reads an event it
/// never got: what it finds there decides whether the sleep "returns" at once or fails
/// with ENOTSUP and panics the VM (`left: 58, right: 27`), so a given build can do either.
#[test]
fn poll_oneoff_answers_at_once_with_no_event() -> Result<()> {
    let envoy = wasi().start()?;
    envoy.get("/poll")?;
    let lines = lines(&envoy, "/poll: ")?;
    let (level, text) = &lines[0];
    assert_eq!(level, "info");
    assert_eq!(
        text,
        "/poll: errno 0, nevents 0x0, event error 0xaaaa, type 0xaa"
    );
    Ok(())
}

/// So `thread::sleep` never waits in Envoy: it returns early or panics the VM.
#[test]
fn sleep_does_not_wait() -> Result<()> {
    let envoy = wasi().start()?;
    let status = envoy.get("/sleep")?.status;
    let log = envoy.log();
    if status == 503 {
        envoy.wait_for_log("right: 27", Duration::from_secs(5))?;
        let log = envoy.log();
        assert!(log.contains("left: 58"), "{log}");
        return Ok(());
    }
    assert_eq!(status, 404, "{log}");
    let lines = lines(&envoy, "/sleep: ")?;
    let waited: u64 = lines[0]
        .1
        .strip_prefix("/sleep: returned after ")
        .and_then(|rest| rest.strip_suffix(" ms of 200"))
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert!(waited < 200, "thread::sleep waited {waited} ms");
    Ok(())
}

#[test]
fn body_behind_paused_headers_arrives_after_the_resume() -> Result<()> {
    let envoy = wasi().start()?;
    let response = envoy.send(&Request::post("/pause", vec![b'x'; 100]))?;
    assert_eq!(response.status, 404);
    let lines = lines(&envoy, "body phase")?;
    let texts: Vec<&str> = lines.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "/pause: the call answered, headers resumed",
            "body phase: 100 bytes, end_of_stream true, call answered before: true",
        ]
    );
    Ok(())
}
