//! What gRPC costs a plugin's `.wasm`: `bench/grpc` built without gRPC, then with each
//! gRPC feature, and the sizes side by side (`--grpc-size`, and the suite's "gRPC"
//! section).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use crate::wasm::{self, Variant};
use crate::Result;

/// The builds of `bench/grpc`: its features, and what the row says.
const BUILDS: [(&str, &str); 5] = [
    ("", "no gRPC: one HTTP call per request"),
    ("call", "+ a unary gRPC call, its message as bytes"),
    ("prost", "+ its messages as `prost` types (`prost` feature)"),
    (
        "call,streams-feature",
        "the unary call, with the `grpc-streams` feature on",
    ),
    ("stream", "+ a gRPC stream opened and read (`grpc-streams`)"),
];

/// The package.
const PACKAGE: &str = "grpc_size";

/// One build's sizes.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    features: &'static str,
    what: &'static str,
    bytes: u64,
    opt_bytes: u64,
}

/// Builds every row in the release variant (the workspace's profile and
/// `.cargo/config.toml`, as shipped), one after the other in one target
/// directory, and measures each `.wasm` and its `wasm-opt -O3` output.
pub(crate) fn measure(workspace: &Path) -> Result<Vec<Row>> {
    let dir = wasm::target_root(workspace).join("grpc-size");
    let built = dir
        .join("wasm32-wasip1/release")
        .join(format!("{PACKAGE}.wasm"));
    let mut rows = Vec::new();
    for (features, what) in BUILDS {
        let mut args = vec!["--features", features];
        if features.is_empty() {
            args.clear();
        }
        wasm::cargo_build(
            workspace,
            "grpc-size",
            Variant::Release.rustflags(),
            &args,
            [PACKAGE.to_owned()],
            &format!("{PACKAGE} [{features}]"),
        )?;
        let copy = copy_path(&dir, features);
        fs::copy(&built, &copy)?;
        let optimized = wasm::optimize(&copy)?;
        rows.push(Row {
            features,
            what,
            bytes: fs::metadata(&copy)?.len(),
            opt_bytes: fs::metadata(&optimized)?.len(),
        });
    }
    Ok(rows)
}

/// Where the `.wasm` of the build with `features` is kept.
fn copy_path(dir: &Path, features: &str) -> PathBuf {
    let name = if features.is_empty() {
        "none".to_owned()
    } else {
        features.replace(',', "+")
    };
    dir.join(format!("{PACKAGE}-{name}.wasm"))
}

/// The section "gRPC".
pub(crate) fn render(rows: &[Row]) -> String {
    let mut md = String::from(
        "## gRPC\n\n\
         What gRPC costs a plugin's `.wasm`: `bench/grpc`, a filter that checks each request \
         with an HTTP call, built without gRPC, then with one more gRPC step per row (the \
         crate's features), in the suite's `release` build (as the size table above), and \
         after `wasm-opt -O3`. The differences are against the first row; \
         `pwf-bench --grpc-size` prints this section alone.\n\n\
         | build | features | `.wasm` | difference | after wasm-opt | difference |\n\
         |---|---|---|---|---|---|\n",
    );
    let Some(base) = rows.first() else {
        return md;
    };
    for row in rows {
        let features = if row.features.is_empty() {
            "–".to_owned()
        } else {
            format!("`{}`", row.features)
        };
        let _ = writeln!(
            md,
            "| {} | {features} | {} | {:+} | {} | {:+} |",
            row.what,
            row.bytes,
            row.bytes as i64 - base.bytes as i64,
            row.opt_bytes,
            row.opt_bytes as i64 - base.opt_bytes as i64,
        );
    }
    md.push('\n');
    md
}

/// `--grpc-size`: measures and prints the section.
pub(crate) fn run(workspace: &Path) -> Result<()> {
    crate::tools::ensure(&[crate::tools::WASM_OPT])?;
    print!("{}", render(&measure(workspace)?));
    Ok(())
}
