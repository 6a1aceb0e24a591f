//! Issue 3 end to end, server streaming: WatchPayments as a JSON array, NDJSON or SSE
//! (`transcoding.stream_format`), each message reaching HTTP/1.1 and HTTP/2 clients as it
//! arrives, a terminal error reported in the stream, and the reply shapes without messages.
//!
//! The demo backend sends one event every 50 ms. WatchPayments' proto binding is a GET; a POST
//! binding is added in the test configuration because body-less requests are sent as a side
//! call whose reply Envoy hands over whole (see docs/transcoding.md, Server streaming).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_transcode_common;

use std::time::Duration;

use e2e_transcode_common::{timed_request, Timed};
use meshgate_kit::harness::{Gateway, GatewayBuilder};
use serde_json::Value;

const WATCH: &str = "/v1/merchants/acme/payments:watch";
const JSON: (&str, &str) = ("content-type", "application/json");

fn gateway(format: &str) -> Gateway {
    GatewayBuilder::demo_with(&format!(
        "transcoding:\n  stream_format: {format}\n\
         operations:\n  meshgate.demo.v1.Payments.WatchPayments:\n    \
         http:\n      - post: \"/v1/{{parent=merchants/*}}/payments:watch\"\n        body: \"*\"\n"
    ))
    .start()
    .unwrap()
}

/// The first message arrived well before the stream ended: delivered as it arrived.
fn assert_incremental(r: &Timed, first: &str) {
    let at = r
        .time_of(first)
        .unwrap_or_else(|| panic!("no {first} in {}", r.body()));
    eprintln!(
        "stream: first message at {at:?}, end at {:?}, {} chunks",
        r.total,
        r.chunks.len()
    );
    assert!(
        r.total >= at + Duration::from_millis(400),
        "first message at {at:?}, stream over at {:?}: not incremental ({} chunks)",
        r.total,
        r.chunks.len()
    );
}

