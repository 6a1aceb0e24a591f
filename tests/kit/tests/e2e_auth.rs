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
//!   tokens from `x-other-token` (no prefix) and the `other_token` query parameter,
//!   `forward: true`.
//!
//! Operations: GetPayment `main`; ListPayments any of both; GetPaymentStatus all of both;
//! GetReceipt `allow_missing`; DeletePayment `allow_missing_or_failed`; CreatePayment `main`;
//! Wallets `none`; GetDocument no rule (default: deny). Two REST operations on the echo backend
//! `legacy` (which answers with what it received): `GET /legacy/docs/**` any of both, and
//! `GET /legacy/open/**` no rule.
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

/// The suite's gateway: [`gateway_doc`] with `auth_extra` merged into `auth` (e.g.
/// `{"cache": {"enabled": false}}`), the demo backends and the REST echo backend `legacy`.
fn builder(auth_extra: Value) -> GatewayBuilder {
    GatewayBuilder::demo_doc("auth-inline", gateway_doc(auth_extra)).rest_upstream("legacy")
}

/// The gateway's configuration, with `auth_extra` merged into `auth`.
fn gateway_doc(auth_extra: Value) -> Value {
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
            "upstreams": {"legacy": {"path_translation": "APPEND_PATH_TO_ADDRESS", "path_prefix": "/rest"}},
            "http_operations": [
                {"name": "legacy.Docs", "method": "GET", "path": "/legacy/docs/**",
                 "upstream": "legacy",
                 "auth": {"any": [{"provider": "main"}, {"provider": "other"}]}},
                {"name": "legacy.Open", "method": "GET", "path": "/legacy/open/**",
                 "upstream": "legacy"},
            ],
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
                        "from_params": ["other_token"],
                        "forward": true,
                        "claim_to_headers": [{"claim": "sub", "header": "x-meshgate-other-sub"}],
                    },
                ],
            },
    });
    for (k, v) in auth_extra.as_object().unwrap() {
        doc["auth"][k] = v.clone();
    }
    doc
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

    // HS256 keyed with the RSA public key as published (its JWK JSON): the classic
    // algorithm-confusion attack against verifiers that trust the token's `alg`. (The bytes
    // of the HMAC key do not matter: `kid` `rsa` names an RSA key, which never verifies HS256.)
    let rsa_pub = k.rsa.to_public_key();
    let published = {
        use jwt_compact::jwk::JsonWebKey;
        serde_json::to_vec(&JsonWebKey::from(&rsa_pub)).unwrap()
    };
    let confused = sign_raw(
        &json!({"alg": "HS256", "kid": "rsa"}),
        &c,
        signer(
            jwt_compact::alg::Hs256,
            jwt_compact::alg::Hs256Key::new(&published),
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
    let gw = builder(json!({})).start().unwrap();
    let cases = security_cases();
    for (i, (name, auth, status, reason)) in cases.iter().enumerate() {
        // Ids of one length: no id is a prefix of another in the log.
        let id = format!("security-case-{i:02}");
        let (got, body, www) = get(
            &gw,
            PAYMENT,
            &[("authorization", auth), ("x-request-id", &id)],
        )
        .await;
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
        assert_denial_recorded(&gw, &id, *status, reason, name);
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
    }
    // Above Envoy's header limit (60 KiB by default) a token never reaches the filter: the
    // codec refuses it with 431, a Status through the rendered `local_reply_config`, and
    // the gateway keeps serving. 100 KiB fits the sockets' buffers, so Envoy reads it all
    // and the client always gets the reply (a 1 MiB request races Envoy's close against the
    // client's write; `a_token_of_one_mebibyte_...` sends one through raised limits).
    let over_envoy = bearer(&format!(
        "{}.{}.x",
        "a".repeat(50 << 10),
        "b".repeat(50 << 10)
    ));
    let resp = http1_client()
        .get(
            &gw.url(PAYMENT),
            &[
                ("authorization", &over_envoy),
                ("x-request-id", "over-envoy"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(resp.status.as_u16(), 431, "{}", resp.text());
    let body = resp.json().unwrap();
    assert_eq!(body["code"], 8, "RESOURCE_EXHAUSTED, from Envoy: {body}");
    assert_ne!(body["message"], reason_text("too_large"), "{body}");
    let ok = bearer(&token("ES256", &claims()));
    let (status, body, _) = get(
        &gw,
        PAYMENT,
        &[("authorization", &ok), ("x-request-id", "after-over-envoy")],
    )
    .await;
    assert_eq!(
        status, 200,
        "still serving after the oversized headers: {body}"
    );
    gw.record_for("after-over-envoy").unwrap();
    assert!(
        gw.access_records()
            .iter()
            .all(|r| r["requestId"] != "over-envoy"),
        "the filter never saw the request Envoy refused"
    );
    let text = gw.envoy.stats_prometheus().unwrap();
    assert_eq!(
        prom_sum(&text, "auth_decisions_total", &[("reason", "too_large")]),
        1,
        "only the 16 KiB case was refused by the auth check\n{text}"
    );
}

/// A token of 1 MiB, through an Envoy whose header limit is raised to 8 MiB (Envoy's maximum)
/// so that it reaches meshgate:
/// - with `limits.max_header_bytes` raised too (2 MiB), the auth check refuses it as too large
///   (401 `too_large`, by length, before any decoding), counted and logged like every other
///   security case;
/// - with the default `max_header_bytes` (60 KiB), meshgate's header-size check refuses the
///   request before any operation or token is looked at: 431 RESOURCE_EXHAUSTED naming that
///   limit, and no auth decision. The limit on all headers comes first on purpose: it is the
///   bound on what any request may make the filter read, whatever the operation.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_of_one_mebibyte_is_refused_by_the_auth_check_or_the_header_limit() {
    let huge = bearer(&format!(
        "{}.{}.x",
        "a".repeat(512 * 1024),
        "b".repeat(512 * 1024)
    ));
    assert!(huge.len() > 1 << 20);
    let mut doc = gateway_doc(json!({}));
    doc["limits"] = json!({"max_header_bytes": 2 << 20});
    let gw = GatewayBuilder::demo_doc("auth-inline", doc)
        .rest_upstream("legacy")
        .max_request_headers_kb(8192)
        .start()
        .unwrap();
    let (status, body, www) = get(
        &gw,
        PAYMENT,
        &[("authorization", &huge), ("x-request-id", "one-mebibyte")],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], 16, "{body}");
    assert_eq!(body["message"], reason_text("too_large"), "{body}");
    let www = www.unwrap();
    assert!(www.contains("error=\"invalid_token\""), "{www}");
    assert!(www.len() < 200, "the token is not reflected: {www}");
    assert_denial_recorded(&gw, "one-mebibyte", 401, "too_large", "1 MiB token");
    let counted = wait_prom(
        &gw,
        "auth_decisions_total",
        &[("decision", "denied"), ("reason", "too_large")],
        1,
    );
    assert_eq!(counted, 1);
    let ok = bearer(&token("ES256", &claims()));
    let (status, body, _) = get(&gw, PAYMENT, &[("authorization", &ok)]).await;
    assert_eq!(status, 200, "still serving after the 1 MiB token: {body}");
    drop(gw);

    let gw = builder(json!({}))
        .max_request_headers_kb(8192)
        .start()
        .unwrap();
    let resp = http1_client()
        .get(
            &gw.url(PAYMENT),
            &[("authorization", &huge), ("x-request-id", "over-meshgate")],
        )
        .await
        .unwrap();
    assert_eq!(resp.status.as_u16(), 431, "{}", resp.text());
    let body = resp.json().unwrap();
    assert_eq!(body["code"], 8, "RESOURCE_EXHAUSTED: {body}");
    assert_eq!(
        body["message"], "request headers are larger than the limit of 61440 bytes",
        "{body}"
    );
    let rec = gw.record_for("over-meshgate").unwrap();
    assert_eq!(rec["httpRequest"]["status"], 431, "{rec}");
    let ok = bearer(&token("ES256", &claims()));
    let (status, body, _) = get(&gw, PAYMENT, &[("authorization", &ok)]).await;
    assert_eq!(status, 200, "{body}");
    let text = gw.envoy.stats_prometheus().unwrap();
    assert_eq!(
        prom_sum(&text, "auth_decisions_total", &[("decision", "denied")]),
        0,
        "the header limit answered, not the auth check\n{text}"
    );
}

/// The access record of request `id` and its denial log line: refused by the auth check with
/// `status` and `reason`, without calling the backend.
fn assert_denial_recorded(gw: &Gateway, id: &str, status: u16, reason: &str, name: &str) {
    let rec = gw
        .record_for(id)
        .unwrap_or_else(|| panic!("{name}: no access record for {id}"));
    assert_eq!(rec["httpRequest"]["status"], status, "{name}: {rec}");
    let grpc = if status == 403 {
        "PERMISSION_DENIED"
    } else {
        "UNAUTHENTICATED"
    };
    assert_eq!(rec["grpcStatus"], grpc, "{name}: {rec}");
    assert_eq!(
        rec["operation"], "meshgate.demo.v1.Payments.GetPayment",
        "{name}: {rec}"
    );
    assert!(rec.get("principal").is_none(), "{name}: {rec}");
    let line = format!(
        "meshgate: GET {PAYMENT} denied: {} ({reason}) request_id={id}",
        reason_text(reason)
    );
    gw.envoy
        .wait_for_log(&line, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{name}: denial not logged: {e}"));
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

#[tokio::test(flavor = "multi_thread")]
async fn claims_payload_and_subject_reach_the_backend_and_the_token_does_not() {
    let gw = builder(json!({})).start().unwrap();
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
    let gw = builder(json!({})).start().unwrap();
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
    // What the upstream got (the REST echo backend shows it): the other cookies, in order,
    // without the token's; the rest of the query without the token.
    let (status, seen, _) = get(
        &gw,
        "/legacy/docs/a?x=1",
        &[("cookie", &format!("theme=dark; session={t}; lang=en"))],
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["headers"]["cookie"], "theme=dark; lang=en", "{seen}");
    assert_eq!(seen["query"], "x=1", "{seen}");
    assert_eq!(seen["headers"]["x-meshgate-claim-sub"], "user-1", "{seen}");
    assert!(!seen.to_string().contains(&t[t.len() - 40..]), "{seen}");
    let (status, seen, _) = get(
        &gw,
        &format!("/legacy/docs/a?x=1&access_token={t}&y=2"),
        &[("cookie", "theme=dark")],
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["query"], "x=1&y=2", "{seen}");
    assert_eq!(seen["headers"]["cookie"], "theme=dark", "{seen}");
    assert!(!seen.to_string().contains(&t[t.len() - 40..]), "{seen}");
}

/// A token in the query is a secret whatever becomes of the request: refused (expired, wrong
/// audience), failed under `allow_missing_or_failed` (left in the upstream's path), forwarded
/// (`forward: true`, to a REST and to a transcoded operation), or accepted. (Where it stays in
/// the URL, a transcoded operation still does not take it for a field of its message.) The access record's URL and the denial log line show the
/// parameter as `REDACTED`, and neither Envoy's log nor its access log holds the token. A
/// cookie token is never in the record either (the record carries no cookie).
#[tokio::test(flavor = "multi_thread")]
async fn query_and_cookie_tokens_never_reach_the_logs() {
    let gw = builder(json!({})).start().unwrap();
    let now = now_secs();
    let mut expired = claims();
    expired["exp"] = json!(now - 600);
    expired["iat"] = json!(now - 900);
    let expired = token("ES256", &expired);
    let mut other_aud = claims();
    other_aud["aud"] = json!("other-api");
    let other_aud = token("RS256", &other_aud);
    let accepted = token("EdDSA", &claims());
    let forwarded = other_token(&other_claims("svc-1"));
    // (request id, method, path, status, whether the parameter stays in the URL)
    let cases = [
        (
            "query-expired",
            http::Method::GET,
            format!("{PAYMENT}?view=PAYMENT_VIEW_FULL&access_token={expired}"),
            401,
            true,
        ),
        (
            "query-audience",
            http::Method::GET,
            format!("{PAYMENT}?access_token={other_aud}"),
            403,
            true,
        ),
        (
            "query-failed-allowed",
            http::Method::DELETE,
            format!("/v1/payments/pay_002?access_token={expired}"),
            200,
            true,
        ),
        (
            "query-forwarded",
            http::Method::GET,
            format!("/legacy/docs/a?x=1&other_token={forwarded}"),
            200,
            true,
        ),
        (
            "query-forwarded-transcoded",
            http::Method::GET,
            format!("/v1/payments?page_size=1&other_token={forwarded}"),
            200,
            true,
        ),
        (
            "query-accepted",
            http::Method::GET,
            format!("{PAYMENT}?access_token={accepted}"),
            200,
            false,
        ),
    ];
    let client = http1_client();
    for (id, method, path, status, kept) in &cases {
        let resp = client
            .request(method.clone(), &gw.url(path), &[("x-request-id", id)], "")
            .await
            .unwrap();
        assert_eq!(resp.status.as_u16(), *status, "{id}: {}", resp.text());
        if *id == "query-forwarded" {
            // `forward: true`: the upstream still gets the token.
            let seen = resp.json().unwrap();
            assert_eq!(
                seen["query"],
                format!("x=1&other_token={forwarded}"),
                "{seen}"
            );
        }
        let rec = gw
            .record_for(id)
            .unwrap_or_else(|| panic!("no record for {id}"));
        let url = rec["httpRequest"]["requestUrl"].as_str().unwrap();
        let param = if id.starts_with("query-forwarded") {
            "other_token"
        } else {
            "access_token"
        };
        assert_eq!(
            url.contains(&format!("{param}=REDACTED")),
            *kept,
            "{id}: {url}"
        );
        assert!(!url.contains(param) || *kept, "{id}: {url}");
    }
    let line = format!(
        "meshgate: GET {PAYMENT}?view=PAYMENT_VIEW_FULL&access_token=REDACTED denied: {} \
         (expired) request_id=query-expired",
        reason_text("expired")
    );
    gw.envoy
        .wait_for_log(&line, Duration::from_secs(5))
        .unwrap();
    gw.envoy
        .wait_for_log(
            "(wrong_audience) request_id=query-audience",
            Duration::from_secs(5),
        )
        .unwrap();

    // A refused cookie token, next to other cookies.
    let cookie = format!("theme=dark; session={expired}; lang=en");
    let (status, body, _) = get(
        &gw,
        PAYMENT,
        &[("cookie", &cookie), ("x-request-id", "cookie-expired")],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let rec = gw.record_for("cookie-expired").unwrap().to_string();
    assert!(
        !rec.contains("theme=dark") && !rec.contains("session"),
        "{rec}"
    );

    // No part of any token anywhere in Envoy's logs (the signatures differ per token).
    let (log, stdout) = (gw.envoy.log(), gw.envoy.stdout());
    for t in [&expired, &other_aud, &accepted, &forwarded] {
        let signature = t.rsplit('.').next().unwrap();
        assert!(signature.len() > 40);
        assert!(!log.contains(signature), "token in Envoy's log:\n{log}");
        assert!(
            !stdout.contains(signature),
            "token in the access log:\n{stdout}"
        );
    }
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
