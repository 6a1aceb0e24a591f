//! Host-side flow of a transcoded call on a proxy that lets the filter append a body to a
//! body-less request (the native module: `Host::can_append_request_body`): every transcoded
//! call goes through Envoy's router. A GET gets its gRPC frame appended in the request headers
//! callback (or, after a wait for keys, from the root), a server stream is forwarded message by
//! message, `upstream_calls: side_call` does not apply, and the access record and metrics are
//! the side call's. The same requests on Proxy-Wasm (the capability off) still make side calls.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{demo_config, demo_yaml, gateway_json, hs256, pairs, FakeHost};
use meshgate::filter::{Filter, Phase, Scheduler, Then, Vm};
use meshgate::host::{Action, MapKind};
use meshgate::transcode::encode_frame;
use serde_json::{json, Value};

const GET_PAYMENT: &str = "meshgate.demo.v1.Payments.GetPayment";

/// Envoy's integer properties: 8 little-endian bytes.
fn int(n: i64) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}

/// A JSON client's `GET /v1/payments/pay_001`, on the native module (`native`) or Proxy-Wasm.
fn get_payment(native: bool) -> FakeHost {
    let mut h = FakeHost::with_request(
        "GET",
        "/v1/payments/pay_001",
        &[("accept", "application/json"), ("x-client", "acme")],
    )
    .with_property("response.code", &int(200))
    .with_property("response.grpc_status", &int(0))
    .with_property("request.duration", &int(12_000_000));
    h.appends_request_body = native;
    h
}

/// `Payment { id: "pay_001" }`, framed.
fn payment_frame() -> Vec<u8> {
    let mut msg = vec![0x0a, 7];
    msg.extend(b"pay_001");
    encode_frame(&msg)
}

fn grpc_headers() -> Vec<(String, String)> {
    pairs(&[(":status", "200"), ("content-type", "application/grpc")])
}

/// The upstream's unary reply through the router: headers, one data chunk, trailers.
fn router_reply(f: &mut Filter, h: &mut FakeHost) {
    h.maps.insert("response_headers", grpc_headers());
    assert_eq!(f.on_response_headers(h, false).action, Action::Pause);
    h.response_body = payment_frame();
    let n = h.response_body.len();
    assert_eq!(f.on_response_body(h, n, false).action, Action::Pause);
    h.maps
        .insert("response_trailers", pairs(&[("grpc-status", "0")]));
    assert_eq!(f.on_response_trailers(h).action, Action::Continue);
}

#[test]
fn a_body_less_get_gets_its_frame_appended_and_goes_through_the_router() {
    let vm = Rc::new(Vm::new(demo_config()));
    let mut f = Filter::new(vm, 3);
    let mut h = get_payment(true);

    // The request ended with its headers: the frame is appended there and the call goes on.
    let step = f.on_request_headers(&mut h, true);
    assert_eq!(
        step,
        meshgate::filter::Step {
            action: Action::Continue,
            then: Then::Nothing
        }
    );
    assert!(h.http_calls.is_empty(), "no side call: {:?}", h.http_calls);
    assert_eq!(*f.phase(), Phase::Upstream);
    assert_eq!(
        h.request_body,
        payment_frame(),
        "the request message, framed"
    );
    let get = |n: &str| h.get(MapKind::RequestHeaders, n);
    assert_eq!(
        get(":path").as_deref(),
        Some("/meshgate.demo.v1.Payments/GetPayment")
    );
    assert_eq!(get(":method").as_deref(), Some("POST"));
    assert_eq!(get("content-type").as_deref(), Some("application/grpc"));
    assert_eq!(get("te").as_deref(), Some("trailers"));
    assert_eq!(get("x-envoy-original-method").as_deref(), Some("GET"));
    assert_eq!(
        get("x-client").as_deref(),
        Some("acme"),
        "client headers stay"
    );

    // The reply comes back through the router and is converted in place.
    router_reply(&mut f, &mut h);
    assert!(h.local_reply.is_none(), "{:?}", h.local_reply);
    let body: Value = serde_json::from_slice(&h.response_body).unwrap();
    assert_eq!(body, json!({"id": "pay_001"}));
    assert_eq!(
        h.get(MapKind::ResponseHeaders, "content-type").as_deref(),
        Some("application/json")
    );
}

