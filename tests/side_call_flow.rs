//! Host-side flow of `transcoding.upstream_calls: side_call` (the mode Istio's WasmPlugin
//! needs, where a filter cannot hold headers and still see the body): the request headers go on
//! at once, rewritten to the gRPC call's; the body is collected and sent as a side call to the
//! upstream's cluster with its timeout; the reply comes back whole as a local reply; a router
//! answer to the data-less stream is turned into a Status error and a late side call reply is
//! dropped.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::rc::Rc;
use std::time::Duration;

use common::FakeHost;
use meshgate::filter::{Filter, Vm};
use meshgate::host::{Action, Headers, MapKind};
use meshgate::transcode::encode_frame;

/// The demo gateway with `upstream_calls` and the payments upstream's timeout set.
fn config(upstream_calls: &str) -> meshgate::config::Config {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = std::fs::read_to_string(root.join("envoy/gateway.yaml")).unwrap();
    let yaml = base
        .replace(
            "include: [../proto]",
            &format!("include: [{}]", root.join("proto").display()),
        )
        .replace(
            "transcoding:\n",
            &format!("transcoding:\n  upstream_calls: {upstream_calls}\n"),
        );
    assert!(
        yaml.contains("upstream_calls"),
        "the demo has a transcoding section"
    );
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    doc["upstreams"]["payments"]["timeout_ms"] = serde_yaml_ng::Value::from(2500);
    // One file per call: the tests run in parallel threads, and a shared path could be read
    // while another test rewrites it.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "meshgate-side-call-flow-{}-{upstream_calls}-{n}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
    let json = meshgate::cli::compile_file(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    meshgate::config::compile_json(json.as_bytes()).unwrap()
}

/// A POST of a new payment, as a JSON client sends it.
fn create_payment(h: &mut FakeHost) {
    *h = FakeHost::with_request(
        "POST",
        "/v1/payments?request_id=r-1",
        &[
            ("content-type", "application/json"),
            ("content-length", "40"),
            ("x-client", "acme"),
        ],
    );
}

fn payment_reply() -> Vec<u8> {
    // Payment { id: "pay_9", merchant: "acme" }
    let mut m = vec![0x0a, 5];
    m.extend(b"pay_9");
    m.extend([0x12, 4]);
    m.extend(b"acme");
    encode_frame(&m)
}

/// Response headers and trailers of a successful gRPC call.
fn grpc_ok() -> (Headers, Headers) {
    (
        vec![
            (":status".into(), "200".into()),
            ("content-type".into(), "application/grpc".into()),
        ],
        vec![("grpc-status".into(), "0".into())],
    )
}

#[test]
fn headers_go_on_rewritten_and_the_body_goes_as_a_side_call() {
    let vm = Rc::new(Vm::new(config("side_call")));
    let mut f = Filter::new(vm, 3);
    let mut h = FakeHost::default();
    create_payment(&mut h);

    // Headers are not held: they go on as the gRPC call's.
    assert_eq!(f.on_request_headers(&mut h, false).action, Action::Continue);
    let get = |h: &FakeHost, n: &str| h.get(MapKind::RequestHeaders, n);
    assert_eq!(
        get(&h, ":path").as_deref(),
        Some("/meshgate.demo.v1.Payments/CreatePayment")
    );
    assert_eq!(get(&h, "content-type").as_deref(), Some("application/grpc"));
    assert_eq!(get(&h, "content-length"), None);
    assert!(h.http_calls.is_empty(), "no call before the body");

    // The body is collected, then sent as one side call.
    h.request_body = br#"{"merchant":"#.to_vec();
    let n = h.request_body.len();
    assert_eq!(f.on_request_body(&mut h, n, false).action, Action::Pause);
    h.request_body.extend(br#""acme"}"#);
    let n = h.request_body.len();
    assert_eq!(f.on_request_body(&mut h, n, true).action, Action::Pause);
    assert_eq!(h.http_calls.len(), 1);
    let (cluster, headers, frame) = &h.http_calls[0];
    assert_eq!(cluster, "payments");
    assert_eq!(h.http_call_timeouts[0], Duration::from_millis(2500));
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        header(":path"),
        Some("/meshgate.demo.v1.Payments/CreatePayment")
    );
    assert_eq!(header("content-type"), Some("application/grpc"));
    assert_eq!(header("x-client"), Some("acme"), "client headers forwarded");
    assert_eq!(
        header("x-envoy-original-path"),
        Some("/v1/payments?request_id=r-1")
    );
    assert_eq!(header("x-envoy-original-method"), Some("POST"));
    assert_eq!(
        headers.iter().filter(|(k, _)| k == "content-type").count(),
        1,
        "{headers:?}"
    );
    // The frame holds the body (payment.merchant) and the query (request_id).
    assert_eq!(frame[0], 0, "uncompressed gRPC frame");
    let len = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
    assert_eq!(len + 5, frame.len());
    let msg = &frame[5..];
    assert!(msg.windows(4).any(|w| w == b"acme"), "{msg:?}");
    assert!(msg.windows(3).any(|w| w == b"r-1"), "{msg:?}");

    // The reply comes back whole and leaves as a local reply.
    let (rh, rt) = grpc_ok();
    f.on_side_call_response(&mut h, &rh, &payment_reply(), &rt);
    let (status, body) = h.reply_json();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], "pay_9");
    assert_eq!(body["merchant"], "acme");
}

