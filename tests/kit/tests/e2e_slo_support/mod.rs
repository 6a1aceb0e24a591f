//! Shared gateway and helpers of the SLO end-to-end suites (`e2e_slo_*.rs`).
//!
//! One gateway YAML of these suites' own ([`gateway_yaml`]): Payments needs a token of provider
//! `test` (HS256, inline JWKS, so the record has a principal), has availability 99.9 and
//! latency 95% under 300 ms; Wallets is public and inherits `observe.default_slo`
//! (availability 99.5); the `partner` policy (chosen by route metadata on
//! `/meshgate.demo.v1.Wallets/`) has latency 90% under 100 ms. The bootstrap is the one the
//! command renders, plus a second Envoy access log that prints meshgate's per-field filter
//! state (`%FILTER_STATE(wasm.meshgate.operation:PLAIN)%`...), as a user logging with Envoy's
//! own formats would, with the fields it prints listed in `observe.filter_state`.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use meshgate::cli::envoy::RouteSpec;
use meshgate_fixtures::hs256;
use meshgate_kit::harness::{repo_root, Gateway, GatewayBuilder, HttpClient, RawResponse};
use meshgate_kit::proto::meshgate::demo::v1::payments_client::PaymentsClient;
use meshgate_kit::proto::meshgate::demo::v1::{GetPaymentRequest, Payment};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tonic::transport::Channel;

pub const ISSUER: &str = "https://issuer.slo.test";

pub const SUBJECT: &str = "user-42";

pub const PROJECT: &str = "slo-project";

pub const GET_PAYMENT: &str = "meshgate.demo.v1.Payments.GetPayment";

pub const CREATE_PAYMENT: &str = "meshgate.demo.v1.Payments.CreatePayment";

pub const GET_WALLET: &str = "meshgate.demo.v1.Wallets.GetWallet";

pub const LIST_PAYMENTS: &str = "meshgate.demo.v1.Payments.ListPayments";

/// The HS256 secret of the inline JWKS (64 bytes: long enough for every HMAC size).
pub const SECRET: &[u8] = b"meshgate-slo-e2e-secret-0123456789-abcdefghijklmnopqrstuvwxyz-00";

// ---------------------------------------------------------------------------------------------
// Fixture

/// A valid HS256 token of provider `test` for [`SUBJECT`].
pub fn token() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"iss": ISSUER, "sub": SUBJECT, "iat": now - 5, "exp": now + 600});
    hs256::token(SECRET, "k1", &claims)
}

pub fn gateway_yaml(dir: &std::path::Path) -> PathBuf {
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
  # The fields the second access log prints.
  filter_state: [operation, upstream, principal, policy, grpc_status, outcome, slo.availability, slo.latency]
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
pub const FIELDS: [&str; 8] = [
    "operation",
    "upstream",
    "principal",
    "policy",
    "grpc_status",
    "outcome",
    "slo.availability",
    "slo.latency",
];

pub struct Fixture {
    pub gw: Gateway,
    pub fields_log: PathBuf,
    pub _dir: TempDir,
}

pub struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn start(name: &str) -> Fixture {
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
pub fn trace_id(n: u32) -> String {
    format!("4bf92f3577b34da6a3ce929d{n:08x}")
}

pub fn span_id(n: u32) -> String {
    format!("00f067aa{n:08x}")
}

pub fn traceparent(n: u32, sampled: bool) -> String {
    let flags = if sampled { "01" } else { "00" };
    format!("00-{}-{}-{flags}", trace_id(n), span_id(n))
}

/// The access record of the request with trace `n` (waits for Envoy's log flush).
pub fn record(gw: &Gateway, n: u32) -> Value {
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
pub fn seconds(v: &Value) -> f64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a duration: {v}"));
    assert!(s.ends_with('s'), "{s}");
    s.trim_end_matches('s').parse().unwrap()
}

pub fn size(v: &Value) -> u64 {
    v.as_str()
        .unwrap_or_else(|| panic!("int64 fields are JSON strings: {v}"))
        .parse()
        .unwrap()
}

/// The SLO counters' `policy` label: requests the operation's own objective judged, and those
/// the `partner` route policy's objective judged.
pub const OWN: (&str, &str) = ("policy", "none");

pub const PARTNER: (&str, &str) = ("policy", "partner");

/// The value of one series of `/stats/prometheus` with exactly these labels.
pub fn prom(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
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
pub type Expected<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);

pub fn wait_for_metrics(gw: &Gateway, expected: &[Expected]) -> String {
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

pub fn field_lines(f: &Fixture, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        // Envoy writes its access logs every 10 s unless asked (the harness asks).
        f.gw.envoy.flush_access_logs();
        let text = std::fs::read_to_string(&f.fields_log).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= count || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn grpc_request<T>(message: T, headers: &[(&'static str, String)]) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    for (k, v) in headers {
        req.metadata_mut().insert(*k, v.parse().unwrap());
    }
    req
}

pub fn bearer() -> (&'static str, String) {
    ("authorization", format!("Bearer {}", token()))
}

pub fn get_payment(id: &str) -> GetPaymentRequest {
    GetPaymentRequest {
        id: id.into(),
        view: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Native gRPC

/// The record's SLO verdicts are `availability` and `latency` (`good`, `bad` or `n/a`).
pub fn assert_slo(record: &Value, availability: &str, latency: &str) {
    assert_eq!(
        record["slo"],
        json!({"availability": availability, "latency": latency}),
        "{record}"
    );
}

/// GetPayment `id` over native gRPC with a token, sampled trace `n` and `extra` metadata.
pub async fn get_payment_traced(
    payments: &mut PaymentsClient<Channel>,
    id: &str,
    n: u32,
    extra: &[(&'static str, String)],
) -> Result<tonic::Response<Payment>, tonic::Status> {
    let mut headers = vec![bearer(), ("traceparent", traceparent(n, true))];
    headers.extend_from_slice(extra);
    payments
        .get_payment(grpc_request(get_payment(id), &headers))
        .await
}

/// GET `url` with `headers` and sampled trace `n`.
pub async fn get_traced(
    client: &HttpClient,
    url: &str,
    n: u32,
    headers: &[(&str, &str)],
) -> RawResponse {
    let tp = traceparent(n, true);
    let mut all = headers.to_vec();
    all.insert(headers.len().min(1), ("traceparent", tp.as_str()));
    client.get(url, &all).await.unwrap()
}
