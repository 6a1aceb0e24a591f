//! The validated, compiled, immutable configuration: built once per VM (`on_configure`), shared
//! by every request. Nothing here is parsed again on the request path.

use std::collections::HashMap;

use prost_reflect::DescriptorPool;

use crate::auth::{AuthConfig, Requirement};
use crate::observe::Slo;
use crate::operation::{Matcher, UrlUnescapeSpec};
pub use crate::route::config::{Routing, Upstream};
use crate::transcode::{PrintOptions, RequestPlan, ResponsePlan, StreamFormat};

/// Index into [`Config::operations`].
pub type OpId = usize;

pub struct Config {
    pub pool: DescriptorPool,
    pub operations: Vec<Operation>,
    /// `/pkg.Service/Method` -> operation, for native gRPC requests.
    pub grpc_paths: HashMap<String, OpId>,
    /// HTTP method + path template -> (operation, binding index).
    pub http: Matcher<HttpTarget>,
    pub auth: AuthConfig,
    pub policies: HashMap<String, Policy>,
    pub routing: Routing,
    pub transcoding: Transcoding,
    pub observe: Observe,
    pub limits: Limits,
    /// Every header the gateway sets for the upstream; incoming copies are removed first.
    pub owned_headers: Vec<String>,
    /// The `cors` section, checked (Envoy enforces it; `meshgate envoy` renders it).
    pub cors: Option<crate::cors::Cors>,
    /// `openapi.path`: where the proxy serves the OpenAPI document (meshgate lets it pass).
    pub openapi_path: Option<String>,
    /// Bindings of the protos' `google.api.http` rules that meshgate cannot serve, skipped
    /// (`transcoding.strict_bindings: false`, the default); logged at configuration.
    pub skipped_bindings: Vec<SkippedBinding>,
    /// `tracing.spans`: meshgate makes and exports spans for its own calls.
    pub spans: bool,
}

/// A proto binding left out of the configuration, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedBinding {
    /// `pkg.Service.Method`.
    pub operation: String,
    pub method: String,
    pub template: String,
    pub reason: String,
}

impl std::fmt::Display for SkippedBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} binding {} {}: {}",
            self.operation, self.method, self.template, self.reason
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTarget {
    pub op: OpId,
    /// Index into the operation's `bindings` (gRPC operations) or 0 (REST).
    pub binding: usize,
}

pub struct Operation {
    /// `pkg.Service.Method`, or the configured name of a REST operation.
    pub name: String,
    /// `pkg.Service` (REST operations: the upstream's name).
    pub service: String,
    pub upstream: Upstream,
    pub auth: Requirement,
    pub slo: Slo,
    pub kind: OpKind,
}

pub enum OpKind {
    Grpc {
        grpc_path: String,
        client_streaming: bool,
        server_streaming: bool,
        bindings: Vec<Binding>,
        /// `operations.<m>.stream_format` (None: `transcoding.stream_format`).
        stream_format: Option<StreamFormat>,
        /// `operations.<m>.stream_timeout_ms` (None: `transcoding.stream_timeout_ms`).
        stream_timeout: Option<std::time::Duration>,
    },
    /// Plain HTTP to a REST upstream, with the path rewritten.
    Rest,
}

pub struct Binding {
    pub method: String,
    pub template: String,
    pub request: RequestPlan,
    pub response: ResponsePlan,
}

/// What a route's policy overrides.
pub struct Policy {
    pub name: String,
    /// Its place among the policies in name order (caches key metrics on it).
    pub id: usize,
    pub auth: Option<Requirement>,
    pub transcoding_enabled: bool,
    pub print_options: Option<PrintOptions>,
    pub slo: Option<Slo>,
    /// Its CORS, where it tightens the `cors` section.
    pub cors: Option<crate::cors::PolicyCors>,
}

pub struct Transcoding {
    pub print_options: PrintOptions,
    pub ignore_unknown_query_parameters: bool,
    /// Query parameter names (as decoded) dropped before the query fills the message.
    pub ignored_query_parameters: Vec<String>,
    /// `+` in the query is a space (form encoding) only when set, as in Envoy.
    pub query_param_unescape_plus: bool,
    pub url_unescape_spec: UrlUnescapeSpec,
    pub stream_format: StreamFormat,
    /// The bound of a streaming side call (`transcoding.stream_timeout_ms`).
    pub stream_timeout: std::time::Duration,
    pub request_headers_to_metadata: Vec<String>,
    pub response_metadata_to_headers: Vec<String>,
    pub pass_through_unmatched: bool,
    pub upstream_calls: UpstreamCalls,
}

/// `transcoding.upstream_calls`: the path of transcoded calls with a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpstreamCalls {
    /// Through Envoy's router: the request headers are held until the body is converted.
    #[default]
    Router,
    /// A side call to the upstream's cluster: the request headers go on at once (rewritten to
    /// the gRPC call's), the body is collected, and the reply comes back whole.
    SideCall,
}

impl UpstreamCalls {
    pub fn parse(s: &str) -> Option<UpstreamCalls> {
        match s {
            "router" => Some(UpstreamCalls::Router),
            "side_call" => Some(UpstreamCalls::SideCall),
            _ => None,
        }
    }
}

pub struct Observe {
    pub access_log: bool,
    pub names: crate::observe::MetricNames,
    pub trace_project: Option<String>,
    pub latency_buckets_ms: Vec<u64>,
    /// The objective of requests without an operation (`observe::UNMATCHED_OPERATION`).
    pub unmatched_slo: crate::observe::Slo,
    /// `observe.filter_state`: the per-field filter state keys (`meshgate.outcome`...) the
    /// access record writes besides the whole record.
    pub filter_state: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_request_bytes: usize,
    pub max_response_bytes: usize,
    pub max_json_depth: usize,
    pub max_header_bytes: usize,
}

impl Limits {
    pub const DEFAULT_MAX_REQUEST_BYTES: usize = 4 << 20;
    pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 << 20;
    pub const DEFAULT_MAX_JSON_DEPTH: usize = 64;
    pub const DEFAULT_MAX_HEADER_BYTES: usize = 60 << 10;
}
