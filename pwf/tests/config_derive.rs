//! Behaviour of `#[derive(PluginConfig)]`: keys, types, defaults, checks, errors, schema.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use pwf::config::{ConfigError, Invalid};
use pwf::PluginConfig;

/// The error's problems, one string each.
fn problems<T: PluginConfig + std::fmt::Debug>(json: &str) -> Vec<String> {
    match T::parse(json.as_bytes()) {
        Ok(config) => panic!("expected {json} to be refused, got {config:?}"),
        Err(error) => error.problems().map(ToString::to_string).collect(),
    }
}

/// The one problem of the error.
fn problem<T: PluginConfig + std::fmt::Debug>(json: &str) -> String {
    let mut all = problems::<T>(json);
    assert_eq!(all.len(), 1, "expected one problem, got {all:?}");
    all.remove(0)
}

// Keys

#[test]
fn parse_reads_camel_case_keys() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        dispatch_cluster: String,
        shared_data_key: String,
    }
    let config = Config::parse(br#"{"dispatchCluster": "httpbin", "sharedDataKey": "k"}"#).unwrap();
    assert_eq!(config.dispatch_cluster, "httpbin");
    assert_eq!(config.shared_data_key, "k");
}

#[test]
fn parse_reads_renamed_key() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[config(rename = "cluster_name")]
        cluster: String,
    }
    let config = Config::parse(br#"{"cluster_name": "a"}"#).unwrap();
    assert_eq!(config.cluster, "a");
    assert_eq!(
        problems::<Config>(r#"{"clusterName": "a"}"#),
        [
            "missing field `cluster_name`",
            "unknown field `clusterName`, did you mean `cluster_name`?"
        ]
    );
}

#[test]
fn parse_applies_rename_all() {
    #[derive(PluginConfig, Debug)]
    #[config(rename_all = "snake_case")]
    struct Config {
        dispatch_count: u32,
        #[config(rename = "X-Header")]
        header: String,
    }
    let config = Config::parse(br#"{"dispatch_count": 3, "X-Header": "h"}"#).unwrap();
    assert_eq!(config.dispatch_count, 3);
    assert_eq!(config.header, "h");
}

#[test]
fn parse_reads_raw_identifier_as_plain_key() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        r#type: String,
    }
    assert_eq!(Config::parse(br#"{"type": "a"}"#).unwrap().r#type, "a");
}

// Defaults

#[test]
fn parse_empty_bytes_gives_every_default() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[config(default = "httpbin")]
        dispatch_cluster: String,
        #[config(default = 10)]
        dispatch_count: u32,
    }
    for bytes in [&b""[..], b"  \n\t", b"{}"] {
        let config = Config::parse(bytes).unwrap();
        assert_eq!(config.dispatch_cluster, "httpbin");
        assert_eq!(config.dispatch_count, 10);
    }
}

#[test]
fn parse_missing_required_field_reports_its_key() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[allow(dead_code)]
        auth_cluster: String,
    }
    assert_eq!(problem::<Config>(""), "missing field `authCluster`");
}

#[test]
fn parse_absent_option_is_none_and_null_too() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        timeout: Option<Duration>,
    }
    assert_eq!(Config::parse(b"{}").unwrap().timeout, None);
    assert_eq!(
        Config::parse(br#"{"timeout": null}"#).unwrap().timeout,
        None
    );
    assert_eq!(
        Config::parse(br#"{"timeout": "1s"}"#).unwrap().timeout,
        Some(Duration::from_secs(1))
    );
}

#[test]
fn parse_literal_default_fills_option_and_duration() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[config(default = 5)]
        retries: Option<u8>,
        #[config(default = "1m30s")]
        timeout: Duration,
        #[config(default = 0.5)]
        ratio: f64,
        #[config(default = true)]
        enabled: bool,
    }
    let config = Config::parse(b"").unwrap();
    assert_eq!(config.retries, Some(5));
    assert_eq!(config.timeout, Duration::from_secs(90));
    assert_eq!(config.ratio, 0.5);
    assert!(config.enabled);
}

#[test]
fn parse_expression_default_is_used() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[config(default = Duration::from_millis(1500))]
        timeout: Duration,
        #[config(default = vec!["a".to_owned()])]
        names: Vec<String>,
    }
    let config = Config::parse(b"").unwrap();
    assert_eq!(config.timeout, Duration::from_millis(1500));
    assert_eq!(config.names, ["a"]);
}

#[test]
fn parse_bare_default_uses_default_trait() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[config(default)]
        headers: Vec<String>,
        #[config(default)]
        count: u32,
    }
    let config = Config::parse(b"").unwrap();
    assert!(config.headers.is_empty());
    assert_eq!(config.count, 0);
}

