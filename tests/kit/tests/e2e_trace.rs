//! Issue 19, OpenTelemetry traces end to end: the bootstrap `meshgate envoy --otlp` renders
//! sends spans over OTLP/gRPC to the kit's receiver; a request's trace has the gateway's server
//! span named by the API operation, with meshgate's attributes (operation, upstream, outcome,
//! SLO verdicts), and the call to the backend as its child: the router's (a transcoded POST)
//! or meshgate's own, exported by meshgate (a transcoded GET, a side call); the W3C trace
//! context and B3's headers come in, and a `traceparent` naming the child goes to the backend.
//!
//! Needs `build/meshgate.wasm`, Envoy and `curl`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use meshgate::cli::envoy::tracing::Tracing;
use meshgate_kit::error::KitError;
use meshgate_kit::harness::{Gateway, GatewayBuilder};
use meshgate_kit::otlp::{OtlpReceiver, ReceivedSpan};
use meshgate_kit::tls::curl;

/// The bound on waiting for a trace (spans come with the tracer's next flush: [`FLUSH_MS`]).
const FLUSH: Duration = Duration::from_secs(20);

/// Envoy's OpenTelemetry tracer flushes its batch every 5 s (runtime
/// `tracing.opentelemetry.flush_interval_ms`); the tests' Envoy every 250 ms, so that a test
/// waits a quarter of a second for its spans rather than up to 5 s. Spans still leave in the
/// order their requests ended, which the "sent first, so flushed no later" checks rely on.
const FLUSH_MS: u64 = 250;

fn fast_flush(builder: GatewayBuilder) -> GatewayBuilder {
    builder.edit_bootstrap(|b| {
        let layer = b
            .pointer_mut("/layered_runtime/layers/0/static_layer")
            .and_then(serde_json::Value::as_object_mut)
            .ok_or_else(|| KitError::new("the bootstrap has no static runtime layer"))?;
        layer.insert(
            "tracing.opentelemetry.flush_interval_ms".into(),
            FLUSH_MS.into(),
        );
        Ok(())
    })
}

fn traced_gateway(receiver: &OtlpReceiver, extra: &str) -> Gateway {
    let addr = receiver.addr();
    fast_flush(GatewayBuilder::demo_with(extra))
        .envoy_options(move |o| {
            o.tracing = Some(Tracing {
                collector_address: addr.ip().to_string(),
                collector_port: addr.port(),
                sampling_percent: 100.0,
                service_name: "meshgate-e2e".into(),
            })
        })
        .start()
        .unwrap()
}

fn server_span<'a>(spans: &'a [ReceivedSpan], name: &str) -> Option<&'a ReceivedSpan> {
    spans.iter().find(|s| s.name == name && s.kind == 2)
}

fn children<'a>(spans: &'a [ReceivedSpan], parent: &ReceivedSpan) -> Vec<&'a ReceivedSpan> {
    spans
        .iter()
        .filter(|s| s.parent_span_id == parent.span_id)
        .collect()
}

/// A side call's reply leaves as meshgate's own: the backend's word on what it received
/// reaches the client only as forwarded metadata.
const ECHO: &str =
    "transcoding: {response_metadata_to_headers: [x-demo-traceparent, x-demo-received-headers]}";

const CREATE: &str =
    r#"{"merchant":"merchants/acme","amount":{"currency_code":"EUR","amount_minor":"1"}}"#;

#[test]
fn transcoded_post_is_one_trace_with_the_operation_span_and_the_backend_call_as_child() {
    let receiver = OtlpReceiver::start().unwrap();
    let gw = traced_gateway(&receiver, ECHO);
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace}-{parent}-01");
    let r = curl(
        &[
            "-H",
            "content-type: application/json",
            "-H",
            &format!("traceparent: {traceparent}"),
            "-d",
            CREATE,
        ],
        &gw.url("/v1/payments"),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    // The backend got the trace, under a span of the gateway's (not the client's).
    let received = r.header("x-demo-received-headers").unwrap_or_default();
    assert!(received.contains("traceparent"), "{received}");
    let op = "meshgate.demo.v1.Payments.CreatePayment";
    let spans = receiver
        .wait_for_trace(trace, FLUSH, |spans| {
            server_span(spans, op).is_some_and(|s| !children(spans, s).is_empty())
        })
        .unwrap();
    let server = server_span(&spans, op).unwrap();
    assert_eq!(server.parent_span_id, parent, "{spans:#?}");
    assert_eq!(server.service, "meshgate-e2e");
    assert_eq!(server.attribute("meshgate.operation"), Some(op));
    assert_eq!(server.attribute("meshgate.upstream"), Some("payments"));
    assert_eq!(
        server.attribute("meshgate.outcome"),
        Some("ok"),
        "{server:#?}"
    );
    assert_eq!(server.attribute("meshgate.slo.availability"), Some("good"));
    assert_eq!(server.attribute("meshgate.slo.latency"), Some("good"));
    let child = children(&spans, server);
    assert_eq!(child.len(), 1, "{spans:#?}");
    assert_eq!(child[0].kind, 3, "{spans:#?}");
    assert_eq!(
        r.header("x-demo-traceparent"),
        Some(format!("00-{trace}-{}-01", child[0].span_id).as_str())
    );
    // One server span per request: nothing else in this trace claims to be the gateway's.
    assert_eq!(
        spans.iter().filter(|s| s.kind == 2).count(),
        1,
        "{spans:#?}"
    );
}

