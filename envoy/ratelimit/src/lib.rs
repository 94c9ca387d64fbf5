//! A local gRPC server for the e2e tests: Envoy's rate limit service
//! (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`) with a real in-memory
//! counter, and an echo service for measuring how Envoy carries gRPC calls and streams.
//!
//! It speaks gRPC over cleartext HTTP/2 (prior knowledge, as Envoy's `envoy_grpc` client
//! does with `http2_protocol_options`), one thread, in process. The methods:
//!
//! | Method | Answer |
//! |--------|--------|
//! | `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit` | counts `hits_addend` (0 means 1) on each descriptor (`domain` and its entries); `OVER_LIMIT` once a count passes the limit ([`RateLimitServer::set_limit`]), with `x-ratelimit-limit` and `x-ratelimit-remaining` in `response_headers_to_add` |
//! | `pwf.test.Echo/Unary` | the request message |
//! | `pwf.test.Echo/Stream` | each message as it arrives; `OK` when the client half-closes |
//!
//! Anything else is `UNIMPLEMENTED` (12). What every method does can be changed for all calls
//! ([`RateLimitServer::set_behaviour`]) or for one, by its request metadata:
//!
//! | Metadata | Effect |
//! |----------|--------|
//! | `x-test-delay-ms: n` | answer after `n` ms |
//! | `x-test-hang: 1` | never answer (until the client resets the stream) |
//! | `x-test-status: code`, `x-test-message: text` | end with that status and message, no message |
//! | `x-test-trailer: name=value` | add that trailing metadata |
//! | `x-test-header: name=value` | add that initial (response header) metadata |
//!
//! ```no_run
//! let server = envoy_ratelimit::RateLimitServer::start()?;
//! server.set_limit(3);
//! println!("rate limit service on 127.0.0.1:{}", server.port());
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use h2::server::SendResponse;
use h2::RecvStream;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use prost::Message;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

// The messages as Envoy's own API generates them (`envoy-types`), not the hand-written ones of
// `examples/global_rate_limit`: the e2e tests then hold the plugin's field numbers against the
// real `rls.proto`, instead of against a copy of themselves.
use envoy_types::pb::envoy::config::core::v3::HeaderValue as ProtoHeader;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    rate_limit::Unit, Code, DescriptorStatus, RateLimit,
};
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};

/// The full path of the rate limit method.
pub const SHOULD_RATE_LIMIT: &str = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";
/// The full path of the unary echo method.
pub const ECHO_UNARY: &str = "/pwf.test.Echo/Unary";
/// The full path of the streaming echo method.
pub const ECHO_STREAM: &str = "/pwf.test.Echo/Stream";

/// What the server does with every call (request metadata can still override it per call).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Behaviour {
    /// Answer normally.
    #[default]
    Answer,
    /// Answer normally, after this long.
    Delay(Duration),
    /// End every call with this gRPC status and message.
    Fail {
        /// The gRPC status code (14 is `UNAVAILABLE`).
        code: u32,
        /// The status message.
        message: String,
    },
    /// Never answer; the call stays open until the client resets it.
    Hang,
}

/// A call the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenCall {
    /// The path (`/package.Service/Method`).
    pub path: String,
    /// The request metadata (HTTP/2 headers), names lowercase, in arrival order.
    pub metadata: Vec<(String, String)>,
    /// The first request message (without the 5-byte gRPC prefix), empty if none came.
    pub message: Vec<u8>,
}

