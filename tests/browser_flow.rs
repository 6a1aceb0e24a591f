//! Host-side browser requests: a CORS preflight is recorded and counted as such (outcome
//! `preflight`, no objective), whether Envoy's CORS filter answered it (meshgate sees it only
//! in its log callback) or it reached meshgate (refused with a Status, no auth); a gRPC-Web
//! call says so in its record. End to end: `tests/kit/tests/e2e_browser.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::rc::Rc;

use common::{demo_config, FakeHost};
use meshgate::filter::{Filter, Vm};
use meshgate::observe::RequestMetric;
use serde_json::Value;

fn int(n: i64) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}

fn record(h: &FakeHost) -> Value {
    let line = h.properties.get("meshgate.record").expect("record set");
    serde_json::from_slice(line).expect("record is JSON")
}

const CREATE: &str = "meshgate.demo.v1.Payments.CreatePayment";

fn preflight_headers() -> FakeHost {
    FakeHost::with_request(
        "OPTIONS",
        "/v1/payments",
        &[
            ("origin", "http://127.0.0.1:8088"),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
        ],
    )
    .with_property("response.code", &int(200))
}

#[test]
fn a_preflight_envoy_answered_is_recorded_from_the_log_phase() {
    let vm = Rc::new(Vm::new(demo_config()));
    let mut f = Filter::new(vm.clone(), 3);
    let mut h = preflight_headers();
    // Envoy's CORS filter answered: no request callback ran, only the log callback.
    f.on_log(&mut h);
    let r = record(&h);
    assert_eq!(r["outcome"], "preflight");
    assert_eq!(r["clientProtocol"], "cors-preflight");
    assert_eq!(r["operation"], CREATE);
    assert_eq!(r["httpRequest"]["requestMethod"], "OPTIONS");
    assert_eq!(r["httpRequest"]["status"], 200);
    assert_eq!(r["slo"]["availability"], "n/a");
    assert_eq!(r["slo"]["latency"], "n/a");
    let names = &vm.config.observe.names;
    assert_eq!(h.counter(&names.requests(CREATE, "preflight")), 1);
    // Outside the operation's objective.
    for kind in [
        RequestMetric::SloEvents(meshgate::observe::SloKind::Availability),
        RequestMetric::SloEvents(meshgate::observe::SloKind::Latency),
    ] {
        assert_eq!(h.counter(&names.request_metric_name(CREATE, None, kind)), 0);
    }
}

#[test]
fn a_preflight_that_reaches_meshgate_is_refused_without_auth() {
    let vm = Rc::new(Vm::new(demo_config()));
    let mut f = Filter::new(vm.clone(), 4);
    let mut h = preflight_headers().with_property("response.code", &int(403));
    f.on_request_headers(&mut h, true);
    let (status, body) = h.reply_json();
    assert_eq!(status, 403);
    assert_eq!(body["code"], 7);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("http://127.0.0.1:8088"));
    f.on_log(&mut h);
    let r = record(&h);
    assert_eq!(r["outcome"], "preflight");
    assert_eq!(r["httpRequest"]["status"], 403);
    let names = &vm.config.observe.names;
    assert_eq!(h.counter(&names.requests(CREATE, "preflight")), 1);
}

#[test]
fn a_preflight_for_no_operation_is_counted_as_unmatched() {
    let vm = Rc::new(Vm::new(demo_config()));
    let mut f = Filter::new(vm.clone(), 5);
    let mut h = FakeHost::with_request(
        "OPTIONS",
        "/no/such",
        &[
            ("origin", "http://127.0.0.1:8088"),
            ("access-control-request-method", "GET"),
        ],
    );
    f.on_log(&mut h);
    assert!(record(&h).get("operation").is_none());
    let names = &vm.config.observe.names;
    assert_eq!(
        h.counter(&names.requests(meshgate::observe::UNMATCHED_OPERATION, "preflight")),
        1
    );
}

#[test]
fn an_unseen_request_that_is_no_preflight_keeps_the_usual_record() {
    let vm = Rc::new(Vm::new(demo_config()));
    let mut f = Filter::new(vm, 6);
    let mut h = FakeHost::with_request("GET", "/v1/payments/p1", &[("origin", "http://a.b")]);
    f.on_log(&mut h);
    assert_ne!(record(&h)["outcome"], "preflight");
}

#[test]
fn a_grpc_web_call_says_so_in_its_record() {
    for (extra, expected) in [
        (
            vec![(
                "x-meshgate-client-content-type",
                "application/grpc-web-text",
            )],
            "grpc-web",
        ),
        (vec![("x-grpc-web", "1")], "grpc-web"),
        (vec![], "grpc"),
    ] {
        let vm = Rc::new(Vm::new(demo_config()));
        let mut f = Filter::new(vm, 7);
        let mut headers = vec![("content-type", "application/grpc")];
        headers.extend(extra);
        let mut h =
            FakeHost::with_request("POST", "/meshgate.demo.v1.Payments/GetPayment", &headers)
                .with_property("response.code", &int(200))
                .with_property("response.grpc_status", &int(0));
        f.on_request_headers(&mut h, false);
        assert!(h.local_reply.is_none());
        // The marker never reaches the upstream.
        assert_eq!(
            h.get(
                meshgate::host::MapKind::RequestHeaders,
                "x-meshgate-client-content-type"
            ),
            None
        );
        f.on_log(&mut h);
        let r = record(&h);
        assert_eq!(r["clientProtocol"], expected);
        assert_eq!(r["operation"], "meshgate.demo.v1.Payments.GetPayment");
        assert_eq!(r["outcome"], "ok");
    }
}
