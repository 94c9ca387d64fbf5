//! Malformed plugin configurations and the exact problems each must be refused with.
//!
//! Shared by the native test `config_corpus.rs` and by tests that load the configuration
//! through a host: include it with `#[path = "config_support/malformed.rs"] mod malformed;`,
//! configure a plugin whose configuration is [`CorpusConfig`] with each case's bytes, and
//! expect configure to fail with these problems.

use std::collections::BTreeMap;
use std::time::Duration;

use pwf::PluginConfig;

/// The configuration every case is read as.
#[derive(PluginConfig, Debug)]
pub(crate) struct CorpusConfig {
    /// Cluster to call.
    #[config(default = "httpbin", non_empty)]
    pub(crate) dispatch_cluster: String,
    /// Calls per request.
    #[config(default = 10, range = 1..=100)]
    pub(crate) dispatch_count: u32,
    /// Timeout of each call.
    #[config(default = "1s")]
    pub(crate) timeout: Duration,
    /// Method of each call.
    #[config(default = "GET", one_of = ["GET", "POST"])]
    pub(crate) method: String,
    /// Routing rules.
    #[config(default)]
    pub(crate) rules: Vec<Rule>,
    /// Headers added to each call.
    #[config(default)]
    pub(crate) headers: BTreeMap<String, String>,
    /// Key of the shared counter.
    pub(crate) shared_data_key: Option<String>,
    /// What to do with a request.
    #[config(default = Mode::Allow)]
    pub(crate) mode: Mode,
}

/// A routing rule.
#[derive(PluginConfig, Debug)]
pub(crate) struct Rule {
    /// Path prefix.
    #[config(non_empty)]
    pub(crate) path: String,
    /// Share of the traffic.
    #[config(default = 1, range = 1..=10)]
    pub(crate) weight: u8,
}

/// What to do with a request.
#[derive(PluginConfig, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Let it through.
    Allow,
    /// Refuse it.
    Deny,
}

/// One malformed configuration.
pub(crate) struct Case {
    /// What is wrong with it, as a test name.
    pub(crate) name: &'static str,
    /// The configuration bytes, as Envoy passes them.
    pub(crate) bytes: &'static [u8],
    /// Every problem it must be refused with, in order, as `Problem` displays them.
    pub(crate) problems: &'static [&'static str],
}

