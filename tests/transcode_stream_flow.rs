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
    assert_eq!(end, r#",{"error":{"code":14,"message":"gone"}}]"#);
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

/// HttpBody { content_type, data } in binary, framed.
fn http_body(content_type: &str, data: &str) -> Vec<u8> {
    let mut m = vec![0x0a, content_type.len() as u8];
    m.extend(content_type.as_bytes());
    m.extend([0x12, data.len() as u8]);
    m.extend(data.as_bytes());
    encode_frame(&m)
}

#[test]
fn router_http_body_stream_is_the_raw_chunks_under_the_first_content_type() {
    let yaml = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy/gateway.yaml"),
    )
    .unwrap();
    let cfg = common::compile_yaml(&yaml);
    let mut f = Filter::new(Rc::new(Vm::new(cfg)), 9);
    let mut h = FakeHost::with_request(
        "POST",
        "/v1/merchants/acme/payments:export",
        &[("content-type", "application/json")],
    );
    assert_eq!(f.on_request_headers(&mut h, false).action, Action::Pause);
    h.request_body = br#"{"chunks":1}"#.to_vec();
    let n = h.request_body.len();
    assert_eq!(f.on_request_body(&mut h, n, true).action, Action::Continue);
    h.maps.insert("response_headers", grpc_headers());
    assert_eq!(f.on_response_headers(&mut h, false).action, Action::Pause);
    // Half of the first message: nothing to send yet, and no content type known.
    let first = http_body("text/html", "<h1>Hello!</h1>");
    h.response_body = first[..6].to_vec();
    assert_eq!(f.on_response_body(&mut h, 6, false).action, Action::Pause);
    assert!(h.response_body.is_empty() && !f.wants_flush());
    // The buffer was replaced by what is held (nothing): it holds only what arrives next.
    h.response_body = first[6..].to_vec();
    let n = h.response_body.len();
    assert_eq!(f.on_response_body(&mut h, n, false).action, Action::Pause);
    assert_eq!(h.response_body, b"<h1>Hello!</h1>");
    assert_eq!(
        h.get(MapKind::ResponseHeaders, "content-type").as_deref(),
        Some("text/html")
    );
    f.on_flush(&mut h);
    h.response_body = http_body("text/plain", "Hello!");
    let n = h.response_body.len();
    assert_eq!(f.on_response_body(&mut h, n, false).action, Action::Pause);
    assert_eq!(h.response_body, b"Hello!");
    f.on_flush(&mut h);
    h.response_body.clear();
    h.maps.insert(
        "response_trailers",
        vec![("grpc-status".into(), "14".into())],
    );
    assert_eq!(f.on_response_trailers(&mut h).action, Action::Pause);
    assert!(h.response_body.is_empty(), "no JSON error in a raw body");
    assert!(h.logged("HttpBody stream ended early").is_some());
    assert_eq!(
        h.get(MapKind::ResponseHeaders, "content-type").as_deref(),
        Some("text/html")
    );
}

/// The side-call stream's content type with this `Accept` under this configuration.
fn streamed_content_type(cfg: meshgate::config::Config, accept: Option<&str>) -> String {
    let mut f = Filter::new(Rc::new(Vm::new(cfg)), 10);
    let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
    let mut h = FakeHost::with_request("GET", "/v1/merchants/acme/payments:watch", &headers);
    f.on_request_headers(&mut h, true);
    let trailers = vec![("grpc-status".to_string(), "0".to_string())];
    f.on_side_call_response(&mut h, &grpc_headers(), &event("p1", 1), &trailers);
    let (_, headers, _) = h.local_reply.clone().unwrap();
    common::find(&headers, "content-type").unwrap()
}

#[test]
fn the_stream_format_is_the_accepted_one_else_the_operations_else_the_default() {
    let base = common::demo_yaml();
    let by_op = base.clone()
        + "operations:\n  meshgate.demo.v1.Payments.WatchPayments: {stream_format: sse}\n";
    let plain = || common::compile_yaml(&base);
    let sse = || common::compile_yaml(&by_op);
    assert_eq!(streamed_content_type(plain(), None), "application/json");
    assert_eq!(streamed_content_type(sse(), None), "text/event-stream");
    assert_eq!(
        streamed_content_type(sse(), Some("*/*")),
        "text/event-stream"
    );
    assert_eq!(
        streamed_content_type(sse(), Some("application/x-ndjson")),
        "application/x-ndjson"
    );
    assert_eq!(
        streamed_content_type(plain(), Some("text/event-stream")),
        "text/event-stream"
    );
    assert_eq!(
        streamed_content_type(sse(), Some("application/json")),
        "application/json"
    );
}