#[test]
fn parse_bare_default_on_nested_config_uses_its_own_defaults() {
    #[derive(PluginConfig, Debug)]
    struct Upstream {
        #[config(default = "auth")]
        cluster: String,
    }
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[config(default)]
        upstream: Upstream,
    }
    assert_eq!(Config::parse(b"").unwrap().upstream.cluster, "auth");
    let config = Config::parse(br#"{"upstream": {"cluster": "b"}}"#).unwrap();
    assert_eq!(config.upstream.cluster, "b");
}

#[test]
fn parse_bare_default_on_nested_config_reports_its_required_fields() {
    #[derive(PluginConfig, Debug)]
    struct Upstream {
        #[allow(dead_code)]
        cluster: String,
    }
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[config(default)]
        #[allow(dead_code)]
        upstream: Upstream,
    }
    assert_eq!(problem::<Config>(""), "upstream: missing field `cluster`");
}

#[test]
/// `#[config(default = 5000)]` on a `Duration` did not compile (E0308), the documented way.
fn parse_integer_default_of_a_duration_counts_the_unit_its_key_says() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[config(default = 5000)]
        timeout_ms: Duration,
        #[config(default = 10, unit = "s")]
        window: Duration,
        #[config(default = 250)]
        retry_ms: Option<Duration>,
        #[config(default = 7)]
        raw_ms: u64,
    }
    let config = Config::parse(b"").unwrap();
    assert_eq!(config.timeout_ms, Duration::from_secs(5));
    assert_eq!(config.window, Duration::from_secs(10));
    assert_eq!(config.retry_ms, Some(Duration::from_millis(250)));
    assert_eq!(config.raw_ms, 7);
}

#[test]
fn parse_default_is_not_checked() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[config(default = 0, range = 1..=100)]
        count: u32,
    }
    assert_eq!(Config::parse(b"").unwrap().count, 0);
}

// Types

#[test]
fn parse_reads_scalars() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        a: u8,
        b: i64,
        c: f32,
        d: bool,
        e: usize,
    }
    let config = Config::parse(br#"{"a": 255, "b": -3, "c": 1.5, "d": false, "e": 7}"#).unwrap();
    assert_eq!(
        (config.a, config.b, config.c, config.d, config.e),
        (255, -3, 1.5, false, 7)
    );
}

#[test]
fn parse_integer_accepts_float_without_fraction() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        count: u32,
    }
    assert_eq!(Config::parse(br#"{"count": 10.0}"#).unwrap().count, 10);
}

#[test]
fn parse_integer_rejects_wrong_types() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[allow(dead_code)]
        count: u32,
        #[allow(dead_code)]
        delta: i32,
    }
    assert_eq!(
        problems::<Config>(r#"{"count": "abc", "delta": 1.5}"#),
        [
            r#"count: expected an unsigned integer, got "abc""#,
            "delta: expected an integer, got 1.5",
        ]
    );
}

#[test]
fn parse_integer_out_of_range_names_the_type_bounds() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[allow(dead_code)]
        small: u8,
        #[allow(dead_code)]
        count: u32,
        #[allow(dead_code)]
        big: u64,
    }
    assert_eq!(
        problems::<Config>(r#"{"small": 300, "count": -1, "big": 1e30}"#),
        [
            "small: out of range for u8 (0..=255), got 300",
            "count: out of range for u32 (0..=4294967295), got -1",
            "big: out of range for u64 (0..=18446744073709551615), got 1e30",
        ]
    );
}

#[test]
fn parse_float_out_of_range_for_f32_is_refused() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[allow(dead_code)]
        ratio: f32,
    }
    assert_eq!(
        problem::<Config>(r#"{"ratio": 1e300}"#),
        "ratio: out of range for f32, got a number"
    );
}

#[test]
fn parse_scalar_type_mismatch_says_what_was_expected() {
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Config {
        name: String,
        on: bool,
        ratio: f64,
        list: Vec<u8>,
        map: HashMap<String, u8>,
    }
    assert_eq!(
        problems::<Config>(r#"{"name": 5, "on": "yes", "ratio": null, "list": {}, "map": []}"#),
        [
            "name: expected a string, got 5",
            r#"on: expected a boolean, got "yes""#,
            "ratio: expected a number, got null",
            "list: expected an array, got an object",
            "map: expected an object, got an array",
        ]
    );
}

#[test]
fn parse_duration_accepts_strings_with_their_unit() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        a: Duration,
        b: Duration,
        d: Duration,
    }
    let config = Config::parse(br#"{"a": "250ms", "b": "1.5s", "d": "100us"}"#).unwrap();
    assert_eq!(config.a, Duration::from_millis(250));
    assert_eq!(config.b, Duration::from_millis(1500));
    assert_eq!(config.d, Duration::from_micros(100));
}

