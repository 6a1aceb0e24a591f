//! Issue 18 end to end: local rate limits (Envoy's `local_ratelimit`, rendered from the
//! clients' quotas, after meshgate in the chain) in a real Envoy.
//!
//! The gateway: the demo with `auth.api_keys`: `small` (quota 5 a second, CreatePayment and
//! GetPayment) and `big` (no quota, same operations); both operations require `api_key`.
//! CreatePayment carries a body, so it goes through Envoy's router and the filter after
//! meshgate; GetPayment is a body-less GET that meshgate sends as a side call, limited by
//! meshgate's own bucket (src/filter/side_quota.rs).
//!
//! Needs `build/meshgate.wasm` (`make wasm`) and Envoy (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use meshgate::auth::apikey::key_sha256;
use meshgate_kit::harness::{
    http1_client, http2_client, payments_client, Gateway, GatewayBuilder, HttpClient,
};
use meshgate_kit::proto::meshgate::demo::v1::{CreatePaymentRequest, Money, Payment};
use serde_json::{json, Value};

const SMALL_KEY: &str = "mgk_small_quota_e2e";
const BIG_KEY: &str = "mgk_no_quota_e2e";
const CREATE: &str = "meshgate.demo.v1.Payments.CreatePayment";
const BODY: &str =
    r#"{"merchant": "m_1", "amount": {"currencyCode": "EUR", "amountMinor": "100"}}"#;

fn gateway() -> Gateway {
    gateway_with_workers(1)
}

fn gateway_with_workers(workers: u32) -> Gateway {
    let ops = json!([CREATE, "meshgate.demo.v1.Payments.GetPayment"]);
    let doc = json!({
        "operations": {
            CREATE: {"auth": "api_key"},
            "meshgate.demo.v1.Payments.GetPayment": {"auth": "api_key"},
        },
        "observe": {"access_log": true, "default_slo": {"availability": 99.9}},
        "auth": {"api_keys": {"clients": [
            {"name": "small", "key_sha256": key_sha256(SMALL_KEY), "operations": ops,
             "quota": {"requests": 5, "unit": "second"}},
            {"name": "big", "key_sha256": key_sha256(BIG_KEY), "operations": ops},
        ]}},
    });
    GatewayBuilder::demo_doc("ratelimit-local", doc)
        .workers(workers)
        .start()
        .unwrap()
}

struct Reply {
    status: u16,
    body: Value,
    retry_after: Option<String>,
    limit: Option<String>,
    text: String,
}

async fn create(c: &HttpClient, gw: &Gateway, key: &str) -> Reply {
    let r = c
        .post(
            &gw.url("/v1/payments"),
            &[("content-type", "application/json"), ("x-api-key", key)],
            BODY,
        )
        .await
        .unwrap();
    Reply {
        text: format!("{:?} {}", r.headers, r.text()),
        status: r.status.as_u16(),
        body: r.json().unwrap_or(Value::Null),
        retry_after: r.header("retry-after").map(str::to_string),
        limit: r.header("x-ratelimit-limit").map(str::to_string),
    }
}

