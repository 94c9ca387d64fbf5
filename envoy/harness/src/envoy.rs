//! Starting, watching and stopping Envoy.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use envoy_ratelimit::RateLimitServer;
use envoy_upstream::Upstream;

use crate::client::{Client, Request, Response};
use crate::install::envoy_binary;
use crate::paths::{self, built_wasm_artifact, Example};
use crate::template::{self, yaml_quote};
use crate::{Error, Result};

/// How many log lines error messages and drop output show.
const TAIL_LINES: usize = 40;

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(n);
    let mut out = String::new();
    if skip > 0 {
        out.push_str(&format!("[... {skip} earlier lines]\n"));
    }
    for line in &lines[skip..] {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The `wasm log` lines of an Envoy log (what plugins wrote), in order.
pub fn wasm_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("wasm log")).collect()
}

/// Everything needed to start Envoy: a config template and the values to fill into it.
///
/// Made by [`Envoy::example`], [`Envoy::template`] or [`Envoy::yaml`]; errors found while
/// building (a missing example, a missing wasm) are reported by the final call
/// ([`start`](Setup::start), [`start_expect_failure`](Setup::start_expect_failure),
/// [`validate`](Setup::validate), [`render`](Setup::render)).
#[derive(Debug)]
#[must_use = "a Setup does nothing until started"]
pub struct Setup {
    name: String,
    template: Result<String>,
    values: BTreeMap<String, String>,
    upstream_port: Option<u16>,
    concurrency: u32,
    log_level: String,
    args: Vec<String>,
    startup_timeout: Duration,
    quiet: bool,
}

/// Envoy refusing to start, as [`Setup::start_expect_failure`] observed it.
#[derive(Debug)]
pub struct Refusal {
    /// How the process ended.
    pub status: ExitStatus,
    /// Everything it wrote (stdout and stderr).
    pub log: String,
}

impl Refusal {
    /// The `wasm log` lines (what the plugin wrote before Envoy gave up).
    pub fn wasm_log(&self) -> Vec<&str> {
        wasm_lines(&self.log)
    }

    /// Whether a `wasm log` line contains `text`: what a refused plugin
    /// configuration is checked for.
    pub fn logged(&self, text: &str) -> bool {
        self.wasm_log().iter().any(|line| line.contains(text))
    }
}

/// The outcome of `envoy --mode validate`.
#[derive(Debug)]
pub struct Validation {
    /// Whether Envoy accepted the config.
    pub ok: bool,
    /// Everything Envoy wrote.
    pub output: String,
}

/// A running Envoy. Dropping it kills the process and prints the tail of its log to stderr
/// (which the test harness shows only for failing tests), unless made [`quiet`](Setup::quiet)
/// and not asked for with `PWF_ENVOY_LOG=1`.
#[derive(Debug)]
pub struct Envoy {
    child: Option<Child>,
    run_dir: PathBuf,
    log_path: PathBuf,
    admin: SocketAddr,
    listeners: Vec<(String, u16)>,
    upstream: Option<Upstream>,
    ratelimit: Option<RateLimitServer>,
    quiet: bool,
}

impl Envoy {
    /// Example `name` (package or directory under `examples/`): its `envoy.yaml`, and its
    /// release wasm as `# pwf:wasm`.
    pub fn example(name: &str) -> Setup {
        match paths::example(name) {
            Ok(example) => Envoy::for_example(&example),
            Err(e) => Setup::new(name, Err(e)),
        }
    }

    fn for_example(example: &Example) -> Setup {
        let config = example.envoy_config();
        let mut setup = Setup::new(&example.package, read(&config));
        match built_wasm_artifact(&example.package) {
            Ok(wasm) => setup = setup.wasm(&wasm),
            Err(e) => setup.template = Err(e),
        }
        setup
    }

