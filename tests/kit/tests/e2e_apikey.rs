//! Issue 18 end to end: API keys in a real Envoy, over HTTP/1.1, HTTP/2 and native gRPC.
//!
//! The gateway: the demo with `auth.api_keys` (header `x-api-key`, parameter `api_key`) and
//! three clients: `partner` (GetPayment and every Wallets method), `gone` (revoked) and
//! `reader` (ListPayments only). GetPayment, CreatePayment, ListPayments and the Wallets
//! service require `api_key`. The backend's `x-demo-saw-client` (the `x-meshgate-client` it
//! received) is forwarded to HTTP clients.
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
use meshgate_kit::harness::{
    http1_client, http2_client, payments_client, Gateway, GatewayBuilder, HttpClient,
};
use meshgate_kit::proto::meshgate::demo::v1::GetPaymentRequest;
use serde_json::{json, Value};

const PARTNER_KEY: &str = "mgk_partner_e2e_key_0001";
const GONE_KEY: &str = "mgk_revoked_e2e_key_0002";
const READER_KEY: &str = "mgk_reader_e2e_key_0003";
const PAYMENT: &str = "/v1/payments/pay_001";
const GET_PAYMENT: &str = "meshgate.demo.v1.Payments.GetPayment";

fn gateway() -> Gateway {
    let doc = json!({
        "operations": {
            GET_PAYMENT: {"auth": "api_key"},
            "meshgate.demo.v1.Payments.CreatePayment": {"auth": "api_key"},
            "meshgate.demo.v1.Payments.ListPayments": {"auth": "api_key"},
        },
        "services": {"meshgate.demo.v1.Wallets": {"upstream": "wallets", "auth": "api_key"}},
        // What the backend saw of meshgate's client header comes back to HTTP clients.
        "transcoding": {"response_metadata_to_headers": ["x-demo-saw-client"]},
        "auth": {
            "realm": "partners",
            "api_keys": {
                "from_param": "api_key",
                "clients": [
                    {"name": "partner", "key_sha256": key_sha256(PARTNER_KEY),
                     "operations": [GET_PAYMENT, "meshgate.demo.v1.Wallets.*"]},
                    {"name": "gone", "key_sha256": key_sha256(GONE_KEY),
                     "operations": ["*"], "revoked": true},
                    {"name": "reader", "key_sha256": key_sha256(READER_KEY),
                     "operations": ["meshgate.demo.v1.Payments.ListPayments"]},
                ],
            },
        },
    });
    GatewayBuilder::demo_doc("apikey", doc).start().unwrap()
}

async fn get(c: &HttpClient, gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let resp = c.get(&gw.url(path), headers).await.unwrap();
    let status = resp.status.as_u16();
    if status == 401 {
        assert_eq!(
            resp.header("www-authenticate"),
            Some("ApiKey realm=\"partners\""),
            "{path}"
        );
    }
    let mut body = resp.json().unwrap_or(Value::Null);
    if let Some(client) = resp.header("x-demo-saw-client") {
        body["_saw_client"] = json!(client);
    }
    (status, body)
}

