//! TCP plugins (`TcpPlugin`, `TcpFilter`, `Tcp`) through the native test host.

use std::rc::Rc;

use pwf::{Action, Error, Peer, PluginContext, Tcp, TcpFilter, TcpPlugin};
use pwf_test::{Action as HostAction, Host, LogLevel, Peer as HostPeer, Side};

/// A filter that upper-cases the client's bytes, brackets the upstream's, fails on
/// `fail`, and logs every event it sees at info level.
struct Shout;

impl TcpPlugin for Shout {
    type Config = ();
    type Filter = ShoutFilter;

    fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
        Ok(Shout)
    }

    fn filter(_: &Rc<Self>, _: &Tcp) -> ShoutFilter {
        ShoutFilter
    }
}

struct ShoutFilter;

impl TcpFilter for ShoutFilter {
    fn on_new_connection(&mut self, tcp: &Tcp) -> Result<Action, Error> {
        pwf::info!("new connection {}", tcp.context_id());
        Ok(Action::Continue)
    }

    fn on_downstream_data(
        &mut self,
        tcp: &Tcp,
        size: usize,
        end_of_stream: bool,
    ) -> Result<Action, Error> {
        let data = tcp.downstream_data(0, size)?;
        pwf::info!(
            "downstream {size} {end_of_stream} {}",
            String::from_utf8_lossy(&data)
        );
        if data.starts_with(b"fail") {
            return Err(Error::msg("bad client bytes"));
        }
        tcp.set_downstream_data(&data.to_ascii_uppercase())?;
        Ok(Action::Continue)
    }

    fn on_upstream_data(
        &mut self,
        tcp: &Tcp,
        size: usize,
        end_of_stream: bool,
    ) -> Result<Action, Error> {
        let data = tcp.upstream_data(0, size)?;
        pwf::info!(
            "upstream {size} {end_of_stream} {}",
            String::from_utf8_lossy(&data)
        );
        let mut bracketed = b"[".to_vec();
        bracketed.extend_from_slice(&data);
        bracketed.push(b']');
        tcp.set_upstream_data(&bracketed)?;
        Ok(Action::Continue)
    }

    fn on_downstream_close(&mut self, _: &Tcp, peer: Peer) {
        pwf::info!("downstream closed by {peer:?}");
    }

    fn on_upstream_close(&mut self, _: &Tcp, peer: Peer) {
        pwf::info!("upstream closed by {peer:?}");
    }

    fn on_log(&mut self, tcp: &Tcp) {
        pwf::info!("log {}", tcp.context_id());
    }
}

fn plugin(host: &Host) -> pwf_test::Plugin {
    host.start_vm_with_root(pwf::tcp_root_context::<Shout>)
        .unwrap()
        .configure("")
        .unwrap()
}

fn info_after_start(host: &Host, skip: usize) -> Vec<String> {
    host.logs(LogLevel::Info).into_iter().skip(skip).collect()
}

#[test]
fn new_connection_reaches_the_filter_and_continues() {
    let host = Host::default();
    let connection = plugin(&host).open_connection();
    assert_eq!(connection.opened(), HostAction::Continue);
    let id = connection.context_id();
    assert!(host
        .logs(LogLevel::Info)
        .contains(&format!("new connection {id}")));
}

#[test]
fn downstream_data_is_read_and_its_rewrite_passes_on() {
    let host = Host::default();
    let connection = plugin(&host).open_connection();
    let before = host.logs(LogLevel::Info).len();
    assert_eq!(
        connection.downstream_data("hello ", false),
        HostAction::Continue
    );
    assert_eq!(
        connection.downstream_data("tcp", true),
        HostAction::Continue
    );
    assert_eq!(connection.forwarded_downstream_data(), b"HELLO TCP");
    assert_eq!(
        info_after_start(&host, before),
        ["downstream 6 false hello ", "downstream 3 true tcp"]
    );
}

#[test]
fn upstream_data_is_read_and_its_rewrite_passes_on() {
    let host = Host::default();
    let connection = plugin(&host).open_connection();
    let before = host.logs(LogLevel::Info).len();
    assert_eq!(connection.upstream_data("pong", true), HostAction::Continue);
    assert_eq!(connection.forwarded_upstream_data(), b"[pong]");
    assert_eq!(connection.forwarded_downstream_data(), b"");
    assert_eq!(info_after_start(&host, before), ["upstream 4 true pong"]);
}

#[test]
fn a_filter_error_is_logged_and_closes_the_downstream_connection() {
    let host = Host::default();
    let plugin = plugin(&host);
    let connection = plugin.open_connection();
    assert_eq!(
        connection.downstream_data("ok", false),
        HostAction::Continue
    );
    assert!(host.logs(LogLevel::Error).is_empty());
    assert_eq!(connection.downstream_data("fail", false), HostAction::Pause);
    assert!(connection.closed_by_plugin(Side::Downstream));
    assert!(!connection.closed_by_plugin(Side::Upstream));
    let errors = host.logs(LogLevel::Error);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("filter failed, closing: bad client bytes"),
        "{errors:?}"
    );
    // Only the bytes before the failure passed on; Envoy closes the connection.
    assert_eq!(connection.forwarded_downstream_data(), b"OK");
    assert_eq!(
        connection.downstream_data("late", false),
        HostAction::Skipped
    );
    // An error is not a failure: the VM goes on serving other connections.
    assert_eq!(plugin.failure(), None);
    let next = plugin.open_connection();
    assert_eq!(next.downstream_data("next", true), HostAction::Continue);
    assert_eq!(next.forwarded_downstream_data(), b"NEXT");
}

#[test]
fn close_events_reach_the_filter_with_their_peer() {
    let host = Host::default();
    let connection = plugin(&host).open_connection();
    let before = host.logs(LogLevel::Info).len();
    connection.upstream_close(HostPeer::Local).unwrap();
    connection.downstream_close(HostPeer::Remote).unwrap();
    let other = plugin(&host).open_connection();
    let before_other = host.logs(LogLevel::Info).len();
    other.downstream_close(HostPeer::Unknown).unwrap();
    assert_eq!(
        info_after_start(&host, before)[..2],
        ["upstream closed by Local", "downstream closed by Remote"]
    );
    assert_eq!(
        info_after_start(&host, before_other),
        ["downstream closed by Unknown"]
    );
}

#[test]
fn on_log_runs_at_the_end() {
    let host = Host::default();
    let connection = plugin(&host).open_connection();
    let id = connection.context_id();
    connection.downstream_data("x", true);
    assert!(!host.logs(LogLevel::Info).contains(&format!("log {id}")));
    connection.end().unwrap();
    assert!(connection.is_ended());
    assert_eq!(host.logs(LogLevel::Info).last(), Some(&format!("log {id}")));
}
