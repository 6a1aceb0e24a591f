//! `openapi.path`: the gateway serves the OpenAPI document of its HTTP API (what
//! `meshgate openapi` writes) from a route with a direct response, placed first, with meshgate
//! off on it (the path is no operation of the API). Envoy refuses a direct response body above
//! the route configuration's `max_direct_response_body_size_bytes` (4096 by default), so that
//! limit is raised to the document's size.

use std::collections::BTreeMap;
use std::path::Path;

use super::types::{
    Any, DirectResponse, FilterConfig, HeaderValue, HeaderValueOption, InlineBody, Route,
    RouteAction, RouteMatch,
};
use super::WASM_FILTER_NAME;
use crate::config::input::GatewayInput;

/// The document and where it is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedOpenapi {
    pub path: String,
    pub document: String,
}

/// Envoy's default `max_direct_response_body_size_bytes`.
const ENVOY_DEFAULT_MAX_BODY: usize = 4096;

/// The served document for the gateway file `yaml` (compiled to `filter_json`), if its
/// `openapi.path` asks for one.
pub fn for_input(yaml: &Path, filter_json: &str) -> Result<Option<ServedOpenapi>, String> {
    let input: GatewayInput = serde_json::from_str(filter_json).map_err(|e| e.to_string())?;
    let Some(serve) = input.openapi else {
        return Ok(None);
    };
    let document = crate::cli::openapi::render(yaml, serve.title())?;
    Ok(Some(ServedOpenapi {
        path: serve.path,
        document,
    }))
}

/// The route: `GET <path>` answered by Envoy with the document as JSON.
pub fn route(s: &ServedOpenapi) -> Route {
    let off = Any::FilterConfig(FilterConfig { disabled: true });
    Route {
        name: "openapi".into(),
        matcher: RouteMatch {
            prefix: String::new(),
            path: Some(s.path.clone()),
            headers: Vec::new(),
        },
        route: RouteAction {
            cluster: String::new(),
            timeout: String::new(),
            idle_timeout: None,
        },
        direct_response: Some(DirectResponse {
            status: 200,
            body: InlineBody {
                inline_string: s.document.clone(),
            },
        }),
        response_headers_to_add: vec![HeaderValueOption {
            header: HeaderValue {
                key: "content-type".into(),
                value: "application/json".into(),
            },
            append_action: "OVERWRITE_IF_EXISTS_OR_ADD".into(),
        }],
        metadata: None,
        typed_per_filter_config: BTreeMap::from([(WASM_FILTER_NAME.to_string(), off)]),
    }
}

/// The route configuration's limit for a document this large (None: Envoy's default holds).
pub fn max_body(s: Option<&ServedOpenapi>) -> Option<u32> {
    let len = s?.document.len();
    (len > ENVOY_DEFAULT_MAX_BODY).then(|| u32::try_from(len).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_answers_with_the_document_and_raises_the_body_limit() {
        let s = ServedOpenapi {
            path: "/openapi.json".into(),
            document: format!("{{\"openapi\":\"3.0.3\",\"x\":\"{}\"}}", "a".repeat(5000)),
        };
        let v = serde_json::to_value(route(&s)).unwrap();
        assert_eq!(v["match"]["path"], "/openapi.json");
        assert!(v.get("route").is_none(), "{v}");
        assert_eq!(v["direct_response"]["status"], 200);
        assert_eq!(v["direct_response"]["body"]["inline_string"], s.document);
        assert_eq!(
            v["response_headers_to_add"][0]["header"]["value"],
            "application/json"
        );
        assert_eq!(
            v["typed_per_filter_config"][WASM_FILTER_NAME]["disabled"],
            true
        );
        assert_eq!(max_body(Some(&s)), Some(s.document.len() as u32));
        let small = ServedOpenapi {
            path: "/o".into(),
            document: "{}".into(),
        };
        assert_eq!(max_body(Some(&small)), None);
    }
}
