//! What only the compiled module shows: the same plugin, run natively and in wasm mode.
//!
//! Each module is built (`cargo build --target wasm32-wasip1 --release -p ..`) the first
//! time a test of this file asks for it.

use pwf_test::{release_module, Action, Host, Mode, StartError};

const BROKEN: &str = "broken-plugin";
const UNREGISTERED: &str = "unregistered-plugin";

fn request(path: &str) -> [(&'static str, String); 3] {
    [
        (":method", "GET".to_string()),
        (":path", path.to_string()),
        (":authority", "app".to_string()),
    ]
}

/// The host running `package`'s release module (built first, if it is missing or stale).
fn wasm_host(package: &str) -> Host {
    let module = release_module(package).unwrap_or_else(|why| panic!("{why}"));
    Host::builder().wasm_module(module).build()
}

fn native_host() -> Host {
    Host::builder().mode(Mode::Native).build()
}

#[test]
fn plugin_without_main_starts_natively_and_its_module_is_refused_naming_the_fix() {
    let native = native_host();
    native
        .start_vm_with_root(pwf::root_context::<unregistered_plugin::Forgotten>)
        .unwrap();
    let host = wasm_host(UNREGISTERED);
    let error = host
        .start_vm_with_root(pwf::root_context::<unregistered_plugin::Forgotten>)
        .unwrap_err();
    let StartError::Module(message) = error else {
        panic!("expected a module error, got {error:?}");
    };
    assert!(message.contains("pwf::main!"), "{message}");
}

#[test]
fn sleep_in_a_phase_passes_natively_and_fails_the_vm_in_wasm_saying_why() {
    let native = native_host();
    let plugin = native
        .start_vm_with_root(pwf::root_context::<broken_plugin::Broken>)
        .unwrap()
        .configure("")
        .unwrap();
    assert_eq!(
        plugin
            .open_stream()
            .request_headers(request("/sleep"), true),
        Action::Continue
    );

    let host = wasm_host(BROKEN);
    let vm = host
        .start_vm_with_root(pwf::root_context::<broken_plugin::Broken>)
        .unwrap();
    let plugin = vm.configure("").unwrap();
    let Action::Failed(message) = plugin
        .open_stream()
        .request_headers(request("/sleep"), true)
    else {
        panic!("thread::sleep did not fail the VM");
    };
    // Envoy answers `poll_oneoff` at once with no event, so there the sleep returns
    // without waiting or panics the VM, depending on leftover memory (envoy/e2e/tests/
    // wasi.rs). The test host fails the VM and says so.
    assert!(
        message.starts_with("wasm trap in proxy_on_request_headers: the plugin called WASI `poll_oneoff` (`std::thread::sleep`"),
        "{message}"
    );
    assert!(message.contains("A phase cannot wait"), "{message}");
    // The VM is failed, as Envoy's is: every later request fails too.
    assert!(matches!(
        plugin.open_stream().request_headers(request("/"), true),
        Action::Failed(_)
    ));
    assert_eq!(vm.failure(), Some(message));
}

#[test]
fn panic_fails_the_vm_with_the_message_the_plugin_logged() {
    let host = wasm_host(BROKEN);
    let vm = host
        .start_vm_with_root(pwf::root_context::<broken_plugin::Broken>)
        .unwrap();
    let stream = vm.configure("").unwrap().open_stream();
    let Action::Failed(message) = stream.request_headers(request("/panic"), true) else {
        panic!("the panic did not fail the VM");
    };
    assert!(
        message.contains("broken-plugin: /panic was asked for"),
        "{message}"
    );
    assert!(message.contains("src/lib.rs"), "{message}");
    assert!(!message.contains("wasm backtrace"), "{message}");
}

#[test]
fn leak_of_1_kib_per_request_shows_as_memory_growth_and_a_clean_plugin_stays_flat() {
    assert_eq!(
        native_host()
            .start_vm_with_root(pwf::root_context::<broken_plugin::Broken>)
            .unwrap()
            .memory_pages(),
        None
    );
    let host = wasm_host(BROKEN);
    let vm = host
        .start_vm_with_root(pwf::root_context::<broken_plugin::Broken>)
        .unwrap();
    let plugin = vm.configure("").unwrap();
    let run = |path: &str, requests: usize| {
        for _ in 0..requests {
            let stream = plugin.open_stream();
            assert_eq!(
                stream.request_headers(request(path), true),
                Action::Continue
            );
            stream.end().unwrap();
        }
        vm.memory_pages().unwrap()
    };
    let warm = run("/", 100);
    assert_eq!(run("/", 1000), warm, "a clean plugin grew");
    // 1000 requests leak 1000 KiB: at least 15 pages of 64 KiB.
    let leaked = run("/leak", 1000);
    assert!(leaked >= warm + 15, "{warm} -> {leaked} pages");
}

#[test]
fn allocator_keeps_every_block_of_every_size_class_and_alignment() {
    let host = wasm_host(BROKEN);
    let stream = host
        .start_vm_with_root(pwf::root_context::<broken_plugin::Broken>)
        .unwrap()
        .configure("")
        .unwrap()
        .open_stream();
    assert_eq!(
        stream.request_headers(request("/alloc"), true),
        Action::Continue
    );
    let checked: usize = stream
        .request_header("x-alloc-checked")
        .unwrap()
        .parse()
        .unwrap();
    assert!(checked > 100, "{checked}");
}

#[test]
fn fuel_counts_guest_instructions_in_wasm_and_is_none_natively() {
    let native = native_host()
        .start_vm_with_root(pwf::root_context::<broken_plugin::Broken>)
        .unwrap();
    assert_eq!(native.fuel(), None);
    let host = wasm_host(BROKEN);
    let vm = host
        .start_vm_with_root(pwf::root_context::<broken_plugin::Broken>)
        .unwrap();
    let plugin = vm.configure("").unwrap();
    let before = vm.fuel().unwrap();
    assert!(before > 0);
    plugin.open_stream().request_headers(request("/"), true);
    assert!(vm.fuel().unwrap() > before);
}

#[test]
fn a_package_that_does_not_build_fails_the_start_with_cargos_output() {
    let host = Host::builder().wasm_package("no-such-plugin").build();
    let error = host
        .start_vm_with_root(pwf::root_context::<broken_plugin::Broken>)
        .unwrap_err();
    let StartError::Module(message) = error else {
        panic!("expected a module error, got {error:?}");
    };
    assert!(
        message.starts_with(
            "pwf-test: wasm mode: `cargo build --target wasm32-wasip1 --release -p \
             no-such-plugin` failed"
        ),
        "{message}"
    );
    assert!(message.contains("no-such-plugin"), "{message}");
    assert!(message.contains("did not match any packages"), "{message}");
}
