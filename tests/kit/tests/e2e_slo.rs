//! Issue 5 end to end: SLO-tagged access records and SLI metrics, through the built module in
//! a real Envoy in front of the demo gRPC backends, which are told to fail (`x-demo-fail`) or
//! to be slow (`x-demo-delay-ms`).
//!
//! One gateway YAML of this test's own ([`gateway_yaml`]): Payments needs a token of provider
//! `test` (HS256, inline JWKS, so the record has a principal), has availability 99.9 and
//! latency 95% under 300 ms; Wallets is public and inherits `observe.default_slo`
//! (availability 99.5); the `partner` policy (chosen by route metadata on
//! `/meshgate.demo.v1.Wallets/`) has latency 90% under 100 ms. The bootstrap is the one the
//! command renders, plus a second Envoy access log that prints meshgate's per-field filter
//! state (`%FILTER_STATE(wasm.meshgate.operation:PLAIN)%`...), as a user logging with Envoy's
//! own formats would.
//!
//! Every request carries its own trace id, so each record is found by its trace.
//!
//! Needs `build/meshgate.wasm` (`make wasm`) and Envoy (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use meshgate::cli::envoy::RouteSpec;
use meshgate_fixtures::hs256;
use meshgate_kit::harness::{
    http1_client, http2_client, payments_client, repo_root, wallets_client, Gateway, GatewayBuilder,
};
use meshgate_kit::proto::meshgate::demo::v1::{
    GetPaymentRequest, GetWalletRequest, ListPaymentsRequest,
};
use serde_json::{json, Value};

const ISSUER: &str = "https://issuer.slo.test";
const SUBJECT: &str = "user-42";
const PROJECT: &str = "slo-project";
const GET_PAYMENT: &str = "meshgate.demo.v1.Payments.GetPayment";
const CREATE_PAYMENT: &str = "meshgate.demo.v1.Payments.CreatePayment";
const GET_WALLET: &str = "meshgate.demo.v1.Wallets.GetWallet";
const LIST_PAYMENTS: &str = "meshgate.demo.v1.Payments.ListPayments";
/// The HS256 secret of the inline JWKS (64 bytes: long enough for every HMAC size).
const SECRET: &[u8] = b"meshgate-slo-e2e-secret-0123456789-abcdefghijklmnopqrstuvwxyz-00";

// ---------------------------------------------------------------------------------------------
// Fixture

/// A valid HS256 token of provider `test` for [`SUBJECT`].
fn token() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"iss": ISSUER, "sub": SUBJECT, "iat": now - 5, "exp": now + 600});
    hs256::token(SECRET, "k1", &claims)
}

