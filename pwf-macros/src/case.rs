//! Key styles for `rename_all`: how a field or variant name becomes a JSON key.

use std::fmt::Write;

/// A key style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RenameRule {
    /// `dispatchCount`, the default.
    Camel,
    /// `DispatchCount`.
    Pascal,
    /// `dispatch_count`.
    Snake,
    /// `DISPATCH_COUNT`.
    ScreamingSnake,
    /// `dispatch-count`.
    Kebab,
    /// `DISPATCH-COUNT`.
    ScreamingKebab,
    /// `dispatchcount`.
    Lower,
    /// `DISPATCHCOUNT`.
    Upper,
}

/// Every style, with its name in `rename_all = "..."`.
pub(crate) const RULES: &[(&str, RenameRule)] = &[
    ("camelCase", RenameRule::Camel),
    ("PascalCase", RenameRule::Pascal),
    ("snake_case", RenameRule::Snake),
    ("SCREAMING_SNAKE_CASE", RenameRule::ScreamingSnake),
    ("kebab-case", RenameRule::Kebab),
    ("SCREAMING-KEBAB-CASE", RenameRule::ScreamingKebab),
    ("lowercase", RenameRule::Lower),
    ("UPPERCASE", RenameRule::Upper),
];

impl RenameRule {
    /// The style named `name`.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        RULES
            .iter()
            .find(|(rule_name, _)| *rule_name == name)
            .map(|(_, rule)| *rule)
    }

    /// The key of a field named `name` (snake_case).
    pub(crate) fn apply_to_field(self, name: &str) -> String {
        self.join(name.split('_').filter(|word| !word.is_empty()))
    }

    /// The key of a variant named `name` (PascalCase).
    pub(crate) fn apply_to_variant(self, name: &str) -> String {
        self.join(pascal_words(name).into_iter())
    }

    fn join<'a>(self, words: impl Iterator<Item = &'a str>) -> String {
        let mut key = String::new();
        for (i, word) in words.enumerate() {
            let lower = word.to_lowercase();
            match self {
                RenameRule::Camel if i == 0 => key.push_str(&lower),
                RenameRule::Camel | RenameRule::Pascal => {
                    let mut chars = lower.chars();
                    if let Some(first) = chars.next() {
                        key.extend(first.to_uppercase());
                        key.push_str(chars.as_str());
                    }
                }
                RenameRule::Snake | RenameRule::Kebab | RenameRule::Lower => {
                    if i > 0 {
                        key.push_str(self.separator());
                    }
                    key.push_str(&lower);
                }
                RenameRule::ScreamingSnake | RenameRule::ScreamingKebab | RenameRule::Upper => {
                    if i > 0 {
                        key.push_str(self.separator());
                    }
                    let _ = write!(key, "{}", word.to_uppercase());
                }
            }
        }
        key
    }

    fn separator(self) -> &'static str {
        match self {
            RenameRule::Snake | RenameRule::ScreamingSnake => "_",
            RenameRule::Kebab | RenameRule::ScreamingKebab => "-",
            _ => "",
        }
    }
}

/// `HttpProxy` as `Http`, `Proxy`; `HTTPProxy` as `HTTP`, `Proxy`; `Http2` as `Http2`.
fn pascal_words(name: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = name.char_indices().collect();
    let mut words = Vec::new();
    let mut start = 0;
    for (i, &(at, c)) in chars.iter().enumerate().skip(1) {
        let previous = chars[i - 1].1;
        let next_is_lower = chars.get(i + 1).is_some_and(|&(_, n)| n.is_lowercase());
        let boundary = c.is_uppercase()
            && (previous.is_lowercase()
                || previous.is_ascii_digit()
                || (previous.is_uppercase() && next_is_lower));
        if c == '_' {
            words.push(&name[start..at]);
            start = at + 1;
        } else if boundary {
            words.push(&name[start..at]);
            start = at;
        }
    }
    words.push(&name[start..]);
    words.retain(|word| !word.is_empty());
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_to_field_converts_snake_case_names() {
        let name = "dispatch_count";
        let expected = [
            (RenameRule::Camel, "dispatchCount"),
            (RenameRule::Pascal, "DispatchCount"),
            (RenameRule::Snake, "dispatch_count"),
            (RenameRule::ScreamingSnake, "DISPATCH_COUNT"),
            (RenameRule::Kebab, "dispatch-count"),
            (RenameRule::ScreamingKebab, "DISPATCH-COUNT"),
            (RenameRule::Lower, "dispatchcount"),
            (RenameRule::Upper, "DISPATCHCOUNT"),
        ];
        for (rule, key) in expected {
            assert_eq!(rule.apply_to_field(name), key, "{rule:?}");
        }
        assert_eq!(
            RenameRule::Camel.apply_to_field("http2_enabled"),
            "http2Enabled"
        );
        assert_eq!(RenameRule::Camel.apply_to_field("timeout"), "timeout");
    }

    #[test]
    fn apply_to_variant_converts_pascal_case_names() {
        assert_eq!(
            RenameRule::Camel.apply_to_variant("RoundRobin"),
            "roundRobin"
        );
        assert_eq!(
            RenameRule::Snake.apply_to_variant("RoundRobin"),
            "round_robin"
        );
        assert_eq!(RenameRule::Camel.apply_to_variant("HTTPProxy"), "httpProxy");
        assert_eq!(
            RenameRule::Kebab.apply_to_variant("Http2Only"),
            "http2-only"
        );
        assert_eq!(RenameRule::Camel.apply_to_variant("A"), "a");
    }
}
