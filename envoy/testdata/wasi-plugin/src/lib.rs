//! What a plugin gets from Envoy's WASI layer, and when Envoy delivers a request body
//! held behind paused headers: one request path per question, each answered in the log
//! (`wasi-plugin: <path>: <what happened>`). The e2e tests (`envoy/e2e/tests/wasi.rs`)
//! run it in Envoy; pwf-test's wasm backend answers the same way.
//!
//! - `/stdout`, `/stderr`: `println!` and `eprintln!`;
//! - `/env`: `std::env::vars()` and `std::env::args()`;
//! - `/clock`: `SystemTime::now()` and `Instant::now()`;
//! - `/random`: `RandomState` (WASI `random_get`) twice;
//! - `/file`: `std::fs::read("/etc/hostname")`;
//! - `/sleep`: `std::thread::sleep(1 ms)` (the VM panics);
//! - `/pause`: headers paused on an HTTP call, resumed when it answers; every body
//!   phase logs when it runs and whether the call has answered by then.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pwf::{
    Action, DispatchGroup, Error, Http, HttpFilter, Outcome, Plugin, PluginContext, Request,
};

/// The plugin.
pub struct Wasi;

impl Plugin for Wasi {
    type Config = ();
    type Filter = WasiFilter;

    fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
        Ok(Wasi)
    }

    fn filter(_: &Rc<Self>, _: &Http) -> WasiFilter {
        WasiFilter {
            answered: Rc::new(Cell::new(false)),
        }
    }
}

/// The filter of [`Wasi`].
pub struct WasiFilter {
    answered: Rc<Cell<bool>>,
}

fn say(http: &Http, what: &str) {
    http.log(pwf::LogLevel::Info, &format!("wasi-plugin: {what}"));
}

impl HttpFilter for WasiFilter {
    fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        let path = http.request_header(":path")?.unwrap_or_default();
        match path.as_bytes() {
            b"/stdout" => {
                println!("wasi-plugin: printed to stdout");
                say(http, "/stdout: done");
            }
            b"/stderr" => {
                eprintln!("wasi-plugin: printed to stderr");
                say(http, "/stderr: done");
            }
            b"/env" => {
                let vars = std::env::vars().count();
                let args = std::env::args().count();
                say(http, &format!("/env: {vars} variables, {args} arguments"));
            }
            b"/clock" => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                let start = Instant::now();
                let later = Instant::now();
                say(
                    http,
                    &format!(
                        "/clock: {} s since the epoch, monotonic clock steps {:?}",
                        now.as_secs(),
                        later - start
                    ),
                );
            }
            b"/random" => {
                let a = RandomState::new().hash_one(1u8);
                let b = RandomState::new().hash_one(1u8);
                say(http, &format!("/random: two seeds differ: {}", a != b));
            }
            b"/file" => {
                let read = std::fs::read("/etc/hostname");
                say(http, &format!("/file: {:?}", read.map(|bytes| bytes.len())));
            }
            b"/sleep" => {
                std::thread::sleep(Duration::from_millis(1));
                say(http, "/sleep: slept");
            }
            b"/pause" => {
                let mut group = DispatchGroup::new();
                group.dispatch(Request::get("httpbin", "/anything"))?;
                let answered = self.answered.clone();
                return Ok(group.wait(http, move |http, _| {
                    answered.set(true);
                    say(http, "/pause: the call answered, headers resumed");
                    Ok(Outcome::Continue)
                }));
            }
            _ => {}
        }
        Ok(Action::Continue)
    }

    fn on_request_body(
        &mut self,
        http: &Http,
        body_size: usize,
        end_of_stream: bool,
    ) -> Result<Action, Error> {
        say(
            http,
            &format!(
                "body phase: {body_size} bytes, end_of_stream {end_of_stream}, \
                 call answered before: {}",
                self.answered.get()
            ),
        );
        Ok(Action::Continue)
    }
}

pwf::main!(Wasi);
