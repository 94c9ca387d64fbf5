//! The test command's proof that the snippet check can fail: a markdown file with a broken
//! Rust snippet, added to the files `docs/check` compiles (through `PWF_DOCS_CHECK_EXTRA`),
//! must fail its doc tests, and the failure must name that file.
//!
//! The check itself (every snippet of `docs/` and of the READMEs compiled, marked snippets
//! saying why, shown log lines produced by tests) runs with the unit tests.

use std::process::Command;

use envoy_harness::target_dir;

use crate::steps;

/// The package whose doc tests are the guide's and the READMEs' snippets.
const PACKAGE: &str = "pwf-docs-check";

/// A snippet that does not compile: a string where a number is expected.
const BROKEN: &str =
    "# A page with a broken snippet\n\n```rust\nlet retries: u32 = \"three\";\n```\n";

pub(crate) fn broken_snippet_fails_the_check() -> Result<(), String> {
    let root = envoy_harness::repo_root();
    let dir = target_dir().join("docs-check");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let page = dir.join("broken-snippet.md");
    std::fs::write(&page, BROKEN).map_err(|e| format!("writing {}: {e}", page.display()))?;
    let shown = format!(
        "PWF_DOCS_CHECK_EXTRA={} cargo test -p {PACKAGE} --doc",
        page.display()
    );
    println!("$ {shown}");
    steps::flush();
    let output = Command::new(steps::cargo_bin())
        .args(["test", "-p", PACKAGE, "--doc"])
        .env("PWF_DOCS_CHECK_EXTRA", &page)
        .current_dir(&root)
        .output()
        .map_err(|e| format!("`{shown}` did not start: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // The module the build script writes for the page, named after its path from the
    // repository root.
    let module = page
        .strip_prefix(&root)
        .unwrap_or(&page)
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect::<String>();
    let failed_there = text
        .lines()
        .any(|line| line.contains(&module) && line.contains("FAILED"));
    if output.status.success() || !failed_there {
        return Err(format!(
            "a broken snippet did not fail the check (exit {}):\n{}",
            output.status,
            envoy_harness::tail(&text, 30)
        ));
    }
    println!("the broken snippet failed the check, as it must:");
    for line in text
        .lines()
        .filter(|line| line.contains(&module) && line.contains("FAILED"))
    {
        println!("  {}", line.trim());
    }
    Ok(())
}
