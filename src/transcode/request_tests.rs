//! Behaviour of `build_request` against every binding of the demo API.

use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use serde_json::{json, Value as Json};

use super::descriptors::testing::{demo_method, demo_pool};
use super::descriptors::{http_rules, HttpBinding};
use super::plan::RequestPlan;
use super::request::{build_request, BodyKind, RequestOptions};
use crate::status::{Code, GatewayError};

/// The plan of the demo binding `Service.Method`, `index` into its bindings.
fn plan(name: &str, index: usize) -> RequestPlan {
    let pool = demo_pool();
    let full = format!("meshgate.demo.v1.{name}");
    let rules = http_rules(&pool)
        .into_iter()
        .find(|r| r.full_name == full)
        .unwrap();
    RequestPlan::compile(&demo_method(&pool, name), &rules.bindings[index]).unwrap()
}

/// A plan for a binding that is not in the protos (to reach fields the demo rules bind).
fn custom_plan(name: &str, template: &str, body: Option<&str>) -> RequestPlan {
    let binding = HttpBinding {
        method: "GET".into(),
        template: template.into(),
        body: body.map(str::to_string),
        response_body: None,
    };
    RequestPlan::compile(&demo_method(&demo_pool(), name), &binding).unwrap()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn build(
    plan: &RequestPlan,
    path: &[(&str, &str)],
    query: &[(&str, &str)],
    body: &[u8],
    kind: BodyKind<'_>,
) -> Result<Json, GatewayError> {
    let bytes = build_request(
        plan,
        &pairs(path),
        &pairs(query),
        body,
        kind,
        &RequestOptions::default(),
    )?;
    let message = DynamicMessage::decode(plan.input().clone(), bytes.as_slice()).unwrap();
    Ok(serde_json::to_value(&message).unwrap())
}

fn json_request(
    plan: &RequestPlan,
    path: &[(&str, &str)],
    query: &[(&str, &str)],
    body: &str,
) -> Result<Json, GatewayError> {
    build(plan, path, query, body.as_bytes(), BodyKind::Json)
}

fn violation_field(err: &GatewayError) -> String {
    err.details[0]["fieldViolations"][0]["field"]
        .as_str()
        .unwrap()
        .to_string()
}

fn encode(desc: MessageDescriptor, value: Json) -> Vec<u8> {
    DynamicMessage::deserialize(desc, value)
        .unwrap()
        .encode_to_vec()
}

fn message(name: &str) -> MessageDescriptor {
    demo_pool()
        .get_message_by_name(&format!("meshgate.demo.v1.{name}"))
        .unwrap()
}

#[test]
fn get_payment_takes_id_from_path_and_nested_query() {
    let got = json_request(
        &plan("Payments.GetPayment", 0),
        &[("id", "p1")],
        &[("view.version", "3"), ("view.includeItems", "true")],
        "",
    )
    .unwrap();
    assert_eq!(
        got,
        json!({"id": "p1", "view": {"version": "3", "includeItems": true}})
    );
}

#[test]
fn list_payments_query_covers_repeated_enums_timestamps_and_wrappers() {
    let query = [
        ("page_size", "10"),
        ("pageToken", "t"),
        ("states", "PENDING"),
        ("states", "2"),
        ("created_after", "2026-01-02T03:04:05Z"),
        ("min_amount_minor", "5"),
        ("tags", "a"),
        ("tags", "b"),
    ];
    let got = json_request(&plan("Payments.ListPayments", 0), &[], &query, "").unwrap();
    assert_eq!(
        got,
        json!({"pageSize": 10, "pageToken": "t", "states": ["PENDING", "CAPTURED"],
               "createdAfter": "2026-01-02T03:04:05Z", "minAmountMinor": "5", "tags": ["a", "b"]})
    );
}

#[test]
fn additional_binding_takes_resource_name_from_path() {
    let got = json_request(
        &plan("Payments.ListPayments", 1),
        &[("parent", "merchants/m1")],
        &[],
        "",
    )
    .unwrap();
    assert_eq!(got, json!({"parent": "merchants/m1"}));
}

#[test]
fn create_payment_body_is_the_payment_field_and_query_fills_the_rest() {
    let body = r#"{"merchant":"m1","amount":{"currencyCode":"EUR","amountMinor":"1250"},"items":[{"sku":"s","quantity":2}]}"#;
    let got = json_request(
        &plan("Payments.CreatePayment", 0),
        &[],
        &[("request_id", "r1")],
        body,
    )
    .unwrap();
    assert_eq!(
        got,
        json!({"payment": {"merchant": "m1", "amount": {"currencyCode": "EUR", "amountMinor": "1250"},
                            "items": [{"sku": "s", "quantity": 2}]}, "requestId": "r1"})
    );
}

#[test]
fn query_for_a_field_inside_the_body_is_ignored() {
    let got = json_request(
        &plan("Payments.CreatePayment", 0),
        &[],
        &[("payment.merchant", "other")],
        r#"{"merchant":"m1"}"#,
    )
    .unwrap();
    assert_eq!(got, json!({"payment": {"merchant": "m1"}}));
}

#[test]
fn nested_path_variable_overwrites_the_body_and_mask_comes_from_query() {
    let got = json_request(
        &plan("Payments.UpdatePayment", 0),
        &[("payment.id", "p9")],
        &[("update_mask", "merchant,fxRate")],
        r#"{"id":"spoofed","merchant":"m2"}"#,
    )
    .unwrap();
    assert_eq!(
        got,
        json!({"payment": {"id": "p9", "merchant": "m2"}, "updateMask": "merchant,fxRate"})
    );
}

#[test]
fn star_body_is_the_whole_request_and_path_wins() {
    let got = json_request(
        &plan("Payments.CancelPayment", 0),
        &[("id", "p1")],
        &[("reason", "ignored")],
        r#"{"id":"x","reason":"duplicate"}"#,
    )
    .unwrap();
    assert_eq!(got, json!({"id": "p1", "reason": "duplicate"}));
    let top_up = json_request(
        &plan("Wallets.TopUp", 0),
        &[("wallet_id", "w1")],
        &[],
        r#"{"amount":{"amountMinor":"5"}}"#,
    )
    .unwrap();
    assert_eq!(
        top_up,
        json!({"walletId": "w1", "amount": {"amountMinor": "5"}})
    );
}

#[test]
fn body_on_a_binding_without_body_is_ignored() {
    let got = json_request(
        &plan("Payments.DeletePayment", 0),
        &[("id", "p1")],
        &[],
        r#"{"id":"x"} not even json"#,
    )
    .unwrap();
    assert_eq!(got, json!({"id": "p1"}));
}

#[test]
fn multi_segment_variables_keep_their_slashes() {
    let doc = json_request(
        &plan("Payments.GetDocument", 0),
        &[("path", "a/b/c.txt")],
        &[],
        "",
    )
    .unwrap();
    assert_eq!(doc, json!({"path": "a/b/c.txt"}));
    let entry = json_request(
        &plan("Wallets.GetEntry", 0),
        &[("name", "wallets/w/entries/e")],
        &[],
        "",
    )
    .unwrap();
    assert_eq!(entry, json!({"name": "wallets/w/entries/e"}));
    let watch = json_request(
        &plan("Payments.WatchPayments", 0),
        &[("parent", "merchants/m")],
        &[("max_events", "3")],
        "",
    )
    .unwrap();
    assert_eq!(watch, json!({"parent": "merchants/m", "maxEvents": 3}));
    for name in [
        "Payments.GetPaymentStatus",
        "Payments.GetReceipt",
        "Wallets.GetWallet",
    ] {
        let p = plan(name, 0);
        let var = p.path_variables()[0].name.clone();
        let got = json_request(&p, &[(var.as_str(), "x1")], &[], "").unwrap();
        assert_eq!(got.as_object().unwrap().len(), 1, "{name}: {got}");
    }
}

#[test]
fn http_body_upload_carries_content_type_and_raw_bytes() {
    let raw = [0x89u8, b'P', b'N', b'G', 0xff, 0x00];
    let got = build(
        &plan("Payments.UploadAttachment", 0),
        &[("payment_id", "p1")],
        &[],
        &raw,
        BodyKind::Raw {
            content_type: "image/png",
        },
    )
    .unwrap();
    assert_eq!(
        got,
        json!({"paymentId": "p1", "file": {"contentType": "image/png", "data": "iVBOR/8A"}})
    );
    // A JSON upload is still raw bytes for an HttpBody target.
    let got = build(
        &plan("Payments.UploadAttachment", 0),
        &[("payment_id", "p1")],
        &[],
        b"{}",
        BodyKind::Json,
    )
    .unwrap();
    assert_eq!(got["file"]["contentType"], "application/json");
}

#[test]
fn raw_body_for_a_message_binding_is_unsupported_media_type() {
    let err = build(
        &plan("Payments.CreatePayment", 0),
        &[],
        &[],
        b"x",
        BodyKind::Raw {
            content_type: "text/plain",
        },
    )
    .unwrap_err();
    assert_eq!(err.status(), 415);
    assert!(err.message.contains("text/plain"), "{}", err.message);
}

#[test]
fn query_values_of_every_scalar_and_wkt_type_convert() {
    let p = custom_plan("Payments.UpdatePayment", "/x/{payment.id}", None);
    let query = [
        ("payment.fx_rate", "1.5"),
        ("payment.test_mode", "true"),
        ("payment.idempotency_key", "-_8"),
        ("payment.capture_delay", "1.5s"),
        ("payment.create_time", "2026-01-02T03:04:05.5Z"),
        ("payment.note", "hello"),
        ("payment.amount.amount_minor", "-9223372036854775808"),
        ("payment.state", "CANCELLED"),
    ];
    let got = json_request(&p, &[("payment.id", "p1")], &query, "").unwrap();
    assert_eq!(
        got,
        json!({"payment": {"id": "p1", "fxRate": 1.5, "testMode": true, "idempotencyKey": "+/8=",
                            "captureDelay": "1.500s", "createTime": "2026-01-02T03:04:05.500Z",
                            "note": "hello", "amount": {"amountMinor": "-9223372036854775808"},
                            "state": "CANCELLED"}})
    );
}

#[test]
fn bad_query_values_name_the_parameter() {
    let p = custom_plan("Payments.UpdatePayment", "/x/{payment.id}", None);
    for (name, value, needle) in [
        ("payment.test_mode", "yes", "bool"),
        (
            "payment.amount.amount_minor",
            "9223372036854775808",
            "out of range",
        ),
        ("payment.state", "DONE", "PaymentState"),
        ("payment.idempotency_key", "*", "base64"),
        ("payment.create_time", "today", "Timestamp"),
        ("payment.capture_delay", "5m", "Duration"),
        ("payment.fx_rate", "x", "number"),
        ("payment.labels", "a", "is a map"),
        ("payment.amount", "5", "is a message"),
    ] {
        let err = json_request(&p, &[], &[(name, value)], "").unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument, "{name}");
        assert_eq!(violation_field(&err), name);
        assert!(err.message.contains(needle), "{name}: {}", err.message);
    }
}