/// A transcoded GET is sent by meshgate itself (a side call): Envoy gives it no span, so
/// meshgate exports its own, child of the gateway's server span, and the backend's
/// `traceparent` names it. A client's own copy of the span header changes nothing.
#[test]
fn transcoded_get_side_call_is_one_trace_with_meshgates_span_as_child() {
    let receiver = OtlpReceiver::start().unwrap();
    let gw = traced_gateway(&receiver, ECHO);
    let trace = "5bf92f3577b34da6a3ce929d0e0e4737";
    let traceparent = format!("00-{trace}-10f067aa0ba902b7-01");
    let forged = "5bf92f3577b34da6a3ce929d0e0e4737-1111111111111111-forged";
    let r = curl(
        &[
            "-H",
            &format!("traceparent: {traceparent}"),
            "-H",
            &format!("x-meshgate-span: {forged}"),
        ],
        &gw.url("/v1/payments/pay_001"),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let received = r.header("x-demo-received-headers").unwrap();
    assert!(received.contains("traceparent"), "{received}");
    assert!(!received.contains("x-meshgate-span"), "{received}");
    let op = "meshgate.demo.v1.Payments.GetPayment";
    let spans = receiver
        .wait_for_trace(trace, FLUSH, |spans| {
            server_span(spans, op).is_some_and(|s| !children(spans, s).is_empty())
        })
        .unwrap();
    let server = server_span(&spans, op).unwrap();
    assert_eq!(server.parent_span_id, "10f067aa0ba902b7", "{spans:#?}");
    assert_eq!(server.attribute("meshgate.operation"), Some(op));
    assert_eq!(server.attribute("meshgate.upstream"), Some("payments"));
    assert_eq!(
        server.attribute("meshgate.outcome"),
        Some("ok"),
        "{server:#?}"
    );
    let child = children(&spans, server);
    assert_eq!(child.len(), 1, "{spans:#?}");
    let call = child[0];
    assert_eq!((call.kind, call.name.as_str()), (3, "payments upstream"));
    assert_eq!(call.service, "meshgate-e2e");
    assert_eq!(call.attribute("meshgate.call"), Some("side_call"));
    assert_eq!(
        call.attribute("rpc.method"),
        Some("/meshgate.demo.v1.Payments/GetPayment")
    );
    assert_eq!(call.attribute("rpc.grpc.status_code"), Some("0"));
    assert_eq!(call.status, 1, "{call:#?}");
    assert!(call.start_unix_nanos > 0 && call.end_unix_nanos >= call.start_unix_nanos);
    assert_eq!(
        r.header("x-demo-traceparent"),
        Some(format!("00-{trace}-{}-01", call.span_id).as_str())
    );
    assert_eq!(
        spans.iter().filter(|s| s.kind == 2).count(),
        1,
        "{spans:#?}"
    );
}

/// The outcome and SLO verdicts on the gateway span: a failed side call (UNAVAILABLE from the
/// backend: availability bad, and meshgate's span has status ERROR) and a slow POST (over the
/// demo's 300 ms threshold: latency bad, availability good).
#[test]
fn outcome_and_slo_verdicts_are_attributes_of_the_gateway_span() {
    let receiver = OtlpReceiver::start().unwrap();
    let gw = traced_gateway(&receiver, ECHO);
    let failed = "6bf92f3577b34da6a3ce929d0e0e4738";
    let r = curl(
        &[
            "-H",
            &format!("traceparent: 00-{failed}-20f067aa0ba902b7-01"),
            "-H",
            "x-demo-fail: unavailable",
        ],
        &gw.url("/v1/payments/pay_001"),
    )
    .unwrap();
    assert_eq!(r.status, 503, "{r:?}");
    let slow = "7bf92f3577b34da6a3ce929d0e0e4739";
    let r = curl(
        &[
            "-H",
            "content-type: application/json",
            "-H",
            &format!("traceparent: 00-{slow}-30f067aa0ba902b7-01"),
            "-H",
            "x-demo-delay-ms: 450",
            "-d",
            CREATE,
        ],
        &gw.url("/v1/payments"),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");

    let get = "meshgate.demo.v1.Payments.GetPayment";
    let spans = receiver
        .wait_for_trace(failed, FLUSH, |spans| {
            server_span(spans, get).is_some_and(|s| !children(spans, s).is_empty())
        })
        .unwrap();
    let server = server_span(&spans, get).unwrap();
    assert_eq!(server.attribute("meshgate.outcome"), Some("unavailable"));
    assert_eq!(server.attribute("meshgate.slo.availability"), Some("bad"));
    let call = children(&spans, server)[0];
    assert_eq!(call.status, 2, "{call:#?}");
    assert_eq!(call.attribute("rpc.grpc.status_code"), Some("14"));

    let create = "meshgate.demo.v1.Payments.CreatePayment";
    let spans = receiver
        .wait_for_trace(slow, FLUSH, |spans| server_span(spans, create).is_some())
        .unwrap();
    let server = server_span(&spans, create).unwrap();
    assert_eq!(
        server.attribute("meshgate.outcome"),
        Some("ok"),
        "{server:#?}"
    );
    assert_eq!(server.attribute("meshgate.slo.availability"), Some("good"));
    assert_eq!(server.attribute("meshgate.slo.latency"), Some("bad"));
}

/// B3's multi-header form continues the client's trace (Envoy's tracer reads W3C only: the
/// early header mutation `meshgate envoy` renders makes the `traceparent`); a 64-bit trace id
/// is padded; `x-b3-sampled: 0` is not traced.
#[test]
fn b3_headers_continue_the_trace() {
    let receiver = OtlpReceiver::start().unwrap();
    let gw = traced_gateway(&receiver, ECHO);
    let unsampled = "463ac35c9f6413ad48485a3953bb6124";
    let r = curl(
        &[
            "-H",
            &format!("x-b3-traceid: {unsampled}"),
            "-H",
            "x-b3-spanid: a2fb4a1d1a96d312",
            "-H",
            "x-b3-sampled: 0",
        ],
        &gw.url("/v1/payments/pay_001"),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let r = curl(
        &[
            "-H",
            "x-b3-traceid: 80f198ee56343ba8",
            "-H",
            "x-b3-spanid: e457b5a2e4d86bd1",
            "-H",
            "x-b3-sampled: 1",
        ],
        &gw.url("/v1/payments/pay_001"),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let trace = "000000000000000080f198ee56343ba8";
    let op = "meshgate.demo.v1.Payments.GetPayment";
    let spans = receiver
        .wait_for_trace(trace, FLUSH, |spans| {
            server_span(spans, op).is_some_and(|s| !children(spans, s).is_empty())
        })
        .unwrap();
    let server = server_span(&spans, op).unwrap();
    assert_eq!(server.parent_span_id, "e457b5a2e4d86bd1", "{spans:#?}");
    let call = children(&spans, server)[0];
    assert_eq!(
        r.header("x-demo-traceparent"),
        Some(format!("00-{trace}-{}-01", call.span_id).as_str())
    );
    // Sent first, so flushed no later than the sampled trace: none of it was exported.
    let none: Vec<_> = receiver
        .spans()
        .into_iter()
        .filter(|s| s.trace_id == unsampled)
        .collect();
    assert!(none.is_empty(), "{none:#?}");
}

/// The backend's view of the trace context (the demo backend echoes its `traceparent`):
/// (trace id, parent span id, flags).
fn backend_traceparent(r: &meshgate_kit::tls::CurlResponse) -> (String, String, String) {
    let tp = r.header("x-demo-traceparent").unwrap_or_default();
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4, "backend traceparent {tp:?}: {r:?}");
    (parts[1].into(), parts[2].into(), parts[3].into())
}

/// The single `b3` header continues the client's trace like `traceparent` does (Envoy's
/// tracer reads W3C only: the early header mutation `meshgate envoy` renders turns `b3` into
/// a `traceparent` with CEL's regex extension): 128- and 64-bit trace ids (the latter
/// padded), with and without the sampling flag, and the short forms `b3: 0` (not traced: the
/// backend gets an unsampled `traceparent`) and `b3: 1` (traced, a new trace). Random sampling
/// is off here, so whatever is traced was traced because of the client's `b3`.
#[test]
fn the_single_b3_header_continues_the_trace() {
    let receiver = OtlpReceiver::start().unwrap();
    let addr = receiver.addr();
    let gw = fast_flush(GatewayBuilder::demo_with(ECHO))
        .envoy_options(move |o| {
            o.tracing = Some(Tracing {
                collector_address: addr.ip().to_string(),
                collector_port: addr.port(),
                sampling_percent: 0.0,
                service_name: "meshgate-e2e".into(),
            })
        })
        .start()
        .unwrap();
    let get_with = |header: &str| {
        let r = curl(&["-H", header], &gw.url("/v1/payments/pay_001")).unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        r
    };
    let get = |b3: &str| get_with(&format!("b3: {b3}"));
    // Not traced, sent first (flushed no later than the traced ones below).
    let denied = "5c1c2d89a8db4b27b2d9a21e106f21cf";
    let r = get(&format!("{denied}-a2fb4a1d1a96d312-0"));
    let (trace, _, flags) = backend_traceparent(&r);
    assert_eq!((trace.as_str(), flags.as_str()), (denied, "00"), "{r:?}");
    let r = get("0");
    let received = r.header("x-demo-received-headers").unwrap_or_default();
    assert!(!received.contains("x-meshgate-b3-seed"), "{received}");
    let (deny_alone, _, flags) = backend_traceparent(&r);
    assert_eq!(flags, "00", "{r:?}");
    assert_eq!(deny_alone.len(), 32, "{r:?}");
    let r = get("0");
    assert_ne!(
        backend_traceparent(&r).0,
        deny_alone,
        "one trace id per request"
    );

    // Traced: the client's trace and span, sampled by the client (a `traceparent` too: random
    // sampling is off, and Envoy 1.40 does not follow a sampled parent by itself).
    let op = "meshgate.demo.v1.Payments.GetPayment";
    let cases = [
        (
            "traceparent: 00-9bf92f3577b34da6a3ce929d0e0e4740-40f067aa0ba902b7-01",
            "9bf92f3577b34da6a3ce929d0e0e4740",
            "40f067aa0ba902b7",
        ),
        (
            "b3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
            "80f198ee56343ba864fe8b2a57d3eff7",
            "e457b5a2e4d86bd1",
        ),
        (
            "b3: a3ce929d0e0e4736-00f067aa0ba902b7",
            "0000000000000000a3ce929d0e0e4736",
            "00f067aa0ba902b7",
        ),
        (
            "b3: b7ad6b7169203331-0020000000000001-d",
            "0000000000000000b7ad6b7169203331",
            "0020000000000001",
        ),
    ];
    for (b3, trace, parent) in cases {
        let r = get_with(b3);
        let spans = receiver
            .wait_for_trace(trace, FLUSH, |spans| {
                server_span(spans, op).is_some_and(|s| !children(spans, s).is_empty())
            })
            .unwrap_or_else(|e| panic!("{b3}: {e}"));
        let server = server_span(&spans, op).unwrap();
        assert_eq!(server.parent_span_id, parent, "{b3}: {spans:#?}");
        let call = children(&spans, server)[0];
        assert_eq!(
            backend_traceparent(&r),
            (trace.to_string(), call.span_id.clone(), "01".to_string()),
            "{b3}"
        );
    }
    // `b3: 1`: sampled, no ids: a new trace, traced although random sampling is 0.
    let r = get("1");
    let (trace, call_id, flags) = backend_traceparent(&r);
    assert_eq!(flags, "01", "{r:?}");
    let spans = receiver
        .wait_for_trace(&trace, FLUSH, |spans| server_span(spans, op).is_some())
        .unwrap();
    let server = server_span(&spans, op).unwrap();
    assert_eq!(server.parent_span_id, "", "a root span: {spans:#?}");
    assert!(spans.iter().any(|s| s.span_id == call_id), "{spans:#?}");

    let leaked: Vec<_> = receiver
        .spans()
        .into_iter()
        .filter(|s| s.trace_id == denied || s.trace_id == deny_alone)
        .collect();
    assert!(leaked.is_empty(), "{leaked:#?}");
}
