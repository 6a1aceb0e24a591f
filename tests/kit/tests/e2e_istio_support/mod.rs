//! Shared helpers of the Istio end-to-end suites (`e2e_istio_*.rs`): temporary directories,
//! `meshgate oci` + `meshgate istio` runs, the generated documents, the schema validator, and
//! the Envoy options and filter that istiod would render, and the requests sent both to the
//! local gateway and to the mesh.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use meshgate::cli::envoy::{ClusterSpec, EnvoyOptions};
use meshgate_kit::harness::{free_port, http1_client, http2_client, repo_root, wasm_path, Backend};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshgate-istio-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `meshgate oci` + `meshgate istio` for a gateway file, into `dir/oci` and `dir/out`; returns
/// the image's manifest digest.
pub fn generate(gateway: &Path, dir: &Path) -> String {
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
pub fn documents(dir: &Path) -> Vec<(String, Value)> {
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

pub fn doc<'a>(docs: &'a [(String, Value)], file: &str, kind: &str) -> &'a Value {
    docs.iter()
        .find(|(f, d)| f == file && d["kind"] == kind)
        .map(|(_, d)| d)
        .unwrap_or_else(|| panic!("{file} has no {kind}"))
}

/// Run Istio's schemas (istio/schema/validate.mjs) over the documents: (success, report).
pub fn validate(docs: &[(String, Value)], dir: &Path) -> (bool, String) {
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

/// Envoy options for the demo gateway on free ports, its two backends as HTTP/2 clusters.
pub fn demo_envoy_options(
    filter_json: String,
    payments: &Backend,
    wallets: &Backend,
) -> EnvoyOptions {
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
pub fn istio_rendered_filter(wp: &Value, wasm: &Path) -> Value {
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
pub type Call = (&'static str, String, Vec<(&'static str, String)>, Vec<u8>);

/// Requests of every kind the gateway transcodes (body-less, JSON, HTTP+Protobuf, HttpBody,
/// custom verb, server stream), good and bad, and backend errors with details.
pub fn mesh_requests() -> Vec<Call> {
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
pub fn big_payment(size: usize) -> Vec<u8> {
    let note = "n".repeat(size);
    format!(
        r#"{{"merchant":"m_big","amount":{{"currency_code":"EUR","amount_minor":"1"}},"note":"{note}"}}"#
    )
    .into_bytes()
}

/// Each request of [`mesh_requests`] over HTTP/1.1 and HTTP/2: "status content-type body",
/// or "timeout" when no answer came within 5 s (a stall must fail the comparison, not hang).
pub async fn mesh_answers(base: &str) -> Vec<String> {
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
