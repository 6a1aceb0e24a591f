//! Issue 18 in an Istio mesh: the rate limit EnvoyFilter `meshgate istio` writes
//! (`envoyfilter-ratelimit.yaml`) and the quota reply mapper of `envoyfilter-local-replies.yaml`,
//! applied as istiod applies them (the filters inserted before the router, the mapper merged
//! into the connection manager) to a real Envoy running meshgate without its own rendered
//! limits: the demo partner's burst of uploads past its quota gets 429 with the `Status`.
//!
//! Needs `build/meshgate.wasm` (`make wasm`), Envoy and the Istio tools (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_istio_support;

use e2e_istio_support::*;
use meshgate::cli::envoy::bootstrap;
use meshgate_kit::harness::{http1_client, repo_root, start_backend, start_envoy, wasm_path};
use serde_json::Value;

const ROUTER: &str = "envoy.filters.http.router";

#[tokio::test(flavor = "multi_thread")]
async fn the_istio_rate_limit_envoyfilter_limits_the_partner_in_envoy() {
    if meshgate_kit::harness::skip_on_native("Istio loads only Wasm (WasmPlugin)") {
        return;
    }
    let dir = temp("ratelimit");
    let gateway = repo_root().join("envoy/gateway.yaml");
    generate(&gateway, &dir);
    let docs = documents(&dir.join("out"));
    let ef = doc(&docs, "envoyfilter-ratelimit.yaml", "EnvoyFilter");
    let patches = ef["spec"]["configPatches"].as_array().unwrap();
    let replies = doc(&docs, "envoyfilter-local-replies.yaml", "EnvoyFilter");
    let merged = &replies["spec"]["configPatches"][0]["patch"]["value"]["typed_config"];

    let payments = start_backend("payments", "payments").unwrap();
    let wallets = start_backend("wallets", "wallets").unwrap();
    let json_cfg = meshgate::cli::compile_file(&gateway).unwrap();
    let mut o = demo_envoy_options(json_cfg, &payments, &wallets);
    o.wasm_path = wasm_path().unwrap().display().to_string();
    let mut b = serde_json::to_value(bootstrap(&o)).unwrap();
    let hcm = &mut b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    hcm["local_reply_config"] = merged["local_reply_config"].clone();
    let filters = hcm["http_filters"].as_array_mut().unwrap();
    // The connection manager as an Istio gateway has it: no limits of `meshgate envoy`'s.
    let before = filters.len();
    filters.retain(|f| !f["name"].as_str().unwrap().contains("ratelimit"));
    assert_eq!(
        before - filters.len(),
        1,
        "meshgate envoy rendered the local limit"
    );
    for p in patches {
        assert_eq!(p["applyTo"], "HTTP_FILTER");
        assert_eq!(p["patch"]["operation"], "INSERT_BEFORE");
        let sub = &p["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"];
        assert_eq!(sub, ROUTER);
        let at = filters.iter().position(|f| f["name"] == ROUTER).unwrap();
        filters.insert(at, p["patch"]["value"].clone());
    }
    let names: Vec<&str> = filters
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names[names.len() - 2..],
        ["envoy.filters.http.local_ratelimit", ROUTER],
        "{names:?}"
    );
    let envoy = start_envoy(&serde_yaml_ng::to_string(&b).unwrap()).unwrap();

    // The demo partner: 20 uploads a minute. 25 quick ones: 20 pass (one more may refill).
    let c = http1_client();
    let mut ok = 0;
    let mut limited: Vec<Value> = Vec::new();
    for _ in 0..25 {
        let r = c
            .post(
                &envoy.url("/v1/payments/pay_001/attachments"),
                &[
                    ("content-type", "text/plain"),
                    ("x-api-key", "mgk_demo_partner"),
                ],
                "receipt scan",
            )
            .await
            .unwrap();
        match r.status.as_u16() {
            200 => ok += 1,
            429 => limited.push(r.json().unwrap()),
            s => panic!("only 200 and 429: {s} {}", r.text()),
        }
    }
    assert!((20..=21).contains(&ok), "{ok} passed");
    assert!(limited.len() >= 4, "{limited:?}");
    for body in &limited {
        assert_eq!(body["code"], 8, "{body}");
        let v = &body["details"][0];
        assert_eq!(
            v["@type"], "type.googleapis.com/google.rpc.QuotaFailure",
            "{body}"
        );
        assert_eq!(
            v["violations"][0]["subject"], "client:demo-partner",
            "{body}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