#[test]
fn on_proxy_wasm_the_same_get_is_a_side_call_as_before() {
    let vm = Rc::new(Vm::new(demo_config()));
    let mut f = Filter::new(vm, 4);
    let mut h = get_payment(false);
    let step = f.on_request_headers(&mut h, true);
    assert_eq!(
        step,
        meshgate::filter::Step {
            action: Action::Pause,
            then: Then::CallReply(1)
        }
    );
    assert_eq!(h.http_calls.len(), 1);
    assert_eq!(h.http_calls[0].0, "payments");
    assert_eq!(h.http_calls[0].2, payment_frame());
    assert!(h.request_body.is_empty(), "nothing appended");
    assert_eq!(
        h.get(MapKind::RequestHeaders, ":path").as_deref(),
        Some("/v1/payments/pay_001"),
        "the request headers are not rewritten"
    );
    assert!(matches!(f.phase(), Phase::SideCall { .. }));
}

#[test]
fn an_empty_final_body_chunk_gets_the_frame_in_the_body_callback() {
    // An HTTP/2 GET whose end comes as an empty DATA frame: the headers did not end the
    // request, so the frame goes into the (empty) body at its end.
    let vm = Rc::new(Vm::new(demo_config()));
    let mut f = Filter::new(vm, 5);
    let mut h = get_payment(true);
    assert_eq!(f.on_request_headers(&mut h, false).action, Action::Pause);
    assert_eq!(f.on_request_body(&mut h, 0, true).action, Action::Continue);
    assert!(h.http_calls.is_empty());
    assert_eq!(h.request_body, payment_frame());
    assert_eq!(*f.phase(), Phase::Upstream);
}

#[test]
fn a_server_streaming_get_is_forwarded_message_by_message() {
    let vm = Rc::new(Vm::new(demo_config()));
    let mut f = Filter::new(vm, 6);
    let mut h = FakeHost::with_request("GET", "/v1/merchants/acme/payments:watch", &[]);
    h.appends_request_body = true;
    assert_eq!(f.on_request_headers(&mut h, true).action, Action::Continue);
    assert!(h.http_calls.is_empty());
    assert_eq!(
        h.get(MapKind::RequestHeaders, ":path").as_deref(),
        Some("/meshgate.demo.v1.Payments/WatchPayments")
    );
    // WatchPaymentsRequest { parent: "merchants/acme" }
    let mut msg = vec![0x0a, 14];
    msg.extend(b"merchants/acme");
    assert_eq!(h.request_body, encode_frame(&msg));

    h.maps.insert("response_headers", grpc_headers());
    assert_eq!(f.on_response_headers(&mut h, false).action, Action::Pause);
    // The first message is rendered as it arrives and held for the next tick.
    h.response_body = encode_frame(&[]);
    let n = h.response_body.len();
    let step = f.on_response_body(&mut h, n, false);
    assert_eq!(step.action, Action::Pause);
    assert_eq!(step.then, Then::Flush, "released by the next tick");
    assert_eq!(String::from_utf8_lossy(&h.response_body), "[{}");
    f.on_flush(&mut h);
    assert_eq!(h.responses_resumed, 1);
}

/// The demo gateway with `transcoding.upstream_calls: side_call` (what Istio's WasmPlugin gets).
fn side_call_config() -> meshgate::config::Config {
    let yaml = demo_yaml().replace(
        "transcoding:\n",
        "transcoding:\n  upstream_calls: side_call\n",
    );
    assert!(yaml.contains("upstream_calls: side_call"));
    meshgate::config::compile_json(gateway_json(&yaml).as_bytes()).unwrap()
}

#[test]
fn upstream_calls_side_call_does_not_apply_where_a_body_can_be_appended() {
    let vm = Rc::new(Vm::new(side_call_config()));
    for native in [true, false] {
        let mut f = Filter::new(vm.clone(), 7);
        let mut h = FakeHost::with_request(
            "POST",
            "/v1/payments",
            &[("content-type", "application/json")],
        );
        h.appends_request_body = native;
        let headers = f.on_request_headers(&mut h, false).action;
        h.request_body = br#"{"merchant":"acme"}"#.to_vec();
        let n = h.request_body.len();
        let body = f.on_request_body(&mut h, n, true).action;
        if native {
            // Headers held until the body is converted, then the call goes on: the router's.
            assert_eq!((headers, body), (Action::Pause, Action::Continue));
            assert!(h.http_calls.is_empty());
            assert!(h.request_body.starts_with(&[0, 0, 0, 0]), "a gRPC frame");
        } else {
            // Proxy-Wasm under Istio: headers go on at once, the body as a side call.
            assert_eq!((headers, body), (Action::Continue, Action::Pause));
            assert_eq!(h.http_calls.len(), 1);
        }
    }
}

