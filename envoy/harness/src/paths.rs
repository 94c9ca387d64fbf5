//! Where things are: the repository, the cargo target directory, the built plugins, the
//! examples.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The wasm target the plugins are built for.
pub const WASM_TARGET: &str = "wasm32-wasip1";

/// The repository root (the workspace directory).
pub fn repo_root() -> PathBuf {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR"));
    harness.ancestors().nth(2).unwrap_or(harness).to_path_buf()
}

/// Whether this program was built in pwf's own repository (its target directory is inside
/// [`repo_root`]), rather than in a crate of its own that uses the harness from outside.
pub fn in_repo() -> bool {
    target_dir().starts_with(repo_root())
}

/// The directory relative paths are read from and Envoy runs in: [`repo_root`] in pwf's
/// repository; elsewhere the directory of the crate under test (`CARGO_MANIFEST_DIR`, which
/// cargo sets when it runs a test), else the current directory.
pub fn work_dir() -> PathBuf {
    if in_repo() {
        return repo_root();
    }
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(repo_root)
}

/// Where the harness keeps what it writes: `<repo>/envoy` in pwf's repository, else
/// `<target>/pwf-envoy` in the target directory of the crate under test, so that a crate
/// outside the repository writes nothing into it.
pub(crate) fn state_dir() -> PathBuf {
    if in_repo() {
        repo_root().join("envoy")
    } else {
        target_dir().join("pwf-envoy")
    }
}

/// The cargo target directory this program was built in.
///
/// Found from the running executable (the nearest ancestor holding cargo's `CACHEDIR.TAG`),
/// else `$CARGO_TARGET_DIR`, else `<repo>/target`.
pub fn target_dir() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe
            .ancestors()
            .skip(1)
            .find(|d| d.join("CACHEDIR.TAG").is_file())
        {
            return dir.to_path_buf();
        }
    }
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => repo_root().join(dir),
        None => repo_root().join("target"),
    }
}

/// The release `.wasm` of workspace package `package` (`-` in the name becomes `_`), which
/// must have been built with `cargo build --target wasm32-wasip1 --release -p <package>`.
///
/// Fails, saying how to build it, when the file is missing.
pub fn wasm_artifact(package: &str) -> Result<PathBuf> {
    let file = format!("{}.wasm", package.replace('-', "_"));
    let path = target_dir().join(WASM_TARGET).join("release").join(file);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::new(format!(
            "missing {}: build it first with `cargo build --target {WASM_TARGET} --release -p {package}` \
             (`cargo xtask test` builds every example before the e2e tests)",
            path.display()
        )))
    }
}

/// Like [`wasm_artifact`], but runs `cargo build --target wasm32-wasip1 --release -p
/// <package>` first, once per test process: the module Envoy loads is never missing (a
/// plain `cargo test` in a fresh clone runs the e2e tests) and never older than its code.
/// When the module is fresh, cargo only checks.
pub fn built_wasm_artifact(package: &str) -> Result<PathBuf> {
    static BUILT: std::sync::Mutex<Vec<(String, Result<PathBuf, String>)>> =
        std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, result)) = built.iter().find(|(name, _)| name == package) {
        return result.clone().map_err(Error::new);
    }
    let result = build(package).map_err(|e| e.to_string());
    built.push((package.to_owned(), result.clone()));
    result.map_err(Error::new)
}

fn build(package: &str) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let args = [
        "build",
        "--quiet",
        "--target",
        WASM_TARGET,
        "--release",
        "-p",
        package,
    ];
    // From the crate under test (cargo sets CARGO_MANIFEST_DIR when it runs a test), so
    // that `-p` finds it in its own workspace.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(work_dir, PathBuf::from);
    let output = std::process::Command::new(cargo)
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir())
        .current_dir(dir)
        .output()
        .map_err(|e| Error::io(format!("running cargo build -p {package}"), e))?;
    if !output.status.success() {
        return Err(Error::new(format!(
            "`cargo {}` failed ({}):\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        )));
    }
    wasm_artifact(package)
}

/// An example crate: a directory `examples/<dir>` with a `Cargo.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The package name from its `Cargo.toml`.
    pub package: String,
    /// The package description from its `Cargo.toml`, if any.
    pub description: Option<String>,
    /// Its directory.
    pub dir: PathBuf,
}

impl Example {
    /// Its Envoy config template, `examples/<dir>/envoy.yaml`.
    pub fn envoy_config(&self) -> PathBuf {
        self.dir.join("envoy.yaml")
    }
}

/// Every example crate, found from `examples/*/Cargo.toml`, sorted by directory.
pub fn examples() -> Result<Vec<Example>> {
    let root = repo_root().join("examples");
    let entries = match std::fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("reading {}", root.display()), e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let dir = entry
            .map_err(|e| Error::io(format!("reading {}", root.display()), e))?
            .path();
        let manifest = dir.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&manifest)
            .map_err(|e| Error::io(format!("reading {}", manifest.display()), e))?;
        let package = package_key(&text, "name")
            .ok_or_else(|| Error::new(format!("{}: no [package] name", manifest.display())))?;
        let description = package_key(&text, "description");
        found.push(Example {
            package,
            description,
            dir,
        });
    }
    found.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(found)
}

/// The example named `name` (its package name or its directory name).
pub fn example(name: &str) -> Result<Example> {
    let all = examples()?;
    all.iter()
        .find(|e| e.package == name || e.dir.file_name().is_some_and(|d| d == name))
        .cloned()
        .ok_or_else(|| {
            let names: Vec<_> = all.iter().map(|e| e.package.as_str()).collect();
            Error::new(format!(
                "no example `{name}` under examples/ (found: {})",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ))
        })
}

/// The string value of `key` in the `[package]` table of a manifest.
fn package_key(manifest: &str, wanted: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if !in_package {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            if key.trim() == wanted {
                return Some(value.trim().trim_matches('"').to_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_key_reads_the_package_table_only() {
        let manifest = "[workspace]\nname = \"no\"\n[package]\nversion = \"1\"\nname = \"add_header\"\n[dependencies]\nname = \"x\"\n";
        assert_eq!(package_key(manifest, "name").as_deref(), Some("add_header"));
        assert_eq!(package_key(manifest, "description"), None);
        assert_eq!(package_key("[dependencies]\nname = \"x\"\n", "name"), None);
    }

    #[test]
    fn repo_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }

    #[test]
    fn wasm_artifact_names_the_build_command_when_missing() {
        let err = wasm_artifact("no-such-plugin").unwrap_err().to_string();
        assert!(err.contains("no_such_plugin.wasm"), "{err}");
        assert!(err.contains("-p no-such-plugin"), "{err}");
    }
}
