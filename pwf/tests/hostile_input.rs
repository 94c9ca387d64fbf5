//! Hostile input on the native test host: header values that would split a
//! response, names that are not tokens, headers forwarded on a call, and
//! call limits Envoy enforces.

use std::rc::Rc;
use std::time::Duration;

use pwf::{
    Action, CallErrorKind, Error, Headers, Http, HttpFilter, LocalResponse, Outcome, Plugin,
    PluginContext, Request, Status,
};
use pwf_test::{Action as HostAction, Host, LogLevel, Stream};

const REQUEST: [(&str, &str); 3] = [(":method", "GET"), (":path", "/"), (":authority", "app")];
const RESPONSE: [(&str, &str); 1] = [(":status", "200")];

/// Copies the request's `x-name` and `x-value` into a response header the
/// way a careless plugin would, and reports what the setter said in
/// `x-result`.
struct Copying;

impl Plugin for Copying {
    type Config = ();
    type Filter = CopyingFilter;
    fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
        Ok(Copying)
    }
    fn filter(_: &Rc<Self>, _: &Http) -> CopyingFilter {
        CopyingFilter::default()
    }
}

#[derive(Default)]
struct CopyingFilter {
    name: String,
    value: Vec<u8>,
}

impl HttpFilter for CopyingFilter {
    fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        let get = |name| Ok::<_, Error>(http.request_header(name)?.unwrap_or_default());
        self.name = get("x-name")?.to_string();
        self.value = get("x-value")?.into_bytes();
        if http.request_header("x-respond")?.is_some() {
            let response = LocalResponse::new(200).header(self.name.clone(), self.value.clone());
            return Ok(http.spawn(async move { Ok(Outcome::Respond(response)) }));
        }
        Ok(Action::Continue)
    }
    fn on_response_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        let result = match http.add_response_header(&self.name, &self.value) {
            Ok(()) => "set".to_owned(),
            Err(error) => {
                assert_eq!(error.status(), Status::BadArgument);
                assert!(error.invalid_header().is_some());
                pwf::error!("{error}");
                "refused".to_owned()
            }
        };
        http.set_response_header("x-result", result)?;
        Ok(Action::Continue)
    }
}

fn copying(host: &Host) -> pwf_test::Plugin {
    host.start_vm_with_root(pwf::root_context::<Copying>)
        .unwrap()
        .configure("")
        .unwrap()
}

fn request(stream: &Stream, name: &str, value: &[u8]) -> HostAction {
    let headers: Vec<(&str, &[u8])> = REQUEST
        .iter()
        .map(|(k, v)| (*k, v.as_bytes()))
        .chain([("x-name", name.as_bytes()), ("x-value", value)])
        .collect();
    stream.request_headers(headers, true)
}

/// A CR/LF in a value once went to Envoy, which wrote it raw over HTTP/1.1.
#[test]
fn add_response_header_refuses_cr_lf_and_nul_in_the_value() {
    let host = Host::default();
    let plugin = copying(&host);
    for value in [
        &b"hello\r\nx-injected: 2"[..],
        b"a\r\n\r\n<html>smuggled body</html>",
        b"a\0b",
    ] {
        let stream = plugin.open_stream();
        request(&stream, "x-pwf", value);
        assert_eq!(
            stream.response_headers(RESPONSE, true),
            HostAction::Continue
        );
        assert_eq!(
            stream.response_header("x-result").as_deref(),
            Some("refused")
        );
        assert_eq!(stream.response_header("x-pwf"), None);
    }
    assert_eq!(
        host.logs(LogLevel::Error)[0],
        "host call `add_header_map_value` not made: the value of header `x-pwf` has a CR at byte 5; \
         CR, LF and NUL are not allowed in a header value"
    );
}

#[test]
fn add_response_header_refuses_a_name_that_is_not_a_token() {
    let host = Host::default();
    let plugin = copying(&host);
    for name in ["x pwf", "x-a:b", "", "x\u{e9}"] {
        let stream = plugin.open_stream();
        request(&stream, name, b"1");
        stream.response_headers(RESPONSE, true);
        assert_eq!(
            stream.response_header("x-result").as_deref(),
            Some("refused"),
            "{name:?}"
        );
    }
    assert_eq!(
        host.logs(LogLevel::Error)[0],
        "host call `add_header_map_value` not made: header name `x pwf` has a space at byte 1; \
         a name is a token (letters, digits and !#$%&'*+-.^_`|~), or one of those after a leading `:`"
    );
    // Upper case is a token: Envoy lowercases names itself.
    let stream = plugin.open_stream();
    request(&stream, "X-Pwf", b"1");
    stream.response_headers(RESPONSE, true);
    assert_eq!(stream.response_header("x-result").as_deref(), Some("set"));
}