impl SeenCall {
    /// The first value of metadata `name`.
    pub fn metadata(&self, name: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct State {
    limit: u32,
    behaviour: Behaviour,
    counts: HashMap<String, u64>,
    seen: Vec<SeenCall>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    in_flight: AtomicUsize,
    reset_by_client: AtomicU64,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running gRPC server; it stops when dropped.
#[derive(Debug)]
pub struct RateLimitServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RateLimitServer {
    /// Starts a server on a free port of 127.0.0.1, with a limit of 10 hits per descriptor.
    pub fn start() -> io::Result<RateLimitServer> {
        RateLimitServer::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    /// Starts a server on `addr` (port 0 picks a free one).
    pub fn start_on(addr: SocketAddr) -> io::Result<RateLimitServer> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                limit: 10,
                ..State::default()
            }),
            ..Shared::default()
        });
        let (stop, stopped) = oneshot::channel();
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("ratelimit-server".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(std_listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = accept_loop(listener, for_thread) => {}
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(RateLimitServer {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many hits each descriptor may count before it is over the limit.
    pub fn set_limit(&self, limit: u32) {
        self.shared.state().limit = limit;
    }

    /// What every call gets from now on.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.shared.state().behaviour = behaviour;
    }

    /// Forgets every count.
    pub fn reset_counts(&self) {
        self.shared.state().counts.clear();
    }

    /// The count of the descriptor whose key is `domain|key=value|key=value`.
    pub fn count(&self, key: &str) -> u64 {
        self.shared.state().counts.get(key).copied().unwrap_or(0)
    }

    /// Every call received so far, in order.
    pub fn calls(&self) -> Vec<SeenCall> {
        self.shared.state().seen.clone()
    }

    /// The calls being served right now (received, not yet answered nor reset).
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// How many calls the client reset (cancelled) before they were answered.
    pub fn reset_by_client(&self) -> u64 {
        self.shared.reset_by_client.load(Ordering::SeqCst)
    }
}

impl Drop for RateLimitServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let _ = socket.set_nodelay(true);
        tokio::spawn(serve_connection(socket, Arc::clone(&shared)));
    }
}

async fn serve_connection(socket: TcpStream, shared: Arc<Shared>) {
    let Ok(mut connection) = h2::server::handshake(socket).await else {
        return;
    };
    while let Some(Ok((request, respond))) = connection.accept().await {
        tokio::spawn(serve_call(request, respond, Arc::clone(&shared)));
    }
}

/// Counts a call as in flight while it lives.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn new(shared: &Arc<Shared>) -> InFlight {
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(shared))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What one call asked for through its metadata, over the server's behaviour.
#[derive(Debug, Default)]
struct Plan {
    delay: Option<Duration>,
    hang: bool,
    fail: Option<(u32, String)>,
    trailers: Vec<(String, String)>,
    headers: Vec<(String, String)>,
}

