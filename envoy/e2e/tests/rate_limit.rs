//! `examples/rate_limit` in Envoy at `--concurrency 2`: exact per window, and
//! bounded memory where one `SharedCounter` per key grows.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use envoy_harness::{Client, Envoy, Request, Result};

/// Milliseconds since the Unix epoch: the clock Envoy hands the plugin.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// Sleeps until `margin` after the start of the next window of `per_ms`.
fn wait_for_window_start(per_ms: u64, margin: u64) {
    let now = now_ms();
    let next = (now / per_ms + 1) * per_ms + margin;
    std::thread::sleep(Duration::from_millis(next - now));
}

/// What the client saw of one response.
struct Seen {
    key: usize,
    status: u16,
    /// The end of the window the plugin counted it in, in ms since the epoch,
    /// up to a second after it (`x-ratelimit-reset` is in whole seconds).
    window_end_estimate: u64,
}

/// Sends `requests(i)` for `i` in `0..total` over `connections` keep-alive
/// connections, and maps each response with `seen`.
fn send_all<T: Send>(
    envoy: &Envoy,
    total: usize,
    connections: usize,
    request: impl Fn(usize) -> Request + Sync,
    seen: impl Fn(usize, &envoy_harness::Response) -> T + Sync,
) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let all = Mutex::new(Vec::with_capacity(total));
    std::thread::scope(|scope| {
        for _ in 0..connections {
            scope.spawn(|| {
                let mut client: Client = envoy.client();
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= total {
                        break;
                    }
                    let response = client
                        .send(&request(i))
                        .unwrap_or_else(|error| panic!("request {i}: {error}"));
                    mine.push(seen(i, &response));
                }
                all.lock().unwrap().extend(mine);
            });
        }
    });
    all.into_inner().unwrap()
}

/// Per window (by its end, in windows of `per_ms` since the epoch) and key:
/// how many requests were sent and how many allowed.
type Counts = BTreeMap<u64, BTreeMap<usize, (usize, usize)>>;

/// Sends `bursts` bursts, each from the start of a window of `per_ms`: `keys`
/// API keys x `per_key` requests, interleaved over 16 connections, so both
/// workers count every key. Groups the answers by the window the plugin
/// counted them in (from `x-ratelimit-reset`) and checks that in every
/// window, each key got exactly `min(limit, sent)`: never one more.
fn bursts(
    envoy: &Envoy,
    keys: usize,
    per_key: usize,
    limit: usize,
    per_ms: u64,
    bursts: usize,
) -> Counts {
    let mut seen = Vec::new();
    for _ in 0..bursts {
        wait_for_window_start(per_ms, 100);
        seen.extend(send_all(
            envoy,
            keys * per_key,
            16,
            |i| Request::get("/anything").header("x-api-key", &format!("key-{}", i % keys)),
            |i, response| {
                let reset: u64 = response
                    .header("x-ratelimit-reset")
                    .and_then(|reset| reset.parse().ok())
                    .unwrap_or_else(|| panic!("no x-ratelimit-reset: {response}"));
                Seen {
                    key: i % keys,
                    status: response.status,
                    window_end_estimate: now_ms() + reset * 1000,
                }
            },
        ));
    }
    let mut per_window = Counts::new();
    for response in &seen {
        assert!(
            matches!(response.status, 200 | 429),
            "status {}",
            response.status
        );
        let counts = per_window
            .entry(response.window_end_estimate / per_ms)
            .or_default()
            .entry(response.key)
            .or_default();
        counts.0 += 1;
        counts.1 += usize::from(response.status == 200);
    }
    for (window, keys) in &per_window {
        for (key, (sent, allowed)) in keys {
            assert_eq!(
                *allowed,
                (*sent).min(limit),
                "window {window}, key-{key}: {allowed} allowed of {sent}"
            );
        }
    }
    per_window
}

