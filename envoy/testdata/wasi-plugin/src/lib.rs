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
//! - `/sleep`: `std::thread::sleep(200 ms)`, and how long it took;
//! - `/poll`: WASI `poll_oneoff` itself, for one 1 ms clock subscription: what it
//!   returns, and what it writes;
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
                let start = Instant::now();
                std::thread::sleep(Duration::from_millis(200));
                let waited = start.elapsed().as_millis();
                say(http, &format!("/sleep: returned after {waited} ms of 200"));
            }
            b"/poll" => {
                say(http, &format!("/poll: {}", poll::probe()));
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

/// `poll_oneoff` called directly with one relative clock subscription, its event filled
/// with a pattern first, so that the log shows what the host wrote and what it left.
mod poll {
    #[cfg(target_os = "wasi")]
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        fn poll_oneoff(
            subscriptions: *const u8,
            events: *mut u8,
            n: u32,
            events_out: *mut u32,
        ) -> u16;
    }

    /// `errno …, nevents …, event error …, type …` (`0xaaaa`, `0xaa`: left unwritten).
    #[cfg(target_os = "wasi")]
    pub(crate) fn probe() -> String {
        let mut subscription = [0u8; 48];
        subscription[0..8].copy_from_slice(&7u64.to_le_bytes()); // userdata
        subscription[8] = 0; // eventtype: clock
        subscription[16..20].copy_from_slice(&0u32.to_le_bytes()); // clock: realtime
        subscription[24..32].copy_from_slice(&1_000_000u64.to_le_bytes()); // 1 ms, relative
        let mut event = [0xaau8; 32];
        let mut nevents = 0xdead_beef_u32;
        // SAFETY: the buffers have the sizes WASI preview 1 gives these records.
        let errno =
            unsafe { poll_oneoff(subscription.as_ptr(), event.as_mut_ptr(), 1, &mut nevents) };
        let error = u16::from_le_bytes([event[8], event[9]]);
        format!(
            "errno {errno}, nevents {nevents:#x}, event error {error:#x}, type {:#x}",
            event[10]
        )
    }

    /// Natively there is no WASI layer to ask.
    #[cfg(not(target_os = "wasi"))]
    pub(crate) fn probe() -> String {
        "not a wasm build".into()
    }
}
