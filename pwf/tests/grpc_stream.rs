//! gRPC streams as `futures::Stream`s, in the native host (which follows what Envoy 1.40
//! was measured to do: `envoy/e2e/tests/grpc_probe.rs`). Needs the `grpc-streams` feature.
#![cfg(feature = "grpc-streams")]

use std::rc::Rc;

use futures::StreamExt;
use pwf::{
    Action, Error, GrpcErrorKind, GrpcRequest, Http, HttpFilter, LocalResponse, Outcome, Plugin,
    PluginContext,
};
use pwf_test::{Action as HostAction, CallState, Delivery, Host};

/// Streams the request's `x-say` words to `echo`, one message each, and puts what comes
/// back in `x-echo`.
struct Echoer;

impl Plugin for Echoer {
    type Config = ();
    type Filter = EchoFilter;

    fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
        Ok(Echoer)
    }

    fn filter(_: &Rc<Self>, _: &Http) -> EchoFilter {
        EchoFilter
    }
}

struct EchoFilter;

impl HttpFilter for EchoFilter {
    fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        let say = http.request_header("x-say")?.unwrap_or_default();
        let words: Vec<String> = String::from_utf8_lossy(say.as_bytes())
            .split(',')
            .map(str::to_owned)
            .collect();
        let mut stream = GrpcRequest::new("echo", "pwf.test.Echo", "Stream")
            .metadata("x-test", "1")
            .open_stream()?;
        for word in &words {
            stream.send(word.as_bytes())?;
        }
        stream.close_send()?;
        let handle = http.clone();
        Ok(http.spawn(async move {
            let mut heard = Vec::new();
            while let Some(message) = stream.next().await {
                match message {
                    Ok(message) => heard.push(String::from_utf8_lossy(&message).into_owned()),
                    Err(error) => {
                        let status = match error.kind() {
                            GrpcErrorKind::Status { .. } => 403,
                            _ => 503,
                        };
                        return Ok(Outcome::Respond(
                            LocalResponse::new(status).body(error.to_string()),
                        ));
                    }
                }
            }
            let trailers = stream.trailing_metadata().unwrap_or_default();
            let trailer = trailers
                .iter()
                .find(|(name, _)| name == "t1")
                .map(|(_, value)| String::from_utf8_lossy(value.as_bytes()).into_owned())
                .unwrap_or_default();
            handle.set_request_header("x-echo", heard.join(","))?;
            handle.set_request_header("x-trailer", trailer)?;
            Ok(Outcome::Continue)
        }))
    }
}

fn start() -> (Host, pwf_test::Plugin) {
    let host = Host::builder().cluster("echo").build();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<Echoer>)
        .unwrap()
        .configure("")
        .unwrap();
    (host, plugin)
}

fn request(plugin: &pwf_test::Plugin, say: &'static str) -> pwf_test::Stream {
    let stream = plugin.open_stream();
    let action = stream.request_headers(
        [
            (":method", "GET"),
            (":path", "/"),
            (":authority", "app"),
            ("x-say", say),
        ],
        true,
    );
    assert_eq!(action, HostAction::Pause);
    stream
}

#[test]
fn grpc_stream_sends_half_closes_and_reads_every_message_until_the_close() {
    let (_host, plugin) = start();
    let stream = request(&plugin, "one,two");
    let grpc = stream.grpc_streams()[0].clone();
    assert_eq!(grpc.path(), "/pwf.test.Echo/Stream");
    assert_eq!(grpc.metadata().get("x-test"), Some("1"));
    assert_eq!(grpc.sent(), [b"one".to_vec(), b"two".to_vec()]);
    assert!(grpc.is_half_closed());
    assert_eq!(
        grpc.initial_metadata([("content-type", "application/grpc")]),
        Delivery::Delivered
    );
    grpc.message(b"ONE");
    grpc.message(b"TWO");
    assert_eq!(stream.resumes().len(), 0, "still reading");
    grpc.trailing_metadata([("grpc-status", "0"), ("t1", "v1")]);
    assert_eq!(grpc.close(0, ""), Delivery::Delivered);
    assert_eq!(stream.request_header("x-echo").as_deref(), Some("ONE,TWO"));
    assert_eq!(stream.request_header("x-trailer").as_deref(), Some("v1"));
    assert_eq!(stream.resumes().len(), 1);
    assert_eq!(grpc.state(), CallState::Answered);
    assert_eq!(plugin.failure(), None);
}

#[test]
fn grpc_stream_closed_with_a_status_ends_with_that_error() {
    let (_host, plugin) = start();
    let stream = request(&plugin, "one");
    let grpc = stream.grpc_streams()[0].clone();
    grpc.initial_metadata(Vec::<(&str, &str)>::new());
    grpc.close(9, "stop");
    let local = stream.local_response().expect("answered by the plugin");
    assert_eq!(local.status, 403);
    assert_eq!(
        String::from_utf8_lossy(&local.body),
        "gRPC call to cluster `echo` answered status 9 (FAILED_PRECONDITION): stop"
    );
}