    /// The template at `path` (absolute, or relative to [`work_dir`](crate::work_dir): the
    /// repository root in pwf's repository, e.g. `envoy/passthrough.yaml`; elsewhere the
    /// crate under test, e.g. `envoy.yaml`).
    pub fn template(path: impl AsRef<Path>) -> Setup {
        let path = paths::work_dir().join(path.as_ref());
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "envoy".to_owned());
        Setup::new(&name, read(&path))
    }

    /// A config given as YAML text (markers work as in files).
    pub fn yaml(text: &str) -> Setup {
        Setup::new("inline", Ok(text.to_owned()))
    }

    /// The port of the listener named `main`, else of the first listener.
    pub fn port(&self) -> u16 {
        self.listener_port("main")
            .or_else(|| self.listeners.first().map(|(_, p)| *p))
            .unwrap_or(0)
    }

    /// The port of listener `name`.
    pub fn listener_port(&self, name: &str) -> Option<u16> {
        self.listeners
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| *p)
    }

    /// The admin address.
    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// The upstream the harness started for this Envoy, if it started one.
    pub fn upstream(&self) -> Option<&Upstream> {
        self.upstream.as_ref()
    }

    /// The gRPC server the harness started for this Envoy (`# pwf:ratelimit_port`), if it
    /// started one.
    pub fn ratelimit(&self) -> Option<&RateLimitServer> {
        self.ratelimit.as_ref()
    }

    /// A keep-alive client for the main listener.
    pub fn client(&self) -> Client {
        Client::new(self.port())
    }

    /// `GET path` on the main listener.
    pub fn get(&self, path: &str) -> Result<Response> {
        self.client().get(path)
    }

    /// Sends `req` to the main listener.
    pub fn send(&self, req: &Request) -> Result<Response> {
        self.client().send(req)
    }

    /// `GET path` on the admin endpoint (`/stats`, `/clusters`, ...).
    pub fn admin_get(&self, path: &str) -> Result<Response> {
        Client::to(self.admin).get(path)
    }

    /// The value of counter or gauge `name` from `/stats`, if Envoy has it.
    pub fn stat(&self, name: &str) -> Result<Option<u64>> {
        let resp = self.admin_get("/stats")?;
        Ok(resp.text().lines().find_map(|line| {
            let (n, v) = line.split_once(": ")?;
            if n == name {
                v.trim().parse().ok()
            } else {
                None
            }
        }))
    }

    /// Everything Envoy has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The path of the log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The `wasm log` lines so far (what plugins wrote), in order.
    pub fn wasm_log(&self) -> Vec<String> {
        wasm_lines(&self.log())
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// Waits until a log line contains `needle` and returns that line (Envoy writes its log
    /// asynchronously, so a line may land a little after the response).
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|l| l.contains(needle)) {
                return Ok(line.to_owned());
            }
            if Instant::now() >= deadline {
                return Err(Error::new(format!(
                    "no log line containing {needle:?} within {timeout:?}; log tail:\n{}",
                    tail(&log, TAIL_LINES)
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Stops Envoy gracefully (admin `/quitquitquit`, then a kill after 10 s) and returns
    /// how it exited.
    pub fn stop(mut self) -> Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            return Err(Error::new("envoy was already stopped"));
        };
        let _ = Client::to(self.admin)
            .timeout(Duration::from_secs(5))
            .send(&Request::new("POST", "/quitquitquit"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let status = child
                        .wait()
                        .map_err(|e| Error::io("waiting for envoy", e))?;
                    return Err(Error::new(format!(
                        "envoy did not stop within 10 s of /quitquitquit; killed ({status})"
                    )));
                }
            }
        }
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !self.quiet || log_requested() {
            eprintln!(
                "--- envoy log tail ({}) ---\n{}--- end of envoy log ---",
                self.log_path.display(),
                tail(&self.log(), TAIL_LINES)
            );
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.run_dir);
        }
    }
}

/// Whether `PWF_ENVOY_LOG` asks for every Envoy's log tail, quiet or not.
fn log_requested() -> bool {
    std::env::var_os("PWF_ENVOY_LOG").is_some_and(|value| !value.is_empty() && value != "0")
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))
}

impl Setup {
    fn new(name: &str, template: Result<String>) -> Setup {
        Setup {
            name: name.to_owned(),
            template,
            values: BTreeMap::new(),
            upstream_port: None,
            concurrency: 1,
            log_level: "info".to_owned(),
            args: Vec::new(),
            startup_timeout: Duration::from_secs(60),
            quiet: false,
        }
    }

