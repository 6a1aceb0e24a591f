//! Issue 2 end to end: the built module in a real Envoy in front of the demo gRPC backends.
//! Native gRPC passes through to the right upstream, an unknown path gets a JSON 404 in the
//! `google.rpc.Status` shape, every request leaves one access record, and a bad configuration
//! is refused by Envoy instead of running half-configured.
//!
//! Needs `build/meshgate.wasm` (`make wasm`) and Envoy (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use meshgate::cli::envoy::bootstrap;
use meshgate_kit::harness::{
    free_port, http1_client, http2_client, payments_client, start_envoy, wallets_client, Flavour,
    GatewayBuilder,
};
use meshgate_kit::proto::meshgate::demo::v1::{GetPaymentRequest, GetWalletRequest};
use tonic::Code;

#[tokio::test(flavor = "multi_thread")]
async fn native_grpc_passes_through_to_each_service() {
    let gw = GatewayBuilder::demo().start().unwrap();
    let mut payments = payments_client(gw.addr()).await.unwrap();
    let reply = payments
        .get_payment(GetPaymentRequest {
            id: "pay_001".into(),
            view: None,
        })
        .await
        .unwrap();
    assert_eq!(
        reply.metadata().get("x-demo-backend").unwrap(),
        "payments",
        "GetPayment must reach the payments backend"
    );
    let p = reply.into_inner();
    assert_eq!(p.id, "pay_001");
    assert_eq!(p.amount.unwrap().amount_minor, 1250);

    let mut wallets = wallets_client(gw.addr()).await.unwrap();
    let reply = wallets
        .get_wallet(GetWalletRequest {
            wallet_id: "w_001".into(),
        })
        .await
        .unwrap();
    assert_eq!(reply.metadata().get("x-demo-backend").unwrap(), "wallets");

    // A gRPC error from the backend reaches the gRPC client unchanged.
    let err = payments
        .get_payment(GetPaymentRequest {
            id: "nope".into(),
            view: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_grpc_method_is_unimplemented() {
    let gw = GatewayBuilder::demo().start().unwrap();
    let resp = http2_client()
        .post(
            &gw.url("/meshgate.demo.v1.Payments/NoSuchMethod"),
            &[("content-type", "application/grpc"), ("te", "trailers")],
            meshgate_kit::harness::grpc_frame(&[]),
        )
        .await
        .unwrap();
    assert_eq!(resp.status.as_u16(), 200);
    assert_eq!(resp.header("grpc-status"), Some("12"));
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_path_gets_json_404_status_over_http1_and_http2() {
    let gw = GatewayBuilder::demo().start().unwrap();
    for client in [http1_client(), http2_client()] {
        let resp = client.get(&gw.url("/no/such/path"), &[]).await.unwrap();
        assert_eq!(resp.status.as_u16(), 404);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        let body = resp.json().unwrap();
        assert_eq!(body["code"], 5, "NOT_FOUND: {body}");
        assert!(body["message"].as_str().unwrap().contains("/no/such/path"));
        // proto3 JSON omits an empty `details` (unless the print options ask for defaults).
        assert!(body.get("details").is_none(), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_request_leaves_one_access_record() {
    let gw = GatewayBuilder::demo().start().unwrap();
    let client = http1_client();
    client
        .get(&gw.url("/v1/payments/pay_001"), &[])
        .await
        .unwrap();
    client.get(&gw.url("/nowhere"), &[]).await.unwrap();
    let mut payments = payments_client(gw.addr()).await.unwrap();
    payments
        .get_payment(GetPaymentRequest {
            id: "pay_002".into(),
            view: None,
        })
        .await
        .unwrap();
    // Envoy flushes its access log file periodically.
    let mut records = Vec::new();
    for _ in 0..50 {
        records = gw.access_records();
        if records.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(records.len(), 3, "one record per request: {records:?}");
    let get = &records[0];
    assert_eq!(get["operation"], "meshgate.demo.v1.Payments.GetPayment");
    assert_eq!(get["httpRequest"]["status"], 200);
    assert!(get["httpRequest"]["latency"]
        .as_str()
        .unwrap()
        .ends_with('s'));
    let miss = &records[1];
    assert_eq!(miss["httpRequest"]["status"], 404);
    assert!(miss.get("operation").is_none());
    let grpc = &records[2];
    assert_eq!(grpc["operation"], "meshgate.demo.v1.Payments.GetPayment");
    assert_eq!(grpc["grpcStatus"], "OK");
}

/// A configuration that names a method the protos lack: the command refuses it with the field
/// named, and Envoy, given it anyway, refuses the filter rather than serve without it.
#[test]
fn bad_configuration_is_refused_by_the_command_and_by_envoy() {
    let dir = std::env::temp_dir().join(format!("meshgate-badcfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let proto = meshgate_kit::harness::repo_root().join("proto");
    let yaml = dir.join("gateway.yaml");
    std::fs::write(
        &yaml,
        format!(
            "descriptors:\n  files: [meshgate/demo/v1/payments.proto]\n  include: [{}]\n\
             operations:\n  meshgate.demo.v1.Payments.NoSuchMethod:\n    auth: none\n",
            proto.display()
        ),
    )
    .unwrap();
    let err = meshgate::cli::compile_file(&yaml).unwrap_err().to_string();
    assert!(
        err.contains("operations.meshgate.demo.v1.Payments.NoSuchMethod"),
        "error names the field: {err}"
    );

    // The filter's own check: a JSON configuration with the same mistake, straight to Envoy.
    let good = meshgate_kit::harness::filter_config(
        &meshgate_kit::harness::repo_root().join("envoy/gateway.yaml"),
    )
    .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["operations"]["meshgate.demo.v1.Payments.NoSuchMethod"] = serde_json::json!({"auth": "none"});
    let mut o = Flavour::from_env()
        .unwrap()
        .envoy_options(v.to_string())
        .unwrap();
    o.listen_port = free_port().unwrap();
    o.admin_port = free_port().unwrap();
    let yaml = serde_yaml_ng::to_string(&bootstrap(&o)).unwrap();
    let err = match start_envoy(&yaml) {
        Ok(_) => panic!("Envoy started with a configuration meshgate refuses"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("operations.meshgate.demo.v1.Payments.NoSuchMethod"),
        "Envoy's log names the field: {err}"
    );
}
