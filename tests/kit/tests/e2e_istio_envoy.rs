//! Issue 6, the Istio delivery (in a real Envoy): the `pluginConfig` taken out of the
//! generated WasmPlugin runs with the same results as the local configuration, also as istiod
//! renders it (no `allow_on_headers_stop_iteration`); the EnvoyFilter's HTTP filter, local
//! reply and stats settings work (requests served, meshgate's metrics pass Istio's stats
//! matcher with their labels); a remote JWKS is fetched through Istio's cluster name.
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
use meshgate::cli::envoy::{bootstrap, buffer_limit_for, stats_config_for, ClusterSpec};
use meshgate_kit::harness::{
    envoy_bin, grpc_frame, http1_client, http2_client, payments_client, repo_root, start_backend,
    start_envoy, wasm_path, GatewayBuilder,
};
use meshgate_kit::proto::meshgate::demo::v1::GetPaymentRequest;
use serde_json::{json, Value};
use std::process::Command;

/// Where meshgate's filter is in the rendered connection manager's chain (the demo's browser
/// filters come first).
fn meshgate_index(hcm: &Value) -> usize {
    hcm["typed_config"]["http_filters"]
        .as_array()
        .unwrap()
        .iter()
        .position(|f| f["name"] == meshgate::cli::envoy::WASM_FILTER_NAME)
        .unwrap()
}

