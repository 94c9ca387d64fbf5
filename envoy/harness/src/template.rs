//! Config templates: Envoy YAML files whose replaceable values carry a `# pwf:<key>` marker.
//!
//! ```yaml
//!         port_value: 18000 # pwf:listener_port
//!                       filename: target/wasm32-wasip1/release/add_header.wasm # pwf:wasm
//!                   value: '{"name": "x-pwf", "value": "hello"}' # pwf:plugin_config
//! ```
//!
//! A marked line is `<indent>[- ]<key>: <value> # pwf:<name>`; filling the template
//! replaces `<value>` and keeps the rest. As shipped, every marked value is a working
//! default, so the file is a valid Envoy config on its own.

use std::collections::BTreeMap;

use crate::{Error, Result};

const MARKER: &str = "# pwf:";

/// The marker ending `line`, if any: `# pwf:<name>` after some YAML (comment-only lines
/// are prose), `<name>` made of ASCII letters, digits and `_`. Returns (the text before the
/// marker, the name).
fn marker(line: &str) -> Option<(&str, &str)> {
    if line.trim_start().starts_with('#') {
        return None;
    }
    let at = line.rfind(MARKER)?;
    let name = line[at + MARKER.len()..].trim_end();
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    valid.then(|| (line[..at].trim_end(), name))
}

/// Splits a marked line into (text before the value, the value, the marker name).
fn split_marked(line: &str) -> Option<(&str, &str, &str)> {
    let (head, name) = marker(line)?;
    let colon = head.find(": ")?;
    let (before, value) = head.split_at(colon + 2);
    Some((before, value.trim(), name))
}

/// The marker names in `template`, in order of first appearance.
pub fn markers(template: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in template.lines() {
        if let Some((_, _, name)) = split_marked(line) {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
    }
    names
}

/// The value a template ships for marker `name` (its first occurrence).
pub fn default_value(template: &str, name: &str) -> Option<String> {
    template
        .lines()
        .filter_map(split_marked)
        .find(|(_, _, n)| *n == name)
        .map(|(_, v, _)| v.to_owned())
}

/// Replaces the value of every line marked with a key of `values` by its YAML text.
///
/// Fails when a key has no marker in the template (a typo would otherwise be silently
/// ignored) or a marked line is not a `key: value` line.
pub fn fill(template: &str, values: &BTreeMap<String, String>) -> Result<String> {
    let mut used: BTreeMap<&str, bool> = values.keys().map(|k| (k.as_str(), false)).collect();
    let mut out = String::with_capacity(template.len() + 256);
    for (number, line) in template.lines().enumerate() {
        match marker(line) {
            Some(_) => {
                let Some((before, _, name)) = split_marked(line) else {
                    return Err(Error::new(format!(
                        "template line {}: `{MARKER}` marks a line that is not `key: value`: {line}",
                        number + 1
                    )));
                };
                match values.get(name) {
                    Some(value) => {
                        used.insert(name, true);
                        out.push_str(&format!("{before}{value} {MARKER}{name}"));
                    }
                    None => out.push_str(line),
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    let unused: Vec<_> = used
        .into_iter()
        .filter(|(_, u)| !u)
        .map(|(k, _)| format!("`{MARKER}{k}`"))
        .collect();
    if unused.is_empty() {
        Ok(out)
    } else {
        Err(Error::new(format!(
            "the template has no {} marker (markers found: {})",
            unused.join(", "),
            markers(template).join(", ")
        )))
    }
}

/// The text of a YAML scalar as written in a template: quotes removed and escapes undone
/// for quoted scalars, plain scalars as they are.
pub fn unquote(yaml: &str) -> String {
    let yaml = yaml.trim();
    if yaml.len() >= 2 && yaml.starts_with('\'') && yaml.ends_with('\'') {
        yaml[1..yaml.len() - 1].replace("''", "'")
    } else if yaml.len() >= 2 && yaml.starts_with('"') && yaml.ends_with('"') {
        serde_json::from_str(yaml).unwrap_or_else(|_| yaml[1..yaml.len() - 1].to_owned())
    } else {
        yaml.to_owned()
    }
}

/// `text` as a YAML scalar that reads back as exactly `text`: single-quoted when it is
/// printable on one line, else double-quoted with escapes (a JSON string literal is a valid
/// YAML double-quoted scalar).
pub fn yaml_quote(text: &str) -> String {
    if text
        .chars()
        .all(|c| c == ' ' || !c.is_control() && !c.is_whitespace())
    {
        format!("'{}'", text.replace('\'', "''"))
    } else {
        serde_json::Value::String(text.to_owned()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "a:\n  port_value: 18000 # pwf:listener_port\n  - value: 'x' # pwf:plugin_config\nb: 1 # plain comment\n";

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn fill_replaces_marked_values_only() {
        let out = fill(
            T,
            &values(&[("listener_port", "0"), ("plugin_config", "'{}'")]),
        )
        .unwrap();
        assert_eq!(
            out,
            "a:\n  port_value: 0 # pwf:listener_port\n  - value: '{}' # pwf:plugin_config\nb: 1 # plain comment\n"
        );
    }

    #[test]
    fn fill_keeps_defaults_for_unset_markers() {
        assert_eq!(fill(T, &BTreeMap::new()).unwrap(), T);
    }

    #[test]
    fn fill_rejects_a_key_without_marker() {
        let err = fill(T, &values(&[("wsam", "x")])).unwrap_err().to_string();
        assert!(err.contains("`# pwf:wsam`"), "{err}");
        assert!(err.contains("listener_port, plugin_config"), "{err}");
    }

    #[test]
    fn fill_rejects_a_marker_on_a_line_without_value() {
        assert!(fill("key # pwf:x\n", &BTreeMap::new()).is_err());
    }

    #[test]
    fn comment_lines_and_prose_are_not_markers() {
        let t = "# a value followed by `# pwf:<key>` is replaced\n# pwf:x\na: 1 # see # pwf:notes here\n";
        assert!(markers(t).is_empty());
        assert_eq!(fill(t, &BTreeMap::new()).unwrap(), t);
    }

    #[test]
    fn markers_and_defaults_are_read_from_the_template() {
        assert_eq!(markers(T), ["listener_port", "plugin_config"]);
        assert_eq!(default_value(T, "plugin_config").as_deref(), Some("'x'"));
        assert_eq!(default_value(T, "nope"), None);
    }

    #[test]
    fn unquote_reverses_yaml_quote() {
        for text in ["plain", r#"{"a": "it's"}"#, "two\nlines"] {
            assert_eq!(unquote(&yaml_quote(text)), text);
        }
        assert_eq!(unquote("18000"), "18000");
    }

    #[test]
    fn yaml_quote_doubles_single_quotes() {
        assert_eq!(yaml_quote(r#"{"a": "it's"}"#), r#"'{"a": "it''s"}'"#);
        assert_eq!(yaml_quote("{\n  \"a\": 1\n}"), r#""{\n  \"a\": 1\n}""#);
    }
}
