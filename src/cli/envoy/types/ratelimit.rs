//! Envoy's rate limit messages: the HTTP `local_ratelimit` filter
//! (`envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit`), its descriptors and the
//! `rate_limits` actions that make them (`envoy.config.route.v3.RateLimit`).

use serde::Serialize;

use super::GrpcService;

/// `envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalRateLimit {
    pub stat_prefix: String,
    /// The bucket of requests no descriptor matched.
    pub token_bucket: TokenBucket,
    pub filter_enabled: RuntimeFractionalPercent,
    pub filter_enforced: RuntimeFractionalPercent,
    pub descriptors: Vec<LocalRateLimitDescriptor>,
    pub rate_limits: Vec<RateLimit>,
    pub always_consume_default_token_bucket: bool,
    /// `DRAFT_VERSION_03`: `x-ratelimit-limit`, `-remaining`, `-reset`.
    pub enable_x_ratelimit_headers: String,
    /// gRPC clients get RESOURCE_EXHAUSTED (not UNAVAILABLE).
    pub rate_limited_as_resource_exhausted: bool,
}

/// `envoy.type.v3.TokenBucket`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenBucket {
    pub max_tokens: u32,
    pub tokens_per_fill: u32,
    /// A proto3 JSON duration (`60s`).
    pub fill_interval: String,
}

/// `envoy.config.core.v3.RuntimeFractionalPercent` with a default only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuntimeFractionalPercent {
    pub default_value: FractionalPercent,
    pub runtime_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FractionalPercent {
    pub numerator: u32,
    pub denominator: String,
}

/// `envoy.extensions.common.ratelimit.v3.LocalRateLimitDescriptor`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalRateLimitDescriptor {
    pub entries: Vec<DescriptorEntry>,
    pub token_bucket: TokenBucket,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DescriptorEntry {
    pub key: String,
    pub value: String,
}

/// `envoy.config.route.v3.RateLimit`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateLimit {
    pub actions: Vec<RateLimitAction>,
}

/// `envoy.config.route.v3.RateLimit.Action` (the kind meshgate uses). A struct, not an enum:
/// serde_yaml writes enums as YAML tags, which Envoy does not read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateLimitAction {
    pub request_headers: RequestHeadersAction,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestHeadersAction {
    pub header_name: String,
    pub descriptor_key: String,
}

/// A `google.rpc.QuotaFailure` in a local reply's `json_format` (`@type` and `violations`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusDetail {
    #[serde(rename = "@type")]
    pub type_url: String,
    pub violations: Vec<QuotaViolation>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuotaViolation {
    pub subject: String,
    pub description: String,
}

/// `envoy.extensions.filters.http.ratelimit.v3.RateLimit`: the global rate limit filter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlobalRateLimitFilter {
    pub domain: String,
    /// A proto3 JSON duration (`0.200s`).
    pub timeout: String,
    pub failure_mode_deny: bool,
    /// What a failed RLS call answers when failing closed.
    pub status_on_error: HttpStatus,
    pub enable_x_ratelimit_headers: String,
    pub rate_limited_as_resource_exhausted: bool,
    pub rate_limit_service: RateLimitServiceConfig,
    /// The descriptors to send (set here, the route's and virtual host's are not read).
    pub rate_limits: Vec<RateLimit>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpStatus {
    pub code: u32,
}

/// `envoy.config.ratelimit.v3.RateLimitServiceConfig`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateLimitServiceConfig {
    pub grpc_service: GrpcService,
    pub transport_api_version: String,
}