    /// Sets marker `key` to `yaml`, a YAML scalar written as is (`8080`, `'text'`).
    pub fn set(mut self, key: &str, yaml: impl Into<String>) -> Setup {
        self.values.insert(key.to_owned(), yaml.into());
        self
    }

    /// The wasm file (`# pwf:wasm`).
    pub fn wasm(self, path: impl AsRef<Path>) -> Setup {
        let path = path.as_ref().to_string_lossy().into_owned();
        self.set("wasm", yaml_quote(&path))
    }

    /// The release wasm of workspace package `package` (`# pwf:wasm`), built first; see [`built_wasm_artifact`](crate::built_wasm_artifact).
    pub fn wasm_of(mut self, package: &str) -> Setup {
        match built_wasm_artifact(package) {
            Ok(path) => self.wasm(path),
            Err(e) => {
                self.template = Err(e);
                self
            }
        }
    }

    /// The plugin configuration bytes, usually JSON (`# pwf:plugin_config`).
    pub fn plugin_config(self, config: &str) -> Setup {
        self.set("plugin_config", yaml_quote(config))
    }

    /// Points the config's upstream (`# pwf:upstream_port`) at `upstream`; without this,
    /// [`start`](Setup::start) starts an upstream of its own.
    pub fn upstream(mut self, upstream: &Upstream) -> Setup {
        self.upstream_port = Some(upstream.port());
        self
    }

    /// Points the config's gRPC service (`# pwf:ratelimit_port`) at `server`; without this,
    /// [`start`](Setup::start) starts a [`RateLimitServer`] of its own when the config has
    /// that marker.
    pub fn ratelimit(self, server: &RateLimitServer) -> Setup {
        self.set("ratelimit_port", server.port().to_string())
    }

    /// Envoy's worker threads (`--concurrency`, default 1).
    pub fn concurrency(mut self, workers: u32) -> Setup {
        self.concurrency = workers;
        self
    }

    /// Envoy's log level (`--log-level`, default `info`; `warning` for benchmarks).
    pub fn log_level(mut self, level: &str) -> Setup {
        self.log_level = level.to_owned();
        self
    }

    /// An extra Envoy command-line argument.
    pub fn arg(mut self, arg: &str) -> Setup {
        self.args.push(arg.to_owned());
        self
    }

    /// How long to wait for readiness (default 60 s).
    pub fn startup_timeout(mut self, timeout: Duration) -> Setup {
        self.startup_timeout = timeout;
        self
    }

    /// Do not print the log tail when the [`Envoy`] is dropped, for a program that is not a
    /// test (whose output nothing captures): a demo, a benchmark, a check that reports its
    /// own failures. `PWF_ENVOY_LOG=1` in the environment prints it anyway.
    pub fn quiet(mut self) -> Setup {
        self.quiet = true;
        self
    }

    /// The config as it would be written, given the upstream port to use (when the
    /// template has an upstream marker and none was set, the shipped port stays).
    pub fn render(&self) -> Result<String> {
        self.render_with(self.upstream_port)
    }

    fn render_with(&self, upstream_port: Option<u16>) -> Result<String> {
        let template = match &self.template {
            Ok(t) => t,
            Err(e) => return Err(Error::new(e.to_string())),
        };
        let mut values = self.values.clone();
        // A shipped wasm path is relative to the repository root, under `target/`: point it
        // at the target directory actually in use (`CARGO_TARGET_DIR` may move it).
        if !values.contains_key("wasm") {
            if let Some(shipped) = template::default_value(template, "wasm") {
                let shipped = template::unquote(&shipped);
                if let Some(rest) = shipped.strip_prefix("target/") {
                    let path = paths::target_dir().join(rest);
                    values.insert("wasm".to_owned(), yaml_quote(&path.to_string_lossy()));
                }
            }
        }
        for marker in template::markers(template) {
            if marker == "upstream_port" {
                if let (Some(port), false) = (upstream_port, values.contains_key(&marker)) {
                    values.insert(marker, port.to_string());
                }
            } else if marker.ends_with("_port") {
                values.entry(marker).or_insert_with(|| "0".to_owned());
            }
        }
        template::fill(template, &values)
    }

