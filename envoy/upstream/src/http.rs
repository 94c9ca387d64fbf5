//! The HTTP/1.1 wire format, as much of it as the upstream needs.

use std::io::{self, BufRead, Read, Write};

/// Longest request line or header line accepted.
const MAX_LINE: usize = 64 * 1024;
/// Most header lines accepted in one request.
const MAX_HEADERS: usize = 256;
/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// The method, as sent (`GET`).
    pub(crate) method: String,
    /// The request target, as sent (`/anything?a=1`).
    pub(crate) target: String,
    /// The protocol version, as sent (`HTTP/1.1`).
    pub(crate) version: String,
    /// The headers in arrival order, names as sent.
    pub(crate) headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub(crate) body: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path part of the target (before `?`).
    pub(crate) fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The decoded query parameters, in order.
    pub(crate) fn query(&self) -> Vec<(String, String)> {
        match self.target.split_once('?') {
            Some((_, q)) => parse_query(q),
            None => Vec::new(),
        }
    }

    /// Whether the client asked to keep the connection open after this request.
    pub(crate) fn keep_alive(&self) -> bool {
        let connection = self.header("connection").unwrap_or("");
        let has = |token: &str| {
            connection
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        };
        if self.version.eq_ignore_ascii_case("HTTP/1.0") {
            has("keep-alive")
        } else {
            !has("close")
        }
    }
}

/// Why a request could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The connection closed cleanly before a new request started.
    Closed,
    /// The bytes are not a request this server understands; answer 400.
    Malformed(&'static str),
    /// The socket failed, or closed mid-request.
    Io,
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Io
    }
}

/// Reads one line ending in `\n`, without the line ending; `None` at a clean end of stream.
fn read_line(r: &mut impl BufRead) -> Result<Option<String>, ReadError> {
    let mut buf = Vec::new();
    let n = r.take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(if buf.len() > MAX_LINE {
            ReadError::Malformed("line too long")
        } else {
            ReadError::Io
        });
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| ReadError::Malformed("line is not UTF-8"))
}

/// Reads the request line and headers, then calls `before_body` (to answer `Expect:
/// 100-continue`), then reads the body.
pub(crate) fn read_request(
    r: &mut impl BufRead,
    before_body: impl FnOnce(&Request) -> io::Result<()>,
) -> Result<Request, ReadError> {
    let mut line = match read_line(r)? {
        Some(l) => l,
        None => return Err(ReadError::Closed),
    };
    // Tolerate empty lines between requests (RFC 9112 section 2.2).
    while line.is_empty() {
        line = match read_line(r)? {
            Some(l) => l,
            None => return Err(ReadError::Closed),
        };
    }
    let mut parts = line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && t.starts_with('/') => {
            (m.to_owned(), t.to_owned(), v.to_owned())
        }
        _ => return Err(ReadError::Malformed("bad request line")),
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Malformed("unsupported HTTP version"));
    }
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?.ok_or(ReadError::Malformed("headers cut off"))?;
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(ReadError::Malformed("too many headers"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(ReadError::Malformed("header without a colon"))?;
        if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace()) {
            return Err(ReadError::Malformed("bad header name"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let mut req = Request {
        method,
        target,
        version,
        headers,
        body: Vec::new(),
    };
    before_body(&req)?;
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        req.body = read_chunked(r)?;
    } else if let Some(len) = req.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| ReadError::Malformed("bad content-length"))?;
        if len > MAX_BODY {
            return Err(ReadError::Malformed("body too large"));
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        req.body = body;
    }
    Ok(req)
}

/// Reads a chunked body and its trailers.
fn read_chunked(r: &mut impl BufRead) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r)?.ok_or(ReadError::Malformed("chunked body cut off"))?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size, 16).map_err(|_| ReadError::Malformed("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(r)?
                .ok_or(ReadError::Malformed("trailers cut off"))?
                .is_empty()
            {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(ReadError::Malformed("body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        let end = read_line(r)?.ok_or(ReadError::Malformed("chunk cut off"))?;
        if !end.is_empty() {
            return Err(ReadError::Malformed("chunk longer than its size"));
        }
    }
}

/// Decodes `a=1&b=x%20y` into pairs; `+` is a space.
pub(crate) fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+`; invalid escapes are kept as written.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The reason phrase of a status code.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        418 => "I'm a teapot",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// Writes a full response with a `content-length`; the body is left out for `HEAD` and for
/// statuses that have none.
pub(crate) fn write_response(
    w: &mut impl Write,
    head_only: bool,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    keep_alive: bool,
) -> io::Result<()> {
    let no_body = head_only || status == 204 || status == 304 || (100..200).contains(&status);
    let mut out = Vec::with_capacity(128 + body.len());
    write!(out, "HTTP/1.1 {status} {}\r\n", reason(status))?;
    for (n, v) in headers {
        write!(out, "{n}: {v}\r\n")?;
    }
    if status != 204 && status != 304 && !(100..200).contains(&status) {
        write!(out, "content-length: {}\r\n", body.len())?;
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !no_body {
        out.extend_from_slice(body);
    }
    w.write_all(&out)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Request, ReadError> {
        read_request(&mut raw.as_bytes(), |_| Ok(()))
    }

    #[test]
    fn read_request_reads_content_length_body() {
        let req = parse("POST /anything?a=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            .unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.path(), "/anything");
        assert_eq!(req.query(), vec![("a".to_owned(), "1".to_owned())]);
        assert_eq!(req.header("host"), Some("x"));
        assert_eq!(req.body, b"hello");
        assert!(req.keep_alive());
    }

    #[test]
    fn read_request_dechunks_body() {
        let req = parse(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n",
        )
        .unwrap();
        assert_eq!(req.body, b"abcde");
    }

    #[test]
    fn read_request_rejects_garbage() {
        assert!(matches!(
            parse("hello\r\n\r\n"),
            Err(ReadError::Malformed(_))
        ));
        assert!(matches!(
            parse("GET / HTTP/1.1\r\nno colon\r\n\r\n"),
            Err(ReadError::Malformed(_))
        ));
        assert!(matches!(
            parse("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            Err(ReadError::Malformed(_))
        ));
        assert!(matches!(parse(""), Err(ReadError::Closed)));
    }

    #[test]
    fn keep_alive_follows_version_and_connection_header() {
        let req = parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        assert!(!req.keep_alive());
        let req = parse("GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!req.keep_alive());
        let req = parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap();
        assert!(req.keep_alive());
    }

    #[test]
    fn percent_decode_decodes_escapes_and_keeps_bad_ones() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("%7B%22k%22%7D"), "{\"k\"}");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn write_response_omits_body_for_head() {
        let mut out = Vec::new();
        write_response(&mut out, true, 200, &[], b"abc", true).unwrap();
        assert_eq!(out, b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n");
    }
}
