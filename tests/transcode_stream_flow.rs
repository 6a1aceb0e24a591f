//! Host-side flow of a server stream through the filter (fake proxy): chunks rendered in place
//! and held, released by `on_flush`, closing bytes and the terminal error written at the
//! trailers, `grpc-*` trailers removed; and a side call's whole stream.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::rc::Rc;

use common::FakeHost;
use meshgate::filter::{Filter, Vm};
use meshgate::host::{Action, MapKind};
use meshgate::transcode::encode_frame;

/// PaymentEvent { payment_id: id, sequence: seq } in binary.
fn event(id: &str, seq: u8) -> Vec<u8> {
    let mut m = vec![0x0a, id.len() as u8];
    m.extend(id.as_bytes());
    m.extend([0x20, seq]);
    encode_frame(&m)
}

fn config(format: &str) -> meshgate::config::Config {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = std::fs::read_to_string(root.join("envoy/gateway.yaml")).unwrap();
    let yaml = base.replace(
        "include: [../proto]",
        &format!("include: [{}]", root.join("proto").display()),
    );
    // The demo has an `operations` section already: the extra binding is merged into it.
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    doc["operations"]["meshgate.demo.v1.Payments.WatchPayments"] = serde_yaml_ng::from_str(
        "http:\n  - post: \"/v1/{parent=merchants/*}/payments:watch\"\n    body: \"*\"\n",
    )
    .unwrap();
    doc["transcoding"]["stream_format"] = serde_yaml_ng::Value::from(format);
    let yaml = serde_yaml_ng::to_string(&doc).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "meshgate-stream-flow-{}-{format}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, yaml).unwrap();
    let json = meshgate::cli::compile_file(&path).unwrap();
    meshgate::config::compile_json(json.as_bytes()).unwrap()
}

fn grpc_headers() -> Vec<(String, String)> {
    vec![
        (":status".into(), "200".into()),
        ("content-type".into(), "application/grpc".into()),
    ]
}

#[test]
fn router_stream_is_rendered_per_chunk_held_and_closed_at_the_trailers() {
    let vm = Rc::new(Vm::new(config("json_array")));
    let mut f = Filter::new(vm, 7);
    let mut h = FakeHost::with_request(
        "POST",
        "/v1/merchants/acme/payments:watch",
        &[("content-type", "application/json")],
    );
    assert_eq!(f.on_request_headers(&mut h, false).action, Action::Pause);
    h.request_body = br#"{"maxEvents":2}"#.to_vec();
    let n = h.request_body.len();
    assert_eq!(f.on_request_body(&mut h, n, true).action, Action::Continue);
    assert_eq!(
        h.get(MapKind::RequestHeaders, ":path").as_deref(),
        Some("/meshgate.demo.v1.Payments/WatchPayments")
    );

    h.maps.insert("response_headers", grpc_headers());
    assert_eq!(f.on_response_headers(&mut h, false).action, Action::Pause);
    // The first message and half of the second arrive.
    let second = event("p2", 2);
    h.response_body = event("p1", 1);
    h.response_body.extend(&second[..4]);
    let n = h.response_body.len();
    assert_eq!(f.on_response_body(&mut h, n, false).action, Action::Pause);
    let first = String::from_utf8(h.response_body.clone()).unwrap();
    assert_eq!(first, r#"[{"paymentId":"p1","sequence":"1"}"#);
    assert_eq!(
        h.get(MapKind::ResponseHeaders, "content-type").as_deref(),
        Some("application/json")
    );
    assert!(f.wants_flush());
    f.on_flush(&mut h);
    assert!(!f.wants_flush());
    // Envoy sent the held bytes; the buffer now holds only what arrives next.
    h.response_body = second[4..].to_vec();
    let n = h.response_body.len();
    assert_eq!(f.on_response_body(&mut h, n, false).action, Action::Pause);
    assert_eq!(
        String::from_utf8(h.response_body.clone()).unwrap(),
        r#",{"paymentId":"p2","sequence":"2"}"#
    );
    f.on_flush(&mut h);
    h.response_body.clear();
    h.maps.insert(
        "response_trailers",
        vec![
            ("grpc-status".into(), "14".into()),
            ("grpc-message".into(), "gone".into()),
        ],
    );
    assert_eq!(f.on_response_trailers(&mut h).action, Action::Pause);
    let end = String::from_utf8(h.response_body.clone()).unwrap();
    assert_eq!(
        end,
        r#",{"error":{"code":14,"details":[],"message":"gone"}}]"#
    );
    assert!(
        h.maps["response_trailers"].is_empty(),
        "grpc-* trailers removed"
    );
    assert!(f.wants_flush(), "the end waits for the next tick");
    assert!(h.local_reply.is_none());
}

#[test]
fn side_call_stream_is_answered_whole_in_the_configured_format() {
    let vm = Rc::new(Vm::new(config("ndjson")));
    let mut f = Filter::new(vm, 8);
    let mut h = FakeHost::with_request("GET", "/v1/merchants/acme/payments:watch?maxEvents=2", &[]);
    assert_eq!(f.on_request_headers(&mut h, true).action, Action::Pause);
    assert_eq!(h.http_calls.len(), 1, "sent as a side call");
    let mut body = event("p1", 1);
    body.extend(event("p2", 2));
    let trailers = vec![("grpc-status".to_string(), "0".to_string())];
    f.on_side_call_response(&mut h, &grpc_headers(), &body, &trailers);
    let (status, headers, body) = h.local_reply.clone().unwrap();
    assert_eq!(status, 200);
    assert!(headers.contains(&("content-type".into(), "application/x-ndjson".into())));
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "{\"paymentId\":\"p1\",\"sequence\":\"1\"}\n{\"paymentId\":\"p2\",\"sequence\":\"2\"}\n"
    );
}

#[test]
fn side_call_stream_failing_before_any_message_is_an_http_error() {
    let vm = Rc::new(Vm::new(config("sse")));
    let mut f = Filter::new(vm, 9);
    let mut h = FakeHost::with_request("GET", "/v1/merchants/acme/payments:watch", &[]);
    f.on_request_headers(&mut h, true);
    let trailers = vec![("grpc-status".to_string(), "7".to_string())];
    f.on_side_call_response(&mut h, &grpc_headers(), &[], &trailers);
    let (status, json) = h.reply_json();
    assert_eq!(status, 403);
    assert_eq!(json["code"], 7);
}