#[test]
fn the_server_span_is_named_after_the_operation_once() {
    for native in [true, false] {
        let vm = Rc::new(Vm::new(demo_config()));
        let mut f = Filter::new(vm, 8);
        let mut h = get_payment(native);
        f.on_request_headers(&mut h, true);
        assert_eq!(h.span_operations, [GET_PAYMENT], "native: {native}");
    }
    // No operation, no name.
    let vm = Rc::new(Vm::new(demo_config()));
    let mut f = Filter::new(vm, 9);
    let mut h = FakeHost::with_request("GET", "/no/such/path", &[]);
    h.appends_request_body = true;
    f.on_request_headers(&mut h, true);
    assert!(h.span_operations.is_empty());
}

/// The access record and the metrics of one answered GET.
fn answered_get(native: bool) -> (Value, HashMap<String, i64>) {
    let vm = Rc::new(Vm::new(demo_config()));
    let mut f = Filter::new(vm, 10);
    let mut h = get_payment(native);
    f.on_request_headers(&mut h, true);
    if native {
        router_reply(&mut f, &mut h);
    } else {
        let trailers = pairs(&[("grpc-status", "0")]);
        f.on_side_call_response(&mut h, &grpc_headers(), &payment_frame(), &trailers);
        assert_eq!(h.reply_json().1, json!({"id": "pay_001"}));
    }
    f.on_log(&mut h);
    let record = serde_json::from_slice(&h.properties["meshgate.record"]).unwrap();
    let metrics = h.metrics.borrow().clone();
    (record, metrics)
}

#[test]
fn the_record_and_metrics_of_a_routed_get_are_the_side_calls() {
    let (routed, routed_metrics) = answered_get(true);
    let (side, side_metrics) = answered_get(false);
    assert_eq!(routed["operation"], GET_PAYMENT);
    assert_eq!(routed["outcome"], "ok");
    assert_eq!(routed, side);
    assert!(!routed_metrics.is_empty());
    assert_eq!(routed_metrics, side_metrics);
}

/// 2027-01-15: the fake host's clock.
fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

const KEY: &[u8] = b"meshgate-native-flow-key-0123456";

/// The demo with Payments behind provider `corp`, whose keys come from cluster `idp`.
fn remote_keys_gateway() -> String {
    let yaml = demo_yaml().replace(
        "  meshgate.demo.v1.Payments:\n    upstream: payments\n    auth: none",
        "  meshgate.demo.v1.Payments:\n    upstream: payments\n    auth: {provider: corp}",
    );
    let (head, tail) = yaml.split_once("  providers:\n").unwrap();
    let (_, rest) = tail.split_once("  api_keys:").unwrap();
    let remote = "{remote: {uri: 'https://idp.test/jwks', cluster: idp, timeout_ms: 800, initial_fetch_wait_ms: 1000, allow_symmetric_keys: true}}";
    let yaml = format!(
        "{head}  providers:\n    - name: corp\n      issuer: https://idp.test/\n      audiences: [payments]\n      jwks: {remote}\n  api_keys:{rest}"
    )
    .replace("{auth: {provider: demo}}", "{auth: {provider: corp}}");
    gateway_json(&yaml)
}

