//! Host-side flow of meshgate's own trace work (issue 19): the gateway span's header Envoy
//! sets is read and removed; a side call carries a `traceparent` naming a new child span,
//! whose finished span the root's tick exports to the collector's cluster; an unsampled or
//! untraced request exports nothing; the outcome and SLO verdicts are filter state as soon as
//! the response ends (before the log callback).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::rc::Rc;

use common::{demo_config, find, FakeHost};
use meshgate::filter::{Filter, Scheduler, Vm};
use meshgate::host::{Headers, MapKind};
use meshgate::observe::span_export::{EXPORT_PATH, OTLP_CLUSTER, SPAN_HEADER};
use meshgate::transcode::encode_frame;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const GATEWAY_SPAN: &str = "00f067aa0ba902b7";

/// The demo's configuration as `meshgate envoy --otlp` renders it (`tracing.spans`).
fn traced_config() -> meshgate::config::Config {
    let mut c = demo_config();
    c.spans = true;
    c
}

fn get_payment(extra: &[(&str, &str)]) -> FakeHost {
    FakeHost::with_request("GET", "/v1/payments/pay_001", extra)
}

fn reply() -> (Headers, Vec<u8>, Headers) {
    let mut m = vec![0x0a, 5];
    m.extend(b"pay_1");
    (
        vec![
            (":status".into(), "200".into()),
            ("content-type".into(), "application/grpc".into()),
        ],
        encode_frame(&m),
        vec![("grpc-status".into(), "0".into())],
    )
}

/// The root's calls to the collector (a tick also starts the demo's JWKS fetches).
fn exports(root: &FakeHost) -> Vec<&(String, Headers, Vec<u8>)> {
    root.http_calls
        .iter()
        .filter(|(cluster, _, _)| cluster == OTLP_CLUSTER)
        .collect()
}

/// The side call's `traceparent`, after the request went through `f`.
fn side_call(f: &mut Filter, h: &mut FakeHost) -> Headers {
    f.on_request_headers(h, true);
    assert_eq!(h.http_calls.len(), 1, "a GET is a side call");
    h.http_calls[0].1.clone()
}

#[test]
fn a_side_call_gets_a_child_span_of_the_gateway_span_and_the_tick_exports_it() {
    let vm = Rc::new(Vm::new(traced_config()));
    let scheduler = Scheduler::new(vm.clone());
    let mut f = Filter::new(vm.clone(), 7);
    let span_header = format!("{TRACE}-{GATEWAY_SPAN}-meshgate-test");
    let client_tp = format!("00-{TRACE}-1111111111111111-01");
    let mut h = get_payment(&[("traceparent", &client_tp), (SPAN_HEADER, &span_header)]);
    let headers = side_call(&mut f, &mut h);
    // Nobody else's business: gone from the request and from the call.
    assert_eq!(h.get(MapKind::RequestHeaders, SPAN_HEADER), None);
    assert_eq!(find(&headers, SPAN_HEADER), None);
    let tp = find(&headers, "traceparent").unwrap();
    assert_eq!(
        headers.iter().filter(|(k, _)| k == "traceparent").count(),
        1
    );
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!((parts[0], parts[1], parts[3]), ("00", TRACE, "01"), "{tp}");
    let child = parts[2].to_string();
    assert!(child != GATEWAY_SPAN && child != "1111111111111111", "{tp}");

    let (rh, body, rt) = reply();
    f.on_side_call_response(&mut h, &rh, &body, &rt);
    assert!(h.local_reply.is_some());
    assert_eq!(vm.spans.borrow().len(), 1);

    let mut root = FakeHost::default();
    scheduler.on_tick(&mut root);
    let exports = exports(&root);
    assert_eq!(exports.len(), 1);
    let (_, headers, frame) = exports[0];
    assert_eq!(find(headers, ":path").as_deref(), Some(EXPORT_PATH));
    assert_eq!(frame[0], 0, "one uncompressed gRPC message");
    let has = |bytes: &[u8]| frame.windows(bytes.len()).any(|w| w == bytes);
    let unhex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    assert!(has(&unhex(TRACE)));
    assert!(has(&unhex(GATEWAY_SPAN)), "the parent");
    assert!(has(&unhex(&child)), "the span the backend was told");
    assert!(has(b"meshgate-test"), "the service name");
    assert!(has(b"payments upstream"));
    assert!(vm.spans.borrow().is_empty());
    // Nothing left: the next tick sends nothing.
    scheduler.on_tick(&mut root);
    assert_eq!(self::exports(&root).len(), 1);
}

