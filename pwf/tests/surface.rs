//! Metrics, shared queues, properties, the clock and body buffering through
//! the native test host.

use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use pwf::metrics::{Counter, Gauge, Histogram};
use pwf::{properties, Action, Error, Http, HttpFilter, Plugin, PluginContext, SharedQueue};
use pwf_test::{Action as HostAction, Host, LogLevel, Metric};

const REQUEST: [(&str, &str); 3] = [(":method", "GET"), (":path", "/"), (":authority", "app")];

fn start<P: Plugin>(host: &Host) -> pwf_test::Plugin {
    host.start_vm_with_root(pwf::root_context::<P>)
        .unwrap()
        .configure("")
        .unwrap()
}

/// Defines its metrics once, when configured, and uses them from streams:
/// a tagged request counter, a gauge of open streams, a histogram of
/// request body sizes.
mod metered {
    use super::*;

    pub(super) struct Metered {
        requests: Counter,
        open: Gauge,
        body_sizes: Histogram,
    }

    impl Plugin for Metered {
        type Config = ();
        type Filter = MeteredFilter;

        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Metered {
                requests: Counter::define_tagged(
                    "requests",
                    &[("method", "GET"), ("code", "2xx")],
                )?,
                open: Gauge::define("open_streams")?,
                body_sizes: Histogram::define("body_size")?,
            })
        }

        fn filter(plugin: &Rc<Self>, _: &Http) -> MeteredFilter {
            MeteredFilter {
                plugin: plugin.clone(),
            }
        }
    }

    pub(super) struct MeteredFilter {
        plugin: Rc<Metered>,
    }

    impl HttpFilter for MeteredFilter {
        fn on_request_headers(&mut self, _: &Http, _: bool) -> Result<Action, Error> {
            self.plugin.requests.increment(1)?;
            self.plugin.open.add(1)?;
            pwf::info!(
                "requests={} open={}",
                self.plugin.requests.get()?,
                self.plugin.open.get()?
            );
            Ok(Action::Continue)
        }

        fn on_request_body(&mut self, _: &Http, size: usize, end: bool) -> Result<Action, Error> {
            if end {
                self.plugin.body_sizes.record(size as u64)?;
            }
            Ok(Action::Continue)
        }

        fn on_done(&mut self, _: &Http) {
            if let Err(error) = self.plugin.open.add(-1) {
                pwf::error!("{error}");
            }
        }
    }
}

use metered::Metered;

#[test]
fn counter_used_from_streams_shows_under_its_name_with_tags_folded_in() {
    let host = Host::builder().build();
    let plugin = start::<Metered>(&host);
    for _ in 0..3 {
        plugin.open_stream().request_headers(REQUEST, true);
    }
    assert_eq!(
        host.metric("requests.method.GET.code.2xx"),
        Some(Metric::Counter(3))
    );
    assert_eq!(host.metric("requests"), None);
}

#[test]
fn counter_defined_by_two_workers_is_one_metric() {
    let host = Host::builder().build();
    start::<Metered>(&host)
        .open_stream()
        .request_headers(REQUEST, true);
    start::<Metered>(&host)
        .open_stream()
        .request_headers(REQUEST, true);
    assert_eq!(
        host.metric("requests.method.GET.code.2xx"),
        Some(Metric::Counter(2))
    );
}

#[test]
fn gauge_goes_up_and_down_with_open_streams() {
    let host = Host::builder().build();
    let plugin = start::<Metered>(&host);
    let streams: Vec<_> = (0..3).map(|_| plugin.open_stream()).collect();
    for stream in &streams {
        stream.request_headers(REQUEST, true);
    }
    streams[0].end().unwrap();
    assert_eq!(host.metric("open_streams"), Some(Metric::Gauge(2)));
}

