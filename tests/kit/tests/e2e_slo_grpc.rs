//! Issue 5 end to end (native gRPC): SLO-tagged access records and SLI counters of native
//! gRPC calls that succeed, fail (the backend's fault or the client's), are slow, or carry
//! Google's trace header instead of `traceparent`.
//!
//! The gateway: [`e2e_slo_support`] (Payments needs a token of provider `test`, availability
//! 99.9 and latency 95% under 300 ms; Wallets is public with `observe.default_slo`; the
//! `partner` policy on `/meshgate.demo.v1.Wallets/` has latency 90% under 100 ms; a second
//! Envoy access log prints meshgate's per-field filter state). Every request carries its own
//! trace id, so each record is found by its trace. Split from `e2e_slo.rs` by behaviour:
//! `e2e_slo_grpc.rs`, `e2e_slo_transcoded.rs`, `e2e_slo_policy.rs`.
//!
//! Needs `build/meshgate.wasm` (`make wasm`) and Envoy (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_slo_support;

use e2e_slo_support::*;
use meshgate_kit::harness::payments_client;
use meshgate_kit::proto::meshgate::demo::v1::ListPaymentsRequest;

#[tokio::test(flavor = "multi_thread")]
async fn native_grpc_records_verdicts_and_counters() {
    let f = start("grpc");
    let gw = &f.gw;
    let mut payments = payments_client(gw.addr()).await.unwrap();
    let tp = |n| ("traceparent", traceparent(n, true));

    // 1: fine.
    get_payment_traced(&mut payments, "pay_001", 1, &[])
        .await
        .unwrap();
    // 2: the backend fails with UNAVAILABLE (counts against availability).
    let fail = |code: &str| ("x-demo-fail", code.to_string());
    let e = get_payment_traced(&mut payments, "pay_001", 2, &[fail("UNAVAILABLE")])
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable);
    // 3: NOT_FOUND: the client's fault, good for the service.
    let e = get_payment_traced(&mut payments, "nope", 3, &[])
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    // 4: slower than the 300 ms threshold.
    get_payment_traced(
        &mut payments,
        "pay_001",
        4,
        &[("x-demo-delay-ms", "700".into())],
    )
    .await
    .unwrap();
    // 5: RESOURCE_EXHAUSTED is not an error code unless configured.
    let e = get_payment_traced(&mut payments, "pay_001", 5, &[fail("RESOURCE_EXHAUSTED")])
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted);
    // 6: Google's trace header instead of traceparent (span id in decimal).
    payments
        .get_payment(grpc_request(
            get_payment("pay_001"),
            &[
                bearer(),
                (
                    "x-cloud-trace-context",
                    format!("{}/1234567890;o=1", trace_id(6)),
                ),
            ],
        ))
        .await
        .unwrap();
    // 7: INTERNAL, bad.
    get_payment_traced(&mut payments, "pay_001", 7, &[fail("INTERNAL")])
        .await
        .unwrap_err();
    // 8: RESOURCE_EXHAUSTED from ListPayments, whose objective names it an error code.
    let list = || ListPaymentsRequest {
        parent: "merchants/acme".into(),
        page_size: 2,
        ..Default::default()
    };
    let e = payments
        .list_payments(grpc_request(
            list(),
            &[bearer(), tp(8), fail("RESOURCE_EXHAUSTED")],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted);
    // 9: and a successful list.
    payments
        .list_payments(grpc_request(list(), &[bearer(), tp(9)]))
        .await
        .unwrap();

    let ok = record(gw, 1);
    assert_eq!(ok["severity"], "INFO", "{ok}");
    let h = &ok["httpRequest"];
    assert_eq!(h["requestMethod"], "POST");
    assert_eq!(
        h["requestUrl"],
        format!(
            "http://127.0.0.1:{}/meshgate.demo.v1.Payments/GetPayment",
            gw.envoy.listener_port
        )
    );
    assert_eq!(h["status"], 200);
    assert_eq!(h["protocol"], "HTTP/2");
    assert_eq!(h["remoteIp"], "127.0.0.1");
    assert!(h["userAgent"].as_str().unwrap().contains("tonic"), "{h}");
    // 5-byte frame header + the message; the reply is a whole Payment.
    assert!(size(&h["requestSize"]) >= 5 + 9, "{h}");
    assert!(size(&h["responseSize"]) > 20, "{h}");
    let latency = seconds(&h["latency"]);
    // A sanity bound only: the first request of a loaded test machine can be slow.
    assert!(latency > 0.0 && latency < 5.0, "{h}");
    assert_eq!(ok["logging.googleapis.com/spanId"], span_id(1));
    assert_eq!(ok["logging.googleapis.com/trace_sampled"], true);
    assert_eq!(ok["operation"], GET_PAYMENT);
    assert_eq!(ok["upstream"], "payments");
    assert_eq!(ok["grpcStatus"], "OK");
    assert_eq!(ok["principal"], SUBJECT);
    assert!(ok.get("policy").is_none(), "{ok}");
    assert_eq!(ok["outcome"], "ok");
    assert_slo(&ok, "good", "good");
    assert!(!ok.to_string().contains("eyJ"), "the token is never logged");

    let unavailable = record(gw, 2);
    assert_eq!(unavailable["severity"], "ERROR", "{unavailable}");
    assert_eq!(
        unavailable["httpRequest"]["status"], 200,
        "native gRPC error"
    );
    assert_eq!(unavailable["grpcStatus"], "UNAVAILABLE");
    assert_eq!(unavailable["outcome"], "unavailable");
    assert_slo(&unavailable, "bad", "n/a");

    let not_found = record(gw, 3);
    assert_eq!(not_found["severity"], "WARNING", "{not_found}");
    assert_eq!(not_found["grpcStatus"], "NOT_FOUND");
    assert_slo(&not_found, "good", "good");

    let slow = record(gw, 4);
    assert!(seconds(&slow["httpRequest"]["latency"]) >= 0.7, "{slow}");
    assert_eq!(slow["severity"], "INFO");
    assert_slo(&slow, "good", "bad");

    let exhausted = record(gw, 5);
    assert_eq!(exhausted["grpcStatus"], "RESOURCE_EXHAUSTED");
    assert_eq!(exhausted["severity"], "WARNING", "429 as HTTP");
    assert_eq!(exhausted["outcome"], "resource_exhausted");
    assert_eq!(exhausted["slo"]["availability"], "good");

    let quota = record(gw, 8);
    assert_eq!(quota["operation"], LIST_PAYMENTS, "{quota}");
    assert_eq!(quota["grpcStatus"], "RESOURCE_EXHAUSTED");
    assert_eq!(
        quota["slo"]["availability"], "bad",
        "configured error code: {quota}"
    );
    assert_eq!(record(gw, 9)["slo"]["availability"], "good");

    let cloud = record(gw, 6);
    assert_eq!(
        cloud["logging.googleapis.com/spanId"],
        format!("{:016x}", 1_234_567_890u64)
    );
    assert_eq!(cloud["logging.googleapis.com/trace_sampled"], true);
    assert_eq!(cloud["operation"], GET_PAYMENT);

    let internal = record(gw, 7);
    assert_eq!(internal["severity"], "ERROR");
    assert_eq!(internal["slo"]["availability"], "bad");

    // Counters: 7 requests, 2 availability failures, 5 latency events of which 1 slow.
    let op = ("operation", GET_PAYMENT);
    let av = ("slo", "availability");
    let lat = ("slo", "latency");
    let text = wait_for_metrics(
        gw,
        &[
            ("meshgate_requests_total", vec![op, ("outcome", "ok")], 3.0),
            (
                "meshgate_requests_total",
                vec![op, ("outcome", "unavailable")],
                1.0,
            ),
            (
                "meshgate_requests_total",
                vec![op, ("outcome", "not_found")],
                1.0,
            ),
            (
                "meshgate_requests_total",
                vec![op, ("outcome", "resource_exhausted")],
                1.0,
            ),
            (
                "meshgate_requests_total",
                vec![op, ("outcome", "internal")],
                1.0,
            ),
            ("meshgate_slo_events_total", vec![op, av, OWN], 7.0),
            ("meshgate_slo_good_events_total", vec![op, av, OWN], 5.0),
            ("meshgate_slo_events_total", vec![op, lat, OWN], 5.0),
            ("meshgate_slo_good_events_total", vec![op, lat, OWN], 4.0),
            ("meshgate_request_duration_ms_count", vec![op], 7.0),
            (
                "meshgate_slo_events_total",
                vec![("operation", LIST_PAYMENTS), av, OWN],
                2.0,
            ),
            (
                "meshgate_slo_good_events_total",
                vec![("operation", LIST_PAYMENTS), av, OWN],
                1.0,
            ),
        ],
    );
    // Buckets include the threshold (300), the configured ones, and the policy's (100).
    for le in ["25", "100", "300", "1000"] {
        let v = prom(
            &text,
            "meshgate_request_duration_ms_bucket",
            &[op, ("le", le)],
        );
        assert!(v.is_some(), "bucket le={le} missing");
    }
    let under_300 = prom(
        &text,
        "meshgate_request_duration_ms_bucket",
        &[op, ("le", "300")],
    )
    .unwrap();
    assert_eq!(
        under_300, 6.0,
        "every request but the slow one is under 300 ms"
    );
    // The record agrees with the metrics: its fields are what the counters counted.
    assert!(
        !text.contains("envoy_meshgate") && !text.contains("wasmcustom"),
        "clean names"
    );
}

// ---------------------------------------------------------------------------------------------
// Transcoded HTTP/JSON
