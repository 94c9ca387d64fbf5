//! Loads a plugin with a configuration and says how it went:
//! `cargo run -p pwf-bench-meter --example configure -- plugin.wasm '{"key": 1}'`.

use pwf_bench_meter::{Vm, VmOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(path), configuration) = (args.next(), args.next().unwrap_or_default()) else {
        eprintln!("usage: configure <plugin.wasm> [configuration]");
        std::process::exit(2);
    };
    let wasm = match std::fs::read(&path) {
        Ok(wasm) => wasm,
        Err(error) => {
            eprintln!("{path}: {error}");
            std::process::exit(2);
        }
    };
    let options = VmOptions {
        configuration: configuration.into_bytes(),
        ..VmOptions::default()
    };
    match Vm::load(&wasm, options) {
        Ok(mut vm) => println!(
            "configured: {} pages at instantiation; logs: {:?}",
            vm.pages_at_instantiation(),
            vm.take_logs()
        ),
        Err(error) if error.is_refusal() => println!("refused: {error}"),
        Err(error) => {
            println!("failed: {error}");
            std::process::exit(1);
        }
    }
}