fn assert_clean_trailers(r: &Timed) {
    if let Some(t) = &r.trailers {
        assert!(t.keys().all(|k| !k.as_str().starts_with("grpc-")), "{t:?}");
    }
    assert!(
        r.headers.keys().all(|k| !k.as_str().starts_with("grpc-")),
        "{:?}",
        r.headers
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_array_stream_is_incremental_and_reports_a_terminal_error() {
    let gw = gateway("json_array");
    for http2 in [false, true] {
        let r = timed_request(
            http2,
            "POST",
            &gw.url(WATCH),
            &[JSON],
            r#"{"maxEvents":15}"#,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body());
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_clean_trailers(&r);
        assert_incremental(&r, "\"sequence\":\"1\"");
        let v: Value = serde_json::from_str(&r.body()).unwrap();
        let items = v.as_array().unwrap();
        assert_eq!(items.len(), 15, "{v}");
        assert_eq!(items[14]["sequence"], "15");
        assert_eq!(items[0]["paymentId"], "pay_001");

        let r = timed_request(
            http2,
            "POST",
            &gw.url(WATCH),
            &[JSON],
            r#"{"maxEvents":3,"failWithCode":14}"#,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body());
        assert_clean_trailers(&r);
        let v: Value = serde_json::from_str(&r.body()).unwrap();
        let items = v.as_array().unwrap();
        assert_eq!(items.len(), 4, "{v}");
        assert_eq!(items[3]["error"]["code"], 14, "{v}");
        assert_eq!(items[3]["error"]["message"], "watch failed as requested");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ndjson_stream_is_incremental_and_reports_a_terminal_error() {
    let gw = gateway("ndjson");
    for http2 in [false, true] {
        let r = timed_request(
            http2,
            "POST",
            &gw.url(WATCH),
            &[JSON],
            r#"{"maxEvents":15,"failWithCode":9}"#,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body());
        assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
        assert_clean_trailers(&r);
        assert_incremental(&r, "\"sequence\":\"1\"");
        let body = r.body();
        let lines: Vec<Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 16, "{body}");
        assert_eq!(lines[0]["sequence"], "1");
        assert_eq!(lines[15]["error"]["code"], 9, "{body}");
        assert!(body.ends_with('\n'));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_stream_is_incremental_and_reports_a_terminal_error() {
    let gw = gateway("sse");
    for http2 in [false, true] {
        let r = timed_request(
            http2,
            "POST",
            &gw.url(WATCH),
            &[JSON],
            r#"{"maxEvents":15,"failWithCode":10}"#,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body());
        assert_eq!(r.header("content-type"), Some("text/event-stream"));
        assert_clean_trailers(&r);
        assert_incremental(&r, "\"sequence\":\"1\"");
        let body = r.body();
        let events: Vec<&str> = body.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 16, "{body}");
        let first: Value = serde_json::from_str(events[0].strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(first["sequence"], "1");
        let last = events[15];
        assert!(last.starts_with("event: error\ndata: "), "{last}");
        let status: Value =
            serde_json::from_str(last.strip_prefix("event: error\ndata: ").unwrap()).unwrap();
        assert_eq!(status["code"], 10);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_without_messages_and_body_less_streams() {
    let gw = gateway("json_array");
    for http2 in [false, true] {
        // headers + trailers, no data, OK: an empty array.
        let r = timed_request(http2, "POST", &gw.url(WATCH), &[JSON], r#"{"maxEvents":0}"#).await;
        assert_eq!(r.status, 200, "{}", r.body());
        assert_eq!(r.body(), "[]");
        assert_clean_trailers(&r);
        // headers + trailers, no data, failed: nothing was sent, so a real HTTP error.
        let r = timed_request(
            http2,
            "POST",
            &gw.url(WATCH),
            &[JSON],
            r#"{"maxEvents":0,"failWithCode":7}"#,
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.body());
        let s: Value = serde_json::from_str(&r.body()).unwrap();
        assert_eq!(s["code"], 7);
        assert_clean_trailers(&r);
        // trailers-only (the backend refuses before streaming): the field is named.
        let r = timed_request(
            http2,
            "POST",
            &gw.url(WATCH),
            &[JSON],
            r#"{"maxEvents":-1}"#,
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.body());
        assert!(r.body().contains("max_events"), "{}", r.body());
        // GET (the proto's binding): a side call, answered whole in the stream format.
        let r = timed_request(
            http2,
            "GET",
            &gw.url(&format!("{WATCH}?maxEvents=3&failWithCode=14")),
            &[],
            "",
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body());
        let v: Value = serde_json::from_str(&r.body()).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 4, "{v}");
        assert_eq!(v[3]["error"]["code"], 14);
        // The VM still serves unary calls.
        let r = timed_request(http2, "GET", &gw.url("/v1/payments/pay_001"), &[], "").await;
        assert_eq!(r.status, 200);
    }
}

/// A backend that breaks the stream (bad message, missing trailers, truncated frame): the
/// client gets a terminal error, never a hang or a clean-looking end.
#[tokio::test(flavor = "multi_thread")]
async fn broken_streams_end_with_an_error() {
    let gw = gateway("ndjson");
    for http2 in [false, true] {
        for mode in ["bad-frame", "no-trailers", "truncated", "compressed"] {
            let r = timed_request(
                http2,
                "POST",
                &gw.url(WATCH),
                &[JSON, ("x-demo-misbehave", mode)],
                r#"{"maxEvents":2}"#,
            )
            .await;
            let body = r.body();
            let what = format!("{mode}: {} {body}", r.status);
            assert_clean_trailers(&r);
            if r.status == 200 {
                let last: Value = serde_json::from_str(body.lines().last().unwrap()).unwrap();
                assert!(last["error"]["code"].as_i64().unwrap() > 0, "{what}");
            } else {
                assert!(r.status >= 500, "{what}");
                let s: Value = serde_json::from_str(&body).unwrap();
                assert!(s["code"].as_i64().unwrap() > 0, "{what}");
            }
        }
    }
}