#[test]
/// `"window": 10` was silently 10 ms.
fn parse_integer_duration_without_a_unit_is_refused_with_the_strings_to_write() {
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Config {
        window: Duration,
        retry: Option<Duration>,
    }
    assert_eq!(
        problems::<Config>(r#"{"window": 10, "retry": 0}"#),
        [
            r#"window: expected a duration with its unit, such as "10s" or "10ms", got 10"#,
            r#"retry: expected a duration with its unit, such as "0s" or "0ms", got 0"#,
        ]
    );
}

#[test]
fn parse_integer_duration_counts_the_unit_its_key_says() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        timeout_ms: Duration,
        #[config(rename = "retry_ms")]
        retry: Option<Duration>,
        #[config(rename = "BACKOFF-MS")]
        backoff: Vec<Duration>,
        #[config(rename = "delayMs")]
        delay: Duration,
    }
    let config = Config::parse(
        br#"{"timeoutMs": 5000, "retry_ms": 20, "BACKOFF-MS": [1, "2s"], "delayMs": "1m"}"#,
    )
    .unwrap();
    assert_eq!(config.timeout_ms, Duration::from_secs(5));
    assert_eq!(config.retry, Some(Duration::from_millis(20)));
    assert_eq!(
        config.backoff,
        [Duration::from_millis(1), Duration::from_secs(2)]
    );
    assert_eq!(config.delay, Duration::from_secs(60));
}

#[test]
fn parse_integer_duration_counts_the_declared_unit() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[config(unit = "s")]
        window: Duration,
        #[config(unit = "ms")]
        timeout: Duration,
    }
    let config = Config::parse(br#"{"window": 10, "timeout": 250}"#).unwrap();
    assert_eq!(config.window, Duration::from_secs(10));
    assert_eq!(config.timeout, Duration::from_millis(250));
}

#[test]
fn parse_integer_duration_unit_does_not_reach_a_nested_struct() {
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Inner {
        window: Duration,
    }
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Config {
        #[config(rename = "limitsMs")]
        limits: Inner,
    }
    assert_eq!(
        problem::<Config>(r#"{"limitsMs": {"window": 3}}"#),
        r#"limitsMs.window: expected a duration with its unit, such as "3s" or "3ms", got 3"#
    );
}

#[test]
fn parse_duration_rejects_negative_malformed_and_overflowing_values() {
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Config {
        a_ms: Duration,
        b: Duration,
        c: Duration,
        d: Duration,
        e_ms: Duration,
    }
    let expected = r#"expected a duration such as "250ms", "5s" or "1m30s""#;
    assert_eq!(
        problems::<Config>(
            r#"{"aMs": -5, "b": "5 s", "c": "99999999999999999999999h", "d": 1.5, "eMs": 1e30}"#
        ),
        [
            format!("aMs: {expected}, or an integer count of ms, got -5"),
            format!(r#"b: {expected}, got "5 s""#),
            r#"c: duration too large, got "99999999999999999999999h""#.to_owned(),
            format!("d: {expected}, got 1.5"),
            "eMs: duration too large, got 1e30".to_owned(),
        ]
    );
}

#[test]
fn parse_reads_lists_and_maps() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        names: Vec<String>,
        weights: HashMap<String, u32>,
        order: BTreeMap<String, Vec<u8>>,
    }
    let config =
        Config::parse(br#"{"names": ["a", "b"], "weights": {"x": 1}, "order": {"k": [1, 2]}}"#)
            .unwrap();
    assert_eq!(config.names, ["a", "b"]);
    assert_eq!(config.weights["x"], 1);
    assert_eq!(config.order["k"], [1, 2]);
}

#[test]
fn parse_list_element_problem_names_its_index() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[allow(dead_code)]
        ports: Vec<u16>,
    }
    assert_eq!(
        problems::<Config>(r#"{"ports": [80, "x", 443, 70000]}"#),
        [
            r#"ports[1]: expected an unsigned integer, got "x""#,
            "ports[3]: out of range for u16 (0..=65535), got 70000",
        ]
    );
}

#[test]
fn parse_map_value_problem_names_its_key() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[allow(dead_code)]
        limits: BTreeMap<String, u32>,
    }
    assert_eq!(
        problems::<Config>(r#"{"limits": {"api": "x", "a.b": -1}}"#),
        [
            r#"limits["a.b"]: out of range for u32 (0..=4294967295), got -1"#,
            r#"limits.api: expected an unsigned integer, got "x""#,
        ]
    );
}

