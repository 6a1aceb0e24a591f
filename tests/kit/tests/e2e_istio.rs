//! Issue 6: the Istio delivery. The resources `meshgate istio` generates (and the committed
//! examples under istio/examples/) validate against Istio's CRD schemas; the WasmPlugin pins
//! the image `meshgate oci` builds and carries the filter configuration; that `pluginConfig`,
//! taken out of the generated WasmPlugin, runs in a real Envoy with the same results as the
//! local configuration; the EnvoyFilter's HTTP filter and the stats settings work in a real
//! Envoy (requests served, meshgate's metrics pass Istio's stats matcher with their labels).
//!
//! Needs `build/meshgate.wasm` (`make wasm`), Envoy and the schema validator's packages
//! (`make setup`: node + `istio/schema/node_modules`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use meshgate::cli::envoy::types::Cluster;
use meshgate::cli::envoy::{
    bootstrap, buffer_limit_for, stats_config_for, ClusterSpec, EnvoyOptions,
};
use meshgate_kit::harness::{
    envoy_bin, free_port, grpc_frame, http1_client, http2_client, payments_client, repo_root,
    start_backend, start_envoy, wasm_path, Backend, GatewayBuilder,
};
use meshgate_kit::proto::meshgate::demo::v1::GetPaymentRequest;
use serde_json::{json, Value};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshgate-istio-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `meshgate oci` + `meshgate istio` for a gateway file, into `dir/oci` and `dir/out`; returns
/// the image's manifest digest.
fn generate(gateway: &Path, dir: &Path) -> String {
    let wasm = wasm_path().unwrap();
    let module = std::fs::read(&wasm).unwrap();
    let image = meshgate::cli::oci::write_layout(&module, &dir.join("oci"), "0.1.0").unwrap();
    let args: Vec<String> = [
        gateway.to_str().unwrap(),
        "-d",
        dir.join("out").to_str().unwrap(),
        "--oci-layout",
        dir.join("oci").to_str().unwrap(),
        "--image",
        "oci://registry.example.com/meshgate/meshgate:0.1.0",
        "--wasm",
        wasm.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    meshgate::cli::istio::cmd_istio(&args).unwrap();
    image.manifest_digest
}

/// Every YAML document of every `.yaml` file in `dir`, as (file name, JSON value).
fn documents(dir: &Path) -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        // Documents are separated by `---` lines.
        let mut chunks = vec![String::new()];
        for line in text.lines() {
            if line.trim_end() == "---" {
                chunks.push(String::new());
            } else if let Some(last) = chunks.last_mut() {
                last.push_str(line);
                last.push('\n');
            }
        }
        for chunk in chunks {
            let y: serde_yaml_ng::Value = serde_yaml_ng::from_str(&chunk).unwrap();
            if y.is_null() {
                continue;
            }
            let v: Value = serde_json::to_value(y).unwrap();
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            out.push((name, v));
        }
    }
    out
}

fn doc<'a>(docs: &'a [(String, Value)], file: &str, kind: &str) -> &'a Value {
    docs.iter()
        .find(|(f, d)| f == file && d["kind"] == kind)
        .map(|(_, d)| d)
        .unwrap_or_else(|| panic!("{file} has no {kind}"))
}

