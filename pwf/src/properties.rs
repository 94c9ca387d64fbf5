//! Envoy attributes ("properties"), typed.
//!
//! Each getter reads one of Envoy's attributes; `Ok(None)` means Envoy has no
//! value for it here (for example a request attribute outside a stream).
//! [`get`] and [`set`] reach any attribute by path.

use std::time::{Duration, SystemTime};

use crate::error::HostError;
use crate::host;

/// The raw bytes of the attribute at `path` (`&["request", "path"]`).
///
/// ```no_run
/// // `upstream.address`: the upstream host the request went to.
/// if let Some(bytes) = pwf::properties::get(&["upstream", "address"])? {
///     pwf::info!("upstream: {}", String::from_utf8_lossy(&bytes));
/// }
/// # Ok::<(), pwf::HostError>(())
/// ```
pub fn get(path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
    host::get_property(path)
}

/// Sets the attribute at `path`, where Envoy allows it: a filter-state entry
/// such as `&["my_key"]`, readable later by other filters and the access log.
///
/// ```no_run
/// // Envoy keeps it as filter state `wasm.tenant`: the access log reads
/// // it as `%FILTER_STATE(wasm.tenant:PLAIN)%`.
/// pwf::properties::set(&["tenant"], b"acme")?;
/// # Ok::<(), pwf::HostError>(())
/// ```
pub fn set(path: &[&str], value: &[u8]) -> Result<(), HostError> {
    host::set_property(path, value)
}

fn text(path: &[&str]) -> Result<Option<String>, HostError> {
    Ok(get(path)?.map(|bytes| crate::shown::lossy(&bytes)))
}

/// The request path, with the query (`request.path`).
///
/// ```no_run
/// let path = pwf::properties::request_path()?.unwrap_or_default();
/// let is_api = path.starts_with("/api/");
/// # Ok::<(), pwf::HostError>(())
/// ```
pub fn request_path() -> Result<Option<String>, HostError> {
    text(&["request", "path"])
}

/// The request method (`request.method`).
///
/// ```no_run
/// let read_only = matches!(pwf::properties::request_method()?.as_deref(), Some("GET" | "HEAD"));
/// # Ok::<(), pwf::HostError>(())
/// ```
pub fn request_method() -> Result<Option<String>, HostError> {
    text(&["request", "method"])
}

/// The downstream peer's address, `ip:port` (`source.address`).
///
/// ```no_run
/// if let Some(peer) = pwf::properties::source_address()? {
///     pwf::info!("client {peer}");
/// }
/// # Ok::<(), pwf::HostError>(())
/// ```
pub fn source_address() -> Result<Option<String>, HostError> {
    text(&["source", "address"])
}

/// The downstream peer's IP address, without its port: `source.address`
/// through [`ip_without_port`]. A per-client key that does not change with
/// each connection.
///
/// ```no_run
/// let client = pwf::properties::client_ip()?.unwrap_or_default();
/// # Ok::<(), pwf::HostError>(())
/// ```
pub fn client_ip() -> Result<Option<String>, HostError> {
    Ok(source_address()?.map(|address| ip_without_port(&address).to_owned()))
}

/// The IP of an `ip:port` address as Envoy writes them: `10.0.0.7:51234`
/// gives `10.0.0.7`, `[2001:db8::1]:443` gives `2001:db8::1`. An address
/// without a port (a bare IPv6 address, a pipe path) is returned whole.
///
/// ```
/// use pwf::properties::ip_without_port;
///
/// assert_eq!(ip_without_port("10.0.0.7:51234"), "10.0.0.7");
/// assert_eq!(ip_without_port("[2001:db8::1]:443"), "2001:db8::1");
/// assert_eq!(ip_without_port("2001:db8::1"), "2001:db8::1");
/// assert_eq!(ip_without_port("10.0.0.7"), "10.0.0.7");
/// ```
pub fn ip_without_port(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        if let Some((ip, _)) = rest.split_once(']') {
            return ip;
        }
    }
    match address.split_once(':') {
        Some((ip, port)) if !port.contains(':') => ip,
        _ => address,
    }
}

/// The name of the route the request matched (`route_name`).
///
/// ```no_run
/// let route = pwf::properties::route_name()?.unwrap_or_else(|| "unnamed".to_owned());
/// # Ok::<(), pwf::HostError>(())
/// ```
pub fn route_name() -> Result<Option<String>, HostError> {
    text(&["route_name"])
}

/// The name of the upstream cluster of the route (`cluster_name`).
///
/// ```no_run
/// if let Some(cluster) = pwf::properties::cluster_name()? {
///     pwf::debug!("routed to {cluster}");
/// }
/// # Ok::<(), pwf::HostError>(())
/// ```
pub fn cluster_name() -> Result<Option<String>, HostError> {
    text(&["cluster_name"])
}

/// The plugin's name in Envoy's config (`plugin_name`).
///
/// ```no_run
/// let name = pwf::properties::plugin_name()?.unwrap_or_default();
/// # Ok::<(), pwf::HostError>(())
/// ```
pub fn plugin_name() -> Result<Option<String>, HostError> {
    text(&["plugin_name"])
}

/// The plugin's root id (`plugin_root_id`).
///
/// ```no_run
/// let root_id = pwf::properties::plugin_root_id()?.unwrap_or_default();
/// # Ok::<(), pwf::HostError>(())
/// ```
pub fn plugin_root_id() -> Result<Option<String>, HostError> {
    text(&["plugin_root_id"])
}

/// The VM id the plugin runs under (`plugin_vm_id`).
///
/// ```no_run
/// // Shared data and queues are per VM id.
/// let vm_id = pwf::properties::plugin_vm_id()?.unwrap_or_default();
/// let queue = pwf::SharedQueue::resolve(&vm_id, "jobs")?;
/// # Ok::<(), pwf::HostError>(())
/// ```
pub fn plugin_vm_id() -> Result<Option<String>, HostError> {
    text(&["plugin_vm_id"])
}

/// A string field of the node's metadata (`node.metadata.<key>`).
///
/// ```no_run
/// // `node: { metadata: { zone: "eu-west-1a" } }` in Envoy's bootstrap.
/// let zone = pwf::properties::node_metadata("zone")?;
/// # Ok::<(), pwf::HostError>(())
/// ```
pub fn node_metadata(key: &str) -> Result<Option<String>, HostError> {
    text(&["node", "metadata", key])
}

/// The node's id (`node.id`).
///
/// ```no_run
/// let node = pwf::properties::node_id()?.unwrap_or_default();
/// # Ok::<(), pwf::HostError>(())
/// ```
pub fn node_id() -> Result<Option<String>, HostError> {
    text(&["node", "id"])
}

/// The host's current time.
///
/// ```no_run
/// use std::time::UNIX_EPOCH;
///
/// let now = pwf::properties::now()?;
/// let seconds = now.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
/// # Ok::<(), pwf::HostError>(())
/// ```
pub fn now() -> Result<SystemTime, HostError> {
    let nanos = host::current_time_nanos()?;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos))
}
