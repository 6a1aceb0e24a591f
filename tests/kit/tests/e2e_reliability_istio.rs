//! Issue 15 under Istio: what `meshgate istio` writes gives every request exactly one record,
//! as `meshgate envoy` does. In a real Envoy configured as istiod would configure the ingress
//! gateway from the generated resources (the WasmPlugin's filter as pilot renders it, the
//! `meshgate-records` access log from the Telemetry and the IstioOperator's provider, and
//! `envoyfilter-envoy-records.yaml` merged into the connection manager), a request meshgate
//! records has its record, and a request whose VM trapped (the test build,
//! `build/meshgate-test.wasm`) has Envoy's record in the same shape (`recordedBy: envoy`,
//! operation, `unavailable`, availability-bad); each request id exactly once.
//!
//! Needs `build/meshgate.wasm`, `build/meshgate-test.wasm` (`make wasm-test`) and Envoy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_istio_support;

use std::time::{Duration, Instant};

use e2e_istio_support::*;
use meshgate::cli::envoy::bootstrap;
use meshgate_kit::harness::{http1_client, repo_root, start_backend, start_envoy, Envoy};
use serde_json::{json, Value};

fn test_wasm() -> std::path::PathBuf {
    let path = repo_root().join("build/meshgate-test.wasm");
    assert!(
        path.is_file(),
        "{} missing: run `make wasm-test`",
        path.display()
    );
    path
}

/// The records of `id` (bounded wait for at least one).
fn records_of(envoy: &Envoy, id: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found: Vec<Value> = envoy
            .access_records()
            .into_iter()
            .filter(|r| r["requestId"] == id)
            .collect();
        if !found.is_empty() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn istio_resources_record_a_trapped_request_with_envoys_record() {
    if meshgate_kit::harness::skip_on_native("Istio loads only Wasm (WasmPlugin)") {
        return;
    }
    let dir = temp("envoy-records");
    let gateway = repo_root().join("envoy/gateway.yaml");
    generate(&gateway, &dir);
    let docs = documents(&dir.join("out"));
    let (ok, report) = validate(
        &docs
            .iter()
            .filter(|(f, _)| f == "envoyfilter-envoy-records.yaml")
            .cloned()
            .collect::<Vec<_>>(),
        &dir,
    );
    assert!(ok, "{report}");
    let filters: Vec<&Value> = docs
        .iter()
        .filter(|(f, _)| f == "envoyfilter-envoy-records.yaml")
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
    let merged_logs = patch["patch"]["value"]["typed_config"]["access_log"]
        .as_array()
        .unwrap()
        .clone();

    // The `meshgate-records` access log as istiod renders it from the Telemetry (filter) and
    // the IstioOperator's extension provider (path, text format).
    let telemetry = doc(&docs, "telemetry.yaml", "Telemetry");
    let logging = &telemetry["spec"]["accessLogging"][0];
    let operator = doc(&docs, "istio-operator.yaml", "IstioOperator");
    let provider = &operator["spec"]["meshConfig"]["extensionProviders"][0];
    assert_eq!(provider["name"], logging["providers"][0]["name"]);
    let file = &provider["envoyFileAccessLog"];
    let telemetry_log = json!({
        "name": "envoy.access_loggers.file",
        "filter": {"extension_filter": {
            "name": "envoy.access_loggers.extension_filters.cel",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
                "expression": logging["filter"]["expression"],
            },
        }},
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": file["path"],
            "log_format": {"text_format_source": {"inline_string": file["logFormat"]["text"]}},
        },
    });

    let payments = start_backend("payments", "payments").unwrap();
    let wallets = start_backend("wallets", "wallets").unwrap();
    let json_cfg = meshgate::cli::compile_file(&gateway).unwrap();
    let o = demo_envoy_options(json_cfg, &payments, &wallets);
    let mut b = serde_json::to_value(bootstrap(&o)).unwrap();
    let hcm = &mut b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0];
    let wp = doc(&docs, "wasmplugin-gateway.yaml", "WasmPlugin");
    let filters = hcm["typed_config"]["http_filters"].as_array_mut().unwrap();
    let i = filters
        .iter()
        .position(|f| f["name"] == meshgate::cli::envoy::WASM_FILTER_NAME)
        .unwrap();
    filters[i] = istio_rendered_filter(wp, &test_wasm());
    // Istio's access logs (the Telemetry's), then what the EnvoyFilter's MERGE appends.
    let mut logs = vec![telemetry_log];
    logs.extend(merged_logs);
    hcm["typed_config"]["access_log"] = Value::Array(logs);
    let envoy = start_envoy(&serde_yaml_ng::to_string(&b).unwrap()).unwrap();

    let url = envoy.url("/v1/payments/pay_001");
    let client = http1_client();
    let ok = client
        .get(&url, &[("x-request-id", "istio-ok")])
        .await
        .unwrap();
    assert_eq!(ok.status.as_u16(), 200, "{}", ok.text());
    let trapped = client
        .get(
            &url,
            &[
                ("x-request-id", "istio-trapped"),
                ("x-meshgate-test-trap", "request_headers"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(trapped.status.as_u16(), 503, "{}", trapped.text());
    // FAIL_RELOAD: served again by a new VM (bounded poll).
    let started = Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        let id = format!("istio-after-{n}");
        let r = client.get(&url, &[("x-request-id", &id)]).await.unwrap();
        if r.status.as_u16() == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not served again 20 s after the trap: {} {}",
            r.status,
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mine = records_of(&envoy, "istio-ok");
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["recordedBy"], "meshgate", "{}", mine[0]);
    let theirs = records_of(&envoy, "istio-trapped");
    assert_eq!(
        theirs.len(),
        1,
        "one record for the trapped request: {theirs:?}"
    );
    let rec = &theirs[0];
    println!("Envoy's record under Istio: {rec}");
    assert_eq!(rec["recordedBy"], "envoy", "{rec}");
    assert_eq!(
        rec["operation"], "meshgate.demo.v1.Payments.GetPayment",
        "{rec}"
    );
    assert_eq!(rec["outcome"], "unavailable", "{rec}");
    assert_eq!(rec["slo"]["availability"], "bad", "{rec}");
    assert_eq!(rec["httpRequest"]["status"], 503, "{rec}");
    // Every request, those sent while the VM reloaded too, has exactly one line.
    let all = envoy.access_records();
    let mut ids: Vec<&str> = all.iter().filter_map(|r| r["requestId"].as_str()).collect();
    let lines = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), lines, "no request id twice: {all:#?}");
    assert_eq!(lines, 2 + n, "one line per request sent: {all:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}
