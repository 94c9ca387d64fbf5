//! The endpoints, modelled on httpbin's.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use serde_json::{json, Map, Value};

/// Longest `/delay/{seconds}` honoured, as in httpbin.
const MAX_DELAY: Duration = Duration::from_secs(10);
/// Largest `/bytes/{n}` body.
const MAX_BYTES: usize = 16 * 1024 * 1024;

/// What to send back.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A complete response.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Send the head and part of the body, then close the connection.
    CloseMidBody,
    /// Close the connection without sending anything.
    Drop,
}

impl Reply {
    fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Full {
            status,
            headers: vec![("content-type".to_owned(), content_type.to_owned())],
            body: body.into(),
        }
    }

    fn json(status: u16, value: &Value) -> Reply {
        let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
        body.push(b'\n');
        Reply::new(status, "application/json", body)
    }

    fn text(status: u16, text: &str) -> Reply {
        Reply::new(status, "text/plain; charset=utf-8", format!("{text}\n"))
    }
}

/// A request as the routes see it: read in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// The method (`GET`).
    pub(crate) method: String,
    /// The request target: path and query (`/anything?a=1`).
    pub(crate) target: String,
    /// The headers, names in lowercase.
    pub(crate) headers: Vec<(String, String)>,
    /// The body.
    pub(crate) body: Vec<u8>,
}

impl Request {
    /// The path part of the target (before `?`).
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The decoded query parameters, in order (`+` is a space; a bad escape stays as written).
    fn query(&self) -> Vec<(String, String)> {
        match self.target.split_once('?') {
            Some((_, q)) => form_urlencoded::parse(q.as_bytes()).into_owned().collect(),
            None => Vec::new(),
        }
    }
}

/// Answers one request; `/delay` answers after its delay, and `/hang` never does.
pub(crate) async fn route(req: &Request) -> Reply {
    let path = req.path();
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let first = segments.next().unwrap_or("");
    let rest = segments.next();
    match (first, rest) {
        ("", None) => Reply::text(200, "envoy-upstream: a local stand-in for httpbin"),
        ("uuid", None) => Reply::json(200, &json!({ "uuid": uuid_v4() })),
        ("anything", _) => Reply::json(200, &echo(req)),
        ("status", Some(code)) => match code.parse::<u16>() {
            Ok(code) if (200..=599).contains(&code) => Reply::new(code, "text/plain", ""),
            _ => Reply::text(400, "status must be an integer in 200..=599"),
        },
        ("delay", Some(secs)) => match secs.parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 => {
                tokio::time::sleep(Duration::from_secs_f64(s).min(MAX_DELAY)).await;
                Reply::json(200, &echo(req))
            }
            _ => Reply::text(400, "delay must be a non-negative number of seconds"),
        },
        ("body", None) => body(req),
        ("bytes", Some(n)) => match n.parse::<usize>() {
            Ok(n) if n <= MAX_BYTES => {
                let body: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
                Reply::new(200, "application/octet-stream", body)
            }
            _ => Reply::text(400, "bytes must be an integer in 0..=16777216"),
        },
        ("response-headers", None) => {
            let query = req.query();
            let mut reply = Reply::json(200, &pairs_to_json(&query));
            if let Reply::Full { headers, .. } = &mut reply {
                headers.extend(query.into_iter().filter(|(k, v)| valid_header(k, v)));
            }
            reply
        }
        ("hang", None) => std::future::pending().await,
        ("close", None) => Reply::CloseMidBody,
        ("drop", None) => Reply::Drop,
        _ => Reply::text(404, "not found"),
    }
}

/// `/body?b=...&status=...&content_type=...`: exactly the body asked for.
fn body(req: &Request) -> Reply {
    let query = req.query();
    let get = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let status = match get("status").map(str::parse::<u16>) {
        None => 200,
        Some(Ok(code)) if (200..=599).contains(&code) => code,
        Some(_) => return Reply::text(400, "status must be an integer in 200..=599"),
    };
    let content_type = get("content_type").unwrap_or("text/plain; charset=utf-8");
    if !valid_header("content-type", content_type) {
        return Reply::text(400, "content_type is not a valid header value");
    }
    Reply::new(status, content_type, get("b").unwrap_or(""))
}

