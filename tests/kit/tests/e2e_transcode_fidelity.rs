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

/// `transcoding.ignored_query_parameters`: the named parameters are dropped (an API key in
/// `key`, say), others still refused as unknown; without the option `key` is a 400.
#[tokio::test(flavor = "multi_thread")]
async fn ignored_query_parameters_are_not_message_fields() {
    let extra = "transcoding:\n  ignored_query_parameters: [key]\n";
    let with = GatewayBuilder::demo_with(extra).start().unwrap();
    let without = GatewayBuilder::demo().start().unwrap();
    for client in both() {
        let r = client
            .get(&without.url("/v1/payments/pay_001?key=abc"), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 400, "{}", r.text());
        assert!(r.text().contains("unknown query parameter"), "{}", r.text());
        let r = client
            .get(&with.url("/v1/payments/pay_001?key=abc"), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        assert_eq!(r.json().unwrap()["id"], "pay_001");
        // Through the router too (a body), with a parameter that does fill a field.
        let r = client
            .post(
                &with.url("/v1/payments?key=abc&request_id=r-9"),
                &[("content-type", "application/json")],
                NEW_PAYMENT,
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        assert_eq!(r.json().unwrap()["labels"]["request_id"], "r-9");
        let r = client
            .get(&with.url("/v1/payments/pay_001?other=1"), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 400, "{}", r.text());
    }
}

/// The demo gateway with a `POST` binding for the watch stream (messages as they arrive).
const WATCH_POST: &str = "operations:\n  meshgate.demo.v1.Payments.WatchPayments:\n    http:\n      - post: \"/v1/{parent=merchants/*}/payments:watch\"\n        body: \"*\"\n";

/// `grpc-status-details-bin` is the answer when its code is `grpc-status`'s: its message and
/// details, in a unary reply (side call and router, trailers-only) and at a stream's end
/// (trailers after messages). A details Status with another code, or bytes that are no Status,
/// are ignored (the code and `grpc-message` stand) and logged.
#[tokio::test(flavor = "multi_thread")]
async fn grpc_status_details_bin_is_the_answer_when_consistent() {
    let gw = GatewayBuilder::demo_with(WATCH_POST).start().unwrap();
    let fail = |details: &'static str, code: &'static str| {
        vec![
            ("x-demo-fail", "9"),
            ("x-demo-fail-message", "from header"),
            ("x-demo-fail-details", details),
            ("x-demo-fail-details-code", code),
            ("x-demo-fail-details-message", "from details"),
            ("content-type", "application/json"),
        ]
    };
    for client in both() {
        for (details, code, message, with_details) in [
            ("status", "9", "from details", true),
            ("status", "5", "from header", false),
            ("garbage", "9", "from header", false),
        ] {
            let headers = fail(details, code);
            let get = client
                .get(&gw.url("/v1/payments/pay_001"), &headers)
                .await
                .unwrap();
            let post = client
                .post(&gw.url("/v1/payments"), &headers, NEW_PAYMENT)
                .await
                .unwrap();
            for r in [get, post] {
                assert_eq!(r.status.as_u16(), 400, "{}", r.text());
                assert_no_grpc_leak(&r);
                let s = r.json().unwrap();
                assert_eq!(s["code"], 9, "{details}/{code}: {s}");
                assert_eq!(s["message"], message, "{details}/{code}: {s}");
                if with_details {
                    assert_eq!(s["details"][0]["reason"], "DEMO_DETAILS", "{s}");
                } else {
                    assert!(s.get("details").is_none(), "ignored whole: {s}");
                }
            }
        }
        // A stream's end: trailers after two messages.
        let r = client
            .post(
                &gw.url("/v1/merchants/acme/payments:watch"),
                &[
                    ("content-type", "application/json"),
                    ("x-demo-fail-details-message", "from details"),
                ],
                r#"{"maxEvents":2,"failWithCode":14}"#,
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        assert_no_grpc_leak(&r);
        let items = r.json().unwrap();
        let error = &items[2]["error"];
        assert_eq!(error["code"], 14, "{items}");
        assert_eq!(error["message"], "from details", "{items}");
        assert_eq!(error["details"][0]["reason"], "WATCH_FAILED", "{items}");
    }
    gw.envoy
        .wait_for_log(
            "grpc-status-details-bin ignored: its code 5 is not grpc-status",
            std::time::Duration::from_secs(5),
        )
        .unwrap();
    gw.envoy
        .wait_for_log(
            "grpc-status-details-bin ignored: not a base64 google.rpc.Status",
            std::time::Duration::from_secs(5),
        )
        .unwrap();
}

/// A proto rule with a binding meshgate cannot serve (`legacy.proto`'s ESP-style
/// `{$api_version}`): the configuration is not refused; that binding is skipped with a warning
/// naming it, and the rule's other binding is served (the demo backend answers UNIMPLEMENTED
/// for this service, which proves the request reached it).
#[tokio::test(flavor = "multi_thread")]
async fn bindings_meshgate_cannot_serve_are_skipped_and_the_rest_served() {
    let extra = "descriptors:\n  files: [meshgate/demo/v1/payments.proto, meshgate/demo/v1/legacy.proto, google/rpc/error_details.proto]\nservices:\n  meshgate.demo.v1.LegacyPayments: {upstream: payments, auth: none}\n";
    let gw = GatewayBuilder::demo_with(extra).start().unwrap();
    for client in both() {
        let r = client
            .get(&gw.url("/v1/legacy/payments/pay_001"), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 501, "{}", r.text());
        assert_eq!(r.json().unwrap()["code"], 12, "{}", r.text());
        let r = client
            .get(&gw.url("/v1/old/payments/pay_001"), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 404, "{}", r.text());
        // The demo API is served as ever.
        let r = client
            .get(&gw.url("/v1/payments/pay_001"), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    }
    gw.envoy
        .wait_for_log(
            "binding skipped (cannot be served): meshgate.demo.v1.LegacyPayments.GetLegacyPayment binding GET /{$api_version}/old/payments/{id}",
            std::time::Duration::from_secs(5),
        )
        .unwrap();
}

/// A server-streamed `google.api.HttpBody` (the demo's CSV export): the chunks' bytes joined
/// in order under the first message's content type (`text/csv`; later chunks say
/// `text/plain`), not a JSON array. Through the router (POST binding) the chunks arrive as
/// the backend sends them (one per 50 ms); as a side call (GET binding) the same bytes at the
/// end. A failure after the first chunk cuts the body (no JSON can go into it) and is logged.
#[tokio::test(flavor = "multi_thread")]
async fn http_body_streams_are_raw_bytes_under_the_first_content_type() {
    use e2e_transcode_common::timed_request;
    let gw = GatewayBuilder::demo().start().unwrap();
    let url = gw.url("/v1/merchants/acme/payments:export");
    for http2 in [false, true] {
        let json = [("content-type", "application/json")];
        let r = timed_request(http2, "POST", &url, &json, r#"{"chunks":6}"#).await;
        assert_eq!(r.status, 200, "{}", r.body());
        assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
        let body = r.body();
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines.len(), 7, "{body}");
        assert_eq!(lines[0], "id,merchant,amount_minor", "{body}");
        assert!(
            lines[1..].iter().all(|l| l.contains(",merchants/acme,")),
            "{body}"
        );
        // Chunks as they arrive: the header line well before the end (6 x 50 ms later).
        let first = r.time_of("amount_minor").unwrap();
        assert!(r.chunks.len() >= 3, "{} chunks", r.chunks.len());
        assert!(
            r.total - first >= std::time::Duration::from_millis(200),
            "{first:?} {:?}",
            r.total
        );
        assert!(r.trailers.is_none() || r.trailers.as_ref().unwrap().is_empty());
        // The side call (GET): the same bytes, whole.
        let get = timed_request(http2, "GET", &format!("{url}?chunks=6"), &[], "").await;
        assert_eq!(get.status, 200, "{}", get.body());
        assert_eq!(get.header("content-type"), Some("text/csv; charset=utf-8"));
        assert_eq!(get.body(), body);
        // A failure after two chunks: the body ends there.
        let r = timed_request(
            http2,
            "POST",
            &url,
            &json,
            r#"{"chunks":2,"failWithCode":14}"#,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body());
        assert_eq!(r.body().lines().count(), 3, "{}", r.body());
        assert!(!r.body().contains("error"), "{}", r.body());
    }
    gw.envoy
        .wait_for_log(
            "ExportPayments: HttpBody stream ended early, its body is cut",
            std::time::Duration::from_secs(5),
        )
        .unwrap();
}

/// Stream formats by operation (`operations.<m>.stream_format`) and by the client's `Accept`
/// (which wins), each with its content type; both the router and the side call.
#[tokio::test(flavor = "multi_thread")]
async fn stream_formats_by_operation_and_by_accept() {
    use e2e_transcode_common::timed_request;
    let extra = format!("{WATCH_POST}    stream_format: sse\n");
    let gw = GatewayBuilder::demo_with(&extra).start().unwrap();
    let url = gw.url("/v1/merchants/acme/payments:watch");
    for http2 in [false, true] {
        let json = ("content-type", "application/json");
        let body = r#"{"maxEvents":3}"#;
        // The operation's format: SSE.
        let r = timed_request(http2, "POST", &url, &[json], body).await;
        assert_eq!(r.header("content-type"), Some("text/event-stream"));
        assert_eq!(r.body().matches("data: ").count(), 3, "{}", r.body());
        // Accept wins: NDJSON, JSON array.
        let r = timed_request(
            http2,
            "POST",
            &url,
            &[json, ("accept", "application/x-ndjson")],
            body,
        )
        .await;
        assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
        let lines: Vec<serde_json::Value> = r
            .body()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{}", r.body());
        assert_eq!(lines[2]["sequence"], "3");
        let r = timed_request(
            http2,
            "POST",
            &url,
            &[json, ("accept", "application/json")],
            body,
        )
        .await;
        assert_eq!(r.header("content-type"), Some("application/json"));
        let array: serde_json::Value = serde_json::from_str(&r.body()).unwrap();
        assert_eq!(array.as_array().map(Vec::len), Some(3));
        // The side call (GET) follows the same choice.
        let get = format!("{url}?maxEvents=2");
        let r = timed_request(
            http2,
            "GET",
            &get,
            &[("accept", "application/x-ndjson")],
            "",
        )
        .await;
        assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
        assert_eq!(r.body().lines().count(), 2, "{}", r.body());
    }
}

/// A stream longer than Envoy's default 15 s route timeout (the harness's routes have it) is
/// not cut: `meshgate envoy` renders streaming operations a route without it. Nine events two
/// seconds apart (18 s), HTTP/1.1 and HTTP/2 at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_stream_longer_than_the_route_timeout_is_not_cut() {
    use e2e_transcode_common::timed_request;
    let gw = GatewayBuilder::demo_with(WATCH_POST).start().unwrap();
    let url = gw.url("/v1/merchants/acme/payments:watch");
    let body = r#"{"maxEvents":9,"intervalMs":2000}"#;
    let ndjson = [
        ("content-type", "application/json"),
        ("accept", "application/x-ndjson"),
    ];
    let (h1, h2) = tokio::join!(
        timed_request(false, "POST", &url, &ndjson, body),
        timed_request(true, "POST", &url, &ndjson, body),
    );
    for r in [h1, h2] {
        assert_whole_event_stream(&r, 9, 17);
        // Each event as it came, not all at the end.
        let first = r.time_of("\"sequence\":\"1\"").unwrap();
        assert!(first < std::time::Duration::from_secs(5), "{first:?}");
    }
}

/// Client streaming over HTTP: a JSON array (or NDJSON) body is the stream of request
/// messages (the demo's RecordPayments creates one payment per message), through the router
/// and as side calls; a binary protobuf body (no message boundaries) is a 415 Status, a body
/// that is no array a 400. Bidirectional streaming (LookupPayments): the same request side,
/// the reply a stream in the chosen format.
#[tokio::test(flavor = "multi_thread")]
async fn client_and_bidi_streaming_over_http() {
    let router = GatewayBuilder::demo().start().unwrap();
    let side = GatewayBuilder::demo_with("transcoding:\n  upstream_calls: side_call\n")
        .start()
        .unwrap();
    let json = ("content-type", "application/json");
    let ndjson = ("content-type", "application/x-ndjson");
    let two = r#"[{"payment":{"amount":{"currencyCode":"EUR","amountMinor":100}}},{"payment":{"amount":{"currencyCode":"EUR","amountMinor":23}}}]"#;
    let two_lines = "{\"payment\":{\"amount\":{\"currencyCode\":\"EUR\",\"amountMinor\":100}}}\n{\"payment\":{\"amount\":{\"currencyCode\":\"EUR\",\"amountMinor\":23}}}\n";
    for gw in [&router, &side] {
        for client in both() {
            for (ct, body) in [(json, two), (ndjson, two_lines)] {
                let r = client
                    .post(&gw.url("/v1/payments:record"), &[ct], body)
                    .await
                    .unwrap();
                assert_eq!(r.status.as_u16(), 200, "{}", r.text());
                assert_no_grpc_leak(&r);
                let v = r.json().unwrap();
                assert_eq!(v["ids"].as_array().map(Vec::len), Some(2), "{v}");
                assert_eq!(v["totalAmountMinor"], "123", "{v}");
            }
            // An empty array: a stream with no message.
            let r = client
                .post(&gw.url("/v1/payments:record"), &[json], "[]")
                .await
                .unwrap();
            assert_eq!(r.status.as_u16(), 200, "{}", r.text());
            // The backend's error for the second message.
            let bad = r#"[{"payment":{"amount":{"amountMinor":1}}},{"payment":{}}]"#;
            let r = client
                .post(&gw.url("/v1/payments:record"), &[json], bad)
                .await
                .unwrap();
            assert_eq!(r.status.as_u16(), 400, "{}", r.text());
            let r = client
                .post(&gw.url("/v1/payments:record"), &[json], r#"{"payment":{}}"#)
                .await
                .unwrap();
            assert_eq!(r.status.as_u16(), 400, "{}", r.text());
            assert!(r.text().contains("JSON array"), "{}", r.text());
            let r = client
                .post(
                    &gw.url("/v1/payments:record"),
                    &[("content-type", "application/x-protobuf")],
                    "\n\u{0}",
                )
                .await
                .unwrap();
            assert_eq!(r.status.as_u16(), 415, "{}", r.text());
            // Bidirectional: one payment per id, as a stream; an unknown id ends it in-band.
            let ids = r#"[{"id":"pay_001"},{"id":"pay_002"},{"id":"nope"}]"#;
            let r = client
                .post(&gw.url("/v1/payments:lookup"), &[json], ids)
                .await
                .unwrap();
            assert_eq!(r.status.as_u16(), 200, "{}", r.text());
            assert_eq!(r.header("content-type"), Some("application/json"));
            let items = r.json().unwrap();
            assert_eq!(items[0]["id"], "pay_001", "{items}");
            assert_eq!(items[1]["id"], "pay_002", "{items}");
            assert_eq!(items[2]["error"]["code"], 5, "{items}");
            let r = client
                .post(
                    &gw.url("/v1/payments:lookup"),
                    &[ndjson, ("accept", "application/x-ndjson")],
                    "{\"id\":\"pay_001\"}\n",
                )
                .await
                .unwrap();
            assert_eq!(r.status.as_u16(), 200, "{}", r.text());
            assert_eq!(
                r.header("content-type"),
                Some("application/x-ndjson"),
                "{}",
                r.text()
            );
            assert_eq!(r.text().lines().count(), 1, "{}", r.text());
        }
    }
}

/// The `details` of error bodies follow the print options like replies do: with
/// `preserve_proto_field_names: true` a backend's `google.rpc.ResourceInfo` prints
/// `resource_type` (unary, as a side call) and in a stream's in-band error (bidi, through
/// the router), and the gateway's own `google.rpc.BadRequest` prints `field_violations`;
/// without the option, proto3 JSON's `resourceType` and `fieldViolations`.
#[tokio::test(flavor = "multi_thread")]
async fn error_details_follow_preserve_proto_field_names() {
    let snake = GatewayBuilder::demo_with(
        "transcoding:\n  print_options:\n    preserve_proto_field_names: true\n",
    )
    .start()
    .unwrap();
    let camel = GatewayBuilder::demo().start().unwrap();
    for (gw, resource_type, violations) in [
        (&snake, "resource_type", "field_violations"),
        (&camel, "resourceType", "fieldViolations"),
    ] {
        for client in both() {
            let r = client.get(&gw.url("/v1/payments/nope"), &[]).await.unwrap();
            assert_eq!(r.status.as_u16(), 404, "{}", r.text());
            let s = r.json().unwrap();
            assert_eq!(s["details"][0][resource_type], "payment", "{s}");
            let r = client
                .post(
                    &gw.url("/v1/payments"),
                    &[("content-type", "application/json")],
                    r#"{"amount":{"amountMinor":"x"}}"#,
                )
                .await
                .unwrap();
            assert_eq!(r.status.as_u16(), 400, "{}", r.text());
            let s = r.json().unwrap();
            assert!(s["details"][0][violations][0]["field"].is_string(), "{s}");
            let r = client
                .post(
                    &gw.url("/v1/payments:lookup"),
                    &[("content-type", "application/json")],
                    r#"[{"id":"pay_001"},{"id":"nope"}]"#,
                )
                .await
                .unwrap();
            assert_eq!(r.status.as_u16(), 200, "{}", r.text());
            let items = r.json().unwrap();
            assert_eq!(items[1]["error"]["code"], 5, "{items}");
            assert_eq!(
                items[1]["error"]["details"][0][resource_type], "payment",
                "{items}"
            );
        }
    }
}

/// A streaming `GET` binding goes as a side call, whose reply Envoy delivers whole: it is
/// bounded by `transcoding.stream_timeout_ms` (5 minutes by default), not by the upstream's
/// `timeout_ms` (15 s by default), so a 16 s stream (eight events two seconds apart) arrives
/// complete over HTTP/1.1 and HTTP/2; `operations.<m>.stream_timeout_ms` bounds it (3 s:
/// `504 DEADLINE_EXCEEDED`). On the native flavour the GET goes through the router's
/// streaming route instead (timeout off): not cut either, and not bounded by the option.
#[tokio::test(flavor = "multi_thread")]
async fn a_streaming_get_longer_than_15_s_is_not_cut() {
    use e2e_transcode_common::timed_request;
    let gw = GatewayBuilder::demo().start().unwrap();
    let short = GatewayBuilder::demo_with(
        "operations:\n  meshgate.demo.v1.Payments.WatchPayments:\n    stream_timeout_ms: 3000\n",
    )
    .start()
    .unwrap();
    let ndjson = [("accept", "application/x-ndjson")];
    let url = gw.url("/v1/merchants/acme/payments:watch?maxEvents=8&intervalMs=2000");
    let cut = short.url("/v1/merchants/acme/payments:watch?maxEvents=4&intervalMs=2000");
    let (h1, h2, bounded) = tokio::join!(
        timed_request(false, "GET", &url, &ndjson, ""),
        timed_request(true, "GET", &url, &ndjson, ""),
        timed_request(true, "GET", &cut, &ndjson, ""),
    );
    for r in [h1, h2] {
        assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
        assert_whole_event_stream(&r, 8, 15);
    }
    if meshgate_kit::harness::Flavour::from_env()
        .unwrap()
        .is_native()
    {
        // The native module sends the GET through the router (no side call): the streaming
        // route (timeout off, idle timeout) carries it, `stream_timeout_ms` does not apply, and
        // the four events (6 s) arrive whole.
        assert_eq!(bounded.status, 200, "{}", bounded.body());
        assert_eq!(bounded.body().lines().count(), 4, "{}", bounded.body());
        return;
    }
    assert_eq!(bounded.status, 504, "{}", bounded.body());
    let s: serde_json::Value = serde_json::from_str(&bounded.body()).unwrap();
    assert_eq!(s["code"], 4, "{s}");
    assert!(
        bounded.total < std::time::Duration::from_secs(7),
        "{:?}",
        bounded.total
    );
}

/// Bidirectional streaming through the router with an NDJSON body: each line leaves as it
/// arrives and its reply comes back while the request body is still open (the test sends the
/// second line only after it has read the first reply, so a gateway that waited for the
/// body's end would time out here). A line that does not map after replies went out ends
/// the reply stream in-band with a 400 Status naming it; with no reply under way (client
/// streaming) it is a 400 reply.
#[tokio::test(flavor = "multi_thread")]
async fn bidi_ndjson_replies_interleave_with_the_request_body() {
    use e2e_transcode_common::Duplex;
    let gw = GatewayBuilder::demo().start().unwrap();
    let url = gw.url("/v1/payments:lookup");
    let headers = [
        ("content-type", "application/x-ndjson"),
        ("accept", "application/x-ndjson"),
    ];
    for http2 in [false, true] {
        let mut d = Duplex::start(http2, &url, &headers);
        d.send("{\"id\":\"pay_001\"}\n").await;
        assert!(d.read_until("pay_001").await, "{}", d.seen);
        assert_eq!(d.status, 200, "{}", d.seen);
        assert_eq!(d.content_type.as_deref(), Some("application/x-ndjson"));
        assert!(!d.seen.contains("pay_002"), "{}", d.seen);
        // Half a line, then its end: one message.
        d.send("{\"id\":").await;
        d.send("\"pay_002\"}\n").await;
        assert!(d.read_until("pay_002").await, "{}", d.seen);
        d.close();
        let all = d.read_to_end().await;
        let lines: Vec<serde_json::Value> = all
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{all}");
        assert_eq!(lines[1]["id"], "pay_002", "{all}");

        // A bad line once a reply went out: the stream ends with its error.
        let mut d = Duplex::start(http2, &url, &headers);
        d.send("{\"id\":\"pay_001\"}\n").await;
        assert!(d.read_until("pay_001").await, "{}", d.seen);
        d.send("{\"id\":7}\n").await;
        d.send("{\"id\":\"pay_002\"}\n").await;
        d.close();
        let all = d.read_to_end().await;
        let lines: Vec<serde_json::Value> = all
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{all}");
        let error = &lines[1]["error"];
        assert_eq!(error["code"], 3, "{all}");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .starts_with("message [1]: "),
            "{all}"
        );

        // Client streaming (a unary reply): a bad line after the first went upstream is a 400.
        let record = gw.url("/v1/payments:record");
        let mut d = Duplex::start(http2, &record, &headers);
        d.send("{\"payment\":{\"amount\":{\"currencyCode\":\"EUR\",\"amountMinor\":5}}}\n")
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        d.send("{\"payment\":7}\n").await;
        let all = d.read_to_end().await;
        assert_eq!(d.status, 400, "{all}");
        let s: serde_json::Value = serde_json::from_str(&all).unwrap();
        assert!(
            s["message"].as_str().unwrap().starts_with("message [1]: "),
            "{all}"
        );
    }
}

/// A streamed NDJSON answer that arrived whole: 200, `events` lines numbered 1..=events, none an
/// error, and it lasted at least `min_secs` (so it really outlived the timeout under test).
fn assert_whole_event_stream(r: &e2e_transcode_common::Timed, events: usize, min_secs: u64) {
    assert_eq!(r.status, 200, "{}", r.body());
    let lines: Vec<serde_json::Value> = r
        .body()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), events, "{}", r.body());
    assert!(
        lines.iter().all(|l| l.get("error").is_none()),
        "{}",
        r.body()
    );
    assert_eq!(lines[events - 1]["sequence"], events.to_string());
    assert!(
        r.total >= std::time::Duration::from_secs(min_secs),
        "{:?}",
        r.total
    );
}
