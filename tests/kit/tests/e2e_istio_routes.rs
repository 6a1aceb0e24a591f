//! Issue 6, the Istio delivery (routes): the VirtualService routes of
//! istio/examples/virtualservice-policies.yaml, as istiod names them, select meshgate's
//! policies by route metadata (or switch it off) in a real Envoy.
//!
//! Split from `e2e_istio.rs` by behaviour: `e2e_istio_manifests.rs` (what `meshgate istio`
//! generates), `e2e_istio_envoy.rs` (the generated configuration running in a real Envoy),
//! `e2e_istio_routes.rs` (VirtualService routes selecting policies); shared helpers in
//! `e2e_istio_support`.
//!
//! Needs `build/meshgate.wasm` (`make wasm`), Envoy and the schema validator's packages
//! (`make setup`: node + `istio/schema/node_modules`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_istio_support;

use e2e_istio_support::*;
use meshgate::cli::envoy::types::Cluster;
use meshgate::cli::envoy::{
    bootstrap, buffer_limit_for, stats_config_for, ClusterSpec, EnvoyOptions,
};
use meshgate_kit::harness::{
    free_port, http1_client, payments_client, repo_root, start_backend, start_envoy, wasm_path,
};
use meshgate_kit::proto::meshgate::demo::v1::GetPaymentRequest;
use serde_json::{json, Value};

