//! `SharedCache`, `SharedTable` and `SharedValue::set` across worker VMs of
//! one native host.

use std::rc::Rc;
use std::time::Duration;

use pwf::table::{Change, SharedTable};
use pwf::{
    Action, Error, Http, HttpFilter, Outcome, Plugin, PluginConfig, PluginContext, Request,
    SharedCache, SharedValue,
};
use pwf_test::{Host, LogLevel, Vm};

/// Runs the operation a request names in `x-op` on `x-key` (and `x-value`,
/// `x-ttl-ms`), and logs what it got at info (errors at error).
#[derive(PluginConfig)]
struct Config {
    #[config(default = 16)]
    slots: u32,
    #[config(default = 2)]
    entries: usize,
}

struct Ops {
    cache: Rc<SharedCache<String>>,
    table: SharedTable,
    value: SharedValue<String>,
}

impl Plugin for Ops {
    type Config = Config;
    type Filter = OpsFilter;

    fn configure(config: Config, _: &PluginContext) -> Result<Self, Error> {
        let cache = SharedCache::new("cache")
            .with_slots(config.slots)
            .with_entries_per_slot(config.entries)
            .with_max_value_bytes(16);
        Ok(Ops {
            cache: Rc::new(cache),
            table: SharedTable::new("table")
                .with_slots(config.slots)
                .with_entries_per_slot(config.entries),
            value: SharedValue::new("value"),
        })
    }

    fn filter(plugin: &Rc<Self>, _: &Http) -> OpsFilter {
        OpsFilter {
            plugin: plugin.clone(),
        }
    }
}

struct OpsFilter {
    plugin: Rc<Ops>,
}

fn header(http: &Http, name: &str) -> String {
    http.request_header(name)
        .ok()
        .flatten()
        .and_then(|value| value.to_str().ok().map(str::to_owned))
        .unwrap_or_default()
}

impl HttpFilter for OpsFilter {
    fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        let plugin = &self.plugin;
        let (op, key, value) = (
            header(http, "x-op"),
            header(http, "x-key"),
            header(http, "x-value"),
        );
        let ttl = Duration::from_millis(header(http, "x-ttl-ms").parse().unwrap_or(0));
        match op.as_str() {
            "insert" => match plugin.cache.insert(&key, &value, ttl) {
                Ok(()) => pwf::info!("inserted {key} evictions={}", plugin.cache.evictions()),
                Err(error) => pwf::error!("{error}"),
            },
            "get" => match plugin.cache.get(&key) {
                Ok(found) => pwf::info!("get {key}={found:?}"),
                Err(error) => pwf::error!("{error}"),
            },
            "fetch" => {
                let cache = plugin.cache.clone();
                return Ok(http.spawn(async move {
                    let value = cache
                        .get_or_fetch(&key, ttl, || async {
                            let response = Request::get("tokens", "/token").send()?.await?;
                            let response = response.error_for_status()?;
                            Ok::<String, Error>(String::from_utf8_lossy(response.body()).into())
                        })
                        .await?;
                    pwf::info!("fetch {key}={value}");
                    Ok(Outcome::Continue)
                }));
            }
            "count" => {
                // A per-key counter in the table, live for `ttl`.
                let count = plugin.table.update(&key, |entry, now| {
                    let (count, expires) = match entry {
                        Some(entry) => (entry.value()[0] + 1, entry.expires_at_ms()),
                        None => (1, now + ttl.as_millis() as u64),
                    };
                    (count, Change::Set(vec![count], expires))
                });
                match count {
                    Ok(count) => {
                        pwf::info!("count {key}={count} evictions={}", plugin.table.evictions())
                    }
                    Err(error) => pwf::error!("{error}"),
                }
            }
            "set" => match plugin.value.set(&value).and_then(|()| plugin.value.get()) {
                Ok(read) => pwf::info!("set {read:?}"),
                Err(error) => pwf::error!("{error}"),
            },
            _ => {}
        }
        Ok(Action::Continue)
    }
}

