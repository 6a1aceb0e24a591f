//! The transcoding parts of the gateway configuration as people write them (serde input types,
//! owned by this domain; [`crate::config`] assembles them into the gateway's document).

use serde::{Deserialize, Serialize};

use crate::config_error::ConfigError;

/// `transcoding.stream_timeout_ms` when it is not set: 5 minutes.
pub const DEFAULT_STREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// A streaming side call's bound from its milliseconds (`field` names the option in errors).
pub fn stream_timeout(
    ms: Option<u64>,
    field: &str,
) -> Result<Option<std::time::Duration>, ConfigError> {
    match ms {
        Some(0) => Err(ConfigError::new(field, "must be more than 0")),
        Some(ms) if ms > u64::from(u32::MAX) => {
            Err(ConfigError::new(field, "must be at most 4294967295"))
        }
        other => Ok(other.map(std::time::Duration::from_millis)),
    }
}

/// A `google.api.HttpRule` written in the configuration (same field names as the proto).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpRuleInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub get: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub put: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    /// `{kind: HEAD, path: /v1/x}`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom: Option<CustomPatternInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CustomPatternInput {
    pub kind: String,
    pub path: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TranscodingInput {
    /// Print options, with the names of Envoy's `grpc_json_transcoder`.
    pub print_options: PrintOptionsInput,
    /// Ignore query parameters that name no field (rejected with 400 otherwise).
    pub ignore_unknown_query_parameters: bool,
    /// Envoy's `ignored_query_parameters`: query parameters that are never message fields
    /// (typically `key` or `access_token`), dropped before the query fills the message, so
    /// they neither fail the request nor set a field of that name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_query_parameters: Vec<String>,
    /// Envoy's `url_unescape_spec`: `ALL_CHARACTERS_EXCEPT_RESERVED` (default),
    /// `ALL_CHARACTERS_EXCEPT_SLASH`, `ALL_CHARACTERS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_unescape_spec: Option<String>,
    /// Envoy's `query_param_unescape_plus`: `+` in query parameter names and values is a space
    /// (HTML form encoding) only when this is set; by default `+` stays `+` (`%20` is a space
    /// either way).
    pub query_param_unescape_plus: bool,
    /// Server streaming replies: `json_array` (default), `ndjson` or `sse`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_format: Option<String>,
    /// Bound of a server- or bidirectional-streaming call that meshgate sends itself (a side
    /// call: a streaming `GET` binding, or any with `upstream_calls: side_call`), in
    /// milliseconds: 300000 (5 minutes) by default, instead of the upstream's `timeout_ms`,
    /// so that a long stream is not cut at 15 s. `operations.<m>.stream_timeout_ms` overrides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_timeout_ms: Option<u64>,
    /// Request headers forwarded to the backend as gRPC metadata (all other headers are
    /// forwarded by Envoy anyway; these are copied under `x-meshgate-http-<name>` when their
    /// name would clash with gRPC's reserved ones).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_headers_to_metadata: Vec<String>,
    /// Response metadata (headers and trailers) copied to the HTTP response as headers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_metadata_to_headers: Vec<String>,
    /// Refuse requests that match no operation with 404 (default) instead of passing them.
    pub pass_through_unmatched: bool,
    /// Refuse the configuration when a proto's `google.api.http` rule holds a binding meshgate
    /// cannot serve (an ESP-style `{$api_version}` variable, a body field that does not exist);
    /// by default such a binding is skipped with a warning naming it and the rest is served.
    pub strict_bindings: bool,
    /// How transcoded calls that carry a request body reach the upstream: `router` (default:
    /// through Envoy's router, with the route's timeout, retries and upstream logs, server
    /// streams forwarded message by message; needs the filter's
    /// `allow_on_headers_stop_iteration`) or `side_call` (a direct call to the upstream's
    /// cluster whose reply comes back whole, for hosts where a filter cannot pause headers,
    /// such as Istio's WasmPlugin). Body-less calls are always side calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_calls: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PrintOptionsInput {
    pub add_whitespace: bool,
    pub always_print_primitive_fields: bool,
    pub always_print_enums_as_ints: bool,
    pub preserve_proto_field_names: bool,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyTranscodingInput {
    /// `false` switches transcoding off for the route (JSON requests are refused with 415).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub print_options: Option<PrintOptionsInput>,
}
