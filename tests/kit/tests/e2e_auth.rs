//! Issue 8 end to end, inline keys: the built module in a real Envoy in front of the demo gRPC
//! backends, with tokens the test signs. Every algorithm, every security case of the issue
//! (rejected with the right status, counted by reason and logged), the requirement kinds, and
//! the outputs as the backend received them (`x-demo-saw-*`, `x-demo-received-headers`).
//!
//! The gateway ([`gateway`]) has two providers:
//! - `main`: issuer [`ISSUER`], audience `api`, `require_expiration`, `max_lifetime_seconds`
//!   3600, `clock_skew_seconds` 60, the five test keys inline; tokens from `Authorization:
//!   Bearer`, the `access_token` query parameter and the `session` cookie; claims to headers
//!   (`sub`, the array `realm_access.roles`, the nested `org.team.name`) and the payload header;
//! - `other`: issuer [`OTHER_ISSUER`], audience `api`, subjects `[svc-1]`, one P-256 key,
//!   tokens from `x-other-token` (no prefix), `forward: true`.
//!
//! Operations: GetPayment `main`; ListPayments any of both; GetPaymentStatus all of both;
//! GetReceipt `allow_missing`; DeletePayment `allow_missing_or_failed`; CreatePayment `main`;
//! Wallets `none`; GetDocument no rule (default: deny).
//!
//! Needs `build/meshgate.wasm` (`make wasm`) and Envoy (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_auth_support;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use e2e_auth_support::*;
use meshgate_kit::harness::{
    http1_client, http2_client, payments_client, wallets_client, Gateway, GatewayBuilder,
};
use meshgate_kit::proto::meshgate::demo::v1::{
    GetPaymentRequest, GetWalletRequest, ListPaymentsRequest,
};
use serde_json::{json, Value};
use tonic::metadata::MetadataValue;

const PAYMENT: &str = "/v1/payments/pay_001";

fn gateway() -> Gateway {
    gateway_with(json!({}))
}

/// The gateway with `auth_extra` merged into `auth` (e.g. `{"cache": {"enabled": false}}`).
fn gateway_with(auth_extra: Value) -> Gateway {
    let other_jwks = json!({"keys": [other_jwk("other")]}).to_string();
    let mut doc = json!({
            "operations": {
                "meshgate.demo.v1.Payments.GetPayment": {"auth": {"provider": "main"}},
                "meshgate.demo.v1.Payments.CreatePayment": {"auth": {"provider": "main"}},
                "meshgate.demo.v1.Payments.ListPayments":
                    {"auth": {"any": [{"provider": "main"}, {"provider": "other"}]}},
                "meshgate.demo.v1.Payments.GetPaymentStatus":
                    {"auth": {"all": [{"provider": "main"}, {"provider": "other"}]}},
                "meshgate.demo.v1.Payments.GetReceipt": {"auth": "allow_missing"},
                "meshgate.demo.v1.Payments.DeletePayment": {"auth": "allow_missing_or_failed"},
            },
            "services": {"meshgate.demo.v1.Wallets": {"upstream": "wallets", "auth": "none"}},
            "auth": {
                "realm": "payments-api",
                "providers": [
                    {
                        "name": "main",
                        "issuer": ISSUER,
                        "audiences": ["api"],
                        "require_expiration": true,
                        "max_lifetime_seconds": 3600,
                        "clock_skew_seconds": 60,
                        "jwks": {"inline": main_jwks()},
                        "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
                        "from_params": ["access_token"],
                        "from_cookies": ["session"],
                        "claim_to_headers": [
                            {"claim": "sub", "header": "x-meshgate-claim-sub"},
                            {"claim": "realm_access.roles", "header": "x-meshgate-claim-roles"},
                            {"claim": "org.team.name", "header": "x-meshgate-claim-team"},
                        ],
                        "forward_payload_header": "x-meshgate-jwt-payload",
                    },
                    {
                        "name": "other",
                        "issuer": OTHER_ISSUER,
                        "audiences": ["api"],
                        "subjects": ["svc-1"],
                        "jwks": {"inline": other_jwks},
                        "from_headers": [{"name": "x-other-token"}],
                        "forward": true,
                        "claim_to_headers": [{"claim": "sub", "header": "x-meshgate-other-sub"}],
                    },
                ],
            },
    });
    for (k, v) in auth_extra.as_object().unwrap() {
        doc["auth"][k] = v.clone();
    }
    let yaml = gateway_yaml("inline", doc);
    GatewayBuilder::new(yaml)
        .grpc_upstream("payments", "payments")
        .grpc_upstream("wallets", "wallets")
        .start()
        .unwrap()
}

