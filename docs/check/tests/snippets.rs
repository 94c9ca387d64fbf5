//! What the guide and the READMEs show is held to the code: a Rust snippet that is not
//! compiled says why, and every message an output block shows (a log line, an error, a
//! panic, what the harness prints) comes from a test that produces it. (The snippets
//! themselves are compiled by this crate's doc tests.)

use std::path::{Path, PathBuf};

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// Files under `dir` (recursively, skipping `target/` and hidden directories) whose name
/// `keep` accepts.
fn files(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
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
            } else if keep(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The markdown files the doc tests compile: `docs/**/*.md` and every `README.md`.
fn markdown() -> Vec<PathBuf> {
    let root = root();
    let docs = root.join("docs");
    files(&root, &|path| {
        path.file_name().is_some_and(|name| name == "README.md")
            || (path.starts_with(&docs) && path.extension().is_some_and(|ext| ext == "md"))
    })
}

/// A fenced block: its info string, the line of its fence (1-based), the line before the
/// fence, and its lines.
struct Block {
    info: String,
    line: usize,
    before: String,
    lines: Vec<String>,
}

/// The fenced blocks of a markdown text.
fn blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = lines[i].trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let start = i;
        let mut body = Vec::new();
        i += 1;
        while i < lines.len() && !lines[i].trim_start().starts_with("```") {
            body.push(lines[i].to_owned());
            i += 1;
        }
        found.push(Block {
            info: info.trim().to_owned(),
            line: start + 1,
            before: start
                .checked_sub(1)
                .map_or(String::new(), |b| lines[b].to_owned()),
            lines: body,
        });
        i += 1;
    }
    found
}

/// What is wrong with the Rust blocks of `text`: a block that rustdoc would not compile
/// (`ignore`) without a `<!-- not compiled: reason -->` line right before it, or Rust code
/// under another name (`rs`), which rustdoc would skip.
fn unmarked_snippets(text: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    for block in blocks(text) {
        let words: Vec<&str> = block.info.split(',').map(str::trim).collect();
        if words.first() == Some(&"rs") {
            wrong.push(format!(
                "line {}: write ```rust, not ```rs, so that the snippet is compiled",
                block.line
            ));
        }
        if words.first() == Some(&"rust") && words.contains(&"ignore") {
            let reason = block
                .before
                .trim()
                .strip_prefix("<!-- not compiled:")
                .and_then(|rest| rest.strip_suffix("-->"))
                .map(str::trim);
            if reason.is_none_or(str::is_empty) {
                wrong.push(format!(
                    "line {}: a snippet that is not compiled needs `<!-- not compiled: <why> -->` on the line before it",
                    block.line
                ));
            }
        }
    }
    wrong
}

