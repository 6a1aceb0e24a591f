//! Issue 18 end to end: global rate limits. Envoy's `ratelimit` filter (rendered from
//! `auth.api_keys.global_rate_limit`, after meshgate) asks the kit's Rate Limit Service, which
//! speaks the real v3 RLS gRPC protocol, about each configured client's request; the RLS's
//! verdict is enforced, and when the RLS is down the configured failure mode decides (fail
//! open: allowed; fail closed: 503 UNAVAILABLE).
//!
//! Needs `build/meshgate.wasm` (`make wasm`) and Envoy (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use meshgate::auth::apikey::key_sha256;
use meshgate_kit::harness::{free_port, http1_client, http2_client, Gateway, GatewayBuilder};
use meshgate_kit::rls::RlsServer;
use serde_json::{json, Value};

const KEY: &str = "mgk_global_e2e";
const CREATE: &str = "meshgate.demo.v1.Payments.CreatePayment";
/// A body-less GET: meshgate sends it as a side call and asks the RLS itself.
const GET: &str = "meshgate.demo.v1.Payments.GetPayment";
const BODY: &str =
    r#"{"merchant": "m_1", "amount": {"currencyCode": "EUR", "amountMinor": "100"}}"#;

fn gateway(rls: &str, failure_mode: &str) -> Gateway {
    let doc = json!({
        "operations": {CREATE: {"auth": "api_key"}, GET: {"auth": "api_key"}},
        "auth": {"api_keys": {
            "global_rate_limit": {"address": rls, "failure_mode": failure_mode, "timeout_ms": 500},
            "clients": [{"name": "fleet", "key_sha256": key_sha256(KEY), "operations": [CREATE, GET]}],
        }},
    });
    GatewayBuilder::demo_doc("ratelimit-global", doc)
        .start()
        .unwrap()
}

async fn create(gw: &Gateway, h2: bool) -> (u16, Value) {
    let c = if h2 { http2_client() } else { http1_client() };
    let r = c
        .post(
            &gw.url("/v1/payments"),
            &[("content-type", "application/json"), ("x-api-key", KEY)],
            BODY,
        )
        .await
        .unwrap();
    (r.status.as_u16(), r.json().unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rls_verdict_is_enforced_with_status_8_over_http1_and_http2() {
    // 4 calls a minute per descriptor: the 5th and later are over the limit.
    let rls = RlsServer::start(4, Duration::from_secs(60)).unwrap();
    let gw = gateway(&rls.addr().to_string(), "deny");
    let mut statuses = Vec::new();
    for i in 0..8 {
        let (status, body) = create(&gw, i % 2 == 1).await;
        if status == 429 {
            assert_eq!(body["code"], 8, "{body}");
            assert_eq!(
                body["details"][0]["violations"][0]["subject"], "client:fleet",
                "{body}"
            );
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 429, 429, 429, 429],
        "{statuses:?}"
    );
    // The RLS saw meshgate's descriptor for each call.
    let seen = rls.seen();
    assert_eq!(seen.len(), 8, "{seen:?}");
    assert!(seen
        .iter()
        .all(|d| d == &format!("client=fleet,operation={CREATE}")));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_rls_that_is_down_fails_open_or_closed_as_configured() {
    // Nothing listens on this port: every RLS call fails.
    let down = format!("127.0.0.1:{}", free_port().unwrap());
    let open = gateway(&down, "allow");
    let (status, body) = create(&open, false).await;
    assert_eq!(status, 200, "fail open: {body}");
    drop(open);
    let closed = gateway(&down, "deny");
    let (status, body) = create(&closed, true).await;
    assert_eq!(status, 503, "fail closed: {body}");
    assert_eq!(body["code"], 14, "{body}");
}

async fn get(gw: &Gateway, h2: bool) -> (u16, Value, Option<String>) {
    let c = if h2 { http2_client() } else { http1_client() };
    let r = c
        .get(&gw.url("/v1/payments/pay_001"), &[("x-api-key", KEY)])
        .await
        .unwrap();
    let retry = r.header("retry-after").map(str::to_string);
    (r.status.as_u16(), r.json().unwrap_or(Value::Null), retry)
}

/// Side calls never pass Envoy's `ratelimit` filter: meshgate asks the RLS itself, with the
/// same domain and descriptor, and answers OVER_LIMIT the same way (Retry-After from the
/// service's `duration_until_reset`).
#[tokio::test(flavor = "multi_thread")]
async fn side_call_gets_ask_the_rls_too_and_its_verdict_is_enforced() {
    let rls = RlsServer::start(4, Duration::from_secs(60)).unwrap();
    let gw = gateway(&rls.addr().to_string(), "deny");
    let mut statuses = Vec::new();
    for i in 0..6 {
        let (status, body, retry) = get(&gw, i % 2 == 1).await;
        if status == 429 {
            assert_eq!(body["code"], 8, "{body}");
            let v = &body["details"][0];
            assert_eq!(
                v["@type"], "type.googleapis.com/google.rpc.QuotaFailure",
                "{body}"
            );
            assert_eq!(v["violations"][0]["subject"], "client:fleet", "{body}");
            let retry: u64 = retry.as_deref().unwrap_or("").parse().unwrap();
            assert!((1..=60).contains(&retry), "{retry}");
        } else {
            assert_eq!(body["id"], "pay_001", "{body}");
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429], "{statuses:?}");
    let seen = rls.seen();
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert!(seen
        .iter()
        .all(|d| d == &format!("client=fleet,operation={GET}")));
}

#[tokio::test(flavor = "multi_thread")]
async fn side_call_gets_fail_open_or_closed_when_the_rls_is_down() {
    let down = format!("127.0.0.1:{}", free_port().unwrap());
    let open = gateway(&down, "allow");
    let (status, body, _) = get(&open, false).await;
    assert_eq!(status, 200, "fail open: {body}");
    drop(open);
    let closed = gateway(&down, "deny");
    let (status, body, _) = get(&closed, true).await;
    assert_eq!(status, 503, "fail closed: {body}");
    assert_eq!(body["code"], 14, "{body}");
}
