//! Stream control through the native test host: resetting a stream, gRPC
//! local responses, and a local response from the response phase.

use std::rc::Rc;

use pwf::{Action, Error, Http, HttpFilter, LocalResponse, Plugin, PluginContext};
use pwf_test::{Action as HostAction, Direction, Host, LogLevel};

const REQUEST: [(&str, &str); 3] = [(":method", "GET"), (":path", "/"), (":authority", "app")];
const RESPONSE: [(&str, &str); 1] = [(":status", "200")];

/// Resets the stream in the request headers phase when `x-scanner` is present,
/// in the request body phase when the body starts with `DROP`; logs every
/// phase it runs.
struct Resetting;

impl Plugin for Resetting {
    type Config = ();
    type Filter = ResettingFilter;
    fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
        Ok(Resetting)
    }
    fn filter(_: &Rc<Self>, _: &Http) -> ResettingFilter {
        ResettingFilter
    }
}

struct ResettingFilter;

impl HttpFilter for ResettingFilter {
    fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        pwf::info!("request_headers");
        if http.request_header("x-scanner")?.is_some() {
            http.reset()?;
            return Ok(Action::Pause);
        }
        Ok(Action::Continue)
    }
    fn on_request_body(&mut self, http: &Http, size: usize, _: bool) -> Result<Action, Error> {
        pwf::info!("request_body");
        if http.request_body(0, size)?.starts_with(b"DROP") {
            http.reset()?;
            return Ok(Action::Pause);
        }
        Ok(Action::Continue)
    }
    fn on_response_headers(&mut self, _: &Http, _: bool) -> Result<Action, Error> {
        pwf::info!("response_headers");
        Ok(Action::Continue)
    }
    fn on_response_body(&mut self, _: &Http, _: usize, _: bool) -> Result<Action, Error> {
        pwf::info!("response_body");
        Ok(Action::Continue)
    }
}

#[test]
fn reset_in_request_headers_resets_the_stream_and_skips_later_phases() {
    let host = Host::builder().build();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<Resetting>)
        .unwrap()
        .configure("")
        .unwrap();

    let scanner = plugin.open_stream();
    let headers = [(":method", "GET"), (":path", "/"), ("x-scanner", "1")];
    assert_eq!(scanner.request_headers(headers, false), HostAction::Pause);
    assert_eq!(scanner.reset_by_plugin(), Some(Direction::Request));
    assert_eq!(scanner.request_body("DROP", true), HostAction::Skipped);
    assert_eq!(
        scanner.response_headers(RESPONSE, false),
        HostAction::Skipped
    );
    assert_eq!(scanner.response_body("answer", true), HostAction::Skipped);
    assert_eq!(scanner.local_response(), None);
    assert!(scanner.forwarded_request_body().is_empty());
    assert_eq!(host.logs(LogLevel::Info), ["request_headers"]);

    // Without the header the same filter lets every phase through.
    let plain = plugin.open_stream();
    let actions = [
        plain.request_headers(REQUEST, false),
        plain.request_body("hello", true),
        plain.response_headers(RESPONSE, false),
        plain.response_body("answer", true),
    ];
    assert_eq!(actions, [const { HostAction::Continue }; 4]);
    assert_eq!(plain.reset_by_plugin(), None);
    assert_eq!(plain.forwarded_request_body(), b"hello");
    assert_eq!(plugin.failure(), None);
}

#[test]
fn reset_in_request_body_resets_the_stream_and_skips_later_phases() {
    let host = Host::builder().build();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<Resetting>)
        .unwrap()
        .configure("")
        .unwrap();

    let stream = plugin.open_stream();
    assert_eq!(stream.request_headers(REQUEST, false), HostAction::Continue);
    assert_eq!(stream.request_body("DROP TABLE", true), HostAction::Pause);
    assert_eq!(stream.reset_by_plugin(), Some(Direction::Request));
    assert_eq!(
        stream.response_headers(RESPONSE, false),
        HostAction::Skipped
    );
    assert_eq!(stream.response_body("answer", true), HostAction::Skipped);
    assert!(stream.forwarded_request_body().is_empty());
    assert_eq!(stream.local_response(), None);
    assert_eq!(
        host.logs(LogLevel::Info),
        ["request_headers", "request_body"]
    );
    assert_eq!(plugin.failure(), None);
}

/// Answers a request without `authorization` with gRPC UNAUTHENTICATED (16).
struct GrpcAuth;

impl Plugin for GrpcAuth {
    type Config = ();
    type Filter = GrpcAuthFilter;
    fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
        Ok(GrpcAuth)
    }
    fn filter(_: &Rc<Self>, _: &Http) -> GrpcAuthFilter {
        GrpcAuthFilter
    }
}

struct GrpcAuthFilter;

impl HttpFilter for GrpcAuthFilter {
    fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        if http.request_header("authorization")?.is_none() {
            return Ok(http.respond(LocalResponse::grpc(16, "unauthenticated"))?);
        }
        Ok(Action::Continue)
    }
}

