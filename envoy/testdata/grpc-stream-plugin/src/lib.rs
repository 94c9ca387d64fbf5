//! A pwf plugin for the gRPC stream e2e tests (`envoy/e2e/tests/grpc_stream.rs`): it opens
//! a stream of `pwf.test.Echo/Stream` on the `grpc` cluster, sends each comma-separated
//! word of the request's `x-say` header as a message, half-closes, and answers 200 with the
//! messages that came back, one a line, then `trailer t1=<value>`; or 502 with the error.
//! The request's `x-md` header (`k=v,k=v`) becomes the stream's metadata (the test
//! service's `x-test-*` switches).
//!
//! With `x-hand-over: 1`, the request's task hands the stream to a plugin-wide task, which
//! reads it and logs what it hears (`heard <message>`, then `ended: <error>` or `closed`),
//! and the request waits for nothing: the stream still belongs to the request, and ends
//! with it.
//!
//! Build: `cargo build --target wasm32-wasip1 --release -p grpc-stream-plugin`, then run
//! it with `envoy/testdata/grpc-probe/envoy.yaml`.

#![forbid(unsafe_code)]

use std::rc::Rc;

use futures::channel::mpsc::{unbounded, UnboundedSender};
use futures::StreamExt;
use pwf::{
    Action, Error, GrpcRequest, GrpcStream, Http, HttpFilter, LocalResponse, Outcome, Plugin,
    PluginContext,
};

/// The plugin: where streams are handed over to its reading task.
pub struct Streamer {
    to_reader: UnboundedSender<GrpcStream>,
}

impl Plugin for Streamer {
    type Config = ();
    type Filter = StreamerFilter;

    fn configure(_: (), cx: &PluginContext) -> Result<Self, Error> {
        let (to_reader, mut streams) = unbounded::<GrpcStream>();
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
        Ok(Streamer { to_reader })
    }

    fn filter(plugin: &Rc<Self>, _: &Http) -> StreamerFilter {
        StreamerFilter {
            to_reader: plugin.to_reader.clone(),
        }
    }
}

/// The filter of one stream.
pub struct StreamerFilter {
    to_reader: UnboundedSender<GrpcStream>,
}

fn header(http: &Http, name: &str) -> Result<String, Error> {
    Ok(http
        .request_header(name)?
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default())
}

impl HttpFilter for StreamerFilter {
    fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        let say = header(http, "x-say")?;
        if say.is_empty() {
            return Ok(Action::Continue);
        }
        let mut request = GrpcRequest::new("grpc", "pwf.test.Echo", "Stream");
        for pair in header(http, "x-md")?.split(',') {
            if let Some((k, v)) = pair.split_once('=') {
                request = request.metadata(k, v);
            }
        }
        let mut stream = request.open_stream()?;
        for word in say.split(',') {
            stream.send(word.as_bytes())?;
        }
        stream.close_send()?;
        if header(http, "x-hand-over")? == "1" {
            let to_reader = self.to_reader.clone();
            return Ok(http.spawn(async move {
                let _ = to_reader.unbounded_send(stream);
                std::future::pending::<()>().await;
                Ok(Outcome::Continue)
            }));
        }
        Ok(http.spawn(async move {
            let mut body = String::new();
            while let Some(message) = stream.next().await {
                match message {
                    Ok(message) => {
                        body.push_str(&String::from_utf8_lossy(&message));
                        body.push('\n');
                    }
                    Err(error) => {
                        return Ok(Outcome::Respond(
                            LocalResponse::new(502).body(format!("{body}{error}\n")),
                        ))
                    }
                }
            }
            let trailer = stream
                .trailing_metadata()
                .unwrap_or_default()
                .into_iter()
                .find(|(name, _)| name == "t1")
                .map(|(_, value)| String::from_utf8_lossy(value.as_bytes()).into_owned())
                .unwrap_or_default();
            body.push_str(&format!("trailer t1={trailer}\n"));
            Ok(Outcome::Respond(LocalResponse::new(200).body(body)))
        }))
    }
}

pwf::main!(Streamer);
