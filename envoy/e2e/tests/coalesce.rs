//! `examples/coalesce` in Envoy: concurrent requests for one key share one
//! call; a client that goes away mid-call does not take the others' answer
//! with it; and under load with clients aborting at random, nothing is left
//! pending and memory stays flat.

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use envoy_harness::{Client, Envoy, Request, Result};

/// A lookup takes 300 ms at the upstream: long enough for requests to meet.
const CONFIG: &str = r#"{"lookupPath": "/delay/0.3?key=", "refresh": "1s"}"#;

fn lookup(key: &str) -> Request {
    Request::get("/anything").header("x-key", key)
}

/// The upstream's lookups of `key` so far.
fn lookups(envoy: &Envoy, key: &str) -> usize {
    let target = format!("/delay/0.3?key={key}");
    envoy
        .upstream()
        .expect("the harness starts an upstream")
        .requests()
        .iter()
        .filter(|seen| seen.target == target)
        .count()
}

/// A value of Envoy's `/stats` (`name: value`).
fn stat(envoy: &Envoy, name: &str) -> Result<Option<i64>> {
    let stats = envoy.admin_get("/stats")?.text();
    Ok(stats.lines().find_map(|line| {
        let (key, value) = line.split_once(": ")?;
        (key == name).then(|| value.trim().parse().ok()).flatten()
    }))
}

/// Envoy's `/memory` `allocated`, in bytes.
fn allocated(envoy: &Envoy) -> Result<u64> {
    let memory = envoy.admin_get("/memory")?.json()?;
    Ok(memory["allocated"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .expect("`allocated` in /memory"))
}

/// Sends a lookup request for `key` and goes away after `after`, unanswered.
fn abort_after(port: u16, key: &str, after: Duration) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let request = format!("GET /anything HTTP/1.1\r\nhost: app\r\nx-key: {key}\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    std::thread::sleep(after);
    drop(stream);
}

#[test]
fn concurrent_requests_for_one_key_share_one_call() -> Result<()> {
    let envoy = Envoy::example("coalesce").plugin_config(CONFIG).start()?;
    let port = envoy.port();
    let answers: Vec<_> = std::thread::scope(|s| {
        let clients: Vec<_> = (0..12)
            .map(|_| s.spawn(move || Client::new(port).send(&lookup("shared"))))
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    for answer in answers {
        let answer = answer?;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("x-lookup-status"), Some("200"));
    }
    assert_eq!(
        lookups(&envoy, "shared"),
        1,
        "12 requests, one worker, one call"
    );
    Ok(())
}

#[test]
fn the_others_get_the_answer_when_the_client_whose_call_is_in_flight_goes_away() -> Result<()> {
    let envoy = Envoy::example("coalesce").plugin_config(CONFIG).start()?;
    let port = envoy.port();
    std::thread::scope(|s| {
        // The first request sends the call, and its client leaves mid-call.
        let leaving = s.spawn(move || abort_after(port, "left", Duration::from_millis(100)));
        std::thread::sleep(Duration::from_millis(50));
        let staying: Vec<_> = (0..4)
            .map(|_| s.spawn(move || Client::new(port).send(&lookup("left"))))
            .collect();
        leaving.join().unwrap();
        for client in staying {
            let answer = client.join().unwrap()?;
            assert_eq!(answer.status, 200);
            assert_eq!(answer.header("x-lookup-status"), Some("200"));
        }
        Ok::<_, envoy_harness::Error>(())
    })?;
    assert_eq!(lookups(&envoy, "left"), 1);
    Ok(())
}

#[test]
fn a_minute_of_load_with_clients_leaving_at_random_leaves_nothing_pending() -> Result<()> {
    const WORKERS: u32 = 2;
    const CLIENTS: usize = 12;
    let envoy = Envoy::example("coalesce")
        .plugin_config(CONFIG)
        .concurrency(WORKERS)
        .start()?;
    let port = envoy.port();

    let run = |length: Duration| {
        let (answered, left) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let failures = std::sync::Mutex::new(Vec::new());
        let end = Instant::now() + length;
        std::thread::scope(|s| {
            for client in 0..CLIENTS {
                let (answered, left, failures) = (&answered, &left, &failures);
                s.spawn(move || {
                    let mut client_http = Client::new(port).timeout(Duration::from_secs(10));
                    let mut n = client;
                    while Instant::now() < end {
                        n = n.wrapping_mul(7).wrapping_add(13) % 1009;
                        let key = format!("k{}", n % 8);
                        if n % 4 == 0 {
                            // A client that goes away before the answer.
                            abort_after(port, &key, Duration::from_millis((n % 300) as u64));
                            left.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        match client_http.send(&lookup(&key)) {
                            Ok(r)
                                if r.status == 200
                                    && r.header("x-lookup-status") == Some("200") =>
                            {
                                answered.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(r) => failures.lock().unwrap().push(format!(
                                "{} {:?}",
                                r.status,
                                r.text()
                            )),
                            Err(e) => failures.lock().unwrap().push(e.to_string()),
                        }
                    }
                });
            }
        });
        let failures = failures.into_inner().unwrap();
        (answered.into_inner(), left.into_inner(), failures)
    };

    // Idle, the plugin's own tasks: the refresh task of each VM that Envoy
    // configured the plugin in.
    std::thread::sleep(Duration::from_millis(2500));
    let idle_tasks = stat(&envoy, "wasmcustom.coalesce.live_tasks")?;
    assert!(idle_tasks >= Some(i64::from(WORKERS)), "{idle_tasks:?}");

    // Warm-up, then the measured minute.
    let (warm, _, failures) = run(Duration::from_secs(5));
    assert!(failures.is_empty(), "{failures:?}");
    assert!(warm > 0);
    let before = allocated(&envoy)?;
    let (answered, left, failures) = run(Duration::from_secs(60));
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );

    // Every lookup lands within 300 ms; two ticks later the gauges are current.
    std::thread::sleep(Duration::from_millis(2500));
    let after = allocated(&envoy)?;
    let pending = stat(&envoy, "wasmcustom.coalesce.pending_calls")?;
    let tasks = stat(&envoy, "wasmcustom.coalesce.live_tasks")?;
    println!(
        "{answered} answered, {left} left early; allocated {before} -> {after} bytes; \
         pending_calls {pending:?}, live_tasks {tasks:?} (idle: {idle_tasks:?})"
    );
    assert!(answered > 1000, "{answered} answered in a minute");
    assert_eq!(pending, Some(0), "no call left in flight");
    assert_eq!(
        tasks, idle_tasks,
        "only the plugin's own tasks, as when idle"
    );
    // Flat: what a minute of this load may add is well under what a leak of
    // one task, call or map entry per request (tens of thousands) would.
    assert!(
        after < before + 1024 * 1024,
        "allocated grew from {before} to {after} bytes"
    );
    Ok(())
}
