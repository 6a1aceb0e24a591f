//! Issue 8 end to end, inline keys (providers and requirements): every algorithm is accepted
//! over HTTP/1.1, HTTP/2 and gRPC; the requirement kinds (`provider`, `any`, `all`,
//! `allow_missing`, `allow_missing_or_failed`, `none`, no rule) decide as configured; a
//! configured default requirement applies; verified tokens are cached by default.
//!
//! The gateway: [`e2e_auth_support::inline`] (two providers, `main` with the five test keys
//! inline and `other`; one operation per requirement kind). Split from `e2e_auth.rs` by
//! behaviour: `e2e_auth_providers.rs` (algorithms and requirements), `e2e_auth_security.rs`
//! (hostile tokens), `e2e_auth_outputs.rs` (what reaches the backend and the logs).
//!
//! Needs `build/meshgate.wasm` (`make wasm`) and Envoy (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_auth_support;
use e2e_auth_support::inline::*;
use e2e_auth_support::*;
use meshgate_kit::harness::{http1_client, http2_client, payments_client};
use meshgate_kit::proto::meshgate::demo::v1::GetPaymentRequest;
use serde_json::{json, Value};
use tonic::metadata::MetadataValue;

#[tokio::test(flavor = "multi_thread")]
async fn every_algorithm_is_accepted_over_http1_http2_and_grpc() {
    let gw = builder(json!({})).start().unwrap();
    for alg in ALGS {
        let t = token(alg, &claims());
        let auth = bearer(&t);
        for client in [http1_client(), http2_client()] {
            let resp = client
                .get(&gw.url(PAYMENT), &[("authorization", &auth)])
                .await
                .unwrap();
            assert_eq!(resp.status.as_u16(), 200, "{alg}: {}", resp.text());
            assert_eq!(resp.json().unwrap()["id"], "pay_001", "{alg}");
        }
        let mut payments = payments_client(gw.addr()).await.unwrap();
        let mut req = tonic::Request::new(GetPaymentRequest {
            id: "pay_001".into(),
            view: None,
        });
        req.metadata_mut()
            .insert("authorization", MetadataValue::try_from(&auth).unwrap());
        let reply = payments.get_payment(req).await;
        assert!(reply.is_ok(), "{alg} over gRPC: {reply:?}");
    }
    let allowed = wait_prom(&gw, "auth_decisions_total", &[("decision", "allowed")], 36);
    assert_eq!(allowed, 36, "every request counted as allowed");
}

/// What, path, request headers, expected status.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, String)>, u16);

#[tokio::test(flavor = "multi_thread")]
async fn requirement_kinds_follow_the_configuration() {
    let gw = builder(json!({})).start().unwrap();
    let main = bearer(&token("RS256", &claims()));
    let other = other_token(&other_claims("svc-1"));
    let bad = bearer(&token("ES256", &json!({"iss": ISSUER, "aud": "api"})));
    let now = now_secs();
    let mut within_skew = claims();
    within_skew["exp"] = json!(now - 30);
    within_skew["nbf"] = json!(now + 30);
    let within_skew = bearer(&token("ES256", &within_skew));
    let a = |v: &str| ("authorization", v.to_string());
    let o = |v: &str| ("x-other-token", v.to_string());
    // (what, path, headers, status, metric reason)
    let cases: Vec<Case> = vec![
        ("provider: no token", PAYMENT, vec![], 401),
        ("provider: valid", PAYMENT, vec![a(&main)], 200),
        (
            "provider: exp 30 s ago and nbf in 30 s, within the 60 s skew",
            PAYMENT,
            vec![a(&within_skew)],
            200,
        ),
        (
            "provider: the other provider's token",
            PAYMENT,
            vec![o(&other)],
            401,
        ),
        ("any: main", "/v1/payments", vec![a(&main)], 200),
        ("any: other", "/v1/payments", vec![o(&other)], 200),
        ("any: none", "/v1/payments", vec![], 401),
        (
            "any: other with a subject not listed",
            "/v1/payments",
            vec![o(&other_token(&other_claims("intruder")))],
            403,
        ),
        (
            "all: main only",
            "/v1/payments/pay_001/status",
            vec![a(&main)],
            401,
        ),
        (
            "all: other only",
            "/v1/payments/pay_001/status",
            vec![o(&other)],
            401,
        ),
        (
            "all: both",
            "/v1/payments/pay_001/status",
            vec![a(&main), o(&other)],
            200,
        ),
        (
            "allow_missing: none",
            "/v1/payments/pay_001/receipt",
            vec![],
            200,
        ),
        (
            "allow_missing: valid",
            "/v1/payments/pay_001/receipt",
            vec![a(&main)],
            200,
        ),
        (
            "allow_missing: invalid",
            "/v1/payments/pay_001/receipt",
            vec![a(&bad)],
            401,
        ),
        (
            "none: garbage token",
            "/v1/wallets/w_001",
            vec![a("Bearer garbage")],
            200,
        ),
        (
            "default deny: no rule",
            "/v1/documents/a/b",
            vec![a(&main)],
            403,
        ),
    ];
    for (what, path, headers, status) in &cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (got, body, www) = get(&gw, path, &h).await;
        assert_eq!(got, *status, "{what}: {body}");
        if *what == "provider: no token" {
            // RFC 6750: no error code when the request had no credentials.
            assert_eq!(
                www.as_deref(),
                Some("Bearer realm=\"payments-api\""),
                "{what}"
            );
            assert_eq!(body["message"], "Jwt is missing");
        }
        if what.starts_with("default deny") {
            assert_eq!(body["code"], 7, "PERMISSION_DENIED: {body}");
        }
    }
    // allow_missing_or_failed: never refused; the principal is kept only for a valid token.
    let client = http1_client();
    for (i, (mut headers, principal)) in [
        (vec![], Value::Null),
        (vec![("authorization", bad.as_str())], Value::Null),
        (vec![("authorization", main.as_str())], json!("user-1")),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("allow-missing-or-failed-{i}");
        headers.push(("x-request-id", id.as_str()));
        let resp = client
            .request(http::Method::DELETE, &gw.url(PAYMENT), &headers, "")
            .await
            .unwrap();
        assert_ne!(resp.status.as_u16(), 401, "{}", resp.text());
        assert_ne!(resp.status.as_u16(), 403, "{}", resp.text());
        let rec = gw
            .record_for(&id)
            .unwrap_or_else(|| panic!("no record for {id}"));
        assert_eq!(
            rec.get("principal").cloned().unwrap_or(Value::Null),
            principal,
            "{rec}"
        );
    }
    let text = gw.envoy.stats_prometheus().unwrap();
    assert!(prom_sum(&text, "auth_decisions_total", &[("reason", "no_rule")]) >= 1);
    assert!(prom_sum(&text, "auth_decisions_total", &[("reason", "missing")]) >= 1);
}

