//! The examples' sizes and guest instructions per request stay within
//! `bench/budget.toml`: `pwf-bench --check-budget`, which prints every figure
//! next to its budget. `cargo xtask test` runs it as a step of its own, after
//! the release wasm builds whose output it measures.

use std::process::Command;

#[test]
fn examples_stay_within_the_size_and_instruction_budget() {
    let status = Command::new(env!("CARGO_BIN_EXE_pwf-bench"))
        .arg("--check-budget")
        .status()
        .expect("pwf-bench starts");
    assert!(status.success(), "pwf-bench --check-budget: {status}");
}