    fn needs_upstream(&self) -> bool {
        self.upstream_port.is_none()
            && !self.values.contains_key("upstream_port")
            && self
                .template
                .as_ref()
                .is_ok_and(|t| template::markers(t).iter().any(|m| m == "upstream_port"))
    }

    /// Runs `envoy --mode validate` on the rendered config.
    pub fn validate(self) -> Result<Validation> {
        let config = self.render()?;
        let run = RunDir::create(&self.name)?;
        let path = run.write_config(&config)?;
        let result = validate_file(&path);
        let _ = std::fs::remove_dir_all(&run.0);
        result
    }

    fn spawn(&self, config: &str) -> Result<(Child, RunDir)> {
        let envoy = envoy_binary()?;
        let run = RunDir::create(&self.name)?;
        let config_path = run.write_config(config)?;
        let log_path = run.log();
        let log = File::create(&log_path)
            .map_err(|e| Error::io(format!("creating {}", log_path.display()), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| Error::io("duplicating the log file handle", e))?;
        let child = Command::new(&envoy)
            .current_dir(paths::work_dir())
            .arg("-c")
            .arg(&config_path)
            .args(["--disable-hot-restart", "--use-dynamic-base-id"])
            .arg("--concurrency")
            .arg(self.concurrency.to_string())
            .arg("--log-level")
            .arg(&self.log_level)
            .arg("--admin-address-path")
            .arg(run.admin_file())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .map_err(|e| Error::io(format!("starting {}", envoy.display()), e))?;
        Ok((child, run))
    }

    /// Starts Envoy and waits until it is ready (admin `/ready` answers 200).
    ///
    /// Fails with the log tail when Envoy exits or is not ready in time.
    pub fn start(mut self) -> Result<Envoy> {
        let wants_ratelimit = !self.values.contains_key("ratelimit_port")
            && self
                .template
                .as_ref()
                .is_ok_and(|t| template::markers(t).iter().any(|m| m == "ratelimit_port"));
        let ratelimit = if wants_ratelimit {
            let server = RateLimitServer::start()
                .map_err(|e| Error::io("starting the gRPC (rate limit) server", e))?;
            self = self.ratelimit(&server);
            Some(server)
        } else {
            None
        };
        let upstream = if self.needs_upstream() {
            Some(Upstream::start().map_err(|e| Error::io("starting the upstream", e))?)
        } else {
            None
        };
        let config =
            self.render_with(upstream.as_ref().map(Upstream::port).or(self.upstream_port))?;
        let (mut child, run) = self.spawn(&config)?;
        let log_path = run.log();
        let fail = |child: &mut Child, why: String| -> Error {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            Error::new(format!(
                "envoy ({}) {why}\nconfig: {}\n--- envoy log tail ({}) ---\n{}",
                self.name,
                run.config().display(),
                log_path.display(),
                tail(&log, TAIL_LINES)
            ))
        };
        let deadline = Instant::now() + self.startup_timeout;
        let admin = loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    return Err(fail(
                        &mut child,
                        format!("exited with {status} before it was ready"),
                    ))
                }
                Ok(None) => {}
                Err(e) => return Err(fail(&mut child, format!("cannot be waited for: {e}"))),
            }
            if let Some(admin) = run.admin_addr() {
                let ready = Client::to(admin)
                    .timeout(Duration::from_secs(2))
                    .get("/ready")
                    .is_ok_and(|r| r.status == 200);
                if ready {
                    break admin;
                }
            }
            if Instant::now() >= deadline {
                return Err(fail(
                    &mut child,
                    format!(
                        "was not ready within {:?} (does the config have an `admin` address?)",
                        self.startup_timeout
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let listeners = match listener_ports(admin) {
            Ok(l) => l,
            Err(e) => return Err(fail(&mut child, e.to_string())),
        };
        Ok(Envoy {
            child: Some(child),
            run_dir: run.0.clone(),
            log_path,
            admin,
            listeners,
            upstream,
            ratelimit,
            quiet: self.quiet,
        })
    }

    /// Starts Envoy expecting it to refuse the config and exit (a bad plugin configuration,
    /// say), and returns how it exited with its log. Fails if Envoy becomes ready instead or
    /// does not exit in time.
    pub fn start_expect_failure(self) -> Result<Refusal> {
        let config = self.render()?;
        let (mut child, run) = self.spawn(&config)?;
        let deadline = Instant::now() + self.startup_timeout;
        let outcome = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) => {}
                Err(e) => break Err(format!("cannot be waited for: {e}")),
            }
            if let Some(admin) = run.admin_addr() {
                let ready = Client::to(admin)
                    .timeout(Duration::from_secs(2))
                    .get("/ready")
                    .is_ok_and(|r| r.status == 200);
                if ready {
                    break Err(
                        "started and became ready, but was expected to refuse the config"
                            .to_owned(),
                    );
                }
            }
            if Instant::now() >= deadline {
                break Err(format!("did not exit within {:?}", self.startup_timeout));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if outcome.is_err() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(run.log()).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&run.0);
        match outcome {
            Ok(status) => Ok(Refusal { status, log }),
            Err(why) => Err(Error::new(format!(
                "envoy ({}) {why}\n--- envoy log tail ---\n{}",
                self.name,
                tail(&log, TAIL_LINES)
            ))),
        }
    }
}

/// Runs `envoy --mode validate -c <path>` from the repository root (so relative wasm paths
/// resolve as in the shipped configs).
pub fn validate_file(path: &Path) -> Result<Validation> {
    let envoy = envoy_binary()?;
    let out = Command::new(&envoy)
        .current_dir(paths::work_dir())
        .args(["--mode", "validate", "--disable-hot-restart", "-c"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("running {} --mode validate", envoy.display()), e))?;
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(Validation {
        ok: out.status.success(),
        output,
    })
}

/// Asks the admin endpoint for the bound port of every listener.
fn listener_ports(admin: SocketAddr) -> Result<Vec<(String, u16)>> {
    let resp = Client::to(admin).get("/listeners?format=json")?;
    let json = resp.json()?;
    let statuses = json["listener_statuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    statuses
        .iter()
        .map(|l| {
            let name = l["name"].as_str().unwrap_or_default().to_owned();
            let port = l["local_address"]["socket_address"]["port_value"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| {
                    Error::new(format!(
                        "listener {name:?} has no TCP port in /listeners: {l}"
                    ))
                })?;
            Ok((name, port))
        })
        .collect()
}

/// Removes the run directories of processes that no longer exist (a failed start keeps
/// its directory for inspection; the next test process clears it).
fn prune_dead_runs() {
    let proc_fs = Path::new("/proc/self");
    if !proc_fs.exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(paths::state_dir().join(".run")) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // `<name>-<pid>-<seq>`
        let pid = name.rsplit('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new("/proc").join(pid.to_string()).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// A directory for one Envoy run, under `<repo>/envoy/.run/` (or `<target>/pwf-envoy/.run/`
/// for a crate outside the repository).
struct RunDir(PathBuf);

impl RunDir {
    fn create(name: &str) -> Result<RunDir> {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        if SEQ.load(Ordering::SeqCst) == 0 {
            prune_dead_runs();
        }
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let dir = paths::state_dir().join(".run").join(format!(
            "{safe}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        Ok(RunDir(dir))
    }

    fn config(&self) -> PathBuf {
        self.0.join("envoy.yaml")
    }

    fn log(&self) -> PathBuf {
        self.0.join("envoy.log")
    }

    fn admin_file(&self) -> PathBuf {
        self.0.join("admin.txt")
    }

    fn write_config(&self, config: &str) -> Result<PathBuf> {
        let path = self.config();
        std::fs::write(&path, config)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        Ok(path)
    }

    /// The admin address, once Envoy has written it.
    fn admin_addr(&self) -> Option<SocketAddr> {
        std::fs::read_to_string(self.admin_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}
