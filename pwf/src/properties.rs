//! Envoy attributes ("properties"), typed.
//!
//! Each getter reads one of Envoy's attributes; `Ok(None)` means Envoy has no
//! value for it here (for example a request attribute outside a stream).
//! [`get`] and [`set`] reach any attribute by path.

use std::time::{Duration, SystemTime};

use crate::error::HostError;
use crate::host;

/// The raw bytes of the attribute at `path` (`&["request", "path"]`).
pub fn get(path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
    host::get_property(path)
}

/// Sets the attribute at `path`, where Envoy allows it: a filter-state entry
/// such as `&["my_key"]`, readable later by other filters and the access log.
pub fn set(path: &[&str], value: &[u8]) -> Result<(), HostError> {
    host::set_property(path, value)
}

fn text(path: &[&str]) -> Result<Option<String>, HostError> {
    Ok(get(path)?.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

/// The request path, with the query (`request.path`).
pub fn request_path() -> Result<Option<String>, HostError> {
    text(&["request", "path"])
}

/// The request method (`request.method`).
pub fn request_method() -> Result<Option<String>, HostError> {
    text(&["request", "method"])
}

/// The downstream peer's address, `ip:port` (`source.address`).
pub fn source_address() -> Result<Option<String>, HostError> {
    text(&["source", "address"])
}

/// The name of the route the request matched (`route_name`).
pub fn route_name() -> Result<Option<String>, HostError> {
    text(&["route_name"])
}

/// The name of the upstream cluster of the route (`cluster_name`).
pub fn cluster_name() -> Result<Option<String>, HostError> {
    text(&["cluster_name"])
}

/// The plugin's name in Envoy's config (`plugin_name`).
pub fn plugin_name() -> Result<Option<String>, HostError> {
    text(&["plugin_name"])
}

/// The plugin's root id (`plugin_root_id`).
pub fn plugin_root_id() -> Result<Option<String>, HostError> {
    text(&["plugin_root_id"])
}

/// The VM id the plugin runs under (`plugin_vm_id`).
pub fn plugin_vm_id() -> Result<Option<String>, HostError> {
    text(&["plugin_vm_id"])
}

/// A string field of the node's metadata (`node.metadata.<key>`).
pub fn node_metadata(key: &str) -> Result<Option<String>, HostError> {
    text(&["node", "metadata", key])
}

/// The node's id (`node.id`).
pub fn node_id() -> Result<Option<String>, HostError> {
    text(&["node", "id"])
}

/// The host's current time.
pub fn now() -> Result<SystemTime, HostError> {
    let nanos = host::current_time_nanos()?;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos))
}
