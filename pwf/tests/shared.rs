//! `SharedCounter` and `SharedValue` across worker VMs of one native host,
//! interleaved inside their compare-and-swap loops.

use std::rc::Rc;

use pwf::{
    Action, Error, Http, HttpFilter, Plugin, PluginConfig, PluginContext, SharedCounter,
    SharedValue,
};
use pwf_test::{Host, LogLevel, Vm};

const REQUEST: [(&str, &str); 3] = [(":method", "GET"), (":path", "/"), (":authority", "app")];

/// Increments a shared counter on every tick and logs the new value and the
/// handle's retries (or the error, as `Debug | Display`); a stream logs the
/// counter's current value.
mod counter {
    use super::*;

    #[derive(PluginConfig)]
    pub(super) struct Config {
        #[config(default = "hits")]
        key: String,
        #[config(default = 64)]
        max_attempts: u32,
    }

    pub(super) struct Counting {
        counter: SharedCounter,
    }

    impl Plugin for Counting {
        type Config = Config;
        type Filter = CountingFilter;

        fn configure(config: Config, _: &PluginContext) -> Result<Self, Error> {
            Ok(Counting {
                counter: SharedCounter::new(config.key).with_max_attempts(config.max_attempts),
            })
        }

        fn filter(plugin: &Rc<Self>, _: &Http) -> CountingFilter {
            CountingFilter {
                plugin: plugin.clone(),
            }
        }

        fn on_tick(&self, _: &PluginContext) {
            match self.counter.increment() {
                Ok(n) => pwf::info!("n={n} retries={}", self.counter.retries()),
                Err(error) => pwf::error!("{error:?} | {error}"),
            }
        }
    }

    pub(super) struct CountingFilter {
        plugin: Rc<Counting>,
    }

    impl HttpFilter for CountingFilter {
        fn on_request_headers(&mut self, _: &Http, _: bool) -> Result<Action, Error> {
            pwf::info!("get={}", self.plugin.counter.get()?);
            Ok(Action::Continue)
        }
    }
}

/// Appends its configured item to a shared list on every tick, then logs
/// the list it wrote, the list read back, and the handle's retries.
mod list {
    use super::*;

    #[derive(PluginConfig)]
    pub(super) struct Config {
        item: String,
    }

    pub(super) struct Appending {
        item: String,
        list: SharedValue<Vec<String>>,
    }

    impl Plugin for Appending {
        type Config = Config;
        type Filter = AppendingFilter;

        fn configure(config: Config, _: &PluginContext) -> Result<Self, Error> {
            Ok(Appending {
                item: config.item,
                list: SharedValue::new("list"),
            })
        }

        fn filter(_: &Rc<Self>, _: &Http) -> AppendingFilter {
            AppendingFilter
        }

        fn on_tick(&self, _: &PluginContext) {
            let written = self.list.update(|list| {
                let mut list = list.unwrap_or_default();
                list.push(self.item.clone());
                list
            });
            match (written, self.list.get()) {
                (Ok(written), Ok(read)) => pwf::info!(
                    "wrote={written:?} read={read:?} retries={}",
                    self.list.retries()
                ),
                (Err(error), _) | (_, Err(error)) => pwf::error!("{error:?} | {error}"),
            }
        }
    }

    pub(super) struct AppendingFilter;

    impl HttpFilter for AppendingFilter {}
}

use counter::Counting;
use list::Appending;

/// Starts a worker VM running `P` with `config`.
fn worker<P: Plugin>(host: &Host, config: &str) -> (Vm, pwf_test::Plugin) {
    let vm = host.start_vm_with_root(pwf::root_context::<P>).unwrap();
    let plugin = vm.configure(config).unwrap();
    (vm, plugin)
}

/// The info lines, each with the index of the worker that logged it.
fn info_by_worker(host: &Host) -> Vec<(usize, String)> {
    host.log_entries()
        .into_iter()
        .filter(|entry| entry.level == LogLevel::Info)
        .map(|entry| (entry.vm, entry.message))
        .collect()
}