#[test]
fn every_snippet_that_is_not_compiled_says_why() {
    let root = root();
    let mut wrong = Vec::new();
    for file in markdown() {
        let text = std::fs::read_to_string(&file).expect("a markdown file reads");
        for problem in unmarked_snippets(&text) {
            wrong.push(format!(
                "{}: {problem}",
                file.strip_prefix(&root).unwrap_or(&file).display()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn unmarked_snippets_finds_an_ignored_snippet_without_a_reason() {
    let text = "a\n```rust,ignore\nfn f() {}\n```\n<!-- not compiled: shown in part -->\n```rust,ignore\nfn g() {}\n```\n```rs\nfn h() {}\n```\n";
    assert_eq!(
        unmarked_snippets(text),
        [
            "line 2: a snippet that is not compiled needs `<!-- not compiled: <why> -->` on the line before it",
            "line 9: write ```rust, not ```rs, so that the snippet is compiled",
        ]
    );
}

/// The info strings of output blocks: what a command printed or Envoy logged. Their lines
/// are checked against the tests (see [`unproduced_output`]).
const OUTPUT: [&str; 4] = ["text", "console", "log", ""];

/// The reason of a `<!-- not checked: reason -->` line, if `line` is one.
fn not_checked_reason(line: &str) -> Option<&str> {
    line.trim()
        .strip_prefix("<!-- not checked:")
        .and_then(|rest| rest.strip_suffix("-->"))
        .map(str::trim)
}

/// What a line of an output block shows, without Envoy's log prefix: the `[level][logger]`
/// groups (and a timestamp or thread written the same way) and the `...` standing for the
/// rest of it. `None` for what is not shown output: a blank line, a `...` elision, a command
/// typed (`$ `) and a narration line (`# `).
fn shown(line: &str) -> Option<&str> {
    let mut rest = line.trim();
    if rest.is_empty() || rest == "..." || rest.starts_with("$ ") || rest.starts_with("# ") {
        return None;
    }
    while rest.starts_with('[') {
        match rest.find(']') {
            Some(close) => rest = rest[close + 1..].trim_start(),
            None => break,
        }
    }
    if let Some(after) = rest.strip_prefix("... ") {
        rest = after;
    }
    Some(rest.trim())
}

/// The message of a log line as Envoy prints it: what follows `wasm log: ` or
/// `wasm log <name>: `.
fn logged_message(line: &str) -> Option<&str> {
    let after = &line[line.find("wasm log")? + "wasm log".len()..];
    let colon = after.find(": ")?;
    Some(&after[colon + 2..])
}

/// The sources of the tests: every `.rs` file under a `tests` directory (the e2e tests
/// assert what Envoy logs), the unit tests of the other sources (from `#[cfg(test)]` on), the
/// expected compiler output of the derive's UI tests (`tests/ui/*.stderr`), and the test
/// command's own Envoy checks.
fn test_sources() -> Vec<String> {
    let root = root();
    files(&root, &|path| {
        path.extension()
            .is_some_and(|ext| ext == "rs" || ext == "stderr")
    })
    .iter()
    .filter_map(|file| {
        let text = std::fs::read_to_string(file).expect("a test source reads");
        let test = if file.components().any(|c| c.as_os_str() == "tests")
            || file.ends_with("xtask/src/template_check.rs")
        {
            &text[..]
        } else {
            &text[text.find("#[cfg(test)]")?..]
        };
        Some(numbers_as_holes(&format!("{test}\n{}", unescaped(test))))
    })
    .collect()
}

/// `source` with its string literals read as Rust reads them, roughly: a `\` at the end of a
/// line joins the next line without its indentation, and `\"` and `\\` are `"` and `\`. So
/// a message written over several lines, or with escaped quotes, is found as printed.
fn unescaped(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some('\n')) => {
                chars.next();
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
            }
            ('\\', Some(&next @ ('"' | '\\'))) => {
                chars.next();
                out.push(next);
            }
            _ => out.push(c),
        }
    }
    out
}

/// `text` with each run of digits, and each `format!` hole (`{}`, `{count}`), written `#`:
/// a test that formats `"{n} pending"` produces the line `3 pending` shown in a README.
fn numbers_as_holes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('#');
        } else if c == '{' && chars.peek().is_some_and(|&next| next != '{') {
            let rest: String = chars
                .clone()
                .take_while(|&c| c != '}' && c != ' ')
                .collect();
            if chars.clone().nth(rest.len()) == Some('}') {
                for _ in 0..=rest.len() {
                    chars.next();
                }
                out.push('#');
            } else {
                out.push(c);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What a shown message must hold, in pieces: the text between `...` elisions, `<file>`-like
/// placeholders and `{{project-name}}` (the template's placeholder), without the plugin name that
/// starts a configuration message (`my-plugin: `), which each test chooses.
fn parts(message: &str) -> Vec<&str> {
    let message = match message.split_once(": ") {
        Some((_, rest))
            if rest.starts_with("invalid plugin configuration")
                || rest.starts_with("plugin configuration")
                || rest.starts_with("setting ") =>
        {
            rest
        }
        _ => message,
    };
    let mut parts = Vec::new();
    for piece in message
        .split("...")
        .flat_map(|part| part.split("{{project-name}}"))
    {
        let mut rest = piece;
        while let Some(open) = rest.find('<') {
            match rest[open..].find('>') {
                Some(close) => {
                    parts.push(&rest[..open]);
                    rest = &rest[open + close + 1..];
                }
                None => break,
            }
        }
        parts.push(rest);
    }
    parts.retain(|part| !part.trim().is_empty());
    parts
}

/// Whether some test source holds `shown`: each of its [`parts`] (numbers as holes) occurs
/// in one source.
fn produced(shown: &str, sources: &[String]) -> bool {
    parts(shown)
        .into_iter()
        .map(|part| numbers_as_holes(part.trim()))
        .filter(|part| !part.is_empty())
        .all(|part| sources.iter().any(|source| source.contains(&part)))
}

/// What is wrong with the output blocks of `text` (fenced ` ```text `, ` ```console `,
/// ` ```log `, or without an info string):
///
/// - a log line of a plugin (`wasm log ...`) must be produced by a test whole, from
///   `wasm log` on: Envoy's prefix (`wasm log <name>: ` or `wasm log <name> <vm_id>: `) is
///   part of what the docs claim;
/// - every other line of an output block too, after Envoy's `[level][logger] ... ` prefix:
///   an error message, a panic line, what the harness prints. Blank lines, `...`, commands
///   (`$ `) and narration (`# `) are not output;
/// - a block that is not real output (a diagram, a file tree, a formula), or output that
///   varies from run to run (a transcript with dates and ids), says so with
///   `<!-- not checked: <why> -->` on the line before it; the messages of its `wasm log`
///   lines are still checked (after the prefix, which that run's Envoy wrote).
fn unproduced_output(text: &str, sources: &[String]) -> Vec<String> {
    let mut wrong = Vec::new();
    for block in blocks(text) {
        let reason = not_checked_reason(&block.before);
        if reason.is_some_and(str::is_empty) {
            wrong.push(format!(
                "line {}: `<!-- not checked: -->` needs a reason",
                block.line
            ));
        }
        let output = OUTPUT.contains(&block.info.as_str());
        for (offset, line) in block.lines.iter().enumerate() {
            let at = block.line + 1 + offset;
            if let Some(start) = line.find("wasm log") {
                // In a block not checked, the message alone: Envoy wrote the prefix in the
                // run the transcript shows.
                let claim = match reason {
                    Some(_) => logged_message(line),
                    None => Some(line[start..].trim()),
                };
                if let Some(claim) = claim.filter(|claim| output && !produced(claim, sources)) {
                    wrong.push(format!(
                        "line {at}: no test produces the log line {claim:?}"
                    ));
                }
                continue;
            }
            if !output || reason.is_some() {
                continue;
            }
            let Some(shown) = shown(line) else {
                continue;
            };
            if !produced(shown, sources) {
                wrong.push(format!("line {at}: no test produces {shown:?}"));
            }
        }
    }
    wrong
}

#[test]
fn every_message_shown_comes_from_a_test() {
    let root = root();
    let sources = test_sources();
    let mut wrong = Vec::new();
    for file in markdown() {
        let text = std::fs::read_to_string(&file).expect("a markdown file reads");
        for problem in unproduced_output(&text, &sources) {
            wrong.push(format!(
                "{}: {problem}",
                file.strip_prefix(&root).unwrap_or(&file).display()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn unescaped_joins_continued_lines_and_reads_escaped_quotes() {
    let source = "assert_eq!(e, \"call \\\"a\\\" not sent: \\\n        too long\\\\\");";
    assert_eq!(
        unescaped(source),
        "assert_eq!(e, \"call \"a\" not sent: too long\\\");"
    );
}

#[test]
fn unproduced_output_finds_a_log_line_no_test_writes() {
    let sources = [numbers_as_holes(
        "assert_eq!(logs, [\"wasm log demo: demo: ready\", format!(\"wasm log demo demo: {n} left\")]);",
    )];
    let text = "```text\n[info][wasm] ... wasm log demo: demo: ready\n[info][wasm] ... wasm log demo demo: 12 left\n[info][wasm] ... wasm log demo: demo: gone\n[info][wasm] ... wasm log demo: demo: 12 left\n```\n";
    assert_eq!(
        unproduced_output(text, &sources),
        [
            "line 4: no test produces the log line \"wasm log demo: demo: gone\"",
            "line 5: no test produces the log line \"wasm log demo: demo: 12 left\"",
        ]
    );
}

#[test]
fn unproduced_output_finds_an_error_message_no_test_produces() {
    let sources = [numbers_as_holes(
        r#"assert_eq!(err, r"window: expected a duration with its unit, such as "10s" or "10ms", got 10");"#,
    )];
    // The first message is produced; the second, one word off, is the injected false one.
    let text = concat!(
        "```text\n",
        "window: expected a duration with its unit, such as \"10s\" or \"10ms\", got 10\n",
        "window: expected a duration with a unit, such as \"10s\" or \"10ms\", got 10\n",
        "```\n",
    );
    assert_eq!(
        unproduced_output(text, &sources),
        ["line 3: no test produces \"window: expected a duration with a unit, such as \\\"10s\\\" or \\\"10ms\\\", got 10\""]
    );
}

#[test]
fn unproduced_output_skips_what_is_not_output_and_blocks_marked_not_checked() {
    let sources = [numbers_as_holes(
        r#"assert!(log.contains("Plugin demo failed to load"));"#,
    )];
    let text = concat!(
        "```text\n",
        "$ envoy -c envoy.yaml\n",
        "# Envoy refuses the plugin:\n",
        "[critical][wasm] ... Plugin demo failed to load\n",
        "...\n",
        "\n",
        "[critical][main] ... Plugin demo failed to start\n",
        "```\n",
        "<!-- not checked: a diagram -->\n",
        "```text\n",
        "load ── configure ── streams\n",
        "[info] wasm log demo: demo: invented\n",
        "[info] wasm log demo my-vm: Plugin demo failed to load\n",
        "```\n",
        "<!-- not checked: -->\n",
        "```text\n",
        "a tree\n",
        "```\n",
        "```sh\n",
        "grep 'wasm log demo: demo: anything' envoy.log\n",
        "```\n",
    );
    assert_eq!(
        unproduced_output(text, &sources),
        [
            "line 7: no test produces \"Plugin demo failed to start\"",
            "line 12: no test produces the log line \"demo: invented\"",
            "line 16: `<!-- not checked: -->` needs a reason",
        ]
    );
}
