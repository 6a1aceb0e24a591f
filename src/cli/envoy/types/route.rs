//! Route configuration.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Any, StringMatcher};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteConfiguration {
    pub name: String,
    pub virtual_hosts: Vec<VirtualHost>,
    /// Above Envoy's default of 4096 bytes when a direct response is larger (the served
    /// OpenAPI document).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_direct_response_body_size_bytes: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualHost {
    pub name: String,
    pub domains: Vec<String>,
    pub routes: Vec<Route>,
    /// By filter name (the `cors` section's `CorsPolicy`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub typed_per_filter_config: BTreeMap<String, Any>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Route {
    pub name: String,
    #[serde(rename = "match")]
    pub matcher: RouteMatch,
    /// Left out for a route that answers itself (`direct_response`; the cluster is empty).
    #[serde(skip_serializing_if = "RouteAction::is_direct")]
    pub route: RouteAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_response: Option<DirectResponse>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_headers_to_add: Vec<super::HeaderValueOption>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// By filter name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub typed_per_filter_config: BTreeMap<String, Any>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteMatch {
    /// Empty when `path` is given (Envoy takes one of them).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// An exact path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatcher>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeaderMatcher {
    pub name: String,
    pub string_match: StringMatcher,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteAction {
    pub cluster: String,
    /// A proto3 JSON duration (`15s`); `0s` disables it.
    pub timeout: String,
    /// How long a stream on this route may go without activity (a proto3 JSON duration);
    /// unset: the connection manager's `stream_idle_timeout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
}

impl RouteAction {
    /// No cluster: the route has a direct response instead.
    pub fn is_direct(&self) -> bool {
        self.cluster.is_empty()
    }
}

/// `envoy.config.route.v3.DirectResponseAction`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirectResponse {
    pub status: u16,
    pub body: InlineBody,
}

/// `envoy.config.core.v3.DataSource` with `inline_string`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InlineBody {
    pub inline_string: String,
}

/// `envoy.config.core.v3.Metadata`: meshgate's namespace only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metadata {
    pub filter_metadata: FilterMetadata,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterMetadata {
    pub meshgate: MeshgateMetadata,
}

/// `filter_metadata.meshgate`: the route's policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeshgateMetadata {
    pub policy: String,
}

/// `envoy.config.route.v3.FilterConfig`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterConfig {
    pub disabled: bool,
}
