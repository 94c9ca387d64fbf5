//! Every malformed configuration of the corpus, loaded through the native
//! host: the plugin is rejected and each problem is logged at error level,
//! one line each, naming the plugin.

// Only the corpus and the configuration type are used here, not every field.
#[allow(dead_code)]
#[path = "config_support/malformed.rs"]
mod malformed;

use std::rc::Rc;

use malformed::{CorpusConfig, MALFORMED};
use pwf::{Error, Http, HttpFilter, Plugin, PluginContext};
use pwf_test::{ConfigureError, Host, LogLevel};

struct Corpus;

impl Plugin for Corpus {
    type Config = CorpusConfig;
    type Filter = CorpusFilter;

    fn configure(config: CorpusConfig, _: &PluginContext) -> Result<Self, Error> {
        pwf::info!(
            "configured: cluster={} count={}",
            config.dispatch_cluster,
            config.dispatch_count
        );
        Ok(Corpus)
    }

    fn filter(_: &Rc<Self>, _: &Http) -> CorpusFilter {
        CorpusFilter
    }
}

struct CorpusFilter;

impl HttpFilter for CorpusFilter {}

/// What loading `bytes` did: the verdict, the error lines and the info lines.
fn load(bytes: &[u8]) -> (Result<(), ConfigureError>, Vec<String>, Vec<String>) {
    let host = Host::builder().plugin_name("corpus-plugin").build();
    let vm = host
        .start_vm_with_root(pwf::root_context::<Corpus>)
        .expect("the VM starts");
    let verdict = vm.configure(bytes).map(|_| ());
    (
        verdict,
        host.logs(LogLevel::Error),
        host.logs(LogLevel::Info),
    )
}

#[test]
fn configure_rejects_each_malformed_configuration_logging_its_exact_problems() {
    assert!(MALFORMED.len() >= 30);
    let mut mismatches = Vec::new();
    for case in MALFORMED {
        let expected: Vec<String> = case
            .problems
            .iter()
            .map(|problem| format!("corpus-plugin: invalid plugin configuration: {problem}"))
            .collect();
        let (verdict, errors, infos) = load(case.bytes);
        if verdict != Err(ConfigureError::Rejected) || errors != expected || !infos.is_empty() {
            mismatches.push(format!(
                "{}:\n  verdict {verdict:?}\n  expected {expected:?}\n  actual   {errors:?}\n  info     {infos:?}",
                case.name
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn configure_accepts_a_well_formed_corpus_configuration_without_error_lines() {
    let (verdict, errors, infos) = load(br#"{"dispatchCluster": "backend", "dispatchCount": 3}"#);
    assert_eq!(verdict, Ok(()));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(infos, ["configured: cluster=backend count=3"]);
}

#[test]
fn configure_accepts_no_bytes_as_every_default() {
    let (verdict, errors, infos) = load(b"");
    assert_eq!(verdict, Ok(()));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(infos, ["configured: cluster=httpbin count=10"]);
}

/// A configuration of the next plugin version, for a struct with
/// `allow_unknown_keys`.
#[derive(pwf::PluginConfig, Debug)]
#[config(allow_unknown_keys)]
struct Lenient {
    #[config(default = 100)]
    limit: u32,
}

struct LenientPlugin;

impl Plugin for LenientPlugin {
    type Config = Lenient;
    type Filter = CorpusFilter;

    fn configure(config: Lenient, _: &PluginContext) -> Result<Self, Error> {
        pwf::info!("configured: limit={}", config.limit);
        Ok(LenientPlugin)
    }

    fn filter(_: &Rc<Self>, _: &Http) -> CorpusFilter {
        CorpusFilter
    }
}

#[test]
fn configure_with_allow_unknown_keys_logs_each_ignored_key_as_a_warning() {
    let host = Host::builder().plugin_name("rate_limit").build();
    let vm = host
        .start_vm_with_root(pwf::root_context::<LenientPlugin>)
        .expect("the VM starts");
    assert!(vm.configure(br#"{"limit": 5, "burst": 10}"#).is_ok());
    assert_eq!(
        host.logs(LogLevel::Warn),
        ["rate_limit: plugin configuration: unknown field `burst` ignored, expected one of `limit`"]
    );
    assert_eq!(host.logs(LogLevel::Info), ["configured: limit=5"]);
    assert!(host.logs(LogLevel::Error).is_empty());
}
