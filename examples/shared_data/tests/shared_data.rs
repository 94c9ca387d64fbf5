//! `shared_data` on the native test host: one counter shared by every worker.

use std::sync::mpsc;

use pwf_test::{Action, ConfigureError, Host, LogLevel, Plugin, Stream, Vm};
use shared_data::SharedData;

const KEY: &str = "shared_data_key";
const REQUEST: [(&str, &str); 3] = [(":method", "GET"), (":path", "/"), (":authority", "app")];
const RESPONSE: [(&str, &str); 1] = [(":status", "200")];

/// Starts a worker VM and configures the plugin with `config`.
fn worker(host: &Host, config: &str) -> (Vm, Plugin) {
    let vm = host
        .start_vm_with_root(pwf::root_context::<SharedData>)
        .unwrap();
    let plugin = vm.configure(config).unwrap();
    (vm, plugin)
}

/// Runs one whole request through `plugin` and returns its stream.
fn request(plugin: &Plugin) -> Stream {
    let stream = plugin.open_stream();
    assert_eq!(stream.request_headers(REQUEST, true), Action::Continue);
    assert_eq!(stream.response_headers(RESPONSE, true), Action::Continue);
    stream
}

fn shared_value(stream: &Stream) -> Option<u64> {
    stream
        .response_header("x-shared-value")
        .map(|value| value.parse().unwrap())
}

fn stored(host: &Host) -> Option<u64> {
    host.shared_data(KEY)
        .map(|bytes| u64::from_le_bytes(bytes.try_into().unwrap()))
}

/// Makes `vm_a`'s next write of the counter wait while worker `b` runs a whole request;
/// returns where `b`'s stream will be sent.
fn interleave(host: &Host, vm_a: &Vm, b: Plugin) -> mpsc::Receiver<Stream> {
    let (sender, receiver) = mpsc::channel();
    host.before_set_shared_data(vm_a, KEY, move || {
        let _ = sender.send(request(&b));
    });
    receiver
}

#[test]
fn increment_interleaved_between_read_and_write_counts_both_requests() {
    let host = Host::default();
    let (vm_a, a) = worker(&host, "");
    let (_, b) = worker(&host, "");
    assert_eq!(shared_value(&request(&b)), Some(1));
    // A reads 1; before it writes 2, B reads 1 and writes 2: a plain get/set would
    // write 2 again and lose B's update.
    let b_stream = interleave(&host, &vm_a, b);
    let a_stream = request(&a);
    let b_stream = b_stream.try_recv().expect("B ran inside A's update");
    assert_eq!(shared_value(&b_stream), Some(2));
    assert_eq!(shared_value(&a_stream), Some(3));
    assert_eq!(stored(&host), Some(3));
}

#[test]
fn increment_creating_the_key_concurrently_counts_both_requests() {
    let host = Host::default();
    let (vm_a, a) = worker(&host, "");
    let (_, b) = worker(&host, "");
    // Both read the key as absent: A is about to create it when B creates it first.
    let b_stream = interleave(&host, &vm_a, b);
    let a_stream = request(&a);
    let b_stream = b_stream.try_recv().expect("B ran inside A's update");
    assert_eq!(shared_value(&b_stream), Some(1));
    assert_eq!(shared_value(&a_stream), Some(2));
    assert_eq!(stored(&host), Some(2));
}

#[test]
fn new_vm_on_the_same_host_keeps_counting() {
    let host = Host::default();
    let (_, first) = worker(&host, "");
    request(&first);
    request(&first);
    let (_, second) = worker(&host, "");
    assert_eq!(shared_value(&request(&second)), Some(3));
}

#[test]
fn reconfigure_of_the_same_vm_keeps_counting() {
    let host = Host::default();
    let (vm, plugin) = worker(&host, "");
    request(&plugin);
    request(&plugin);
    let reconfigured = vm.configure("").unwrap();
    assert_eq!(shared_value(&request(&reconfigured)), Some(3));
}

#[test]
fn increment_out_of_retries_lets_the_request_continue_without_a_value() {
    let host = Host::default();
    let (_, plugin) = worker(&host, "");
    request(&plugin);
    host.fail_cas(KEY, 1000);
    let stream = plugin.open_stream();
    assert_eq!(stream.request_headers(REQUEST, true), Action::Continue);
    assert_eq!(stream.response_headers(RESPONSE, true), Action::Continue);
    assert_eq!(stream.response_header("x-shared-value"), None);
    assert_eq!(stream.local_response(), None);
    assert_eq!(stored(&host), Some(1));
}

#[test]
fn increment_out_of_retries_logs_that_it_gave_up_after_64_attempts() {
    let host = Host::default();
    let (_, plugin) = worker(&host, "");
    request(&plugin);
    host.fail_cas(KEY, 1000);
    request(&plugin);
    assert_eq!(
        host.logs(LogLevel::Error),
        [
            "shared key `shared_data_key`: gave up after 64 attempts, each lost to a concurrent write"
        ]
    );
}

#[test]
fn increment_logs_the_shared_value_at_info() {
    let host = Host::default();
    let (_, plugin) = worker(&host, "");
    request(&plugin);
    request(&plugin);
    assert_eq!(
        host.logs(LogLevel::Info),
        ["shared value: 1", "shared value: 2"]
    );
}

#[test]
fn response_carries_the_value_of_its_own_request() {
    let host = Host::default();
    let (_, plugin) = worker(&host, "");
    let a = plugin.open_stream();
    let b = plugin.open_stream();
    a.request_headers(REQUEST, true);
    b.request_headers(REQUEST, true);
    b.response_headers(RESPONSE, true);
    a.response_headers(RESPONSE, true);
    assert_eq!(a.response_header("x-shared-value").as_deref(), Some("1"));
    assert_eq!(b.response_header("x-shared-value").as_deref(), Some("2"));
}

#[test]
fn counter_is_stored_as_8_little_endian_bytes() {
    let host = Host::default();
    let (_, plugin) = worker(&host, "");
    for _ in 0..3 {
        request(&plugin);
    }
    assert_eq!(host.shared_data(KEY), Some(vec![3, 0, 0, 0, 0, 0, 0, 0]));
}

#[test]
fn increment_continues_from_a_value_another_plugin_stored() {
    let host = Host::default();
    host.set_shared_data(KEY, 41u64.to_le_bytes());
    let (_, plugin) = worker(&host, "");
    assert_eq!(shared_value(&request(&plugin)), Some(42));
}

#[test]
fn increment_uses_the_configured_key() {
    let host = Host::default();
    let (_, plugin) = worker(&host, r#"{"sharedDataKey": "requests"}"#);
    request(&plugin);
    assert_eq!(
        host.shared_data("requests"),
        Some(1u64.to_le_bytes().to_vec())
    );
    assert_eq!(host.shared_data(KEY), None);
}

#[test]
fn configure_with_an_empty_key_is_rejected_naming_the_key() {
    let host = Host::default();
    let vm = host
        .start_vm_with_root(pwf::root_context::<SharedData>)
        .unwrap();
    assert_eq!(
        vm.configure(r#"{"sharedDataKey": ""}"#).unwrap_err(),
        ConfigureError::Rejected
    );
    assert_eq!(
        host.logs(LogLevel::Error),
        ["plugin: invalid plugin configuration: sharedDataKey: must not be empty"]
    );
}
