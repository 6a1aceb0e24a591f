//! Envoy's browser filters: CORS (`envoy.filters.http.cors` and its per-route `CorsPolicy`),
//! gRPC-Web, and the `header_mutation` that keeps the client's content type for meshgate.

use serde::Serialize;

use super::StringMatcher;

/// `envoy.extensions.filters.http.cors.v3.Cors` (the filter; its policy is per route).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CorsFilter {}

/// `envoy.extensions.filters.http.cors.v3.CorsPolicy` (virtual host or route).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CorsPolicy {
    pub allow_origin_string_match: Vec<StringMatcher>,
    pub allow_methods: String,
    pub allow_headers: String,
    pub expose_headers: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
    pub allow_credentials: bool,
    /// `false`: Envoy answers every preflight itself, a disallowed origin's without CORS
    /// headers (the browser then refuses the call): no preflight reaches auth or a backend.
    pub forward_not_matching_preflights: bool,
}

/// `envoy.extensions.filters.http.grpc_web.v3.GrpcWeb` (no settings).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GrpcWeb {}

/// `envoy.extensions.filters.http.header_mutation.v3.HeaderMutation`, request side only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeaderMutation {
    pub mutations: Mutations,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mutations {
    pub request_mutations: Vec<HeaderMutationRule>,
}

/// `envoy.config.common.mutation_rules.v3.HeaderMutation` (the `append` kind).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeaderMutationRule {
    pub append: HeaderValueOption,
}

/// `envoy.config.core.v3.HeaderValueOption`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeaderValueOption {
    pub header: HeaderValue,
    pub append_action: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeaderValue {
    pub key: String,
    pub value: String,
}
