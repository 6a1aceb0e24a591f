//! Host-side flows of issue 21's transcoding fidelity (fake proxy): each `transcoding` option
//! changes what the filter does (the gRPC request a side call carries, the error bodies the
//! client gets), each proven off and on; `grpc-status-details-bin` as the source of truth.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::rc::Rc;

use common::{compile_yaml, demo_yaml, FakeHost};
use meshgate::filter::{Filter, Vm};
use meshgate::host::Action;

/// The demo gateway with `lines` added under `transcoding:`.
fn with_transcoding(lines: &str) -> meshgate::config::Config {
    let yaml = demo_yaml().replace("transcoding:\n", &format!("transcoding:\n{lines}"));
    compile_yaml(&yaml)
}

/// The gRPC frame of the side call a body-less request makes (or the local reply's JSON).
fn side_call_frame(cfg: meshgate::config::Config, path: &str) -> Result<Vec<u8>, String> {
    let mut f = Filter::new(Rc::new(Vm::new(cfg)), 1);
    let mut h = FakeHost::with_request("GET", path, &[]);
    f.on_request_headers(&mut h, true);
    match h.http_calls.first() {
        Some((_, _, frame)) => Ok(frame.clone()),
        None => Err(h.reply_json().1.to_string()),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn plus_in_the_query_stays_a_plus_unless_query_param_unescape_plus() {
    let path = "/v1/payments/pay_001/receipt?format=a+b%2Bc";
    let frame = side_call_frame(with_transcoding(""), path).unwrap();
    assert!(contains(&frame, b"a+b+c"), "{frame:?}");
    let frame = side_call_frame(
        with_transcoding("  query_param_unescape_plus: true\n"),
        path,
    )
    .unwrap();
    assert!(contains(&frame, b"a b+c"), "{frame:?}");
    assert!(!contains(&frame, b"a+b"), "{frame:?}");
}

/// The local reply's JSON body, as bytes.
fn error_body(cfg: meshgate::config::Config, path: &str) -> String {
    let mut f = Filter::new(Rc::new(Vm::new(cfg)), 1);
    let mut h = FakeHost::with_request("GET", path, &[]);
    f.on_request_headers(&mut h, true);
    let (_, _, body) = h.local_reply.clone().expect("a local reply");
    String::from_utf8(body).unwrap()
}

#[test]
fn empty_details_are_printed_only_with_always_print_primitive_fields() {
    let body = error_body(with_transcoding(""), "/no/such/path");
    assert!(body.starts_with(r#"{"code":5,"message":"#), "{body}");
    assert!(!body.contains("details"), "{body}");
    let always =
        "  print_options:\n    always_print_primitive_fields: true\n    add_whitespace: true\n";
    let yaml = demo_yaml().replace(
        "  print_options:\n    always_print_primitive_fields: false\n",
        always,
    );
    let body = error_body(compile_yaml(&yaml), "/no/such/path");
    assert!(
        body.starts_with("{\n \"code\": 5,\n \"details\": [],\n"),
        "{body}"
    );
}

#[test]
fn ignored_query_parameters_are_dropped_before_the_query_fills_the_message() {
    let path = "/v1/payments/pay_001/receipt?format=text&key=k-1&access_token=t";
    let err = side_call_frame(with_transcoding(""), path).unwrap_err();
    assert!(err.contains("unknown query parameter"), "{err}");
    let cfg = with_transcoding("  ignored_query_parameters: [key, access_token]\n");
    let frame = side_call_frame(cfg, path).unwrap();
    assert!(
        contains(&frame, b"text") && !contains(&frame, b"k-1"),
        "{frame:?}"
    );
    // A listed name that is also a field is still dropped (Envoy's meaning).
    let cfg = with_transcoding("  ignored_query_parameters: [format]\n");
    let frame = side_call_frame(cfg, "/v1/payments/pay_001/receipt?format=pdf").unwrap();
    assert!(!contains(&frame, b"pdf"), "{frame:?}");
}

/// `google.rpc.Status { code, message }` (no details) as `grpc-status-details-bin` sends it.
fn details_bin(code: u8, message: &str) -> String {
    use base64::Engine;
    let mut status = vec![0x08, code, 0x12, message.len() as u8];
    status.extend(message.as_bytes());
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(status)
}

/// A POST through the router whose reply is trailers-only with these headers.
fn trailers_only_reply(grpc: &[(&str, &str)]) -> (serde_json::Value, FakeHost) {
    let mut f = Filter::new(Rc::new(Vm::new(with_transcoding(""))), 3);
    let mut h = FakeHost::with_request(
        "POST",
        "/v1/payments",
        &[("content-type", "application/json")],
    );
    assert_eq!(f.on_request_headers(&mut h, false).action, Action::Pause);
    h.request_body = br#"{"amount":{"amountMinor":1}}"#.to_vec();
    let n = h.request_body.len();
    assert_eq!(f.on_request_body(&mut h, n, true).action, Action::Continue);
    let mut headers = vec![(":status", "200"), ("content-type", "application/grpc")];
    headers.extend(grpc);
    h.set_response_headers(&headers);
    f.on_response_headers(&mut h, true);
    let (_, body) = h.reply_json();
    (body, h)
}

#[test]
fn details_status_with_the_same_code_gives_the_message() {
    let bin = details_bin(9, "from details");
    let (body, h) = trailers_only_reply(&[
        ("grpc-status", "9"),
        ("grpc-message", "from%20header"),
        ("grpc-status-details-bin", &bin),
    ]);
    assert_eq!(body["code"], 9, "{body}");
    assert_eq!(body["message"], "from details", "{body}");
    assert!(h.logged("grpc-status-details-bin").is_none());
}

#[test]
fn inconsistent_or_undecodable_details_are_logged_and_ignored() {
    for bin in [details_bin(5, "from details"), "%%%".to_string()] {
        let (body, h) = trailers_only_reply(&[
            ("grpc-status", "9"),
            ("grpc-message", "from%20header"),
            ("grpc-status-details-bin", &bin),
        ]);
        assert_eq!(body["code"], 9, "{body}");
        assert_eq!(body["message"], "from header", "{body}");
        let line = h.logged("grpc-status-details-bin ignored").unwrap();
        assert!(line.contains("CreatePayment"), "{line}");
    }
}

/// The demo gateway plus `legacy.proto` (one servable binding, one ESP-style one).
fn legacy_yaml(strict: bool) -> String {
    demo_yaml()
        .replace(
            "files: [meshgate/demo/v1/payments.proto,",
            "files: [meshgate/demo/v1/payments.proto, meshgate/demo/v1/legacy.proto,",
        )
        .replace(
            "  meshgate.demo.v1.Wallets:\n",
            "  meshgate.demo.v1.LegacyPayments: {upstream: payments, auth: none}\n  meshgate.demo.v1.Wallets:\n",
        )
        .replace("transcoding:\n", &format!("transcoding:\n  strict_bindings: {strict}\n"))
}

#[test]
fn bindings_meshgate_cannot_serve_are_skipped_named_and_logged() {
    let yaml = legacy_yaml(false);
    assert!(yaml.contains("legacy.proto") && yaml.contains("LegacyPayments: {"));
    let cfg = compile_yaml(&yaml);
    assert_eq!(cfg.skipped_bindings.len(), 1, "{:?}", cfg.skipped_bindings);
    let skipped = cfg.skipped_bindings[0].to_string();
    assert!(
        skipped.starts_with(
            "meshgate.demo.v1.LegacyPayments.GetLegacyPayment binding GET /{$api_version}/old/payments/{id}: "
        ),
        "{skipped}"
    );
    // The other binding is served.
    let frame = side_call_frame(cfg, "/v1/legacy/payments/pay_001").unwrap();
    assert!(contains(&frame, b"pay_001"));
    // The filter says so when it is configured.
    let json = common::gateway_json(&yaml);
    let mut root = FakeHost::new();
    assert!(meshgate::filter::Scheduler::configure(&mut root, json.as_bytes()).is_some());
    let line = root.logged("binding skipped").unwrap();
    assert!(line.contains("{$api_version}"), "{line}");
}

#[test]
fn strict_bindings_refuses_them() {
    let json = common::gateway_json(&legacy_yaml(false))
        .replace("\"strict_bindings\":false", "\"strict_bindings\":true");
    assert!(json.contains("\"strict_bindings\":true"), "{json}");
    let err = meshgate::config::compile_json(json.as_bytes())
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(text.contains("{$api_version}"), "{text}");
}

#[test]
fn a_client_stream_body_becomes_one_frame_per_element_through_the_router() {
    let mut f = Filter::new(Rc::new(Vm::new(with_transcoding(""))), 4);
    let mut h = FakeHost::with_request(
        "POST",
        "/v1/payments:record",
        &[("content-type", "application/json")],
    );
    assert_eq!(f.on_request_headers(&mut h, false).action, Action::Pause);
    h.request_body = br#"[{"payment":{"merchant":"a"}},{"payment":{"merchant":"b"}}]"#.to_vec();
    let n = h.request_body.len();
    assert_eq!(f.on_request_body(&mut h, n, true).action, Action::Continue);
    // Two frames: CreatePaymentRequest { payment { merchant: "a" } }, then "b".
    let frame = |m: u8| vec![0, 0, 0, 0, 5, 0x0a, 3, 0x12, 1, m];
    assert_eq!(h.request_body, [frame(b'a'), frame(b'b')].concat());
    assert_eq!(
        h.get(meshgate::host::MapKind::RequestHeaders, ":path")
            .as_deref(),
        Some("/meshgate.demo.v1.Payments/RecordPayments")
    );
    // A protobuf body has no message boundaries: refused, 415.
    let mut f = Filter::new(Rc::new(Vm::new(with_transcoding(""))), 5);
    let mut h = FakeHost::with_request(
        "POST",
        "/v1/payments:record",
        &[("content-type", "application/x-protobuf")],
    );
    f.on_request_headers(&mut h, false);
    h.request_body = vec![0x0a, 0];
    f.on_request_body(&mut h, 2, true);
    let (status, _, _) = h.local_reply.clone().unwrap();
    assert_eq!(status, 415);
}

#[test]
fn side_call_bidi_early_grpc_headers_on_the_dataless_stream_are_held_not_an_error() {
    let cfg = with_transcoding("  upstream_calls: side_call\n");
    let mut f = Filter::new(Rc::new(Vm::new(cfg)), 6);
    let mut h = FakeHost::with_request(
        "POST",
        "/v1/payments:lookup",
        &[("content-type", "application/json")],
    );
    f.on_request_headers(&mut h, false);
    h.request_body = br#"[{"id":"pay_001"}]"#.to_vec();
    let n = h.request_body.len();
    f.on_request_body(&mut h, n, true);
    assert_eq!(h.http_calls.len(), 1, "sent as a side call");
    // The backend's streaming handler answers the router's data-less stream at once.
    h.set_response_headers(&[(":status", "200"), ("content-type", "application/grpc")]);
    assert_eq!(f.on_response_headers(&mut h, false).action, Action::Pause);
    assert!(h.local_reply.is_none(), "not an error");
    // Payment { id: "pay_001" }, then OK.
    let mut reply = vec![0, 0, 0, 0, 9, 0x0a, 7];
    reply.extend(b"pay_001");
    let grpc = common::pairs(&[(":status", "200"), ("content-type", "application/grpc")]);
    let ok = common::pairs(&[("grpc-status", "0")]);
    f.on_side_call_response(&mut h, &grpc, &reply, &ok);
    let (status, body) = h.reply_json();
    assert_eq!(status, 200);
    assert_eq!(body[0]["id"], "pay_001", "{body}");
}

/// `transcoding.pass_through_unmatched`: a request that matches no operation (HTTP or
/// native gRPC) goes on untouched instead of a 404 (HTTP) or UNIMPLEMENTED (gRPC) Status.
#[test]
fn pass_through_unmatched_lets_unknown_requests_go_on() {
    for (method, path, content_type, refused) in [
        ("GET", "/no/such/path", "application/json", 404),
        ("POST", "/no.such.Service/Call", "application/grpc", 200),
    ] {
        for pass in [false, true] {
            let cfg = with_transcoding(&format!("  pass_through_unmatched: {pass}\n"));
            let mut f = Filter::new(Rc::new(Vm::new(cfg)), 1);
            let mut h = FakeHost::with_request(method, path, &[("content-type", content_type)]);
            let action = f.on_request_headers(&mut h, true).action;
            if pass {
                assert_eq!(action, Action::Continue, "{path}");
                assert!(h.local_reply.is_none(), "{path}: {:?}", h.local_reply);
                assert_eq!(
                    common::find(&h.maps["request_headers"], ":path").as_deref(),
                    Some(path)
                );
            } else {
                let (status, _, _) = h.local_reply.clone().expect("refused");
                assert_eq!(status, refused, "{path}");
            }
        }
    }
}

/// `policies.<name>.transcoding.print_options` replace `transcoding.print_options` on the
/// routes that select the policy: here `preserve_proto_field_names` in an error's details
/// (`field_violations`), the route without the policy keeping `fieldViolations`.
#[test]
fn a_policys_print_options_apply_on_its_routes() {
    let yaml = demo_yaml()
        + "routing:\n  route_policies:\n    r-snake: snake\npolicies:\n  snake:\n    transcoding:\n      print_options:\n        preserve_proto_field_names: true\n";
    let vm = Rc::new(Vm::new(compile_yaml(&yaml)));
    for (route, key) in [
        ("r-snake", "field_violations"),
        ("other", "fieldViolations"),
    ] {
        let mut f = Filter::new(vm.clone(), 1);
        let mut h = FakeHost::with_request("GET", "/v1/payments?pageSize=abc", &[])
            .with_property("xds.route_name", route.as_bytes());
        f.on_request_headers(&mut h, true);
        let (status, body) = h.reply_json();
        assert_eq!(status, 400, "{body}");
        assert!(
            body["details"][0][key][0]["field"].is_string(),
            "{route}: {body}"
        );
    }
}
