//! A small HTTP/1.1 client for assertions: one request at a time over a keep-alive
//! connection, plus [`load`] to fire many requests over parallel connections.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
        if !self.body.is_empty() {
            line.push_str(&format!(
                " --data-raw {}",
                shell_quote(&String::from_utf8_lossy(&self.body))
            ));
        }
        line
    }

    fn write_to(&self, out: &mut impl Write, addr: SocketAddr) -> std::io::Result<()> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        if !self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("host"))
        {
            head.push_str(&format!("host: localhost:{}\r\n", addr.port()));
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let has_length = self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
        if !has_length
            && (!self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH"))
        {
            head.push_str(&format!("content-length: {}\r\n", self.body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        out.write_all(&bytes)?;
        out.flush()
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
    /// The headers in arrival order, names as received (Envoy sends them lowercase).
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
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    timeout: Duration,
    conn: Option<BufReader<TcpStream>>,
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
        }
    }

    /// Sets the connect and read timeout (default 30 s).
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
    /// replaced once; any other failure (including a timeout) is an error.
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
        if self.conn.is_none() {
            let stream = TcpStream::connect_timeout(&self.addr, self.timeout)
                .map_err(|e| Failure::Other(format!("cannot connect: {e}")))?;
            let _ = stream.set_nodelay(true);
            stream
                .set_read_timeout(Some(self.timeout))
                .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
                .map_err(|e| Failure::Other(e.to_string()))?;
            self.conn = Some(BufReader::new(stream));
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(Failure::Other("no connection".to_owned()));
        };
        req.write_to(conn.get_mut(), self.addr)
            .map_err(|e| Failure::Idle(format!("sending the request: {e}")))?;
        let head_only = req.method.eq_ignore_ascii_case("HEAD");
        let (resp, keep) = read_response(conn, head_only)?;
        if !keep {
            self.conn = None;
        }
        Ok(resp)
    }
}

/// Why an exchange failed: `Idle` when nothing at all came back (a closed keep-alive
/// connection, worth one retry), `Other` for everything else.
enum Failure {
    Idle(String),
    Other(String),
}

fn read_line(r: &mut impl BufRead) -> Result<String, Failure> {
    let mut buf = Vec::new();
    r.by_ref()
        .take(64 * 1024)
        .read_until(b'\n', &mut buf)
        .map_err(|e| Failure::Other(format!("reading the response: {e}")))?;
    if buf.last() != Some(&b'\n') {
        return Err(Failure::Other(if buf.is_empty() {
            "the connection closed before the response was complete".to_owned()
        } else {
            format!(
                "the connection closed mid-line: {:?}",
                String::from_utf8_lossy(&buf)
            )
        }));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Reads one response; also says whether the connection stays usable.
fn read_response(
    r: &mut BufReader<TcpStream>,
    head_only: bool,
) -> Result<(Response, bool), Failure> {
    loop {
        let mut first = Vec::new();
        let n = r.read_until(b'\n', &mut first).map_err(|e| {
            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
                Failure::Other("timed out waiting for the response".to_owned())
            } else {
                Failure::Idle(format!("reading the response: {e}"))
            }
        })?;
        if n == 0 {
            return Err(Failure::Idle(
                "the connection closed without a response".to_owned(),
            ));
        }
        let status_line = String::from_utf8_lossy(&first).trim_end().to_owned();
        let mut parts = status_line.splitn(3, ' ');
        let (version, code, reason) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
        let status: u16 = match (version, code.map(str::parse)) {
            (Some(v), Some(Ok(code))) if v.starts_with("HTTP/1.") => code,
            _ => {
                return Err(Failure::Other(format!(
                    "not an HTTP/1 status line: {status_line:?}"
                )))
            }
        };
        let http10 = version == Some("HTTP/1.0");
        let mut headers = Vec::new();
        loop {
            let line = read_line(r)?;
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(Failure::Other(format!("bad header line: {line:?}")));
            };
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        if (100..200).contains(&status) {
            continue; // interim response
        }
        let mut resp = Response {
            status,
            reason: reason.to_owned(),
            headers,
            body: Vec::new(),
        };
        let connection = resp.header("connection").unwrap_or("").to_ascii_lowercase();
        let mut keep = if http10 {
            connection.contains("keep-alive")
        } else {
            !connection.contains("close")
        };
        let chunked = resp
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        if head_only || status == 204 || status == 304 {
            // No body.
        } else if chunked {
            resp.body = read_chunked(r)?;
        } else if let Some(len) = resp.header("content-length") {
            let len: usize = len
                .trim()
                .parse()
                .map_err(|_| Failure::Other(format!("bad content-length {len:?}")))?;
            let mut body = vec![0; len];
            r.read_exact(&mut body)
                .map_err(|e| Failure::Other(format!("reading a {len}-byte body: {e}")))?;
            resp.body = body;
        } else {
            r.read_to_end(&mut resp.body)
                .map_err(|e| Failure::Other(format!("reading the body: {e}")))?;
            keep = false;
        }
        return Ok((resp, keep));
    }
}

fn read_chunked(r: &mut impl BufRead) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| Failure::Other(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            while !read_line(r)?.is_empty() {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])
            .map_err(|e| Failure::Other(format!("reading a chunk: {e}")))?;
        read_line(r)?;
    }
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
