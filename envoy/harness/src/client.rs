//! A blocking HTTP/1.1 client for assertions: one request at a time over a keep-alive
//! connection, plus [`load`] to fire many requests over parallel connections. It is hyper's
//! client on a single-threaded tokio runtime of its own.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_LENGTH, HOST};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::{Error, Result};

/// How long a client waits for a connection or a response unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method (`GET`).
    pub method: String,
    /// The request target: path and query (`/anything?a=1`).
    pub path: String,
    /// Headers to send, in order; a `host` header is added when none is given.
    pub headers: Vec<(String, String)>,
    /// The body; sent with a `content-length` when not empty.
    pub body: Vec<u8>,
}

/// Bodies longer than this are not spelled out in [`Request::curl`].
const MAX_SHOWN_BODY: usize = 200;

impl Request {
    /// A request with `method` for `path`.
    pub fn new(method: &str, path: &str) -> Request {
        Request {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `GET path`.
    pub fn get(path: &str) -> Request {
        Request::new("GET", path)
    }

    /// `POST path` with `body`.
    pub fn post(path: &str, body: impl Into<Vec<u8>>) -> Request {
        Request::new("POST", path).body(body)
    }

    /// Adds a header (repeat for a multi-valued header).
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// The `curl` command line that sends this request to `localhost:port`, as shown in
    /// docs and in `cargo xtask demo`.
    pub fn curl(&self, port: u16) -> String {
        let mut line = format!(
            "curl -si {}",
            shell_quote(&format!("localhost:{port}{}", self.path))
        );
        let method_implied = if self.body.is_empty() { "GET" } else { "POST" };
        if self.method != method_implied {
            line.push_str(&format!(" -X {}", self.method));
        }
        for (name, value) in &self.headers {
            line.push_str(&format!(" -H {}", shell_quote(&format!("{name}: {value}"))));
        }
        if self.body.len() > MAX_SHOWN_BODY {
            // A long body is shown as a command that makes one of the same size.
            line = format!(
                "head -c {} /dev/zero | tr '\\0' x | {line} --data-binary @-",
                self.body.len()
            );
        } else if !self.body.is_empty() {
            line.push_str(&format!(
                " --data-raw {}",
                shell_quote(&String::from_utf8_lossy(&self.body))
            ));
        }
        line
    }

    /// The request as hyper sends it to `addr`.
    fn to_http(&self, addr: SocketAddr) -> Result<hyper::Request<Full<Bytes>>, String> {
        let has = |name: &str| {
            self.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        let mut http = hyper::Request::builder()
            .method(self.method.as_str())
            .uri(self.path.as_str());
        if !has("host") {
            http = http.header(HOST, format!("localhost:{}", addr.port()));
        }
        for (name, value) in &self.headers {
            http = http.header(name.as_str(), value.as_str());
        }
        if !has("content-length")
            && (!self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH"))
        {
            http = http.header(CONTENT_LENGTH, self.body.len());
        }
        http.body(Full::new(Bytes::copy_from_slice(&self.body)))
            .map_err(|e| format!("cannot be sent: {e}"))
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@%+".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// An HTTP response as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The headers, names in lowercase, grouped by name in order of first arrival; each
    /// name's values in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::new(format!(
                "response body is not JSON ({e}):\n{}",
                crate::envoy::tail(&self.text(), 20)
            ))
        })
    }
}

/// The response as `curl -si` shows it.
impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "HTTP/1.1 {} {}", self.status, self.reason)?;
        for (name, value) in &self.headers {
            writeln!(f, "{name}: {value}")?;
        }
        writeln!(f)?;
        let text = self.text();
        f.write_str(&text)?;
        if !text.is_empty() && !text.ends_with('\n') {
            writeln!(f)?;
        }
        Ok(())
    }
}

/// A client bound to one address, reusing its connection while the server keeps it open.
///
/// It blocks like `std::net`, on a tokio runtime of its own: do not call it from inside
/// another tokio runtime.
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    timeout: Duration,
    conn: Option<Connection>,
    /// Made on the first request.
    runtime: Option<Runtime>,
}

/// An open keep-alive connection.
#[derive(Debug)]
struct Connection {
    sender: SendRequest<Full<Bytes>>,
    /// The task that reads and writes the socket; it is stopped (and the socket closed)
    /// when the connection is dropped.
    task: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// A client for `127.0.0.1:port`.
    pub fn new(port: u16) -> Client {
        Client::to((Ipv4Addr::LOCALHOST, port).into())
    }

    /// A client for `addr`.
    pub fn to(addr: SocketAddr) -> Client {
        Client {
            addr,
            timeout: DEFAULT_TIMEOUT,
            conn: None,
            runtime: None,
        }
    }

    /// Sets how long one request may take, from the connect to the last byte of the
    /// response (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// The address requests go to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `GET path`.
    pub fn get(&mut self, path: &str) -> Result<Response> {
        self.send(&Request::get(path))
    }

    /// Sends `req` and reads the response. A connection the server closed while idle is
    /// replaced once; any other failure (including a timeout) is an error, and closes the
    /// connection.
    pub fn send(&mut self, req: &Request) -> Result<Response> {
        let reused = self.conn.is_some();
        match self.exchange(req) {
            Err(Failure::Idle(_)) if reused => {
                self.conn = None;
                self.exchange(req)
            }
            other => other,
        }
        .map_err(|f| {
            self.conn = None;
            let e = match f {
                Failure::Idle(e) | Failure::Other(e) => e,
            };
            Error::new(format!("{} {} to {}: {e}", req.method, req.path, self.addr))
        })
    }