/// A local response whose header is refused is not sent; the plugin's error
/// response answers, so the stream does not stay paused.
#[test]
fn local_response_with_an_invalid_header_answers_with_the_error_response() {
    let host = Host::default();
    let plugin = copying(&host);
    let stream = plugin.open_stream();
    let headers = [
        (":method", "GET"),
        (":path", "/"),
        ("x-respond", "1"),
        ("x-name", "x-pwf"),
        ("x-value", "a\r\nx-injected: 1"),
    ];
    stream.request_headers(headers, true);
    let response = stream.local_response().expect("a local response");
    assert_eq!(response.status, 500);
    assert!(response.headers.get("x-injected").is_none());
    assert!(host.logs(LogLevel::Error)[0].starts_with(
        "could not send the local response: host call `send_local_response` not made: the value of header `x-pwf` has a CR at byte 1"
    ));
}

/// A call header with CR/LF is refused before anything is sent.
#[test]
fn call_with_cr_lf_in_a_header_is_not_sent() {
    let error = Request::get("auth", "/check")
        .header("x-user", "alice\r\nx-admin: true")
        .send()
        .unwrap_err();
    assert!(matches!(error.kind(), CallErrorKind::InvalidHeader(invalid) if invalid.in_value()));
    assert_eq!(
        error.to_string(),
        "call to cluster `auth` not sent: the value of header `x-user` has a CR at byte 5; \
         CR, LF and NUL are not allowed in a header value"
    );
    let error = Request::get("auth", "/check\r\nx: 1").send().unwrap_err();
    assert_eq!(
        error.to_string(),
        "call to cluster `auth` not sent: the value of header `:path` has a CR at byte 6; \
         CR, LF and NUL are not allowed in a header value"
    );
    // The method is checked first: its problem is the one reported.
    let error = Request::new("GET\n", "auth", "/check\r")
        .send()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "call to cluster `auth` not sent: the value of header `:method` has an LF at byte 3; \
         CR, LF and NUL are not allowed in a header value"
    );
    let error = Request::get("auth", "/")
        .trailer("x trailer", "1")
        .send()
        .unwrap_err();
    assert!(matches!(error.kind(), CallErrorKind::InvalidHeader(_)));
}

/// Forwards the client's request headers to `auth` on a GET to `/check`.
struct Forwarding;

impl Plugin for Forwarding {
    type Config = ();
    type Filter = ForwardingFilter;
    fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
        Ok(Forwarding)
    }
    fn filter(_: &Rc<Self>, _: &Http) -> ForwardingFilter {
        ForwardingFilter
    }
}

struct ForwardingFilter;

impl HttpFilter for ForwardingFilter {
    fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        let request = Request::get("auth", "/check").forward_headers(http.request_headers()?);
        Ok(http.spawn(async move {
            match request.send() {
                Ok(call) => {
                    call.await?;
                    Ok(Outcome::Continue)
                }
                Err(error) => {
                    pwf::error!("{error}");
                    Ok(LocalResponse::new(400).into())
                }
            }
        }))
    }
}

fn forwarding(host: &Host) -> pwf_test::Plugin {
    host.start_vm_with_root(pwf::root_context::<Forwarding>)
        .unwrap()
        .configure("")
        .unwrap()
}

/// Forwarded pseudo-headers once replaced the builder's `:path`, and a
/// forwarded `content-length` made the auth service wait for a body.
#[test]
fn forward_headers_keeps_the_builders_pseudo_headers_and_drops_hop_and_framing_headers() {
    let host = Host::builder().cluster("auth").build();
    let stream = forwarding(&host).open_stream();
    let headers = [
        (":method", "POST"),
        (":path", "/anything"),
        (":authority", "app"),
        ("content-length", "3"),
        ("transfer-encoding", "chunked"),
        ("connection", "keep-alive, X-Hop"),
        ("x-hop", "1"),
        ("keep-alive", "timeout=5"),
        ("te", "trailers"),
        ("upgrade", "h2c"),
        ("proxy-connection", "keep-alive"),
        ("authorization", "Bearer t"),
        ("cookie", "a=1"),
    ];
    assert_eq!(stream.request_headers(headers, false), HostAction::Pause);
    let calls = stream.calls();
    let sent = calls[0].headers();
    let names: Vec<&str> = sent.iter().map(|(name, _)| name).collect();
    assert_eq!(
        names,
        [":method", ":path", ":authority", "authorization", "cookie"]
    );
    assert_eq!(sent.get(":method"), Some("GET"));
    assert_eq!(sent.get(":path"), Some("/check"));
    assert_eq!(sent.get(":authority"), Some("auth"));
}