#[test]
fn unknown_query_parameters_are_refused_unless_ignored() {
    let p = plan("Payments.GetPayment", 0);
    let err = json_request(&p, &[("id", "p1")], &[("colour", "red")], "").unwrap_err();
    assert_eq!(err.status(), 400);
    assert_eq!(violation_field(&err), "colour");
    let opts = RequestOptions {
        ignore_unknown_query_parameters: true,
        ..RequestOptions::default()
    };
    let bytes = build_request(
        &p,
        &pairs(&[("id", "p1")]),
        &pairs(&[("colour", "red")]),
        b"",
        BodyKind::Json,
        &opts,
    )
    .unwrap();
    assert!(!bytes.is_empty());
}

#[test]
fn non_repeated_parameter_given_twice_is_refused() {
    let p = plan("Payments.ListPayments", 0);
    let err = json_request(&p, &[], &[("page_size", "1"), ("pageSize", "2")], "").unwrap_err();
    assert!(err.message.contains("more than once"), "{}", err.message);
}

#[test]
fn path_values_convert_like_query_values() {
    let p = custom_plan("Payments.ListPayments", "/x/{page_size}", None);
    assert_eq!(
        json_request(&p, &[("page_size", "7")], &[], "").unwrap(),
        json!({"pageSize": 7})
    );
    let err = json_request(&p, &[("page_size", "seven")], &[], "").unwrap_err();
    assert_eq!(violation_field(&err), "page_size");
}