/// Run Istio's schemas (istio/schema/validate.mjs) over the documents: (success, report).
fn validate(docs: &[(String, Value)], dir: &Path) -> (bool, String) {
    let schema_dir = repo_root().join("istio/schema");
    assert!(
        schema_dir
            .join("node_modules/@kubernetes-models/istio")
            .is_dir(),
        "the schema packages are missing: run `make setup` (tests/tools/setup.sh istio)"
    );
    let items: Vec<Value> = docs
        .iter()
        .map(|(f, d)| json!({"file": f, "doc": d}))
        .collect();
    let path = dir.join("items.json");
    std::fs::write(&path, serde_json::to_vec(&items).unwrap()).unwrap();
    let out = Command::new("node")
        .arg(schema_dir.join("validate.mjs"))
        .arg(&path)
        .output()
        .expect("node (make setup installs it)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

#[test]
fn generated_and_committed_manifests_validate_against_istio_schemas() {
    let dir = temp("schema");
    generate(&repo_root().join("istio/gateway.yaml"), &dir);
    let mut docs = documents(&dir.join("out"));
    let kinds: Vec<&str> = docs
        .iter()
        .map(|(_, d)| d["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "WasmPlugin",
        "TrafficExtension",
        "EnvoyFilter",
        "ServiceEntry",
        "DestinationRule",
        "Telemetry",
        "IstioOperator",
        "ConfigMap",
    ] {
        assert!(kinds.contains(&kind), "{kind} generated: {kinds:?}");
    }
    assert_eq!(kinds.iter().filter(|k| **k == "WasmPlugin").count(), 2);
    let committed = documents(&repo_root().join("istio/examples"));
    assert!(
        committed.len() >= docs.len(),
        "istio/examples holds every generated resource"
    );
    docs.extend(
        committed
            .into_iter()
            .map(|(f, d)| (format!("examples/{f}"), d)),
    );
    let (ok, report) = validate(&docs, &dir);
    assert!(ok, "every manifest is valid:\n{report}");
    assert!(
        report.contains(&format!("{} valid, 0 invalid", docs.len())),
        "{report}"
    );
}

/// The check can fail: plausible mistakes are refused, each naming the field.
#[test]
fn schema_check_refuses_broken_manifests() {
    let dir = temp("broken");
    generate(&repo_root().join("istio/gateway.yaml"), &dir);
    let docs = documents(&dir.join("out"));
    let wp = doc(&docs, "wasmplugin-gateway.yaml", "WasmPlugin").clone();
    let te = doc(&docs, "trafficextension-gateway.yaml", "TrafficExtension").clone();
    let ef = doc(&docs, "envoyfilter-file.yaml", "EnvoyFilter").clone();
    let set = |name: &str, v: &Value, pointer: &str, value: Value| {
        let mut v = v.clone();
        *v.pointer_mut(pointer).unwrap() = value;
        (name.to_string(), v)
    };
    let mut extra = te.clone();
    extra["spec"]["wasm"]["pluginConf"] = json!({});
    let broken = vec![
        // Envoy's spelling instead of Istio's.
        set(
            "failStrategy",
            &wp,
            "/spec/failStrategy",
            json!("FAIL_CLOSED"),
        ),
        set("phase", &wp, "/spec/phase", json!("AUTHENTICATION")),
        // A digest with its algorithm prefix (Istio wants bare hex).
        set("sha256", &wp, "/spec/sha256", json!("sha256:abc")),
        set("te-phase", &te, "/spec/phase", json!("authn")),
        ("te-unknown-field".to_string(), extra),
        set(
            "applyTo",
            &ef,
            "/spec/configPatches/0/applyTo",
            json!("HTTP_FILTERS"),
        ),
    ];
    let (ok, report) = validate(&broken, &dir);
    assert!(!ok, "broken manifests are refused:\n{report}");
    assert!(
        report.contains(&format!("0 valid, {} invalid", broken.len())),
        "each one is refused:\n{report}"
    );
    assert!(report.contains("failStrategy"), "{report}");
    assert!(report.contains("pluginConf"), "{report}");
}

#[test]
fn wasmplugin_pins_the_image_and_carries_the_filter_configuration() {
    let dir = temp("pin");
    let gateway = repo_root().join("istio/gateway.yaml");
    let digest = generate(&gateway, &dir);
    let docs = documents(&dir.join("out"));
    let mut expected: Value =
        serde_json::from_str(&meshgate::cli::compile_file(&gateway).unwrap()).unwrap();
    // Istio renders the plugin without `allow_on_headers_stop_iteration`: side calls.
    assert!(expected["transcoding"].get("upstream_calls").is_none());
    expected["transcoding"]["upstream_calls"] = json!("side_call");
    for (file, path) in [
        ("wasmplugin-gateway.yaml", "/spec"),
        ("wasmplugin-sidecar.yaml", "/spec"),
        ("trafficextension-gateway.yaml", "/spec/wasm"),
    ] {
        let d = docs.iter().find(|(f, _)| f == file).unwrap();
        let spec = d.1.pointer(path).unwrap();
        assert_eq!(
            format!("sha256:{}", spec["sha256"].as_str().unwrap()),
            digest,
            "{file} pins the image"
        );
        assert_eq!(spec["pluginConfig"], expected, "{file} carries the config");
        assert_eq!(spec["failStrategy"], "FAIL_RELOAD");
    }
    let gw = doc(&docs, "wasmplugin-gateway.yaml", "WasmPlugin");
    assert_eq!(gw["spec"]["phase"], "AUTHN");
    assert_eq!(
        gw["spec"]["selector"]["matchLabels"]["istio"],
        "ingressgateway"
    );
    let sidecar = doc(&docs, "wasmplugin-sidecar.yaml", "WasmPlugin");
    assert_eq!(sidecar["spec"]["match"][0]["mode"], "SERVER");
    // pluginConfig travels as a google.protobuf.Struct: numbers become doubles, so every
    // integer must be exact as a double.
    assert_every_number_is_exact_as_double(&expected);
    // The remote JWKS cluster exists in the mesh under the name the filter calls.
    let se = doc(&docs, "jwks-serviceentries.yaml", "ServiceEntry");
    assert_eq!(se["spec"]["hosts"][0], "idp.example.com");
    assert_eq!(se["spec"]["ports"][0]["number"], 443);
    let remote = &expected["auth"]["providers"][0]["jwks"]["remote"]["cluster"];
    assert_eq!(remote, "outbound|443||idp.example.com");
}

fn assert_every_number_is_exact_as_double(v: &Value) {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_u64() {
                assert!(i < (1 << 53), "{i} is not exact as a double");
            }
        }
        Value::Array(a) => a.iter().for_each(assert_every_number_is_exact_as_double),
        Value::Object(o) => o.values().for_each(assert_every_number_is_exact_as_double),
        _ => {}
    }
}

/// The committed examples are what the command makes from istio/gateway.yaml (regenerate
/// with `make istio`).
#[test]
fn committed_examples_match_the_gateway_file() {
    let dir = temp("examples");
    generate(&repo_root().join("istio/gateway.yaml"), &dir);
    let fresh = documents(&dir.join("out"));
    let committed = documents(&repo_root().join("istio/examples"));
    for (file, d) in &fresh {
        let c = committed
            .iter()
            .find(|(f, c)| f == file && c["kind"] == d["kind"] && c["metadata"] == d["metadata"])
            .unwrap_or_else(|| panic!("istio/examples/{file} is missing {}", d["kind"]));
        let mut a = d.clone();
        let mut b = c.1.clone();
        // The digests depend on the module build; everything else must be the same.
        for v in [&mut a, &mut b] {
            for p in ["/spec/sha256", "/spec/wasm/sha256"] {
                if let Some(x) = v.pointer_mut(p) {
                    *x = json!("");
                }
            }
            if let Some(patches) = v.pointer_mut("/spec/configPatches") {
                for patch in patches.as_array_mut().unwrap() {
                    let code = "/patch/value/typed_config/config/vm_config/code/remote/sha256";
                    if let Some(x) = patch.pointer_mut(code) {
                        *x = json!("");
                    }
                }
            }
        }
        assert_eq!(a, b, "istio/examples/{file} is stale: run `make istio`");
    }
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
    hcm["typed_config"]["http_filters"][0] = filter;
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

/// Envoy options for the demo gateway on free ports, its two backends as HTTP/2 clusters.
fn demo_envoy_options(filter_json: String, payments: &Backend, wallets: &Backend) -> EnvoyOptions {
    let mut o = EnvoyOptions::new(filter_json, "unused".into());
    o.listen_port = free_port().unwrap();
    o.admin_port = free_port().unwrap();
    o.clusters = [("payments", payments), ("wallets", wallets)]
        .iter()
        .map(|(n, b)| ClusterSpec {
            name: n.to_string(),
            address: "127.0.0.1".into(),
            port: b.addr.port(),
            http2: true,
        })
        .collect();
    o
}

/// The wasm filter as Istio's pilot renders a WasmPlugin (pilot/pkg/model/extensions.go:
/// name `<namespace>.<name>`, root_id = pluginName, configuration = the pluginConfig as JSON,
/// no `allow_on_headers_stop_iteration`).
fn istio_rendered_filter(wp: &Value, wasm: &Path) -> Value {
    let name = format!(
        "{}.{}",
        wp["metadata"]["namespace"].as_str().unwrap(),
        wp["metadata"]["name"].as_str().unwrap()
    );
    json!({
        "name": name,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": wp["spec"]["pluginName"],
                "vm_config": {
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm.display().to_string()}},
                    "environment_variables": {"key_values": {
                        "ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION": "1"}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": serde_json::to_string(&wp["spec"]["pluginConfig"]).unwrap(),
                },
                "failure_policy": "FAIL_RELOAD",
            },
        },
    })
}

