//! A local stand-in for httpbin: the upstream behind the Envoy configs, the e2e tests and the
//! benchmarks, so none of them needs the internet.
//!
//! It speaks HTTP/1.1 with keep-alive, one thread per connection, and answers:
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
//! Anything else is `404`; an unparsable request gets `400` and the connection closes.
//!
//! ```no_run
//! let upstream = envoy_upstream::Upstream::start()?;
//! println!("httpbin stand-in on 127.0.0.1:{}", upstream.port());
//! # Ok::<(), std::io::Error>(())
//! ```

mod http;
mod routes;

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::http::ReadError;
use crate::routes::Reply;

/// How many recent requests [`Upstream::requests`] keeps.
const RECENT: usize = 256;
/// How much of each recent request's body is kept.
const RECENT_BODY: usize = 64 * 1024;

/// A running upstream server; it stops when dropped.
#[derive(Debug)]
pub struct Upstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

/// A request the upstream received, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// The method (`GET`).
    pub method: String,
    /// The request target: path and query (`/anything?a=1`).
    pub target: String,
    /// The headers in arrival order, names as sent.
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
    stop: AtomicBool,
    count: AtomicU64,
    next_conn: AtomicU64,
    recent: Mutex<VecDeque<SeenRequest>>,
    conns: Mutex<HashMap<u64, TcpStream>>,
}

impl Upstream {
    /// Starts serving on `127.0.0.1` on a free port.
    pub fn start() -> io::Result<Upstream> {
        Upstream::bind((Ipv4Addr::LOCALHOST, 0))
    }

    /// Starts serving on `addr`.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Upstream> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("upstream-accept".to_owned())
                .spawn(move || accept_loop(&listener, &shared))?
        };
        Ok(Upstream {
            addr,
            shared,
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

    /// How many requests have been received (parsed in full) so far.
    pub fn request_count(&self) -> u64 {
        self.shared.count.load(Ordering::SeqCst)
    }

    /// How many connections have been accepted so far.
    pub fn connection_count(&self) -> u64 {
        self.shared.next_conn.load(Ordering::SeqCst)
    }

    /// The most recent requests (up to 256), oldest first.
    pub fn requests(&self) -> Vec<SeenRequest> {
        lock(&self.shared.recent).iter().cloned().collect()
    }

    /// Serves until the process ends.
    pub fn wait(mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor with one last connection.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for conn in lock(&self.shared.conns).values() {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(_) => {
                // Out of file descriptors or similar: back off instead of spinning.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let id = shared.next_conn.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.conns).insert(id, clone);
        }
        let conn_shared = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name("upstream-conn".to_owned())
            .stack_size(256 * 1024)
            .spawn(move || {
                serve(stream, &conn_shared);
                lock(&conn_shared.conns).remove(&id);
            });
        if spawned.is_err() {
            lock(&shared.conns).remove(&id);
        }
    }
}

fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(16 * 1024, read_half);
    let mut writer = stream;
    loop {
        let req = http::read_request(&mut reader, |req| match req.header("expect") {
            Some(e) if e.eq_ignore_ascii_case("100-continue") => {
                writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            }
            _ => Ok(()),
        });
        let req = match req {
            Ok(req) => req,
            Err(ReadError::Closed | ReadError::Io) => return,
            Err(ReadError::Malformed(why)) => {
                let body = format!("bad request: {why}\n");
                let _ = http::write_response(&mut writer, false, 400, &[], body.as_bytes(), false);
                return;
            }
        };
        shared.count.fetch_add(1, Ordering::SeqCst);
        {
            let mut recent = lock(&shared.recent);
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
        let keep_alive = req.keep_alive();
        let head_only = req.method.eq_ignore_ascii_case("HEAD");
        match routes::route(&req) {
            Reply::Full {
                status,
                headers,
                body,
            } => {
                if http::write_response(&mut writer, head_only, status, &headers, &body, keep_alive)
                    .is_err()
                    || !keep_alive
                {
                    return;
                }
            }
            Reply::Hang => {
                hang(reader.get_mut(), shared);
                return;
            }
            Reply::CloseMidBody => {
                let _ = writer.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 1000\r\n\r\npartial body, then the connection closes",
                );
                let _ = writer.flush();
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
            Reply::Drop => {
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// Holds the connection open, discarding input, until the peer closes or the server stops.
fn hang(stream: &mut TcpStream, shared: &Shared) {
    if stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .is_err()
    {
        return;
    }
    let mut buf = [0u8; 4096];
    while !shared.stop.load(Ordering::SeqCst) {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}
