#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use super::browser::*;
use super::types::*;
use super::*;

/// A filter configuration with a `cors` section and two policies that tighten it (the filter
/// JSON needs no descriptors for this: only `cors` and `policies` are read).
const JSON: &str = r#"{
  "cors": {"allow_origins": ["http://127.0.0.1:8088"],
           "allow_origin_patterns": ["https://*.example.com"],
           "allow_credentials": true, "max_age_seconds": 60},
  "policies": {
    "admin": {"cors": {"allow_origins": ["https://admin.example.com"], "allow_methods": ["GET"]}},
    "internal": {"cors": {"enabled": false}},
    "plain": {}
  }
}"#;

fn options(json: &str) -> EnvoyOptions {
    let mut o = EnvoyOptions::new(json.into(), "/m.wasm".into());
    o.clusters.push(ClusterSpec {
        name: "payments".into(),
        address: "127.0.0.1".into(),
        port: 1,
        http2: true,
    });
    for (name, policy) in [
        ("admin", "admin"),
        ("internal", "internal"),
        ("plain", "plain"),
    ] {
        o.routes.push(RouteSpec {
            name: name.into(),
            prefix: format!("/{name}/"),
            cluster: "payments".into(),
            policy: Some(policy.into()),
            disable_filter: false,
        });
    }
    o
}

fn hcm(b: &Bootstrap) -> &HttpConnectionManager {
    match &b.static_resources.listeners[0].filter_chains[0].filters[0].typed_config {
        Any::HttpConnectionManager(h) => h,
        other => panic!("not a connection manager: {other:?}"),
    }
}

#[test]
fn browser_filters_come_before_meshgate_in_order() {
    let b = bootstrap(&options(JSON));
    let names: Vec<&str> = hcm(&b)
        .http_filters
        .as_ref()
        .unwrap()
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            CORS_FILTER_NAME,
            HEADER_MUTATION_FILTER_NAME,
            GRPC_WEB_FILTER_NAME,
            WASM_FILTER_NAME,
            "envoy.filters.http.router"
        ]
    );
    assert_eq!(hcm(&b).always_set_request_id_in_response, Some(true));
}

#[test]
fn without_a_cors_section_the_chain_is_unchanged() {
    let b = bootstrap(&options("{}"));
    let h = hcm(&b);
    assert_eq!(h.http_filters.as_ref().unwrap().len(), 2);
    assert_eq!(h.always_set_request_id_in_response, None);
    let vh = &h.route_config.as_ref().unwrap().virtual_hosts[0];
    assert!(vh.typed_per_filter_config.is_empty());
}

#[test]
fn the_virtual_host_carries_the_section_and_preflights_stop_at_envoy() {
    let b = bootstrap(&options(JSON));
    let vh = &hcm(&b).route_config.as_ref().unwrap().virtual_hosts[0];
    let v = serde_json::to_value(&vh.typed_per_filter_config[CORS_FILTER_NAME]).unwrap();
    assert_eq!(
        v["@type"],
        "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"
    );
    assert_eq!(
        v["allow_origin_string_match"],
        serde_json::json!([
            {"exact": "http://127.0.0.1:8088"},
            {"safe_regex": {"regex": r"^https://[a-z0-9-]+\.example\.com$"}}
        ])
    );
    assert_eq!(v["forward_not_matching_preflights"], false);
    assert_eq!(v["allow_credentials"], true);
    assert_eq!(v["max_age"], "60");
    let exposed = v["expose_headers"].as_str().unwrap();
    for h in [
        "grpc-status",
        "grpc-message",
        "x-request-id",
        "www-authenticate",
    ] {
        assert!(exposed.split(',').any(|x| x == h), "{exposed}");
    }
}

#[test]
fn a_policy_route_carries_its_tighter_cors_or_none() {
    let b = bootstrap(&options(JSON));
    let routes = &hcm(&b).route_config.as_ref().unwrap().virtual_hosts[0].routes;
    let per = |name: &str| {
        routes
            .iter()
            .filter(|r| r.name == name)
            .map(|r| r.typed_per_filter_config.get(CORS_FILTER_NAME).cloned())
            .collect::<Vec<_>>()
    };
    // Every route of the policy (per upstream and the fallback) carries it.
    let admin = per("admin");
    assert_eq!(admin.len(), 2);
    for a in &admin {
        let v = serde_json::to_value(a.as_ref().unwrap()).unwrap();
        assert_eq!(
            v["allow_origin_string_match"],
            serde_json::json!([{"exact": "https://admin.example.com"}])
        );
        assert_eq!(v["allow_methods"], "GET");
    }
    for i in per("internal") {
        assert_eq!(i, Some(Any::FilterConfig(FilterConfig { disabled: true })));
    }
    for p in per("plain") {
        assert_eq!(p, None, "a policy without cors keeps the virtual host's");
    }
}