#[test]
fn metric_get_reads_the_current_values() {
    let host = Host::builder().build();
    let plugin = start::<Metered>(&host);
    plugin.open_stream().request_headers(REQUEST, true);
    plugin.open_stream().request_headers(REQUEST, true);
    assert_eq!(
        host.logs(LogLevel::Info),
        ["requests=1 open=1", "requests=2 open=2"]
    );
}

#[test]
fn histogram_records_each_value() {
    let host = Host::builder().build();
    let plugin = start::<Metered>(&host);
    for body in ["abc", "hello"] {
        let stream = plugin.open_stream();
        stream.request_headers(REQUEST, false);
        stream.request_body(body, true);
    }
    assert_eq!(
        host.metric("body_size"),
        Some(Metric::Histogram(vec![3, 5]))
    );
}

/// Registers the queue `jobs` when configured; each stream enqueues its path
/// (or, with `x-json`, a JSON job) and the plugin drains the queue when told
/// it is ready.
mod jobs {
    use super::*;

    pub(super) struct Jobs {
        queue: SharedQueue,
    }

    impl Plugin for Jobs {
        type Config = ();
        type Filter = JobsFilter;

        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Jobs {
                queue: SharedQueue::register("jobs")?,
            })
        }

        fn filter(plugin: &Rc<Self>, _: &Http) -> JobsFilter {
            JobsFilter {
                plugin: plugin.clone(),
            }
        }

        fn on_queue_ready(&self, _: &PluginContext, queue_id: u32) {
            pwf::info!("ready: own queue {}", queue_id == self.queue.id());
            loop {
                match self.queue.dequeue() {
                    Ok(Some(item)) => pwf::info!("job: {}", String::from_utf8_lossy(&item)),
                    Ok(None) => break,
                    Err(error) => {
                        pwf::error!("{error}");
                        break;
                    }
                }
            }
        }
    }

    pub(super) struct JobsFilter {
        plugin: Rc<Jobs>,
    }

    impl HttpFilter for JobsFilter {
        fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
            if http.request_header("x-resolve")?.is_some() {
                let found = SharedQueue::resolve("workers", "jobs")?;
                let missing = SharedQueue::resolve("workers", "nope")?;
                pwf::info!(
                    "resolved own={} missing={}",
                    found == Some(self.plugin.queue),
                    missing.is_none()
                );
                return Ok(Action::Continue);
            }
            let path = http.request_header(":path")?.unwrap_or_default();
            self.plugin.queue.enqueue(&path)?;
            pwf::info!("enqueued");
            Ok(Action::Continue)
        }
    }
}

use jobs::Jobs;

#[test]
fn shared_queue_hands_a_streams_work_to_the_plugin() {
    let host = Host::builder().vm_id("workers").build();
    let plugin = start::<Jobs>(&host);
    let request = [
        (":method", "GET"),
        (":path", "/login"),
        (":authority", "app"),
    ];
    plugin.open_stream().request_headers(request, true);
    assert_eq!(
        host.logs(LogLevel::Info),
        ["enqueued", "ready: own queue true", "job: /login"]
    );
}

#[test]
fn shared_queue_resolve_finds_the_queue_by_vm_id_and_name() {
    let host = Host::builder().vm_id("workers").build();
    let plugin = start::<Jobs>(&host);
    let request = [(":path", "/"), ("x-resolve", "1")];
    plugin.open_stream().request_headers(request, true);
    assert_eq!(
        host.logs(LogLevel::Info),
        ["resolved own=true missing=true"]
    );
}