/// At least 30 malformed configurations.
pub(crate) const MALFORMED: &[Case] = &[
    Case {
        name: "top_level_array",
        bytes: br#"["httpbin", 5]"#,
        problems: &["expected a JSON object at the top level, got an array"],
    },
    Case {
        name: "top_level_string",
        bytes: br#""httpbin""#,
        problems: &[r#"expected a JSON object at the top level, got "httpbin""#],
    },
    Case {
        name: "top_level_number",
        bytes: br#"5"#,
        problems: &["expected a JSON object at the top level, got 5"],
    },
    Case {
        name: "top_level_null",
        bytes: br#"null"#,
        problems: &["expected a JSON object at the top level, got null"],
    },
    Case {
        name: "top_level_bool",
        bytes: br#"true"#,
        problems: &["expected a JSON object at the top level, got true"],
    },
    Case {
        name: "truncated_object",
        bytes: br#"{"dispatchCount": 5"#,
        problems: &["invalid JSON at line 1, column 19: EOF while parsing an object"],
    },
    Case {
        name: "trailing_comma",
        bytes: br#"{"dispatchCount": 5,}"#,
        problems: &["invalid JSON at line 1, column 21: trailing comma"],
    },
    Case {
        name: "single_quotes",
        bytes: br#"{'dispatchCount': 5}"#,
        problems: &["invalid JSON at line 1, column 2: key must be a string"],
    },
    Case {
        name: "unquoted_key",
        bytes: br#"{dispatchCount: 5}"#,
        problems: &["invalid JSON at line 1, column 2: key must be a string"],
    },
    Case {
        name: "comment",
        bytes: b"{\"dispatchCount\": 5 // five\n}",
        problems: &["invalid JSON at line 1, column 21: expected `,` or `}`"],
    },
    Case {
        name: "trailing_garbage",
        bytes: br#"{} {}"#,
        problems: &["invalid JSON at line 1, column 4: trailing characters"],
    },
    Case {
        name: "nested_too_deep",
        bytes: br#"{"rules": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"#,
        problems: &["invalid JSON at line 1, column 137: recursion limit exceeded"],
    },
    Case {
        name: "number_too_large_for_json",
        bytes: br#"{"dispatchCount": 1e400}"#,
        problems: &["invalid JSON at line 1, column 23: number out of range"],
    },
    Case {
        name: "dispatch_count_zero",
        bytes: br#"{"dispatchCount": 0}"#,
        problems: &["dispatchCount: must be in 1..=100, got 0"],
    },
    Case {
        name: "dispatch_count_above_range",
        bytes: br#"{"dispatchCount": 101}"#,
        problems: &["dispatchCount: must be in 1..=100, got 101"],
    },
    Case {
        name: "dispatch_count_negative",
        bytes: br#"{"dispatchCount": -1}"#,
        problems: &["dispatchCount: out of range for u32 (0..=4294967295), got -1"],
    },
    Case {
        name: "dispatch_count_string",
        bytes: br#"{"dispatchCount": "10"}"#,
        problems: &[r#"dispatchCount: expected an unsigned integer, got "10""#],
    },
    Case {
        name: "dispatch_count_fraction",
        bytes: br#"{"dispatchCount": 2.5}"#,
        problems: &["dispatchCount: expected an unsigned integer, got 2.5"],
    },
    Case {
        name: "dispatch_count_beyond_u32",
        bytes: br#"{"dispatchCount": 4294967296}"#,
        problems: &["dispatchCount: out of range for u32 (0..=4294967295), got 4294967296"],
    },
    Case {
        name: "dispatch_cluster_empty",
        bytes: br#"{"dispatchCluster": ""}"#,
        problems: &["dispatchCluster: must not be empty"],
    },
    Case {
        name: "dispatch_cluster_number",
        bytes: br#"{"dispatchCluster": 5}"#,
        problems: &["dispatchCluster: expected a string, got 5"],
    },
    Case {
        name: "dispatch_cluster_null",
        bytes: br#"{"dispatchCluster": null}"#,
        problems: &["dispatchCluster: expected a string, got null"],
    },
    Case {
        name: "method_not_allowed",
        bytes: br#"{"method": "PUT"}"#,
        problems: &[r#"method: must be one of "GET", "POST", got "PUT""#],
    },
    Case {
        name: "timeout_words",
        bytes: br#"{"timeout": "soon"}"#,
        problems: &[r#"timeout: expected a duration such as "250ms", "5s" or "1m30s", got "soon""#],
    },
    Case {
        name: "timeout_negative",
        bytes: br#"{"timeout": -100}"#,
        problems: &[r#"timeout: expected a duration such as "250ms", "5s" or "1m30s", got -100"#],
    },
    Case {
        name: "timeout_overflow",
        bytes: br#"{"timeout": "99999999999999999999999h"}"#,
        problems: &[r#"timeout: duration too large, got "99999999999999999999999h""#],
    },
    Case {
        name: "timeout_integer_without_unit",
        bytes: br#"{"timeout": 10}"#,
        problems: &[r#"timeout: expected a duration with its unit, such as "10s" or "10ms", got 10"#],
    },
    Case {
        name: "duplicate_key",
        bytes: br#"{"dispatchCount": 5, "dispatchCount": 6}"#,
        problems: &["duplicate key `dispatchCount` at line 1, column 36"],
    },
    Case {
        name: "yaml_instead_of_json",
        bytes: b"dispatchCount: 5",
        problems: &["invalid JSON at line 1, column 1: expected value (this looks like YAML: the configuration must be JSON, such as {\"dispatchCount\": 5})"],
    },
    Case {
        name: "yaml_in_a_string_value",
        bytes: b"limit: 3",
        problems: &["invalid JSON at line 1, column 1: expected value (this looks like YAML: the configuration must be JSON, such as {\"limit\": 3})"],
    },
    Case {
        name: "yaml_string_value",
        bytes: b"---\n# limits\nmode: 'fast'\n",
        problems: &["invalid JSON at line 1, column 2: invalid number (this looks like YAML: the configuration must be JSON, such as {\"mode\": \"fast\"})"],
    },
    Case {
        name: "timeout_space_before_unit",
        bytes: br#"{"timeout": "5 s"}"#,
        problems: &[r#"timeout: expected a duration such as "250ms", "5s" or "1m30s", got "5 s""#],
    },
    Case {
        name: "unknown_key_typo",
        bytes: br#"{"dispatchCont": 5}"#,
        problems: &["unknown field `dispatchCont`, did you mean `dispatchCount`?"],
    },
    Case {
        name: "unknown_key_snake_case",
        bytes: br#"{"dispatch_cluster": "a"}"#,
        problems: &["unknown field `dispatch_cluster`, did you mean `dispatchCluster`?"],
    },
    Case {
        name: "unknown_key_unrelated",
        bytes: br#"{"foo": 1}"#,
        problems: &["unknown field `foo`, expected one of `dispatchCluster`, `dispatchCount`, `timeout`, `method`, `rules`, `headers`, `sharedDataKey`, `mode`"],
    },
    Case {
        name: "unknown_key_empty",
        bytes: br#"{"": 1}"#,
        problems: &["unknown field ``, expected one of `dispatchCluster`, `dispatchCount`, `timeout`, `method`, `rules`, `headers`, `sharedDataKey`, `mode`"],
    },
    Case {
        name: "rules_object",
        bytes: br#"{"rules": {}}"#,
        problems: &["rules: expected an array, got an object"],
    },
    Case {
        name: "rules_null",
        bytes: br#"{"rules": null}"#,
        problems: &["rules: expected an array, got null"],
    },
    Case {
        name: "rule_not_object",
        bytes: br#"{"rules": [{"path": "/a"}, "/b"]}"#,
        problems: &[r#"rules[1]: expected an object, got "/b""#],
    },
    Case {
        name: "rule_path_empty",
        bytes: br#"{"rules": [{"path": "/a"}, {"path": "/b"}, {"path": ""}]}"#,
        problems: &["rules[2].path: must not be empty"],
    },
    Case {
        name: "rule_path_missing",
        bytes: br#"{"rules": [{"weight": 2}]}"#,
        problems: &["rules[0]: missing field `path`"],
    },
    Case {
        name: "rule_weight_out_of_range",
        bytes: br#"{"rules": [{"path": "/a", "weight": 11}]}"#,
        problems: &["rules[0].weight: must be in 1..=10, got 11"],
    },
    Case {
        name: "rule_unknown_key",
        bytes: br#"{"rules": [{"path": "/a", "wieght": 2}]}"#,
        problems: &["rules[0]: unknown field `wieght`, did you mean `weight`?"],
    },
    Case {
        name: "header_value_not_string",
        bytes: br#"{"headers": {"x-id": 1}}"#,
        problems: &["headers.x-id: expected a string, got 1"],
    },
    Case {
        name: "mode_unknown",
        bytes: br#"{"mode": "block"}"#,
        problems: &[r#"mode: expected one of "allow", "deny", got "block""#],
    },
    Case {
        name: "shared_data_key_list",
        bytes: br#"{"sharedDataKey": ["a"]}"#,
        problems: &["sharedDataKey: expected a string, got an array"],
    },
    Case {
        name: "several_problems",
        bytes: br#"{"dispatchCount": 0, "dispatchCluster": "", "rules": [{}], "extra": 1}"#,
        problems: &[
            "dispatchCluster: must not be empty",
            "dispatchCount: must be in 1..=100, got 0",
            "rules[0]: missing field `path`",
            "unknown field `extra`, expected one of `dispatchCluster`, `dispatchCount`, `timeout`, `method`, `rules`, `headers`, `sharedDataKey`, `mode`",
        ],
    },
    Case {
        name: "invalid_utf8_in_string",
        bytes: b"{\"dispatchCluster\": \"\xff\"}",
        problems: &["invalid JSON at line 1, column 22: invalid unicode code point"],
    },
    Case {
        name: "invalid_utf8_outside_string",
        bytes: b"\xff\xfe{}",
        problems: &["invalid JSON at line 1, column 1: expected value"],
    },
    Case {
        name: "latin1_string",
        bytes: b"{\"dispatchCluster\": \"caf\xe9\"}",
        problems: &["invalid JSON at line 1, column 25: invalid unicode code point"],
    },
    Case {
        name: "utf8_bom",
        bytes: b"\xef\xbb\xbf{}",
        problems: &["invalid JSON at line 1, column 1: unexpected byte order mark"],
    },
    Case {
        name: "nul_byte",
        bytes: b"{\"dispatchCount\": \x00}",
        problems: &["invalid JSON at line 1, column 19: expected value"],
    },
];
