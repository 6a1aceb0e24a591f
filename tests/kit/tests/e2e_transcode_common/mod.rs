//! Shared helpers of the transcoding end-to-end tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use meshgate_kit::harness::{http1_client, http2_client, repo_root, Gateway, GatewayBuilder, HttpClient, RawResponse};

pub const PB: &str = "application/x-protobuf";

/// An HTTP/1.1 and an HTTP/2 client: every test runs with both.
pub fn both() -> Vec<HttpClient> {
    vec![http1_client(), http2_client()]
}

/// The demo gateway with `extra` YAML (top-level sections) merged over `envoy/gateway.yaml`:
/// written to a temporary directory, so a test can set options without a file in the repo.
pub fn gateway_with(extra: &str) -> Gateway {
    builder_with(extra).start().unwrap()
}

pub fn builder_with(extra: &str) -> GatewayBuilder {
    let base = std::fs::read_to_string(repo_root().join("envoy/gateway.yaml")).unwrap();
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&base).unwrap();
    let extra: serde_yaml_ng::Value = serde_yaml_ng::from_str(extra).unwrap();
    merge(&mut doc, extra);
    let include = repo_root().join("proto").display().to_string();
    doc["descriptors"]["include"] = serde_yaml_ng::Value::Sequence(vec![include.into()]);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("meshgate-e2e-transcode-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
    GatewayBuilder::new(path)
        .grpc_upstream("payments", "payments")
        .grpc_upstream("wallets", "wallets")
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn merge(base: &mut serde_yaml_ng::Value, extra: serde_yaml_ng::Value) {
    match (base, extra) {
        (serde_yaml_ng::Value::Mapping(b), serde_yaml_ng::Value::Mapping(e)) => {
            for (k, v) in e {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// No `grpc-*` header or trailer reaches an HTTP client.
pub fn assert_no_grpc_leak(r: &RawResponse) {
    for (name, _) in r.headers.iter() {
        assert!(!name.as_str().starts_with("grpc-"), "header {name} leaked: {:?}", r.headers);
    }
    if let Some(t) = &r.trailers {
        for (name, _) in t.iter() {
            assert!(!name.as_str().starts_with("grpc-"), "trailer {name} leaked: {t:?}");
        }
    }
}

pub fn json_of(r: &RawResponse) -> serde_json::Value {
    r.json().unwrap()
}