#[test]
fn parse_nested_struct_keeps_its_own_checks_and_paths() {
    #[derive(PluginConfig, Debug)]
    struct Rule {
        #[config(non_empty)]
        path: String,
        #[config(default = 1, range = 1..=10)]
        weight: u8,
    }
    #[derive(PluginConfig, Debug)]
    struct Config {
        rules: Vec<Rule>,
    }
    let config = Config::parse(br#"{"rules": [{"path": "/a"}]}"#).unwrap();
    assert_eq!(
        (config.rules[0].path.as_str(), config.rules[0].weight),
        ("/a", 1)
    );
    assert_eq!(
        problems::<Config>(
            r#"{"rules": [{"path": "/a"}, {"path": "/b", "weight": 0}, {"path": ""}, 3, {}]}"#
        ),
        [
            "rules[1].weight: must be in 1..=10, got 0",
            "rules[2].path: must not be empty",
            "rules[3]: expected an object, got 3",
            "rules[4]: missing field `path`",
        ]
    );
}

#[test]
fn parse_reads_boxed_and_raw_json_values() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        limit: Box<u32>,
        extra: serde_json::Value,
    }
    let config = Config::parse(br#"{"limit": 3, "extra": {"any": [1, "x"]}}"#).unwrap();
    assert_eq!(*config.limit, 3);
    assert_eq!(config.extra, serde_json::json!({"any": [1, "x"]}));
}

#[test]
fn parse_reads_other_types_through_serde() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Point {
        x: i32,
        y: i32,
    }
    #[derive(PluginConfig, Debug)]
    struct Config {
        origin: Point,
        tags: HashSet<String>,
        big: Option<u128>,
    }
    let config = Config::parse(br#"{"origin": {"x": 1, "y": 2}, "tags": ["a", "a"]}"#).unwrap();
    assert_eq!(config.origin, Point { x: 1, y: 2 });
    assert_eq!(config.tags.len(), 1);
    assert_eq!(config.big, None);
}

#[test]
fn parse_serde_type_problem_carries_serde_message() {
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Point {
        x: i32,
    }
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[allow(dead_code)]
        origin: Point,
    }
    assert_eq!(
        problem::<Config>(r#"{"origin": {"x": "1"}}"#),
        r#"origin: invalid type: string "1", expected i32"#
    );
    assert_eq!(problem::<Config>("{}"), "missing field `origin`");
}

