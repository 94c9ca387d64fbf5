//! gRPC unary calls as futures, in the native host (which follows what Envoy 1.40 was
//! measured to do: `envoy/e2e/tests/grpc_probe.rs`).

use std::rc::Rc;
use std::time::Duration;

use pwf::{
    Action, Error, GrpcErrorKind, GrpcRequest, Http, HttpFilter, LocalResponse, Outcome, Plugin,
    PluginContext, Status,
};
use pwf_test::{Action as HostAction, CallState, Delivery, Host, LogLevel};

fn request(role: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        (":method", "GET"),
        (":path", "/"),
        (":authority", "app"),
        ("x-role", role),
    ]
}

/// Asks the `policy` service about each request, with the request's `x-role`.
struct Checker;

impl Plugin for Checker {
    type Config = ();
    type Filter = CheckerFilter;

    fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
        Ok(Checker)
    }

    fn filter(_: &Rc<Self>, _: &Http) -> CheckerFilter {
        CheckerFilter
    }
}

struct CheckerFilter;

impl HttpFilter for CheckerFilter {
    fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        let role = http.request_header("x-role")?.unwrap_or_default();
        let cluster = if role == "unknown-cluster" {
            "nope"
        } else {
            "policy"
        };
        let call = match GrpcRequest::new(cluster, "acme.Policy", "Check")
            .authority("policy.internal")
            .metadata("x-role", role.as_bytes())
            .message(role.as_bytes())
            .timeout(Duration::from_millis(250))
            .send()
        {
            Ok(call) => call,
            Err(error) => {
                pwf::info!("not sent: {error}");
                return Ok(Action::Continue);
            }
        };
        let handle = http.clone();
        Ok(http.spawn(async move {
            match call.await {
                Ok(answer) => {
                    handle.set_request_header("x-answer", answer.message())?;
                    Ok(Outcome::Continue)
                }
                Err(error) => {
                    pwf::info!("{error}");
                    let status = match error.kind() {
                        GrpcErrorKind::Status { .. } => 403,
                        _ if error.is_timeout() => 504,
                        _ => 503,
                    };
                    Ok(Outcome::Respond(
                        LocalResponse::new(status).body(error.to_string()),
                    ))
                }
            }
        }))
    }
}

fn start(host: &Host) -> pwf_test::Plugin {
    host.start_vm_with_root(pwf::root_context::<Checker>)
        .unwrap()
        .configure("")
        .unwrap()
}

fn host() -> Host {
    Host::builder().cluster("policy").build()
}

#[test]
fn grpc_call_sends_a_grpc_service_with_metadata_message_and_timeout() {
    let host = host();
    let plugin = start(&host);
    let stream = plugin.open_stream();
    assert_eq!(
        stream.request_headers(request("admin"), true),
        HostAction::Pause
    );
    let calls = stream.grpc_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.cluster(), "policy");
    assert_eq!(call.authority().as_deref(), Some("policy.internal"));
    assert_eq!(call.path(), "/acme.Policy/Check");
    assert_eq!(call.metadata().get("x-role"), Some("admin"));
    assert_eq!(call.message(), b"admin");
    assert_eq!(call.timeout(), Some(Duration::from_millis(250)));
    assert_eq!(plugin.grpc_calls().len(), 1);
}

#[test]
fn grpc_call_answer_resumes_the_stream_with_the_message() {
    let host = host();
    let plugin = start(&host);
    let stream = plugin.open_stream();
    stream.request_headers(request("admin"), true);
    assert_eq!(
        stream.grpc_calls()[0].respond(b"allowed"),
        Delivery::Delivered
    );
    assert_eq!(
        stream.request_header("x-answer").as_deref(),
        Some("allowed")
    );
    assert_eq!(stream.resumes().len(), 1);
    assert_eq!(stream.grpc_calls()[0].state(), CallState::Answered);
    assert_eq!(
        stream.grpc_calls()[0].respond(b"again"),
        Delivery::AlreadyAnswered
    );
}

#[test]
fn grpc_call_with_a_service_status_fails_apart_from_a_transport_failure() {
    let host = host();
    let plugin = start(&host);

    let denied = plugin.open_stream();
    denied.request_headers(request("guest"), true);
    denied.grpc_calls()[0].respond_status(7, "guests may not");
    let local = denied.local_response().expect("answered by the plugin");
    assert_eq!(local.status, 403);
    assert_eq!(
        String::from_utf8_lossy(&local.body),
        "gRPC call to cluster `policy` answered status 7 (PERMISSION_DENIED): guests may not"
    );

    let refused = plugin.open_stream();
    refused.request_headers(request("guest"), true);
    refused.grpc_calls()[0].refuse();
    let local = refused.local_response().unwrap();
    assert_eq!(local.status, 503);
    assert!(String::from_utf8_lossy(&local.body).starts_with(
        "gRPC call to cluster `policy` failed in Envoy, status 14 (UNAVAILABLE): upstream connect error"
    ));

    let slow = plugin.open_stream();
    slow.request_headers(request("guest"), true);
    slow.grpc_calls()[0].time_out();
    let local = slow.local_response().unwrap();
    assert_eq!(local.status, 504);
    assert_eq!(
        String::from_utf8_lossy(&local.body),
        "gRPC call to cluster `policy` failed in Envoy, status 14 (UNAVAILABLE): upstream request timeout (response_timeout)"
    );
    assert_eq!(plugin.failure(), None);
}

#[test]
fn grpc_call_to_an_unknown_cluster_fails_the_send() {
    let host = host();
    let plugin = start(&host);
    let stream = plugin.open_stream();
    assert_eq!(
        stream.request_headers(request("unknown-cluster"), true),
        HostAction::Continue
    );
    assert!(stream.grpc_calls().is_empty());
    assert!(host.logs(LogLevel::Info).contains(
        &"not sent: gRPC call to cluster `nope` refused by Envoy (internal failure): is there a cluster of that name?"
            .to_owned()
    ));
    let _ = Status::InternalFailure;
}

#[test]
fn grpc_call_in_flight_is_cancelled_when_its_stream_ends() {
    let host = host();
    let plugin = start(&host);
    let stream = plugin.open_stream();
    stream.request_headers(request("admin"), true);
    let call = stream.grpc_calls()[0].clone();
    stream.end().unwrap();
    // The stream's task dropped its PendingGrpcCall, which cancelled the call.
    assert_eq!(call.state(), CallState::Cancelled);
    assert_eq!(call.respond(b"late"), Delivery::Cancelled);
    assert_eq!(plugin.failure(), None);
}

#[test]
fn grpc_request_refuses_a_zero_timeout_and_bad_metadata() {
    let zero = GrpcRequest::new("policy", "acme.Policy", "Check")
        .timeout(Duration::ZERO)
        .send()
        .unwrap_err();
    assert_eq!(zero.kind(), &GrpcErrorKind::ZeroTimeout);
    let upper = GrpcRequest::new("policy", "acme.Policy", "Check")
        .metadata("X-Role", "a")
        .send()
        .unwrap_err();
    assert_eq!(
        upper.kind(),
        &GrpcErrorKind::InvalidMetadata("X-Role".to_owned())
    );
    let newline = GrpcRequest::new("policy", "acme.Policy", "Check")
        .metadata("x-role", "a\nb")
        .send()
        .unwrap_err();
    assert!(matches!(newline.kind(), GrpcErrorKind::InvalidMetadata(_)));
    let long = GrpcRequest::new("c".repeat(200), "acme.Policy", "Check")
        .send()
        .unwrap_err();
    assert_eq!(long.kind(), &GrpcErrorKind::ServiceTooLong);
}
