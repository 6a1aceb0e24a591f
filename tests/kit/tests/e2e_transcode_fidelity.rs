//! Issue 21 end to end: transcoding fidelity through the built module in a real Envoy, to the
//! demo gRPC backends, with HTTP/1.1 and HTTP/2 clients. Each option and behaviour of the
//! issue is proven here with the option off and on (or the old and the new shape).
//!
//! Needs `build/meshgate.wasm` (`make wasm`) and Envoy (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_transcode_common;
use e2e_transcode_common::{assert_no_grpc_leak, both};
use meshgate_kit::harness::GatewayBuilder;

const NEW_PAYMENT: &str = r#"{"amount":{"currencyCode":"EUR","amountMinor":42}}"#;

/// `+` in a query value: a literal `+` by default (as Envoy's transcoder), a space with
/// `transcoding.query_param_unescape_plus: true`; `%20` is a space and `%2B` a `+` either way.
#[tokio::test(flavor = "multi_thread")]
async fn plus_in_a_query_is_a_space_only_with_query_param_unescape_plus() {
    for (plus, expected) in [(false, "a+b c+d"), (true, "a b c+d")] {
        let extra = format!("transcoding:\n  query_param_unescape_plus: {plus}\n");
        let gw = GatewayBuilder::demo_with(&extra).start().unwrap();
        for client in both() {
            let r = client
                .post(
                    &gw.url("/v1/payments?request_id=a+b%20c%2Bd"),
                    &[("content-type", "application/json")],
                    NEW_PAYMENT,
                )
                .await
                .unwrap();
            assert_eq!(r.status.as_u16(), 200, "{}", r.text());
            assert_no_grpc_leak(&r);
            let p = r.json().unwrap();
            assert_eq!(p["labels"]["request_id"], expected, "plus={plus}: {p}");
        }
    }
}

/// An error with no details prints no `details` (proto3 JSON omits empty repeated fields);
/// `always_print_primitive_fields` prints `"details": []`, `add_whitespace` indents; details a
/// backend sent are printed either way.
#[tokio::test(flavor = "multi_thread")]
async fn error_bodies_follow_the_print_options() {
    for always in [false, true] {
        let extra = format!(
            "transcoding:\n  print_options:\n    always_print_primitive_fields: {always}\n    add_whitespace: {always}\n"
        );
        let gw = GatewayBuilder::demo_with(&extra).start().unwrap();
        for client in both() {
            // The gateway's own error.
            let r = client.get(&gw.url("/no/such/path"), &[]).await.unwrap();
            assert_eq!(r.status.as_u16(), 404, "{}", r.text());
            let text = r.text();
            let s: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(s["code"], 5, "{s}");
            assert_eq!(s.get("details").is_some(), always, "{text}");
            assert_eq!(text.contains('\n'), always, "{text}");
            if always {
                assert_eq!(s["details"], serde_json::json!([]), "{s}");
            }
            // A backend's error without details, through the router.
            let r = client
                .post(
                    &gw.url("/v1/payments"),
                    &[
                        ("content-type", "application/json"),
                        ("x-demo-fail", "ABORTED"),
                    ],
                    NEW_PAYMENT,
                )
                .await
                .unwrap();
            assert_eq!(r.status.as_u16(), 409, "{}", r.text());
            assert_no_grpc_leak(&r);
            let s = r.json().unwrap();
            assert_eq!(s["code"], 10, "{s}");
            assert_eq!(s.get("details").is_some(), always, "{s}");
            // A backend's error with details keeps them.
            let r = client
                .get(
                    &gw.url("/v1/payments/pay_001"),
                    &[("x-demo-fail", "14"), ("x-demo-fail-details", "badrequest")],
                )
                .await
                .unwrap();
            let s = r.json().unwrap();
            assert_eq!(s["code"], 14, "{s}");
            assert_eq!(s["details"].as_array().map(Vec::len), Some(1), "{s}");
        }
    }
}
