//! TCP connections (network filters) driven through a raw-SDK `StreamContext` plugin.
//!
//! The plugin's configuration names the behaviour of its connections; each logs the
//! events it sees at info level, so the tests check what reached it.

use proxy_wasm::traits::{Context, RootContext, StreamContext};
use proxy_wasm::types::{Action as SdkAction, ContextType, LogLevel, PeerType};
use pwf_test::{Action, Callback, Host, Peer, Plugin, Side};

struct Root {
    mode: String,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        self.mode = String::from_utf8_lossy(&config).into_owned();
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::StreamContext)
    }

    fn create_stream_context(&self, id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(Conn {
            id,
            mode: self.mode.clone(),
        }))
    }
}

fn root(_context_id: u32) -> Box<dyn RootContext> {
    Box::new(Root {
        mode: String::new(),
    })
}

struct Conn {
    id: u32,
    mode: String,
}

fn note(message: String) {
    proxy_wasm::hostcalls::log(LogLevel::Info, &message).unwrap();
}

fn peer_name(peer: PeerType) -> &'static str {
    match peer {
        PeerType::Local => "local",
        PeerType::Remote => "remote",
        _ => "unknown",
    }
}

impl Context for Conn {
    fn on_done(&mut self) -> bool {
        note(format!("done {}", self.id));
        true
    }
}

impl StreamContext for Conn {
    fn on_new_connection(&mut self) -> SdkAction {
        note(format!("new {}", self.id));
        if self.mode == "hold_new" {
            SdkAction::Pause
        } else {
            SdkAction::Continue
        }
    }

    fn on_downstream_data(&mut self, size: usize, end_of_stream: bool) -> SdkAction {
        let data = self.get_downstream_data(0, size).unwrap_or_default();
        note(format!(
            "down {size} {end_of_stream} {}",
            String::from_utf8_lossy(&data)
        ));
        match self.mode.as_str() {
            "rewrite" => {
                self.set_downstream_data(0, usize::MAX, &data.to_ascii_uppercase());
                SdkAction::Continue
            }
            "until_bang" | "resume" if !data.ends_with(b"!") => SdkAction::Pause,
            "close" if data.starts_with(b"quit") => {
                self.close_downstream();
                SdkAction::Pause
            }
            "panic" => panic!("downstream exploded"),
            _ => SdkAction::Continue,
        }
    }

    fn on_upstream_data(&mut self, size: usize, end_of_stream: bool) -> SdkAction {
        let data = self.get_upstream_data(0, size).unwrap_or_default();
        note(format!(
            "up {size} {end_of_stream} {}",
            String::from_utf8_lossy(&data)
        ));
        match self.mode.as_str() {
            "rewrite" => {
                // Prepend, as Envoy's `copyFrom` does for start 0, size 0.
                self.set_upstream_data(0, 0, b"> ");
                SdkAction::Continue
            }
            "resume" => {
                self.resume_downstream();
                SdkAction::Continue
            }
            "close" if data.starts_with(b"bye") => {
                self.close_upstream();
                SdkAction::Continue
            }
            _ => SdkAction::Continue,
        }
    }

    fn on_downstream_close(&mut self, peer: PeerType) {
        note(format!("down_close {}", peer_name(peer)));
    }

    fn on_upstream_close(&mut self, peer: PeerType) {
        note(format!("up_close {}", peer_name(peer)));
    }

    fn on_log(&mut self) {
        note(format!("log {}", self.id));
    }
}

fn plugin(host: &Host, mode: &str) -> Plugin {
    host.start_vm_with_root(root)
        .unwrap()
        .configure(mode)
        .unwrap()
}

#[test]
fn open_connection_runs_context_create_then_new_connection() {
    let host = Host::default();
    let connection = plugin(&host, "").open_connection();
    assert_eq!(connection.opened(), Action::Continue);
    let id = connection.context_id();
    assert_eq!(host.logs(LogLevel::Info), [format!("new {id}")]);
    assert_eq!(host.log_entries()[0].context_id, id);
    let held = plugin(&host, "hold_new").open_connection();
    assert_eq!(held.opened(), Action::Pause);
}

#[test]
fn data_continued_is_forwarded_as_it_came() {
    let host = Host::default();
    let connection = plugin(&host, "").open_connection();
    assert_eq!(connection.downstream_data("ping", false), Action::Continue);
    assert_eq!(connection.upstream_data("pong", true), Action::Continue);
    assert_eq!(connection.forwarded_downstream_data(), b"ping");
    assert_eq!(connection.forwarded_upstream_data(), b"pong");
    assert_eq!(connection.buffered_downstream_data(), None);
    assert_eq!(
        host.logs(LogLevel::Info)[1..],
        ["down 4 false ping", "up 4 true pong"]
    );
}

#[test]
fn rewrites_of_the_buffers_are_what_passes_on() {
    let host = Host::default();
    let connection = plugin(&host, "rewrite").open_connection();
    connection.downstream_data("hello ", false);
    connection.downstream_data("world", true);
    connection.upstream_data("ok", false);
    assert_eq!(connection.forwarded_downstream_data(), b"HELLO WORLD");
    assert_eq!(connection.forwarded_upstream_data(), b"> ok");
}

