//! Starting, configuring, reconfiguring, ticks and VM failures.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel};
use pwf_test::{Action, ConfigureError, Host, StartError};
use support::{root, script, Event};

fn plugin_config() -> Option<Vec<u8>> {
    hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX).unwrap()
}

#[test]
fn start_vm_reports_rejection_by_on_vm_start() {
    let name = script("start_vm_reports_rejection", |event| {
        event != Event::VmStart
    });
    let host = Host::default();
    assert_eq!(
        host.start_vm_with_root_and_config(root, name).unwrap_err(),
        StartError::Rejected
    );
}

#[test]
fn configure_reads_configuration_only_during_on_configure() {
    let name = script("configure_reads_only_during", |event| {
        match event {
            Event::Configure(size) => {
                let config = plugin_config().unwrap();
                assert_eq!(config.len(), size);
                hostcalls::log(LogLevel::Info, &String::from_utf8(config).unwrap()).unwrap();
            }
            Event::RequestHeaders(..) => {
                let seen = format!("{:?}", plugin_config());
                hostcalls::log(LogLevel::Info, &seen).unwrap();
            }
            _ => {}
        }
        true
    });
    let host = Host::default();
    let plugin = host
        .start_vm_with_root_and_config(root, name)
        .unwrap()
        .configure(r#"{"a":1}"#)
        .unwrap();
    let stream = plugin.open_stream();
    assert_eq!(
        stream.request_headers([(":path", "/")], true),
        Action::Continue
    );
    assert_eq!(host.logs(LogLevel::Info), [r#"{"a":1}"#, "None"]);
}

#[test]
fn configure_reports_rejection_by_on_configure() {
    let name = script("configure_reports_rejection", |event| {
        !matches!(event, Event::Configure(0))
    });
    let vm = Host::default()
        .start_vm_with_root_and_config(root, name)
        .unwrap();
    assert_eq!(vm.configure("").unwrap_err(), ConfigureError::Rejected);
    assert!(vm.configure("ok").is_ok());
}

#[test]
fn configure_again_creates_a_new_root_and_keeps_shared_data() {
    let starts = Arc::new(AtomicUsize::new(0));
    let counted = starts.clone();
    let name = script("configure_again_new_root", move |event| {
        if event == Event::VmStart {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            if n == 0 {
                hostcalls::set_shared_data("k", Some(b"kept"), None).unwrap();
            }
        }
        true
    });
    let host = Host::default();
    let vm = host.start_vm_with_root_and_config(root, name).unwrap();
    let first = vm.configure("1").unwrap();
    let second = vm.configure("2").unwrap();
    assert_ne!(first.context_id(), second.context_id());
    assert_eq!(starts.load(Ordering::SeqCst), 2);
    assert_eq!(host.shared_data("k").as_deref(), Some(&b"kept"[..]));
}

#[test]
fn tick_runs_on_tick_and_records_the_period() {
    let ticks = Arc::new(AtomicUsize::new(0));
    let counted = ticks.clone();
    let name = script("tick_runs", move |event| {
        match event {
            Event::Configure(_) => hostcalls::set_tick_period(Duration::from_millis(250)).unwrap(),
            Event::Tick => {
                counted.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
        true
    });
    let plugin = Host::default()
        .start_vm_with_root_and_config(root, name)
        .unwrap()
        .configure("")
        .unwrap();
    assert_eq!(plugin.tick_period(), Some(Duration::from_millis(250)));
    plugin.tick().unwrap();
    plugin.tick().unwrap();
    assert_eq!(ticks.load(Ordering::SeqCst), 2);
}

#[test]
fn panic_fails_the_vm_and_later_calls() {
    let name = script("panic_fails_vm", |event| {
        if let Event::RequestHeaders(..) = event {
            panic!("boom in headers");
        }
        true
    });
    let host = Host::default();
    let plugin = host
        .start_vm_with_root_and_config(root, name)
        .unwrap()
        .configure("")
        .unwrap();
    let stream = plugin.open_stream();
    let Action::Failed(message) = stream.request_headers([(":path", "/")], true) else {
        panic!("the phase should fail");
    };
    assert!(message.contains("boom in headers"), "{message}");
    assert_eq!(plugin.failure(), Some(message.clone()));
    assert_eq!(
        stream.response_headers([(":status", "200")], true),
        Action::Failed(message.clone())
    );
    assert_eq!(plugin.tick(), Err(pwf_test::VmFailed(message)));
}

#[test]
fn panic_is_logged_by_the_sdk_panic_hook() {
    let name = script("panic_logged_by_hook", |event| {
        if event == Event::Tick {
            panic!("tick exploded");
        }
        true
    });
    let host = Host::default();
    let plugin = host
        .start_vm_with_root_and_config(root, name)
        .unwrap()
        .configure("")
        .unwrap();
    assert!(plugin.tick().is_err());
    let critical = host.logs(LogLevel::Critical);
    assert_eq!(critical.len(), 1, "{critical:?}");
    assert!(critical[0].contains("tick exploded"), "{critical:?}");
}

#[test]
fn vms_on_one_host_are_separate_workers() {
    let name = script("separate_workers", |_| true);
    let host = Host::default();
    let a = host
        .start_vm_with_config(support::entry, name.clone())
        .unwrap();
    let b = host.start_vm_with_root_and_config(root, name).unwrap();
    assert_eq!((a.index(), b.index()), (0, 1));
    let a = a.configure("").unwrap();
    let b = b.configure("").unwrap();
    // Each worker numbers its own contexts, like separate VMs.
    assert_eq!(a.open_stream().context_id(), b.open_stream().context_id());
}