#[test]
fn a_router_failure_on_the_data_less_stream_answers_and_the_late_side_call_is_dropped() {
    let vm = Rc::new(Vm::new(config("side_call")));
    let mut f = Filter::new(vm, 4);
    let mut h = FakeHost::default();
    create_payment(&mut h);
    assert_eq!(f.on_request_headers(&mut h, false).action, Action::Continue);
    h.request_body = br#"{"merchant":"acme"}"#.to_vec();
    let n = h.request_body.len();
    assert_eq!(f.on_request_body(&mut h, n, true).action, Action::Pause);

    // Envoy's router gives up on the stream the headers opened (no healthy upstream).
    h.maps.insert(
        "response_headers",
        vec![
            (":status".into(), "503".into()),
            ("content-type".into(), "text/plain".into()),
        ],
    );
    assert_eq!(f.on_response_headers(&mut h, false).action, Action::Pause);
    let (status, body) = h.reply_json();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], 14, "UNAVAILABLE: {body}");

    // The side call's answer arrives afterwards: the client was answered already.
    let first = h.local_reply.clone();
    let (rh, rt) = grpc_ok();
    f.on_side_call_response(&mut h, &rh, &payment_reply(), &rt);
    assert_eq!(h.local_reply, first, "one answer only");
}

#[test]
fn router_mode_holds_the_headers_until_the_body_is_converted() {
    let vm = Rc::new(Vm::new(config("router")));
    let mut f = Filter::new(vm, 5);
    let mut h = FakeHost::default();
    create_payment(&mut h);
    assert_eq!(f.on_request_headers(&mut h, false).action, Action::Pause);
    assert_eq!(
        h.get(MapKind::RequestHeaders, ":path").as_deref(),
        Some("/v1/payments?request_id=r-1")
    );
    h.request_body = br#"{"merchant":"acme"}"#.to_vec();
    let n = h.request_body.len();
    assert_eq!(f.on_request_body(&mut h, n, true).action, Action::Continue);
    assert!(h.http_calls.is_empty(), "through the router");
    assert_eq!(
        h.get(MapKind::RequestHeaders, ":path").as_deref(),
        Some("/meshgate.demo.v1.Payments/CreatePayment")
    );
    assert_eq!(h.request_body[0], 0, "the body is now a gRPC frame");
}

#[test]
fn a_body_less_call_uses_the_upstreams_timeout_in_either_mode() {
    for mode in ["router", "side_call"] {
        let vm = Rc::new(Vm::new(config(mode)));
        let mut f = Filter::new(vm, 6);
        let mut h = FakeHost::with_request("GET", "/v1/payments/pay_001", &[]);
        assert_eq!(
            f.on_request_headers(&mut h, true).action,
            Action::Pause,
            "{mode}"
        );
        assert_eq!(h.http_calls.len(), 1, "{mode}");
        assert_eq!(
            h.http_call_timeouts[0],
            Duration::from_millis(2500),
            "{mode}"
        );
    }
}

#[test]
fn unknown_upstream_calls_and_a_zero_timeout_are_refused_with_the_field_named() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = std::fs::read_to_string(root.join("envoy/gateway.yaml")).unwrap();
    let base = base.replace(
        "include: [../proto]",
        &format!("include: [{}]", root.join("proto").display()),
    );
    let dir = std::env::temp_dir().join(format!("meshgate-side-call-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad_mode = base.replace("transcoding:\n", "transcoding:\n  upstream_calls: direct\n");
    let path = dir.join("bad-mode.yaml");
    std::fs::write(&path, bad_mode).unwrap();
    let err = meshgate::cli::compile_file(&path).unwrap_err().to_string();
    assert!(err.contains("transcoding.upstream_calls"), "{err}");

    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&base).unwrap();
    doc["upstreams"]["payments"]["timeout_ms"] = serde_yaml_ng::Value::from(0);
    let path = dir.join("bad-timeout.yaml");
    std::fs::write(&path, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
    let err = meshgate::cli::compile_file(&path).unwrap_err().to_string();
    assert!(err.contains("upstreams.payments.timeout_ms"), "{err}");
}

#[test]
fn a_side_call_without_an_answer_is_a_timeout_once_its_time_is_up() {
    let start = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    for (waited_ms, status, code) in [(2500, 504, 4), (2600, 504, 4), (300, 503, 14)] {
        let vm = Rc::new(Vm::new(config("router")));
        let mut f = Filter::new(vm, 8);
        let mut h = FakeHost::with_request("GET", "/v1/payments/pay_001", &[]);
        h.now = Some(start);
        assert_eq!(f.on_request_headers(&mut h, true).action, Action::Pause);
        h.now = Some(start + Duration::from_millis(waited_ms));
        f.on_side_call_response(&mut h, &[], &[], &[]);
        let (got, body) = h.reply_json();
        assert_eq!(got, status, "after {waited_ms} ms: {body}");
        assert_eq!(body["code"], code, "after {waited_ms} ms: {body}");
    }
}

#[test]
fn envoys_unavailable_for_a_side_call_out_of_time_is_a_timeout() {
    let start = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let unavailable = vec![
        (":status".to_string(), "200".to_string()),
        ("content-type".to_string(), "application/grpc".to_string()),
        ("grpc-status".to_string(), "14".to_string()),
        (
            "grpc-message".to_string(),
            "upstream request timeout".to_string(),
        ),
    ];
    for (waited_ms, status, code) in [(2500, 504, 4), (100, 503, 14)] {
        let vm = Rc::new(Vm::new(config("router")));
        let mut f = Filter::new(vm, 9);
        let mut h = FakeHost::with_request("GET", "/v1/payments/pay_001", &[]);
        h.now = Some(start);
        assert_eq!(f.on_request_headers(&mut h, true).action, Action::Pause);
        h.now = Some(start + Duration::from_millis(waited_ms));
        f.on_side_call_response(&mut h, &unavailable, &[], &[]);
        let (got, body) = h.reply_json();
        assert_eq!(got, status, "after {waited_ms} ms: {body}");
        assert_eq!(body["code"], code, "after {waited_ms} ms: {body}");
    }
}