#[test]
fn malformed_json_is_a_400_with_position() {
    let err = json_request(
        &plan("Wallets.TopUp", 0),
        &[],
        &[],
        "{\"amount\": {\"amountMinor\": 1.5}}",
    )
    .unwrap_err();
    assert_eq!(err.code, Code::InvalidArgument);
    assert_eq!(violation_field(&err), "amount.amountMinor");
    assert!(err.message.contains("column"), "{}", err.message);
    let err = json_request(&plan("Wallets.TopUp", 0), &[], &[], "{\"walletId\": ").unwrap_err();
    assert_eq!(err.status(), 400);
}

#[test]
fn deep_json_is_refused_without_overflowing_the_stack() {
    let deep = "[".repeat(100_000);
    let err = json_request(&plan("Payments.CancelPayment", 0), &[], &[], &deep).unwrap_err();
    assert!(
        err.message.contains("nesting deeper than 64"),
        "{}",
        err.message
    );
    let opts = RequestOptions {
        max_depth: 1,
        ..RequestOptions::default()
    };
    let body = br#"{"amount":{"currencyCode":"EUR"}}"#;
    let err = build_request(
        &plan("Wallets.TopUp", 0),
        &[],
        &[],
        body,
        BodyKind::Json,
        &opts,
    )
    .unwrap_err();
    assert!(err.message.contains("deeper than 1"), "{}", err.message);
}