/// One request of [`mesh_requests`]: method, path, headers, body.
type Call = (&'static str, String, Vec<(&'static str, String)>, Vec<u8>);

/// Requests of every kind the gateway transcodes (body-less, JSON, HTTP+Protobuf, HttpBody,
/// custom verb, server stream), good and bad, and backend errors with details.
fn mesh_requests() -> Vec<Call> {
    use prost::Message;
    let json = || vec![("content-type", "application/json".to_string())];
    use meshgate_kit::proto::meshgate::demo::v1::{Money, Payment};
    let payment = Payment {
        merchant: "m_pb".into(),
        amount: Some(Money {
            currency_code: "EUR".into(),
            amount_minor: 250,
        }),
        ..Default::default()
    };
    vec![
        ("GET", "/v1/payments/pay_001".into(), vec![], vec![]),
        ("GET", "/v1/payments/nope".into(), vec![], vec![]),
        ("GET", "/no/such/path".into(), vec![], vec![]),
        (
            "POST",
            "/v1/payments".into(),
            json(),
            br#"{"merchant":"m_1","amount":{"currency_code":"EUR","amount_minor":"500"}}"#.to_vec(),
        ),
        (
            "POST",
            "/v1/payments".into(),
            json(),
            br#"{"merchant":"#.to_vec(),
        ),
        (
            "POST",
            "/v1/payments".into(),
            json(),
            br#"{"merchant":"m_1","amount":{"amount_minor":"x"}}"#.to_vec(),
        ),
        (
            "PATCH",
            "/v1/payments/pay_001".into(),
            json(),
            br#"{"merchant":"m_9","note":"patched"}"#.to_vec(),
        ),
        (
            "POST",
            "/v1/payments/pay_002:cancel".into(),
            json(),
            br#"{"reason":"duplicate"}"#.to_vec(),
        ),
        (
            "POST",
            "/v1/payments/pay_002:cancel".into(),
            json(),
            br#"{"reason":"again"}"#.to_vec(),
        ),
        (
            "POST",
            "/v1/payments".into(),
            vec![("content-type", "application/x-protobuf".to_string())],
            payment.encode_to_vec(),
        ),
        (
            "POST",
            "/v1/payments/pay_001/attachments".into(),
            vec![("content-type", "text/plain".to_string())],
            b"receipt scan".to_vec(),
        ),
        (
            "POST",
            "/v1/payments".into(),
            vec![
                ("content-type", "application/json".to_string()),
                ("x-demo-fail", "FAILED_PRECONDITION".to_string()),
                ("x-demo-fail-message", "merchant is closed".to_string()),
                ("x-demo-fail-details", "badrequest".to_string()),
            ],
            br#"{"merchant":"m_1"}"#.to_vec(),
        ),
        (
            "GET",
            "/v1/merchants/acme/payments:watch?maxEvents=2".into(),
            vec![],
            vec![],
        ),
        // Bodies in many chunks: 300 KB accepted, 5 MB over the 4 MiB limit.
        (
            "POST",
            "/v1/payments".into(),
            json(),
            big_payment(300 << 10),
        ),
        ("POST", "/v1/payments".into(), json(), big_payment(5 << 20)),
    ]
}

