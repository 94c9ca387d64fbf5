//! `cargo xtask demo`: every example in Envoy, with the requests a user would type, the
//! responses, and the plugin's log lines.
//!
//! What to show for an example is an entry of [`DEMOS`]; an example without one gets a
//! single `GET /anything`.

use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use envoy_harness::{examples, load, template, Envoy, Example, Request, Upstream, WASM_TARGET};

use crate::setup;
use crate::steps::{cargo, flush};

/// What the demo shows for one example.
pub(crate) struct Demo {
    /// The example's package name.
    pub(crate) example: &'static str,
    /// The plugin configuration to run with; `None` keeps the one in the example's
    /// `envoy.yaml`.
    pub(crate) config: Option<&'static str>,
    /// Envoy's worker threads (`--concurrency`).
    pub(crate) workers: u32,
    /// What to do, in order.
    pub(crate) steps: &'static [Step],
}

/// One thing the demo does with a running example.
pub(crate) enum Step {
    /// Print a line explaining what comes next.
    Say(&'static str),
    /// Send one request; show it as a `curl` command, then the response and the plugin's
    /// new log lines.
    Curl {
        /// The method.
        method: &'static str,
        /// Path and query.
        path: &'static str,
        /// Request headers.
        headers: &'static [(&'static str, &'static str)],
        /// The body (empty for none).
        body: &'static str,
    },
    /// Send `total` requests over `connections` keep-alive connections; show a summary and
    /// the plugin's last log lines.
    Load {
        /// Path and query.
        path: &'static str,
        /// How many requests.
        total: usize,
        /// Over how many parallel connections.
        connections: usize,
    },
    /// Show the admin `/stats` lines that start with `prefix`, as
    /// `curl -s localhost:18001/stats | grep prefix` would.
    Stats {
        /// The start of the stat names to show.
        prefix: &'static str,
    },
    /// Start a second Envoy with this plugin configuration, which it must refuse; show the
    /// plugin's error lines.
    Refuse {
        /// The bad configuration.
        config: &'static str,
    },
}

/// `GET path`.
const fn get(path: &'static str) -> Step {
    Step::Curl {
        method: "GET",
        path,
        headers: &[],
        body: "",
    }
}

/// The demos: add an entry to show an example in more than one plain request.
pub(crate) const DEMOS: &[Demo] = &[
    Demo {
        example: "add_header",
        config: None,
        workers: 1,
        steps: &[
            Step::Say("every response gets the configured header, here `x-pwf: hello`:"),
            get("/anything"),
            Step::Say("an empty header name is not a valid configuration; Envoy refuses to start:"),
            Step::Refuse {
                config: r#"{"name": "", "value": "hello"}"#,
            },
        ],
    },
    Demo {
        example: "shared_data",
        config: None,
        workers: 2,
        steps: &[
            Step::Say("each request increments one counter shared by both workers:"),
            get("/anything"),
            Step::Say("2000 more requests over 16 connections lose no update:"),
            Step::Load {
                path: "/status/200",
                total: 2000,
                connections: 16,
            },
            get("/anything"),
        ],
    },
    Demo {
        example: "multiple_dispatches",
        config: None,
        workers: 1,
        steps: &[
            Step::Say(
                "each response waits for 10 calls to the httpbin cluster, then says how many answered:",
            ),
            get("/anything"),
        ],
    },
    Demo {
        example: "http_auth_random",
        config: None,
        workers: 1,
        steps: &[
            Step::Say(
                "the auth call carries the request's headers, path included; an answer whose \
                 FNV-1a hash is even lets the request through:",
            ),
            get("/body?b=%7B%22uuid%22%3A%20%227b10a67a-1c67-4199-835b-cbefcd4a63d4%22%7D"),
            Step::Say("an odd one is forbidden:"),
            get("/body?b=%7B%22uuid%22%3A%20%227b10a67a-1c67-4199-835b-cbefcd4a63d5%22%7D"),
            Step::Say("a failing auth service is no answer: its 500 fails the request closed:"),
            get("/status/500"),
        ],
    },
    Demo {
        example: "audit",
        config: None,
        workers: 1,
        steps: &[
            Step::Say("each request is counted and handed to the plugin on a shared queue:"),
            get("/anything/first"),
            Step::Curl {
                method: "POST",
                path: "/anything/second",
                headers: &[("content-type", "text/plain")],
                body: "a small body",
            },
            Step::Say("the plugin received both in on_queue_ready, and lists them:"),
            get("/audit/recent"),
            Step::Say("a body over maxBodyBytes (1024) is refused before it goes upstream:"),
            Step::Curl {
                method: "POST",
                path: "/anything/large",
                headers: &[("content-type", "text/plain")],
                body: LARGE_BODY,
            },
            Step::Say("the plugin's metrics, in Envoy's stats:"),
            Step::Stats {
                prefix: "wasmcustom.audit",
            },
        ],
    },
    Demo {
        example: "coalesce",
        config: None,
        workers: 1,
        steps: &[
            Step::Say(
                "a request naming a key waits for a lookup (200 ms upstream), shared with every \
                 request for that key that arrives meanwhile:",
            ),
            Step::Curl {
                method: "GET",
                path: "/anything",
                headers: &[("x-key", "k1")],
                body: "",
            },
            Step::Say(
                "calls in flight and live tasks from pwf::runtime, summed over the VMs at each \
                 tick (every 1 s; right after start, still 0):",
            ),
            Step::Stats {
                prefix: "wasmcustom.coalesce",
            },
        ],
    },
    Demo {
        example: "tcp_metrics",
        config: None,
        workers: 1,
        steps: &[
            Step::Say(
                "a TCP proxy listener; the network filter counts connections and bytes each way \
                 (HTTP is just TCP traffic here):",
            ),
            get("/anything"),
            Step::Stats {
                prefix: "wasmcustom.tcp_metrics",
            },
        ],
    },
    Demo {
        example: "rate_limit",
        config: None,
        workers: 2,
        steps: &[
            Step::Say(
                "5 requests per minute per API key (envoy.yaml); allowed responses say what is left:",
            ),
            Step::Curl {
                method: "GET",
                path: "/anything",
                headers: &[("x-api-key", "k1")],
                body: "",
            },
            Step::Say("without the header, the key is the client IP: 10 requests, 5 allowed:"),
            Step::Load {
                path: "/anything",
                total: 10,
                connections: 2,
            },
            Step::Say("the next request of the client IP is answered 429, with when to retry:"),
            get("/anything"),
            Step::Say("an exempt path is never limited:"),
            get("/healthz"),
            Step::Say("the decisions, in Envoy's stats:"),
            Step::Stats {
                prefix: "wasmcustom.rate_limit",
            },
            Step::Say("a limit of 0 requests is not a valid configuration; Envoy refuses to start:"),
            Step::Refuse {
                config: r#"{"limit": {"requests": 0, "per": "1m"}}"#,
            },
        ],
    },
];

/// 2000 bytes: over the audit example's 1024-byte body limit.
const LARGE_BODY: &str = r"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

/// Shown for an example without an entry in [`DEMOS`].
const DEFAULT_STEPS: &[Step] = &[get("/anything")];

/// Ports the shipped configs use, so the printed `curl` lines match the READMEs.
const LISTENER_PORT: u16 = 18000;
const ADMIN_PORT: u16 = 18001;
const UPSTREAM_PORT: u16 = 18080;

pub(crate) fn run(names: &[String]) -> Result<(), String> {
    let all = examples().map_err(|e| e.to_string())?;
    for name in names {
        if !all
            .iter()
            .any(|e| &e.package == name || e.dir.ends_with(name))
        {
            let known: Vec<_> = all.iter().map(|e| e.package.as_str()).collect();
            return Err(format!(
                "no example `{name}` (examples: {})",
                known.join(", ")
            ));
        }
    }
    let chosen: Vec<&Example> = all
        .iter()
        .filter(|e| names.is_empty() || names.iter().any(|n| &e.package == n || e.dir.ends_with(n)))
        .collect();
    let (runnable, skipped): (Vec<&Example>, Vec<&Example>) =
        chosen.into_iter().partition(|e| e.envoy_config().is_file());
    if runnable.is_empty() {
        return Err("no example with an envoy.yaml to run".to_owned());
    }

    heading("setup");
    setup::wasm_target()?;
    setup::envoy()?;
    let mut args = vec!["build", "--target", WASM_TARGET, "--release"];
    for example in &runnable {
        args.extend(["-p", example.package.as_str()]);
    }
    cargo(&args)?;

    let upstream = Upstream::bind((Ipv4Addr::LOCALHOST, UPSTREAM_PORT))
        .or_else(|_| Upstream::start())
        .map_err(|e| format!("cannot start the upstream: {e}"))?;
    println!(
        "upstream (httpbin stand-in): 127.0.0.1:{} (`cargo run -p envoy-upstream`)",
        upstream.port()
    );

    for example in &runnable {
        show(example, &upstream)?;
    }
    for example in skipped {
        println!("\nskipped {}: it has no envoy.yaml", example.package);
    }
    Ok(())
}

fn heading(title: &str) {
    println!("\n━━━ {title} ━━━");
}

fn port_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// A log line as `[level] wasm log ...`, without Envoy's timestamp and source location.
fn short(line: &str) -> String {
    let level = line
        .split('[')
        .nth(3)
        .and_then(|s| s.split(']').next())
        .unwrap_or("");
    let message = line.find("wasm log").map_or(line, |at| &line[at..]);
    format!("    [{level}] {message}")
}

/// Prints the wasm log lines after the first `seen`, waiting briefly for late ones.
fn print_new_wasm_lines(envoy: &Envoy, seen: &mut usize) {
    let mut lines = envoy.wasm_log();
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(30));
        let again = envoy.wasm_log();
        if again.len() == lines.len() && lines.len() > *seen {
            break;
        }
        lines = again;
    }
    if lines.len() > *seen {
        println!("  plugin log:");
        for line in &lines[*seen..] {
            println!("{}", short(line));
        }
    }
    *seen = lines.len();
}

