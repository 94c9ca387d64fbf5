//! Envoy and `wrk`: one Envoy with a listener per (example, flavor), load
//! from `wrk`, runs interleaved so that drift on the machine cancels out.

use std::fmt::Write as _;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{http, Result};

/// The Envoy binary: `ENVOY_BIN` if set, else the project's Envoy 1.40 in
/// `.venv`, installed there on first use (`envoy_harness::envoy_binary`).
pub(crate) fn envoy_bin() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("ENVOY_BIN") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(format!("ENVOY_BIN={} does not exist", path.display()).into());
    }
    Ok(envoy_harness::envoy_binary()?)
}

/// Distinct free ports, taken while all of them are bound at once, so the
/// kernel cannot hand the same one out twice.
#[derive(Default)]
pub(crate) struct PortPool {
    held: Vec<TcpListener>,
}

impl PortPool {
    /// A free port, distinct from every other this pool has given.
    pub(crate) fn take(&mut self) -> Result<u16> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        self.held.push(listener);
        Ok(port)
    }
}

/// The CPUs this process may run on (`Cpus_allowed_list` in
/// `/proc/self/status`, e.g. `0-3,6`).
pub(crate) fn allowed_cpus() -> Result<Vec<usize>> {
    let status = fs::read_to_string("/proc/self/status")?;
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .ok_or("no Cpus_allowed_list in /proc/self/status")?;
    parse_cpu_list(list.trim()).ok_or_else(|| format!("cannot read CPU list `{list}`").into())
}

fn parse_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((first, last)) => cpus.extend(first.parse::<usize>().ok()?..=last.parse().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

fn cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Restricts every thread of this process to `cpus` (`taskset -a -p`);
/// threads it starts later inherit the restriction, and so do the
/// processes it spawns (`wrk`).
pub(crate) fn pin_self(cpus: &[usize]) -> Result<()> {
    let output = Command::new("taskset")
        .args(["-a", "-p", "-c"])
        .arg(cpu_list(cpus))
        .arg(std::process::id().to_string())
        .output()
        .map_err(|error| format!("running taskset: {error} (or run with --no-pin)"))?;
    if !output.status.success() {
        return Err(format!(
            "taskset failed: {} (or run with --no-pin)",
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }
    Ok(())
}

/// Where a listener sends requests that pass its filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// A direct 200 response from Envoy.
    Direct,
    /// The `httpbin` cluster (the local upstream).
    Upstream,
}

/// A wasm filter on a listener.
#[derive(Clone, Debug)]
pub(crate) struct Filter {
    /// The plugin name (and root id).
    pub(crate) name: String,
    /// The VM id: one VM per id, and one shared-data store.
    pub(crate) vm_id: String,
    pub(crate) wasm: PathBuf,
    /// The plugin configuration (JSON).
    pub(crate) configuration: String,
}

/// One listener of the bench Envoy.
#[derive(Clone, Debug)]
pub(crate) struct Listener {
    pub(crate) name: String,
    pub(crate) port: u16,
    pub(crate) route: Route,
    pub(crate) filter: Option<Filter>,
}

fn yaml_string(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The Envoy configuration for `listeners`, with cluster `httpbin` on the
/// upstream's port.
pub(crate) fn config(listeners: &[Listener], upstream_port: u16, admin_port: u16) -> String {
    let mut yaml = String::from("static_resources:\n  listeners:\n");
    for listener in listeners {
        let route = match listener.route {
            Route::Direct => "direct_response: { status: 200, body: { inline_string: \"ok\" } }",
            Route::Upstream => "route: { cluster: httpbin }",
        };
        let _ = write!(
            yaml,
            "  - name: {name}
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {name}
          route_config:
            name: {name}
            virtual_hosts:
            - name: all
              domains: [\"*\"]
              routes:
              - match: {{ prefix: \"/\" }}
                {route}
          http_filters:
",
            name = listener.name,
            port = listener.port,
        );
        if let Some(filter) = &listener.filter {
            let _ = write!(
                yaml,
                "          - name: envoy.filters.http.wasm
            typed_config:
              \"@type\": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: {name}
                root_id: {name}
                vm_config:
                  vm_id: {vm_id}
                  runtime: envoy.wasm.runtime.v8
                  code: {{ local: {{ filename: {wasm} }} }}
                configuration:
                  \"@type\": type.googleapis.com/google.protobuf.StringValue
                  value: {configuration}
",
                name = filter.name,
                vm_id = filter.vm_id,
                wasm = yaml_string(&filter.wasm.display().to_string()),
                configuration = yaml_string(&filter.configuration),
            );
        }
        yaml.push_str(
            "          - name: envoy.filters.http.router
            typed_config:
              \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
",
        );
    }
    let _ = write!(
        yaml,
        "  clusters:
  - name: httpbin
    connect_timeout: 5s
    type: STATIC
    load_assignment:
      cluster_name: httpbin
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {upstream_port} }} }} }}
admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: {admin_port} }} }}
"
    );
    yaml
}

/// A running Envoy; killed on drop.
pub(crate) struct Envoy {
    child: Child,
    pub(crate) log: PathBuf,
}