fn counter_bytes(host: &Host, key: &str) -> Option<u64> {
    let bytes = host.shared_data(key)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

#[test]
fn shared_counter_increment_interleaved_with_another_worker_keeps_both_updates() {
    let host = Host::builder().build();
    host.set_shared_data("hits", 5u64.to_le_bytes());
    let (vm_a, a) = worker::<Counting>(&host, "");
    let (_vm_b, b) = worker::<Counting>(&host, "");
    // Worker b increments between worker a's read and its write.
    host.before_set_shared_data(&vm_a, "hits", move || b.tick().unwrap());
    a.tick().unwrap();
    assert_eq!(
        info_by_worker(&host),
        [
            (1, "n=6 retries=0".to_string()),
            (0, "n=7 retries=1".to_string()),
        ]
    );
    assert_eq!(counter_bytes(&host, "hits"), Some(7));
}

#[test]
fn shared_counter_created_by_two_workers_at_once_keeps_both_updates() {
    let host = Host::builder().build();
    let (vm_a, a) = worker::<Counting>(&host, "");
    let (_vm_b, b) = worker::<Counting>(&host, "");
    // Both find the key missing; worker b creates it before worker a writes.
    host.before_set_shared_data(&vm_a, "hits", move || b.tick().unwrap());
    a.tick().unwrap();
    assert_eq!(
        info_by_worker(&host),
        [
            (1, "n=1 retries=0".to_string()),
            (0, "n=2 retries=1".to_string()),
        ]
    );
    assert_eq!(counter_bytes(&host, "hits"), Some(2));
}

#[test]
fn shared_counter_keeps_its_value_across_a_vm_restart() {
    let host = Host::builder().build();
    let (_first_vm, first) = worker::<Counting>(&host, "");
    first.tick().unwrap();
    first.tick().unwrap();
    let (_second_vm, second) = worker::<Counting>(&host, "");
    second.tick().unwrap();
    let lines: Vec<String> = info_by_worker(&host).into_iter().map(|(_, m)| m).collect();
    assert_eq!(lines, ["n=1 retries=0", "n=2 retries=0", "n=3 retries=0"]);
}

#[test]
fn shared_counter_keeps_its_value_across_a_reconfigure() {
    let host = Host::builder().build();
    let (vm, plugin) = worker::<Counting>(&host, "");
    plugin.tick().unwrap();
    plugin.tick().unwrap();
    let reconfigured = vm.configure("{}").unwrap();
    reconfigured.tick().unwrap();
    assert_eq!(
        host.logs(LogLevel::Info),
        ["n=1 retries=0", "n=2 retries=0", "n=3 retries=0"]
    );
    assert_eq!(counter_bytes(&host, "hits"), Some(3));
}

#[test]
fn shared_counter_gives_up_with_contended_after_max_attempts() {
    let host = Host::builder().build();
    host.set_shared_data("hits", 0u64.to_le_bytes());
    let (_vm, plugin) = worker::<Counting>(&host, r#"{"maxAttempts": 3}"#);
    host.fail_cas("hits", 3);
    plugin.tick().unwrap();
    assert_eq!(
        host.logs(LogLevel::Error),
        [concat!(
            r#"Contended { key: "hits", attempts: 3 }"#,
            " | shared key `hits`: gave up after 3 attempts, each lost to a concurrent write"
        )]
    );
    assert_eq!(counter_bytes(&host, "hits"), Some(0));
    plugin.tick().unwrap();
    assert_eq!(host.logs(LogLevel::Info), ["n=1 retries=2"]);
}

#[test]
fn shared_counter_stores_eight_little_endian_bytes() {
    let host = Host::builder().build();
    let (_vm, plugin) = worker::<Counting>(&host, "");
    for _ in 0..258 {
        plugin.tick().unwrap();
    }
    assert_eq!(
        host.shared_data("hits").as_deref(),
        Some(&[2, 1, 0, 0, 0, 0, 0, 0][..])
    );
}

#[test]
fn shared_counter_increments_a_value_another_plugin_wrote_as_little_endian() {
    let host = Host::builder().build();
    host.set_shared_data("hits", 0x0102_0304_0506_0708u64.to_le_bytes());
    let (_vm, plugin) = worker::<Counting>(&host, "");
    plugin.tick().unwrap();
    assert_eq!(
        host.logs(LogLevel::Info),
        [format!("n={} retries=0", 0x0102_0304_0506_0709u64)]
    );
    assert_eq!(counter_bytes(&host, "hits"), Some(0x0102_0304_0506_0709));
}

#[test]
fn shared_counter_with_corrupt_bytes_is_an_error_not_a_panic() {
    let host = Host::builder().build();
    host.set_shared_data("hits", [1, 2, 3]);
    let (_vm, plugin) = worker::<Counting>(&host, "");
    plugin.tick().unwrap();
    assert_eq!(
        host.logs(LogLevel::Error),
        [concat!(
            r#"Corrupt { key: "hits", reason: "expected 8 bytes (a little-endian u64), found 3" }"#,
            " | shared key `hits`: expected 8 bytes (a little-endian u64), found 3"
        )]
    );
    assert_eq!(host.shared_data("hits").as_deref(), Some(&[1, 2, 3][..]));
    assert_eq!(plugin.failure(), None);
}

#[test]
fn shared_counter_get_reads_a_missing_key_as_zero_without_creating_it() {
    let host = Host::builder().build();
    let (_vm, plugin) = worker::<Counting>(&host, "");
    plugin.open_stream().request_headers(REQUEST, true);
    assert_eq!(host.logs(LogLevel::Info), ["get=0"]);
    assert_eq!(host.shared_data("hits"), None);
}

#[test]
fn shared_counter_get_reads_the_current_value() {
    let host = Host::builder().build();
    let (_vm, plugin) = worker::<Counting>(&host, r#"{"key": "other"}"#);
    host.set_shared_data("other", 9u64.to_le_bytes());
    plugin.open_stream().request_headers(REQUEST, true);
    assert_eq!(host.logs(LogLevel::Info), ["get=9"]);
}

#[test]
fn shared_value_update_then_get_round_trips() {
    let host = Host::builder().build();
    let (_vm, plugin) = worker::<Appending>(&host, r#"{"item": "a"}"#);
    plugin.tick().unwrap();
    plugin.tick().unwrap();
    assert_eq!(
        host.logs(LogLevel::Info),
        [
            r#"wrote=["a"] read=Some(["a"]) retries=0"#,
            r#"wrote=["a", "a"] read=Some(["a", "a"]) retries=0"#,
        ]
    );
    assert_eq!(
        host.shared_data("list").as_deref(),
        Some(&br#"["a","a"]"#[..])
    );
}

#[test]
fn shared_value_update_interleaved_with_another_worker_keeps_both_updates() {
    let host = Host::builder().build();
    host.set_shared_data("list", br#"["start"]"#);
    let (vm_a, a) = worker::<Appending>(&host, r#"{"item": "a"}"#);
    let (_vm_b, b) = worker::<Appending>(&host, r#"{"item": "b"}"#);
    host.before_set_shared_data(&vm_a, "list", move || b.tick().unwrap());
    a.tick().unwrap();
    assert_eq!(
        info_by_worker(&host),
        [
            (
                1,
                r#"wrote=["start", "b"] read=Some(["start", "b"]) retries=0"#.to_string()
            ),
            (
                0,
                r#"wrote=["start", "b", "a"] read=Some(["start", "b", "a"]) retries=1"#.to_string()
            ),
        ]
    );
}

#[test]
fn shared_value_with_bytes_of_another_type_is_corrupt() {
    let host = Host::builder().build();
    host.set_shared_data("list", "{\"not\": \"a list\"}");
    let (_vm, plugin) = worker::<Appending>(&host, r#"{"item": "a"}"#);
    plugin.tick().unwrap();
    let errors = host.logs(LogLevel::Error);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with(r#"Corrupt { key: "list", reason: "stored value is not valid: "#),
        "{errors:?}"
    );
    assert_eq!(plugin.failure(), None);
}