fn show(example: &Example, upstream: &Upstream) -> Result<(), String> {
    let demo = DEMOS.iter().find(|d| d.example == example.package);
    heading(&example.package);
    if let Some(description) = &example.description {
        println!("{description}");
    }
    let config_path = example.envoy_config();
    let shown_config = config_path
        .strip_prefix(envoy_harness::repo_root())
        .unwrap_or(&config_path)
        .display()
        .to_string();
    let template = std::fs::read_to_string(&config_path)
        .map_err(|e| format!("reading {shown_config}: {e}"))?;
    let workers = demo.map_or(1, |d| d.workers);
    let mut setup = Envoy::example(&example.package)
        .upstream(upstream)
        .concurrency(workers)
        .quiet();
    match demo.and_then(|d| d.config) {
        Some(config) => {
            println!("plugin configuration: {config}");
            setup = setup.plugin_config(config);
        }
        None => {
            if let Some(config) = template::default_value(&template, "plugin_config") {
                println!(
                    "plugin configuration ({shown_config}): {}",
                    template::unquote(&config)
                );
            }
        }
    }
    let markers = template::markers(&template);
    if port_free(LISTENER_PORT) && port_free(ADMIN_PORT) {
        if markers.iter().any(|m| m == "listener_port") {
            setup = setup.set("listener_port", LISTENER_PORT.to_string());
        }
        if markers.iter().any(|m| m == "admin_port") {
            setup = setup.set("admin_port", ADMIN_PORT.to_string());
        }
    }
    let envoy = setup.start().map_err(|e| e.to_string())?;
    println!(
        "$ .venv/bin/envoy -c {shown_config} --concurrency {workers}    # listening on localhost:{}",
        envoy.port()
    );
    let mut seen = 0;
    print_new_wasm_lines(&envoy, &mut seen);

    let steps = demo.map_or(DEFAULT_STEPS, |d| d.steps);
    for step in steps {
        match step {
            Step::Say(text) => println!("\n# {text}"),
            Step::Curl {
                method,
                path,
                headers,
                body,
            } => {
                let mut req = Request::new(method, path).body(body.as_bytes());
                for (name, value) in *headers {
                    req = req.header(name, value);
                }
                println!("\n$ {}", req.curl(envoy.port()));
                flush();
                match envoy.send(&req) {
                    Ok(resp) => print!("{resp}"),
                    Err(e) => println!("(no response: {e})"),
                }
                print_new_wasm_lines(&envoy, &mut seen);
            }
            Step::Load {
                path,
                total,
                connections,
            } => {
                println!(
                    "\n$ # {total} x GET {path} over {connections} connections (like `hey -n {total} -c {connections}`)"
                );
                flush();
                let result = load(envoy.port(), &Request::get(path), *total, *connections);
                println!("{}", result.summary(*connections));
                let lines = envoy.wasm_log();
                if lines.len() > seen {
                    let new = &lines[seen..];
                    let skip = new.len().saturating_sub(3);
                    println!(
                        "  plugin log ({} new lines, the last {}):",
                        new.len(),
                        new.len() - skip
                    );
                    for line in &new[skip..] {
                        println!("{}", short(line));
                    }
                }
                seen = lines.len();
            }
            Step::Stats { prefix } => {
                println!(
                    "\n$ curl -s localhost:{}/stats | grep {prefix}",
                    envoy.admin().port()
                );
                match envoy.admin_get("/stats") {
                    Ok(stats) => {
                        for line in stats.text().lines().filter(|l| l.starts_with(prefix)) {
                            println!("{line}");
                        }
                    }
                    Err(e) => println!("(no stats: {e})"),
                }
            }
            Step::Refuse { config } => {
                println!("\nplugin configuration: {config}");
                flush();
                let refusal = Envoy::example(&example.package)
                    .upstream(upstream)
                    .plugin_config(config)
                    .start_expect_failure()
                    .map_err(|e| e.to_string())?;
                println!("envoy exited at startup ({})", refusal.status);
                println!("  plugin log:");
                for line in refusal.wasm_log() {
                    println!("{}", short(line));
                }
            }
        }
    }
    envoy.stop().map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_demo_names_an_example() {
        let examples = examples().unwrap();
        for demo in DEMOS {
            assert!(
                examples.iter().any(|e| e.package == demo.example),
                "DEMOS has `{}`, which is not a package under examples/",
                demo.example
            );
        }
    }

    #[test]
    fn short_keeps_level_and_message() {
        let line = "[2026-11-22 03:19:20.724][8287][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log probe: configured";
        assert_eq!(short(line), "    [info] wasm log probe: configured");
    }
}