impl Envoy {
    /// Starts Envoy with `config` (1 worker, log level warning), on `cpus`
    /// only when given (`taskset`), and waits until every listener accepts
    /// connections.
    pub(crate) fn start(
        bin: &Path,
        dir: &Path,
        config: &str,
        listeners: &[Listener],
        cpus: Option<&[usize]>,
    ) -> Result<Envoy> {
        fs::create_dir_all(dir)?;
        let config_path = dir.join("envoy.yaml");
        fs::write(&config_path, config)?;
        let log = dir.join("envoy.log");
        let mut command = match cpus {
            Some(cpus) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpu_list(cpus)).arg(bin);
                command
            }
            None => Command::new(bin),
        };
        let child = command
            .arg("-c")
            .arg(&config_path)
            .args([
                "--concurrency",
                "1",
                "-l",
                "warning",
                "--disable-hot-restart",
            ])
            .arg("--log-path")
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("starting {}: {error}", bin.display()))?;
        let mut envoy = Envoy { child, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        for listener in listeners {
            loop {
                if let Some(status) = envoy.child.try_wait()? {
                    let log = fs::read_to_string(&envoy.log).unwrap_or_default();
                    return Err(format!("Envoy exited ({status}) at start-up:\n{log}").into());
                }
                if http::get(listener.port, "/").is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "Envoy's listener {} did not come up within 60 s (log: {})",
                        listener.name,
                        envoy.log.display()
                    )
                    .into());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(envoy)
    }

    /// What the scheduler has counted for Envoy's threads so far, summed
    /// over `/proc/<pid>/task/<tid>/schedstat`.
    pub(crate) fn sched(&self) -> Result<Sched> {
        let mut total = Sched::default();
        for task in fs::read_dir(format!("/proc/{}/task", self.child.id()))? {
            let Ok(text) = fs::read_to_string(task?.path().join("schedstat")) else {
                // The thread ended between the listing and the read.
                continue;
            };
            let mut fields = text.split_whitespace().map(|n| n.parse::<u64>().ok());
            let (Some(Some(cpu)), Some(Some(wait))) = (fields.next(), fields.next()) else {
                return Err(format!("cannot read schedstat `{}`", text.trim()).into());
            };
            total.cpu_ns += cpu;
            total.wait_ns += wait;
        }
        Ok(total)
    }
}

/// Scheduler time of a process, in nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sched {
    /// Time on a CPU.
    pub(crate) cpu_ns: u64,
    /// Time ready to run but waiting for a CPU, taken by other threads.
    pub(crate) wait_ns: u64,
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `wrk` run's numbers.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Load {
    pub(crate) requests_per_second: f64,
    /// Median latency, in microseconds.
    pub(crate) p50_us: f64,
    /// 99th-percentile latency, in microseconds.
    pub(crate) p99_us: f64,
    /// Responses that were not 2xx or 3xx, and socket errors.
    pub(crate) errors: u64,
    /// Responses received.
    pub(crate) requests: u64,
    /// Envoy's CPU time per response, in microseconds (set by the caller,
    /// who can see Envoy).
    pub(crate) cpu_us: f64,
    /// The share of the run Envoy spent ready to run but waiting for a
    /// CPU (set by the caller).
    pub(crate) waited: f64,
}

/// Runs `wrk` against `port` and `path` for `duration`.
pub(crate) fn wrk(port: u16, path: &str, connections: usize, duration: Duration) -> Result<Load> {
    let output = Command::new("wrk")
        .args(["-t1", "--latency"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!("wrk failed: {text}").into());
    }
    parse_wrk(&text).ok_or_else(|| format!("cannot read wrk's output:\n{text}").into())
}

fn parse_latency(value: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = value.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1e6)
    } else {
        return None;
    };
    Some(number.parse::<f64>().ok()? * scale)
}

pub(crate) fn parse_wrk(text: &str) -> Option<Load> {
    let mut load = Load::default();
    let mut seen_rps = false;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", value] => load.p50_us = parse_latency(value)?,
            ["99%", value] => load.p99_us = parse_latency(value)?,
            ["Requests/sec:", value] => {
                load.requests_per_second = value.parse().ok()?;
                seen_rps = true;
            }
            [count, "requests", "in", ..] => load.requests = count.parse().ok()?,
            ["Non-2xx", "or", "3xx", "responses:", count] => {
                load.errors += count.parse::<u64>().ok()?
            }
            ["Socket", "errors:", rest @ ..] => {
                for word in rest {
                    if let Ok(n) = word.trim_end_matches(',').parse::<u64>() {
                        load.errors += n;
                    }
                }
            }
            _ => {}
        }
    }
    seen_rps.then_some(load)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_wrk_reads_rate_percentiles_and_errors() {
        let text = "Running 3s test @ http://127.0.0.1:1/
  1 threads and 16 connections
  Latency Distribution
     50%  256.00us
     75%  300.00us
     90%  400.00us
     99%    1.50ms
  123 requests in 3.00s, 1.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  41234.56
Transfer/sec:      5.00MB
";
        let load = parse_wrk(text).unwrap();
        assert_eq!(load.requests_per_second, 41234.56);
        assert_eq!(load.p50_us, 256.0);
        assert_eq!(load.p99_us, 1500.0);
        assert_eq!(load.errors, 7);
        assert_eq!(load.requests, 123);
    }

    #[test]
    fn parse_cpu_list_reads_ranges_and_single_cpus() {
        assert_eq!(parse_cpu_list("0-1"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0-2,5,7-8"), Some(vec![0, 1, 2, 5, 7, 8]));
        assert_eq!(parse_cpu_list("3"), Some(vec![3]));
        assert_eq!(parse_cpu_list("x"), None);
    }
}