fn valid_header(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

/// Pairs as a JSON object; a key given more than once maps to an array.
fn pairs_to_json(pairs: &[(String, String)]) -> Value {
    let mut map = Map::new();
    for (k, v) in pairs {
        match map.get_mut(k) {
            None => {
                map.insert(k.clone(), Value::String(v.clone()));
            }
            Some(Value::Array(a)) => a.push(Value::String(v.clone())),
            Some(old) => {
                let first = old.take();
                *old = Value::Array(vec![first, Value::String(v.clone())]);
            }
        }
    }
    Value::Object(map)
}

/// The httpbin-like description of a request.
fn echo(req: &Request) -> Value {
    let data = String::from_utf8_lossy(&req.body).into_owned();
    let parsed = serde_json::from_slice::<Value>(&req.body).unwrap_or(Value::Null);
    json!({
        "method": req.method,
        "url": req.target,
        "path": req.path(),
        "args": pairs_to_json(&req.query()),
        "headers": pairs_to_json(&req.headers),
        "data": data,
        "json": parsed,
    })
}

thread_local! {
    static RNG: Cell<u64> = Cell::new({
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.finish() | 1
    });
}

/// xorshift64*: fast, and random enough for ids.
fn next_u64() -> u64 {
    RNG.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

/// A random version 4 UUID in its canonical text form.
fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&next_u64().to_le_bytes());
    b[8..].copy_from_slice(&next_u64().to_le_bytes());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(target: &str) -> Reply {
        let req = Request {
            method: "GET".to_owned(),
            target: target.to_owned(),
            headers: vec![
                ("x-a".to_owned(), "1".to_owned()),
                ("x-a".to_owned(), "2".to_owned()),
            ],
            body: Vec::new(),
        };
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(route(&req))
    }

    fn full(reply: Reply) -> (u16, Vec<(String, String)>, Vec<u8>) {
        match reply {
            Reply::Full {
                status,
                headers,
                body,
            } => (status, headers, body),
            other => panic!("expected a full reply, got {other:?}"),
        }
    }

    #[test]
    fn uuid_v4_is_canonical_and_random() {
        let a = uuid_v4();
        let b = uuid_v4();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!("89ab".contains(&a[19..20]), "{a}");
        assert!(a
            .chars()
            .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn status_answers_with_the_code_or_400() {
        assert_eq!(full(get("/status/418")).0, 418);
        assert_eq!(full(get("/status/99")).0, 400);
        assert_eq!(full(get("/status/abc")).0, 400);
    }

    #[test]
    fn body_returns_exactly_the_query_body() {
        let (status, headers, body) = full(get("/body?b=%7B%22uuid%22%3A%201%7D&status=201"));
        assert_eq!(status, 201);
        assert_eq!(body, b"{\"uuid\": 1}");
        assert_eq!(headers[0].1, "text/plain; charset=utf-8");
        assert_eq!(full(get("/body?content_type=a%0Ab")).0, 400);
    }

    #[test]
    fn anything_echoes_repeated_headers_as_array() {
        let (_, _, body) = full(get("/anything/x?k=v"));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["path"], "/anything/x");
        assert_eq!(v["args"]["k"], "v");
        assert_eq!(v["headers"]["x-a"], json!(["1", "2"]));
    }

    #[test]
    fn response_headers_sets_each_pair() {
        let (_, headers, _) = full(get("/response-headers?x-r=1&x-r=2&bad%20name=3"));
        let xr: Vec<_> = headers.iter().filter(|(k, _)| k == "x-r").collect();
        assert_eq!(xr.len(), 2);
        assert!(!headers.iter().any(|(k, _)| k == "bad name"));
    }

    #[test]
    fn query_decodes_escapes_and_plus_and_keeps_bad_escapes() {
        let (_, _, body) = full(get("/anything?a=x%20y+z&b=100%&c=%zz&d=%7B%22k%22%7D"));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["args"],
            json!({"a": "x y z", "b": "100%", "c": "%zz", "d": "{\"k\"}"})
        );
    }

    #[test]
    fn unknown_path_is_404() {
        assert_eq!(full(get("/nope")).0, 404);
    }
}