#[test]
fn grpc_stream_refused_ends_with_a_transport_error() {
    let (_host, plugin) = start();
    let stream = request(&plugin, "one");
    stream.grpc_streams()[0].refuse();
    assert_eq!(stream.local_response().map(|r| r.status), Some(503));
}

#[test]
fn grpc_stream_open_when_its_http_stream_ends_is_cancelled() {
    let (_host, plugin) = start();
    let stream = request(&plugin, "one");
    let grpc = stream.grpc_streams()[0].clone();
    grpc.message(b"ONE");
    stream.end().unwrap();
    assert_eq!(grpc.state(), CallState::Cancelled);
    assert_eq!(grpc.message(b"late"), Delivery::Cancelled);
    assert_eq!(plugin.failure(), None);
}

/// Opens a stream per request and hands it to a plugin-wide task, which reads it and logs
/// what it hears; `x-root: 1` on a request instead asks the plugin's next tick to open one.
struct Hub {
    to_reader: futures::channel::mpsc::UnboundedSender<pwf::GrpcStream>,
}

impl Plugin for Hub {
    type Config = ();
    type Filter = HubFilter;

    fn configure(_: (), cx: &PluginContext) -> Result<Self, Error> {
        let (to_reader, mut streams) = futures::channel::mpsc::unbounded::<pwf::GrpcStream>();
        cx.spawn(async move {
            while let Some(mut stream) = streams.next().await {
                while let Some(message) = stream.next().await {
                    match message {
                        Ok(message) => pwf::info!("heard {}", String::from_utf8_lossy(&message)),
                        Err(error) => pwf::info!("ended: {error}"),
                    }
                }
            }
            Ok(())
        });
        Ok(Hub { to_reader })
    }

    fn filter(plugin: &Rc<Self>, _: &Http) -> HubFilter {
        HubFilter {
            to_reader: plugin.to_reader.clone(),
        }
    }

    fn on_tick(&self, _: &PluginContext) {
        match GrpcRequest::new("echo", "pwf.test.Echo", "Stream").open_stream() {
            Ok(stream) => {
                let _ = self.to_reader.unbounded_send(stream);
            }
            Err(error) => pwf::error!("{error}"),
        }
    }
}

struct HubFilter {
    to_reader: futures::channel::mpsc::UnboundedSender<pwf::GrpcStream>,
}

impl HttpFilter for HubFilter {
    fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        let stream = GrpcRequest::new("echo", "pwf.test.Echo", "Stream").open_stream()?;
        let to_reader = self.to_reader.clone();
        Ok(http.spawn(async move {
            let _ = to_reader.unbounded_send(stream);
            // Waits for the client, which goes away.
            std::future::pending::<()>().await;
            Ok(Outcome::Continue)
        }))
    }
}

fn start_hub() -> (Host, pwf_test::Plugin) {
    let host = Host::builder().cluster("echo").build();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<Hub>)
        .unwrap()
        .configure("")
        .unwrap();
    (host, plugin)
}

fn heard(host: &Host) -> Vec<String> {
    host.logs(pwf_test::LogLevel::Info)
}

#[test]
fn grpc_stream_opened_by_an_http_stream_is_cancelled_at_its_end_wherever_it_is_held() {
    let (host, plugin) = start_hub();
    let stream = plugin.open_stream();
    stream.request_headers(
        [(":method", "GET"), (":path", "/"), (":authority", "app")],
        true,
    );
    let grpc = stream.grpc_streams()[0].clone();
    grpc.initial_metadata(Vec::<(&str, &str)>::new());
    assert_eq!(grpc.message(b"one"), Delivery::Delivered);
    assert_eq!(heard(&host), ["heard one"], "the plugin's task reads it");
    stream.end().unwrap();
    assert_eq!(grpc.state(), CallState::Cancelled, "reset upstream");
    assert_eq!(grpc.message(b"late"), Delivery::Cancelled);
    assert_eq!(
        heard(&host),
        [
            "heard one",
            "ended: gRPC call to cluster `echo` cancelled: the stream that opened it ended first"
        ]
    );
    assert_eq!(plugin.failure(), None);
}

#[test]
fn grpc_stream_opened_by_the_plugin_outlives_http_streams() {
    let (host, plugin) = start_hub();
    plugin.tick().unwrap();
    let grpc = plugin.grpc_streams()[0].clone();
    let stream = plugin.open_stream();
    stream.request_headers(
        [(":method", "GET"), (":path", "/"), (":authority", "app")],
        true,
    );
    stream.end().unwrap();
    assert_eq!(plugin.grpc_streams().len(), 2);
    assert_eq!(plugin.grpc_streams()[1].state(), CallState::Cancelled);
    assert_eq!(grpc.state(), CallState::Pending);
    grpc.initial_metadata(Vec::<(&str, &str)>::new());
    assert_eq!(grpc.message(b"still here"), Delivery::Delivered);
    assert_eq!(heard(&host), ["heard still here"]);
    assert_eq!(plugin.failure(), None);
}
