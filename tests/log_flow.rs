//! Host-side `on_log`: one access record per request (to the proxy's log and, as filter
//! state, to Envoy's access log) and its metrics (requests by outcome, SLO events, latency),
//! for a request the upstream answered and one the gateway refused itself. End to end:
//! `tests/kit/tests/e2e_slo.rs`.
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
use meshgate::host::Level;
use meshgate::observe::RequestMetric;
use serde_json::Value;

const OP: &str = "meshgate.demo.v1.Payments.GetPayment";

/// Envoy's integer properties: 8 little-endian bytes.
fn int(n: i64) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}

fn record(h: &FakeHost) -> Value {
    let line = h.properties.get("meshgate.record").expect("record set");
    serde_json::from_slice(line).expect("record is JSON")
}

fn requests(vm: &Vm, h: &FakeHost, outcome: &'static str) -> i64 {
    let names = &vm.config.observe.names;
    h.counter(&names.request_metric_name(OP, None, RequestMetric::Requests(outcome)))
}

#[test]
fn an_answered_call_is_logged_once_with_its_slo_verdicts_and_counted() {
    let vm = Rc::new(Vm::new(demo_config()));
    let mut f = Filter::new(vm.clone(), 5);
    let mut h = FakeHost::with_request(
        "POST",
        "/meshgate.demo.v1.Payments/GetPayment",
        &[
            ("content-type", "application/grpc"),
            ("x-request-id", "req-1"),
            ("user-agent", "grpc-test/1"),
        ],
    )
    .with_property("response.code", &int(200))
    .with_property("response.grpc_status", &int(0))
    .with_property("request.duration", &int(12_000_000))
    .with_property("source.address", b"10.0.0.7:5555");
    f.on_request_headers(&mut h, false);
    assert!(h.local_reply.is_none());
    f.on_log(&mut h);
    f.on_log(&mut h);

    let r = record(&h);
    assert_eq!(r["operation"], OP);
    assert_eq!(r["upstream"], "payments");
    assert_eq!(r["requestId"], "req-1");
    assert_eq!(r["outcome"], "ok");
    assert_eq!(r["grpcStatus"], "OK");
    assert_eq!(r["severity"], "INFO");
    assert_eq!(r["httpRequest"]["status"], 200);
    assert_eq!(r["httpRequest"]["latency"], "0.012s");
    assert_eq!(r["httpRequest"]["remoteIp"], "10.0.0.7");
    assert_eq!(r["httpRequest"]["userAgent"], "grpc-test/1");
    assert_eq!(r["slo"]["availability"], "good");
    assert_eq!(r["slo"]["latency"], "good");
    let lines = h.logs.borrow();
    let access: Vec<_> = lines
        .iter()
        .filter(|(l, m)| *l == Level::Info && m.contains("\"httpRequest\""))
        .collect();
    assert_eq!(
        access.len(),
        1,
        "one access line, however often on_log runs"
    );
    drop(lines);
    assert_eq!(requests(&vm, &h, "ok"), 1, "counted once");
    let names = &vm.config.observe.names;
    let histogram = names.request_metric_name(OP, None, RequestMetric::Duration);
    assert_eq!(h.counter(&histogram), 12, "latency recorded in ms");
}

#[test]
fn a_refusal_of_the_gateway_is_logged_with_its_status_and_counted_by_outcome() {
    let vm = Rc::new(Vm::new(demo_config()));
    let mut f = Filter::new(vm.clone(), 6);
    // An unknown method of a known service's path shape: no operation.
    let mut h = FakeHost::with_request("GET", "/v1/nothing-here", &[]);
    f.on_request_headers(&mut h, true);
    let (status, body) = h.reply_json();
    assert_eq!((status, body["code"].as_i64()), (404, Some(5)), "{body}");
    f.on_log(&mut h);
    let r = record(&h);
    assert_eq!(r["httpRequest"]["status"], 404);
    assert_eq!(r["outcome"], "not_found");
    assert_eq!(r["severity"], "WARNING");
    assert!(r.get("operation").is_none(), "no operation: {r}");

    // A transcoded call whose body is not JSON: the gateway's 400, counted for the operation.
    let mut f = Filter::new(vm.clone(), 7);
    let mut h = FakeHost::with_request(
        "POST",
        "/v1/payments",
        &[("content-type", "application/json")],
    );
    f.on_request_headers(&mut h, false);
    h.request_body = b"{not json".to_vec();
    f.on_request_body(&mut h, 9, true);
    let (status, _) = h.reply_json();
    assert_eq!(status, 400);
    f.on_log(&mut h);
    let r = record(&h);
    assert_eq!(r["operation"], "meshgate.demo.v1.Payments.CreatePayment");
    assert_eq!(r["outcome"], "invalid_argument");
    let names = &vm.config.observe.names;
    let counter = names.request_metric_name(
        "meshgate.demo.v1.Payments.CreatePayment",
        None,
        RequestMetric::Requests("invalid_argument"),
    );
    assert_eq!(h.counter(&counter), 1);
}

