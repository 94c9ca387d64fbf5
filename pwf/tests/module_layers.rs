//! The modules of `pwf/src` form layers: no two of them use each other,
//! directly or through others, and docs/architecture.md's module table lists
//! them bottom to top.
//!
//! A module's dependencies are read from its library code (every file of a
//! module directory counts as the module; its tests do not): each `crate::`
//! path, in a `use` or in code, names a module, an item `lib.rs` re-exports
//! from one, or a macro a module exports. `lib.rs` itself is the top, above
//! every module.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Edges a cycle may still use, each with why it is allowed for now.
const KNOWN_EXCEPTIONS: &[(&str, &str)] = &[];

/// Module name → its dependencies (other modules of the crate).
type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn no_two_modules_of_pwf_use_each_other() {
    let graph = read_graph(&source_dir());
    if std::env::var_os("PWF_PRINT_MODULES").is_some() {
        for (module, uses) in &graph {
            println!("{module}: {uses:?}");
        }
    }
    let cycles = cycles(&without_exceptions(&graph));
    assert!(
        cycles.is_empty(),
        "modules of pwf/src that use each other (a cycle each; \
         move what both need into a module below them):\n{}",
        cycles.join("\n")
    );
}

#[test]
fn architecture_module_table_lists_the_layers_bottom_to_top() {
    let graph = without_exceptions(&read_graph(&source_dir()));
    let doc_path = source_dir().join("../../docs/architecture.md");
    let doc = fs::read_to_string(&doc_path).expect("docs/architecture.md");
    let listed = table_modules(&doc);
    let mut problems = Vec::new();
    for module in graph.keys() {
        if !listed.contains(module) {
            problems.push(format!("`{module}` is not in the table"));
        }
    }
    for (row, module) in listed.iter().enumerate() {
        let Some(uses) = graph.get(module) else {
            problems.push(format!("`{module}` is in the table, but not in pwf/src"));
            continue;
        };
        for used in uses {
            let below = listed[..row].contains(used);
            if !below {
                problems.push(format!(
                    "`{module}` uses `{used}`, which the table lists above it, not below"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/architecture.md, \"Modules of `pwf`\" (bottom to top):\n{}",
        problems.join("\n")
    );
}

#[test]
fn cycles_names_each_cycle_and_accepts_layers() {
    let graph = |edges: &[(&str, &str)]| {
        let mut graph = Graph::new();
        for (from, to) in edges {
            graph.entry(to.to_string()).or_default();
            graph
                .entry(from.to_string())
                .or_default()
                .insert(to.to_string());
        }
        graph
    };
    assert!(cycles(&graph(&[("http", "call"), ("call", "host")])).is_empty());
    assert_eq!(
        cycles(&graph(&[
            ("call", "group"),
            ("group", "call"),
            ("http", "call")
        ])),
        ["call → group → call"]
    );
    assert_eq!(
        cycles(&graph(&[
            ("call", "plugin"),
            ("plugin", "timer"),
            ("timer", "call")
        ])),
        ["call → plugin → timer → call"]
    );
}

#[test]
fn dependencies_are_read_from_use_items_paths_reexports_and_macros() {
    let modules: BTreeSet<String> = ["call", "config", "group", "log", "plugin"]
        .map(String::from)
        .into();
    let reexports: BTreeMap<String, String> = [
        ("DispatchGroup", "group"),
        ("PluginConfig", "config"),
        ("info", "log"),
    ]
    .map(|(name, module)| (name.to_string(), module.to_string()))
    .into();
    let source = "
        use crate::{config::{self, Value}, DispatchGroup};
        // crate::plugin in a comment does not count
        fn f() { crate::info!(\"x\"); let _ = crate::call::call_millis(d); }
        macro_rules! m { () => { $crate::plugin::register() } }
#[cfg(test)]
mod tests { use crate::plugin; }
    ";
    assert_eq!(
        uses_of(source, &modules, &reexports),
        ["call", "config", "group", "log"].map(String::from).into()
    );
}

fn source_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Reads every module of `src` and what it uses.
fn read_graph(src: &Path) -> Graph {
    let mut sources: BTreeMap<String, String> = BTreeMap::new();
    for entry in fs::read_dir(src).expect("pwf/src") {
        let path = entry.expect("an entry of pwf/src").path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            sources.insert(name, read_tree(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") && name != "lib" {
            sources.insert(name, fs::read_to_string(&path).unwrap());
        }
    }
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    let lib = fs::read_to_string(src.join("lib.rs")).unwrap();
    let mut names = reexports(&lib, &modules);
    for (module, source) in &sources {
        for name in exported_macros(source) {
            names.insert(name, module.clone());
        }
    }
    sources
        .iter()
        .map(|(module, source)| {
            let mut uses = uses_of(source, &modules, &names);
            uses.remove(module);
            (module.clone(), uses)
        })
        .collect()
}

/// The library code of every `.rs` file under `dir`, one after the other.
fn read_tree(dir: &Path) -> String {
    let mut text = String::new();
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            text += &read_tree(&path);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            // Each file's own tests end that file, not the module.
            text += &code_of(&fs::read_to_string(&path).unwrap());
            text.push('\n');
        }
    }
    text
}

/// The library code of `source`: without its `//` comments (doc comments
/// included), its `#[cfg(test)]` module (which by convention ends a file)
/// and the `$crate::` paths of its macros (which name what the code that
/// calls the macro uses).
fn code_of(source: &str) -> String {
    let library = source
        .find("#[cfg(test)]\nmod ")
        .map_or(source, |at| &source[..at]);
    library
        .replace("$crate::", "$")
        .lines()
        .map(|line| line.find("//").map_or(line, |at| &line[..at]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What `lib.rs` re-exports: item name → the module it comes from.
fn reexports(lib: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let code = code_of(lib);
    let mut names = BTreeMap::new();
    for item in code.split("pub use ").skip(1) {
        let item = &item[..item.find(';').unwrap_or(item.len())];
        let Some((module, rest)) = item.split_once("::") else {
            continue;
        };
        let module = module.trim();
        if !modules.contains(module) {
            continue;
        }
        let rest = rest.trim().trim_start_matches('{').trim_end_matches('}');
        for name in rest.split(',') {
            let name = name.trim();
            if !name.is_empty() {
                names.insert(name.to_string(), module.to_string());
            }
        }
    }
    names
}

/// The macros `source` exports at the crate's root.
fn exported_macros(source: &str) -> Vec<String> {
    let code = code_of(source);
    code.split("#[macro_export]")
        .skip(1)
        .filter_map(|after| {
            let after = after.trim_start().strip_prefix("macro_rules!")?;
            Some(identifier(after.trim_start()).to_string())
        })
        .collect()
}

/// The modules `source` names through `crate::` paths.
fn uses_of(
    source: &str,
    modules: &BTreeSet<String>,
    names: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    let code = code_of(source);
    let mut uses = BTreeSet::new();
    let mut add = |name: &str| {
        if modules.contains(name) {
            uses.insert(name.to_string());
        } else if let Some(module) = names.get(name) {
            uses.insert(module.clone());
        }
    };
    for after in code.split("crate::").skip(1) {
        let after = after.trim_start();
        match after.strip_prefix('{') {
            Some(group) => {
                for item in top_level_items(group) {
                    add(identifier(item.trim_start()));
                }
            }
            None => add(identifier(after)),
        }
    }
    uses
}

/// The items of a `{ .. }` group (its text after the `{`), split at its
/// top-level commas.
fn top_level_items(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (at, ch) in group.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..at]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    items
}

/// The identifier `text` starts with.
fn identifier(text: &str) -> &str {
    let end = text
        .find(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

fn without_exceptions(graph: &Graph) -> Graph {
    let mut graph = graph.clone();
    for (from, to) in KNOWN_EXCEPTIONS {
        if let Some(uses) = graph.get_mut(*from) {
            uses.remove(*to);
        }
    }
    graph
}

/// One cycle for each group of modules that reach each other, as
/// `a → b → a`.
fn cycles(graph: &Graph) -> Vec<String> {
    let mut found = Vec::new();
    let mut in_a_cycle: BTreeSet<String> = BTreeSet::new();
    for start in graph.keys() {
        if in_a_cycle.contains(start) {
            continue;
        }
        if let Some(path) = path_back(graph, start) {
            let group = reach_each_other(graph, start);
            let names: Vec<&str> = group.iter().map(String::as_str).collect();
            found.push(if group.len() > path.len() - 1 {
                format!(
                    "{} (all of {} reach each other)",
                    path.join(" → "),
                    names.join(", ")
                )
            } else {
                path.join(" → ")
            });
            in_a_cycle.extend(group);
        }
    }
    found
}

/// A shortest path from `start` back to itself, if there is one.
fn path_back(graph: &Graph, start: &str) -> Option<Vec<String>> {
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut frontier = vec![start];
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for module in frontier {
            for used in graph.get(module).into_iter().flatten() {
                if used == start {
                    // start → … → module, then back to start.
                    let mut path = vec![module.to_string()];
                    let mut at = module;
                    while at != start {
                        at = came_from[at];
                        path.push(at.to_string());
                    }
                    path.reverse();
                    path.push(start.to_string());
                    return Some(path);
                }
                if !came_from.contains_key(used.as_str()) {
                    came_from.insert(used, module);
                    next.push(used.as_str());
                }
            }
        }
        frontier = next;
    }
    None
}

/// The modules that `start` reaches and that reach it back.
fn reach_each_other(graph: &Graph, start: &str) -> BTreeSet<String> {
    let reached_from = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(module) = stack.pop() {
            for used in graph.get(&module).into_iter().flatten() {
                if seen.insert(used.clone()) {
                    stack.push(used.clone());
                }
            }
        }
        seen
    };
    reached_from(start)
        .into_iter()
        .filter(|module| reached_from(module).contains(start))
        .collect()
}

/// The modules docs/architecture.md's module table lists, in its order.
fn table_modules(doc: &str) -> Vec<String> {
    let section = doc
        .split("## Modules of `pwf`")
        .nth(1)
        .expect("a section \"Modules of `pwf`\" in docs/architecture.md");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut modules = Vec::new();
    for row in section.lines().filter(|line| line.starts_with("| `")) {
        let first_cell = row.split('|').nth(1).unwrap_or("");
        for name in first_cell.split('`').skip(1).step_by(2) {
            modules.push(name.to_string());
        }
    }
    modules
}