fn other_claims(sub: &str) -> Value {
    let now = now_secs();
    json!({"iss": OTHER_ISSUER, "aud": "api", "sub": sub, "iat": now - 10, "exp": now + 300})
}

async fn get(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> (u16, Value, Option<String>) {
    let resp = http1_client().get(&gw.url(path), headers).await.unwrap();
    let www = resp.header("www-authenticate").map(str::to_string);
    let body = resp.json().unwrap_or(Value::Null);
    (resp.status.as_u16(), body, www)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_algorithm_is_accepted_over_http1_http2_and_grpc() {
    let gw = gateway();
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

/// Each case: a name, the request's `authorization` value, the status, the metric reason.
fn security_cases() -> Vec<(&'static str, String, u16, &'static str)> {
    let k = keys();
    let now = now_secs();
    let c = claims();
    let with = |patch: Value| {
        let mut v = claims();
        for (key, val) in patch.as_object().unwrap() {
            if val.is_null() {
                v.as_object_mut().unwrap().remove(key);
            } else {
                v[key] = val.clone();
            }
        }
        v
    };
    let es = |claims: &Value| token("ES256", claims);
    let good = es(&c);
    let parts: Vec<&str> = good.split('.').collect();
    let (h, p, s) = (parts[0], parts[1], parts[2]);

    // HS256 keyed with the RSA public key as published (its DER and JWK forms): the classic
    // algorithm-confusion attack against verifiers that trust the token's `alg`.
    let rsa_pub = k.rsa.to_public_key();
    let der = {
        use jwt_compact::jwk::JsonWebKey;
        serde_json::to_vec(&JsonWebKey::from(&rsa_pub)).unwrap()
    };
    let confused = sign_raw(
        &json!({"alg": "HS256", "kid": "rsa"}),
        &c,
        &signer(
            jwt_compact::alg::Hs256,
            jwt_compact::alg::Hs256Key::new(&der),
        ),
    );
    let p256 = |header: Value| sign_raw(&header, &c, &signer_for("ES256").1);
    let altered_payload = b64(with(json!({"sub": "admin"})).to_string().as_bytes());
    let huge = format!("{}.{}.{}", h, "A".repeat(16 * 1024), s);

    vec![
        (
            "alg none",
            format!("{h2}.{p}.", h2 = b64(br#"{"alg":"none","kid":"p256"}"#)),
            401,
            "unsupported_algorithm",
        ),
        (
            "algorithm confusion (HS256 with the RSA public key)",
            confused,
            401,
            "algorithm_mismatch",
        ),
        (
            "unknown kid",
            p256(json!({"alg": "ES256", "kid": "nope"})),
            401,
            "unknown_kid",
        ),
        (
            "kid with a path",
            p256(json!({"alg": "ES256", "kid": "../../../../etc/passwd"})),
            401,
            "unknown_kid",
        ),
        (
            "kid with SQL",
            p256(json!({"alg": "ES256", "kid": "x' OR '1'='1"})),
            401,
            "unknown_kid",
        ),
        (
            "crit header",
            p256(json!({"alg": "ES256", "kid": "p256", "crit": ["exp-ext"], "exp-ext": 1})),
            401,
            "unsupported_critical",
        ),
        (
            "signature stripped",
            format!("{h}.{p}."),
            401,
            "bad_signature",
        ),
        (
            "signature truncated",
            format!("{h}.{p}.{}", b64(&URL_SAFE_NO_PAD.decode(s).unwrap()[..32])),
            401,
            "bad_signature",
        ),
        (
            "signature truncated mid-character (41 base64url chars)",
            format!("{h}.{p}.{}", &s[..41]),
            401,
            "malformed",
        ),
        (
            "payload altered",
            format!("{h}.{altered_payload}.{s}"),
            401,
            "bad_signature",
        ),
        (
            "bad base64url in header",
            format!("{}*.{p}.{s}", &h[..h.len() - 1]),
            401,
            "malformed",
        ),
        (
            "bad base64url in payload",
            format!("{h}.{}*.{s}", &p[..p.len() - 1]),
            401,
            "malformed",
        ),
        (
            "bad base64url in signature",
            format!("{h}.{p}.{}*", &s[..s.len() - 1]),
            401,
            "malformed",
        ),
        ("extra segments", format!("{good}.{s}"), 401, "malformed"),
        (
            "too large (16 KiB, above limits.max_token_bytes)",
            huge,
            401,
            "too_large",
        ),
        (
            "expired beyond skew",
            es(&with(json!({"exp": now - 120, "iat": now - 600}))),
            401,
            "expired",
        ),
        (
            "nbf in the future beyond skew",
            es(&with(json!({"nbf": now + 600}))),
            401,
            "not_yet_valid",
        ),
        (
            "wrong issuer",
            es(&with(json!({"iss": "https://evil.example"}))),
            401,
            "wrong_issuer",
        ),
        (
            "wrong audience",
            es(&with(json!({"aud": "other-api"}))),
            403,
            "wrong_audience",
        ),
        (
            "missing exp when required",
            es(&with(json!({"exp": null}))),
            401,
            "missing_expiration",
        ),
        (
            "lifetime above max_lifetime",
            es(&with(json!({"exp": now + 7200}))),
            401,
            "lifetime_too_long",
        ),
        (
            "key of the wrong type for the alg (RS256 naming the P-256 key)",
            sign_raw(
                &json!({"alg": "RS256", "kid": "p256"}),
                &c,
                &signer_for("RS256").1,
            ),
            401,
            "algorithm_mismatch",
        ),
    ]
    .into_iter()
    .map(|(name, t, status, reason)| (name, bearer(&t), status, reason))
    .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn security_cases_are_rejected_with_the_right_status_counted_and_logged() {
    let gw = gateway();
    let cases = security_cases();
    for (name, auth, status, reason) in &cases {
        let (got, body, www) = get(&gw, PAYMENT, &[("authorization", auth)]).await;
        assert_eq!(got, *status, "{name}: {body}");
        let code = if *status == 403 { 7 } else { 16 };
        assert_eq!(body["code"], code, "{name}: google.rpc.Status code: {body}");
        assert_eq!(body["message"], reason_text(reason), "{name}: {body}");
        assert!(body["details"].is_array(), "{name}: {body}");
        let www = www.unwrap_or_else(|| panic!("{name}: no WWW-Authenticate"));
        assert!(
            www.starts_with("Bearer realm=\"payments-api\""),
            "{name}: {www}"
        );
        let error = if *status == 403 {
            "error=\"insufficient_scope\""
        } else {
            "error=\"invalid_token\""
        };
        assert!(www.contains(error), "{name}: {www}");
        assert!(www.contains("error_description="), "{name}: {www}");
        // Never reflects the token.
        assert!(!www.contains(&auth[7..20]), "{name}: {www}");
    }
    let text = gw.envoy.stats_prometheus().unwrap();
    for (name, _, _, reason) in &cases {
        let expected = cases.iter().filter(|c| c.3 == *reason).count() as u64;
        let counted = wait_prom(
            &gw,
            "auth_decisions_total",
            &[("decision", "denied"), ("reason", reason)],
            expected,
        );
        assert_eq!(counted, expected, "{name}: denied/{reason} counted\n{text}");
        gw.envoy
            .wait_for_log(
                &format!("denied: {}", reason_text(reason)),
                Duration::from_secs(5),
            )
            .unwrap_or_else(|e| panic!("{name}: not logged: {e}"));
        gw.envoy
            .wait_for_log(&format!("({reason})"), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{name}: reason not logged: {e}"));
    }
    // A token of 1 MiB never reaches the filter: Envoy's header limit (60 KiB) refuses it with
    // 431, and the gateway keeps serving.
    let huge = bearer(&format!(
        "{}.{}.x",
        "a".repeat(512 * 1024),
        "b".repeat(512 * 1024)
    ));
    let resp = http1_client()
        .get(&gw.url(PAYMENT), &[("authorization", &huge)])
        .await;
    if let Ok(resp) = resp {
        assert_eq!(resp.status.as_u16(), 431, "1 MiB token: {}", resp.text());
    }
    let ok = bearer(&token("ES256", &claims()));
    let (status, body, _) = get(&gw, PAYMENT, &[("authorization", &ok)]).await;
    assert_eq!(status, 200, "still serving after the 1 MiB token: {body}");
}

fn reason_text(reason: &str) -> &'static str {
    match reason {
        "unsupported_algorithm" => "Jwt algorithm is not supported",
        "algorithm_mismatch" => "Jwt algorithm is not allowed for its key",
        "unknown_kid" => "Jwt key id is not known",
        "unsupported_critical" => "Jwt has unsupported critical header parameters",
        "bad_signature" => "Jwt verification fails",
        "malformed" => "Jwt is not in the form of Header.Payload.Signature",
        "too_large" => "Jwt is too large",
        "expired" => "Jwt is expired",
        "not_yet_valid" => "Jwt not yet valid",
        "wrong_issuer" => "Jwt issuer is not configured",
        "wrong_audience" => "Audiences in Jwt are not allowed",
        "missing_expiration" => "Jwt has no expiration",
        "lifetime_too_long" => "Jwt lifetime is longer than allowed",
        "wrong_subject" => "Jwt subject is not allowed",
        "missing" => "Jwt is missing",
        "no_rule" => "No authentication rule allows this operation",
        other => panic!("no text for {other}"),
    }
}

/// What, path, request headers, expected status.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, String)>, u16);

#[tokio::test(flavor = "multi_thread")]
async fn requirement_kinds_follow_the_configuration() {
    let gw = gateway();
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

#[tokio::test(flavor = "multi_thread")]
async fn claims_payload_and_subject_reach_the_backend_and_the_token_does_not() {
    let gw = gateway();
    let c = claims();
    let t = token("PS256", &c);
    let mut payments = payments_client(gw.addr()).await.unwrap();
    let mut req = tonic::Request::new(GetPaymentRequest {
        id: "pay_001".into(),
        view: None,
    });
    let md = req.metadata_mut();
    md.insert("authorization", bearer(&t).parse().unwrap());
    // Spoofed copies of every header the gateway sets: all replaced or dropped.
    md.insert("x-meshgate-claim-sub", "admin".parse().unwrap());
    md.insert("x-meshgate-claim-team", "root".parse().unwrap());
    md.insert("x-meshgate-jwt-payload", "forged".parse().unwrap());
    md.insert("x-meshgate-other-sub", "forged".parse().unwrap());
    md.insert("x-meshgate-subject", "admin".parse().unwrap());
    let reply = payments.get_payment(req).await.unwrap();
    let saw = |n: &str| {
        reply
            .metadata()
            .get_all(format!("x-demo-saw-{n}").as_str())
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(saw("claim-sub"), ["user-1"]);
    assert_eq!(
        saw("claim-roles"),
        ["reader,payer"],
        "array claims are joined"
    );
    assert_eq!(saw("claim-team"), ["payments"], "nested claim path");
    assert_eq!(saw("subject"), ["user-1"]);
    assert!(
        saw("other-sub").is_empty(),
        "spoofed header of the other provider dropped"
    );
    let payload = saw("jwt-payload");
    assert_eq!(payload.len(), 1);
    let decoded: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&payload[0]).unwrap()).unwrap();
    assert_eq!(decoded, c, "the verified payload, base64url");
    let received = reply
        .metadata()
        .get("x-demo-received-headers")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        !received.split(',').any(|h| h == "authorization"),
        "token removed: {received}"
    );

    // An operation without auth: nothing set, spoofed copies still stripped, token kept.
    let mut wallets = wallets_client(gw.addr()).await.unwrap();
    let mut req = tonic::Request::new(GetWalletRequest {
        wallet_id: "w_001".into(),
    });
    req.metadata_mut()
        .insert("x-meshgate-claim-sub", "admin".parse().unwrap());
    req.metadata_mut()
        .insert("x-meshgate-jwt-payload", "forged".parse().unwrap());
    let reply = wallets.get_wallet(req).await.unwrap();
    assert!(reply.metadata().get("x-demo-saw-claim-sub").is_none());
    assert!(reply.metadata().get("x-demo-saw-jwt-payload").is_none());

    // `forward: true` keeps the other provider's token upstream.
    let mut req = tonic::Request::new(ListPaymentsRequest::default());
    req.metadata_mut().insert(
        "x-other-token",
        other_token(&other_claims("svc-1")).parse().unwrap(),
    );
    let reply = payments.list_payments(req).await.unwrap();
    let received = reply
        .metadata()
        .get("x-demo-received-headers")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        received.split(',').any(|h| h == "x-other-token"),
        "{received}"
    );
    assert_eq!(
        reply.metadata().get("x-demo-saw-other-sub").unwrap(),
        "svc-1"
    );

    // The subject is in the access record; the token is nowhere in it.
    let recs = records(&gw, 3);
    assert_eq!(recs[0]["principal"], "user-1", "{}", recs[0]);
    assert_eq!(recs[2]["principal"], "svc-1", "{}", recs[2]);
    assert!(
        !gw.envoy.stdout().contains(&t[..40]),
        "the token is never logged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_from_query_and_cookie_are_accepted_and_taken_out() {
    let gw = gateway();
    let t = token("EdDSA", &claims());
    // Query parameter: accepted, and not mistaken for a field of the request message.
    let (status, body, _) = get(&gw, &format!("{PAYMENT}?access_token={t}"), &[]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body, _) = get(
        &gw,
        &format!("/v1/payments?page_size=1&access_token={t}"),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let recs = records(&gw, 2);
    for r in &recs {
        let url = r["httpRequest"]["requestUrl"].as_str().unwrap_or_default();
        assert!(
            !url.contains("access_token"),
            "token out of the logged URL: {url}"
        );
    }
    // Cookie: accepted; the other cookies go on, the token's does not.
    let mut payments = payments_client(gw.addr()).await.unwrap();
    let mut req = tonic::Request::new(GetPaymentRequest {
        id: "pay_001".into(),
        view: None,
    });
    req.metadata_mut()
        .insert("cookie", format!("session={t}").parse().unwrap());
    let reply = payments.get_payment(req).await.unwrap();
    let received = reply
        .metadata()
        .get("x-demo-received-headers")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(!received.split(',').any(|h| h == "cookie"), "{received}");
    assert_eq!(
        reply.metadata().get("x-demo-saw-claim-sub").unwrap(),
        "user-1"
    );
    // A body-carrying JSON request (through Envoy's router) with a cookie token.
    let resp = http1_client()
        .post(
            &gw.url("/v1/payments"),
            &[
                ("content-type", "application/json"),
                ("cookie", &format!("theme=dark; session={t}")),
            ],
            r#"{"merchant": "m_1", "amount": {"currencyCode": "EUR", "amountMinor": "100"}}"#,
        )
        .await
        .unwrap();
    assert_eq!(resp.status.as_u16(), 200, "{}", resp.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn verified_tokens_are_cached_by_default() {
    let gw = gateway();
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
    let gw = gateway_with(json!({"cache": {"enabled": false}}));
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