#[test]
fn a_stream_format_on_a_unary_method_is_refused() {
    let yaml = common::demo_yaml()
        + "operations:\n  meshgate.demo.v1.Payments.GetPayment: {stream_format: ndjson}\n";
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let yaml = yaml.replace(
        "include: [../proto]",
        &format!("include: [{}]", root.join("proto").display()),
    );
    let dir = std::env::temp_dir().join(format!("meshgate-stream-unary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, yaml).unwrap();
    let err = meshgate::cli::compile_file(&path).unwrap_err().to_string();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        err.contains("operations.meshgate.demo.v1.Payments.GetPayment.stream_format"),
        "{err}"
    );
    assert!(err.contains("only a server-streaming method"), "{err}");
}

/// The demo gateway with `edit` applied to its YAML document, compiled.
fn edited(
    edit: impl FnOnce(&mut serde_yaml_ng::Value),
) -> Result<meshgate::config::Config, String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let yaml = common::demo_yaml().replace(
        "include: [../proto]",
        &format!("include: [{}]", root.join("proto").display()),
    );
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    edit(&mut doc);
    let yaml = serde_yaml_ng::to_string(&doc).unwrap();
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "meshgate-stream-timeout-{}-{n}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, yaml).unwrap();
    let json = meshgate::cli::compile_file(&path).map_err(|e| e.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    meshgate::config::compile_json(json?.as_bytes()).map_err(|e| e.to_string())
}

/// The timeout of the side call a body-less GET makes.
fn get_side_call_timeout(cfg: meshgate::config::Config, path: &str) -> std::time::Duration {
    let mut f = Filter::new(Rc::new(Vm::new(cfg)), 10);
    let mut h = FakeHost::with_request("GET", path, &[]);
    f.on_request_headers(&mut h, true);
    assert_eq!(h.http_call_timeouts.len(), 1, "{:?}", h.local_reply);
    h.http_call_timeouts[0]
}

/// A streaming GET binding goes as a side call: bounded by `transcoding.stream_timeout_ms`
/// (5 minutes by default) or the operation's `stream_timeout_ms`, not by the upstream's
/// `timeout_ms` (15 s by default), which still bounds unary side calls.
#[test]
fn a_streaming_side_call_has_its_own_timeout() {
    use std::time::Duration;
    let watch = "/v1/merchants/acme/payments:watch";
    let unary = "/v1/payments/pay_001";
    let set_upstream = |doc: &mut serde_yaml_ng::Value| {
        doc["upstreams"]["payments"]["timeout_ms"] = serde_yaml_ng::Value::from(2500);
    };
    let cfg = || edited(set_upstream).unwrap();
    assert_eq!(
        get_side_call_timeout(cfg(), watch),
        Duration::from_secs(300)
    );
    assert_eq!(
        get_side_call_timeout(cfg(), unary),
        Duration::from_millis(2500)
    );
    let global = || {
        edited(|doc| {
            set_upstream(doc);
            doc["transcoding"]["stream_timeout_ms"] = serde_yaml_ng::Value::from(40_000);
        })
        .unwrap()
    };
    assert_eq!(
        get_side_call_timeout(global(), watch),
        Duration::from_secs(40)
    );
    assert_eq!(
        get_side_call_timeout(global(), unary),
        Duration::from_millis(2500)
    );
    let by_op = edited(|doc| {
        doc["transcoding"]["stream_timeout_ms"] = serde_yaml_ng::Value::from(40_000);
        doc["operations"]["meshgate.demo.v1.Payments.WatchPayments"]["stream_timeout_ms"] =
            serde_yaml_ng::Value::from(60_000);
    })
    .unwrap();
    assert_eq!(get_side_call_timeout(by_op, watch), Duration::from_secs(60));
}

#[test]
fn a_stream_timeout_on_a_unary_method_or_of_zero_is_refused() {
    let err = edited(|doc| {
        doc["operations"]["meshgate.demo.v1.Payments.GetPayment"]["stream_timeout_ms"] =
            serde_yaml_ng::Value::from(60_000);
    })
    .err()
    .unwrap();
    assert!(
        err.contains("operations.meshgate.demo.v1.Payments.GetPayment.stream_timeout_ms"),
        "{err}"
    );
    let err = edited(|doc| {
        doc["transcoding"]["stream_timeout_ms"] = serde_yaml_ng::Value::from(0);
    })
    .err()
    .unwrap();
    assert!(err.contains("transcoding.stream_timeout_ms"), "{err}");
}
