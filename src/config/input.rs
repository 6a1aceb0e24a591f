//! The gateway configuration as people write it (YAML, through the `meshgate` command) and as
//! the filter receives it (JSON, Envoy's `configuration` / Istio's `pluginConfig`).
//!
//! Both are the same serde types: the command reads YAML, compiles `descriptors.files` into a
//! `FileDescriptorSet`, embeds it as `descriptors.descriptor_set` (base64) and writes JSON. The
//! filter only accepts the embedded form. Unknown fields are refused everywhere, so a typo is an
//! error that names the field, not a silently ignored setting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

// Each domain owns the input types of its section; the gateway document assembles them.
pub use crate::auth::input::*;
pub use crate::observe::input::*;
pub use crate::route::config::{PathTranslation, RoutingInput};
pub use crate::transcode::input::*;

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
    /// Browser clients on other origins (CORS, rendered into Envoy's CORS filter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors: Option<crate::cors::CorsInput>,
    /// How `meshgate envoy` renders the listeners (TLS); command only, never in the filter's
    /// JSON (`config::listener`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener: Option<crate::config::listener::ListenerInput>,
    /// The OpenAPI document served by the gateway (rendered by `meshgate envoy` and `istio`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openapi: Option<super::openapi_serve::OpenapiServeInput>,
    /// meshgate's own spans (`meshgate envoy --otlp` sets it; docs/tracing.md).
    #[serde(skip_serializing_if = "super::tracing::TracingInput::is_off")]
    pub tracing: super::tracing::TracingInput,
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
    /// Server-streaming methods: `json_array`, `ndjson` or `sse` for this operation's replies
    /// (default `transcoding.stream_format`; a client's `Accept` naming one wins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_format: Option<String>,
    /// Server- or bidirectional-streaming methods: the bound of this operation's side calls
    /// in milliseconds (default `transcoding.stream_timeout_ms`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_timeout_ms: Option<u64>,
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
    /// Tighter CORS on the policy's routes (or none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors: Option<crate::cors::PolicyCorsInput>,
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