/// A client that gives up on a slow call: Envoy sent no status and ended the stream on the
/// client's disconnect. Logged as load balancers log it (499, CANCELLED), counted as
/// `cancelled`, and latency-bad because it was given up after the threshold (300 ms).
#[test]
fn a_call_abandoned_after_the_threshold_is_cancelled_and_slow() {
    let vm = Rc::new(Vm::new(demo_config()));
    let mut f = Filter::new(vm.clone(), 5);
    let mut h = FakeHost::with_request(
        "POST",
        "/meshgate.demo.v1.Payments/GetPayment",
        &[("content-type", "application/grpc")],
    )
    .with_property("response.code", &int(0))
    .with_property("response.code_details", b"downstream_remote_disconnect")
    .with_property("request.duration", &int(800_000_000));
    f.on_request_headers(&mut h, false);
    f.on_log(&mut h);
    let r = record(&h);
    assert_eq!(r["httpRequest"]["status"], 499);
    assert_eq!(r["grpcStatus"], "CANCELLED");
    assert_eq!(r["outcome"], "cancelled");
    assert_eq!(r["slo"]["availability"], "n/a");
    assert_eq!(r["slo"]["latency"], "bad");
    assert_eq!(requests(&vm, &h, "cancelled"), 1);
    assert_eq!(requests(&vm, &h, "none"), 0);
}

/// A path no operation matches is still counted, under the `_unmatched` operation label; a
/// request Envoy's codec refused (meshgate never saw its headers) too, with its HTTP class
/// and no gRPC status made up from Envoy's mapping of its HTTP status.
#[test]
fn requests_without_an_operation_are_counted_as_unmatched() {
    let vm = Rc::new(Vm::new(demo_config()));
    let names = vm.config.observe.names.clone();
    let unmatched = |outcome: &str| names.requests(meshgate::observe::UNMATCHED_OPERATION, outcome);

    let mut f = Filter::new(vm.clone(), 5);
    let mut h = FakeHost::with_request("GET", "/no/such/path", &[])
        .with_property("response.code", &int(404));
    f.on_request_headers(&mut h, true);
    f.on_log(&mut h);
    assert_eq!(record(&h)["outcome"], "not_found");
    assert_eq!(h.counter(&unmatched("not_found")), 1);
    // Judged by the default objective's availability: a 404 is the client's doing.
    assert_eq!(record(&h)["slo"]["availability"], "good");
    let avail = meshgate::observe::SloKind::Availability;
    let unmatched_op = meshgate::observe::UNMATCHED_OPERATION;
    assert_eq!(h.counter(&names.slo_events(unmatched_op, avail, None)), 1);
    assert_eq!(
        h.counter(&names.slo_good_events(unmatched_op, avail, None)),
        1
    );

    let mut refused = Filter::new(vm.clone(), 7);
    let (avail, unmatched_op) = (
        meshgate::observe::SloKind::Availability,
        meshgate::observe::UNMATCHED_OPERATION,
    );
    let mut h = FakeHost::new()
        .with_property("response.code", &int(431))
        .with_property("response.grpc_status", &int(13))
        .with_property("response.code_details", b"http1.headers_too_large");
    refused.on_log(&mut h);
    let r = record(&h);
    assert_eq!(r["httpRequest"]["status"], 431);
    assert_eq!(r["outcome"], "4xx");
    assert!(r.get("grpcStatus").is_none(), "{r}");
    assert_eq!(h.counter(&unmatched("4xx")), 1);

    // A 5xx Envoy made before meshgate saw the headers (the overload manager's 503): bad.
    // (A fresh VM: the VM caches metric ids, which each fake host numbers anew.)
    let mut overload = Filter::new(Rc::new(Vm::new(demo_config())), 9);
    let mut h = FakeHost::new()
        .with_property("response.code", &int(503))
        .with_property("response.code_details", b"overload");
    overload.on_log(&mut h);
    assert_eq!(record(&h)["slo"]["availability"], "bad");
    assert_eq!(h.counter(&names.slo_events(unmatched_op, avail, None)), 1);
    assert_eq!(
        h.counter(&names.slo_good_events(unmatched_op, avail, None)),
        0
    );
}

/// `_unmatched` is the label of requests without an operation: no REST operation may take it.
#[test]
fn the_unmatched_label_is_not_an_operation_name() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let yaml = std::fs::read_to_string(root.join("envoy/gateway-policies.yaml"))
        .unwrap()
        .replace("name: legacy.Documents", "name: _unmatched")
        .replace(
            "include: [../proto]",
            &format!("include: [{}]", root.join("proto").display()),
        );
    assert!(yaml.contains("name: _unmatched"));
    let dir = std::env::temp_dir().join(format!("meshgate-unmatched-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, yaml).unwrap();
    let err = meshgate::cli::compile_file(&path).unwrap_err().to_string();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(err.contains("reserved"), "{err}");
}