/// A value that is not UTF-8 was once left out of the call silently, while
/// the upstream still got it: a policy on that header could be bypassed.
#[test]
fn forward_headers_refuses_a_value_that_is_not_utf8_naming_the_header() {
    let host = Host::builder().cluster("auth").build();
    let stream = forwarding(&host).open_stream();
    let headers: [(&str, &[u8]); 3] = [(":method", b"GET"), (":path", b"/"), ("cookie", b"a=\xe9")];
    stream.request_headers(headers, true);
    assert!(stream.calls().is_empty());
    assert_eq!(stream.local_response().map(|r| r.status), Some(400));
    assert_eq!(
        host.logs(LogLevel::Error),
        ["call to cluster `auth` not sent: the value of header `cookie` is not UTF-8, and call headers go to the host as text"]
    );
}

/// `headers` once let a forwarded `:path` replace the builder's silently.
#[test]
fn headers_refuses_pseudo_headers_and_values_that_are_not_utf8() {
    let client: Headers = [(":path", "/admin"), ("x-a", "1")].into_iter().collect();
    let error = Request::get("auth", "/check")
        .headers(client)
        .send()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "call to cluster `auth` not sent: `headers` was given pseudo-header `:path`, which would \
         replace the builder's own; set it with `header`, or use `forward_headers`"
    );
    let binary = Headers::from(vec![("cookie".to_owned(), vec![b'a', 0xe9])]);
    let error = Request::get("auth", "/check")
        .headers(binary)
        .send()
        .unwrap_err();
    assert_eq!(error.kind(), &CallErrorKind::NotUtf8("`cookie`".to_owned()));
}

/// 2^31 ms up to `u32::MAX` ms once passed pwf's check, and Envoy refused
/// every such call as a bad argument.
#[test]
fn timeout_of_2_pow_31_ms_is_refused_naming_the_limit() {
    for millis in [1u64 << 31, u64::from(u32::MAX)] {
        let error = Request::get("auth", "/")
            .timeout(Duration::from_millis(millis))
            .send()
            .unwrap_err();
        assert_eq!(error.kind(), &CallErrorKind::TimeoutTooLong);
        assert_eq!(
            error.to_string(),
            "call to cluster `auth` not sent: the timeout is 2147483648ms or more, and Envoy takes \
             at most 2147483647ms (a signed 32-bit count)"
        );
    }
}

/// Too many or too large headers once came back as "the cluster is unknown".
#[test]
fn call_with_more_than_1024_pairs_or_1_mib_of_headers_says_which_limit() {
    let many = |n: usize| {
        (0..n).fold(Request::get("auth", "/"), |request, i| {
            request.header(format!("x-{i}"), "1")
        })
    };
    // 1021 headers and the 3 pseudo-headers: 1024 pairs pass the check.
    let error = many(1021).send().unwrap_err();
    assert!(
        matches!(error.kind(), CallErrorKind::Dispatch(_)),
        "{error}"
    );
    let error = many(1022).send().unwrap_err();
    assert_eq!(
        error.to_string(),
        "call to cluster `auth` not sent: 1025 headers (pseudo-headers included), and Envoy takes at most 1024"
    );
    let big = "a".repeat(1 << 20);
    let error = Request::get("auth", "/")
        .header("x-big", big)
        .send()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "call to cluster `auth` not sent: the headers take 1048655 bytes as the host gets them, and Envoy takes at most 1048576"
    );
    let error = (0..1025)
        .fold(Request::get("auth", "/"), |request, i| {
            request.trailer(format!("t-{i}"), "1")
        })
        .send()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "call to cluster `auth` not sent: 1025 trailers, and Envoy takes at most 1024"
    );
    // The limits are per map: headers and trailers each within theirs are
    // sent, however many they are together.
    let trailed = |request: Request, n: usize, value: &str| {
        (0..n).fold(request, |request, i| {
            request.trailer(format!("t-{i}"), value)
        })
    };
    let error = trailed(many(1021), 1024, "1").send().unwrap_err();
    assert!(
        matches!(error.kind(), CallErrorKind::Dispatch(_)),
        "{error}"
    );
    let half = "a".repeat(600_000);
    let error = trailed(Request::get("auth", "/").header("x-big", &*half), 1, &half)
        .send()
        .unwrap_err();
    assert!(
        matches!(error.kind(), CallErrorKind::Dispatch(_)),
        "{error}"
    );
}