/// The Envoy routes istiod makes of a VirtualService's `http[]` entries (one route per match,
/// named `<http.name>`, or `<http.name>.<match.name>` for a named match; destinations to
/// `outbound|PORT||HOST` clusters), with the route patches of `EnvoyFilter`s merged in.
fn virtualservice_routes(vs: &Value, filters: &[&Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for http in vs["spec"]["http"].as_array().unwrap() {
        let name = http["name"].as_str().unwrap();
        let dest = &http["route"][0]["destination"];
        assert_eq!(
            http["route"].as_array().unwrap().len(),
            1,
            "{name}: one destination"
        );
        let cluster = format!(
            "outbound|{}||{}",
            dest["port"]["number"],
            dest["host"].as_str().unwrap()
        );
        let matches = http["match"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| vec![json!({})]);
        for m in matches {
            let route_name = match m["name"].as_str() {
                Some(n) => format!("{name}.{n}"),
                None => name.to_string(),
            };
            let mut matcher = json!({"prefix": "/"});
            if let Some(prefix) = m["uri"]["prefix"].as_str() {
                matcher = json!({"prefix": prefix});
            }
            if let Some(exact) = m["uri"]["exact"].as_str() {
                matcher = json!({"path": exact});
            }
            if let Some(headers) = m["headers"].as_object() {
                let list: Vec<Value> = headers
                    .iter()
                    .map(|(h, v)| {
                        let exact = v["exact"].as_str().unwrap();
                        json!({"name": h, "string_match": {"exact": exact}})
                    })
                    .collect();
                matcher["headers"] = json!(list);
            }
            let mut route = json!({
                "name": route_name,
                "match": matcher,
                "route": {"cluster": cluster, "timeout": "15s"},
            });
            for ef in filters {
                for patch in ef["spec"]["configPatches"].as_array().unwrap() {
                    let target = &patch["match"]["routeConfiguration"]["vhost"]["route"]["name"];
                    if patch["applyTo"] == "HTTP_ROUTE" && target == route_name.as_str() {
                        assert_eq!(patch["patch"]["operation"], "MERGE");
                        for (k, v) in patch["patch"]["value"].as_object().unwrap() {
                            route[k.as_str()] = v.clone();
                        }
                    }
                }
            }
            out.push(route);
        }
    }
    out
}

/// Per-route policy as deployed in Istio. A real Envoy runs the routes of
/// istio/examples/virtualservice-policies.yaml as istiod names them (with its EnvoyFilter's
/// `FilterConfig{disabled}` merged into the `direct` route), the filter as istiod renders the
/// WasmPlugin generated from istio/gateway.yaml (named `istio-system.meshgate`, no
/// `allow_on_headers_stop_iteration`, so every transcoded call is a side call), backends
/// behind clusters named like Istio's (`outbound|50051||payments.demo.svc.cluster.local`), and
/// the access log filtered as the generated Telemetry says. Each route's policy takes effect,
/// side calls reach Istio's clusters, and the disabled route bypasses meshgate.
#[tokio::test(flavor = "multi_thread")]
async fn virtualservice_routes_select_policies_with_the_istio_gateway() {
    if meshgate_kit::harness::skip_on_native("Istio loads only Wasm (WasmPlugin)") {
        return;
    }
    let dir = temp("virtualservice");
    let gateway = repo_root().join("istio/gateway.yaml");
    generate(&gateway, &dir);
    let docs = documents(&dir.join("out"));
    let wp = doc(&docs, "wasmplugin-gateway.yaml", "WasmPlugin");
    let telemetry = doc(&docs, "telemetry.yaml", "Telemetry");
    let examples = documents(&repo_root().join("istio/examples"));
    let vs = doc(&examples, "virtualservice-policies.yaml", "VirtualService");
    let ef = doc(&examples, "virtualservice-policies.yaml", "EnvoyFilter");
    let wasm = wasm_path().unwrap();
    let filter = istio_rendered_filter(wp, &wasm);
    // The EnvoyFilter keys the route's FilterConfig by the name istiod gives the filter.
    let per_filter = &ef["spec"]["configPatches"][0]["patch"]["value"]["typed_per_filter_config"];
    assert!(
        per_filter.get(filter["name"].as_str().unwrap()).is_some(),
        "{per_filter} is keyed by {}",
        filter["name"]
    );
    let routes = virtualservice_routes(vs, &[ef]);

    let payments = start_backend("payments", "payments").unwrap();
    let wallets = start_backend("wallets", "wallets").unwrap();
    let legacy = meshgate_kit::harness::start_rest_backend("legacy").unwrap();
    let jwks = meshgate_kit::jwks::JwksServer::start(r#"{"keys":[]}"#).unwrap();
    let mut clusters: Vec<ClusterSpec> = Vec::new();
    for r in &routes {
        let name = r["route"]["cluster"].as_str().unwrap();
        if clusters.iter().any(|c| c.name == name) {
            continue;
        }
        let (port, http2) = match name {
            "outbound|50051||payments.demo.svc.cluster.local" => (payments.addr.port(), true),
            "outbound|50051||wallets.demo.svc.cluster.local" => (wallets.addr.port(), true),
            "outbound|8080||legacy.demo.svc.cluster.local" => (legacy.addr.port(), false),
            other => panic!("the VirtualService routes to {other}, which this test lacks"),
        };
        clusters.push(ClusterSpec {
            name: name.to_string(),
            address: "127.0.0.1".into(),
            port,
            http2,
        });
    }
    // The upstreams of the gateway configuration are exactly those clusters.
    let plugin_config = &wp["spec"]["pluginConfig"];
    for up in plugin_config["upstreams"].as_object().unwrap().keys() {
        assert!(
            clusters.iter().any(|c| &c.name == up),
            "{up} is a route's cluster"
        );
    }
    let jwks_cluster = "outbound|443||idp.example.com";
    let config =
        meshgate::config::compile_json(serde_json::to_string(plugin_config).unwrap().as_bytes())
            .unwrap();
    let mut o = EnvoyOptions::new(
        serde_json::to_string(plugin_config).unwrap(),
        "unused".into(),
    );
    o.listen_port = free_port().unwrap();
    o.admin_port = free_port().unwrap();
    o.clusters = clusters;
    o.stats_config = stats_config_for(&config);
    o.buffer_limit_bytes = Some(buffer_limit_for(&config));
    o.extra_clusters = vec![Cluster::from(&ClusterSpec {
        name: jwks_cluster.to_string(),
        address: "127.0.0.1".into(),
        port: jwks.addr().port(),
        http2: false,
    })];
    let mut b = serde_json::to_value(bootstrap(&o)).unwrap();
    let hcm = &mut b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    hcm["http_filters"][0] = filter;
    hcm["route_config"]["virtual_hosts"][0]["routes"] = json!(routes);
    // The access log filtered as the Telemetry resource filters the mesh's.
    let expression = &telemetry["spec"]["accessLogging"][0]["filter"]["expression"];
    assert!(expression.is_string(), "{telemetry}");
    hcm["access_log"][0]["filter"]["extension_filter"]["typed_config"]["expression"] =
        expression.clone();
    let envoy = start_envoy(&serde_yaml_ng::to_string(&b).unwrap()).unwrap();
    let client = http1_client();
    let url = |p: &str| envoy.url(p);

    // `direct`: meshgate is off. Untouched (the spoofed routing header arrives as sent, a path
    // meshgate does not know is served), and no access record (no `-` line either).
    let r = client
        .get(&url("/direct/raw"), &[("x-meshgate-upstream", "spoofed")])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let seen = r.json().unwrap();
    assert_eq!(seen["backend"], "legacy");
    assert_eq!(seen["path"], "/direct/raw");
    assert_eq!(seen["headers"]["x-meshgate-upstream"], "spoofed");
    assert!(
        seen["headers"].get("x-meshgate-operation").is_none(),
        "{seen}"
    );

    // `wallets-api` -> `strict`: a token is required (also with a spoofed routing header).
    for spoof in ["payments", "wallets"] {
        let id = format!("vs-wallets-{spoof}");
        let r = client
            .get(
                &url("/v1/wallets/w_001"),
                &[("x-request-id", &id), ("x-meshgate-upstream", spoof)],
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 401, "{}", r.text());
        assert_eq!(r.json().unwrap()["code"], 16, "UNAUTHENTICATED");
        let rec = envoy.record_for(&id).unwrap();
        assert_eq!(rec["policy"], "strict", "{rec}");
        assert_eq!(
            rec["upstream"],
            "outbound|50051||wallets.demo.svc.cluster.local"
        );
    }
    // `payments-grpc-only` -> `grpc-only`: HTTP/JSON refused.
    let r = client
        .get(
            &url("/v1/payments/pay_002"),
            &[("x-request-id", "vs-grpc-only")],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 415, "{}", r.text());
    assert_eq!(r.json().unwrap()["code"], 12, "UNIMPLEMENTED");
    assert_eq!(
        envoy.record_for("vs-grpc-only").unwrap()["policy"],
        "grpc-only"
    );
    // Other payments: no policy; transcoded calls are side calls to Istio's cluster name, a
    // GET and a POST (a WasmPlugin sends every transcoded call itself).
    let r = client
        .get(&url("/v1/payments/pay_001"), &[("x-request-id", "vs-get")])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    assert_eq!(r.json().unwrap()["id"], "pay_001");
    let rec = envoy.record_for("vs-get").unwrap();
    assert!(rec.get("policy").is_none(), "{rec}");
    let r = client
        .post(
            &url("/v1/payments"),
            &[
                ("content-type", "application/json"),
                ("x-request-id", "vs-post"),
            ],
            r#"{"merchant":"m_vs","amount":{"currencyCode":"EUR","amountMinor":"5"}}"#,
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    assert_eq!(r.json().unwrap()["merchant"], "m_vs");
    // Native gRPC goes through the router: the `upstream-*` routes match the header values.
    let mut payments_rpc = payments_client(envoy.listener_addr()).await.unwrap();
    let mut req = tonic::Request::new(GetPaymentRequest {
        id: "pay_001".into(),
        view: None,
    });
    req.metadata_mut()
        .insert("x-request-id", "vs-grpc".parse().unwrap());
    let reply = payments_rpc.get_payment(req).await.unwrap();
    assert_eq!(reply.metadata().get("x-demo-backend").unwrap(), "payments");
    assert_eq!(
        reply.metadata().get("x-demo-saw-upstream").unwrap(),
        "payments"
    );
    let mut wallets_rpc = meshgate_kit::harness::wallets_client(envoy.listener_addr())
        .await
        .unwrap();
    let denied = wallets_rpc
        .get_wallet(meshgate_kit::proto::meshgate::demo::v1::GetWalletRequest {
            wallet_id: "w_001".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::Unauthenticated, "{denied:?}");
    let rec = envoy.record_for("vs-grpc").unwrap();
    assert_eq!(
        rec["upstream"],
        "outbound|50051||payments.demo.svc.cluster.local"
    );

    // Every stdout line is a record (the Telemetry filter dropped the bypassed request's `-`),
    // and none is meshgate's for the bypassed request. Envoy writes lines in order: the last
    // record being there means the first request's line would be too.
    let out = envoy.stdout();
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 5, "{out}");
    for line in &lines {
        let rec: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let url = rec["httpRequest"]["requestUrl"]
            .as_str()
            .unwrap_or_default();
        // The bypassed request has no meshgate record; the bootstrap's listener (rendered by
        // `meshgate envoy`) has Envoy write one in the same shape for it.
        assert!(
            !url.contains("/direct/") || rec["recordedBy"] == "envoy",
            "{line}"
        );
    }
}
