//! The size and instruction budget in `bench/budget.toml`: for each example
//! the suite meters, its `.wasm` size as built, its size after
//! `wasm-opt -O3` and its guest instructions per request.
//!
//! `--check-budget` (a step of `cargo xtask test`) measures the figures and
//! fails when one has grown past its budget by more than the file's
//! tolerance; `--update-budget` writes the measured figures into the file and
//! prints the change, for the commit message. Every figure is exact (bytes,
//! and wasmtime fuel behind pwf-test's wasm backend), so the check is the same on
//! any machine with the same `rustc` and `wasm-opt`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use pwf_bench_meter::LogLevel;
use toml_edit::{value, DocumentMut, Item, Table};

use crate::{metering, tools, wasm, Example, Flavor, Result};

/// The budget file, from the workspace root.
pub(crate) const FILE: &str = "bench/budget.toml";

/// The command that writes the measured figures into [`FILE`].
const UPDATE_COMMAND: &str = "cargo xtask bench --update-budget";

/// Requests driven through a plugin before the metered ones.
const WARMUP_REQUESTS: usize = 100;
/// Requests metered per plugin: the suite's default, so the figures are the
/// ones docs/performance.md shows.
const METERED_REQUESTS: usize = 1000;

/// A figure the budget holds for each example.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Figure {
    /// The `.wasm` as built, in bytes.
    WasmBytes,
    /// The `.wasm` after `wasm-opt -O3`, in bytes.
    OptBytes,
    /// Guest instructions (fuel) per request, at log level info.
    Instructions,
}

impl Figure {
    pub(crate) const ALL: [Figure; 3] = [Figure::WasmBytes, Figure::OptBytes, Figure::Instructions];

    /// The key of the figure in an example's table.
    fn key(self) -> &'static str {
        match self {
            Figure::WasmBytes => "wasm_bytes",
            Figure::OptBytes => "wasm_opt_bytes",
            Figure::Instructions => "instructions_per_request",
        }
    }

    /// The key of the figure's tolerance in the `[tolerance]` table.
    fn tolerance_key(self) -> &'static str {
        match self {
            Figure::WasmBytes | Figure::OptBytes => "size_percent",
            Figure::Instructions => "instructions_percent",
        }
    }

    /// The figure's name in tables.
    fn shown(self) -> &'static str {
        match self {
            Figure::WasmBytes => ".wasm bytes",
            Figure::OptBytes => "bytes after wasm-opt -O3",
            Figure::Instructions => "instructions per request",
        }
    }
}

/// One figure of one example: its budget, as measured, and how far past the
/// budget it may grow.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Row {
    pub(crate) example: &'static str,
    pub(crate) figure: Figure,
    /// `None` when the file has no budget for it.
    pub(crate) budget: Option<u64>,
    pub(crate) measured: u64,
    /// In percent of the budget.
    pub(crate) tolerance: f64,
}

impl Row {
    /// The largest figure the check accepts.
    pub(crate) fn limit(&self) -> Option<u64> {
        // `budget * tolerance` first: exact for budgets and tolerances like these.
        self.budget
            .map(|budget| budget + (budget as f64 * self.tolerance / 100.0).floor() as u64)
    }

    /// Whether the figure fails the check: past its limit, or without budget.
    pub(crate) fn fails(&self) -> bool {
        self.limit().is_none_or(|limit| self.measured > limit)
    }

    /// Whether the figure is below its budget by more than the tolerance, so
    /// the budget can come down.
    fn well_below(&self) -> bool {
        self.budget.is_some_and(|budget| {
            (self.measured as f64) < budget as f64 - budget as f64 * self.tolerance / 100.0
        })
    }

    /// `+1.23 %`, the change from the budget.
    fn change(&self) -> String {
        match self.budget {
            Some(0) | None => "new".to_owned(),
            Some(budget) => format!(
                "{:+.2} %",
                (self.measured as f64 - budget as f64) / budget as f64 * 100.0
            ),
        }
    }

    /// What the check says of the figure.
    fn verdict(&self) -> String {
        match self.limit() {
            None => format!("FAILS: no budget (run `{UPDATE_COMMAND}`)"),
            Some(limit) if self.measured > limit => format!(
                "FAILS: over the limit {limit} (budget +{} %)",
                self.tolerance
            ),
            Some(_) if self.well_below() => "ok, well below: the budget can come down".to_owned(),
            Some(_) => "ok".to_owned(),
        }
    }
}

/// The figures of one example, as measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Measured {
    pub(crate) example: Example,
    pub(crate) wasm_bytes: u64,
    pub(crate) opt_bytes: u64,
    pub(crate) instructions: u64,
}

