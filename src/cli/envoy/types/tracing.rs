//! Tracing: the connection manager's `tracing` with Envoy's OpenTelemetry tracer (OTLP/gRPC to
//! a collector cluster).

use serde::Serialize;

use super::NamedFilter;

/// `HttpConnectionManager.Tracing`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HcmTracing {
    pub provider: NamedFilter,
    /// Percent of requests without a sampling decision that are traced.
    pub random_sampling: Percent,
    /// The server span's name (a substitution format, evaluated when the span ends).
    pub operation: String,
    /// The upstream span's name.
    pub upstream_operation: String,
    /// The router's call to the upstream gets its own child span.
    pub spawn_upstream_span: bool,
    pub custom_tags: Vec<CustomTag>,
}

/// `envoy.type.v3.Percent`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Percent {
    pub value: f64,
}

/// `envoy.type.tracing.v3.CustomTag` with a substitution-format `value`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomTag {
    pub tag: String,
    pub value: String,
}

/// `envoy.config.trace.v3.OpenTelemetryConfig`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenTelemetryConfig {
    pub grpc_service: GrpcService,
    pub service_name: String,
}

/// `envoy.config.core.v3.GrpcService` through one of Envoy's clusters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GrpcService {
    pub envoy_grpc: EnvoyGrpc,
    /// A proto3 JSON duration; Envoy's default (none) when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvoyGrpc {
    pub cluster_name: String,
}

/// `envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation`: header
/// changes made before route selection and before the tracer reads the request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EarlyHeaderMutation {
    pub mutations: Vec<EarlyRule>,
}

/// One `envoy.config.common.mutation_rules.v3.HeaderMutation`: add a header, or remove one.
/// The rules run in order; a rule's formatters see the headers the rules before it set.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EarlyRule {
    Append(super::HeaderMutationRule),
    Remove { remove: String },
}
