//! What the guide and the READMEs show is held to the code: a Rust snippet that is not
//! compiled says why, and a log line shown comes from a test that produces it. (The
//! snippets themselves are compiled by this crate's doc tests.)

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

/// The message of a log line as Envoy prints it: what follows `wasm log: ` or
/// `wasm log <name>: `.
fn logged_message(line: &str) -> Option<&str> {
    let after = &line[line.find("wasm log")? + "wasm log".len()..];
    let colon = after.find(": ")?;
    Some(&after[colon + 2..])
}

/// The sources of the tests: every `.rs` file under a `tests` directory, and the test
/// command's own Envoy checks.
fn test_sources() -> Vec<String> {
    let root = root();
    files(&root, &|path| {
        path.extension().is_some_and(|ext| ext == "rs")
            && (path.components().any(|c| c.as_os_str() == "tests")
                || path.ends_with("xtask/src/template_check.rs"))
    })
    .iter()
    .map(|file| numbers_as_holes(&std::fs::read_to_string(file).expect("a test source reads")))
    .collect()
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
/// starts a message (`my-plugin: `), which each test chooses.
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

/// The log lines shown in `text` whose message no test source holds: each part of the
/// message between `...` elisions and placeholders must appear in one source.
fn unproduced_log_lines(text: &str, sources: &[String]) -> Vec<String> {
    let mut wrong = Vec::new();
    for block in blocks(text) {
        if block.info != "text" && !block.info.is_empty() {
            continue;
        }
        for (offset, line) in block.lines.iter().enumerate() {
            let Some(message) = logged_message(line) else {
                continue;
            };
            let produced = parts(message)
                .into_iter()
                .map(|part| numbers_as_holes(part.trim()))
                .filter(|part| !part.is_empty())
                .all(|part| sources.iter().any(|source| source.contains(&part)));
            if !produced {
                wrong.push(format!(
                    "line {}: no test produces the log line {message:?}",
                    block.line + 1 + offset
                ));
            }
        }
    }
    wrong
}

#[test]
fn every_log_line_shown_comes_from_a_test() {
    let root = root();
    let sources = test_sources();
    let mut wrong = Vec::new();
    for file in markdown() {
        let text = std::fs::read_to_string(&file).expect("a markdown file reads");
        for problem in unproduced_log_lines(&text, &sources) {
            wrong.push(format!(
                "{}: {problem}",
                file.strip_prefix(&root).unwrap_or(&file).display()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn unproduced_log_lines_finds_a_line_no_test_writes() {
    let sources = [numbers_as_holes(
        "assert_eq!(logs, [\"demo: ready\", format!(\"demo: {n} left\")]);",
    )];
    let text = "```text\n[info][wasm] ... wasm log demo: demo: ready\n[info][wasm] ... wasm log demo: demo: 12 left\n[info][wasm] ... wasm log demo: demo: gone\n```\n";
    assert_eq!(
        unproduced_log_lines(text, &sources),
        ["line 4: no test produces the log line \"demo: gone\""]
    );
}
