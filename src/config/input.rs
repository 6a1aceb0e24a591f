//! The gateway configuration as people write it (YAML, through the `meshgate` command) and as
//! the filter receives it (JSON, Envoy's `configuration` / Istio's `pluginConfig`).
//!
//! Both are the same serde types: the command reads YAML, compiles `descriptors.files` into a
//! `FileDescriptorSet`, embeds it as `descriptors.descriptor_set` (base64) and writes JSON. The
//! filter only accepts the embedded form. Unknown fields are refused everywhere, so a typo is an
//! error that names the field, not a silently ignored setting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayInput {
    pub descriptors: DescriptorsInput,
    /// Upstream services by name: where each operation's requests go.
    pub upstreams: BTreeMap<String, UpstreamInput>,
    /// Per-service defaults, keyed by the full gRPC service name (`pkg.Service`).
    pub services: BTreeMap<String, ServiceInput>,
    /// Per-operation settings, keyed by the full method name (`pkg.Service.Method`).
    pub operations: BTreeMap<String, OperationInput>,
    /// Plain-HTTP (REST) operations that are not in the protos, routed with a path rewrite.
    pub http_operations: Vec<HttpOperationInput>,
    pub auth: AuthInput,
    pub transcoding: TranscodingInput,
    pub routing: RoutingInput,
    /// Named policies that routes select (route metadata or route name).
    pub policies: BTreeMap<String, PolicyInput>,
    pub observe: ObserveInput,
    pub limits: LimitsInput,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DescriptorsInput {
    /// `.proto` files to compile (command only), relative to one of `include`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Include paths for `files` (command only), relative to the YAML file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// A binary `FileDescriptorSet` file to load instead of compiling (command only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub descriptor_set_file: Option<String>,
    /// The embedded `FileDescriptorSet`, base64 (what the filter reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub descriptor_set: Option<String>,
    /// Services to expose; empty means every service that has `google.api.http` rules or is
    /// named under `services`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamInput {
    /// The value written to the routing header (`routing.upstream_header`); defaults to the
    /// upstream's name. Envoy routes match on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_value: Option<String>,
    /// For REST upstreams: how the request path is formed (ESPv2's path translation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_translation: Option<PathTranslation>,
    /// For REST upstreams: path prefix of the backend address (`https://host/prefix`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// Timeout of the gateway's own calls to this upstream (side calls: body-less transcoded
    /// requests, and every transcoded call with `transcoding.upstream_calls: side_call`), in
    /// milliseconds. Default 15000. Calls through Envoy's router use the route's timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PathTranslation {
    /// The request path is appended to the prefix: `/v1/x` -> `/prefix/v1/x`.
    AppendPathToAddress,
    /// The path becomes the prefix, path variables go to the query: `/prefix?id=..`.
    ConstantAddress,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<RequirementInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloInput>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OperationInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<RequirementInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloInput>,
    /// Extra HTTP bindings beyond the proto's `google.api.http` rule.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpRuleInput>,
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

/// A plain-HTTP operation routed to a REST upstream (no transcoding).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpOperationInput {
    /// Operation name for logs and metrics (`payments.legacy.GetReceipt`).
    pub name: String,
    /// HTTP method, or `*` for any.
    pub method: String,
    /// A path template, as in `google.api.http` (`/legacy/receipts/{id}`).
    pub path: String,
    pub upstream: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<RequirementInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloInput>,
}

/// Who must have signed the request's token. Written like Envoy's `JwtRequirement`:
/// `{provider: name}`, `{any: [...]}`, `{all: [...]}`, `allow_missing`,
/// `allow_missing_or_failed`, `none`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RequirementInput {
    Provider(String),
    Any(Vec<RequirementInput>),
    All(Vec<RequirementInput>),
    AllowMissing,
    AllowMissingOrFailed,
    None,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthInput {
    pub providers: Vec<ProviderInput>,
    /// Requirement for operations with none of their own (and no service default). Deny by
    /// default: a new operation is not public by accident.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<RequirementInput>,
    /// Status for requests refused because keys could not be fetched (JWKS outage), told apart
    /// from a bad token. Default 503 (UNAVAILABLE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_unavailable_status: Option<u16>,
    /// Verified-token cache (on by default).
    pub cache: TokenCacheInput,
    /// `realm` of `WWW-Authenticate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TokenCacheInput {
    pub enabled: bool,
    pub max_entries: usize,
}

