//! Route configuration.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Any, StringMatcher};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteConfiguration {
    pub name: String,
    pub virtual_hosts: Vec<VirtualHost>,
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
    pub route: RouteAction,
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