#[test]
fn after_a_pause_the_next_event_sees_the_bytes_held_so_far() {
    let host = Host::default();
    let connection = plugin(&host, "until_bang").open_connection();
    assert_eq!(connection.downstream_data("ab", false), Action::Pause);
    assert_eq!(
        connection.buffered_downstream_data().as_deref(),
        Some(&b"ab"[..])
    );
    assert_eq!(connection.forwarded_downstream_data(), b"");
    assert_eq!(connection.downstream_data("cd", false), Action::Pause);
    assert_eq!(connection.downstream_data("!", true), Action::Continue);
    assert_eq!(connection.forwarded_downstream_data(), b"abcd!");
    assert_eq!(connection.buffered_downstream_data(), None);
    assert_eq!(
        host.logs(LogLevel::Info)[1..],
        ["down 2 false ab", "down 4 false abcd", "down 5 true abcd!"]
    );
}

#[test]
fn resuming_a_paused_side_releases_its_bytes_and_is_recorded() {
    let host = Host::default();
    let connection = plugin(&host, "resume").open_connection();
    assert_eq!(connection.downstream_data("held", false), Action::Pause);
    assert_eq!(connection.resumed(Side::Downstream), None);
    assert_eq!(connection.upstream_data("go", false), Action::Continue);
    let resume = connection.resumed(Side::Downstream).unwrap();
    assert_eq!(resume.during, Callback::UpstreamData);
    assert_eq!(connection.resumed(Side::Upstream), None);
    assert_eq!(connection.forwarded_downstream_data(), b"held");
    assert_eq!(connection.resumes().len(), 1);
    // The next bytes are a fresh chunk, not appended to the released ones.
    connection.downstream_data("more!", false);
    assert_eq!(
        host.logs(LogLevel::Info).last().unwrap(),
        "down 5 false more!"
    );
}

#[test]
fn a_plugin_close_is_recorded_and_later_data_is_skipped() {
    let host = Host::default();
    let connection = plugin(&host, "close").open_connection();
    assert_eq!(connection.downstream_data("hi", false), Action::Continue);
    assert!(!connection.closed_by_plugin(Side::Downstream));
    assert_eq!(connection.downstream_data("quit", false), Action::Pause);
    assert!(connection.closed_by_plugin(Side::Downstream));
    assert!(!connection.closed_by_plugin(Side::Upstream));
    assert_eq!(connection.downstream_data("late", false), Action::Skipped);
    assert_eq!(connection.upstream_data("late", false), Action::Skipped);
    assert_eq!(connection.forwarded_downstream_data(), b"hi");

    let other = plugin(&host, "close").open_connection();
    other.upstream_data("bye", false);
    assert!(other.closed_by_plugin(Side::Upstream));
    assert!(!other.closed_by_plugin(Side::Downstream));
}

#[test]
fn close_events_carry_the_peer_once_per_side() {
    let host = Host::default();
    let connection = plugin(&host, "").open_connection();
    connection.downstream_close(Peer::Remote).unwrap();
    connection.downstream_close(Peer::Local).unwrap();
    connection.upstream_close(Peer::Local).unwrap();
    connection.upstream_close(Peer::Unknown).unwrap();
    assert_eq!(
        host.logs(LogLevel::Info)[1..],
        ["down_close remote", "up_close local"]
    );
    assert_eq!(connection.downstream_data("late", false), Action::Skipped);

    let other = plugin(&host, "").open_connection();
    other.upstream_close(Peer::Unknown).unwrap();
    assert_eq!(
        host.logs(LogLevel::Info).last().unwrap(),
        "up_close unknown"
    );
}

#[test]
fn end_runs_done_log_and_delete_once() {
    let host = Host::default();
    let connection = plugin(&host, "").open_connection();
    let id = connection.context_id();
    connection.downstream_data("x", true);
    connection.end().unwrap();
    connection.end().unwrap();
    assert!(connection.is_ended());
    assert_eq!(
        host.logs(LogLevel::Info)[2..],
        [format!("done {id}"), format!("log {id}")]
    );
    assert_eq!(connection.downstream_data("late", false), Action::Skipped);
    connection.downstream_close(Peer::Remote).unwrap();
    assert_eq!(host.logs(LogLevel::Info).len(), 4);
}

#[test]
fn a_panic_in_a_data_event_fails_the_vm_and_later_events() {
    let host = Host::default();
    let plugin = plugin(&host, "panic");
    let connection = plugin.open_connection();
    match connection.downstream_data("x", false) {
        Action::Failed(message) => assert!(message.contains("downstream exploded"), "{message}"),
        other => panic!("the event should fail, got {other:?}"),
    }
    assert!(matches!(
        connection.upstream_data("y", false),
        Action::Failed(_)
    ));
    assert!(connection.downstream_close(Peer::Remote).is_err());
    assert!(connection.end().is_err());
    assert!(matches!(
        plugin.open_connection().opened(),
        Action::Failed(_)
    ));
}