/// A 1 MB cluster name once wrote a 1 MB log line per call, and a CR/LF in
/// it split the line.
#[test]
fn call_error_cuts_and_escapes_the_cluster_name() {
    let long = "c".repeat(1 << 20);
    let error = Request::get(&long, "/")
        .authority("app")
        .timeout(Duration::ZERO)
        .send()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "call to cluster `{}`... (1048576 bytes) not sent: a zero timeout means no timeout to Envoy; give at least 1ms",
            "c".repeat(64)
        )
    );
    let error = Request::get("a\r\nb", "/")
        .timeout(Duration::ZERO)
        .send()
        .unwrap_err();
    assert!(error
        .to_string()
        .starts_with("call to cluster `a\\r\\nb` not sent"));
    assert_eq!(error.cluster(), "a\r\nb");
}

/// Envoy's refusals name their likely cause: with every other argument
/// checked first, a bad argument is, most likely, an unknown cluster.
#[test]
fn refused_dispatch_names_the_likely_cause() {
    let host = Host::builder().build();
    let stream = forwarding(&host).open_stream();
    stream.request_headers(REQUEST, true);
    assert_eq!(stream.local_response().map(|r| r.status), Some(400));
    assert_eq!(
        host.logs(LogLevel::Error),
        ["call to cluster `auth` refused by Envoy (bad argument): most likely no cluster has that name (pwf checked the timeout and the headers)"]
    );
}

/// Refuses every call it makes (the cluster is unknown), logging each refusal through a
/// `Limited` at most 3 times per 10 s.
struct Flooding;

static REFUSED: pwf::log::Limited =
    pwf::log::Limited::new("test.refused", 3, Duration::from_secs(10));

impl Plugin for Flooding {
    type Config = ();
    type Filter = FloodingFilter;
    fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
        Ok(Flooding)
    }
    fn filter(_: &Rc<Self>, _: &Http) -> FloodingFilter {
        FloodingFilter
    }
}

struct FloodingFilter;

impl HttpFilter for FloodingFilter {
    fn on_request_headers(&mut self, _: &Http, _: bool) -> Result<Action, Error> {
        if let Err(error) = Request::get("nowhere", "/").send() {
            REFUSED.log(pwf::LogLevel::Error, format_args!("{error}"));
        }
        Ok(Action::Continue)
    }
}

/// A refused call once logged one line per call: 125,370 lines in 30 s under overload.
#[test]
fn limited_logs_the_first_lines_of_an_interval_then_one_summary_and_counts_all() {
    let host = Host::default();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<Flooding>)
        .unwrap()
        .configure("")
        .unwrap();
    let refused = "call to cluster `nowhere` refused by Envoy (bad argument): most likely no cluster has that name (pwf checked the timeout and the headers)";
    for _ in 0..100 {
        plugin.open_stream().request_headers(REQUEST, true);
    }
    assert_eq!(host.logs(LogLevel::Error), [refused; 3]);
    assert_eq!(
        host.metric("test.refused"),
        Some(pwf_test::Metric::Counter(100))
    );

    host.advance(Duration::from_secs(10));
    for _ in 0..5 {
        plugin.open_stream().request_headers(REQUEST, true);
    }
    let logs = host.logs(LogLevel::Error);
    assert_eq!(logs.len(), 7, "{logs:#?}");
    assert_eq!(
        logs[3],
        "test.refused: 97 more lines like the one above were not logged in the last 10s (the counter test.refused counts every one)"
    );
    assert_eq!(logs[4..], [refused; 3]);
    assert_eq!(
        host.metric("test.refused"),
        Some(pwf_test::Metric::Counter(105))
    );
}