#[test]
fn shared_queue_json_items_round_trip() {
    #[derive(serde::Serialize, serde::Deserialize, Debug)]
    struct Job {
        path: String,
        attempt: u32,
    }
    struct JsonJobs {
        queue: SharedQueue,
    }
    impl Plugin for JsonJobs {
        type Config = ();
        type Filter = JsonJobsFilter;
        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(JsonJobs {
                queue: SharedQueue::register("json-jobs")?,
            })
        }
        fn filter(plugin: &Rc<Self>, _: &Http) -> JsonJobsFilter {
            JsonJobsFilter {
                plugin: plugin.clone(),
            }
        }
        fn on_queue_ready(&self, _: &PluginContext, _: u32) {
            match self.queue.dequeue_json::<Job>() {
                Ok(job) => pwf::info!("{job:?}"),
                Err(error) => pwf::error!("{error}"),
            }
        }
    }
    struct JsonJobsFilter {
        plugin: Rc<JsonJobs>,
    }
    impl HttpFilter for JsonJobsFilter {
        fn on_request_headers(&mut self, _: &Http, _: bool) -> Result<Action, Error> {
            self.plugin.queue.enqueue_json(&Job {
                path: "/retry".to_owned(),
                attempt: 2,
            })?;
            Ok(Action::Continue)
        }
    }

    let host = Host::builder().build();
    start::<JsonJobs>(&host)
        .open_stream()
        .request_headers(REQUEST, true);
    assert_eq!(
        host.logs(LogLevel::Info),
        [r#"Some(Job { path: "/retry", attempt: 2 })"#]
    );
}

/// Logs, one line each, what the typed property getters read.
mod props {
    use super::*;

    pub(super) struct Props;

    impl Plugin for Props {
        type Config = ();
        type Filter = PropsFilter;

        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Props)
        }

        fn filter(_: &Rc<Self>, _: &Http) -> PropsFilter {
            PropsFilter
        }
    }

    pub(super) struct PropsFilter;

    impl HttpFilter for PropsFilter {
        fn on_request_headers(&mut self, _: &Http, _: bool) -> Result<Action, Error> {
            pwf::info!("path={:?}", properties::request_path()?);
            pwf::info!("method={:?}", properties::request_method()?);
            pwf::info!("source={:?}", properties::source_address()?);
            pwf::info!("route={:?}", properties::route_name()?);
            pwf::info!("cluster={:?}", properties::cluster_name()?);
            pwf::info!("plugin={:?}", properties::plugin_name()?);
            pwf::info!("root={:?}", properties::plugin_root_id()?);
            pwf::info!("vm={:?}", properties::plugin_vm_id()?);
            pwf::info!("node={:?}", properties::node_id()?);
            pwf::info!("region={:?}", properties::node_metadata("region")?);
            let now = properties::now()?.duration_since(UNIX_EPOCH)?;
            pwf::info!("now={}", now.as_millis());
            properties::set(&["pwf_seen"], b"yes")?;
            Ok(Action::Continue)
        }
    }
}

use props::Props;

