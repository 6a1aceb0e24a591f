//! Browser clients in the rendered chain: Envoy's CORS filter, the `header_mutation` that keeps
//! the client's content type, and Envoy's gRPC-Web filter, all before meshgate:
//!
//! ```text
//! cors -> header_mutation -> grpc_web -> meshgate (wasm) -> router
//! ```
//!
//! - CORS first: it answers preflights (none reaches meshgate's auth or a backend), and since
//!   it decoded every request, every reply passes its encoder, meshgate's own local replies
//!   (401, 403, 404, 5xx `Status` bodies) included: an allowed origin can read them all. (A
//!   local reply only passes the encoders of the filters before the one that sent it.)
//! - gRPC-Web before meshgate: meshgate sees the native gRPC call Envoy made of it, so auth,
//!   routing, records and metrics are those of gRPC; its errors and the upstream's trailers are
//!   turned back into gRPC-Web by the same filter on the way out.
//! - `header_mutation` before gRPC-Web: it copies the client's `content-type` into
//!   [`CLIENT_CONTENT_TYPE_HEADER`], the only trace of gRPC-Web left for meshgate's record.
//!
//! Rendered when the gateway file has a `cors` section; the CORS policy sits on the virtual
//! host, and a route whose policy tightens it carries its own.

use std::collections::BTreeMap;

use serde_json::Value;

use super::types::{
    Any, CorsFilter, CorsPolicy, FilterConfig, GrpcWeb, HeaderMutation, HeaderMutationRule,
    HeaderValue, HeaderValueOption, Mutations, NamedFilter, RegexMatcher, StringMatcher,
};
use crate::cors::{
    Cors, CorsInput, Origin, PolicyCors, PolicyCorsInput, CLIENT_CONTENT_TYPE_HEADER,
};

pub const CORS_FILTER_NAME: &str = "envoy.filters.http.cors";
pub const GRPC_WEB_FILTER_NAME: &str = "envoy.filters.http.grpc_web";
pub const HEADER_MUTATION_FILTER_NAME: &str = "envoy.filters.http.header_mutation";

/// The `cors` section and the policies that tighten it, from the filter's JSON configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Browser {
    pub cors: Cors,
    /// By policy name.
    pub policies: BTreeMap<String, PolicyCors>,
}

impl Browser {
    /// `None` without a `cors` section (or with one the filter would refuse: the command
    /// compiled the configuration before rendering, so that does not happen there).
    pub fn from_filter_json(json: &str) -> Option<Browser> {
        let v: Value = serde_json::from_str(json).ok()?;
        let input: CorsInput = serde_json::from_value(v.get("cors")?.clone()).ok()?;
        let cors = Cors::compile(&input).ok()?;
        let mut policies = BTreeMap::new();
        for (name, p) in v
            .get("policies")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let Some(pc) = p.get("cors") else { continue };
            let pc: PolicyCorsInput = serde_json::from_value(pc.clone()).ok()?;
            let field = format!("policies.{name}.cors");
            policies.insert(name.clone(), cors.tighten(&pc, &field).ok()?);
        }
        Some(Browser { cors, policies })
    }

    /// The route-level CORS of a route selecting `policy`, where the policy has its own.
    pub fn route_config(&self, policy: Option<&str>) -> Option<(String, Any)> {
        let any = match self.policies.get(policy?)? {
            PolicyCors::Off => Any::FilterConfig(FilterConfig { disabled: true }),
            PolicyCors::On(c) => cors_policy(c),
        };
        Some((CORS_FILTER_NAME.to_string(), any))
    }

    /// The virtual host's CORS.
    pub fn virtual_host_config(&self) -> BTreeMap<String, Any> {
        BTreeMap::from([(CORS_FILTER_NAME.to_string(), cors_policy(&self.cors))])
    }
}

/// Envoy's `CorsPolicy` for `c`.
pub fn cors_policy(c: &Cors) -> Any {
    Any::CorsPolicy(cors_policy_message(c))
}

pub fn cors_policy_message(c: &Cors) -> CorsPolicy {
    CorsPolicy {
        allow_origin_string_match: c
            .origins
            .iter()
            .map(|o| match o {
                Origin::Exact(e) => StringMatcher::Exact(e.clone()),
                Origin::Regex(r) => StringMatcher::SafeRegex(RegexMatcher { regex: r.clone() }),
            })
            .collect(),
        allow_methods: c.allow_methods.join(","),
        allow_headers: c.allow_headers.join(","),
        expose_headers: c.expose_headers.join(","),
        max_age: c.max_age_seconds.map(|s| s.to_string()),
        allow_credentials: c.allow_credentials,
        forward_not_matching_preflights: false,
    }
}

/// The filters that go before meshgate's, in order.
pub fn browser_filters() -> Vec<NamedFilter> {
    vec![
        NamedFilter {
            name: CORS_FILTER_NAME.into(),
            typed_config: Any::CorsFilter(CorsFilter {}),
        },
        client_content_type_filter(),
        NamedFilter {
            name: GRPC_WEB_FILTER_NAME.into(),
            typed_config: Any::GrpcWeb(GrpcWeb {}),
        },
    ]
}

/// `header_mutation`: the client's `content-type` into [`CLIENT_CONTENT_TYPE_HEADER`],
/// overwriting any copy a client sent.
pub fn client_content_type_filter() -> NamedFilter {
    NamedFilter {
        name: HEADER_MUTATION_FILTER_NAME.into(),
        typed_config: Any::HeaderMutation(HeaderMutation {
            mutations: Mutations {
                request_mutations: vec![HeaderMutationRule {
                    append: HeaderValueOption {
                        header: HeaderValue {
                            key: CLIENT_CONTENT_TYPE_HEADER.into(),
                            value: "%REQ(content-type)%".into(),
                        },
                        append_action: "OVERWRITE_IF_EXISTS_OR_ADD".into(),
                    },
                }],
            },
        }),
    }
}
