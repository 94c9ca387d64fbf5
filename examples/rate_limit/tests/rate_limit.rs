//! `rate_limit` on the native test host: exact counts across workers, windows,
//! keys, the 429 and its headers, exemptions, metrics and configuration.

use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use pwf_test::{Action, ConfigureError, Host, LogLevel, Metric, Plugin, Stream, Vm};
use rate_limit::RateLimitPlugin;

const RESPONSE: [(&str, &str); 1] = [(":status", "200")];

/// A time at the start of a 1-minute window (a multiple of 60 s since the epoch).
fn window_start() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(60 * 28_333_333)
}

fn host() -> Host {
    let host = Host::default();
    host.set_time(window_start());
    host
}

/// Starts a worker VM and configures the plugin with `config`.
fn worker(host: &Host, config: &str) -> (Vm, Plugin) {
    let vm = host
        .start_vm_with_root(pwf::root_context::<RateLimitPlugin>)
        .unwrap();
    let plugin = vm.configure(config).unwrap();
    (vm, plugin)
}

/// Runs a whole request to `path` with `headers` through `plugin`.
fn request_to(plugin: &Plugin, path: &str, headers: &[(&str, &str)]) -> Stream {
    let stream = plugin.open_stream();
    stream.set_property(&["source", "address"], "10.0.0.7:51234");
    let mut all = vec![(":method", "GET"), (":path", path), (":authority", "app")];
    all.extend_from_slice(headers);
    if stream.request_headers(all, true) == Action::Continue {
        stream.response_headers(RESPONSE, true);
    }
    stream
}

/// Runs a whole request of API key `key` through `plugin`.
fn request(plugin: &Plugin, key: &str) -> Stream {
    request_to(plugin, "/", &[("x-api-key", key)])
}

/// The status the client gets: 200 from upstream or the plugin's own.
fn status(stream: &Stream) -> u32 {
    stream
        .local_response()
        .map_or(200, |response| response.status)
}

const THREE_PER_MINUTE: &str = r#"{"limit": {"requests": 3, "per": "1m"}}"#;

#[test]
fn key_gets_exactly_its_limit_then_429() {
    let host = host();
    let (_, plugin) = worker(&host, THREE_PER_MINUTE);
    let statuses: Vec<u32> = (0..5).map(|_| status(&request(&plugin, "a"))).collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
}

#[test]
fn limited_response_carries_retry_after_and_x_ratelimit_headers() {
    let host = host();
    let (_, plugin) = worker(&host, THREE_PER_MINUTE);
    for _ in 0..3 {
        request(&plugin, "a");
    }
    host.advance(Duration::from_millis(15_500));
    let limited = request(&plugin, "a").local_response().unwrap();
    assert_eq!(limited.status, 429);
    assert_eq!(limited.headers.get("retry-after"), Some("45"));
    assert_eq!(limited.headers.get("x-ratelimit-limit"), Some("3, 3;w=60"));
    assert_eq!(limited.headers.get("x-ratelimit-remaining"), Some("0"));
    assert_eq!(limited.headers.get("x-ratelimit-reset"), Some("45"));
    assert_eq!(limited.body, b"rate limit exceeded\n");
}

#[test]
fn allowed_response_carries_remaining_and_reset() {
    let host = host();
    let (_, plugin) = worker(&host, THREE_PER_MINUTE);
    let first = request(&plugin, "a");
    assert_eq!(
        first.response_header("x-ratelimit-remaining").as_deref(),
        Some("2")
    );
    assert_eq!(
        first.response_header("x-ratelimit-reset").as_deref(),
        Some("60")
    );
    assert_eq!(
        first.response_header("x-ratelimit-limit").as_deref(),
        Some("3, 3;w=60")
    );
    let second = request(&plugin, "a");
    assert_eq!(
        second.response_header("x-ratelimit-remaining").as_deref(),
        Some("1")
    );
}

#[test]
fn next_window_allows_the_key_again() {
    let host = host();
    let (_, plugin) = worker(&host, THREE_PER_MINUTE);
    for _ in 0..4 {
        request(&plugin, "a");
    }
    host.advance(Duration::from_secs(59));
    assert_eq!(status(&request(&plugin, "a")), 429);
    host.advance(Duration::from_secs(1));
    assert_eq!(status(&request(&plugin, "a")), 200);
}

#[test]
fn keys_are_limited_separately() {
    let host = host();
    let (_, plugin) = worker(&host, THREE_PER_MINUTE);
    for _ in 0..3 {
        request(&plugin, "a");
    }
    assert_eq!(status(&request(&plugin, "a")), 429);
    assert_eq!(status(&request(&plugin, "b")), 200);
}

