//! Writes `$OUT_DIR/snippets.rs`: one empty module per markdown file of the guide and per
//! README, documented with the file's text, so that `cargo test --doc` compiles (and runs)
//! every Rust snippet in them.
//!
//! `PWF_DOCS_CHECK_EXTRA`, a path to a markdown file, adds that file too: the test command
//! uses it to show that a broken snippet fails the check.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest
        .parent()
        .and_then(Path::parent)
        .expect("docs/check is two levels below the repository root");
    let mut files = pwf_docs_files(root);
    println!("cargo:rerun-if-env-changed=PWF_DOCS_CHECK_EXTRA");
    if let Some(extra) = std::env::var_os("PWF_DOCS_CHECK_EXTRA").filter(|v| !v.is_empty()) {
        files.push(PathBuf::from(extra));
    }
    let mut out = String::new();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let shown = file.strip_prefix(root).unwrap_or(file);
        let module: String = shown
            .to_string_lossy()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        writeln!(
            out,
            "/// `{shown}`\n#[doc = include_str!({path:?})]\npub mod {module} {{}}",
            shown = shown.display(),
            path = file.display().to_string(),
        )
        .expect("writing to a String");
    }
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    std::fs::write(out_dir.join("snippets.rs"), out).expect("writing snippets.rs");
}

/// Every markdown file under `docs/`, and every `README.md` of the repository outside
/// `target/` and hidden directories, sorted.
fn pwf_docs_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    println!("cargo:rerun-if-changed={}", root.join("docs").display());
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    stack.push(path);
                }
            } else if name == "README.md"
                || (name.ends_with(".md") && path.starts_with(root.join("docs")))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}
