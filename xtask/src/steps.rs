//! Numbered steps with headers and timings, and running commands in them.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use envoy_harness::repo_root;

/// A sequence of numbered steps; the first failure stops it.
pub(crate) struct Steps {
    total: usize,
    done: Vec<(String, Duration)>,
    start: Instant,
}

impl Steps {
    pub(crate) fn new(total: usize) -> Steps {
        Steps {
            total,
            done: Vec::new(),
            start: Instant::now(),
        }
    }

    /// Runs one step under a header; its error names the step.
    pub(crate) fn run(
        &mut self,
        title: &str,
        step: impl FnOnce() -> Result<(), String>,
    ) -> Result<(), String> {
        let n = self.done.len() + 1;
        println!("\n==> [{n}/{}] {title}", self.total);
        flush();
        let start = Instant::now();
        let result = step();
        self.done.push((title.to_owned(), start.elapsed()));
        result.map_err(|e| format!("step {n}/{} `{title}` failed: {e}", self.total))
    }

    /// Prints how long each step took.
    pub(crate) fn summary(&self) {
        println!("\nall {} steps passed:", self.done.len());
        for (title, took) in &self.done {
            println!("  {:>6.1} s  {title}", took.as_secs_f64());
        }
        println!("  {:>6.1} s  total", self.start.elapsed().as_secs_f64());
    }
}

pub(crate) fn flush() {
    let _ = std::io::stdout().flush();
}

/// The cargo that runs this program.
pub(crate) fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Runs `cargo <args>` in the repository root, its output going straight to the terminal.
pub(crate) fn cargo(args: &[&str]) -> Result<(), String> {
    run(
        Command::new(cargo_bin()).args(args),
        &format!("cargo {}", args.join(" ")),
    )
}

/// Runs `cmd` (shown as `shown`) in the repository root, output to the terminal.
pub(crate) fn run(cmd: &mut Command, shown: &str) -> Result<(), String> {
    println!("$ {shown}");
    flush();
    let status = cmd
        .current_dir(repo_root())
        .status()
        .map_err(|e| format!("`{shown}` did not start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed ({status})"))
    }
}