#[test]
fn two_workers_share_one_limit_exactly() {
    let host = host();
    let (_, a) = worker(&host, r#"{"limit": {"requests": 5, "per": "1m"}}"#);
    let (_, b) = worker(&host, r#"{"limit": {"requests": 5, "per": "1m"}}"#);
    let allowed = (0..12)
        .map(|n| request(if n % 2 == 0 { &a } else { &b }, "k"))
        .filter(|stream| status(stream) == 200)
        .count();
    assert_eq!(allowed, 5);
}

/// The shared-data key of the slot that holds `key`'s count.
fn slot_of(key: &str) -> String {
    pwf::SharedTable::new("rate_limit").slot_key(key)
}

/// Makes `vm_a`'s next write of `slot` wait while worker `b` runs a whole request.
fn interleave(host: &Host, vm_a: &Vm, slot: &str, b: Plugin) -> mpsc::Receiver<Stream> {
    let (sender, receiver) = mpsc::channel();
    host.before_set_shared_data(vm_a, slot, move || {
        let _ = sender.send(request(&b, "k"));
    });
    receiver
}

#[test]
fn last_request_of_the_window_interleaved_between_read_and_write_is_allowed_once() {
    let host = host();
    let config = r#"{"limit": {"requests": 2, "per": "1m"}}"#;
    let (vm_a, a) = worker(&host, config);
    let (_, b) = worker(&host, config);
    assert_eq!(status(&request(&a, "k")), 200);
    // A reads 1 and is about to write 2; B reads 1 and writes 2 first. A plain
    // read-then-write would allow both: A's write must fail and A must see 2.
    let b_stream = interleave(&host, &vm_a, &slot_of("key:k"), b);
    let a_stream = request(&a, "k");
    let b_stream = b_stream.try_recv().expect("B ran inside A's update");
    assert_eq!((status(&b_stream), status(&a_stream)), (200, 429));
}

#[test]
fn first_requests_of_a_key_from_two_workers_both_count() {
    let host = host();
    let config = r#"{"limit": {"requests": 2, "per": "1m"}}"#;
    let (vm_a, a) = worker(&host, config);
    let (_, b) = worker(&host, config);
    // Both find the slot missing: B creates it while A is about to.
    let b_stream = interleave(&host, &vm_a, &slot_of("key:k"), b);
    let a_stream = request(&a, "k");
    let b_stream = b_stream.try_recv().expect("B ran inside A's update");
    assert_eq!((status(&b_stream), status(&a_stream)), (200, 200));
    assert_eq!(status(&request(&a, "k")), 429);
}

#[test]
fn without_the_header_the_client_ip_without_port_is_the_key() {
    let host = host();
    let (_, plugin) = worker(&host, THREE_PER_MINUTE);
    let from = |address: &str| {
        let stream = plugin.open_stream();
        stream.set_property(&["source", "address"], address);
        let headers = [(":method", "GET"), (":path", "/"), (":authority", "app")];
        if stream.request_headers(headers, true) == Action::Continue {
            stream.response_headers(RESPONSE, true);
        }
        status(&stream)
    };
    // Three connections from one IP, each from another port: one client.
    assert_eq!(from("10.0.0.9:40001"), 200);
    assert_eq!(from("10.0.0.9:40002"), 200);
    assert_eq!(from("10.0.0.9:40003"), 200);
    assert_eq!(from("10.0.0.9:40004"), 429);
    assert_eq!(from("10.0.0.10:40004"), 200);
    assert_eq!(from("[2001:db8::1]:443"), 200);
}

#[test]
fn api_key_equal_to_an_ip_is_not_that_ip() {
    let host = host();
    let (_, plugin) = worker(&host, THREE_PER_MINUTE);
    // The requests without a key come from 10.0.0.7.
    for _ in 0..3 {
        request_to(&plugin, "/", &[]);
    }
    assert_eq!(status(&request_to(&plugin, "/", &[])), 429);
    assert_eq!(status(&request(&plugin, "10.0.0.7")), 200);
}

#[test]
fn configured_key_header_is_the_key() {
    let host = host();
    let config = r#"{"limit": {"requests": 1, "per": "1m"}, "keyHeader": "x-tenant"}"#;
    let (_, plugin) = worker(&host, config);
    assert_eq!(
        status(&request_to(&plugin, "/", &[("x-tenant", "t1")])),
        200
    );
    assert_eq!(
        status(&request_to(&plugin, "/", &[("x-tenant", "t1")])),
        429
    );
    assert_eq!(
        status(&request_to(&plugin, "/", &[("x-tenant", "t2")])),
        200
    );
}

#[test]
fn exempt_prefix_is_neither_limited_nor_counted() {
    let host = host();
    let config = r#"{"limit": {"requests": 1, "per": "1m"}, "exemptPrefixes": ["/health"]}"#;
    let (_, plugin) = worker(&host, config);
    for _ in 0..3 {
        let stream = request_to(&plugin, "/healthz", &[("x-api-key", "a")]);
        assert_eq!(status(&stream), 200);
        assert_eq!(stream.response_header("x-ratelimit-remaining"), None);
    }
    assert_eq!(status(&request(&plugin, "a")), 200);
    assert_eq!(status(&request(&plugin, "a")), 429);
}

#[test]
fn metrics_count_allowed_and_limited_requests() {
    let host = host();
    let (_, plugin) = worker(&host, THREE_PER_MINUTE);
    for _ in 0..5 {
        request(&plugin, "a");
    }
    assert_eq!(host.metric("rate_limit.allowed"), Some(Metric::Counter(3)));
    assert_eq!(host.metric("rate_limit.limited"), Some(Metric::Counter(2)));
}

#[test]
fn out_of_retries_lets_the_request_through_and_logs_why() {
    let host = host();
    let (_, plugin) = worker(&host, THREE_PER_MINUTE);
    request(&plugin, "a");
    let slot = slot_of("key:a");
    host.fail_cas(&slot, 1000);
    assert_eq!(status(&request(&plugin, "a")), 200);
    assert_eq!(
        host.logs(LogLevel::Error),
        [format!(
            "rate_limit: key:a not counted, let through: shared key `{slot}`: \
             gave up after 64 attempts, each lost to a concurrent write"
        )]
    );
}

#[test]
fn full_slot_evicts_the_oldest_key_which_starts_again() {
    let host = host();
    // One slot of 4 entries, all in one window: a fifth key makes room.
    let config = r#"{"limit": {"requests": 1, "per": "1m"}, "slots": 1}"#;
    let (_, plugin) = worker(&host, config);
    for key in ["a", "b", "c", "d"] {
        assert_eq!(status(&request(&plugin, key)), 200);
    }
    assert_eq!(status(&request(&plugin, "a")), 429);
    assert_eq!(status(&request(&plugin, "e")), 200);
    // `a` was the oldest entry: evicted, it is allowed again in this window.
    assert_eq!(status(&request(&plugin, "a")), 200);
    // Never merged: `e` still has its own count.
    assert_eq!(status(&request(&plugin, "e")), 429);
}

#[test]
fn many_keys_stay_in_the_configured_slots() {
    let host = host();
    let (_, plugin) = worker(&host, r#"{"slots": 8}"#);
    for n in 0..500 {
        request(&plugin, &format!("client-{n}"));
    }
    for slot in 0..8 {
        let bytes = host.shared_data(&format!("rate_limit/{slot}")).unwrap();
        // At most 4 entries of 26 + 4 bytes each.
        assert!(bytes.len() <= 4 * 30, "slot {slot}: {} bytes", bytes.len());
    }
    assert_eq!(host.shared_data("rate_limit/8"), None);
}

#[test]
fn configure_with_a_zero_limit_is_rejected_naming_the_field() {
    let host = host();
    let vm = host
        .start_vm_with_root(pwf::root_context::<RateLimitPlugin>)
        .unwrap();
    let config = r#"{"limit": {"requests": 0, "per": "soon"}}"#;
    assert_eq!(vm.configure(config).unwrap_err(), ConfigureError::Rejected);
    assert_eq!(
        host.logs(LogLevel::Error),
        [
            "plugin: invalid plugin configuration: limit.per: expected a duration such as \
             \"250ms\", \"5s\" or \"1m30s\", got \"soon\"",
            "plugin: invalid plugin configuration: limit.requests: must be at least 1, got 0"
        ]
    );
}

#[test]
fn configure_with_a_limit_missing_its_window_is_rejected_naming_the_field() {
    let host = host();
    let vm = host
        .start_vm_with_root(pwf::root_context::<RateLimitPlugin>)
        .unwrap();
    let config = r#"{"limit": {"requests": 10, "every": "1m"}}"#;
    assert_eq!(vm.configure(config).unwrap_err(), ConfigureError::Rejected);
    let logs = host.logs(LogLevel::Error).join("\n");
    assert!(logs.contains("limit: missing field `per`"), "{logs}");
    assert!(logs.contains("unknown field `every`"), "{logs}");
}

#[test]
fn configure_logs_the_limit_and_the_memory_bound() {
    let host = host();
    worker(
        &host,
        r#"{"limit": {"requests": 100, "per": "1m"}, "slots": 1024}"#,
    );
    assert_eq!(
        host.logs(LogLevel::Info),
        ["rate_limit: 100 per 60s per key, 1024 slots, at most 532480 bytes of shared data"]
    );
}