fn host() -> Host {
    let host = Host::builder().cluster("tokens").build();
    host.set_time(std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    host
}

fn worker(host: &Host, config: &str) -> (Vm, pwf_test::Plugin) {
    let vm = host.start_vm_with_root(pwf::root_context::<Ops>).unwrap();
    let plugin = vm.configure(config).unwrap();
    (vm, plugin)
}

/// Sends one request with `x-op: op` and the given `(name, value)` headers.
fn op(plugin: &pwf_test::Plugin, op: &str, headers: &[(&str, &str)]) -> pwf_test::Stream {
    let stream = plugin.open_stream();
    let mut all = vec![
        (":method", "GET"),
        (":path", "/"),
        (":authority", "app"),
        ("x-op", op),
    ];
    all.extend_from_slice(headers);
    stream.request_headers(all, true);
    stream
}

fn info(host: &Host) -> Vec<String> {
    host.logs(LogLevel::Info)
}

#[test]
fn cache_insert_is_read_by_another_worker() {
    let host = host();
    let (_, a) = worker(&host, "");
    let (_, b) = worker(&host, "");
    op(
        &a,
        "insert",
        &[("x-key", "k"), ("x-value", "v1"), ("x-ttl-ms", "30000")],
    );
    op(&b, "get", &[("x-key", "k")]);
    op(&b, "get", &[("x-key", "other")]);
    assert_eq!(
        info(&host),
        [
            "inserted k evictions=0",
            "get k=Some(\"v1\")",
            "get other=None"
        ]
    );
}

#[test]
fn cache_entry_expires_after_its_ttl() {
    let host = host();
    let (_, plugin) = worker(&host, "");
    op(
        &plugin,
        "insert",
        &[("x-key", "k"), ("x-value", "v1"), ("x-ttl-ms", "30000")],
    );
    host.advance(Duration::from_millis(29_999));
    op(&plugin, "get", &[("x-key", "k")]);
    host.advance(Duration::from_millis(1));
    op(&plugin, "get", &[("x-key", "k")]);
    assert_eq!(
        info(&host),
        ["inserted k evictions=0", "get k=Some(\"v1\")", "get k=None"]
    );
}

#[test]
fn cache_value_larger_than_an_entry_is_refused_with_both_sizes() {
    let host = host();
    let (_, plugin) = worker(&host, "");
    // 17 characters: 19 bytes of JSON, over the 16 an entry holds.
    op(
        &plugin,
        "insert",
        &[
            ("x-key", "k"),
            ("x-value", "abcdefghijklmnopq"),
            ("x-ttl-ms", "1000"),
        ],
    );
    let slot = SharedTable::new("cache").with_slots(16).slot_key("k");
    assert_eq!(
        host.logs(LogLevel::Error),
        [format!(
            "shared key `{slot}`: the value takes 19 bytes, more than the 16 an entry holds"
        )]
    );
    assert_eq!(host.shared_data(&slot), None);
}

#[test]
fn cache_get_or_fetch_on_a_miss_sends_one_call_and_fills_the_entry() {
    let host = host();
    let (_, a) = worker(&host, "");
    let (_, b) = worker(&host, "");
    let first = op(&a, "fetch", &[("x-key", "k"), ("x-ttl-ms", "30000")]);
    let calls = first.pending_calls();
    assert_eq!(calls.len(), 1);
    calls[0].respond(200, [("content-type", "text/plain")], "tok-1");
    // Another worker finds it without a call.
    let second = op(&b, "fetch", &[("x-key", "k"), ("x-ttl-ms", "30000")]);
    assert!(second.pending_calls().is_empty());
    assert_eq!(host.calls().len(), 1);
    assert_eq!(info(&host), ["fetch k=tok-1", "fetch k=tok-1"]);
}

#[test]
fn cache_get_or_fetch_with_a_failed_call_caches_nothing() {
    let host = host();
    let (_, plugin) = worker(&host, "");
    let first = op(&plugin, "fetch", &[("x-key", "k"), ("x-ttl-ms", "30000")]);
    first.pending_calls()[0].respond(
        503,
        [("content-type", "text/plain")],
        "upstream connect error",
    );
    let second = op(&plugin, "fetch", &[("x-key", "k"), ("x-ttl-ms", "30000")]);
    assert_eq!(second.pending_calls().len(), 1);
    assert!(info(&host).is_empty());
}

#[test]
fn table_full_slot_drops_expired_entries_before_live_ones() {
    let host = host();
    // One slot of two entries.
    let (_, plugin) = worker(&host, r#"{"slots": 1}"#);
    op(&plugin, "count", &[("x-key", "a"), ("x-ttl-ms", "1000")]);
    op(&plugin, "count", &[("x-key", "b"), ("x-ttl-ms", "60000")]);
    host.advance(Duration::from_secs(2));
    // `a` has expired: `c` takes its place, no live entry is evicted.
    op(&plugin, "count", &[("x-key", "c"), ("x-ttl-ms", "60000")]);
    op(&plugin, "count", &[("x-key", "b"), ("x-ttl-ms", "60000")]);
    assert_eq!(
        info(&host),
        [
            "count a=1 evictions=0",
            "count b=1 evictions=0",
            "count c=1 evictions=0",
            "count b=2 evictions=0"
        ]
    );
}

#[test]
fn table_full_slot_evicts_the_live_entry_that_expires_soonest() {
    let host = host();
    let (_, plugin) = worker(&host, r#"{"slots": 1}"#);
    op(
        &plugin,
        "count",
        &[("x-key", "long"), ("x-ttl-ms", "60000")],
    );
    op(
        &plugin,
        "count",
        &[("x-key", "short"), ("x-ttl-ms", "5000")],
    );
    op(&plugin, "count", &[("x-key", "new"), ("x-ttl-ms", "30000")]);
    // `short` was evicted and starts again; `long` kept its count.
    op(
        &plugin,
        "count",
        &[("x-key", "long"), ("x-ttl-ms", "60000")],
    );
    op(
        &plugin,
        "count",
        &[("x-key", "short"), ("x-ttl-ms", "5000")],
    );
    assert_eq!(
        info(&host),
        [
            "count long=1 evictions=0",
            "count short=1 evictions=0",
            "count new=1 evictions=1",
            "count long=2 evictions=1",
            "count short=1 evictions=2"
        ]
    );
}

#[test]
fn table_update_interleaved_with_another_worker_keeps_both() {
    let host = host();
    let (vm_a, a) = worker(&host, "");
    let (_, b) = worker(&host, "");
    op(&a, "count", &[("x-key", "k"), ("x-ttl-ms", "60000")]);
    let slot = SharedTable::new("table").with_slots(16).slot_key("k");
    host.before_set_shared_data(&vm_a, &slot, move || {
        op(&b, "count", &[("x-key", "k"), ("x-ttl-ms", "60000")]);
    });
    op(&a, "count", &[("x-key", "k"), ("x-ttl-ms", "60000")]);
    assert_eq!(
        info(&host),
        [
            "count k=1 evictions=0",
            "count k=2 evictions=0",
            "count k=3 evictions=0"
        ]
    );
}

#[test]
fn table_slot_that_is_not_a_table_is_reported_corrupt_and_left_alone() {
    let host = host();
    let (_, plugin) = worker(&host, "");
    let slot = SharedTable::new("table").with_slots(16).slot_key("k");
    host.set_shared_data(&slot, b"not a slot");
    op(&plugin, "count", &[("x-key", "k"), ("x-ttl-ms", "60000")]);
    assert_eq!(
        host.logs(LogLevel::Error),
        [format!(
            "shared key `{slot}`: not a table slot: 10 bytes left that are no whole entry"
        )]
    );
    assert_eq!(host.shared_data(&slot), Some(b"not a slot".to_vec()));
}

#[test]
fn shared_value_set_replaces_the_value() {
    let host = host();
    let (_, plugin) = worker(&host, "");
    op(&plugin, "set", &[("x-value", "first")]);
    op(&plugin, "set", &[("x-value", "second")]);
    assert_eq!(info(&host), ["set Some(\"first\")", "set Some(\"second\")"]);
    assert_eq!(host.shared_data("value"), Some(b"\"second\"".to_vec()));
}