    fn exchange(&mut self, req: &Request) -> Result<Response, Failure> {
        let request = req.to_http(self.addr).map_err(Failure::Other)?;
        let runtime = match &mut self.runtime {
            Some(runtime) => runtime,
            slot @ None => slot.insert(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Failure::Other(format!("cannot start a runtime: {e}")))?,
            ),
        };
        let timeout = self.timeout;
        let exchange = exchange(&mut self.conn, self.addr, request);
        runtime.block_on(async {
            tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or_else(|_| {
                    Err(Failure::Other(format!(
                        "timed out after {timeout:?} waiting for the response"
                    )))
                })
        })
    }
}

/// Sends `request` over `conn`, connecting to `addr` first when there is none, and reads
/// the whole response.
async fn exchange(
    conn: &mut Option<Connection>,
    addr: SocketAddr,
    request: hyper::Request<Full<Bytes>>,
) -> Result<Response, Failure> {
    let conn = match conn {
        Some(conn) => conn,
        None => conn.insert(connect(addr).await?),
    };
    conn.sender
        .ready()
        .await
        .map_err(|e| Failure::Idle(format!("the connection closed: {e}")))?;
    let response = conn.sender.send_request(request).await.map_err(|e| {
        if e.is_parse() {
            Failure::Other(format!("not an HTTP/1 response: {e}"))
        } else if e.is_incomplete_message() {
            Failure::Idle("the connection closed without a response".to_owned())
        } else {
            Failure::Idle(format!("sending the request: {e}"))
        }
    })?;
    let (head, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| {
        Failure::Other(match head.headers.get(CONTENT_LENGTH) {
            Some(len) => format!(
                "reading a {}-byte body: {e}",
                String::from_utf8_lossy(len.as_bytes())
            ),
            None => format!("reading the body: {e}"),
        })
    })?;
    let reason = match head.extensions.get::<hyper::ext::ReasonPhrase>() {
        Some(reason) => String::from_utf8_lossy(reason.as_bytes()).into_owned(),
        None => head.status.canonical_reason().unwrap_or("").to_owned(),
    };
    Ok(Response {
        status: head.status.as_u16(),
        reason,
        headers: head
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
        body: body.to_bytes().to_vec(),
    })
}

/// Opens a connection to `addr` and starts the task that drives it.
async fn connect(addr: SocketAddr) -> Result<Connection, Failure> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| Failure::Other(format!("cannot connect: {e}")))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Failure::Other(format!("cannot start HTTP/1.1: {e}")))?;
    let task = tokio::spawn(async move {
        // How the connection ended shows in the exchange that was using it.
        let _ = connection.await;
    });
    Ok(Connection { sender, task })
}

/// Why an exchange failed: `Idle` when nothing at all came back (a closed keep-alive
/// connection, worth one retry), `Other` for everything else.
enum Failure {
    Idle(String),
    Other(String),
}

/// The outcome of [`load`].
#[derive(Debug)]
pub struct Load {
    /// Every response (or error), in completion order.
    pub responses: Vec<Result<Response>>,
    /// Wall time from the first request to the last response.
    pub elapsed: Duration,
}

impl Load {
    /// How many responses had each status.
    pub fn status_counts(&self) -> BTreeMap<u16, usize> {
        let mut counts = BTreeMap::new();
        for resp in self.responses.iter().flatten() {
            *counts.entry(resp.status).or_insert(0) += 1;
        }
        counts
    }

    /// The requests that got no response, with why.
    pub fn errors(&self) -> Vec<&Error> {
        self.responses
            .iter()
            .filter_map(|r| r.as_ref().err())
            .collect()
    }

    /// A one-line summary: `2000 requests over 16 connections in 0.41 s: 200 x2000`.
    pub fn summary(&self, connections: usize) -> String {
        let mut s = format!(
            "{} requests over {connections} connections in {:.2} s:",
            self.responses.len(),
            self.elapsed.as_secs_f64()
        );
        for (status, n) in self.status_counts() {
            s.push_str(&format!(" {status} x{n}"));
        }
        let errors = self.errors();
        if !errors.is_empty() {
            s.push_str(&format!(" errors x{} (first: {})", errors.len(), errors[0]));
        }
        s
    }
}

/// Sends `req` `total` times to `127.0.0.1:port` over `connections` parallel keep-alive
/// connections and collects every response.
pub fn load(port: u16, req: &Request, total: usize, connections: usize) -> Load {
    let next = AtomicUsize::new(0);
    let responses = Mutex::new(Vec::with_capacity(total));
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..connections.max(1) {
            s.spawn(|| {
                let mut client = Client::new(port);
                let mut mine = Vec::new();
                while next.fetch_add(1, Ordering::SeqCst) < total {
                    mine.push(client.send(req));
                }
                responses
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend(mine);
            });
        }
    });
    Load {
        responses: responses
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
        elapsed: start.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_shows_method_headers_and_body_only_when_needed() {
        assert_eq!(Request::get("/x").curl(18000), "curl -si localhost:18000/x");
        assert_eq!(
            Request::post("/x", "it's").header("x-a", "1 2").curl(1),
            "curl -si localhost:1/x -H 'x-a: 1 2' --data-raw 'it'\\''s'"
        );
        assert_eq!(
            Request::new("DELETE", "/x").curl(1),
            "curl -si localhost:1/x -X DELETE"
        );
        assert_eq!(
            Request::get("/a?b=1&c=%7B").curl(1),
            "curl -si 'localhost:1/a?b=1&c=%7B'"
        );
    }

    #[test]
    fn response_display_looks_like_curl() {
        let resp = Response {
            status: 200,
            reason: "OK".to_owned(),
            headers: vec![("x-a".to_owned(), "1".to_owned())],
            body: b"hi".to_vec(),
        };
        assert_eq!(resp.to_string(), "HTTP/1.1 200 OK\nx-a: 1\n\nhi\n");
    }
}