/// A valid CreatePayment body of about `size` bytes (a long note).
fn big_payment(size: usize) -> Vec<u8> {
    let note = "n".repeat(size);
    format!(
        r#"{{"merchant":"m_big","amount":{{"currency_code":"EUR","amount_minor":"1"}},"note":"{note}"}}"#
    )
    .into_bytes()
}

/// Each request of [`mesh_requests`] over HTTP/1.1 and HTTP/2: "status content-type body",
/// or "timeout" when no answer came within 5 s (a stall must fail the comparison, not hang).
async fn mesh_answers(base: &str) -> Vec<String> {
    let mut out = Vec::new();
    for client in [http1_client(), http2_client()] {
        for (method, path, headers, body) in mesh_requests() {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let method = http::Method::from_bytes(method.as_bytes()).unwrap();
            let url = format!("{base}{path}");
            let call = client.request(method.clone(), &url, &h, body);
            let answer = match tokio::time::timeout(std::time::Duration::from_secs(5), call).await {
                Ok(Ok(r)) => {
                    // JSON with its keys sorted: protobuf maps have no order.
                    let body = match serde_json::from_slice::<Value>(&r.body) {
                        Ok(v) => v.to_string(),
                        Err(_) => String::from_utf8_lossy(&r.body).into_owned(),
                    };
                    let ct = r.header("content-type").unwrap_or("");
                    format!("{} {ct} {body}", r.status.as_u16())
                }
                Ok(Err(e)) => format!("error {e}"),
                Err(_) => "timeout".to_string(),
            };
            out.push(format!("{method} {path} -> {answer}"));
        }
    }
    out
}

/// What a WasmPlugin (or TrafficExtension) gives meshgate: the filter as Istio's pilot renders
/// it, in a real Envoy, without `allow_on_headers_stop_iteration` (Istio does not set it: a
/// filter that pauses headers then sees no body, ENVOY_NOTES). The generated pluginConfig sets
/// `transcoding.upstream_calls: side_call`, so every transcoded call is answered: each request
/// of every kind, over HTTP/1.1 and HTTP/2, gets exactly the answer that the local
/// configuration (flag set, calls through the router) gives, from backends in the same state.
#[tokio::test(flavor = "multi_thread")]
async fn wasmplugin_as_istio_renders_it_answers_like_the_local_configuration() {
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
    hcm["typed_config"]["http_filters"][0] = istio_rendered_filter(wp, &wasm_path().unwrap());
    let rendered_filter = &hcm["typed_config"]["http_filters"][0]["typed_config"]["config"];
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
    // and none is the bypassed request's. Envoy writes lines in order: the last record being
    // there means the first request's line would be too.
    let out = envoy.stdout();
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 5, "{out}");
    for line in &lines {
        let rec: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let url = rec["httpRequest"]["requestUrl"]
            .as_str()
            .unwrap_or_default();
        assert!(!url.contains("/direct/"), "{line}");
    }
}