impl Measured {
    fn get(&self, figure: Figure) -> u64 {
        match figure {
            Figure::WasmBytes => self.wasm_bytes,
            Figure::OptBytes => self.opt_bytes,
            Figure::Instructions => self.instructions,
        }
    }
}

/// The budget file, parsed with its comments kept, so an update rewrites the
/// figures and nothing else.
pub(crate) struct Budget {
    document: DocumentMut,
}

impl Budget {
    /// Parses the text of a budget file.
    pub(crate) fn parse(text: &str) -> Result<Budget> {
        let document: DocumentMut = text
            .parse()
            .map_err(|error| format!("{FILE} is not valid TOML: {error}"))?;
        let budget = Budget { document };
        for figure in Figure::ALL {
            budget.tolerance(figure)?;
        }
        Ok(budget)
    }

    /// The tolerance of `figure`, in percent.
    fn tolerance(&self, figure: Figure) -> Result<f64> {
        let key = figure.tolerance_key();
        let item = self
            .document
            .get("tolerance")
            .and_then(|table| table.get(key));
        item.and_then(|item| {
            item.as_float()
                .or_else(|| item.as_integer().map(|n| n as f64))
        })
        .filter(|percent| percent.is_finite() && *percent >= 0.0)
        .ok_or_else(|| {
            format!("{FILE}: `tolerance.{key}` must be a percentage, such as 0.5").into()
        })
    }

    /// The budget of `figure` for `example`, if the file has one.
    fn figure(&self, example: Example, figure: Figure) -> Option<u64> {
        self.document
            .get(example.name())
            .and_then(|table| table.get(figure.key()))
            .and_then(Item::as_integer)
            .and_then(|n| u64::try_from(n).ok())
    }

    /// What the figures were measured with, as the file says it.
    fn tools(&self) -> Option<String> {
        self.document
            .get("measured_with")
            .and_then(Item::as_table)
            .map(tools_line)
    }

    /// Every figure of `measured` against the budget.
    pub(crate) fn compare(&self, measured: &[Measured]) -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        for m in measured {
            for figure in Figure::ALL {
                rows.push(Row {
                    example: m.example.name(),
                    figure,
                    budget: self.figure(m.example, figure),
                    measured: m.get(figure),
                    tolerance: self.tolerance(figure)?,
                });
            }
        }
        Ok(rows)
    }

    /// Sets every figure to `measured`, and what they were measured with.
    pub(crate) fn set(&mut self, measured: &[Measured], tools: &Tools) {
        for m in measured {
            let table = self.table(m.example.name());
            for figure in Figure::ALL {
                table[figure.key()] = value(m.get(figure) as i64);
            }
        }
        let table = self.table("measured_with");
        table["rustc"] = value(tools.rustc.as_str());
        table["wasm_opt"] = value(tools.wasm_opt.as_str());
    }

    /// The table `name`, created at the end of the file when missing.
    fn table(&mut self, name: &str) -> &mut Table {
        let item = self
            .document
            .entry(name)
            .or_insert_with(|| Item::Table(Table::new()));
        if !item.is_table() {
            *item = Item::Table(Table::new());
        }
        item.as_table_mut().expect("a table was just put there")
    }

    /// The file's text.
    pub(crate) fn text(&self) -> String {
        self.document.to_string()
    }
}

/// The versions of the tools the figures depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tools {
    rustc: String,
    wasm_opt: String,
}

impl Tools {
    fn installed() -> Tools {
        Tools {
            rustc: version_of("rustc"),
            wasm_opt: version_of("wasm-opt"),
        }
    }

    fn line(&self) -> String {
        format!("{}; {}", self.rustc, self.wasm_opt)
    }
}

fn tools_line(table: &Table) -> String {
    let get = |key: &str| table.get(key).and_then(Item::as_str).unwrap_or("?");
    format!("{}; {}", get("rustc"), get("wasm_opt"))
}

fn version_of(program: &str) -> String {
    Command::new(program)
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_else(|error| format!("{program}: {error}"))
}

/// The rows as an aligned table: with `verdicts`, the budget, the figure as
/// measured and what the check says of it; without, the old and new figure.
pub(crate) fn table(rows: &[Row], verdicts: bool) -> String {
    let mut out = String::new();
    let (old, new, last) = if verdicts {
        ("budget", "measured", "  verdict")
    } else {
        ("old", "new", "")
    };
    let _ = writeln!(
        out,
        "{:<20} {:<25} {old:>9} {new:>9} {:>9}{last}",
        "example", "figure", "change",
    );
    for row in rows {
        let budget = row.budget.map_or("-".to_owned(), |b| b.to_string());
        let _ = write!(
            out,
            "{:<20} {:<25} {:>9} {:>9} {:>9}",
            row.example,
            row.figure.shown(),
            budget,
            row.measured,
            row.change()
        );
        if verdicts {
            let _ = write!(out, "  {}", row.verdict());
        }
        out.push('\n');
    }
    out
}