/// The line logged with `prefix=`, without the prefix.
fn logged(host: &Host, prefix: &str) -> Vec<String> {
    let prefix = format!("{prefix}=");
    host.logs(LogLevel::Info)
        .into_iter()
        .filter_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

#[test]
fn request_path_and_method_read_the_streams_properties() {
    let host = Host::builder().build();
    let stream = start::<Props>(&host).open_stream();
    stream.set_property(&["request", "path"], "/items?id=7");
    stream.set_property(&["request", "method"], "PATCH");
    stream.request_headers(REQUEST, true);
    assert_eq!(logged(&host, "path"), [r#"Some("/items?id=7")"#]);
    assert_eq!(logged(&host, "method"), [r#"Some("PATCH")"#]);
}

#[test]
fn property_getters_read_none_when_the_host_has_no_value() {
    let host = Host::builder().build();
    start::<Props>(&host)
        .open_stream()
        .request_headers(REQUEST, true);
    for name in [
        "path", "method", "source", "route", "cluster", "node", "region",
    ] {
        assert_eq!(logged(&host, name), ["None"], "{name}");
    }
}

#[test]
fn source_address_reads_the_host_property() {
    let host = Host::builder().build();
    host.set_property(&["source", "address"], "10.0.0.1:40000");
    start::<Props>(&host)
        .open_stream()
        .request_headers(REQUEST, true);
    assert_eq!(logged(&host, "source"), [r#"Some("10.0.0.1:40000")"#]);
}

#[test]
fn route_and_cluster_names_read_the_host_properties() {
    let host = Host::builder().build();
    host.set_property(&["route_name"], "api");
    host.set_property(&["cluster_name"], "backend");
    start::<Props>(&host)
        .open_stream()
        .request_headers(REQUEST, true);
    assert_eq!(logged(&host, "route"), [r#"Some("api")"#]);
    assert_eq!(logged(&host, "cluster"), [r#"Some("backend")"#]);
}

#[test]
fn plugin_name_root_id_and_vm_id_read_the_plugins_settings() {
    let host = Host::builder()
        .plugin_name("props-plugin")
        .root_id("props-root")
        .vm_id("props-vm")
        .build();
    start::<Props>(&host)
        .open_stream()
        .request_headers(REQUEST, true);
    assert_eq!(logged(&host, "plugin"), [r#"Some("props-plugin")"#]);
    assert_eq!(logged(&host, "root"), [r#"Some("props-root")"#]);
    assert_eq!(logged(&host, "vm"), [r#"Some("props-vm")"#]);
}

#[test]
fn node_id_and_metadata_read_the_node_properties() {
    let host = Host::builder().build();
    host.set_property(&["node", "id"], "sidecar~10.0.0.2");
    host.set_property(&["node", "metadata", "region"], "eu-west");
    start::<Props>(&host)
        .open_stream()
        .request_headers(REQUEST, true);
    assert_eq!(logged(&host, "node"), [r#"Some("sidecar~10.0.0.2")"#]);
    assert_eq!(logged(&host, "region"), [r#"Some("eu-west")"#]);
}

#[test]
fn properties_set_writes_the_streams_filter_state() {
    let host = Host::builder().build();
    let stream = start::<Props>(&host).open_stream();
    assert_eq!(stream.property(&["pwf_seen"]), None);
    stream.request_headers(REQUEST, true);
    assert_eq!(stream.property(&["pwf_seen"]).as_deref(), Some(&b"yes"[..]));
}

#[test]
fn now_follows_the_host_clock() {
    let host = Host::builder().build();
    let plugin = start::<Props>(&host);
    host.set_time(UNIX_EPOCH + Duration::from_millis(1_800_000_000_123));
    plugin.open_stream().request_headers(REQUEST, true);
    host.advance(Duration::from_millis(1_250));
    plugin.open_stream().request_headers(REQUEST, true);
    assert_eq!(logged(&host, "now"), ["1800000000123", "1800000001373"]);
}

/// Reads the whole request body, up to 16 bytes, and logs it.
mod buffered {
    use super::*;

    pub(super) const LIMIT: usize = 16;

    pub(super) struct Buffered;

    impl Plugin for Buffered {
        type Config = ();
        type Filter = BufferedFilter;

        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Buffered)
        }

        fn filter(_: &Rc<Self>, _: &Http) -> BufferedFilter {
            BufferedFilter
        }
    }

    pub(super) struct BufferedFilter;

    impl HttpFilter for BufferedFilter {
        fn on_request_body(
            &mut self,
            http: &Http,
            size: usize,
            end: bool,
        ) -> Result<Action, Error> {
            let Some(body) = http.read_full_request_body(size, end, LIMIT)? else {
                return Ok(Action::Pause);
            };
            pwf::info!("body: {}", String::from_utf8_lossy(&body));
            Ok(Action::Continue)
        }
    }
}

use buffered::Buffered;

#[test]
fn read_full_request_body_under_the_limit_gives_the_whole_body_at_end_of_stream() {
    let host = Host::builder().build();
    let stream = start::<Buffered>(&host).open_stream();
    assert_eq!(stream.request_headers(REQUEST, false), HostAction::Continue);
    assert_eq!(stream.request_body("hello ", false), HostAction::Pause);
    assert_eq!(stream.request_body("big ", false), HostAction::Pause);
    assert!(host.logs(LogLevel::Info).is_empty());
    assert_eq!(stream.request_body("world", true), HostAction::Continue);
    assert_eq!(host.logs(LogLevel::Info), ["body: hello big world"]);
    assert_eq!(stream.forwarded_request_body(), b"hello big world");
    assert_eq!(stream.local_response(), None);
}

#[test]
fn read_full_request_body_at_exactly_the_limit_is_accepted() {
    let host = Host::builder().build();
    let stream = start::<Buffered>(&host).open_stream();
    stream.request_headers(REQUEST, false);
    assert_eq!(stream.request_body("0123456789", false), HostAction::Pause);
    assert_eq!(stream.request_body("abcdef", true), HostAction::Continue);
    assert_eq!(host.logs(LogLevel::Info), ["body: 0123456789abcdef"]);
}

#[test]
fn read_full_request_body_past_the_limit_answers_413_and_reads_no_more() {
    let host = Host::builder().build();
    let stream = start::<Buffered>(&host).open_stream();
    stream.request_headers(REQUEST, false);
    assert_eq!(stream.request_body("0123456789", false), HostAction::Pause);
    assert_eq!(stream.request_body("0123456789", false), HostAction::Pause);
    let local = stream.local_response().expect("a 413");
    assert_eq!(local.status, 413);
    assert_eq!(local.headers.get("content-type"), Some("text/plain"));
    assert_eq!(
        String::from_utf8_lossy(&local.body),
        format!(
            "request body exceeds the limit of {} bytes",
            buffered::LIMIT
        )
    );
    assert_eq!(stream.request_body("more", true), HostAction::Skipped);
    assert!(host.logs(LogLevel::Info).is_empty());
    assert!(stream.forwarded_request_body().is_empty());
}

#[test]
fn read_full_request_body_past_the_limit_at_end_of_stream_answers_413() {
    let host = Host::builder().build();
    let stream = start::<Buffered>(&host).open_stream();
    stream.request_headers(REQUEST, false);
    assert_eq!(
        stream.request_body("0123456789abcdefg", true),
        HostAction::Pause
    );
    assert_eq!(stream.local_response().map(|r| r.status), Some(413));
    assert!(host.logs(LogLevel::Info).is_empty());
    assert!(stream.forwarded_request_body().is_empty());
}

/// `Counter::increment(0)` reached the host, which refuses a counter offset of 0
/// (BadArgument, as Envoy does), so counting an empty body failed the stream.
#[test]
fn counter_increment_by_zero_is_a_no_op() {
    struct Bytes {
        bytes: Counter,
    }
    impl Plugin for Bytes {
        type Config = ();
        type Filter = BytesFilter;
        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Bytes {
                bytes: Counter::define("request_bytes")?,
            })
        }
        fn filter(plugin: &Rc<Self>, _: &Http) -> BytesFilter {
            BytesFilter {
                plugin: plugin.clone(),
            }
        }
    }
    struct BytesFilter {
        plugin: Rc<Bytes>,
    }
    impl HttpFilter for BytesFilter {
        fn on_request_body(&mut self, _: &Http, size: usize, _: bool) -> Result<Action, Error> {
            self.plugin.bytes.increment(size as u64)?;
            Ok(Action::Continue)
        }
    }

    let host = Host::builder().build();
    let plugin = start::<Bytes>(&host);
    for body in ["abc", ""] {
        let stream = plugin.open_stream();
        stream.request_headers(REQUEST, false);
        assert_eq!(stream.request_body(body, true), HostAction::Continue);
        assert_eq!(stream.local_response(), None);
    }
    assert!(host.logs(LogLevel::Error).is_empty());
    assert_eq!(host.metric("request_bytes"), Some(Metric::Counter(3)));
}