impl Default for TokenCacheInput {
    fn default() -> Self {
        TokenCacheInput {
            enabled: true,
            max_entries: 4096,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderInput {
    pub name: String,
    pub issuer: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    pub require_expiration: bool,
    /// Longest accepted `exp - iat` (or `exp - now` without `iat`), seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lifetime_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_skew_seconds: Option<u64>,
    pub jwks: JwksInput,
    /// Where tokens come from. Empty: `Authorization: Bearer <token>`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_headers: Vec<HeaderSourceInput>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_params: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_cookies: Vec<String>,
    /// Keep the token in the upstream request (removed by default).
    pub forward: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub claim_to_headers: Vec<ClaimToHeaderInput>,
    /// Header that carries the verified payload, base64url.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_payload_header: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderSourceInput {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_prefix: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClaimToHeaderInput {
    /// Dotted claim path (`realm_access.roles`); arrays are joined with `,`.
    pub claim: String,
    pub header: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JwksInput {
    /// A JWKS document inline (JSON text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteJwksInput>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteJwksInput {
    /// URL of the JWKS (or of the OIDC discovery document, with `discovery: true`).
    pub uri: String,
    /// Envoy cluster that reaches the URL's host (Istio: `outbound|443||host`).
    pub cluster: String,
    pub discovery: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_duration_seconds: Option<u64>,
    /// How long a request may wait for the first fetch before it is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_fetch_wait_ms: Option<u64>,
    /// Least time between refetches triggered by an unknown `kid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refetch_min_interval_seconds: Option<u64>,
    /// Take `oct` (HMAC) keys from the fetched JWKS. Off by default: a JWKS is public, so a
    /// secret published in it lets anyone sign tokens. Only for an endpoint that is itself
    /// private (a warning is logged whenever such keys are loaded). Written only when set, so
    /// a compiled configuration that does not use it also loads in modules that predate it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_symmetric_keys: bool,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TranscodingInput {
    /// Print options, with the names of Envoy's `grpc_json_transcoder`.
    pub print_options: PrintOptionsInput,
    /// Ignore query parameters that name no field (rejected with 400 otherwise).
    pub ignore_unknown_query_parameters: bool,
    /// Envoy's `url_unescape_spec`: `ALL_CHARACTERS_EXCEPT_RESERVED` (default),
    /// `ALL_CHARACTERS_EXCEPT_SLASH`, `ALL_CHARACTERS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_unescape_spec: Option<String>,
    /// `?foo=1&foo=2` into a non-repeated field is refused unless this is set.
    pub query_param_unescape_plus: bool,
    /// Server streaming replies: `json_array` (default), `ndjson` or `sse`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_format: Option<String>,
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
pub struct RoutingInput {
    /// Header that carries the chosen upstream; Envoy routes on it. Default
    /// `x-meshgate-upstream`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_header: Option<String>,
    /// Header with the operation's full name. Default `x-meshgate-operation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_header: Option<String>,
    /// Header with the authenticated subject. Default `x-meshgate-subject`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_header: Option<String>,
    /// Generate `x-request-id` when the client sent none (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generate_request_id: Option<bool>,
    /// Key under `filter_metadata.meshgate` that names the route's policy. Default `policy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_metadata_key: Option<String>,
    /// Route name -> policy name (Istio VirtualService routes have names, not metadata).
    pub route_policies: BTreeMap<String, String>,
}

/// A policy a route can select: overrides of the operation's defaults.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<RequirementInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcoding: Option<PolicyTranscodingInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloInput>,
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

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SloInput {
    /// Availability objective, percent (`99.9`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySloInput>,
    /// gRPC codes counted against availability (besides HTTP 5xx). Default: UNAVAILABLE,
    /// DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, DATA_LOSS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_codes: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LatencySloInput {
    pub threshold_ms: u64,
    /// Percent of requests that must be faster than the threshold (`95`).
    pub target: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ObserveInput {
    /// Write one JSON access record per request to the proxy's log (info level).
    pub access_log: bool,
    /// Prefix of metric names (`meshgate` -> `meshgate_requests_total`).
    pub metric_prefix: String,
    /// Default objective for operations and services without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_slo: Option<SloInput>,
    /// Latency histogram bucket bounds, milliseconds; every objective's threshold is added.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub latency_buckets_ms: Vec<u64>,
    /// The GCP project, to write `logging.googleapis.com/trace` as
    /// `projects/<id>/traces/<trace>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_project: Option<String>,
}

impl Default for ObserveInput {
    fn default() -> Self {
        ObserveInput {
            access_log: true,
            metric_prefix: "meshgate".to_string(),
            default_slo: None,
            latency_buckets_ms: Vec::new(),
            trace_project: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_request_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_response_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_json_depth: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_token_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_jwks_bytes: Option<usize>,
    /// Most entries in one provider's JWKS `keys` (inline or fetched); a longer one is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_jwks_keys: Option<usize>,
    /// Memory per VM for the ECDSA keys' precomputed tables; keys beyond it verify without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_key_table_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_header_bytes: Option<usize>,
}