#[test]
fn an_unsampled_or_untraced_request_exports_nothing() {
    let vm = Rc::new(Vm::new(traced_config()));
    let span_header = format!("{TRACE}-{GATEWAY_SPAN}-m");
    let unsampled = format!("00-{TRACE}-1111111111111111-00");
    let mut h = get_payment(&[("traceparent", &unsampled), (SPAN_HEADER, &span_header)]);
    let mut f = Filter::new(vm.clone(), 8);
    let headers = side_call(&mut f, &mut h);
    // The trace goes on, unsampled, under meshgate's span.
    let tp = find(&headers, "traceparent").unwrap();
    assert!(
        tp.starts_with(&format!("00-{TRACE}-")) && tp.ends_with("-00"),
        "{tp}"
    );
    let (rh, body, rt) = reply();
    f.on_side_call_response(&mut h, &rh, &body, &rt);
    assert!(vm.spans.borrow().is_empty());

    // No span header (no --otlp, Istio): the client's traceparent goes on untouched.
    let client_tp = format!("00-{TRACE}-1111111111111111-01");
    let mut h = get_payment(&[("traceparent", &client_tp)]);
    let mut f = Filter::new(vm.clone(), 9);
    let headers = side_call(&mut f, &mut h);
    assert_eq!(find(&headers, "traceparent"), Some(client_tp));
    f.on_side_call_response(&mut h, &rh, &body, &rt);
    assert!(vm.spans.borrow().is_empty());
    let mut root = FakeHost::default();
    Scheduler::new(vm).on_tick(&mut root);
    assert!(exports(&root).is_empty());
}

#[test]
fn the_outcome_and_verdicts_are_filter_state_when_the_response_ends() {
    let vm = Rc::new(Vm::new(traced_config()));
    let span_header = format!("{TRACE}-{GATEWAY_SPAN}-m");
    let mut h = get_payment(&[(SPAN_HEADER, &span_header), ("x-demo", "1")]);
    let mut f = Filter::new(vm, 10);
    side_call(&mut f, &mut h);
    let failed = (
        vec![
            (":status".to_string(), "200".to_string()),
            ("content-type".to_string(), "application/grpc".to_string()),
        ],
        Vec::new(),
        vec![("grpc-status".to_string(), "14".to_string())],
    );
    f.on_side_call_response(&mut h, &failed.0, &failed.1, &failed.2);
    assert_eq!(
        h.properties.get("meshgate.outcome"),
        None,
        "not before it ends"
    );
    // The gateway's reply passes the response callbacks: its end is the response's.
    h.set_response_headers(&[(":status", "503"), ("content-type", "application/json")]);
    f.on_response_headers(&mut h, false);
    f.on_response_body(&mut h, 10, true);
    let prop = |h: &FakeHost, k: &str| String::from_utf8(h.properties[k].clone()).unwrap();
    assert_eq!(prop(&h, "meshgate.outcome"), "unavailable");
    assert_eq!(prop(&h, "meshgate.slo.availability"), "bad");

    // Without the span header (no tracing), nothing is written before the log.
    let mut h = get_payment(&[]);
    let mut f = Filter::new(Rc::new(Vm::new(traced_config())), 11);
    side_call(&mut f, &mut h);
    f.on_side_call_response(&mut h, &failed.0, &failed.1, &failed.2);
    h.set_response_headers(&[(":status", "503")]);
    f.on_response_headers(&mut h, true);
    assert_eq!(h.properties.get("meshgate.outcome"), None);
}

/// Without tracing (no `--otlp`: `tracing.spans` off) the span header can only be a client's:
/// it is removed, and makes no span, no export and no `traceparent` of meshgate's.
#[test]
fn a_clients_span_header_without_tracing_makes_no_span() {
    let vm = Rc::new(Vm::new(demo_config()));
    assert!(!vm.config.spans);
    let forged = format!("{TRACE}-{GATEWAY_SPAN}-forged");
    let client_tp = format!("00-{TRACE}-1111111111111111-01");
    let mut h = get_payment(&[("traceparent", &client_tp), (SPAN_HEADER, &forged)]);
    let mut f = Filter::new(vm.clone(), 10);
    let headers = side_call(&mut f, &mut h);
    assert_eq!(h.get(MapKind::RequestHeaders, SPAN_HEADER), None);
    assert_eq!(find(&headers, SPAN_HEADER), None);
    assert_eq!(find(&headers, "traceparent"), Some(client_tp));
    let (rh, body, rt) = reply();
    f.on_side_call_response(&mut h, &rh, &body, &rt);
    assert!(vm.spans.borrow().is_empty());
    let mut root = FakeHost::default();
    Scheduler::new(vm).on_tick(&mut root);
    assert!(exports(&root).is_empty());
}
