//! Issue 4 end to end (upstreams): each operation reaches its service (transcoded and native
//! gRPC); spoofed routing headers and client copies of the original path and method are
//! stripped; REST backends get their rewritten paths.
//!
//! The gateway: [`e2e_route_support`] (one Envoy listener in front of two gRPC services,
//! payments and wallets, and two REST backends, configured from
//! `envoy/gateway-policies.yaml`). Split from `e2e_route.rs` by behaviour:
//! `e2e_route_upstreams.rs`, `e2e_route_tracing.rs`, `e2e_route_policies.rs`.
//!
//! Needs `build/meshgate.wasm` (`make wasm`) and Envoy (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_route_support;

use e2e_route_support::*;
use meshgate_kit::harness::{
    grpc_frame, http1_client, http2_client, payments_client, repo_root, wallets_client,
};
use meshgate_kit::proto::meshgate::demo::v1::{GetPaymentRequest, GetWalletRequest};

#[tokio::test(flavor = "multi_thread")]
async fn each_operation_reaches_its_service() {
    let gw = gateway();
    let auth = format!("Bearer {}", token("alice"));
    for client in [http1_client(), http2_client()] {
        // Transcoded, body-less (side call) to payments.
        let r = client
            .get(&gw.url("/v1/payments/pay_001"), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        assert_eq!(r.json().unwrap()["id"], "pay_001");
        // Transcoded with a body (through Envoy's router) to payments.
        let r = create_payment(&client, &gw, &[], "m_route").await;
        assert_eq!(r.json().unwrap()["merchant"], "m_route");
        // Transcoded to wallets (its route's policy wants a token).
        let r = client
            .get(&gw.url("/v1/wallets/w_001"), &[("authorization", &auth)])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        assert_eq!(r.json().unwrap()["walletId"], "w_001");
        // REST backends.
        for (path, backend) in [
            ("/legacy/docs/a", "legacy-append"),
            ("/legacy/receipts/r1", "legacy-const"),
        ] {
            let r = client.get(&gw.url(path), &[]).await.unwrap();
            assert_eq!(r.status.as_u16(), 200, "{path}: {}", r.text());
            assert_eq!(r.header("x-demo-backend"), Some(backend), "{path}");
        }
    }
    // Native gRPC to both services.
    let mut payments = payments_client(gw.addr()).await.unwrap();
    let reply = payments
        .get_payment(GetPaymentRequest {
            id: "pay_001".into(),
            view: None,
        })
        .await
        .unwrap();
    assert_eq!(reply.metadata().get("x-demo-backend").unwrap(), "payments");
    assert_eq!(
        reply.metadata().get("x-demo-saw-upstream").unwrap(),
        "payments"
    );
    let mut wallets = wallets_client(gw.addr()).await.unwrap();
    let reply = wallets
        .get_wallet(GetWalletRequest {
            wallet_id: "w_001".into(),
        })
        .await
        .unwrap();
    assert_eq!(reply.metadata().get("x-demo-backend").unwrap(), "wallets");
    assert_eq!(
        reply.metadata().get("x-demo-saw-operation").unwrap(),
        "meshgate.demo.v1.Wallets.GetWallet"
    );

    let recs = records(&gw, 12).await;
    let upstreams: Vec<&str> = recs.iter().filter_map(|r| r["upstream"].as_str()).collect();
    for u in ["payments", "wallets", "legacy-append", "legacy-const"] {
        assert!(upstreams.contains(&u), "{u} in access records: {recs:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn spoofed_routing_headers_are_stripped() {
    let gw = gateway();
    let spoof = [
        ("x-meshgate-upstream", "wallets"),
        ("x-meshgate-operation", "evil.Op"),
        ("x-meshgate-subject", "root"),
    ];
    let client = http1_client();
    // REST: the echo shows what arrived.
    let r = client.get(&gw.url("/legacy/docs/a"), &spoof).await.unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let seen = r.json().unwrap();
    assert_eq!(seen["backend"], "legacy-append");
    assert_eq!(seen["headers"]["x-meshgate-upstream"], "legacy-append");
    assert_eq!(seen["headers"]["x-meshgate-operation"], "legacy.Documents");
    assert!(
        seen["headers"].get("x-meshgate-subject").is_none(),
        "{seen}"
    );
    // Transcoded: still reaches payments (wallets' backend does not serve Payments).
    let r = client
        .get(&gw.url("/v1/payments/pay_001"), &spoof)
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    assert_eq!(r.json().unwrap()["id"], "pay_001");
    // Transcoded through Envoy's router: the backend reports what it saw.
    let r = create_payment(&client, &gw, &spoof, "m_spoof").await;
    assert_eq!(r.header("x-demo-backend"), Some("payments"));
    assert_eq!(r.header("x-demo-saw-upstream"), Some("payments"));
    assert_eq!(
        r.header("x-demo-saw-operation"),
        Some("meshgate.demo.v1.Payments.CreatePayment")
    );
    assert_eq!(r.header("x-demo-saw-subject"), None);
    // Native gRPC.
    let mut payments = payments_client(gw.addr()).await.unwrap();
    let mut req = tonic::Request::new(GetPaymentRequest {
        id: "pay_001".into(),
        view: None,
    });
    for (k, v) in spoof {
        req.metadata_mut().insert(k, v.parse().unwrap());
    }
    let reply = payments.get_payment(req).await.unwrap();
    let meta = reply.metadata();
    assert_eq!(meta.get("x-demo-backend").unwrap(), "payments");
    assert_eq!(meta.get("x-demo-saw-upstream").unwrap(), "payments");
    assert_eq!(
        meta.get("x-demo-saw-operation").unwrap(),
        "meshgate.demo.v1.Payments.GetPayment"
    );
    assert!(meta.get("x-demo-saw-subject").is_none());
}

/// `x-envoy-original-method` is meshgate's: the rendered `local_reply_config` reads it to tell
/// a transcoded request (whose Envoy errors become a JSON Status) from a native gRPC one
/// (Envoy answers those trailers-only with `grpc-status`). A native gRPC client sending its
/// own copy, whose backend times out, still gets the gRPC answer; no backend sees the copies.
#[tokio::test(flavor = "multi_thread")]
async fn client_copies_of_the_original_path_and_method_are_stripped() {
    let gw = builder(repo_root().join("envoy/gateway-policies.yaml"))
        .route_timeout_s(1)
        .start()
        .unwrap();
    let client = http2_client();
    let url = gw.url("/meshgate.demo.v1.Payments/GetPayment");
    for spoof in [
        None,
        Some(("x-envoy-original-method", "GET")),
        Some(("x-envoy-original-path", "/v1/payments/pay_001")),
    ] {
        let mut headers = vec![
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("x-demo-delay-ms", "3000"),
        ];
        headers.extend(spoof);
        let r = client
            .post(&url, &headers, grpc_frame(b"\x0a\x07pay_001").to_vec())
            .await
            .unwrap();
        assert_eq!(
            r.header("content-type"),
            Some("application/grpc"),
            "{spoof:?}: {} {}",
            r.status,
            r.text()
        );
        // Envoy's own gRPC answer to its route timeout (UNAVAILABLE).
        assert_eq!(r.header("grpc-status"), Some("14"), "{spoof:?}");
        assert_eq!(
            r.header("grpc-message"),
            Some("upstream request timeout"),
            "{spoof:?}"
        );
    }
    // The backends never see a client's copy: native gRPC...
    let r = client
        .post(
            &url,
            &[
                ("content-type", "application/grpc"),
                ("te", "trailers"),
                ("x-envoy-original-method", "GET"),
                ("x-envoy-original-path", "/v1/payments/pay_001"),
            ],
            grpc_frame(b"\x0a\x07pay_001").to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(r.trailer("grpc-status"), Some("0"), "{:?}", r.trailers);
    let received = r.header("x-demo-received-headers").unwrap_or_default();
    assert!(!received.is_empty(), "{:?}", r.headers);
    for h in ["x-envoy-original-method", "x-envoy-original-path"] {
        assert!(!names(received).contains(&h), "{h} in {received}");
    }
    // ...and REST, where meshgate sets the original path itself (and no method).
    let r = http1_client()
        .get(
            &gw.url("/legacy/docs/a"),
            &[
                ("x-envoy-original-method", "DELETE"),
                ("x-envoy-original-path", "/admin"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let seen = r.json().unwrap();
    assert_eq!(seen["headers"]["x-envoy-original-path"], "/legacy/docs/a");
    assert!(
        seen["headers"].get("x-envoy-original-method").is_none(),
        "{seen}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_backends_get_their_rewritten_paths() {
    let gw = gateway();
    for client in [http1_client(), http2_client()] {
        // APPEND_PATH_TO_ADDRESS: prefix + path, query kept, any method, body untouched.
        let r = client
            .post(
                &gw.url("/legacy/docs/a/b?x=1&y=two"),
                &[("content-type", "text/plain")],
                "hello",
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        let seen = r.json().unwrap();
        assert_eq!(seen["backend"], "legacy-append");
        assert_eq!(seen["method"], "POST");
        assert_eq!(seen["path"], "/rest/legacy/docs/a/b");
        assert_eq!(seen["query"], "x=1&y=two");
        assert_eq!(seen["body"], "hello");
        assert_eq!(
            seen["headers"]["x-envoy-original-path"],
            "/legacy/docs/a/b?x=1&y=two"
        );
        // CONSTANT_ADDRESS: the prefix only, path variables as query parameters.
        let r = client
            .get(&gw.url("/legacy/receipts/r%201?fmt=pdf"), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        let seen = r.json().unwrap();
        assert_eq!(seen["backend"], "legacy-const");
        assert_eq!(seen["path"], "/api/receipt");
        assert_eq!(seen["headers"]["x-meshgate-upstream"], "receipts");
        assert_eq!(seen["query"], "id=r%201&fmt=pdf");
        // The operation's method is enforced: POST is not GetReceipt.
        let r = client
            .post(&gw.url("/legacy/receipts/r1"), &[], "x")
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 404, "{}", r.text());
    }
}
