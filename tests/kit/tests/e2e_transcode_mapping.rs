//! Issue 3 end to end, unary (mapping): HTTP+JSON and HTTP+Protobuf clients (HTTP/1.1 and
//! HTTP/2) through the built module in a real Envoy to the demo gRPC backends. Matching forms,
//! request mapping, percent-decoding and query parameters, the JSON mapping and its print
//! options, `response_body`, HttpBody in and out, binary replies for protobuf clients, the
//! original path and method, and header forwarding.
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
use e2e_transcode_common::{assert_no_grpc_leak, both, PB};
use http::Method;
use meshgate_kit::harness::GatewayBuilder;
use meshgate_kit::proto::meshgate::demo::v1::{Payment, Wallet};
use prost::Message;

#[tokio::test(flavor = "multi_thread")]
async fn get_maps_the_reply_with_the_proto3_json_mapping() {
    let gw = GatewayBuilder::demo().start().unwrap();
    for client in both() {
        let resp = client
            .get(&gw.url("/v1/payments/pay_001"), &[])
            .await
            .unwrap();
        assert_eq!(resp.status.as_u16(), 200, "{}", resp.text());
        assert_eq!(resp.header("content-type"), Some("application/json"));
        assert_no_grpc_leak(&resp);
        let p = resp.json().unwrap();
        assert_eq!(p["id"], "pay_001");
        assert_eq!(p["amount"]["amountMinor"], "1250", "int64 as string: {p}");
        assert_eq!(p["amount"]["currencyCode"], "USD");
        assert_eq!(p["state"], "CAPTURED", "enum by name: {p}");
        assert_eq!(p["idempotencyKey"], "cGF5XzAwMQ==", "bytes as base64: {p}");
        assert_eq!(p["captureDelay"], "1.500s", "Duration: {p}");
        assert!(p["createTime"].as_str().unwrap().ends_with('Z'), "{p}");
        assert_eq!(p["metadata"]["channel"], "web", "Struct: {p}");
        assert_eq!(p["metadata"]["attempt"], 1.0);
        assert_eq!(p["note"], "seeded pay_001", "wrapper: {p}");
        assert_eq!(p["labels"]["region"], "eu", "map: {p}");
        assert_eq!(p["items"][0]["quantity"], 2);
        assert!(p.get("amount_minor").is_none());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn matching_forms_multi_segment_double_star_additional_binding_custom_verb_nested() {
    let gw = GatewayBuilder::demo().start().unwrap();
    for (i, client) in both().into_iter().enumerate() {
        // {name=wallets/*/entries/*}
        let r = client
            .get(&gw.url("/v1/wallets/w_001/entries/e_002"), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        let e = r.json().unwrap();
        assert_eq!(e["name"], "wallets/w_001/entries/e_002");
        assert_eq!(e["amount"]["amountMinor"], "-250");
        // {path=**}
        let r = client
            .get(&gw.url("/v1/documents/a/b/c.txt"), &[])
            .await
            .unwrap();
        assert_eq!(r.json().unwrap()["path"], "a/b/c.txt", "{}", r.text());
        // additional_bindings {get: "/v1/{parent=merchants/*}/payments"}
        let r = client
            .get(&gw.url("/v1/merchants/globex/payments"), &[])
            .await
            .unwrap();
        let list = r.json().unwrap();
        let ids: Vec<&str> = list["payments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["pay_004"], "{list}");
        // custom verb /v1/payments/{id}:cancel, body "*"
        let id = ["pay_002", "pay_001"][i];
        let r = client
            .post(
                &gw.url(&format!("/v1/payments/{id}:cancel")),
                &[("content-type", "application/json")],
                r#"{"reason":"duplicate"}"#,
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        assert_no_grpc_leak(&r);
        let p = r.json().unwrap();
        assert_eq!(p["id"], id);
        assert_eq!(p["state"], "CANCELLED");
        assert_eq!(p["labels"]["cancel_reason"], "duplicate");
        // nested path variable {payment.id}, body "payment", FieldMask from the query
        let r = client
            .request(
                Method::PATCH,
                &gw.url("/v1/payments/pay_001?updateMask=note"),
                &[("content-type", "application/json")],
                r#"{"note":"patched","merchant":"merchants/ignored"}"#,
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        let p = r.json().unwrap();
        assert_eq!(p["note"], "patched");
        assert_eq!(p["merchant"], "merchants/acme", "mask honoured: {p}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn request_mapping_body_star_body_field_and_query_parameters_of_every_kind() {
    let gw = GatewayBuilder::demo().start().unwrap();
    for client in both() {
        // body "*" (path variable + body)
        let r = client
            .post(
                &gw.url("/v1/wallets/w_002:topUp"),
                &[("content-type", "application/json")],
                r#"{"amount":{"currencyCode":"USD","amountMinor":"500"}}"#,
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        assert_eq!(r.json().unwrap()["walletId"], "w_002");
        // body "payment" + query parameter into a top-level field
        let r = client
            .post(
                &gw.url("/v1/payments?request_id=req-7"),
                &[("content-type", "application/json")],
                r#"{"amount":{"currencyCode":"EUR","amountMinor":42},"tags":["a","b"]}"#,
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        let p = r.json().unwrap();
        assert_eq!(p["state"], "PENDING");
        assert_eq!(p["labels"]["request_id"], "req-7");
        assert_eq!(p["amount"]["amountMinor"], "42");
        // repeated enums by name and by number, int, wrapper, Timestamp, repeated string
        let r = client
            .get(
                &gw.url(
                    "/v1/merchants/acme/payments?states=PENDING&states=2&page_size=10\
                     &min_amount_minor=1000&created_after=1970-01-01T00:00:00Z&tags=seed",
                ),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        let list = r.json().unwrap();
        for p in list["payments"].as_array().unwrap() {
            assert!(["PENDING", "CAPTURED"].contains(&p["state"].as_str().unwrap()));
            assert!(
                p["amount"]["amountMinor"]
                    .as_str()
                    .unwrap()
                    .parse::<i64>()
                    .unwrap()
                    >= 1000
            );
        }
        assert!(!list["payments"].as_array().unwrap().is_empty(), "{list}");
        // nested query fields and bools
        let r = client
            .get(
                &gw.url("/v1/payments/pay_001?view.version=3&view.include_items=true"),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        // a bad enum name names the parameter
        let r = client
            .get(&gw.url("/v1/payments?states=NOPE"), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 400, "{}", r.text());
        assert!(r.text().contains("states"), "{}", r.text());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn percent_decoding_and_unknown_query_parameters() {
    let gw = GatewayBuilder::demo().start().unwrap();
    for client in both() {
        let r = client
            .get(&gw.url("/v1/payments/pay%5F001"), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        assert_eq!(r.json().unwrap()["id"], "pay_001");
        let r = client
            .get(&gw.url("/v1/documents/a%20b/c"), &[])
            .await
            .unwrap();
        assert_eq!(r.json().unwrap()["path"], "a b/c", "{}", r.text());
        // Reserved characters stay escaped by default (ALL_CHARACTERS_EXCEPT_RESERVED).
        let r = client
            .get(&gw.url("/v1/documents/x%2Fy"), &[])
            .await
            .unwrap();
        assert_eq!(r.json().unwrap()["path"], "x%2Fy", "{}", r.text());
        let r = client
            .get(&gw.url("/v1/payments/pay_001?nosuch=1"), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 400, "{}", r.text());
        let s = r.json().unwrap();
        assert_eq!(s["code"], 3);
        assert!(s["message"].as_str().unwrap().contains("nosuch"), "{s}");
    }
    let gw = GatewayBuilder::demo_with(
        "transcoding:\n  ignore_unknown_query_parameters: true\n  \
         url_unescape_spec: ALL_CHARACTERS\n",
    )
    .start()
    .unwrap();
    for client in both() {
        let r = client
            .get(&gw.url("/v1/payments/pay_001?nosuch=1"), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        // ALL_CHARACTERS: reserved characters are decoded too.
        let r = client
            .get(&gw.url("/v1/documents/x%2Fy"), &[])
            .await
            .unwrap();
        assert_eq!(r.json().unwrap()["path"], "x/y", "{}", r.text());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn print_options_from_a_second_gateway_yaml() {
    let gw = GatewayBuilder::demo_with(
        "transcoding:\n  print_options:\n    preserve_proto_field_names: true\n    \
         always_print_primitive_fields: true\n    always_print_enums_as_ints: true\n",
    )
    .start()
    .unwrap();
    for client in both() {
        let r = client
            .get(&gw.url("/v1/payments/pay_001"), &[])
            .await
            .unwrap();
        let p = r.json().unwrap();
        assert_eq!(p["amount"]["amount_minor"], "1250", "{p}");
        assert_eq!(p["state"], 2, "enum as int: {p}");
        assert_eq!(p["test_mode"], true);
        let r = client.get(&gw.url("/v1/wallets/w_002"), &[]).await.unwrap();
        let w = r.json().unwrap();
        assert_eq!(w["wallet_id"], "w_002");
        assert_eq!(w["balance"]["amount_minor"], "0", "primitive printed: {w}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn response_body_and_http_body_in_and_out() {
    let gw = GatewayBuilder::demo().start().unwrap();
    for client in both() {
        let r = client
            // The demo's partner-facing operation: the demo partner's (public) key.
            .get(
                &gw.url("/v1/payments/pay_001/status"),
                &[("x-api-key", "mgk_demo_partner")],
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        let s = r.json().unwrap();
        assert_eq!(s["state"], "CAPTURED", "response_body: status only: {s}");
        assert!(s.get("id").is_none());
        let r = client
            .get(&gw.url("/v1/payments/pay_001/receipt"), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert!(
            r.text().starts_with("RECEIPT\npayment: pay_001"),
            "{}",
            r.text()
        );
        let r = client
            .get(&gw.url("/v1/payments/pay_001/receipt?format=pdf"), &[])
            .await
            .unwrap();
        assert_eq!(r.header("content-type"), Some("application/pdf"));
        assert!(r.body.starts_with(b"%PDF"));
        assert_no_grpc_leak(&r);
        let file = vec![0x89u8, b'P', b'N', b'G', 0, 1, 2, 3, 255];
        let r = client
            .post(
                &gw.url("/v1/payments/pay_001/attachments"),
                // The demo's partner-facing upload: the demo partner's (public) key.
                &[
                    ("content-type", "image/png"),
                    ("x-api-key", "mgk_demo_partner"),
                ],
                file.clone(),
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        let a = r.json().unwrap();
        assert_eq!(a["contentType"], "image/png");
        assert_eq!(a["sizeBytes"], "9");
        assert_eq!(a["paymentId"], "pay_001");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn protobuf_clients_get_binary_replies_and_binary_status() {
    let gw = GatewayBuilder::demo().start().unwrap();
    for client in both() {
        let r = client
            .get(&gw.url("/v1/payments/pay_001"), &[("accept", PB)])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200);
        assert_eq!(r.header("content-type"), Some(PB));
        let p = Payment::decode(r.body.clone()).unwrap();
        assert_eq!(p.id, "pay_001");
        assert_eq!(p.amount.unwrap().amount_minor, 1250);
        // body "payment": the body is the Payment message in binary
        let body = Payment {
            amount: Some(meshgate_kit::proto::meshgate::demo::v1::Money {
                currency_code: "JPY".into(),
                amount_minor: 700,
            }),
            ..Default::default()
        }
        .encode_to_vec();
        let r = client
            .post(
                &gw.url("/v1/payments?request_id=pb"),
                &[("content-type", "application/x-protobuf"), ("accept", PB)],
                body,
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
        let p = Payment::decode(r.body.clone()).unwrap();
        assert_eq!(p.labels.get("request_id").map(String::as_str), Some("pb"));
        assert_eq!(p.amount.unwrap().currency_code, "JPY");
        // body "*" with application/protobuf
        let body = meshgate_kit::proto::meshgate::demo::v1::TopUpRequest {
            wallet_id: String::new(),
            amount: Some(meshgate_kit::proto::meshgate::demo::v1::Money {
                currency_code: "EUR".into(),
                amount_minor: 1,
            }),
        }
        .encode_to_vec();
        let r = client
            .post(
                &gw.url("/v1/wallets/w_001:topUp"),
                &[("content-type", "application/protobuf")],
                body,
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
        let w = Wallet::decode(r.body.clone()).unwrap();
        assert_eq!(w.wallet_id, "w_001");
        // errors are a binary google.rpc.Status
        let r = client
            .get(&gw.url("/v1/payments/nope"), &[("accept", PB)])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 404);
        assert_eq!(r.header("content-type"), Some(PB));
        let s = meshgate_kit::proto::google::rpc::Status::decode(r.body.clone()).unwrap();
        assert_eq!(s.code, 5);
        assert!(s.message.contains("nope"), "{}", s.message);
        // malformed protobuf -> 400 binary status
        let r = client
            .post(
                &gw.url("/v1/payments"),
                &[("content-type", "application/x-protobuf")],
                vec![0x0a, 0xff, 0xff, 0xff],
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 400);
        let s = meshgate_kit::proto::google::rpc::Status::decode(r.body.clone()).unwrap();
        assert_eq!(s.code, 3);
        assert_no_grpc_leak(&r);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn original_path_and_method_reach_the_upstream() {
    // A side call's reply is a local reply: the backend's report must be listed to come back.
    let gw = GatewayBuilder::demo_with(
        "transcoding:\n  response_metadata_to_headers: [x-demo-received-headers]\n",
    )
    .start()
    .unwrap();
    for (i, client) in both().into_iter().enumerate() {
        let id = ["pay_002", "pay_001"][i];
        for (k, r) in [
            client
                .get(&gw.url("/v1/payments/pay_001"), &[])
                .await
                .unwrap(),
            client
                .post(
                    &gw.url(&format!("/v1/payments/{id}:cancel")),
                    &[("content-type", "application/json")],
                    "{}",
                )
                .await
                .unwrap(),
        ]
        .into_iter()
        .enumerate()
        {
            let names = r.header("x-demo-received-headers").unwrap_or_default();
            assert!(names.contains("x-envoy-original-path"), "{names}");
            assert!(names.contains("x-envoy-original-method"), "{names}");
            if k == 1 {
                // Through the router: the JSON body's length must not describe the gRPC frame.
                assert!(!names.contains("content-length"), "{names}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn request_headers_as_metadata_and_response_metadata_as_headers() {
    let gw = GatewayBuilder::demo_with(
        "transcoding:\n  request_headers_to_metadata: [content-type, x-client-tag]\n  \
         response_metadata_to_headers: [x-demo-backend, x-demo-saw-http-content-type]\n",
    )
    .start()
    .unwrap();
    for (i, client) in both().into_iter().enumerate() {
        let id = ["pay_002", "pay_001"][i];
        let r = client
            .post(
                &gw.url(&format!("/v1/payments/{id}:cancel")),
                &[
                    ("content-type", "application/json"),
                    ("accept", "application/json"),
                    ("x-client-tag", "t1"),
                ],
                "{}",
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        assert_eq!(
            r.header("x-demo-saw-http-content-type"),
            Some("application/json"),
            "{:?}",
            r.headers
        );
        let names = r.header("x-demo-received-headers").unwrap_or_default();
        assert!(names.contains("x-client-tag"), "{names}");
        // The side call's answer is a local reply: listed metadata is copied onto it.
        let r = client
            .get(
                &gw.url("/v1/payments/pay_001"),
                &[("accept", "application/json")],
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        assert_eq!(
            r.header("x-demo-backend"),
            Some("payments"),
            "{:?}",
            r.headers
        );
        assert_no_grpc_leak(&r);
    }
    // Without the option, a side call's reply carries none of the backend's metadata; on the
    // native flavour the GET goes through the router, whose reply keeps the backend's headers
    // as every routed reply does (the POST's above, on both flavours).
    let gw = GatewayBuilder::demo().start().unwrap();
    let r = both()[0]
        .get(&gw.url("/v1/payments/pay_001"), &[])
        .await
        .unwrap();
    let routed = meshgate_kit::harness::Flavour::from_env()
        .unwrap()
        .is_native();
    let want = routed.then_some("payments");
    assert_eq!(r.header("x-demo-backend"), want, "{:?}", r.headers);
}