#[test]
fn grpc_local_response_sends_200_with_the_grpc_status_and_message() {
    let host = Host::builder().build();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<GrpcAuth>)
        .unwrap()
        .configure("")
        .unwrap();
    let grpc_request = [
        (":method", "POST"),
        (":path", "/pkg.Service/Method"),
        (":authority", "app"),
        ("content-type", "application/grpc"),
    ];

    let denied = plugin.open_stream();
    assert_eq!(
        denied.request_headers(grpc_request, false),
        HostAction::Pause
    );
    let response = denied.local_response().expect("a local response was sent");
    assert_eq!(response.status, 200);
    assert_eq!(response.grpc_status, Some(16));
    assert_eq!(response.body, b"unauthenticated");
    assert_eq!(denied.reset_by_plugin(), None);
    // The request goes no further.
    assert_eq!(denied.request_body("payload", true), HostAction::Skipped);
    assert!(denied.forwarded_request_body().is_empty());

    let allowed = plugin.open_stream();
    let mut with_auth = grpc_request.to_vec();
    with_auth.push(("authorization", "Bearer t"));
    assert_eq!(
        allowed.request_headers(with_auth, false),
        HostAction::Continue
    );
    assert_eq!(allowed.local_response(), None);
    assert_eq!(plugin.failure(), None);
}

#[test]
fn plain_local_response_carries_no_grpc_status() {
    struct Deny;
    impl Plugin for Deny {
        type Config = ();
        type Filter = DenyFilter;
        fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
            Ok(Deny)
        }
        fn filter(_: &Rc<Self>, _: &Http) -> DenyFilter {
            DenyFilter
        }
    }
    struct DenyFilter;
    impl HttpFilter for DenyFilter {
        fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
            Ok(http.respond(LocalResponse::new(403).body("forbidden"))?)
        }
    }

    let host = Host::builder().build();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<Deny>)
        .unwrap()
        .configure("")
        .unwrap();
    let stream = plugin.open_stream();
    assert_eq!(stream.request_headers(REQUEST, true), HostAction::Pause);
    let response = stream.local_response().expect("a local response was sent");
    assert_eq!(response.status, 403);
    assert_eq!(response.grpc_status, None);
    assert_eq!(response.body, b"forbidden");
}

/// Replaces an upstream 5xx with its own 502, from the response headers phase.
struct Mask;

impl Plugin for Mask {
    type Config = ();
    type Filter = MaskFilter;
    fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
        Ok(Mask)
    }
    fn filter(_: &Rc<Self>, _: &Http) -> MaskFilter {
        MaskFilter
    }
}

struct MaskFilter;

impl HttpFilter for MaskFilter {
    fn on_response_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        let status = http.response_header(":status")?.unwrap_or_default();
        if status.as_bytes().starts_with(b"5") {
            let masked = LocalResponse::new(502)
                .header("x-masked", "true")
                .body("the service is unavailable");
            return Ok(http.respond(masked)?);
        }
        Ok(Action::Continue)
    }
    fn on_response_body(&mut self, _: &Http, _: usize, _: bool) -> Result<Action, Error> {
        pwf::info!("response_body");
        Ok(Action::Continue)
    }
}

#[test]
fn local_response_from_the_response_phase_replaces_the_response() {
    let host = Host::builder().build();
    let plugin = host
        .start_vm_with_root(pwf::root_context::<Mask>)
        .unwrap()
        .configure("")
        .unwrap();

    let failing = plugin.open_stream();
    assert_eq!(failing.request_headers(REQUEST, true), HostAction::Continue);
    let upstream = [(":status", "500"), ("x-stack", "trace")];
    assert_eq!(failing.response_headers(upstream, false), HostAction::Pause);
    let response = failing.local_response().expect("a local response was sent");
    assert_eq!(response.status, 502);
    assert_eq!(response.body, b"the service is unavailable");
    assert_eq!(response.headers.get("x-masked"), Some("true"));
    assert_eq!(response.grpc_status, None);
    // The upstream's body never reaches the plugin or the client.
    assert_eq!(
        failing.response_body("Traceback (most recent call last)", true),
        HostAction::Skipped
    );
    assert!(failing.forwarded_response_body().is_empty());
    assert!(host.logs(LogLevel::Info).is_empty());

    let healthy = plugin.open_stream();
    assert_eq!(healthy.request_headers(REQUEST, true), HostAction::Continue);
    assert_eq!(
        healthy.response_headers(RESPONSE, false),
        HostAction::Continue
    );
    assert_eq!(healthy.response_body("ok", true), HostAction::Continue);
    assert_eq!(healthy.local_response(), None);
    assert_eq!(healthy.forwarded_response_body(), b"ok");
    assert_eq!(host.logs(LogLevel::Info), ["response_body"]);
    assert_eq!(plugin.failure(), None);
}
