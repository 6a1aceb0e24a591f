//! Host-side limits through the filter: request headers over `limits.max_header_bytes` (431),
//! a request body over `max_request_bytes` (413, whether it crosses the limit in a chunk or at
//! its end; a body at the limit passes), a reply over `max_response_bytes` through the router
//! or as a side call (500 INTERNAL; the side call's body is never copied into the VM). Every
//! refusal is a `google.rpc.Status` body. End to end: `tests/kit/tests/e2e_reliability.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::rc::Rc;

use common::{compile_yaml, demo_yaml, gateway_json, FakeHost};
use meshgate::filter::{Filter, Scheduler, Vm};
use meshgate::host::Action;

fn limited(limits: &str) -> String {
    let yaml = format!("{}\nlimits: {limits}\n", demo_yaml());
    yaml
}

fn filter(limits: &str) -> Filter {
    Filter::new(Rc::new(Vm::new(compile_yaml(&limited(limits)))), 1)
}

fn create_payment() -> FakeHost {
    FakeHost::with_request(
        "POST",
        "/v1/payments",
        &[("content-type", "application/json")],
    )
}

#[test]
fn headers_over_the_limit_are_refused_with_431() {
    let mut f = filter("{max_header_bytes: 512}");
    let mut h = FakeHost::with_request(
        "GET",
        "/v1/payments/pay_001",
        &[("x-big", &"a".repeat(600))],
    );
    assert_eq!(f.on_request_headers(&mut h, true).action, Action::Pause);
    let (status, body) = h.reply_json();
    assert_eq!(status, 431, "{body}");
    assert_eq!(body["code"], 8, "RESOURCE_EXHAUSTED: {body}");
    assert_eq!(
        body["message"],
        "request headers are larger than the limit of 512 bytes"
    );
    assert!(h.http_calls.is_empty());

    // Just under the limit: no refusal.
    let mut f = filter("{max_header_bytes: 512}");
    let mut h = FakeHost::with_request(
        "GET",
        "/v1/payments/pay_001",
        &[("x-big", &"a".repeat(300))],
    );
    f.on_request_headers(&mut h, true);
    assert!(h.local_reply.is_none(), "{:?}", h.local_reply);
}

#[test]
fn a_body_over_the_limit_is_refused_with_413_in_a_chunk_or_at_its_end() {
    for eos in [false, true] {
        let mut f = filter("{max_request_bytes: 64}");
        let mut h = create_payment();
        assert_eq!(f.on_request_headers(&mut h, false).action, Action::Pause);
        h.request_body = format!(r#"{{"merchant":"{}"}}"#, "m".repeat(80)).into_bytes();
        let n = h.request_body.len();
        assert_eq!(f.on_request_body(&mut h, n, eos).action, Action::Pause);
        let (status, body) = h.reply_json();
        assert_eq!(status, 413, "eos {eos}: {body}");
        assert_eq!(body["code"], 8, "eos {eos}: {body}");
        assert_eq!(
            body["message"], "request body is larger than the limit of 64 bytes",
            "eos {eos}"
        );
    }
}

#[test]
fn a_body_at_the_limit_is_transcoded() {
    let mut f = filter("{max_request_bytes: 64}");
    let mut h = create_payment();
    f.on_request_headers(&mut h, false);
    let body = format!(r#"{{"merchant":"{}"}}"#, "m".repeat(64 - 15));
    assert_eq!(body.len(), 64);
    h.request_body = body.into_bytes();
    assert_eq!(f.on_request_body(&mut h, 64, true).action, Action::Continue);
    assert!(h.local_reply.is_none(), "{:?}", h.local_reply);
    assert_eq!(h.request_body[0], 0, "a gRPC frame");
}

#[test]
fn a_reply_over_the_limit_through_the_router_is_an_internal_error() {
    let mut f = filter("{max_response_bytes: 64}");
    let mut h = create_payment();
    f.on_request_headers(&mut h, false);
    h.request_body = br#"{"merchant":"acme"}"#.to_vec();
    let n = h.request_body.len();
    assert_eq!(f.on_request_body(&mut h, n, true).action, Action::Continue);
    h.set_response_headers(&[(":status", "200"), ("content-type", "application/grpc")]);
    assert_eq!(f.on_response_headers(&mut h, false).action, Action::Pause);
    h.response_body = vec![0; 65];
    assert_eq!(f.on_response_body(&mut h, 65, false).action, Action::Pause);
    let (status, body) = h.reply_json();
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["code"], 13, "INTERNAL: {body}");
    assert_eq!(
        body["message"],
        "the upstream's reply is larger than the limit of 64 bytes"
    );
}

#[test]
fn a_side_call_reply_over_the_limit_is_refused_unread() {
    let mut h = FakeHost::with_request("GET", "/v1/payments/pay_001", &[]);
    let json = gateway_json(&limited("{max_response_bytes: 64}"));
    let s = Scheduler::configure(&mut h, json.as_bytes()).unwrap();
    let stream = s.stream(2);
    assert_eq!(stream.on_request_headers(&mut h, true), Action::Pause);
    // The side call (the demo's issuer has its JWKS fetched too, through its own cluster).
    let side_calls = h
        .http_calls
        .iter()
        .filter(|(cluster, _, _)| cluster != "outbound|8090||127.0.0.1")
        .count();
    assert_eq!(side_calls, 1, "the side call");
    h = h.with_call_reply(
        &[(":status", "200"), ("content-type", "application/grpc")],
        &[0; 65],
    );
    stream.on_http_call_response(&mut h, 1, 2, 65);
    assert_eq!(h.call_body_reads.get(), 0, "never copied into the VM");
    let (status, body) = h.reply_json();
    assert_eq!((status, body["code"].as_i64()), (500, Some(13)), "{body}");

    // At the limit, the reply is read and rendered.
    let mut h = FakeHost::with_request("GET", "/v1/payments/pay_001", &[]);
    let s = Scheduler::configure(&mut h, json.as_bytes()).unwrap();
    let stream = s.stream(3);
    stream.on_request_headers(&mut h, true);
    let mut msg = vec![0x0a, 7];
    msg.extend(b"pay_001");
    let frame = meshgate::transcode::encode_frame(&msg);
    h.call_reply = (
        common::pairs(&[(":status", "200"), ("content-type", "application/grpc")]),
        frame.clone(),
        common::pairs(&[("grpc-status", "0")]),
    );
    stream.on_http_call_response(&mut h, 1, 2, frame.len());
    assert_eq!(h.call_body_reads.get(), 1);
    let (status, body) = h.reply_json();
    assert_eq!((status, &body["id"]), (200, &serde_json::json!("pay_001")));
}