/// The allowed total of each window in which every one of `keys` keys sent
/// at least `limit` requests.
fn full_windows(per_window: &Counts, keys: usize, limit: usize) -> Vec<usize> {
    per_window
        .values()
        .filter(|counts| counts.len() == keys && counts.values().all(|(sent, _)| *sent >= limit))
        .map(|counts| counts.values().map(|(_, allowed)| allowed).sum())
        .collect()
}

#[test]
fn rate_limit_allows_exactly_50_per_key_per_window_at_concurrency_2() -> Result<()> {
    const KEYS: usize = 20;
    const LIMIT: usize = 50;
    const PER_KEY: usize = 60;
    let envoy = Envoy::example("rate_limit")
        .concurrency(2)
        .plugin_config(r#"{"limit": {"requests": 50, "per": "10s"}}"#)
        .start()?;
    let per_window = bursts(&envoy, KEYS, PER_KEY, LIMIT, 10_000, 2);
    // Each burst fit in its window: 20 x 50 = 1000 allowed in each.
    assert_eq!(
        full_windows(&per_window, KEYS, LIMIT),
        [KEYS * LIMIT, KEYS * LIMIT],
        "windows: {per_window:?}"
    );
    assert_eq!(
        envoy.stat("wasmcustom.rate_limit.allowed")?,
        Some((2 * KEYS * LIMIT) as u64)
    );
    assert_eq!(
        envoy.stat("wasmcustom.rate_limit.limited")?,
        Some((2 * KEYS * (PER_KEY - LIMIT)) as u64)
    );
    Ok(())
}

/// One key written from both workers all the time: the slot's compare-and-swap
/// is what keeps the count (a plain read-then-write loses updates here).
#[test]
fn rate_limit_one_hot_key_from_16_connections_gets_exactly_its_limit() -> Result<()> {
    let envoy = Envoy::example("rate_limit")
        .concurrency(2)
        .plugin_config(r#"{"limit": {"requests": 1500, "per": "10s"}}"#)
        .start()?;
    let per_window = bursts(&envoy, 1, 2000, 1500, 10_000, 1);
    assert_eq!(
        full_windows(&per_window, 1, 1500),
        [1500],
        "windows: {per_window:?}"
    );
    Ok(())
}

#[test]
fn rate_limit_answers_429_with_retry_after_and_x_ratelimit_headers() -> Result<()> {
    let envoy = Envoy::example("rate_limit").concurrency(2).start()?;
    let request = Request::get("/anything").header("x-api-key", "k1");
    // envoy.yaml: 5 per minute.
    for remaining in (0..5).rev() {
        let response = envoy.send(&request)?;
        assert_eq!(response.status, 200, "{response}");
        assert_eq!(
            response.header("x-ratelimit-remaining"),
            Some(remaining.to_string().as_str())
        );
        assert_eq!(response.header("x-ratelimit-limit"), Some("5, 5;w=60"));
    }
    let limited = envoy.send(&request)?;
    assert_eq!(limited.status, 429, "{limited}");
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{limited}");
    assert_eq!(
        limited.header("x-ratelimit-reset"),
        Some(retry_after.to_string().as_str())
    );
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(limited.text(), "rate limit exceeded\n");
    // Exempt, and another key, and no key (the client IP): all allowed.
    assert_eq!(
        envoy
            .send(&Request::get("/healthz").header("x-api-key", "k1"))?
            .status,
        200
    );
    assert_eq!(
        envoy
            .send(&Request::get("/").header("x-api-key", "k2"))?
            .status,
        200
    );
    assert_eq!(envoy.get("/")?.status, 200);
    Ok(())
}

#[test]
fn rate_limit_bad_limit_makes_envoy_refuse_to_start_naming_the_field() -> Result<()> {
    let refusal = Envoy::example("rate_limit")
        .plugin_config(r#"{"limit": {"requests": 0, "per": "1m"}}"#)
        .start_expect_failure()?;
    assert!(!refusal.status.success());
    assert!(
        refusal.logged("limit.requests: must be at least 1, got 0"),
        "{}",
        refusal.log
    );
    Ok(())
}

/// Envoy's `/memory` `allocated`, in bytes.
fn allocated(envoy: &Envoy) -> Result<u64> {
    let memory = envoy.admin_get("/memory")?.json()?;
    let value = &memory["allocated"];
    Ok(value
        .as_str()
        .and_then(|text| text.parse().ok())
        .or_else(|| value.as_u64())
        .unwrap_or_else(|| panic!("no allocated in {memory}")))
}

/// Distinct keys sent in all; the first `WARM_UP` of them fill every slot.
const DISTINCT_KEYS: usize = 200_000;
const WARM_UP: usize = 20_000;
/// The slots of the bounded limiter in the memory test.
const SLOTS: usize = 1024;
/// The limit of the memory test: windows of 2 s, so the load spans several.
const MEMORY_CONFIG: &str = r#"{"limit": {"requests": 100, "per": "2s"}, "slots": 1024}"#;

/// Sends one request for each of `DISTINCT_KEYS` distinct API keys, in steps
/// of `WARM_UP`, and prints `allocated` after each step; returns it after the
/// first step (the warm-up) and at the end.
fn memory_under_distinct_keys(envoy: &Envoy, tag: &str) -> Result<(u64, u64)> {
    let started = Instant::now();
    let before = allocated(envoy)?;
    let mut series = Vec::new();
    for step in 0..DISTINCT_KEYS / WARM_UP {
        let first = step * WARM_UP;
        let statuses = send_all(
            envoy,
            WARM_UP,
            8,
            |i| Request::get("/").header("x-api-key", &format!("{tag}-{}", first + i)),
            |_, response| response.status,
        );
        assert!(statuses.iter().all(|status| *status == 200));
        series.push(allocated(envoy)?);
    }
    let (after_warm_up, at_end) = (series[0], series[series.len() - 1]);
    eprintln!(
        "{tag}: {DISTINCT_KEYS} distinct keys in {:.1} s; allocated before: {:.2} MB, then every \
         {WARM_UP} keys (MB): {}; growth after the warm-up: {} B",
        started.elapsed().as_secs_f64(),
        before as f64 / 1e6,
        series
            .iter()
            .map(|bytes| format!("{:.2}", *bytes as f64 / 1e6))
            .collect::<Vec<_>>()
            .join(" "),
        at_end as i64 - after_warm_up as i64
    );
    Ok((after_warm_up, at_end))
}

#[test]
fn rate_limit_memory_stays_bounded_over_200000_distinct_keys() -> Result<()> {
    let envoy = Envoy::example("rate_limit")
        .concurrency(2)
        .plugin_config(MEMORY_CONFIG)
        .log_level("warning")
        .start()?;
    let (after_warm_up, at_end) = memory_under_distinct_keys(&envoy, "bounded")?;
    // The whole table is at most slots x (400 B per Envoy key + 4 entries of
    // 26 + 4 B) = 532 480 B, whatever the number of keys; after the warm-up
    // every slot exists, so 180 000 more keys may add no more than that.
    let bound = (SLOTS * (400 + 4 * (26 + 4))) as u64;
    assert!(
        at_end <= after_warm_up + bound,
        "allocated grew from {after_warm_up} to {at_end} B, over the table's {bound} B"
    );
    Ok(())
}

#[test]
fn per_key_counters_grow_with_every_distinct_key() -> Result<()> {
    let envoy = Envoy::example("rate_limit")
        .wasm_of("per-key-counter")
        .concurrency(2)
        .plugin_config(MEMORY_CONFIG.replace(r#", "slots": 1024"#, "").as_str())
        .log_level("warning")
        .start()?;
    let (after_warm_up, at_end) = memory_under_distinct_keys(&envoy, "counter")?;
    // Each new key is a new shared-data key, kept until Envoy restarts
    // (about 120 B each for these keys, measured): at least 64 B each, 20 times
    // what the whole bounded table may take.
    let keys = (DISTINCT_KEYS - WARM_UP) as u64;
    assert!(
        at_end >= after_warm_up + keys * 64,
        "allocated grew from {after_warm_up} to {at_end} B for {keys} new keys"
    );
    Ok(())
}
