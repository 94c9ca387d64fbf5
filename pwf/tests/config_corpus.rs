//! Every malformed configuration of the corpus is refused with exactly its problems.

#[path = "config_support/malformed.rs"]
mod malformed;

use malformed::{CorpusConfig, Mode, MALFORMED};
use pwf::PluginConfig;

#[test]
fn parse_refuses_each_malformed_configuration_with_its_exact_problems() {
    assert!(MALFORMED.len() >= 30);
    let mut mismatches = Vec::new();
    for case in MALFORMED {
        let actual: Vec<String> = match CorpusConfig::parse(case.bytes) {
            Ok(config) => vec![format!("accepted: {config:?}")],
            Err(error) => error.problems().map(ToString::to_string).collect(),
        };
        if actual != case.problems {
            mismatches.push(format!(
                "{}:\n  expected {:?}\n  actual   {:?}",
                case.name, case.problems, actual
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn corpus_case_names_are_unique() {
    let mut names: Vec<_> = MALFORMED.iter().map(|case| case.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), MALFORMED.len());
}

#[test]
fn parse_accepts_the_corpus_configuration_when_well_formed() {
    let config = CorpusConfig::parse(
        br#"{
            "dispatchCluster": "backend",
            "dispatchCount": 100,
            "timeout": "250ms",
            "method": "POST",
            "rules": [{"path": "/a", "weight": 10}],
            "headers": {"x-id": "1"},
            "sharedDataKey": "counter",
            "mode": "deny"
        }"#,
    )
    .unwrap();
    assert_eq!(config.dispatch_cluster, "backend");
    assert_eq!(config.dispatch_count, 100);
    assert_eq!(config.timeout, std::time::Duration::from_millis(250));
    assert_eq!(config.method, "POST");
    assert_eq!(
        (config.rules[0].path.as_str(), config.rules[0].weight),
        ("/a", 10)
    );
    assert_eq!(config.headers["x-id"], "1");
    assert_eq!(config.shared_data_key.as_deref(), Some("counter"));
    assert_eq!(config.mode, Mode::Deny);
}
