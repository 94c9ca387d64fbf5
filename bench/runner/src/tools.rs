//! The programs the suite runs besides cargo and Envoy (`wasm-opt`, `wrk`),
//! installed from Debian's packages when they are missing.

use std::process::{Command, Stdio};

use crate::Result;

/// A program the suite runs, and the Debian package that installs it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tool {
    program: &'static str,
    package: &'static str,
}

/// `wasm-opt`, for the sizes after optimization.
pub(crate) const WASM_OPT: Tool = Tool {
    program: "wasm-opt",
    package: "binaryen",
};

/// `wrk`, the load generator of the Envoy runs.
pub(crate) const WRK: Tool = Tool {
    program: "wrk",
    package: "wrk",
};

/// Makes sure every tool in `tools` can be run. The missing ones are installed
/// with `apt-get` when running as root, after an `apt-get update`: a fresh
/// machine has no package lists. Otherwise the error says what to install.
pub(crate) fn ensure(tools: &[Tool]) -> Result<()> {
    let missing: Vec<&str> = tools
        .iter()
        .filter(|tool| !found(tool.program))
        .map(|tool| tool.package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages = missing.join(" ");
    if !is_root() {
        return Err(format!(
            "missing: {packages} (install with `sudo apt-get update && sudo apt-get install -y {packages}`)"
        )
        .into());
    }
    eprintln!("installing {packages} with apt-get");
    apt_get(&["update"])?;
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(&missing);
    apt_get(&install)?;
    match tools.iter().find(|tool| !found(tool.program)) {
        Some(tool) => Err(format!(
            "`{}` still cannot be run after installing {}",
            tool.program, tool.package
        )
        .into()),
        None => Ok(()),
    }
}

/// Whether `program` can be started (`wrk --version` exits with 1, so the
/// status is not looked at).
fn found(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// Runs `apt-get args`, without questions.
fn apt_get(args: &[&str]) -> Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|error| format!("apt-get: {error}"))?;
    if !status.success() {
        return Err(format!("`apt-get {}` failed: {status}", args.join(" ")).into());
    }
    Ok(())
}
