//! The messages of `envoy.service.ratelimit.v3` the plugin sends and reads, written out
//! with their real field numbers (from `envoy/service/ratelimit/v3/rls.proto` and
//! `envoy/extensions/common/ratelimit/v3/ratelimit.proto`), so that building needs no
//! `protoc`. The generated ones of the `envoy-types` crate would bring all of Envoy's API and
//! `tonic` into the plugin's build (nearly three minutes of compiling here); the test server,
//! `envoy/ratelimit`, uses them, so the e2e tests check these field numbers against them.
//!
//! Fields the plugin neither writes nor reads (`quota`, `dynamic_metadata`, ...) are left
//! out: protobuf skips unknown fields, so a full service still talks to it.

/// `envoy.service.ratelimit.v3.RateLimitRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitRequest {
    /// Field 1: the domain the descriptors belong to.
    #[prost(string, tag = "1")]
    pub domain: String,
    /// Field 2: the descriptors, each counted on its own.
    #[prost(message, repeated, tag = "2")]
    pub descriptors: Vec<RateLimitDescriptor>,
    /// Field 3: how many hits this request counts for (0 means 1).
    #[prost(uint32, tag = "3")]
    pub hits_addend: u32,
}

/// `envoy.extensions.common.ratelimit.v3.RateLimitDescriptor`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitDescriptor {
    /// Field 1: the key/value pairs, in order.
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<Entry>,
}

/// `envoy.extensions.common.ratelimit.v3.RateLimitDescriptor.Entry`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Entry {
    /// Field 1.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Field 2.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `envoy.service.ratelimit.v3.RateLimitResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitResponse {
    /// Field 1: a [`Code`].
    #[prost(enumeration = "Code", tag = "1")]
    pub overall_code: i32,
    /// Field 2: one status per descriptor, in request order.
    #[prost(message, repeated, tag = "2")]
    pub statuses: Vec<DescriptorStatus>,
    /// Field 3: headers for the client's response (`envoy.config.core.v3.HeaderValue`).
    #[prost(message, repeated, tag = "3")]
    pub response_headers_to_add: Vec<HeaderValue>,
    /// Field 4: headers for the upstream request.
    #[prost(message, repeated, tag = "4")]
    pub request_headers_to_add: Vec<HeaderValue>,
}

/// `envoy.service.ratelimit.v3.RateLimitResponse.Code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Code {
    /// 0.
    Unknown = 0,
    /// 1: under the limit.
    Ok = 1,
    /// 2: over the limit.
    OverLimit = 2,
}

/// `envoy.service.ratelimit.v3.RateLimitResponse.DescriptorStatus`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DescriptorStatus {
    /// Field 1: a [`Code`].
    #[prost(enumeration = "Code", tag = "1")]
    pub code: i32,
    /// Field 2: the limit that applied.
    #[prost(message, optional, tag = "2")]
    pub current_limit: Option<RateLimit>,
    /// Field 3: what is left in the window.
    #[prost(uint32, tag = "3")]
    pub limit_remaining: u32,
}

/// `envoy.service.ratelimit.v3.RateLimitResponse.RateLimit`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimit {
    /// Field 3: a name for the limit.
    #[prost(string, tag = "3")]
    pub name: String,
    /// Field 1: requests per unit.
    #[prost(uint32, tag = "1")]
    pub requests_per_unit: u32,
    /// Field 2: the unit (1 second, 2 minute, 3 hour, 4 day, ...).
    #[prost(int32, tag = "2")]
    pub unit: i32,
}

/// `envoy.config.core.v3.HeaderValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderValue {
    /// Field 1.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Field 2.
    #[prost(string, tag = "2")]
    pub value: String,
}
