//! `meshgate envoy` renders the clusters of remote JWKS: a bootstrap rendered by the command
//! from a gateway YAML alone (no hand-written cluster) runs in a real Envoy, fetches the keys
//! from a real JWKS server on 127.0.0.1 over the rendered cluster, and verifies tokens; the
//! TLS cluster of an `https://` issuer is accepted by Envoy as rendered.
//!
//! Needs `build/meshgate.wasm` (`make wasm`) and Envoy (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_auth_support;

use e2e_auth_support::*;
use meshgate_kit::harness::{
    config_file, free_port, http1_client, start_backend, start_envoy, wasm_path,
};
use meshgate_kit::jwks::JwksServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn the_rendered_bootstrap_reaches_the_jwks_server_through_its_own_cluster() {
    let jwks = JwksServer::start(&main_jwks()).unwrap();
    let backend = start_backend("payments", "payments").unwrap();
    let gateway = config_file::demo_doc(
        "rendered-cluster",
        json!({
            "operations": {
                "meshgate.demo.v1.Payments.GetPayment": {"auth": {"provider": "main"}},
            },
            "auth": {"providers": [
                {
                    "name": "main", "issuer": ISSUER, "audiences": ["api"],
                    "jwks": {"remote": {"uri": jwks.jwks_url(), "cluster": "main-idp"}},
                },
                {
                    // Never reached in this test: its TLS cluster must still be valid Envoy.
                    "name": "corp", "issuer": "https://idp.example.com/",
                    "jwks": {"remote": {
                        "uri": "https://idp.example.com/.well-known/jwks.json",
                        "cluster": "corp-idp",
                    }},
                },
            ]},
        }),
    )
    .unwrap();
    let out = gateway.with_file_name("envoy.yaml");
    let (listen, admin) = (free_port().unwrap(), free_port().unwrap());
    let argv: Vec<String> = [
        "meshgate",
        "envoy",
        &gateway.display().to_string(),
        "--wasm",
        &wasm_path().unwrap().display().to_string(),
        "--listen",
        &format!("127.0.0.1:{listen}"),
        "--admin",
        &format!("127.0.0.1:{admin}"),
        "--cluster",
        &format!("payments={}", backend.addr),
        "--cluster",
        &format!("wallets={}", backend.addr),
        "-o",
        &out.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(meshgate::cli::main(argv.clone()), 0, "{argv:?}");
    let rendered = std::fs::read_to_string(&out).unwrap();
    assert!(rendered.contains("main-idp") && rendered.contains("corp-idp"));
    assert!(rendered.contains("sni: idp.example.com"), "{rendered}");

    let envoy = start_envoy(&rendered).unwrap();
    let (status, clusters) = envoy.admin_get("/clusters").unwrap();
    assert_eq!(status, 200);
    assert!(clusters.contains("main-idp::") && clusters.contains("corp-idp::"));

    let client = http1_client();
    let url = envoy.url("/v1/payments/pay_001");
    // The first request waits for the first fetch, through the rendered cluster.
    let resp = client
        .get(
            &url,
            &[("authorization", &bearer(&token("RS256", &claims())))],
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(jwks.jwks_requests() >= 1, "the keys came from the server");
    let resp = client.get(&url, &[]).await.unwrap();
    assert_eq!(resp.status, 401, "{}", resp.text());
    let _ = std::fs::remove_dir_all(gateway.parent().unwrap());
}