/// `auth.default` set to a requirement: the operations without a rule of their own (a
/// transcoded one and a REST one) follow it; operations with a rule keep theirs.
#[tokio::test(flavor = "multi_thread")]
async fn a_configured_default_requirement_applies_to_operations_without_a_rule() {
    let gw = builder(json!({"default": {"provider": "main"}}))
        .start()
        .unwrap();
    let main = bearer(&token("ES384", &claims()));
    for path in ["/v1/documents/a/b", "/legacy/open/plan"] {
        let (status, body, www) = get(&gw, path, &[]).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert_eq!(body["message"], "Jwt is missing", "{path}");
        assert_eq!(
            www.as_deref(),
            Some("Bearer realm=\"payments-api\""),
            "{path}"
        );
        let (status, body, _) = get(&gw, path, &[("authorization", "Bearer x.y.z")]).await;
        assert_eq!(status, 401, "{path}: {body}");
        // The other provider's token does not satisfy `main`.
        let o = other_token(&other_claims("svc-1"));
        let (status, body, _) = get(&gw, path, &[("x-other-token", &o)]).await;
        assert_eq!(status, 401, "{path}: {body}");
    }
    let (status, body, _) = get(&gw, "/v1/documents/a/b", &[("authorization", &main)]).await;
    assert_eq!(status, 200, "{body}");
    let (status, seen, _) = get(&gw, "/legacy/open/plan", &[("authorization", &main)]).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["path"], "/rest/legacy/open/plan", "{seen}");
    assert_eq!(seen["headers"]["x-meshgate-subject"], "user-1", "{seen}");
    assert_eq!(seen["headers"]["x-meshgate-claim-sub"], "user-1", "{seen}");
    assert!(seen["headers"].get("authorization").is_none(), "{seen}");
    // Rules of their own still win: `none` on Wallets, `allow_missing` on GetReceipt.
    let (status, body, _) = get(&gw, "/v1/wallets/w_001", &[]).await;
    assert_eq!(status, 200, "{body}");
    let resp = http1_client()
        .get(&gw.url("/v1/payments/pay_001/receipt"), &[])
        .await
        .unwrap();
    assert_eq!(resp.status.as_u16(), 200, "{}", resp.text());
    let text = gw.envoy.stats_prometheus().unwrap();
    assert_eq!(
        prom_sum(&text, "auth_decisions_total", &[("reason", "no_rule")]),
        0,
        "nothing denied for want of a rule\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn verified_tokens_are_cached_by_default() {
    let gw = builder(json!({})).start().unwrap();
    let auth = bearer(&token("RS512", &claims()));
    for _ in 0..5 {
        let (status, body, _) = get(&gw, PAYMENT, &[("authorization", &auth)]).await;
        assert_eq!(status, 200, "{body}");
    }
    let ok = wait_prom(
        &gw,
        "auth_decisions_total",
        &[("decision", "allowed"), ("reason", "ok")],
        1,
    );
    let cached = wait_prom(
        &gw,
        "auth_decisions_total",
        &[("decision", "allowed"), ("reason", "cached")],
        4,
    );
    assert_eq!((ok, cached), (1, 4), "one signature check, then cache hits");
    drop(gw);
    // Switched off: every request checks the signature.
    let gw = builder(json!({"cache": {"enabled": false}}))
        .start()
        .unwrap();
    for _ in 0..3 {
        let (status, body, _) = get(&gw, PAYMENT, &[("authorization", &auth)]).await;
        assert_eq!(status, 200, "{body}");
    }
    let ok = wait_prom(
        &gw,
        "auth_decisions_total",
        &[("decision", "allowed"), ("reason", "ok")],
        3,
    );
    let text = gw.envoy.stats_prometheus().unwrap();
    let cached = prom_sum(
        &text,
        "auth_decisions_total",
        &[("decision", "allowed"), ("reason", "cached")],
    );
    assert_eq!((ok, cached), (3, 0), "no cache when disabled");
    // A cached token still expires on time: the cache honours `exp`, so an expired token is
    // refused even if it was verified before (checked with a token that expires in 2 s and a
    // skew of 60 s is beyond a test's patience; the unit tests cover it).
}