/// The `.wasm` the test command builds for `example` (pwf's, as shipped:
/// the workspace's release profile and `.cargo/config.toml`).
fn built_path(workspace: &Path, example: Example) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("wasm32-wasip1/release")
        .join(format!("{}.wasm", example.package(Flavor::Pwf)))
}

/// Builds the examples as `cargo xtask test` does (nothing to do when it
/// just did), and measures their figures.
fn measure(workspace: &Path) -> Result<Vec<Measured>> {
    for variable in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS"] {
        if std::env::var_os(variable).is_some_and(|flags| !flags.is_empty()) {
            return Err(format!(
                "{variable} is set: the budget is for the build as the workspace configures it \
                 (.cargo/config.toml), which {variable} replaces; unset it"
            )
            .into());
        }
    }
    tools::ensure(&[tools::WASM_OPT])?;
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .current_dir(workspace)
        .args(["build", "--release", "--target", "wasm32-wasip1"]);
    for example in Example::ALL {
        command.args(["-p", &example.package(Flavor::Pwf)]);
    }
    let status = command.status()?;
    if !status.success() {
        return Err(format!("cargo build of the examples failed: {status}").into());
    }
    let optimized_dir = wasm::target_root(workspace).join("budget");
    fs::create_dir_all(&optimized_dir)?;
    // One thread per example: most of the time goes into compiling each
    // module (wasm-opt, and wasmtime before it meters), one core each.
    std::thread::scope(|scope| {
        let threads: Vec<_> = Example::ALL
            .map(|example| {
                let optimized_dir = &optimized_dir;
                scope.spawn(move || {
                    measure_one(workspace, optimized_dir, example).map_err(|e| e.to_string())
                })
            })
            .into_iter()
            .collect();
        threads
            .into_iter()
            .map(|thread| match thread.join() {
                Ok(measured) => measured.map_err(Into::into),
                Err(_) => Err("measuring an example panicked".into()),
            })
            .collect()
    })
}