fn assert_status(got: (u16, Value), status: u16, code: i64, message: &str, what: &str) {
    assert_eq!(got.0, status, "{what}: {}", got.1);
    assert_eq!(got.1["code"], code, "{what}: {}", got.1);
    assert_eq!(got.1["message"], message, "{what}: {}", got.1);
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_over_http1_and_http2_valid_unknown_revoked_missing_and_forbidden() {
    let gw = gateway();
    for (proto, c) in [("h1", http1_client()), ("h2", http2_client())] {
        // Valid: the backend sees the client's name, not the spoofed copy nor the key.
        let (status, body) = get(
            &c,
            &gw,
            PAYMENT,
            &[("x-api-key", PARTNER_KEY), ("x-meshgate-client", "admin")],
        )
        .await;
        assert_eq!(status, 200, "{proto}: {body}");
        assert_eq!(body["id"], "pay_001", "{proto}");
        assert_eq!(
            body["_saw_client"], "partner",
            "{proto}: spoofed header replaced"
        );
        let (status, body) = get(&c, &gw, "/v1/wallets/w_001", &[("x-api-key", PARTNER_KEY)]).await;
        assert_eq!(status, 200, "{proto}: a service pattern: {body}");

        let unknown = get(&c, &gw, PAYMENT, &[("x-api-key", "mgk_nobody")]).await;
        assert_status(unknown, 401, 16, "API key is not valid", proto);
        let revoked = get(&c, &gw, PAYMENT, &[("x-api-key", GONE_KEY)]).await;
        assert_status(revoked, 401, 16, "API key is revoked", proto);
        let missing = get(&c, &gw, PAYMENT, &[]).await;
        assert_status(missing, 401, 16, "API key is missing", proto);
        // A known key on an operation its client may not call.
        let wrong = get(&c, &gw, PAYMENT, &[("x-api-key", READER_KEY)]).await;
        assert_status(
            wrong,
            403,
            7,
            "API key does not allow this operation",
            proto,
        );
        let (status, _) = get(
            &c,
            &gw,
            "/v1/payments?page_size=1",
            &[("x-api-key", READER_KEY)],
        )
        .await;
        assert_eq!(status, 200, "{proto}: reader may list");
        let resp = c
            .post(
                &gw.url("/v1/payments"),
                &[
                    ("content-type", "application/json"),
                    ("x-api-key", PARTNER_KEY),
                ],
                r#"{"merchant": "m_1", "amount": {"currencyCode": "EUR", "amountMinor": "100"}}"#,
            )
            .await
            .unwrap();
        assert_eq!(resp.status.as_u16(), 403, "{proto}: {}", resp.text());
        assert_eq!(resp.json().unwrap()["code"], 7, "{proto}");
    }

    // Native gRPC: the key in metadata; a refusal is a gRPC status.
    let mut payments = payments_client(gw.addr()).await.unwrap();
    let mut req = tonic::Request::new(GetPaymentRequest {
        id: "pay_001".into(),
        view: None,
    });
    req.metadata_mut()
        .insert("x-api-key", PARTNER_KEY.parse().unwrap());
    let reply = payments.get_payment(req).await.unwrap();
    assert_eq!(
        reply.metadata().get("x-demo-saw-client").unwrap(),
        "partner"
    );
    let mut req = tonic::Request::new(GetPaymentRequest {
        id: "pay_001".into(),
        view: None,
    });
    req.metadata_mut()
        .insert("x-api-key", GONE_KEY.parse().unwrap());
    let err = payments.get_payment(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);

    // The client in the access record and in the request metrics, for configured clients.
    // One record per request: 8 over each HTTP version, 2 over gRPC.
    let recs = wait_records(&gw, 18);
    assert_eq!(recs.len(), 18, "{recs:?}");
    let partner: Vec<&Value> = recs.iter().filter(|r| r["client"] == "partner").collect();
    assert!(partner.len() >= 5, "{recs:?}");
    assert!(
        recs.iter()
            .filter(|r| r["httpRequest"]["status"] == 401)
            .all(|r| r.get("client").is_none()),
        "a refused key names no client"
    );
    let text = wait_prom(&gw, "client=\"partner\"", 5);
    let ok = [
        ("client", "partner"),
        ("operation", GET_PAYMENT),
        ("outcome", "ok"),
    ];
    let reader = [("client", "reader"), ("outcome", "ok")];
    assert_eq!(
        (
            prom(&text, "meshgate_client_requests_total", &ok),
            prom(&text, "meshgate_client_requests_total", &reader)
        ),
        (3, 2),
        "{}",
        meshgate_lines(&text)
    );
    assert!(
        !text.contains("client=\"gone\""),
        "a refused key is not a client's request"
    );
    let revoked = [
        ("operation", GET_PAYMENT),
        ("decision", "denied"),
        ("reason", "api_key_revoked"),
    ];
    assert_eq!(prom(&text, "meshgate_auth_decisions_total", &revoked), 3);
    assert!(
        !gw.envoy.stdout().contains(PARTNER_KEY),
        "a key is never logged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_in_the_query_is_accepted_taken_out_and_redacted() {
    let gw = gateway();
    let c = http1_client();
    let path = format!("{PAYMENT}?view.include_items=true&api_key={PARTNER_KEY}");
    let (status, body) = get(&c, &gw, &path, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["_saw_client"], "partner");
    let (status, body) = get(&c, &gw, &format!("{PAYMENT}?api_key={GONE_KEY}"), &[]).await;
    assert_eq!((status, body["code"].as_i64()), (401, Some(16)), "{body}");
    let recs = wait_records(&gw, 2);
    let urls: Vec<&str> = recs
        .iter()
        .map(|r| r["httpRequest"]["requestUrl"].as_str().unwrap_or_default())
        .collect();
    // The accepted key was taken out of the request; the refused one is hidden.
    assert!(
        urls[0].ends_with("/v1/payments/pay_001?view.include_items=true"),
        "{urls:?}"
    );
    assert!(
        urls[1].ends_with("/v1/payments/pay_001?api_key=REDACTED"),
        "{urls:?}"
    );
    let out = gw.envoy.stdout();
    assert!(
        !out.contains(PARTNER_KEY) && !out.contains(GONE_KEY),
        "keys never logged"
    );
}

fn wait_records(gw: &Gateway, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for _ in 0..100 {
        out = gw.access_records();
        if out.len() >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    out
}

fn wait_prom(gw: &Gateway, needle: &str, tries_s: u64) -> String {
    let mut text = String::new();
    for _ in 0..tries_s * 10 {
        text = gw.envoy.stats_prometheus().unwrap_or_default();
        if text.contains(needle) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    text
}

fn meshgate_lines(text: &str) -> String {
    text.lines()
        .filter(|l| l.starts_with("meshgate_"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sum of the samples of `metric` whose labels include every one of `labels`.
fn prom(text: &str, metric: &str, labels: &[(&str, &str)]) -> u64 {
    text.lines()
        .filter_map(|l| {
            let (name, rest) = l.split_once('{')?;
            let (lab, value) = rest.rsplit_once('}')?;
            (name == metric
                && labels
                    .iter()
                    .all(|(k, v)| lab.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.trim().parse::<u64>().ok())
            .flatten()
        })
        .sum()
}