#[test]
fn protobuf_bodies_decode_into_the_body_target() {
    let payment = encode(message("Payment"), json!({"merchant": "m1", "tags": ["x"]}));
    let got = build(
        &plan("Payments.CreatePayment", 0),
        &[],
        &[("request_id", "r")],
        &payment,
        BodyKind::Protobuf,
    )
    .unwrap();
    assert_eq!(
        got,
        json!({"payment": {"merchant": "m1", "tags": ["x"]}, "requestId": "r"})
    );
    let top_up = encode(
        message("TopUpRequest"),
        json!({"walletId": "spoof", "amount": {"amountMinor": "3"}}),
    );
    let got = build(
        &plan("Wallets.TopUp", 0),
        &[("wallet_id", "w1")],
        &[],
        &top_up,
        BodyKind::Protobuf,
    )
    .unwrap();
    assert_eq!(
        got,
        json!({"walletId": "w1", "amount": {"amountMinor": "3"}})
    );
}

#[test]
fn broken_protobuf_and_invalid_utf8_are_400() {
    let err = build(
        &plan("Wallets.TopUp", 0),
        &[],
        &[],
        &[0x0a, 0x05, b'a'],
        BodyKind::Protobuf,
    )
    .unwrap_err();
    assert_eq!(err.status(), 400);
    assert!(
        err.message.contains("invalid protobuf body"),
        "{}",
        err.message
    );
    // field 1 (wallet_id, string) = 0xff 0xfe
    let err = build(
        &plan("Wallets.TopUp", 0),
        &[],
        &[],
        &[0x0a, 0x02, 0xff, 0xfe],
        BodyKind::Protobuf,
    )
    .unwrap_err();
    assert_eq!(err.code, Code::InvalidArgument);
}

#[test]
fn empty_body_makes_an_empty_body_field() {
    let got = json_request(
        &plan("Payments.CreatePayment", 0),
        &[],
        &[("request_id", "r")],
        "  \n",
    )
    .unwrap();
    assert_eq!(got, json!({"requestId": "r"}));
}

#[test]
fn invalid_utf8_in_a_json_string_is_400() {
    let body = b"{\"walletId\":\"\xff\xfe\"}";
    let err = build(&plan("Wallets.TopUp", 0), &[], &[], body, BodyKind::Json).unwrap_err();
    assert_eq!(err.code, Code::InvalidArgument);
    assert!(err.message.contains("invalid JSON body"), "{}", err.message);
}

#[test]
fn null_body_field_leaves_the_field_unset() {
    let got = json_request(&plan("Payments.CreatePayment", 0), &[], &[], "null").unwrap();
    assert_eq!(got, json!({}));
}