/// The figures of `example`, its `wasm-opt` output written in `optimized_dir`.
fn measure_one(workspace: &Path, optimized_dir: &Path, example: Example) -> Result<Measured> {
    let path = built_path(workspace, example);
    let bytes =
        fs::read(&path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let optimized = optimized_dir.join(format!("{}.opt.wasm", example.package(Flavor::Pwf)));
    wasm::optimize_to(&path, &optimized)?;
    let metered = metering::meter(
        &bytes,
        example,
        LogLevel::Info,
        WARMUP_REQUESTS,
        METERED_REQUESTS,
    )?;
    Ok(Measured {
        example,
        wasm_bytes: bytes.len() as u64,
        opt_bytes: fs::metadata(&optimized)?.len(),
        instructions: metered.per_request.round() as u64,
    })
}

fn read(workspace: &Path) -> Result<Budget> {
    let path = workspace.join(FILE);
    let text = fs::read_to_string(&path).map_err(|error| format!("cannot read {FILE}: {error}"))?;
    Budget::parse(&text)
}

/// Measures the figures and fails when one is past its budget and tolerance;
/// prints every figure either way.
pub(crate) fn check(workspace: &Path) -> Result<()> {
    let budget = read(workspace)?;
    let measured = measure(workspace)?;
    let rows = budget.compare(&measured)?;
    let tools = Tools::installed();
    println!(
        "{FILE}: sizes may grow {} %, instructions {} %, past their budget",
        budget.tolerance(Figure::WasmBytes)?,
        budget.tolerance(Figure::Instructions)?
    );
    print!("{}", table(&rows, true));
    let failed = rows.iter().filter(|row| row.fails()).count();
    if failed == 0 {
        return Ok(());
    }
    let mut message = format!(
        "{failed} figure(s) past the budget in {FILE}. If the growth is worth it, refresh the \
         budget with `{UPDATE_COMMAND}` and say in the commit what it costs and why"
    );
    let budget_tools = budget.tools().unwrap_or_default();
    if budget_tools != tools.line() {
        let _ = write!(
            message,
            "\nnote: the budget was measured with {budget_tools}, this run with {}: other \
             tools build other code",
            tools.line()
        );
    }
    Err(message.into())
}

/// Measures the figures, writes them into the budget file and prints the
/// change, ready for the commit message.
pub(crate) fn update(workspace: &Path) -> Result<()> {
    let mut budget = read(workspace)?;
    let measured = measure(workspace)?;
    let rows = budget.compare(&measured)?;
    let tools = Tools::installed();
    budget.set(&measured, &tools);
    fs::write(workspace.join(FILE), budget.text())?;
    println!("\n{FILE}: the examples' sizes and instructions per request as measured now\n");
    print!("{}", table(&rows, false));
    println!("\nmeasured with {}", tools.line());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE_TEXT: &str = "\
# A comment that an update keeps.
[tolerance]
size_percent = 0.5 # and this one
instructions_percent = 1

[shared_data]
wasm_bytes = 1000
wasm_opt_bytes = 800
instructions_per_request = 2000
";

    fn measured(wasm_bytes: u64, opt_bytes: u64, instructions: u64) -> Measured {
        Measured {
            example: Example::SharedData,
            wasm_bytes,
            opt_bytes,
            instructions,
        }
    }

    fn failing(rows: &[Row]) -> Vec<Figure> {
        rows.iter()
            .filter(|row| row.fails())
            .map(|row| row.figure)
            .collect()
    }

    #[test]
    fn compare_passes_figures_within_the_tolerance() {
        let budget = Budget::parse(FILE_TEXT).unwrap();
        // 0.5 % of 1000 bytes is 5, 1 % of 2000 instructions is 20.
        let rows = budget.compare(&[measured(1005, 804, 2020)]).unwrap();
        assert_eq!(failing(&rows), []);
    }

    #[test]
    fn compare_fails_each_figure_past_its_tolerance() {
        let budget = Budget::parse(FILE_TEXT).unwrap();
        let rows = budget.compare(&[measured(1006, 800, 2021)]).unwrap();
        assert_eq!(failing(&rows), [Figure::WasmBytes, Figure::Instructions]);
        assert_eq!(
            table(&rows, true),
            "\
example              figure                       budget  measured    change  verdict
shared_data          .wasm bytes                    1000      1006   +0.60 %  FAILS: over the limit 1005 (budget +0.5 %)
shared_data          bytes after wasm-opt -O3        800       800   +0.00 %  ok
shared_data          instructions per request       2000      2021   +1.05 %  FAILS: over the limit 2020 (budget +1 %)
"
        );
    }

    #[test]
    fn compare_fails_an_example_without_budget() {
        let budget = Budget::parse(FILE_TEXT).unwrap();
        let mut other = measured(1, 1, 1);
        other.example = Example::HttpAuthRandom;
        let rows = budget.compare(&[other]).unwrap();
        assert_eq!(failing(&rows).len(), 3);
        assert!(table(&rows, true).contains("FAILS: no budget"));
    }

    #[test]
    fn compare_says_when_a_budget_can_come_down() {
        let budget = Budget::parse(FILE_TEXT).unwrap();
        let rows = budget.compare(&[measured(900, 800, 2000)]).unwrap();
        assert_eq!(failing(&rows), []);
        assert_eq!(
            rows[0].verdict(),
            "ok, well below: the budget can come down"
        );
        assert_eq!(rows[1].verdict(), "ok");
    }

    #[test]
    fn set_rewrites_the_figures_and_keeps_the_comments() {
        let mut budget = Budget::parse(FILE_TEXT).unwrap();
        let tools = Tools {
            rustc: "rustc 1".to_owned(),
            wasm_opt: "wasm-opt version 2".to_owned(),
        };
        budget.set(&[measured(990, 790, 1990)], &tools);
        let text = budget.text();
        assert!(text.contains("# A comment that an update keeps."), "{text}");
        assert!(text.contains("size_percent = 0.5 # and this one"), "{text}");
        let again = Budget::parse(&text).unwrap();
        let rows = again.compare(&[measured(990, 790, 1990)]).unwrap();
        assert!(rows.iter().all(|row| row.budget == Some(row.measured)));
        assert_eq!(
            again.tools().as_deref(),
            Some("rustc 1; wasm-opt version 2")
        );
    }

    #[test]
    fn parse_refuses_a_file_without_tolerances() {
        let error = Budget::parse("[shared_data]\nwasm_bytes = 1\n")
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("tolerance.size_percent"),
            "{error}"
        );
    }

    /// The committed budget parses and holds every figure of every example.
    #[test]
    fn committed_budget_holds_every_figure() {
        let workspace = crate::workspace_root();
        let budget = read(&workspace).unwrap();
        for example in Example::ALL {
            for figure in Figure::ALL {
                assert!(
                    budget.figure(example, figure).is_some(),
                    "{FILE} has no {} for {}",
                    figure.key(),
                    example.name()
                );
            }
        }
    }
}
