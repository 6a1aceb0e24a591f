//! The `routing` section of the gateway configuration: as written ([`RoutingInput`]) and compiled
//! ([`Routing`]): the headers meshgate owns and how routes select policies.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::config_error::ConfigError;

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

/// `routing`, compiled.
pub struct Routing {
    pub upstream_header: String,
    pub operation_header: String,
    pub subject_header: String,
    pub generate_request_id: bool,
    pub policy_metadata_key: String,
    pub route_policies: HashMap<String, String>,
}

impl Routing {
    /// `routing`, compiled: header names checked, defaults filled in. `is_policy` tells whether a
    /// policy name is defined (a route name mapped to an undefined policy is an error).
    pub fn compile(
        r: &RoutingInput,
        is_policy: impl Fn(&str) -> bool,
    ) -> Result<Routing, ConfigError> {
        for (route, policy) in &r.route_policies {
            if !is_policy(policy) {
                return Err(ConfigError::new(
                    format!("routing.route_policies.{route}"),
                    format!("policy `{policy}` is not defined under `policies`"),
                ));
            }
        }
        let header =
            |v: &Option<String>, field: &str, default: &str| -> Result<String, ConfigError> {
                let h = v.clone().unwrap_or_else(|| default.to_string());
                if h.is_empty()
                    || !h
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Err(ConfigError::new(
                        format!("routing.{field}"),
                        format!("`{h}` is not a valid header name"),
                    ));
                }
                Ok(h.to_ascii_lowercase())
            };
        Ok(Routing {
            upstream_header: header(&r.upstream_header, "upstream_header", "x-meshgate-upstream")?,
            operation_header: header(
                &r.operation_header,
                "operation_header",
                "x-meshgate-operation",
            )?,
            subject_header: header(&r.subject_header, "subject_header", "x-meshgate-subject")?,
            generate_request_id: r.generate_request_id.unwrap_or(true),
            policy_metadata_key: r
                .policy_metadata_key
                .clone()
                .unwrap_or_else(|| "policy".to_string()),
            route_policies: r.route_policies.clone().into_iter().collect(),
        })
    }
}

/// How a REST upstream's path is formed from the request's (`upstreams.<name>.path_translation`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PathTranslation {
    /// The request path is appended to the prefix: `/v1/x` -> `/prefix/v1/x`.
    AppendPathToAddress,
    /// The path becomes the prefix, path variables go to the query: `/prefix?id=..`.
    ConstantAddress,
}

/// An upstream, compiled: the routing header's value, the REST path rewrite, the side-call bound.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: String,
    pub header_value: String,
    pub path_translation: Option<PathTranslation>,
    pub path_prefix: String,
    /// Bound of the gateway's side calls to this upstream.
    pub timeout: std::time::Duration,
}

impl Upstream {
    pub const DEFAULT_TIMEOUT_MS: u64 = 15_000;
}
