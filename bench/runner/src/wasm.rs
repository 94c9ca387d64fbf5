//! Building the plugins: each example, pwf and raw, in each build variant,
//! and its `wasm-opt` output.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Example, Flavor, Result};

/// A way of building the plugins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Variant {
    /// The workspace's release profile, as shipped.
    Release,
    /// The same with a 64 KiB stack (`-C link-arg=-zstack-size=65536`)
    /// instead of the default 1 MiB.
    SmallStack,
}

impl Variant {
    pub(crate) const ALL: [Variant; 2] = [Variant::Release, Variant::SmallStack];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Variant::Release => "release",
            Variant::SmallStack => "release + 64 KiB stack",
        }
    }

    fn dir(self) -> &'static str {
        match self {
            Variant::Release => "release",
            Variant::SmallStack => "stack64k",
        }
    }

    pub(crate) fn rustflags(self) -> &'static str {
        match self {
            Variant::Release => "",
            Variant::SmallStack => "-C link-arg=-zstack-size=65536",
        }
    }
}

/// Where the bench builds: its own target directories, so the variants'
/// flags never invalidate each other or the workspace's own build.
pub(crate) fn target_root(workspace: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("bench")
}

/// Builds every example, pwf and raw, in `variant`.
pub(crate) fn build(workspace: &Path, variant: Variant) -> Result<()> {
    let packages = Example::ALL
        .into_iter()
        .flat_map(|example| Flavor::ALL.map(|flavor| example.package(flavor)));
    cargo_build(
        workspace,
        variant.dir(),
        variant.rustflags(),
        &[],
        packages,
        &format!("the plugins ({})", variant.name()),
    )
}

/// Builds the pwf examples again without pwf's allocator
/// (`--no-default-features`: the system allocator, as the raw plugins
/// have), in the release variant.
pub(crate) fn build_system_allocator(workspace: &Path) -> Result<()> {
    let packages = Example::ALL.map(|example| example.package(Flavor::Pwf));
    cargo_build(
        workspace,
        SYSTEM_ALLOCATOR_DIR,
        Variant::Release.rustflags(),
        &["--no-default-features"],
        packages,
        "the pwf plugins with the system allocator",
    )
}

/// `cargo build --release --target wasm32-wasip1` of `packages`, in the
/// bench's target directory `dir`, with exactly `rustflags`.
pub(crate) fn cargo_build(
    workspace: &Path,
    dir: &str,
    rustflags: &str,
    args: &[&str],
    packages: impl IntoIterator<Item = String>,
    what: &str,
) -> Result<()> {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .current_dir(workspace)
        .args(["build", "--release", "--target", "wasm32-wasip1"])
        .args(args)
        .env("CARGO_TARGET_DIR", target_root(workspace).join(dir))
        .env("RUSTFLAGS", rustflags)
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    for package in packages {
        command.args(["-p", &package]);
    }
    eprintln!("building {what}");
    let status = command.status()?;
    if !status.success() {
        return Err(format!("cargo build of {what} failed: {status}").into());
    }
    Ok(())
}

/// The two rate limiters the suite meters against each other: the bounded
/// `RateLimiter` of `examples/rate_limit`, and one `SharedCounter` per key
/// and window (`envoy/testdata/per-key-counter`).
pub(crate) const RATE_LIMITERS: [&str; 2] = ["rate_limit", "per-key-counter"];

/// Builds [`RATE_LIMITERS`] in the release variant.
pub(crate) fn build_rate_limiters(workspace: &Path) -> Result<()> {
    cargo_build(
        workspace,
        Variant::Release.dir(),
        Variant::Release.rustflags(),
        &[],
        RATE_LIMITERS.map(str::to_owned),
        "the rate limiters",
    )
}

/// The `.wasm` of `package`, one of [`RATE_LIMITERS`].
pub(crate) fn rate_limiter_path(workspace: &Path, package: &str) -> PathBuf {
    target_root(workspace)
        .join(Variant::Release.dir())
        .join("wasm32-wasip1/release")
        .join(format!("{}.wasm", package.replace('-', "_")))
}

/// Where [`build_system_allocator`] builds.
const SYSTEM_ALLOCATOR_DIR: &str = "system-allocator";

/// The `.wasm` of pwf's `example` built by [`build_system_allocator`].
pub(crate) fn system_allocator_path(workspace: &Path, example: Example) -> PathBuf {
    target_root(workspace)
        .join(SYSTEM_ALLOCATOR_DIR)
        .join("wasm32-wasip1/release")
        .join(format!("{}.wasm", example.package(Flavor::Pwf)))
}

/// The `.wasm` of `example` in `flavor`, built in `variant`.
pub(crate) fn path(
    workspace: &Path,
    variant: Variant,
    example: Example,
    flavor: Flavor,
) -> PathBuf {
    target_root(workspace)
        .join(variant.dir())
        .join("wasm32-wasip1/release")
        .join(format!("{}.wasm", example.package(flavor)))
}

/// Runs `wasm-opt -O3` on `input`; returns the optimized file, next to it.
pub(crate) fn optimize(input: &Path) -> Result<PathBuf> {
    let output = input.with_extension("opt.wasm");
    optimize_to(input, &output)?;
    Ok(output)
}

/// Runs `wasm-opt -O3` on `input`, writing `output`.
pub(crate) fn optimize_to(input: &Path, output: &Path) -> Result<()> {
    let status = Command::new("wasm-opt")
        .args([
            "-O3",
            "--enable-bulk-memory",
            "--enable-sign-ext",
            "--enable-mutable-globals",
            "--enable-nontrapping-float-to-int",
            "--enable-multivalue",
            "--enable-reference-types",
        ])
        .arg(input)
        .arg("-o")
        .arg(output)
        .status()
        .map_err(|error| {
            format!("wasm-opt: {error} (install binaryen: `apt-get install -y binaryen`)")
        })?;
    if !status.success() {
        return Err(format!("wasm-opt {} failed: {status}", input.display()).into());
    }
    Ok(())
}
