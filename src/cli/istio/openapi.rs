//! `openapi.path` in an Istio mesh: a VirtualService for the ingress gateway whose one route
//! answers that path with the OpenAPI document (`directResponse`, as `meshgate envoy` renders a
//! route with a direct response). meshgate still runs on that route (a WasmPlugin cannot be
//! switched off per route), and lets the path pass (`src/filter/served.rs`).
//!
//! The gateway it binds to is `<namespace>/meshgate-gateway` (the name
//! istio/examples/virtualservice-policies.yaml uses); Istio merges the VirtualServices bound to
//! one gateway host, this exact-path route with the API's own routes.

use std::collections::BTreeMap;

use serde::Serialize;

use super::types::{ObjectMeta, Resource};
use super::IstioOptions;
use crate::cli::envoy::openapi_route::ServedOpenapi;

/// `networking.istio.io/v1` VirtualService, the fields used here.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServiceSpec {
    pub hosts: Vec<String>,
    pub gateways: Vec<String>,
    pub http: Vec<HttpRoute>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoute {
    pub name: String,
    #[serde(rename = "match")]
    pub matcher: Vec<UriMatch>,
    pub direct_response: DirectResponse,
    pub headers: Headers,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UriMatch {
    pub uri: ExactUri,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExactUri {
    pub exact: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirectResponse {
    pub status: u16,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Body {
    pub string: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Headers {
    pub response: HeaderSet,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeaderSet {
    pub set: BTreeMap<String, String>,
}

/// The VirtualService serving the document.
pub fn virtualservice_openapi(o: &IstioOptions, s: &ServedOpenapi) -> Resource<VirtualServiceSpec> {
    let spec = VirtualServiceSpec {
        hosts: vec!["*".into()],
        gateways: vec![format!("{}/meshgate-gateway", o.gateway_namespace)],
        http: vec![HttpRoute {
            name: "openapi".into(),
            matcher: vec![UriMatch {
                uri: ExactUri {
                    exact: s.path.clone(),
                },
            }],
            direct_response: DirectResponse {
                status: 200,
                body: Body {
                    string: s.document.clone(),
                },
            },
            headers: Headers {
                response: HeaderSet {
                    set: BTreeMap::from([("content-type".into(), "application/json".into())]),
                },
            },
        }],
    };
    let meta = ObjectMeta {
        name: format!("{}-openapi", o.name),
        namespace: o.gateway_namespace.clone(),
        labels: BTreeMap::new(),
    };
    Resource::new("networking.istio.io/v1", "VirtualService", meta, spec)
}
