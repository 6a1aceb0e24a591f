//! Issue 8 end to end, inline keys (security cases): every hostile or broken token of the
//! issue is rejected with the right status, counted by reason and logged; a token of one
//! mebibyte is refused by the auth check or by Envoy's header limit.
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
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use e2e_auth_support::inline::*;
use e2e_auth_support::*;
use meshgate_kit::harness::{http1_client, GatewayBuilder};
use serde_json::{json, Value};

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
        assert!(
            body.get("details").is_none(),
            "{name}: no empty details: {body}"
        );
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