impl Plan {
    fn new(behaviour: &Behaviour, metadata: &[(String, String)]) -> Plan {
        let mut plan = Plan::default();
        match behaviour {
            Behaviour::Answer => {}
            Behaviour::Delay(d) => plan.delay = Some(*d),
            Behaviour::Fail { code, message } => plan.fail = Some((*code, message.clone())),
            Behaviour::Hang => plan.hang = true,
        }
        let get = |name: &str| {
            metadata
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        if let Some(ms) = get("x-test-delay-ms").and_then(|v| v.parse().ok()) {
            plan.delay = Some(Duration::from_millis(ms));
        }
        if get("x-test-hang").is_some() {
            plan.hang = true;
        }
        if let Some(code) = get("x-test-status").and_then(|v| v.parse().ok()) {
            plan.fail = Some((code, get("x-test-message").unwrap_or_default().to_owned()));
        }
        for (name, value) in metadata {
            let list = match name.as_str() {
                "x-test-trailer" => &mut plan.trailers,
                "x-test-header" => &mut plan.headers,
                _ => continue,
            };
            if let Some((k, v)) = value.split_once('=') {
                list.push((k.to_owned(), v.to_owned()));
            }
        }
        plan
    }
}

async fn serve_call(
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    shared: Arc<Shared>,
) {
    let _in_flight = InFlight::new(&shared);
    let (parts, mut body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let metadata: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let plan = Plan::new(&shared.state().behaviour, &metadata);

    if path == ECHO_STREAM && plan.fail.is_some() {
        // A stream refused at once: trailers-only, without waiting for the request's end.
        shared.state().seen.push(SeenCall {
            path,
            metadata,
            message: Vec::new(),
        });
        let (code, text) = plan.fail.clone().unwrap_or_default();
        let mut response = head(&plan.headers);
        response
            .headers_mut()
            .extend(status_trailers(code, &text, &plan.trailers));
        let _ = respond.send_response(response, true);
        return;
    }
    if path == ECHO_STREAM && !plan.hang {
        shared.state().seen.push(SeenCall {
            path,
            metadata,
            message: Vec::new(),
        });
        echo_stream(&mut body, respond, &plan, &shared).await;
        return;
    }

    // A unary call: the whole request first.
    let mut frames = Frames::default();
    let mut message = None;
    loop {
        if message.is_none() {
            message = frames.next_message();
        }
        match body.data().await {
            Some(Ok(chunk)) => {
                let _ = body.flow_control().release_capacity(chunk.len());
                frames.push(&chunk);
            }
            Some(Err(_)) => {
                shared.reset_by_client.fetch_add(1, Ordering::SeqCst);
                return;
            }
            None => break,
        }
    }
    let message = message
        .or_else(|| frames.next_message())
        .unwrap_or_default();
    shared.state().seen.push(SeenCall {
        path: path.clone(),
        metadata,
        message: message.to_vec(),
    });

    if plan.hang || plan.delay.is_some() {
        let wait = async {
            match plan.delay {
                Some(d) if !plan.hang => tokio::time::sleep(d).await,
                _ => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = wait => {}
            _ = poll_fn(|cx| respond.poll_reset(cx)) => {
                shared.reset_by_client.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    }

    let answer = if let Some((code, text)) = &plan.fail {
        Err((*code, text.clone()))
    } else {
        match path.as_str() {
            SHOULD_RATE_LIMIT => should_rate_limit(&message, &shared),
            ECHO_UNARY => Ok(message.to_vec()),
            _ => Err((12, format!("unknown method {path}"))),
        }
    };
    match answer {
        Ok(reply) => {
            let Ok(mut send) = respond.send_response(head(&plan.headers), false) else {
                return;
            };
            let _ = send.send_data(frame(&reply), false);
            let _ = send.send_trailers(status_trailers(0, "", &plan.trailers));
        }
        Err((code, text)) => {
            // Trailers-only: the status in the one header block.
            let mut response = head(&plan.headers);
            response
                .headers_mut()
                .extend(status_trailers(code, &text, &plan.trailers));
            let _ = respond.send_response(response, true);
        }
    }
}

async fn echo_stream(
    body: &mut RecvStream,
    mut respond: SendResponse<Bytes>,
    plan: &Plan,
    shared: &Shared,
) {
    let Ok(mut send) = respond.send_response(head(&plan.headers), false) else {
        return;
    };
    let mut frames = Frames::default();
    let mut first = true;
    loop {
        match body.data().await {
            Some(Ok(chunk)) => {
                let _ = body.flow_control().release_capacity(chunk.len());
                frames.push(&chunk);
                while let Some(message) = frames.next_message() {
                    if first {
                        first = false;
                        if let Some(seen) = shared.state().seen.last_mut() {
                            seen.message = message.to_vec();
                        }
                    }
                    if let Some(d) = plan.delay {
                        tokio::time::sleep(d).await;
                    }
                    if send.send_data(frame(&message), false).is_err() {
                        return;
                    }
                }
            }
            Some(Err(_)) => {
                shared.reset_by_client.fetch_add(1, Ordering::SeqCst);
                return;
            }
            None => break,
        }
    }
    let _ = send.send_trailers(status_trailers(0, "", &plan.trailers));
}

fn should_rate_limit(message: &[u8], shared: &Shared) -> Result<Vec<u8>, (u32, String)> {
    let request =
        RateLimitRequest::decode(message).map_err(|e| (3, format!("bad RateLimitRequest: {e}")))?;
    if request.descriptors.is_empty() {
        return Err((3, "no descriptors".to_owned()));
    }
    let hits = u64::from(request.hits_addend.max(1));
    let mut state = shared.state();
    let limit = state.limit;
    let mut response = RateLimitResponse {
        overall_code: Code::Ok as i32,
        ..RateLimitResponse::default()
    };
    let mut least_remaining = u64::from(limit);
    for descriptor in &request.descriptors {
        let mut key = request.domain.clone();
        for entry in &descriptor.entries {
            key.push('|');
            key.push_str(&entry.key);
            key.push('=');
            key.push_str(&entry.value);
        }
        let count = state.counts.entry(key).or_insert(0);
        *count += hits;
        let over = *count > u64::from(limit);
        let remaining = u64::from(limit).saturating_sub(*count);
        least_remaining = least_remaining.min(remaining);
        if over {
            response.overall_code = Code::OverLimit as i32;
        }
        response.statuses.push(DescriptorStatus {
            code: if over { Code::OverLimit } else { Code::Ok } as i32,
            current_limit: Some(RateLimit {
                name: String::new(),
                requests_per_unit: limit,
                unit: Unit::Day as i32,
            }),
            limit_remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            ..DescriptorStatus::default()
        });
    }
    response.response_headers_to_add = vec![
        ProtoHeader {
            key: "x-ratelimit-limit".to_owned(),
            value: limit.to_string(),
            ..ProtoHeader::default()
        },
        ProtoHeader {
            key: "x-ratelimit-remaining".to_owned(),
            value: least_remaining.to_string(),
            ..ProtoHeader::default()
        },
    ];
    Ok(response.encode_to_vec())
}

/// The response head of a gRPC answer, with `extra` metadata.
fn head(extra: &[(String, String)]) -> Response<()> {
    let mut response = Response::new(());
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    append(headers, extra);
    response
}

fn status_trailers(code: u32, message: &str, extra: &[(String, String)]) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(code));
    if !message.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&percent_encode(message)) {
            trailers.insert("grpc-message", value);
        }
    }
    append(&mut trailers, extra);
    trailers
}

fn append(headers: &mut HeaderMap, extra: &[(String, String)]) {
    for (name, value) in extra {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
}

/// `grpc-message` is percent-encoded (gRPC over HTTP/2, "Responses").
fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A message with its 5-byte gRPC prefix (not compressed, big-endian length).
fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.extend_from_slice(&[0]);
    out.extend_from_slice(
        &u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(message);
    out.freeze()
}

/// Length-prefixed messages cut out of the bytes of a request body.
#[derive(Debug, Default)]
struct Frames {
    buffer: BytesMut,
}

impl Frames {
    fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    fn next_message(&mut self) -> Option<Bytes> {
        if self.buffer.len() < 5 {
            return None;
        }
        let len = u32::from_be_bytes([
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
            self.buffer[4],
        ]) as usize;
        if self.buffer.len() < 5 + len {
            return None;
        }
        self.buffer.advance(5);
        Some(self.buffer.split_to(len).freeze())
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;

    use super::*;

    #[test]
    fn frames_cut_messages_across_chunks() {
        let mut frames = Frames::default();
        let one = frame(b"hello");
        let two = frame(b"");
        frames.push(&one[..3]);
        assert_eq!(frames.next_message(), None);
        frames.push(&one[3..]);
        frames.push(&two);
        assert_eq!(frames.next_message().as_deref(), Some(&b"hello"[..]));
        assert_eq!(frames.next_message().as_deref(), Some(&b""[..]));
        assert_eq!(frames.next_message(), None);
    }

    #[test]
    fn should_rate_limit_counts_each_descriptor_until_over() {
        let shared = Shared::default();
        shared.state().limit = 2;
        let request = RateLimitRequest {
            domain: "d".to_owned(),
            descriptors: vec![RateLimitDescriptor {
                entries: vec![Entry {
                    key: "k".to_owned(),
                    value: "v".to_owned(),
                }],
                ..RateLimitDescriptor::default()
            }],
            hits_addend: 0,
        }
        .encode_to_vec();
        let codes: Vec<i32> = (0..3)
            .map(|_| {
                let reply = should_rate_limit(&request, &shared).unwrap();
                RateLimitResponse::decode(&reply[..]).unwrap().overall_code
            })
            .collect();
        assert_eq!(codes, [1, 1, 2]);
        assert_eq!(shared.state().counts["d|k=v"], 3);
    }

    #[test]
    fn percent_encode_keeps_printable_ascii() {
        assert_eq!(percent_encode("no 100%\n"), "no 100%25%0A");
    }
}