fn gateway_yaml(dir: &std::path::Path) -> PathBuf {
    let jwks = json!({"keys": [hs256::jwk(SECRET, "k1")]});
    let yaml = format!(
        r#"descriptors:
  files: [meshgate/demo/v1/payments.proto, google/rpc/error_details.proto]
  include: [{proto}]
upstreams:
  payments: {{}}
  wallets: {{}}
services:
  meshgate.demo.v1.Payments:
    upstream: payments
    auth: {{provider: test}}
    slo:
      availability: 99.9
      latency: {{threshold_ms: 300, target: 95}}
  meshgate.demo.v1.Wallets:
    upstream: wallets
    auth: none
operations:
  # Quota errors are this operation's fault: RESOURCE_EXHAUSTED counts as bad, here only.
  meshgate.demo.v1.Payments.ListPayments:
    slo:
      error_codes: [UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, DATA_LOSS, RESOURCE_EXHAUSTED]
auth:
  providers:
    - name: test
      issuer: {ISSUER}
      jwks: {{inline: '{jwks}'}}
policies:
  partner:
    slo:
      latency: {{threshold_ms: 100, target: 90}}
observe:
  access_log: true
  trace_project: {PROJECT}
  latency_buckets_ms: [25, 1000]
  default_slo:
    availability: 99.5
"#,
        proto = repo_root().join("proto").display(),
    );
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// The per-field filter state line of Envoy's second access log.
const FIELDS: [&str; 8] = [
    "operation",
    "upstream",
    "principal",
    "policy",
    "grpc_status",
    "outcome",
    "slo.availability",
    "slo.latency",
];

struct Fixture {
    gw: Gateway,
    fields_log: PathBuf,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("meshgate-e2e-slo-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dir = TempDir(dir);
    let fields_log = dir.0.join("fields.log");
    let format: Vec<String> = FIELDS
        .iter()
        .map(|f| format!("{f}=%FILTER_STATE(wasm.meshgate.{f}:PLAIN)%"))
        .collect();
    let second = json!({
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": fields_log.display().to_string(),
            "log_format": {"text_format_source": {
                "inline_string": format!("{} path=%REQ(:PATH)%\n", format.join(" "))
            }},
        },
    });
    let gw = GatewayBuilder::new(gateway_yaml(&dir.0))
        .demo_upstreams()
        .route(RouteSpec {
            name: "partner-wallets".into(),
            prefix: "/meshgate.demo.v1.Wallets/".into(),
            cluster: "wallets".into(),
            policy: Some("partner".into()),
            disable_filter: false,
        })
        // meshgate switched off: Envoy still logs the request, with no record to write.
        .route(RouteSpec {
            name: "plain".into(),
            prefix: "/plain/".into(),
            cluster: "payments".into(),
            policy: None,
            disable_filter: true,
        })
        .access_log(second)
        .start()
        .unwrap();
    Fixture {
        gw,
        fields_log,
        _dir: dir,
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers: traces, records, metrics

/// A distinct trace id per request (`n` in the last digits) and its span id.
fn trace_id(n: u32) -> String {
    format!("4bf92f3577b34da6a3ce929d{n:08x}")
}

fn span_id(n: u32) -> String {
    format!("00f067aa{n:08x}")
}

fn traceparent(n: u32, sampled: bool) -> String {
    let flags = if sampled { "01" } else { "00" };
    format!("00-{}-{}-{flags}", trace_id(n), span_id(n))
}

/// The access record of the request with trace `n` (waits for Envoy's log flush).
fn record(gw: &Gateway, n: u32) -> Value {
    let want = format!("projects/{PROJECT}/traces/{}", trace_id(n));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = gw
            .access_records()
            .into_iter()
            .filter(|r| r["logging.googleapis.com/trace"] == want.as_str())
            .collect::<Vec<_>>();
        if found.len() > 1 {
            panic!("more than one record for trace {n}: {found:?}");
        }
        if let Some(r) = found.into_iter().next() {
            return r;
        }
        if Instant::now() > deadline {
            panic!(
                "no record for trace {n}; records: {:?}",
                gw.access_records()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Seconds of a `"0.012s"` duration.
fn seconds(v: &Value) -> f64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a duration: {v}"));
    assert!(s.ends_with('s'), "{s}");
    s.trim_end_matches('s').parse().unwrap()
}

fn size(v: &Value) -> u64 {
    v.as_str()
        .unwrap_or_else(|| panic!("int64 fields are JSON strings: {v}"))
        .parse()
        .unwrap()
}

/// The SLO counters' `policy` label: requests the operation's own objective judged, and those
/// the `partner` route policy's objective judged.
const OWN: (&str, &str) = ("policy", "none");
const PARTNER: (&str, &str) = ("policy", "partner");

/// The value of one series of `/stats/prometheus` with exactly these labels.
fn prom(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    want.sort();
    text.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
        if n != name {
            return None;
        }
        let mut got: Vec<String> = rest
            .trim_end_matches('}')
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        got.sort();
        (got == want).then(|| value.parse().ok()).flatten()
    })
}

/// Waits until every expectation holds (counters are immediate, histograms are flushed every
/// few seconds); fails with the scrape when they do not.
/// (metric, labels, value) expected in `/stats/prometheus`.
type Expected<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);

fn wait_for_metrics(gw: &Gateway, expected: &[Expected]) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = gw.envoy.stats_prometheus().unwrap();
        let missing: Vec<String> = expected
            .iter()
            .filter(|(name, labels, value)| prom(&text, name, labels) != Some(*value))
            .map(|(name, labels, value)| {
                format!(
                    "{name}{labels:?}: want {value}, got {:?}",
                    prom(&text, name, labels)
                )
            })
            .collect();
        if missing.is_empty() {
            return text;
        }
        if Instant::now() > deadline {
            let ours: Vec<&str> = text.lines().filter(|l| l.starts_with("meshgate")).collect();
            panic!(
                "metrics never matched:\n{}\n\n{}",
                missing.join("\n"),
                ours.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn field_lines(f: &Fixture, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(&f.fields_log).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= count || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn grpc_request<T>(message: T, headers: &[(&'static str, String)]) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    for (k, v) in headers {
        req.metadata_mut().insert(*k, v.parse().unwrap());
    }
    req
}

fn bearer() -> (&'static str, String) {
    ("authorization", format!("Bearer {}", token()))
}

fn get_payment(id: &str) -> GetPaymentRequest {
    GetPaymentRequest {
        id: id.into(),
        view: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Native gRPC

#[tokio::test(flavor = "multi_thread")]
async fn native_grpc_records_verdicts_and_counters() {
    let f = start("grpc");
    let gw = &f.gw;
    let mut payments = payments_client(gw.addr()).await.unwrap();
    let tp = |n| ("traceparent", traceparent(n, true));

    // 1: fine.
    payments
        .get_payment(grpc_request(get_payment("pay_001"), &[bearer(), tp(1)]))
        .await
        .unwrap();
    // 2: the backend fails with UNAVAILABLE (counts against availability).
    let fail = |code: &str| ("x-demo-fail", code.to_string());
    let e = payments
        .get_payment(grpc_request(
            get_payment("pay_001"),
            &[bearer(), tp(2), fail("UNAVAILABLE")],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable);
    // 3: NOT_FOUND: the client's fault, good for the service.
    let e = payments
        .get_payment(grpc_request(get_payment("nope"), &[bearer(), tp(3)]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    // 4: slower than the 300 ms threshold.
    payments
        .get_payment(grpc_request(
            get_payment("pay_001"),
            &[bearer(), tp(4), ("x-demo-delay-ms", "700".into())],
        ))
        .await
        .unwrap();
    // 5: RESOURCE_EXHAUSTED is not an error code unless configured.
    let e = payments
        .get_payment(grpc_request(
            get_payment("pay_001"),
            &[bearer(), tp(5), fail("RESOURCE_EXHAUSTED")],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted);
    // 6: Google's trace header instead of traceparent (span id in decimal).
    payments
        .get_payment(grpc_request(
            get_payment("pay_001"),
            &[
                bearer(),
                (
                    "x-cloud-trace-context",
                    format!("{}/1234567890;o=1", trace_id(6)),
                ),
            ],
        ))
        .await
        .unwrap();
    // 7: INTERNAL, bad.
    payments
        .get_payment(grpc_request(
            get_payment("pay_001"),
            &[bearer(), tp(7), fail("INTERNAL")],
        ))
        .await
        .unwrap_err();
    // 8: RESOURCE_EXHAUSTED from ListPayments, whose objective names it an error code.
    let list = || ListPaymentsRequest {
        parent: "merchants/acme".into(),
        page_size: 2,
        ..Default::default()
    };
    let e = payments
        .list_payments(grpc_request(
            list(),
            &[bearer(), tp(8), fail("RESOURCE_EXHAUSTED")],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted);
    // 9: and a successful list.
    payments
        .list_payments(grpc_request(list(), &[bearer(), tp(9)]))
        .await
        .unwrap();

    let ok = record(gw, 1);
    assert_eq!(ok["severity"], "INFO", "{ok}");
    let h = &ok["httpRequest"];
    assert_eq!(h["requestMethod"], "POST");
    assert_eq!(
        h["requestUrl"],
        format!(
            "http://127.0.0.1:{}/meshgate.demo.v1.Payments/GetPayment",
            gw.envoy.listener_port
        )
    );
    assert_eq!(h["status"], 200);
    assert_eq!(h["protocol"], "HTTP/2");
    assert_eq!(h["remoteIp"], "127.0.0.1");
    assert!(h["userAgent"].as_str().unwrap().contains("tonic"), "{h}");
    // 5-byte frame header + the message; the reply is a whole Payment.
    assert!(size(&h["requestSize"]) >= 5 + 9, "{h}");
    assert!(size(&h["responseSize"]) > 20, "{h}");
    let latency = seconds(&h["latency"]);
    // A sanity bound only: the first request of a loaded test machine can be slow.
    assert!(latency > 0.0 && latency < 5.0, "{h}");
    assert_eq!(ok["logging.googleapis.com/spanId"], span_id(1));
    assert_eq!(ok["logging.googleapis.com/trace_sampled"], true);
    assert_eq!(ok["operation"], GET_PAYMENT);
    assert_eq!(ok["upstream"], "payments");
    assert_eq!(ok["grpcStatus"], "OK");
    assert_eq!(ok["principal"], SUBJECT);
    assert!(ok.get("policy").is_none(), "{ok}");
    assert_eq!(ok["outcome"], "ok");
    assert_eq!(
        ok["slo"],
        json!({"availability": "good", "latency": "good"})
    );
    assert!(!ok.to_string().contains("eyJ"), "the token is never logged");

    let unavailable = record(gw, 2);
    assert_eq!(unavailable["severity"], "ERROR", "{unavailable}");
    assert_eq!(
        unavailable["httpRequest"]["status"], 200,
        "native gRPC error"
    );
    assert_eq!(unavailable["grpcStatus"], "UNAVAILABLE");
    assert_eq!(unavailable["outcome"], "unavailable");
    assert_eq!(
        unavailable["slo"],
        json!({"availability": "bad", "latency": "n/a"})
    );

    let not_found = record(gw, 3);
    assert_eq!(not_found["severity"], "WARNING", "{not_found}");
    assert_eq!(not_found["grpcStatus"], "NOT_FOUND");
    assert_eq!(
        not_found["slo"],
        json!({"availability": "good", "latency": "good"})
    );

    let slow = record(gw, 4);
    assert!(seconds(&slow["httpRequest"]["latency"]) >= 0.7, "{slow}");
    assert_eq!(slow["severity"], "INFO");
    assert_eq!(
        slow["slo"],
        json!({"availability": "good", "latency": "bad"})
    );

    let exhausted = record(gw, 5);
    assert_eq!(exhausted["grpcStatus"], "RESOURCE_EXHAUSTED");
    assert_eq!(exhausted["severity"], "WARNING", "429 as HTTP");
    assert_eq!(exhausted["outcome"], "resource_exhausted");
    assert_eq!(exhausted["slo"]["availability"], "good");

    let quota = record(gw, 8);
    assert_eq!(quota["operation"], LIST_PAYMENTS, "{quota}");
    assert_eq!(quota["grpcStatus"], "RESOURCE_EXHAUSTED");
    assert_eq!(
        quota["slo"]["availability"], "bad",
        "configured error code: {quota}"
    );
    assert_eq!(record(gw, 9)["slo"]["availability"], "good");

    let cloud = record(gw, 6);
    assert_eq!(
        cloud["logging.googleapis.com/spanId"],
        format!("{:016x}", 1_234_567_890u64)
    );
    assert_eq!(cloud["logging.googleapis.com/trace_sampled"], true);
    assert_eq!(cloud["operation"], GET_PAYMENT);

    let internal = record(gw, 7);
    assert_eq!(internal["severity"], "ERROR");
    assert_eq!(internal["slo"]["availability"], "bad");

    // Counters: 7 requests, 2 availability failures, 5 latency events of which 1 slow.
    let op = ("operation", GET_PAYMENT);
    let av = ("slo", "availability");
    let lat = ("slo", "latency");
    let text = wait_for_metrics(
        gw,
        &[
            ("meshgate_requests_total", vec![op, ("outcome", "ok")], 3.0),
            (
                "meshgate_requests_total",
                vec![op, ("outcome", "unavailable")],
                1.0,
            ),
            (
                "meshgate_requests_total",
                vec![op, ("outcome", "not_found")],
                1.0,
            ),
            (
                "meshgate_requests_total",
                vec![op, ("outcome", "resource_exhausted")],
                1.0,
            ),
            (
                "meshgate_requests_total",
                vec![op, ("outcome", "internal")],
                1.0,
            ),
            ("meshgate_slo_events_total", vec![op, av, OWN], 7.0),
            ("meshgate_slo_good_events_total", vec![op, av, OWN], 5.0),
            ("meshgate_slo_events_total", vec![op, lat, OWN], 5.0),
            ("meshgate_slo_good_events_total", vec![op, lat, OWN], 4.0),
            ("meshgate_request_duration_ms_count", vec![op], 7.0),
            (
                "meshgate_slo_events_total",
                vec![("operation", LIST_PAYMENTS), av, OWN],
                2.0,
            ),
            (
                "meshgate_slo_good_events_total",
                vec![("operation", LIST_PAYMENTS), av, OWN],
                1.0,
            ),
        ],
    );
    // Buckets include the threshold (300), the configured ones, and the policy's (100).
    for le in ["25", "100", "300", "1000"] {
        let v = prom(
            &text,
            "meshgate_request_duration_ms_bucket",
            &[op, ("le", le)],
        );
        assert!(v.is_some(), "bucket le={le} missing");
    }
    let under_300 = prom(
        &text,
        "meshgate_request_duration_ms_bucket",
        &[op, ("le", "300")],
    )
    .unwrap();
    assert_eq!(
        under_300, 6.0,
        "every request but the slow one is under 300 ms"
    );
    // The record agrees with the metrics: its fields are what the counters counted.
    assert!(
        !text.contains("envoy_meshgate") && !text.contains("wasmcustom"),
        "clean names"
    );
}

// ---------------------------------------------------------------------------------------------
// Transcoded HTTP/JSON

#[tokio::test(flavor = "multi_thread")]
async fn transcoded_requests_records_verdicts_and_counters() {
    let f = start("http");
    let gw = &f.gw;
    let h1 = http1_client();
    let token = format!("Bearer {}", token());
    let auth = ("authorization", token.as_str());
    let url = gw.url("/v1/payments/pay_001");

    // 11: GET (sent by the filter as a side call), not sampled.
    let tp11 = traceparent(11, false);
    let r = h1
        .get(
            &url,
            &[auth, ("traceparent", &tp11), ("user-agent", "slo-e2e/1.0")],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let get_body_len = r.body.len() as u64;
    // 12: the backend fails.
    let tp12 = traceparent(12, true);
    let r = h1
        .get(
            &url,
            &[auth, ("traceparent", &tp12), ("x-demo-fail", "UNAVAILABLE")],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 503, "{}", r.text());
    // 13: slow.
    let tp13 = traceparent(13, true);
    let r = h1
        .get(
            &url,
            &[auth, ("traceparent", &tp13), ("x-demo-delay-ms", "700")],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200);
    // 14: the client's mistake.
    let tp14 = traceparent(14, true);
    let r = h1
        .get(
            &url,
            &[
                auth,
                ("traceparent", &tp14),
                ("x-demo-fail", "INVALID_ARGUMENT"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 400);
    // 15: POST with a body (through Envoy's router).
    let tp15 = traceparent(15, true);
    let body =
        r#"{"amount":{"currencyCode":"EUR","amountMinor":"990"},"merchant":"merchants/slo"}"#;
    let r = h1
        .post(
            &gw.url("/v1/payments"),
            &[
                auth,
                ("traceparent", &tp15),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    // 16: no token: the gateway refuses (401), good for availability, not a latency event.
    let tp16 = traceparent(16, true);
    let r = h1.get(&url, &[("traceparent", &tp16)]).await.unwrap();
    assert_eq!(r.status.as_u16(), 401);
    // 17: the same GET over HTTP/2.
    let tp17 = traceparent(17, true);
    let r = http2_client()
        .get(&url, &[auth, ("traceparent", &tp17)])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200);

    let get = record(gw, 11);
    let h = &get["httpRequest"];
    assert_eq!(get["severity"], "INFO", "{get}");
    assert_eq!(h["requestMethod"], "GET");
    assert_eq!(h["requestUrl"], url);
    assert_eq!(h["status"], 200);
    assert_eq!(h["protocol"], "HTTP/1.1");
    assert_eq!(h["userAgent"], "slo-e2e/1.0");
    assert_eq!(h["remoteIp"], "127.0.0.1");
    // Headers and body, as Cloud Logging defines requestSize (a GET has headers only).
    assert!((100..1000).contains(&size(&h["requestSize"])), "{h}");
    assert!(size(&h["responseSize"]) >= get_body_len, "{h}");
    assert_eq!(get["logging.googleapis.com/trace_sampled"], false);
    assert_eq!(get["logging.googleapis.com/spanId"], span_id(11));
    assert_eq!(get["operation"], GET_PAYMENT);
    assert_eq!(get["upstream"], "payments");
    assert_eq!(get["grpcStatus"], "OK");
    assert_eq!(get["principal"], SUBJECT);
    assert_eq!(
        get["slo"],
        json!({"availability": "good", "latency": "good"})
    );

    let failed = record(gw, 12);
    assert_eq!(failed["severity"], "ERROR", "{failed}");
    assert_eq!(failed["httpRequest"]["status"], 503);
    assert_eq!(failed["grpcStatus"], "UNAVAILABLE");
    assert_eq!(
        failed["slo"],
        json!({"availability": "bad", "latency": "n/a"})
    );

    let slow = record(gw, 13);
    assert!(seconds(&slow["httpRequest"]["latency"]) >= 0.7, "{slow}");
    assert_eq!(
        slow["slo"],
        json!({"availability": "good", "latency": "bad"})
    );

    let invalid = record(gw, 14);
    assert_eq!(invalid["severity"], "WARNING", "{invalid}");
    assert_eq!(invalid["httpRequest"]["status"], 400);
    assert_eq!(invalid["grpcStatus"], "INVALID_ARGUMENT");
    assert_eq!(invalid["slo"]["availability"], "good");

    let post = record(gw, 15);
    assert_eq!(post["operation"], CREATE_PAYMENT, "{post}");
    assert_eq!(post["httpRequest"]["requestMethod"], "POST");
    assert!(size(&post["httpRequest"]["requestSize"]) > body.len() as u64 + 100);
    assert!(size(&post["httpRequest"]["responseSize"]) > 20);
    assert_eq!(
        post["slo"],
        json!({"availability": "good", "latency": "good"})
    );

    let refused = record(gw, 16);
    assert_eq!(refused["httpRequest"]["status"], 401, "{refused}");
    assert_eq!(refused["severity"], "WARNING");
    assert_eq!(refused["grpcStatus"], "UNAUTHENTICATED");
    assert!(refused.get("principal").is_none());
    assert_eq!(
        refused["slo"],
        json!({"availability": "good", "latency": "n/a"})
    );

    let h2 = record(gw, 17);
    assert_eq!(h2["httpRequest"]["protocol"], "HTTP/2", "{h2}");

    let op = ("operation", GET_PAYMENT);
    let av = ("slo", "availability");
    let lat = ("slo", "latency");
    let create = ("operation", CREATE_PAYMENT);
    wait_for_metrics(
        gw,
        &[
            ("meshgate_requests_total", vec![op, ("outcome", "ok")], 3.0),
            (
                "meshgate_requests_total",
                vec![op, ("outcome", "unavailable")],
                1.0,
            ),
            (
                "meshgate_requests_total",
                vec![op, ("outcome", "invalid_argument")],
                1.0,
            ),
            (
                "meshgate_requests_total",
                vec![op, ("outcome", "unauthenticated")],
                1.0,
            ),
            ("meshgate_slo_events_total", vec![op, av, OWN], 6.0),
            ("meshgate_slo_good_events_total", vec![op, av, OWN], 5.0),
            ("meshgate_slo_events_total", vec![op, lat, OWN], 4.0),
            ("meshgate_slo_good_events_total", vec![op, lat, OWN], 3.0),
            ("meshgate_request_duration_ms_count", vec![op], 6.0),
            (
                "meshgate_requests_total",
                vec![create, ("outcome", "ok")],
                1.0,
            ),
            ("meshgate_slo_good_events_total", vec![create, av, OWN], 1.0),
            (
                "meshgate_slo_good_events_total",
                vec![create, lat, OWN],
                1.0,
            ),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Policy objectives, first-request counters, and Envoy's own access log

#[tokio::test(flavor = "multi_thread")]
async fn policy_objective_good_counter_from_first_failure_and_filter_state_log() {
    let f = start("state");
    let gw = &f.gw;
    let mut wallets = wallets_client(gw.addr()).await.unwrap();
    let wallet = || GetWalletRequest {
        wallet_id: "w_001".into(),
    };
    // 21: the very first request of the operation fails: the good counter must exist (at 0),
    // or the error ratio would have no series.
    wallets
        .get_wallet(grpc_request(
            wallet(),
            &[
                ("traceparent", traceparent(21, true)),
                ("x-demo-fail", "UNAVAILABLE".into()),
            ],
        ))
        .await
        .unwrap_err();
    let op = ("operation", GET_WALLET);
    let av = ("slo", "availability");
    let lat = ("slo", "latency");
    wait_for_metrics(
        gw,
        &[
            ("meshgate_slo_events_total", vec![op, av, PARTNER], 1.0),
            ("meshgate_slo_good_events_total", vec![op, av, PARTNER], 0.0),
        ],
    );
    // 22: slower than the partner policy's 100 ms (the service itself has no latency
    // objective, so only the policy makes this a latency event).
    wallets
        .get_wallet(grpc_request(
            wallet(),
            &[
                ("traceparent", traceparent(22, true)),
                ("x-demo-delay-ms", "400".into()),
            ],
        ))
        .await
        .unwrap();
    // 23: fast.
    wallets
        .get_wallet(grpc_request(
            wallet(),
            &[("traceparent", traceparent(23, true))],
        ))
        .await
        .unwrap();

    let first = record(gw, 21);
    assert_eq!(first["policy"], "partner", "{first}");
    assert_eq!(first["upstream"], "wallets");
    assert!(first.get("principal").is_none(), "public operation");
    assert_eq!(
        first["slo"],
        json!({"availability": "bad", "latency": "n/a"})
    );
    let slow = record(gw, 22);
    assert_eq!(
        slow["slo"],
        json!({"availability": "good", "latency": "bad"})
    );
    let fast = record(gw, 23);
    assert_eq!(
        fast["slo"],
        json!({"availability": "good", "latency": "good"})
    );

    let text = wait_for_metrics(
        gw,
        &[
            ("meshgate_slo_events_total", vec![op, av, PARTNER], 3.0),
            ("meshgate_slo_good_events_total", vec![op, av, PARTNER], 2.0),
            ("meshgate_slo_events_total", vec![op, lat, PARTNER], 2.0),
            (
                "meshgate_slo_good_events_total",
                vec![op, lat, PARTNER],
                1.0,
            ),
            ("meshgate_request_duration_ms_count", vec![op], 3.0),
        ],
    );
    assert!(
        prom(
            &text,
            "meshgate_request_duration_ms_bucket",
            &[op, ("le", "100")]
        )
        .is_some(),
        "the policy's threshold is a bucket"
    );

    // A token-carrying request for the principal field, then an unknown path (no operation).
    let mut payments = payments_client(gw.addr()).await.unwrap();
    payments
        .get_payment(grpc_request(
            get_payment("pay_001"),
            &[bearer(), ("traceparent", traceparent(24, true))],
        ))
        .await
        .unwrap();
    let r = http1_client()
        .get(&gw.url("/no/such/path"), &[])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 404);

    // A route where meshgate is off: no record, so no line in the records log (a `-` there
    // would be a line no JSON parser accepts).
    http1_client()
        .get(&gw.url("/plain/anything"), &[])
        .await
        .unwrap();

    let lines = field_lines(&f, 6);
    assert_eq!(lines.len(), 6, "one line per request: {lines:?}");
    assert_eq!(
        lines[5],
        "operation=- upstream=- principal=- policy=- grpc_status=- outcome=- \
         slo.availability=- slo.latency=- path=/plain/anything"
    );
    assert_eq!(
        lines[0],
        format!(
            "operation={GET_WALLET} upstream=wallets principal=- policy=partner \
             grpc_status=UNAVAILABLE outcome=unavailable slo.availability=bad \
             slo.latency=n/a path=/meshgate.demo.v1.Wallets/GetWallet"
        )
    );
    assert!(
        lines[1].contains("slo.availability=good slo.latency=bad"),
        "{}",
        lines[1]
    );
    assert_eq!(
        lines[3],
        format!(
            "operation={GET_PAYMENT} upstream=payments principal={SUBJECT} policy=- \
             grpc_status=OK outcome=ok slo.availability=good slo.latency=good \
             path=/meshgate.demo.v1.Payments/GetPayment"
        )
    );
    assert!(
        lines[4].starts_with("operation=- upstream=- principal=- policy=- grpc_status=NOT_FOUND"),
        "{}",
        lines[4]
    );
    assert!(lines[4].contains("slo.availability=n/a slo.latency=n/a"));
    // Envoy's stdout holds meshgate's records and nothing else: clean JSON lines. (Both files
    // have their own flush timer, 1 s: give stdout time to show a line it should not have.)
    std::thread::sleep(Duration::from_millis(2500));
    let stdout = gw.envoy.stdout();
    assert!(!stdout.is_empty());
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
        assert!(v["severity"].is_string() && v["httpRequest"].is_object());
    }
    assert_eq!(stdout.lines().count(), 5);
}
