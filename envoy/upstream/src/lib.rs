//! A local stand-in for httpbin: the upstream behind the Envoy configs, the e2e tests and the
//! benchmarks, so none of them needs the internet.
//!
//! It speaks HTTP/1.1 with keep-alive (`hyper`, on a `tokio` runtime of its own with a
//! worker per CPU this process may use), and answers:
//!
//! | Path | Answer |
//! |------|--------|
//! | `/` | `200`, a short text body |
//! | `/uuid` | `200`, JSON `{"uuid": "<random v4>"}` |
//! | `/status/{code}` | `{code}` (200..=599), empty body |
//! | `/delay/{seconds}` | after `seconds` (fractional, at most 10), the `/anything` echo |
//! | `/anything`, `/anything/*` | `200`, JSON echo: `method`, `url`, `path`, `args`, `headers`, `data` (body as text), `json` (body parsed, or null); a key seen twice maps to an array |
//! | `/body?b=...&status=...&content_type=...` | exactly the body `b` (decoded), status 200 unless given |
//! | `/bytes/{n}` | `n` bytes of `abc...z` |
//! | `/response-headers?k=v&...` | each pair as a response header, and as a JSON body |
//! | `/hang` | nothing, ever: the connection stays open until the client or the server leaves |
//! | `/close` | the head and part of the body, then the connection closes |
//! | `/drop` | the connection closes before any answer |
//!
//! Anything else is `404`; a body over 64 MiB gets `413`; an unparsable request gets `400`
//! and the connection closes.
//!
//! ```no_run
//! let upstream = envoy_upstream::Upstream::start()?;
//! println!("httpbin stand-in on 127.0.0.1:{}", upstream.port());
//! # Ok::<(), std::io::Error>(())
//! ```

mod routes;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::stream;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::routes::{Reply, Request};

/// How many recent requests [`Upstream::requests`] keeps.
const RECENT: usize = 256;
/// How much of each recent request's body is kept.
const RECENT_BODY: usize = 64 * 1024;
/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024 * 1024;
/// Most headers accepted in one request.
const MAX_HEADERS: usize = 256;
/// What `/close` sends of its announced 1000-byte body before it closes the connection.
const PARTIAL_BODY: &[u8] = b"partial body, then the connection closes";

/// A running upstream server; it stops when dropped, and closes every connection.
#[derive(Debug)]
pub struct Upstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Present until the upstream stops; dropping it ends every connection.
    runtime: Option<Runtime>,
    acceptor: Option<JoinHandle<()>>,
}

/// A request the upstream received, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// The method (`GET`).
    pub method: String,
    /// The request target: path and query (`/anything?a=1`).
    pub target: String,
    /// The headers, names in lowercase, each name's values in the order sent.
    pub headers: Vec<(String, String)>,
    /// The body (at most its first 64 KiB).
    pub body: Vec<u8>,
}

impl SeenRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct Shared {
    requests: AtomicU64,
    connections: AtomicU64,
    /// Requests received and not yet answered (a `/delay` sleeping, a `/hang`).
    in_flight: AtomicU64,
    /// The most `in_flight` has been.
    peak_in_flight: AtomicU64,
    recent: Mutex<VecDeque<SeenRequest>>,
}

/// Counts a request in flight while it lives: a request whose connection closes mid-answer
/// (a `/hang`) is dropped, and counted out, too.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    fn record(&self, req: &Request) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(SeenRequest {
            method: req.method.clone(),
            target: req.target.clone(),
            headers: req.headers.clone(),
            body: req.body[..req.body.len().min(RECENT_BODY)].to_vec(),
        });
    }
}

impl Upstream {
    /// Starts serving on `127.0.0.1` on a free port.
    pub fn start() -> io::Result<Upstream> {
        Upstream::bind((Ipv4Addr::LOCALHOST, 0))
    }

    /// Starts serving on `addr`.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Upstream> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("upstream")
            .build()?;
        let listener = {
            let _context = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let shared = Arc::new(Shared::default());
        let acceptor = runtime.spawn(accept(listener, Arc::clone(&shared)));
        Ok(Upstream {
            addr,
            shared,
            runtime: Some(runtime),
            acceptor: Some(acceptor),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many requests have been received (read in full) so far.
    pub fn request_count(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// The most requests that were being answered at once so far: received in full, and
    /// their answer not yet begun. Five `/delay/0.3` calls sent together make it 5; sent one
    /// after the other, 1.
    pub fn peak_in_flight(&self) -> u64 {
        self.shared.peak_in_flight.load(Ordering::SeqCst)
    }

    /// How many connections have been accepted so far.
    pub fn connection_count(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// The most recent requests (up to 256), oldest first.
    pub fn requests(&self) -> Vec<SeenRequest> {
        let recent = self.shared.recent.lock();
        let recent = recent.unwrap_or_else(PoisonError::into_inner);
        recent.iter().cloned().collect()
    }

    /// Serves until the process ends.
    pub fn wait(mut self) {
        if let (Some(runtime), Some(acceptor)) = (&self.runtime, self.acceptor.take()) {
            let _ = runtime.block_on(acceptor);
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        // Shutting the runtime down drops every task: the listener and every connection,
        // including those held open by `/hang`.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = service_fn(move |req| serve(req, Arc::clone(&shared)));
            // A connection ends in an error when the client goes away or `/drop` asks for
            // it: nothing to report either way.
            let _ = http1::Builder::new()
                .max_headers(MAX_HEADERS)
                // The answers carry only the headers the routes give (and `content-length`),
                // so that what Envoy adds to them shows as in the docs.
                .auto_date_header(false)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The body of every response: a full body, or one that fails part way (`/close`).
type Body = BoxBody<Bytes, io::Error>;

/// Answers one request. An error closes the connection without an answer.
async fn serve(
    req: hyper::Request<Incoming>,
    shared: Arc<Shared>,
) -> io::Result<hyper::Response<Body>> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Ok(response(413, &[], Bytes::from_static(b"body too large\n")))
        }
        // The client went away mid-body.
        Err(e) => return Err(io::Error::other(e)),
    };
    let req = Request {
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map_or("/", |target| target.as_str())
            .to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
        body: body.to_vec(),
    };
    shared.record(&req);
    let reply = {
        let _in_flight = InFlight::enter(&shared);
        routes::route(&req).await
    };
    match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => Ok(response(status, &headers, body.into())),
        Reply::CloseMidBody => {
            // The head announces 1000 bytes; the body fails after a few, and hyper closes
            // the connection. The failure waits for one turn of the runtime, so that hyper
            // sends what it has first.
            let partial = stream::iter([Ok(Frame::data(Bytes::from_static(PARTIAL_BODY)))]);
            let failure = stream::once(async {
                tokio::task::yield_now().await;
                Err(io::Error::other("/close closes mid-body"))
            });
            let frames = futures::StreamExt::chain(partial, failure);
            let mut resp = hyper::Response::new(StreamBody::new(frames).boxed());
            let headers = resp.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            headers.insert(CONTENT_LENGTH, HeaderValue::from(1000));
            Ok(resp)
        }
        Reply::Drop => Err(io::Error::other("/drop closes without an answer")),
    }
}

/// A response with a full body; hyper adds its `content-length`.
fn response(status: u16, headers: &[(String, String)], body: Bytes) -> hyper::Response<Body> {
    let mut resp = hyper::Response::new(
        Full::new(body)
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    // The routes only give statuses in 200..=599.
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in headers {
        // The routes only give valid names and values.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            resp.headers_mut().append(name, value);
        }
    }
    resp
}
