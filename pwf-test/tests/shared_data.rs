//! Shared data with Envoy's semantics, across workers, and interleavings inside a
//! plugin's get/set sequence.

mod support;

use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;
use pwf_test::{Host, Plugin};
use support::{root, script, Event};

fn worker(host: &Host, name: &str) -> (pwf_test::Vm, Plugin) {
    let vm = host.start_vm_with_root_and_config(root, name).unwrap();
    let plugin = vm.configure("").unwrap();
    (vm, plugin)
}

fn read_count(key: &str) -> (u64, Option<u32>) {
    let (value, cas) = hostcalls::get_shared_data(key).unwrap();
    let count = value.map_or(0, |v| String::from_utf8(v).unwrap().parse().unwrap());
    (count, cas)
}

#[test]
fn set_with_cas_zero_writes_unconditionally() {
    let name = script("cas_zero_unconditional", |event| {
        if event == Event::Tick {
            hostcalls::set_shared_data("k", Some(b"a"), None).unwrap();
            hostcalls::set_shared_data("k", Some(b"b"), None).unwrap();
        }
        true
    });
    let host = Host::default();
    worker(&host, &name).1.tick().unwrap();
    assert_eq!(host.shared_data("k").as_deref(), Some(&b"b"[..]));
}

#[test]
fn set_of_a_missing_key_inserts_whatever_the_cas() {
    let name = script("missing_key_inserts", |event| {
        if event == Event::Tick {
            hostcalls::set_shared_data("new", Some(b"v"), Some(12345)).unwrap();
        }
        true
    });
    let host = Host::default();
    worker(&host, &name).1.tick().unwrap();
    assert_eq!(host.shared_data("new").as_deref(), Some(&b"v"[..]));
}

#[test]
fn set_with_a_stale_cas_fails_with_cas_mismatch() {
    let name = script("stale_cas_mismatch", |event| {
        if event == Event::Tick {
            hostcalls::set_shared_data("k", Some(b"1"), None).unwrap();
            let (_, cas) = hostcalls::get_shared_data("k").unwrap();
            hostcalls::set_shared_data("k", Some(b"2"), None).unwrap();
            assert_eq!(
                hostcalls::set_shared_data("k", Some(b"3"), cas),
                Err(Status::CasMismatch)
            );
        }
        true
    });
    let host = Host::default();
    worker(&host, &name).1.tick().unwrap();
    assert_eq!(host.shared_data("k").as_deref(), Some(&b"2"[..]));
}

#[test]
fn cas_counter_is_global_across_keys_and_starts_at_one() {
    let host = Host::default();
    host.set_shared_data("a", "x");
    host.set_shared_data("b", "y");
    host.set_shared_data("a", "z");
    assert_eq!(host.shared_data_with_cas("b").unwrap().1, 2);
    assert_eq!(host.shared_data_with_cas("a").unwrap().1, 3);
}

#[test]
fn get_of_a_missing_key_is_not_found() {
    let name = script("get_missing_not_found", |event| {
        if event == Event::Tick {
            assert_eq!(hostcalls::get_shared_data("nothing"), Ok((None, None)));
        }
        true
    });
    let host = Host::default();
    assert!(worker(&host, &name).1.tick().is_ok());
}

#[test]
fn workers_of_one_host_share_the_store() {
    let name = script("workers_share_store", |event| {
        if event == Event::Tick {
            let (count, cas) = read_count("n");
            hostcalls::set_shared_data("n", Some((count + 1).to_string().as_bytes()), cas).unwrap();
        }
        true
    });
    let host = Host::default();
    let (_, a) = worker(&host, &name);
    let (_, b) = worker(&host, &name);
    a.tick().unwrap();
    b.tick().unwrap();
    a.tick().unwrap();
    assert_eq!(host.shared_data("n").as_deref(), Some(&b"3"[..]));
}

/// A naive counter: get, then set with cas 0.
fn naive(event: Event) -> bool {
    if event == Event::Tick {
        let (count, _) = read_count("n");
        hostcalls::set_shared_data("n", Some((count + 1).to_string().as_bytes()), None).unwrap();
    }
    true
}

/// A CAS counter: get, set with the cas, retry on mismatch (at most 3 tries).
fn retrying(event: Event) -> bool {
    if event == Event::Tick {
        for _ in 0..3 {
            let (count, cas) = read_count("n");
            let next = (count + 1).to_string();
            match hostcalls::set_shared_data("n", Some(next.as_bytes()), cas) {
                Ok(()) => return true,
                Err(Status::CasMismatch) => continue,
                Err(other) => panic!("{other:?}"),
            }
        }
        hostcalls::log(proxy_wasm::types::LogLevel::Error, "gave up").unwrap();
    }
    true
}

#[test]
fn interleaved_workers_lose_an_update_of_a_naive_counter() {
    let name = script("interleave_naive", naive);
    let host = Host::default();
    host.set_shared_data("n", "0");
    let (vm_a, a) = worker(&host, &name);
    let (_, b) = worker(&host, &name);
    // Worker B increments between A's get and A's set.
    host.before_set_shared_data(&vm_a, "n", move || b.tick().unwrap());
    a.tick().unwrap();
    assert_eq!(
        host.shared_data("n").as_deref(),
        Some(&b"1"[..]),
        "one update lost"
    );
}

#[test]
fn interleaved_workers_keep_every_update_of_a_cas_counter() {
    let name = script("interleave_retrying", retrying);
    let host = Host::default();
    host.set_shared_data("n", "0");
    let (vm_a, a) = worker(&host, &name);
    let (_, b) = worker(&host, &name);
    host.before_set_shared_data(&vm_a, "n", move || b.tick().unwrap());
    a.tick().unwrap();
    assert_eq!(host.shared_data("n").as_deref(), Some(&b"2"[..]));
}

#[test]
fn forced_cas_mismatches_exhaust_the_retries() {
    let name = script("forced_mismatches", retrying);
    let host = Host::default();
    host.set_shared_data("n", "0");
    let (_, plugin) = worker(&host, &name);
    host.fail_cas("n", 3);
    plugin.tick().unwrap();
    assert_eq!(host.logs(proxy_wasm::types::LogLevel::Error), ["gave up"]);
    assert_eq!(host.shared_data("n").as_deref(), Some(&b"0"[..]));
    plugin.tick().unwrap();
    assert_eq!(host.shared_data("n").as_deref(), Some(&b"1"[..]));
}

#[test]
fn panic_in_a_hook_fails_the_test_not_the_vm() {
    let name = script("hook_panics", naive);
    let host = Host::default();
    let (vm, plugin) = worker(&host, &name);
    host.before_set_shared_data(&vm, "n", || panic!("assertion in hook"));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| plugin.tick()));
    let payload = result.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"assertion in hook"));
    assert_eq!(vm.failure(), None);
}