#[test]
fn a_get_that_waited_for_keys_gets_its_frame_appended_from_the_root() {
    let claims = json!({"iss": "https://idp.test/", "aud": "payments", "sub": "alice", "exp": 1_800_003_600u64});
    let token = hs256::token(KEY, "k1", &claims);
    let mut h = FakeHost::with_request(
        "GET",
        "/v1/payments/pay_001",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .at(start());
    h.appends_request_body = true;
    let s = Scheduler::configure(&mut h, remote_keys_gateway().as_bytes()).unwrap();
    assert_eq!(h.http_calls.len(), 1, "the JWKS fetch");
    let stream = s.stream(11);
    assert_eq!(stream.on_request_headers(&mut h, true), Action::Pause);
    assert_eq!(s.pending().0, 1, "waits for keys");

    let jwks = json!({"keys": [hs256::jwk(KEY, "k1")]}).to_string();
    h.call_reply = (
        pairs(&[(":status", "200")]),
        jwks.clone().into_bytes(),
        Vec::new(),
    );
    s.on_http_call_response(&mut h, 1, 1, jwks.len());
    assert_eq!(h.http_calls.len(), 1, "no side call once the keys came");
    assert_eq!(h.resumed, vec![Some(11)], "resumed in its own context");
    assert_eq!(h.request_body, payment_frame());
    assert_eq!(
        h.get(MapKind::RequestHeaders, ":path").as_deref(),
        Some("/meshgate.demo.v1.Payments/GetPayment")
    );
    assert_eq!(*stream.filter().borrow().phase(), Phase::Upstream);
}

/// A native GET through the router with an Origin, its request done: what the response
/// callbacks see next is up to the test.
fn routed_get_with_origin(adds_response_body: bool) -> (Filter, FakeHost) {
    let mut f = Filter::new(Rc::new(Vm::new(demo_config())), 11);
    let mut h = FakeHost::with_request(
        "GET",
        "/v1/payments/nope",
        &[("origin", "http://127.0.0.1:8088")],
    );
    h.appends_request_body = true;
    h.adds_response_body = adds_response_body;
    assert_eq!(f.on_request_headers(&mut h, true).action, Action::Continue);
    (f, h)
}

fn assert_rendered_in_place(h: &FakeHost, status: &str, code: i64) {
    assert!(h.local_reply.is_none(), "{:?}", h.local_reply);
    let get = |n: &str| h.get(MapKind::ResponseHeaders, n);
    assert_eq!(get(":status").as_deref(), Some(status));
    assert_eq!(get("content-type").as_deref(), Some("application/json"));
    assert_eq!(
        get("content-length"),
        Some(h.response_body.len().to_string())
    );
    for name in ["grpc-status", "grpc-message"] {
        assert_eq!(get(name), None, "{name}");
    }
    // Envoy's CORS filter runs on it: meshgate adds no CORS header of its own.
    assert_eq!(get("access-control-allow-origin"), None);
    let body: Value = serde_json::from_slice(&h.response_body).unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert!(h.maps.get("response_trailers").is_none_or(|t| t.is_empty()));
}

#[test]
fn a_trailers_only_error_is_rendered_in_place_where_a_response_body_can_be_added() {
    let (mut f, mut h) = routed_get_with_origin(true);
    h.maps.insert(
        "response_headers",
        pairs(&[
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", "5"),
            ("grpc-message", "payment%20nope%20not%20found"),
        ]),
    );
    assert_eq!(f.on_response_headers(&mut h, true).action, Action::Continue);
    assert_rendered_in_place(&h, "404", 5);
    let body: Value = serde_json::from_slice(&h.response_body).unwrap();
    assert_eq!(body["message"], "payment nope not found");

    // Proxy-Wasm: a local reply, with the CORS headers Envoy's filter cannot add to it.
    let (mut f, mut h) = routed_get_with_origin(false);
    h.maps.insert(
        "response_headers",
        pairs(&[
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", "5"),
        ]),
    );
    assert_eq!(f.on_response_headers(&mut h, true).action, Action::Pause);
    let (status, headers, _) = h.local_reply.as_ref().expect("a local reply");
    assert_eq!(*status, 404);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "access-control-allow-origin" && v == "http://127.0.0.1:8088"));
}

#[test]
fn headers_and_trailers_without_data_are_rendered_in_place_where_a_response_body_can_be_added() {
    let (mut f, mut h) = routed_get_with_origin(true);
    h.maps.insert("response_headers", grpc_headers());
    assert_eq!(f.on_response_headers(&mut h, false).action, Action::Pause);
    h.maps.insert(
        "response_trailers",
        pairs(&[("grpc-status", "5"), ("grpc-message", "gone")]),
    );
    assert_eq!(f.on_response_trailers(&mut h).action, Action::Continue);
    assert_rendered_in_place(&h, "404", 5);
}

#[test]
fn a_router_error_ending_on_its_headers_is_rendered_in_place_where_a_response_body_can_be_added() {
    let (mut f, mut h) = routed_get_with_origin(true);
    h.maps.insert(
        "response_headers",
        pairs(&[(":status", "503"), ("content-type", "text/plain")]),
    );
    assert_eq!(f.on_response_headers(&mut h, true).action, Action::Continue);
    assert_rendered_in_place(&h, "503", 14);
}
