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

fn cors_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A transcoded POST from `origin` whose backend answers trailers-only NOT_FOUND: meshgate's
/// local reply, made from the response-headers callback.
fn trailers_only_error(
    cfg: meshgate::config::Config,
    origin: Option<&str>,
    policy: Option<&str>,
) -> FakeHost {
    let mut f = Filter::new(Rc::new(Vm::new(cfg)), 9);
    let mut extra = vec![("content-type", "application/json")];
    extra.extend(origin.map(|o| ("origin", o)));
    let mut h = FakeHost::with_request("POST", "/v1/payments/pay_nope:cancel", &extra);
    if let Some(p) = policy {
        h.properties.insert(
            "xds.route_metadata.filter_metadata.meshgate.policy".into(),
            p.as_bytes().to_vec(),
        );
    }
    f.on_request_headers(&mut h, false);
    h.request_body = br#"{"reason":"x"}"#.to_vec();
    let n = h.request_body.len();
    f.on_request_body(&mut h, n, true);
    assert!(h.local_reply.is_none(), "answered during the request");
    h.set_response_headers(&[
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("grpc-status", "5"),
        ("grpc-message", "no%20such%20payment"),
    ]);
    f.on_response_headers(&mut h, true);
    h
}

#[test]
fn a_reply_made_once_the_response_started_carries_the_cors_headers_for_an_allowed_origin() {
    let h = trailers_only_error(demo_config(), Some("http://127.0.0.1:8088"), None);
    let (status, body) = h.reply_json();
    assert_eq!(status, 404);
    assert_eq!(body["code"], 5, "{body}");
    let headers = &h.local_reply.as_ref().unwrap().1;
    assert_eq!(
        cors_header(headers, "access-control-allow-origin"),
        Some("http://127.0.0.1:8088")
    );
    let exposed = cors_header(headers, "access-control-expose-headers").unwrap();
    assert!(
        exposed.starts_with("grpc-status,grpc-message,"),
        "{exposed}"
    );
    assert!(exposed.contains("www-authenticate"), "{exposed}");
    // The demo does not allow credentials.
    assert_eq!(
        cors_header(headers, "access-control-allow-credentials"),
        None
    );
}

#[test]
fn no_cors_headers_for_another_origin_no_origin_or_no_cors_section() {
    for origin in [Some("http://evil.example"), None] {
        let h = trailers_only_error(demo_config(), origin, None);
        let headers = &h.local_reply.as_ref().unwrap().1;
        assert!(
            !headers
                .iter()
                .any(|(k, _)| k.starts_with("access-control-")),
            "{origin:?}: {headers:?}"
        );
    }
    let yaml = common::demo_yaml();
    let start = yaml.find("\ncors:\n").unwrap();
    let end = yaml[start + 1..].find("\n\n").unwrap() + start + 1;
    let without = format!("{}{}", &yaml[..start], &yaml[end..]);
    let h = trailers_only_error(
        common::compile_yaml(&without),
        Some("http://127.0.0.1:8088"),
        None,
    );
    let headers = &h.local_reply.as_ref().unwrap().1;
    assert!(!headers
        .iter()
        .any(|(k, _)| k.starts_with("access-control-")));
}

#[test]
fn a_route_policy_tightens_or_switches_off_the_reply_s_cors_headers() {
    let yaml = common::demo_yaml().replace(
        "\ncors:\n",
        "\npolicies:\n  narrow:\n    cors: {allow_origins: [http://localhost:8088]}\n  closed:\n    cors: {enabled: false}\n\ncors:\n  allow_credentials: true\n",
    );
    let cfg = || common::compile_yaml(&yaml);
    let allow = |h: &FakeHost| {
        let headers = &h.local_reply.as_ref().unwrap().1;
        cors_header(headers, "access-control-allow-origin").map(str::to_string)
    };
    // The section (with credentials) on a route without a policy.
    let h = trailers_only_error(cfg(), Some("http://127.0.0.1:8088"), None);
    assert_eq!(allow(&h).as_deref(), Some("http://127.0.0.1:8088"));
    let headers = &h.local_reply.as_ref().unwrap().1;
    assert_eq!(
        cors_header(headers, "access-control-allow-credentials"),
        Some("true")
    );
    // The narrower policy: the section's other origin is no longer allowed there.
    let h = trailers_only_error(cfg(), Some("http://127.0.0.1:8088"), Some("narrow"));
    assert_eq!(allow(&h), None);
    let h = trailers_only_error(cfg(), Some("http://localhost:8088"), Some("narrow"));
    assert_eq!(allow(&h).as_deref(), Some("http://localhost:8088"));
    // CORS off on the policy's routes.
    let h = trailers_only_error(cfg(), Some("http://localhost:8088"), Some("closed"));
    assert_eq!(allow(&h), None);
}

#[test]
fn a_reply_made_during_the_request_leaves_cors_to_envoy() {
    // Envoy's CORS filter encodes a reply made before the response started: meshgate adds
    // nothing (a 404 for an unknown path).
    let mut f = Filter::new(Rc::new(Vm::new(demo_config())), 10);
    let mut h =
        FakeHost::with_request("GET", "/v1/nowhere", &[("origin", "http://127.0.0.1:8088")]);
    f.on_request_headers(&mut h, true);
    let headers = &h.local_reply.as_ref().expect("a local reply").1;
    assert!(!headers
        .iter()
        .any(|(k, _)| k.starts_with("access-control-")));
}
