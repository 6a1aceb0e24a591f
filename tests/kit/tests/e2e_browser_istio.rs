//! `meshgate istio` for a gateway file with a `cors` section: the gateway's CORS EnvoyFilter
//! (header_mutation before Istio's grpc_web, the CorsPolicy on the virtual hosts, a route
//! policy's tighter one on its route by name) validates against Istio's EnvoyFilter schema and
//! carries the same CorsPolicy as `meshgate envoy`'s bootstrap.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_istio_support;

use e2e_istio_support::*;
use meshgate_kit::harness::repo_root;
use serde_json::Value;

#[test]
fn the_cors_envoyfilter_is_valid_and_renders_the_section_and_its_policies() {
    if meshgate_kit::harness::skip_on_native("Istio loads only Wasm (WasmPlugin)") {
        return;
    }
    let dir = temp("browser");
    let gateway = std::fs::read_to_string(repo_root().join("istio/gateway.yaml")).unwrap();
    let proto = repo_root().join("proto");
    let yaml = gateway.replace("include: [../proto]", &format!("include: [{}]", proto.display()))
        + "\ncors:\n  allow_origins: [https://app.example.com]\n  allow_origin_patterns: [\"https://*.apps.example.com\"]\n"
        + "  allow_credentials: true\n  max_age_seconds: 600\n";
    // The `strict` policy (route `wallets-api`) narrows it.
    assert!(
        yaml.contains("strict:"),
        "istio/gateway.yaml defines `strict`"
    );
    let yaml = yaml.replacen(
        "  strict:\n",
        "  strict:\n    cors: {allow_origins: [https://app.example.com], allow_methods: [GET]}\n",
        1,
    );
    let file = dir.join("gateway.yaml");
    std::fs::write(&file, yaml).unwrap();
    generate(&file, &dir);
    let docs = documents(&dir.join("out"));
    let ef = doc(&docs, "envoyfilter-cors.yaml", "EnvoyFilter");
    let patches = ef["spec"]["configPatches"].as_array().unwrap();
    assert_eq!(patches[0]["applyTo"], "HTTP_FILTER");
    assert_eq!(patches[0]["patch"]["operation"], "INSERT_BEFORE");
    assert_eq!(
        patches[0]["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"],
        "envoy.filters.http.grpc_web"
    );
    assert_eq!(patches[1]["applyTo"], "VIRTUAL_HOST");
    let vhost = &patches[1]["patch"]["value"]["typed_per_filter_config"]["envoy.filters.http.cors"];
    assert_eq!(vhost["forward_not_matching_preflights"], false);
    assert_eq!(vhost["allow_credentials"], true);
    assert_eq!(
        vhost["allow_origin_string_match"][0]["exact"],
        "https://app.example.com"
    );
    let route: Vec<&Value> = patches
        .iter()
        .filter(|p| p["applyTo"] == "HTTP_ROUTE")
        .collect();
    assert_eq!(
        route.len(),
        1,
        "only the route whose policy has cors: {patches:#?}"
    );
    assert_eq!(
        route[0]["match"]["routeConfiguration"]["vhost"]["route"]["name"],
        "wallets-api"
    );
    let tight = &route[0]["patch"]["value"]["typed_per_filter_config"]["envoy.filters.http.cors"];
    assert_eq!(tight["allow_methods"], "GET");

    let files: Vec<(String, Value)> = docs
        .into_iter()
        .filter(|(f, _)| f == "envoyfilter-cors.yaml")
        .collect();
    let (ok, report) = validate(&files, &dir);
    assert!(ok, "{report}");
}