/// A burst of `n` quick calls; the replies in order.
async fn burst(c: &HttpClient, gw: &Gateway, key: &str, n: usize) -> Vec<Reply> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(create(c, gw, key).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_past_the_quota_gets_429_status_8_and_the_next_window_passes() {
    let gw = gateway();
    for (proto, c) in [("h1", http1_client()), ("h2", http2_client())] {
        // A fresh window: the previous protocol's burst emptied the bucket.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let started = Instant::now();
        let replies = burst(&c, &gw, SMALL_KEY, 12).await;
        let limited: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
        let ok = replies.iter().filter(|r| r.status == 200).count();
        // Envoy's bucket refills continuously: 5 a second is one token every 200 ms.
        let refilled = started.elapsed().as_millis() as usize / 200 + 1;
        let seen: Vec<(u16, String)> = replies
            .iter()
            .map(|r| (r.status, r.body.to_string()))
            .collect();
        assert_eq!(
            ok + limited.len(),
            12,
            "{proto}: only 200 and 429: {seen:?}"
        );
        assert!(
            (5..=5 + refilled).contains(&ok),
            "{proto}: the quota (and what refilled meanwhile), then 429: {ok} passed"
        );
        assert!(!limited.is_empty(), "{proto}: the burst was limited");
        for r in &limited {
            assert_eq!(r.body["code"], 8, "{proto}: {}", r.text);
            let detail = &r.body["details"][0];
            assert_eq!(
                detail["@type"], "type.googleapis.com/google.rpc.QuotaFailure",
                "{proto}: {}",
                r.body
            );
            assert_eq!(
                detail["violations"][0]["subject"], "client:small",
                "{proto}: {}",
                r.body
            );
            let description = detail["violations"][0]["description"].as_str().unwrap();
            assert!(description.contains(CREATE), "{proto}: {description}");
            let retry: u64 = r
                .retry_after
                .as_deref()
                .unwrap_or("")
                .parse()
                .unwrap_or_else(|_| panic!("{proto}: Retry-After in seconds: {:?}", r.retry_after));
            assert!(retry <= 1, "{proto}: {retry}");
            assert_eq!(
                r.limit.as_deref(),
                Some("5"),
                "{proto}: draft RateLimit headers"
            );
        }
        // The next window passes.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let next = create(&c, &gw, SMALL_KEY).await;
        assert_eq!(next.status, 200, "{proto}: {}", next.body);
        // A client without a quota is not limited.
        let replies = burst(&c, &gw, BIG_KEY, 12).await;
        assert!(
            replies.iter().all(|r| r.status == 200),
            "{proto}: no quota, no limit"
        );
    }

    // Native gRPC: RESOURCE_EXHAUSTED.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut payments = payments_client(gw.addr()).await.unwrap();
    let mut codes = Vec::new();
    for _ in 0..12 {
        let mut req = tonic::Request::new(CreatePaymentRequest {
            payment: Some(Payment {
                merchant: "m_1".into(),
                amount: Some(Money {
                    currency_code: "EUR".into(),
                    amount_minor: 100,
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        req.metadata_mut()
            .insert("x-api-key", SMALL_KEY.parse().unwrap());
        codes.push(match payments.create_payment(req).await {
            Ok(_) => tonic::Code::Ok,
            Err(s) => s.code(),
        });
    }
    assert!(codes.contains(&tonic::Code::ResourceExhausted), "{codes:?}");
    assert!(
        codes
            .iter()
            .all(|c| matches!(c, tonic::Code::Ok | tonic::Code::ResourceExhausted)),
        "{codes:?}"
    );

    // Counted per client and operation, and not an SLO failure of the operation.
    let text = wait_prom(&gw, "outcome=\"resource_exhausted\"");
    let limited = [
        ("client", "small"),
        ("operation", CREATE),
        ("outcome", "resource_exhausted"),
    ];
    assert!(
        prom(&text, "meshgate_client_requests_total", &limited) >= 3,
        "{}",
        lines(&text)
    );
    let slo = [("operation", CREATE), ("slo", "availability")];
    let total = prom(&text, "meshgate_slo_events_total", &slo);
    let good = prom(&text, "meshgate_slo_good_events_total", &slo);
    assert!(total >= 40, "{}", lines(&text));
    assert_eq!(
        good,
        total,
        "a 429 is not an availability failure: {}",
        lines(&text)
    );
}

const GET: &str = "meshgate.demo.v1.Payments.GetPayment";

/// A body-less GET, on a new connection (HTTP/1.1) so that Envoy's two workers share the
/// burst.
async fn get_payment(gw: &Gateway, key: &str) -> Reply {
    let r = http1_client()
        .get(&gw.url("/v1/payments/pay_001"), &[("x-api-key", key)])
        .await
        .unwrap();
    Reply {
        text: format!("{:?} {}", r.headers, r.text()),
        status: r.status.as_u16(),
        body: r.json().unwrap_or(Value::Null),
        retry_after: r.header("retry-after").map(str::to_string),
        limit: r.header("x-ratelimit-limit").map(str::to_string),
    }
}

/// A transcoded GET has no body: meshgate sends it as a side call, so Envoy's rate limit
/// filter after it never sees it, and meshgate keeps the client's quota itself, in a bucket
/// that the VMs of both workers share (per-VM buckets would let about 10 of 12 through).
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_side_call_gets_past_the_quota_gets_429_status_8_and_the_next_window_passes() {
    let gw = gateway_with_workers(2);
    let started = Instant::now();
    let mut replies = Vec::new();
    for _ in 0..12 {
        replies.push(get_payment(&gw, SMALL_KEY).await);
    }
    let refilled = started.elapsed().as_millis() as usize / 200 + 1;
    let seen: Vec<(u16, String)> = replies
        .iter()
        .map(|r| (r.status, r.body.to_string()))
        .collect();
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let limited: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(ok + limited.len(), 12, "only 200 and 429: {seen:?}");
    assert!(
        (5..=5 + refilled).contains(&ok),
        "the quota (and what refilled in {refilled} x 200 ms), then 429: {ok} passed: {seen:?}"
    );
    for r in &limited {
        assert_eq!(r.body["code"], 8, "{}", r.text);
        let detail = &r.body["details"][0];
        assert_eq!(
            detail["@type"], "type.googleapis.com/google.rpc.QuotaFailure",
            "{}",
            r.text
        );
        assert_eq!(
            detail["violations"][0]["subject"], "client:small",
            "{}",
            r.text
        );
        let description = detail["violations"][0]["description"].as_str().unwrap();
        assert!(description.contains(GET), "{description}");
        assert_eq!(r.retry_after.as_deref(), Some("1"), "{}", r.text);
        assert_eq!(r.limit.as_deref(), Some("5"), "{}", r.text);
    }
    // The next window passes; a client without a quota is never limited.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let next = get_payment(&gw, SMALL_KEY).await;
    assert_eq!(next.status, 200, "{}", next.text);
    for _ in 0..12 {
        let r = get_payment(&gw, BIG_KEY).await;
        assert_eq!(r.status, 200, "no quota, no limit: {}", r.text);
    }
    // Counted per client and operation, and not an SLO failure of the operation.
    let text = wait_prom(&gw, "outcome=\"resource_exhausted\"");
    let counted = [
        ("client", "small"),
        ("operation", GET),
        ("outcome", "resource_exhausted"),
    ];
    assert_eq!(
        prom(&text, "meshgate_client_requests_total", &counted) as usize,
        limited.len(),
        "{}",
        lines(&text)
    );
    let slo = [("operation", GET), ("slo", "availability")];
    let total = prom(&text, "meshgate_slo_events_total", &slo);
    let good = prom(&text, "meshgate_slo_good_events_total", &slo);
    assert!(total >= 25, "{}", lines(&text));
    assert_eq!(
        good,
        total,
        "a 429 is not an availability failure: {}",
        lines(&text)
    );
}

fn wait_prom(gw: &Gateway, needle: &str) -> String {
    let mut text = String::new();
    for _ in 0..50 {
        text = gw.envoy.stats_prometheus().unwrap_or_default();
        if text.contains(needle) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    text
}

/// Sum of the samples of `metric` whose labels include every one of `labels`.
fn prom(text: &str, metric: &str, labels: &[(&str, &str)]) -> u64 {
    text.lines()
        .filter_map(|l| {
            let (name, rest) = l.split_once('{')?;
            let (lab, value) = rest.rsplit_once('}')?;
            let all = labels
                .iter()
                .all(|(k, v)| lab.contains(&format!("{k}=\"{v}\"")));
            (name == metric && all)
                .then(|| value.trim().parse::<u64>().ok())
                .flatten()
        })
        .sum()
}

fn lines(text: &str) -> String {
    text.lines()
        .filter(|l| l.starts_with("meshgate_"))
        .collect::<Vec<_>>()
        .join("\n")
}
