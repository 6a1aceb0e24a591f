//! Issue 5 end to end (transcoded HTTP): SLO-tagged access records and SLI counters of
//! transcoded GETs (side calls) and POSTs over HTTP/1.1 and HTTP/2 that succeed, fail, are
//! slow, are the client's mistake, or are refused by the gateway.
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
use meshgate_kit::harness::{http1_client, http2_client};

#[tokio::test(flavor = "multi_thread")]
async fn transcoded_requests_records_verdicts_and_counters() {
    let f = start("http");
    let gw = &f.gw;
    let h1 = http1_client();
    let token = format!("Bearer {}", token());
    let auth = ("authorization", token.as_str());
    let url = gw.url("/v1/payments/pay_001");

    // 11: GET (sent by the filter as a side call), not sampled.
    let tp11 = traceparent(11, false);
    let r = h1
        .get(
            &url,
            &[auth, ("traceparent", &tp11), ("user-agent", "slo-e2e/1.0")],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let get_body_len = r.body.len() as u64;
    // 12: the backend fails.
    let r = get_traced(&h1, &url, 12, &[auth, ("x-demo-fail", "UNAVAILABLE")]).await;
    assert_eq!(r.status.as_u16(), 503, "{}", r.text());
    // 13: slow.
    let r = get_traced(&h1, &url, 13, &[auth, ("x-demo-delay-ms", "700")]).await;
    assert_eq!(r.status.as_u16(), 200);
    // 14: the client's mistake.
    let r = get_traced(&h1, &url, 14, &[auth, ("x-demo-fail", "INVALID_ARGUMENT")]).await;
    assert_eq!(r.status.as_u16(), 400);
    // 15: POST with a body (through Envoy's router).
    let tp15 = traceparent(15, true);
    let body =
        r#"{"amount":{"currencyCode":"EUR","amountMinor":"990"},"merchant":"merchants/slo"}"#;
    let r = h1
        .post(
            &gw.url("/v1/payments"),
            &[
                auth,
                ("traceparent", &tp15),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    // 16: no token: the gateway refuses (401), good for availability, not a latency event.
    let tp16 = traceparent(16, true);
    let r = h1.get(&url, &[("traceparent", &tp16)]).await.unwrap();
    assert_eq!(r.status.as_u16(), 401);
    // 17: the same GET over HTTP/2.
    let r = get_traced(&http2_client(), &url, 17, &[auth]).await;
    assert_eq!(r.status.as_u16(), 200);

    let get = record(gw, 11);
    let h = &get["httpRequest"];
    assert_eq!(get["severity"], "INFO", "{get}");
    assert_eq!(h["requestMethod"], "GET");
    assert_eq!(h["requestUrl"], url);
    assert_eq!(h["status"], 200);
    assert_eq!(h["protocol"], "HTTP/1.1");
    assert_eq!(h["userAgent"], "slo-e2e/1.0");
    assert_eq!(h["remoteIp"], "127.0.0.1");
    // Headers and body, as Cloud Logging defines requestSize (a GET has headers only).
    assert!((100..1000).contains(&size(&h["requestSize"])), "{h}");
    assert!(size(&h["responseSize"]) >= get_body_len, "{h}");
    assert_eq!(get["logging.googleapis.com/trace_sampled"], false);
    assert_eq!(get["logging.googleapis.com/spanId"], span_id(11));
    assert_eq!(get["operation"], GET_PAYMENT);
    assert_eq!(get["upstream"], "payments");
    assert_eq!(get["grpcStatus"], "OK");
    assert_eq!(get["principal"], SUBJECT);
    assert_slo(&get, "good", "good");

    let failed = record(gw, 12);
    assert_eq!(failed["severity"], "ERROR", "{failed}");
    assert_eq!(failed["httpRequest"]["status"], 503);
    assert_eq!(failed["grpcStatus"], "UNAVAILABLE");
    assert_slo(&failed, "bad", "n/a");

    let slow = record(gw, 13);
    assert!(seconds(&slow["httpRequest"]["latency"]) >= 0.7, "{slow}");
    assert_slo(&slow, "good", "bad");

    let invalid = record(gw, 14);
    assert_eq!(invalid["severity"], "WARNING", "{invalid}");
    assert_eq!(invalid["httpRequest"]["status"], 400);
    assert_eq!(invalid["grpcStatus"], "INVALID_ARGUMENT");
    assert_eq!(invalid["slo"]["availability"], "good");

    let post = record(gw, 15);
    assert_eq!(post["operation"], CREATE_PAYMENT, "{post}");
    assert_eq!(post["httpRequest"]["requestMethod"], "POST");
    assert!(size(&post["httpRequest"]["requestSize"]) > body.len() as u64 + 100);
    assert!(size(&post["httpRequest"]["responseSize"]) > 20);
    assert_slo(&post, "good", "good");

    let refused = record(gw, 16);
    assert_eq!(refused["httpRequest"]["status"], 401, "{refused}");
    assert_eq!(refused["severity"], "WARNING");
    assert_eq!(refused["grpcStatus"], "UNAUTHENTICATED");
    assert!(refused.get("principal").is_none());
    assert_slo(&refused, "good", "n/a");

    let h2 = record(gw, 17);
    assert_eq!(h2["httpRequest"]["protocol"], "HTTP/2", "{h2}");

    let op = ("operation", GET_PAYMENT);
    let av = ("slo", "availability");
    let lat = ("slo", "latency");
    let create = ("operation", CREATE_PAYMENT);
    wait_for_metrics(
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
                vec![op, ("outcome", "invalid_argument")],
                1.0,
            ),
            (
                "meshgate_requests_total",
                vec![op, ("outcome", "unauthenticated")],
                1.0,
            ),
            ("meshgate_slo_events_total", vec![op, av, OWN], 6.0),
            ("meshgate_slo_good_events_total", vec![op, av, OWN], 5.0),
            ("meshgate_slo_events_total", vec![op, lat, OWN], 4.0),
            ("meshgate_slo_good_events_total", vec![op, lat, OWN], 3.0),
            ("meshgate_request_duration_ms_count", vec![op], 6.0),
            (
                "meshgate_requests_total",
                vec![create, ("outcome", "ok")],
                1.0,
            ),
            ("meshgate_slo_good_events_total", vec![create, av, OWN], 1.0),
            (
                "meshgate_slo_good_events_total",
                vec![create, lat, OWN],
                1.0,
            ),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Policy objectives, first-request counters, and Envoy's own access log