/// Demo requests and what came back: (status, content-type, body).
async fn demo_requests(addr: std::net::SocketAddr) -> Vec<(u16, String, String)> {
    let base = format!("http://{addr}");
    let mut out = Vec::new();
    for client in [http1_client(), http2_client()] {
        for path in ["/v1/payments/pay_001", "/v1/payments/nope", "/no/such/path"] {
            let r = client.get(&format!("{base}{path}"), &[]).await.unwrap();
            let ct = r.header("content-type").unwrap_or("").to_string();
            out.push((r.status.as_u16(), ct, r.text()));
        }
    }
    let mut payments = payments_client(addr).await.unwrap();
    let reply = payments
        .get_payment(GetPaymentRequest {
            id: "pay_001".into(),
            view: None,
        })
        .await
        .unwrap()
        .into_inner();
    out.push((200, "grpc".into(), format!("{reply:?}")));
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_config_from_the_wasmplugin_runs_like_the_local_configuration() {
    if meshgate_kit::harness::skip_on_native("Istio loads only Wasm (WasmPlugin)") {
        return;
    }
    let dir = temp("same");
    let gateway = repo_root().join("envoy/gateway.yaml");
    generate(&gateway, &dir);
    let docs = documents(&dir.join("out"));
    let wp = doc(&docs, "wasmplugin-gateway.yaml", "WasmPlugin");
    // What Istio hands the filter: the pluginConfig object, serialized as JSON.
    let plugin_config = serde_json::to_string(&wp["spec"]["pluginConfig"]).unwrap();

    let local = GatewayBuilder::demo().start().unwrap();
    let mesh = GatewayBuilder::demo()
        .filter_json(plugin_config.clone())
        .start()
        .unwrap();
    assert_eq!(mesh.filter_json, plugin_config);
    let a = demo_requests(local.addr()).await;
    let b = demo_requests(mesh.addr()).await;
    assert_eq!(a[0].0, 200, "GET transcoded: {:?}", a[0]);
    assert_eq!(a[2].0, 404, "unknown path: {:?}", a[2]);
    assert_eq!(
        a, b,
        "the mesh configuration answers exactly like the local one"
    );
}

/// The EnvoyFilter's HTTP filter (module from a file, allow_on_headers_stop_iteration,
/// failure policy) serves the demo in a real Envoy, with the stats the mesh settings
/// configure: Istio's `proxyStatsMatcher` (as Envoy's `stats_matcher`) keeps meshgate's stats
/// and the bootstrap override's `stats_tags` give them their labels.
#[tokio::test(flavor = "multi_thread")]
async fn envoyfilter_filter_and_stats_settings_work_in_envoy() {
    if meshgate_kit::harness::skip_on_native("Istio loads only Wasm (WasmPlugin)") {
        return;
    }
    let dir = temp("envoyfilter");
    let gateway = repo_root().join("envoy/gateway.yaml");
    generate(&gateway, &dir);
    let docs = documents(&dir.join("out"));
    let ef = doc(&docs, "envoyfilter-file.yaml", "EnvoyFilter");
    let patch = &ef["spec"]["configPatches"][0];
    assert_eq!(patch["applyTo"], "HTTP_FILTER");
    let mut filter = patch["patch"]["value"].clone();
    let config = &mut filter["typed_config"]["config"];
    assert_eq!(config["allow_on_headers_stop_iteration"], true);
    assert_eq!(config["failure_policy"], "FAIL_RELOAD");
    // The file the mesh mounts in the proxy is the module under test here.
    config["vm_config"]["code"]["local"]["filename"] =
        json!(wasm_path().unwrap().display().to_string());

    let configmap = doc(&docs, "stats-bootstrap-configmap.yaml", "ConfigMap");
    let overlay: Value =
        serde_json::from_str(configmap["data"]["custom_bootstrap.json"].as_str().unwrap()).unwrap();
    let op = doc(&docs, "istio-operator.yaml", "IstioOperator");
    let prefixes =
        &op["spec"]["meshConfig"]["defaultConfig"]["proxyStatsMatcher"]["inclusionPrefixes"];
    let patterns: Vec<Value> = prefixes
        .as_array()
        .unwrap()
        .iter()
        .map(|p| json!({"prefix": p}))
        .collect();

    let payments = start_backend("payments", "payments").unwrap();
    let wallets = start_backend("wallets", "wallets").unwrap();
    let json_cfg = meshgate::cli::compile_file(&gateway).unwrap();
    let compiled = meshgate::config::compile_json(json_cfg.as_bytes()).unwrap();
    let mut o = demo_envoy_options(json_cfg, &payments, &wallets);
    o.stats_config = stats_config_for(&compiled);
    assert_eq!(
        overlay["stats_config"],
        serde_json::to_value(&o.stats_config).unwrap()
    );
    let mut b = serde_json::to_value(bootstrap(&o)).unwrap();
    b["stats_config"]["stats_matcher"] = json!({"inclusion_list": {"patterns": patterns}});
    let hcm = &mut b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0];
    let i = meshgate_index(hcm);
    hcm["typed_config"]["http_filters"][i] = filter;
    let yaml = serde_yaml_ng::to_string(&b).unwrap();

    // Envoy's own check first, then the real thing.
    let file = dir.join("envoyfilter-bootstrap.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let out = Command::new(envoy_bin().unwrap())
        .args(["--mode", "validate", "-c"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "envoy --mode validate: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let envoy = start_envoy(&yaml).unwrap();
    let r = http1_client()
        .get(&envoy.url("/v1/payments/pay_001"), &[])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    assert_eq!(r.json().unwrap()["id"], "pay_001");
    let mut text = String::new();
    for _ in 0..50 {
        text = envoy.stats_prometheus().unwrap();
        if text.contains("meshgate_requests_total{") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        text.contains(
            "meshgate_requests_total{outcome=\"ok\",operation=\"meshgate.demo.v1.Payments.GetPayment\"}"
        ),
        "meshgate's metric passes the matcher with its labels:\n{}",
        text.lines()
            .filter(|l| l.contains("meshgate"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The matcher keeps nothing else (Istio's own inclusions aside).
    let envoy_stats = envoy.stats_text().unwrap();
    assert!(!envoy_stats.contains("http.gateway.downstream_rq_total"));
}

/// The local-reply EnvoyFilters (gateway and sidecar) carry meshgate's `local_reply_config`,
/// and merged into a real Envoy's connection manager it does its job: a backend reset after
/// its headers (answered by Envoy past the filter) becomes a Status JSON 503, a timeout before
/// the headers is still converted by meshgate (not wrapped twice), and a native gRPC client
/// still gets Envoy's trailers-only `grpc-status`.
#[tokio::test(flavor = "multi_thread")]
async fn local_reply_envoyfilter_makes_envoys_replies_status_json_in_envoy() {
    if meshgate_kit::harness::skip_on_native("Istio loads only Wasm (WasmPlugin)") {
        return;
    }
    let dir = temp("local-replies");
    let gateway = repo_root().join("envoy/gateway.yaml");
    generate(&gateway, &dir);
    let docs = documents(&dir.join("out"));
    let filters: Vec<&Value> = docs
        .iter()
        .filter(|(f, _)| f == "envoyfilter-local-replies.yaml")
        .map(|(_, d)| d)
        .collect();
    let contexts: Vec<&Value> = filters
        .iter()
        .map(|d| &d["spec"]["configPatches"][0]["match"]["context"])
        .collect();
    assert_eq!(contexts, [&json!("GATEWAY"), &json!("SIDECAR_INBOUND")]);
    let patch = &filters[0]["spec"]["configPatches"][0];
    assert_eq!(patch["applyTo"], "NETWORK_FILTER");
    assert_eq!(patch["patch"]["operation"], "MERGE");
    let merged = &patch["patch"]["value"]["typed_config"];

    let payments = start_backend("payments", "payments").unwrap();
    let wallets = start_backend("wallets", "wallets").unwrap();
    let json_cfg = meshgate::cli::compile_file(&gateway).unwrap();
    let mut o = demo_envoy_options(json_cfg, &payments, &wallets);
    o.wasm_path = wasm_path().unwrap().display().to_string();
    o.route_timeout_s = 1;
    // The connection manager as an Istio proxy has it (no local_reply_config), then the patch.
    let mut b = serde_json::to_value(bootstrap(&o)).unwrap();
    let hcm = &mut b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0];
    let typed = hcm["typed_config"].as_object_mut().unwrap();
    typed.remove("local_reply_config");
    assert_eq!(merged["@type"], typed["@type"]);
    typed.insert(
        "local_reply_config".into(),
        merged["local_reply_config"].clone(),
    );
    let envoy = start_envoy(&serde_yaml_ng::to_string(&b).unwrap()).unwrap();

    let post = |mode: (&'static str, &'static str)| {
        let url = envoy.url("/v1/wallets/w_001:topUp");
        async move {
            let headers = [("content-type", "application/json"), mode];
            http1_client().post(&url, &headers, "{}").await.unwrap()
        }
    };
    let reset = post(("x-demo-misbehave", "reset")).await;
    println!("reset -> {} {}", reset.status, reset.text());
    assert_eq!(reset.status.as_u16(), 503, "{}", reset.text());
    assert_eq!(reset.header("content-type"), Some("application/json"));
    let status = reset.json().unwrap();
    assert_eq!(status["code"], 14, "{status}");
    assert!(
        status["message"].as_str().unwrap().contains("reset"),
        "{status}"
    );

    let slow = post(("x-demo-delay-ms", "3000")).await;
    println!("timeout -> {} {}", slow.status, slow.text());
    assert_eq!(slow.status.as_u16(), 504, "{}", slow.text());
    let status = slow.json().unwrap();
    assert_eq!(status["code"], 4, "{status}");
    assert!(
        !status["message"].as_str().unwrap().contains("\"code\""),
        "meshgate's conversion is not wrapped in a second Status: {status}"
    );

    let client = http2_client();
    let url = envoy.url("/meshgate.demo.v1.Payments/GetPayment");
    let grpc = client.post(
        &url,
        &[
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("x-demo-delay-ms", "3000"),
        ],
        grpc_frame(b"\x0a\x07pay_001").to_vec(),
    );
    let grpc = grpc.await.unwrap();
    println!(
        "gRPC timeout -> {} {:?} {:?}",
        grpc.status,
        grpc.header("grpc-status"),
        grpc.header("grpc-message")
    );
    assert_eq!(grpc.header("content-type"), Some("application/grpc"));
    // Envoy's own gRPC mapping of its 504 (UNAVAILABLE), as without the patch.
    assert_eq!(grpc.header("grpc-status"), Some("14"));
    assert_eq!(
        grpc.header("grpc-message"),
        Some("upstream request timeout")
    );
}

/// What a WasmPlugin (or TrafficExtension) gives meshgate: the filter as Istio's pilot renders
/// it, in a real Envoy, without `allow_on_headers_stop_iteration` (Istio does not set it: a
/// filter that pauses headers then sees no body, ENVOY_NOTES). The generated pluginConfig sets
/// `transcoding.upstream_calls: side_call`, so every transcoded call is answered: each request
/// of every kind, over HTTP/1.1 and HTTP/2, gets exactly the answer that the local
/// configuration (flag set, calls through the router) gives, from backends in the same state.
#[tokio::test(flavor = "multi_thread")]
async fn wasmplugin_as_istio_renders_it_answers_like_the_local_configuration() {
    if meshgate_kit::harness::skip_on_native("Istio loads only Wasm (WasmPlugin)") {
        return;
    }
    let dir = temp("rendered");
    let gateway = repo_root().join("envoy/gateway.yaml");
    generate(&gateway, &dir);
    let docs = documents(&dir.join("out"));
    let wp = doc(&docs, "wasmplugin-gateway.yaml", "WasmPlugin");
    assert_eq!(
        wp["spec"]["pluginConfig"]["transcoding"]["upstream_calls"], "side_call",
        "the WasmPlugin's configuration asks for side calls"
    );
    let payments = start_backend("payments", "payments").unwrap();
    let wallets = start_backend("wallets", "wallets").unwrap();
    let json_cfg = meshgate::cli::compile_file(&gateway).unwrap();
    let config = meshgate::config::compile_json(json_cfg.as_bytes()).unwrap();
    let mut o = demo_envoy_options(json_cfg, &payments, &wallets);
    // The listener buffer that envoyfilter-local-replies.yaml merges into the gateway.
    let limits = doc(&docs, "envoyfilter-local-replies.yaml", "EnvoyFilter");
    let patch = &limits["spec"]["configPatches"][1];
    assert_eq!(patch["applyTo"], "LISTENER");
    let limit = patch["patch"]["value"]["per_connection_buffer_limit_bytes"].as_u64();
    assert_eq!(limit, Some(u64::from(buffer_limit_for(&config))));
    o.buffer_limit_bytes = Some(buffer_limit_for(&config));
    let mut b = serde_json::to_value(bootstrap(&o)).unwrap();
    let hcm = &mut b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0];
    let i = meshgate_index(hcm);
    hcm["typed_config"]["http_filters"][i] = istio_rendered_filter(wp, &wasm_path().unwrap());
    let rendered_filter = &hcm["typed_config"]["http_filters"][i]["typed_config"]["config"];
    assert!(rendered_filter
        .get("allow_on_headers_stop_iteration")
        .is_none());
    let envoy = start_envoy(&serde_yaml_ng::to_string(&b).unwrap()).unwrap();
    let local = GatewayBuilder::demo().start().unwrap();

    let mesh = mesh_answers(&envoy.url("")).await;
    let reference = mesh_answers(&local.url("")).await;
    // The reference is what the transcoding tests pin; a few anchors keep this one honest.
    let expect = [
        (0, "200 application/json"),
        (1, "404 application/json"),
        (3, "200 application/json"),
        (4, "400 application/json"),
        (7, "200 application/json"),
        (8, "400 application/json"),
        (9, "200 application/x-protobuf"),
        (11, "400 application/json"),
        (13, "200 application/json"),
        (14, "413 application/json"),
    ];
    for (i, prefix) in expect {
        let answer = reference[i].split(" -> ").nth(1).unwrap_or_default();
        assert!(
            answer.starts_with(prefix),
            "reference {i}: {}",
            reference[i]
        );
    }
    for (i, (m, r)) in mesh.iter().zip(&reference).enumerate() {
        assert_eq!(
            m, r,
            "request {i}: as Istio renders the WasmPlugin vs locally"
        );
    }
    assert_eq!(mesh.len(), reference.len());
}

/// The remote JWKS is fetched through the cluster name Istio gives a ServiceEntry host
/// (`outbound|443||idp.example.com`, pipes and all): the pluginConfig of a generated WasmPlugin,
/// in a real Envoy whose cluster of that name leads to a JWKS server. Locally the cluster is
/// plain HTTP; in the mesh the generated DestinationRule originates TLS on it.
#[tokio::test(flavor = "multi_thread")]
async fn remote_jwks_is_fetched_through_istios_cluster_name() {
    if meshgate_kit::harness::skip_on_native("Istio loads only Wasm (WasmPlugin)") {
        return;
    }
    let dir = temp("jwks");
    let proto = repo_root().join("proto");
    let gateway = dir.join("gateway.yaml");
    let cluster = "outbound|443||idp.example.com";
    std::fs::write(
        &gateway,
        format!(
            "descriptors:\n  files: [meshgate/demo/v1/payments.proto]\n  include: [{}]\n\
             upstreams: {{payments: {{}}, wallets: {{}}}}\n\
             services:\n  meshgate.demo.v1.Payments: {{upstream: payments, auth: none}}\n  \
             meshgate.demo.v1.Wallets: {{upstream: wallets, auth: {{provider: idp}}}}\n\
             auth:\n  providers:\n    - name: idp\n      issuer: https://idp.example.com\n      \
             jwks:\n        remote:\n          uri: https://idp.example.com/jwks.json\n          \
             cluster: \"{cluster}\"\n",
            proto.display()
        ),
    )
    .unwrap();
    generate(&gateway, &dir);
    let docs = documents(&dir.join("out"));
    let se = doc(&docs, "jwks-serviceentries.yaml", "ServiceEntry");
    assert_eq!(se["spec"]["hosts"][0], "idp.example.com");
    let wp = doc(&docs, "wasmplugin-gateway.yaml", "WasmPlugin");
    let plugin_config = serde_json::to_string(&wp["spec"]["pluginConfig"]).unwrap();

    let jwks = meshgate_kit::jwks::JwksServer::start(r#"{"keys":[]}"#).unwrap();
    let gw = GatewayBuilder::demo()
        .filter_json(plugin_config)
        .cluster(Cluster::from(&ClusterSpec {
            name: cluster.to_string(),
            address: "127.0.0.1".into(),
            port: jwks.addr().port(),
            http2: false,
        }))
        .start()
        .unwrap();
    // Payments is public; Wallets needs a token from idp.
    let public = http1_client()
        .get(&gw.url("/v1/payments/pay_001"), &[])
        .await
        .unwrap();
    assert_eq!(public.status.as_u16(), 200, "{}", public.text());
    let bearer = "Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbSJ9.c2ln";
    let _ = http1_client()
        .get(&gw.url("/v1/wallets/w_001"), &[("authorization", bearer)])
        .await
        .unwrap();
    let mut fetched = 0;
    for _ in 0..50 {
        fetched = jwks.jwks_requests();
        if fetched > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        fetched > 0,
        "the JWKS was fetched through `{cluster}`:\n{}",
        gw.envoy.log()
    );
    let denied = http1_client()
        .get(&gw.url("/v1/wallets/w_001"), &[])
        .await
        .unwrap();
    assert_eq!(denied.status.as_u16(), 401, "{}", denied.text());
}
