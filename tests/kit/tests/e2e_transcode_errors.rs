//! Issue 3 end to end, unary (errors): gRPC errors become `google.rpc.Status` JSON with
//! details in every reply shape; Envoy's own router errors too; body limits, malformed JSON
//! and deep nesting are refused; broken backend replies become clean errors.
//!
//! Split from `e2e_transcode.rs` by behaviour: `e2e_transcode_mapping.rs` (what is mapped)
//! and `e2e_transcode_errors.rs` (what goes wrong); helpers in `e2e_transcode_common`.
//!
//! Needs `build/meshgate.wasm` (`make wasm`) and Envoy (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_transcode_common;
use e2e_transcode_common::{assert_no_grpc_leak, both, json_of};
use meshgate_kit::harness::GatewayBuilder;

#[tokio::test(flavor = "multi_thread")]
async fn grpc_errors_become_status_json_with_details_in_each_reply_shape() {
    let gw = GatewayBuilder::demo().start().unwrap();
    for client in both() {
        // Side call (GET), error with BadRequest details.
        let r = client
            .get(
                &gw.url("/v1/payments/pay_001"),
                &[
                    ("x-demo-fail", "FAILED_PRECONDITION"),
                    ("x-demo-fail-message", "not now"),
                    ("x-demo-fail-details", "badrequest"),
                ],
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 400, "{}", r.text());
        assert_no_grpc_leak(&r);
        let s = r.json().unwrap();
        assert_eq!(s["code"], 9);
        assert_eq!(s["message"], "not now");
        let d = &s["details"][0];
        assert_eq!(
            d["@type"], "type.googleapis.com/google.rpc.BadRequest",
            "{s}"
        );
        assert_eq!(d["fieldViolations"][0]["field"], "demo.field");
        // Through the router (POST): tonic's error is trailers-only.
        let r = client
            .post(
                &gw.url("/v1/wallets/w_001:topUp"),
                &[
                    ("content-type", "application/json"),
                    ("x-demo-fail", "unavailable"),
                    ("x-demo-fail-details", "errorinfo"),
                ],
                r#"{"amount":{"currencyCode":"EUR","amountMinor":"1"}}"#,
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 503, "{}", r.text());
        assert_no_grpc_leak(&r);
        let s = r.json().unwrap();
        assert_eq!(s["code"], 14);
        assert_eq!(s["details"][0]["reason"], "DEMO_FAILURE", "{s}");
        // The backend's own error, normal shape through the router.
        let r = client
            .post(
                &gw.url("/v1/wallets/w_001:topUp"),
                &[("content-type", "application/json")],
                r#"{"amount":{"currencyCode":"USD","amountMinor":"1"}}"#,
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 400, "precondition: {}", r.text());
        assert_eq!(r.json().unwrap()["code"], 9);
        let r = client.get(&gw.url("/v1/payments/nope"), &[]).await.unwrap();
        assert_eq!(r.status.as_u16(), 404);
        assert_eq!(json_of(&r)["code"], 5);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn envoy_router_errors_become_status_json() {
    let mut gw = GatewayBuilder::demo().start().unwrap();
    let payments = gw
        .backends
        .iter_mut()
        .find(|(n, _)| n == "payments")
        .unwrap();
    payments.1.guard.stop();
    for client in both() {
        // Through the router: Envoy's own 503 (connection refused).
        let r = client
            .post(
                &gw.url("/v1/payments"),
                &[("content-type", "application/json")],
                r#"{"amount":{"currencyCode":"EUR","amountMinor":"1"}}"#,
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 503, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        let s = r.json().unwrap();
        assert_eq!(s["code"], 14, "{s}");
        // Side call: the call fails as well.
        let r = client
            .get(&gw.url("/v1/payments/pay_001"), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 503, "{}", r.text());
        assert_eq!(r.json().unwrap()["code"], 14);
        // The other backend still answers.
        let r = client.get(&gw.url("/v1/wallets/w_001"), &[]).await.unwrap();
        assert_eq!(r.status.as_u16(), 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn body_limits_malformed_json_and_deep_nesting() {
    let gw = GatewayBuilder::demo_with(
        "limits:\n  max_request_bytes: 2048\n  max_response_bytes: 400\n",
    )
    .start()
    .unwrap();
    for client in both() {
        let big = format!(r#"{{"reason":"{}"}}"#, "x".repeat(5000));
        let r = client
            .post(
                &gw.url("/v1/payments/pay_001:cancel"),
                &[("content-type", "application/json")],
                big,
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 413, "{}", r.text());
        assert_eq!(r.json().unwrap()["code"], 8);
        // ListPayments of acme is larger than 400 bytes.
        let r = client
            .get(&gw.url("/v1/merchants/acme/payments"), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 500, "{}", r.text());
        assert!(r.json().unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("limit"));
        let r = client.get(&gw.url("/v1/wallets/w_001"), &[]).await.unwrap();
        assert_eq!(r.status.as_u16(), 200, "small replies pass: {}", r.text());
    }
    let gw = GatewayBuilder::demo().start().unwrap();
    for client in both() {
        let bad = [
            (r#"{"amount":{"amountMinor":"abc"}}"#, "amount"),
            (r#"{"amount":"#, ""),
            (r#"{"state":"NO_SUCH_STATE"}"#, "state"),
            (r#"{"nosuchfield":1}"#, "nosuchfield"),
        ];
        for (body, field) in bad {
            let r = client
                .post(
                    &gw.url("/v1/payments"),
                    &[("content-type", "application/json")],
                    body,
                )
                .await
                .unwrap();
            assert_eq!(r.status.as_u16(), 400, "{body}: {}", r.text());
            let s = r.json().unwrap();
            assert_eq!(s["code"], 3, "{s}");
            assert!(
                s["message"].as_str().unwrap().contains(field),
                "{body}: {s}"
            );
        }
        let deep = format!(
            r#"{{"metadata":{}1{}}}"#,
            r#"{"a":"#.repeat(5000),
            "}".repeat(5000)
        );
        let r = client
            .post(
                &gw.url("/v1/payments"),
                &[("content-type", "application/json")],
                deep,
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 400, "{}", r.text());
        assert!(
            r.text().contains("deep") || r.text().contains("nest"),
            "{}",
            r.text()
        );
        // The VM is alive afterwards.
        let r = client.get(&gw.url("/v1/wallets/w_001"), &[]).await.unwrap();
        assert_eq!(r.status.as_u16(), 200);
    }
}

/// Broken gRPC replies from the backend become clean errors (never a hang, a trapped VM or an
/// empty 200), through the router (POST) and through the side call (GET).
#[tokio::test(flavor = "multi_thread")]
async fn broken_backend_replies_become_clean_errors() {
    let gw = GatewayBuilder::demo().start().unwrap();
    let modes = [
        "bad-frame",
        "truncated",
        "reset",
        "compressed",
        "huge",
        "no-trailers",
    ];
    for client in both() {
        for mode in modes {
            for post in [true, false] {
                let headers = [
                    ("content-type", "application/json"),
                    ("x-demo-misbehave", mode),
                ];
                let r = if post {
                    client
                        .post(&gw.url("/v1/payments/pay_001:cancel"), &headers, "{}")
                        .await
                        .unwrap()
                } else {
                    client
                        .get(&gw.url("/v1/payments/pay_001"), &headers[1..])
                        .await
                        .unwrap()
                };
                let what = format!("{mode} post={post}: {} {}", r.status, r.text());
                assert!(r.status.as_u16() >= 500, "{what}");
                if mode == "reset" && post {
                    // The upstream reset the stream after its headers, which the filter holds:
                    // Envoy answers past the filter, and the rendered local_reply_config makes
                    // that reply a Status too (UNAVAILABLE).
                    assert_eq!(r.status.as_u16(), 503, "{what}");
                    assert_eq!(r.json().unwrap()["code"], 14, "{what}");
                }
                assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
                let s = r.json().unwrap();
                assert!(s["code"].as_i64().unwrap() > 0, "{what}");
                assert!(!s["message"].as_str().unwrap().is_empty(), "{what}");
                assert_no_grpc_leak(&r);
            }
        }
        let r = client.get(&gw.url("/v1/wallets/w_001"), &[]).await.unwrap();
        assert_eq!(r.status.as_u16(), 200, "the VM still serves");
    }
}
