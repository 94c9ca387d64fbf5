//! Installing what the commands need: the wasm32-wasip1 target and Envoy.

use std::path::PathBuf;
use std::process::Command;

use envoy_harness::{envoy_binary, WASM_TARGET};

use crate::steps::run;

/// Makes sure the wasm32-wasip1 standard library is installed (with rustup when missing).
pub(crate) fn wasm_target() -> Result<(), String> {
    match Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    {
        Ok(out) if out.status.success() => {
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == WASM_TARGET)
            {
                println!("{WASM_TARGET} target: installed");
                Ok(())
            } else {
                run(
                    Command::new("rustup").args(["target", "add", WASM_TARGET]),
                    &format!("rustup target add {WASM_TARGET}"),
                )
            }
        }
        _ => {
            // No rustup: accept a toolchain that already ships the target.
            let sysroot = Command::new("rustc")
                .args(["--print", "sysroot"])
                .output()
                .map_err(|e| format!("cannot run rustc: {e}"))?;
            let dir = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim())
                .join("lib/rustlib")
                .join(WASM_TARGET);
            if dir.is_dir() {
                println!("{WASM_TARGET} target: installed ({})", dir.display());
                Ok(())
            } else {
                Err(format!(
                    "the {WASM_TARGET} target is not installed and rustup is not available to add it \
                     (install rustup, or a toolchain with the {WASM_TARGET} standard library)"
                ))
            }
        }
    }
}

/// Makes sure Envoy 1.40 is in `.venv` and says where.
pub(crate) fn envoy() -> Result<PathBuf, String> {
    let envoy = envoy_binary().map_err(|e| e.to_string())?;
    println!("envoy: {}", envoy.display());
    Ok(envoy)
}