#[test]
fn parse_reads_unit_enum_from_camel_case_string() {
    #[derive(PluginConfig, Debug, PartialEq)]
    enum Balance {
        RoundRobin,
        LeastRequest,
        #[config(rename = "random")]
        Shuffle,
    }
    #[derive(PluginConfig, Debug)]
    struct Config {
        balance: Vec<Balance>,
    }
    let config =
        Config::parse(br#"{"balance": ["roundRobin", "leastRequest", "random"]}"#).unwrap();
    assert_eq!(
        config.balance,
        [Balance::RoundRobin, Balance::LeastRequest, Balance::Shuffle]
    );
}

#[test]
fn parse_unknown_enum_value_lists_accepted_values() {
    #[derive(PluginConfig, Debug)]
    #[config(rename_all = "SCREAMING_SNAKE_CASE")]
    enum Mode {
        Allow,
        DenyAll,
    }
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[allow(dead_code)]
        mode: Mode,
    }
    assert_eq!(
        problem::<Config>(r#"{"mode": "allow"}"#),
        r#"mode: expected one of "ALLOW", "DENY_ALL", got "allow""#
    );
}

// Checks

#[test]
fn parse_range_refuses_numbers_outside_each_kind_of_range() {
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Config {
        #[config(range = 1..=100)]
        a: u32,
        #[config(range = 1..100)]
        b: u32,
        #[config(range = 1..)]
        c: i32,
        #[config(range = ..=100)]
        d: u32,
        #[config(range = ..100)]
        e: u32,
        #[config(range = 0.0..=1.0)]
        f: f64,
        #[config(range = -5..=5)]
        g: Option<i8>,
    }
    assert_eq!(
        problems::<Config>(r#"{"a": 0, "b": 100, "c": -1, "d": 101, "e": 100, "f": 1.5, "g": -6}"#),
        [
            "a: must be in 1..=100, got 0",
            "b: must be in 1..100, got 100",
            "c: must be at least 1, got -1",
            "d: must be at most 100, got 101",
            "e: must be less than 100, got 100",
            "f: must be in 0..=1, got 1.5",
            "g: must be in -5..=5, got -6",
        ]
    );
    let ok = br#"{"a": 100, "b": 99, "c": 1, "d": 0, "e": 99, "f": 1.0, "g": null}"#;
    assert!(Config::parse(ok).is_ok());
}

#[test]
fn parse_non_empty_refuses_empty_strings_lists_and_maps() {
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Config {
        #[config(non_empty)]
        name: String,
        #[config(non_empty)]
        list: Vec<u8>,
        #[config(non_empty)]
        map: HashMap<String, u8>,
        #[config(non_empty)]
        maybe: Option<String>,
    }
    assert_eq!(
        problems::<Config>(r#"{"name": "", "list": [], "map": {}, "maybe": ""}"#),
        [
            "name: must not be empty",
            "list: must not be empty",
            "map: must not be empty",
            "maybe: must not be empty",
        ]
    );
    assert!(Config::parse(br#"{"name": " ", "list": [1], "map": {"a": 1}}"#).is_ok());
}

/// A header value with CR/LF once reached Envoy from `add_header`'s configuration and split
/// the response.
#[test]
fn parse_header_name_and_header_value_refuse_what_would_split_a_header() {
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Config {
        #[config(non_empty, header_name)]
        name: String,
        #[config(header_value)]
        value: String,
        #[config(header_name)]
        other: Option<String>,
    }
    assert_eq!(
        problems::<Config>(r#"{"name": "x pwf", "value": "hello\r\nx-injected: 2", "other": "a:b"}"#),
        [
            "name: must be a header name (a token: letters, digits and !#$%&'*+-.^_`|~), got \"x pwf\" with a space at byte 1",
            "value: must be a header value without CR, LF or NUL, got \"hello\\r\\nx-injected: 2\" with a CR at byte 5",
            "other: must be a header name (a token: letters, digits and !#$%&'*+-.^_`|~), got \"a:b\" with `:` at byte 1",
        ]
    );
    assert_eq!(problems::<Config>(r#"{"name": "", "value": "\u0000"}"#), [
        "name: must not be empty",
        "value: must be a header value without CR, LF or NUL, got \"\\u0000\" with a NUL at byte 0",
    ]);
    let config = Config::parse(br#"{"name": "X-Pwf", "value": "caf\u00e9 \t ok"}"#).unwrap();
    assert_eq!(
        (config.name.as_str(), config.value.as_str()),
        ("X-Pwf", "café \t ok")
    );
    let schema = Config::schema().to_string();
    assert!(schema.contains("a header name"), "{schema}");
}

#[test]
fn parse_one_of_refuses_other_strings() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[config(default = "GET", one_of = ["GET", "POST"])]
        method: String,
    }
    assert_eq!(
        Config::parse(br#"{"method": "POST"}"#).unwrap().method,
        "POST"
    );
    assert_eq!(
        problem::<Config>(r#"{"method": "get"}"#),
        r#"method: must be one of "GET", "POST", got "get""#
    );
}

#[test]
fn parse_field_validate_hook_reports_at_the_field() {
    fn absolute(path: &str) -> Result<(), String> {
        if path.starts_with('/') {
            Ok(())
        } else {
            Err(format!("must start with '/', got {path:?}"))
        }
    }
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[config(validate = absolute)]
        path: String,
    }
    assert_eq!(Config::parse(br#"{"path": "/a"}"#).unwrap().path, "/a");
    assert_eq!(
        problem::<Config>(r#"{"path": "a"}"#),
        r#"path: must start with '/', got "a""#
    );
}

#[test]
fn parse_field_validate_hook_can_blame_one_element_of_a_list() {
    fn distinct(names: &[String]) -> Result<(), Invalid> {
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(Invalid::at(format!("[{i}]"), format!("repeats {name:?}")));
            }
        }
        Ok(())
    }
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[config(validate = distinct)]
        names: Vec<String>,
    }
    assert_eq!(
        Config::parse(br#"{"names": ["a", "b"]}"#).unwrap().names,
        ["a", "b"]
    );
    assert_eq!(
        problem::<Config>(r#"{"names": ["a", "b", "a"]}"#),
        r#"names[2]: repeats "a""#
    );
}

#[test]
fn parse_field_validate_hook_runs_only_after_other_checks_pass() {
    fn never(_: &str) -> Result<(), &'static str> {
        Err("hook ran")
    }
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[config(non_empty, validate = never)]
        #[allow(dead_code)]
        name: String,
    }
    assert_eq!(
        problem::<Config>(r#"{"name": ""}"#),
        "name: must not be empty"
    );
    assert_eq!(problem::<Config>(r#"{"name": "a"}"#), "name: hook ran");
}

#[test]
fn parse_struct_validate_blames_fields_relative_to_the_struct() {
    #[derive(PluginConfig, Debug)]
    #[config(validate = Self::check)]
    struct Window {
        min: u32,
        max: u32,
    }
    impl Window {
        fn check(&self) -> Result<(), Invalid> {
            if self.min > self.max {
                return Err(
                    Invalid::at("min", format!("must not exceed max ({})", self.max))
                        .and(Invalid::new("is empty")),
                );
            }
            Ok(())
        }
    }
    #[derive(PluginConfig, Debug)]
    struct Config {
        windows: Vec<Window>,
    }
    assert_eq!(
        Config::parse(br#"{"windows": [{"min": 1, "max": 2}]}"#)
            .unwrap()
            .windows
            .len(),
        1
    );
    assert_eq!(
        problems::<Config>(r#"{"windows": [{"min": 1, "max": 2}, {"min": 3, "max": 2}]}"#),
        [
            "windows[1].min: must not exceed max (2)",
            "windows[1]: is empty"
        ]
    );
}

#[test]
fn parse_struct_validate_at_top_level_blames_the_configuration() {
    #[derive(PluginConfig, Debug)]
    #[config(validate = Self::check)]
    struct Config {
        #[allow(dead_code)]
        a: Option<String>,
        #[allow(dead_code)]
        b: Option<String>,
    }
    impl Config {
        fn check(&self) -> Result<(), String> {
            match (&self.a, &self.b) {
                (Some(_), Some(_)) => Err("give `a` or `b`, not both".to_owned()),
                _ => Ok(()),
            }
        }
    }
    assert_eq!(
        problem::<Config>(r#"{"a": "x", "b": "y"}"#),
        "give `a` or `b`, not both"
    );
}

#[test]
fn parse_struct_validate_is_skipped_when_a_field_failed() {
    #[derive(PluginConfig, Debug)]
    #[config(validate = Self::check)]
    struct Config {
        #[allow(dead_code)]
        count: u32,
    }
    impl Config {
        fn check(&self) -> Result<(), &'static str> {
            Err("hook ran")
        }
    }
    assert_eq!(
        problem::<Config>(r#"{"count": "x"}"#),
        r#"count: expected an unsigned integer, got "x""#
    );
}

// Unknown keys

#[test]
fn parse_unknown_key_suggests_the_closest_known_key() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[config(default = 10)]
        #[allow(dead_code)]
        dispatch_count: u32,
    }
    assert_eq!(
        problem::<Config>(r#"{"dispatchCont": 5}"#),
        "unknown field `dispatchCont`, did you mean `dispatchCount`?"
    );
    assert_eq!(
        problem::<Config>(r#"{"dispatch_count": 5}"#),
        "unknown field `dispatch_count`, did you mean `dispatchCount`?"
    );
}

#[test]
/// `nmae`, `vaule` and `prot` were two edits away (a swap was counted as two) and got no
/// suggestion.
fn parse_unknown_key_with_swapped_letters_suggests_the_known_key() {
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Config {
        #[config(default = "x")]
        name: String,
        #[config(default = "x")]
        value: String,
        #[config(default = 80)]
        port: u16,
    }
    assert_eq!(
        problems::<Config>(r#"{"nmae": "a", "vaule": "b", "prot": 1}"#),
        [
            "unknown field `nmae`, did you mean `name`?",
            "unknown field `prot`, did you mean `port`?",
            "unknown field `vaule`, did you mean `value`?",
        ]
    );
}

#[test]
fn parse_unknown_key_with_allow_unknown_keys_is_accepted() {
    #[derive(PluginConfig, Debug)]
    #[config(allow_unknown_keys)]
    struct Config {
        #[config(default = 1)]
        limit: u32,
    }
    let config = Config::parse(br#"{"limit": 3, "burst": 5}"#).unwrap();
    assert_eq!(config.limit, 3);
    // Only unknown keys: every other problem is still one.
    assert_eq!(
        problem::<Config>(r#"{"limit": "3", "burst": 5}"#),
        r#"limit: expected an unsigned integer, got "3""#
    );
}

#[test]
fn parse_unknown_key_in_a_nested_struct_without_the_opt_in_is_refused() {
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Inner {
        #[config(default = 1)]
        limit: u32,
    }
    #[derive(PluginConfig, Debug)]
    #[config(allow_unknown_keys)]
    #[allow(dead_code)]
    struct Config {
        #[config(default)]
        inner: Inner,
    }
    assert!(Config::parse(br#"{"other": 1}"#).is_ok());
    assert_eq!(
        problem::<Config>(r#"{"inner": {"burst": 1}}"#),
        "inner: unknown field `burst`, expected one of `limit`"
    );
}

#[test]
/// The last of two equal keys won, silently.
fn parse_duplicate_key_is_refused_naming_the_key_and_its_path() {
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Rule {
        limit: u32,
    }
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Config {
        limit: u32,
        rules: Vec<Rule>,
    }
    assert_eq!(
        problem::<Config>(r#"{"limit": 1, "rules": [], "limit": 2}"#),
        "duplicate key `limit` at line 1, column 33"
    );
    assert_eq!(
        problem::<Config>(r#"{"limit": 1, "rules": [{"limit": 1, "limit": 2}]}"#),
        "rules[0]: duplicate key `limit` at line 1, column 43"
    );
}

#[test]
fn parse_duplicate_key_check_skips_strings_and_names_quoted_keys() {
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Config {
        #[config(default)]
        note: String,
        #[config(default)]
        tags: std::collections::BTreeMap<String, serde_json::Value>,
    }
    // Braces, quotes and a key's name inside a string value are not keys.
    assert!(
        Config::parse(br#"{"note": "{\"note\": 1, \"note\": 2}", "tags": {"note": 1}}"#).is_ok()
    );
    assert_eq!(
        problem::<Config>("{\"tags\": {\"x y\": {\"k\": 1,\n \"k\": 2}}}"),
        "tags[\"x y\"]: duplicate key `k` at line 2, column 4"
    );
}

#[test]
fn parse_unknown_key_far_from_all_lists_the_known_keys() {
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Config {
        #[config(default)]
        cluster: String,
        #[config(default)]
        timeout: u32,
    }
    assert_eq!(
        problem::<Config>(r#"{"zzz": 1}"#),
        "unknown field `zzz`, expected one of `cluster`, `timeout`"
    );
}

#[test]
fn parse_unknown_key_in_nested_struct_names_its_path() {
    #[derive(PluginConfig, Debug)]
    struct Rule {
        #[allow(dead_code)]
        path: String,
    }
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[allow(dead_code)]
        rules: Vec<Rule>,
    }
    assert_eq!(
        problem::<Config>(r#"{"rules": [{"path": "/", "pth": "/"}]}"#),
        "rules[0]: unknown field `pth`, did you mean `path`?"
    );
}

// Errors

#[test]
fn parse_reports_every_problem_together() {
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Config {
        #[config(range = 1..=100)]
        dispatch_count: u32,
        auth_cluster: String,
    }
    let error = Config::parse(br#"{"dispatchCount": 0, "extra": true}"#).unwrap_err();
    assert_eq!(
        error.to_string(),
        "dispatchCount: must be in 1..=100, got 0\n\
         missing field `authCluster`\n\
         unknown field `extra`, expected one of `dispatchCount`, `authCluster`"
    );
}

#[test]
fn parse_invalid_json_gives_line_and_column() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[allow(dead_code)]
        a: u32,
    }
    assert_eq!(
        problem::<Config>("{\n  \"a\": 1,\n}"),
        "invalid JSON at line 3, column 1: trailing comma"
    );
}

#[test]
fn parse_invalid_utf8_is_refused_with_its_position() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[allow(dead_code)]
        a: String,
    }
    let error = Config::parse(b"{\"a\": \"\xff\xfe\"}").unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid JSON at line 1, column 8: invalid unicode code point"
    );
}

#[test]
fn parse_top_level_that_is_not_an_object_is_refused() {
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Config {
        dispatch_cluster: String,
        dispatch_count: u32,
    }
    for (json, got) in [
        (r#"["httpbin", 5]"#, "an array"),
        (r#""httpbin""#, r#""httpbin""#),
        ("5", "5"),
        ("null", "null"),
    ] {
        assert_eq!(
            problem::<Config>(json),
            format!("expected a JSON object at the top level, got {got}")
        );
    }
}

#[test]
fn parse_deeply_nested_json_is_refused_without_overflow() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[allow(dead_code)]
        a: serde_json::Value,
    }
    let json = format!("{{\"a\": {}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(
        problem::<Config>(&json),
        "invalid JSON at line 1, column 133: recursion limit exceeded"
    );
}

#[test]
fn parse_huge_input_is_refused_with_capped_problems() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[allow(dead_code)]
        ports: Vec<u16>,
    }
    let json = format!("{{\"ports\": [{}\"x\"]}}", "-1,".repeat(200_000));
    let error = Config::parse(json.as_bytes()).unwrap_err();
    assert_eq!(error.problems().len(), 51);
    assert_eq!(
        error.problems().next().unwrap().to_string(),
        "ports[0]: out of range for u16 (0..=65535), got -1"
    );
    assert_eq!(
        error.problems().last().unwrap().to_string(),
        "... and 199951 more problems"
    );
}

#[test]
fn parse_long_values_and_keys_are_cut_in_messages() {
    #[derive(PluginConfig, Debug)]
    struct Config {
        #[allow(dead_code)]
        count: u32,
    }
    let long = "x".repeat(1000);
    assert_eq!(
        problems::<Config>(&format!(r#"{{"count": "{long}", "{long}": 1}}"#)),
        [
            format!(
                r#"count: expected an unsigned integer, got "{}"... (1000 bytes)"#,
                &long[..64]
            ),
            format!(
                "unknown field `{}... (1000 bytes)`, expected one of `count`",
                &long[..64]
            ),
        ]
    );
}

#[test]
fn parse_never_panics_on_mutated_input() {
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Rule {
        #[config(non_empty)]
        path: String,
        #[config(default = "1s")]
        timeout: Duration,
    }
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Config {
        #[config(default = 10, range = 1..=100)]
        count: u32,
        rules: Vec<Rule>,
        map: Option<BTreeMap<String, f64>>,
    }
    let seed = br#"{"count": 5, "rules": [{"path": "/a", "timeout": "2s"}], "map": {"a": 1.5}}"#;
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut refused = 0;
    for _ in 0..20_000 {
        let mut bytes = seed.to_vec();
        for _ in 0..(next() % 4 + 1) {
            let at = (next() % bytes.len() as u64) as usize;
            match next() % 3 {
                0 => bytes[at] = next() as u8,
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, next() as u8),
            }
        }
        if let Err(error) = Config::parse(&bytes) {
            assert!(error.problems().len() > 0);
            refused += 1;
        }
    }
    assert!(refused > 10_000, "only {refused} mutations refused");
}

#[test]
fn problem_display_is_path_and_message_or_message_alone() {
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Config {
        count: u32,
    }
    let error = Config::parse(br#"{"count": true, "x": 1}"#).unwrap_err();
    let all: Vec<_> = error.problems().collect();
    assert_eq!(
        (all[0].path(), all[0].message()),
        ("count", "expected an unsigned integer, got true")
    );
    assert_eq!(
        all[0].to_string(),
        "count: expected an unsigned integer, got true"
    );
    assert_eq!(all[1].path(), "");
    assert_eq!(all[1].to_string(), all[1].message());
}

#[test]
fn config_error_is_a_std_error() {
    fn source(error: &dyn std::error::Error) -> String {
        error.to_string()
    }
    let error = ConfigError::new("bad");
    assert_eq!(source(&error), "bad");
}

// Schema

#[test]
fn schema_describes_keys_types_defaults_checks_and_docs() {
    /// Where to send the calls.
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Config {
        /// Cluster to call.
        #[config(default = "httpbin", non_empty)]
        dispatch_cluster: String,
        #[config(default = 10, range = 1..=100)]
        dispatch_count: u32,
        #[config(one_of = ["GET", "HEAD"])]
        method: Option<String>,
        tags: HashSet<String>,
    }
    let schema = Config::schema();
    assert_eq!(schema.name(), "Config");
    assert_eq!(schema.doc(), Some("Where to send the calls."));
    let count = schema.field("dispatchCount").unwrap();
    assert_eq!(count.ty().name(), "integer (u32)");
    assert_eq!(count.default(), Some("10"));
    assert!(!count.is_required());
    assert_eq!(count.constraints(), ["in 1..=100"]);
    assert_eq!(
        schema.to_string(),
        "Config: Where to send the calls.\n\
         - dispatchCluster: string, default \"httpbin\", not empty\n    Cluster to call.\n\
         - dispatchCount: integer (u32), default 10, in 1..=100\n\
         - method: string, optional, one of \"GET\", \"HEAD\"\n\
         - tags: HashSet<String>, required\n"
    );
}

#[test]
/// The schema showed ``checked by `pwf :: config :: call_timeout` `` and
/// `default Default::default()`.
fn schema_shows_code_as_written_and_bare_defaults_in_words() {
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Config {
        #[config(default = "250ms", validate = pwf::config::call_timeout)]
        timeout: Duration,
        #[config(default = Duration::from_millis(1500))]
        delay: Duration,
        #[config(default)]
        names: Vec<String>,
        #[config(default = 5000)]
        retry_ms: Duration,
        #[config(default = 10, range = ..=100)]
        count: i32,
    }
    assert_eq!(
        Config::schema().to_string(),
        "Config\n\
         - timeout: duration, default \"250ms\", checked by `pwf::config::call_timeout`\n\
         - delay: duration, default Duration::from_millis(1500)\n\
         - names: list of string, default (the type's default)\n\
         - retryMs: duration, default 5000, an integer counts ms\n\
         - count: integer (i32), default 10, at most 100\n"
    );
}

#[test]
fn schema_display_nests_configuration_structs() {
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Rule {
        path: String,
        #[config(default = "1s")]
        timeout: Duration,
    }
    #[derive(PluginConfig, Debug)]
    #[allow(dead_code)]
    struct Config {
        #[config(non_empty)]
        rules: Vec<Rule>,
        #[config(default)]
        fallback: Rule,
    }
    assert_eq!(
        Config::schema().to_string(),
        "Config\n\
         - rules: list of Rule, required, not empty\n  \
           - path: string, required\n  \
           - timeout: duration, default \"1s\"\n\
         - fallback: Rule, default (the type's default)\n  \
           - path: string, required\n  \
           - timeout: duration, default \"1s\"\n"
    );
}

// ()

#[test]
fn unit_parse_accepts_nothing_and_empty_object_only() {
    assert!(<()>::parse(b"").is_ok());
    assert!(<()>::parse(b"{}").is_ok());
    assert_eq!(
        <()>::parse(br#"{"a": 1}"#).unwrap_err().to_string(),
        "unknown field `a`, this configuration takes no fields"
    );
    assert_eq!(
        <()>::parse(b"[]").unwrap_err().to_string(),
        "expected a JSON object at the top level, got an array"
    );
}
