//! Issue 13: what a fetched JWKS may cost and bring (key count, size checked before the body is
//! read, published `oct` keys), the candidates a token is tried against, and the claim rules
//! (`iat` in the future, lifetime from `min(iat, now)`, `crit` shapes).

use super::*;
use crate::auth::input::RemoteJwksInput;
use jwt_compact::alg::{Hs256, Rsa};

fn remote_with(allow_symmetric_keys: bool) -> AuthConfig {
    let r = RemoteJwksInput {
        uri: "https://issuer.test/keys".into(),
        cluster: "idp".into(),
        allow_symmetric_keys,
        ..Default::default()
    };
    config_with(provider(
        "main",
        ISSUER,
        JwksInput {
            inline: None,
            remote: Some(r),
        },
    ))
}

/// Valid claims still valid at the first refresh (600 s).
fn lasting() -> Value {
    let mut c = claims();
    c["exp"] = json!(NOW + 3600);
    c
}

/// A fresh state whose first fetch brought `doc`.
fn fetched(cfg: &AuthConfig, doc: &str) -> (AuthState, FetchOutcome) {
    let mut st = AuthState::new(cfg);
    assert_eq!(st.due_fetches(now()).len(), 1);
    let out = st.on_fetch_response(cfg, 0, FetchKind::Jwks, Some(200), doc.as_bytes(), now());
    (st, out)
}

/// The published-`oct` exploit: an RSA key and `{"kty":"oct","kid":"pub-oct","k":...}` in a
/// remote JWKS; an HS256 token signed with the published `k` used to be accepted.
#[test]
fn a_published_oct_key_does_not_verify_tokens() {
    let secret = [42u8; 32];
    let doc = json!({"keys": [rsa_jwk("rsa"),
        {"kty": "oct", "kid": "pub-oct", "k": b64(&secret)}]})
    .to_string();
    let forged = |kid: Option<&str>| {
        let mut h = json!({"alg": "HS256"});
        if let Some(k) = kid {
            h["kid"] = json!(k);
        }
        sign_raw(&h, &claims(), hmac_signer(Hs256, Hs256Key::new(secret)))
    };
    let cfg = remote_with(false);
    let (mut st, out) = fetched(&cfg, &doc);
    let FetchOutcome::Updated {
        keys: 1,
        skipped,
        symmetric: 0,
        ..
    } = &out
    else {
        panic!("{out:?}")
    };
    assert!(skipped[0].contains("allow_symmetric_keys"), "{skipped:?}");
    // Without kid: no key allows HS256.
    let out = run(&cfg, &mut st, &bearer(&forged(None)), now());
    assert_eq!(denied(&out), (DenyReason::AlgorithmMismatch, 401));
    // With its kid: unknown; one refetch brings the same document, then 401.
    let h = bearer(&forged(Some("pub-oct")));
    assert_eq!(
        run(&cfg, &mut st, &h, now()),
        AuthOutcome::Pending { providers: vec![0] }
    );
    assert_eq!(st.due_fetches(now()).len(), 1);
    st.on_fetch_response(&cfg, 0, FetchKind::Jwks, Some(200), doc.as_bytes(), now());
    assert_eq!(denied(&run(&cfg, &mut st, &h, now())).1, 401);
    allowed(run(
        &cfg,
        &mut st,
        &bearer(&token("RS256", &claims())),
        now(),
    ));
    // A provider that opts in takes it (and the caller warns).
    let cfg = remote_with(true);
    let (mut st, out) = fetched(&cfg, &doc);
    assert!(
        matches!(
            out,
            FetchOutcome::Updated {
                keys: 2,
                symmetric: 1,
                ..
            }
        ),
        "{out:?}"
    );
    allowed(run(&cfg, &mut st, &bearer(&forged(Some("pub-oct"))), now()));
}

#[test]
fn inline_oct_keys_keep_working() {
    allowed(check(&token("HS256", &claims())));
}

#[test]
fn a_reply_over_max_jwks_bytes_is_refused_before_it_is_read() {
    let cfg = remote_with(false);
    let (mut st, out) = fetched(&cfg, &jwks());
    assert!(out.is_success());
    assert_eq!(st.due_fetches(at(NOW + 600)).len(), 1, "refresh");
    let out = st.on_fetch_reply(
        &cfg,
        0,
        FetchKind::Jwks,
        Some(200),
        cfg.max_jwks_bytes + 1,
        |_| panic!("the body must not be read"),
        at(NOW + 600),
    );
    assert_eq!(
        out,
        FetchOutcome::Refused {
            error: format!(
                "reply of {} bytes is larger than limits.max_jwks_bytes ({}); not read",
                cfg.max_jwks_bytes + 1,
                cfg.max_jwks_bytes
            ),
            kept_keys: true
        }
    );
    assert_eq!(out.as_str(), "refused");
    allowed(run(
        &cfg,
        &mut st,
        &bearer(&token("ES384", &lasting())),
        at(NOW + 600),
    ));
    // Within the limit, the body is read (and only then).
    assert_eq!(
        st.due_fetches(at(NOW + 602)).len(),
        1,
        "retried after backoff"
    );
    let doc = jwks();
    let out = st.on_fetch_reply(
        &cfg,
        0,
        FetchKind::Jwks,
        Some(200),
        doc.len(),
        |n| doc.as_bytes()[..n].to_vec(),
        at(NOW + 602),
    );
    assert!(out.is_success(), "{out:?}");
}

#[test]
fn a_jwks_with_more_keys_than_max_jwks_keys_is_refused_and_the_old_keys_stay() {
    let cfg = remote_with(false);
    let (mut st, _) = fetched(&cfg, &jwks());
    let flood: Vec<Value> = (0..65).map(|i| p384_jwk(&format!("k{i}"))).collect();
    let flood = json!({ "keys": flood }).to_string();
    assert!(flood.len() < cfg.max_jwks_bytes);
    assert_eq!(st.due_fetches(at(NOW + 600)).len(), 1);
    let out = st.on_fetch_response(
        &cfg,
        0,
        FetchKind::Jwks,
        Some(200),
        flood.as_bytes(),
        at(NOW + 600),
    );
    let FetchOutcome::Refused {
        error,
        kept_keys: true,
    } = &out
    else {
        panic!("{out:?}")
    };
    assert!(
        error.contains("65 keys") && error.contains("(64)"),
        "{error}"
    );
    allowed(run(
        &cfg,
        &mut st,
        &bearer(&token("RS256", &lasting())),
        at(NOW + 600),
    ));
}

#[test]
fn max_jwks_keys_bounds_inline_keys_and_must_be_positive() {
    let compile = |limits: AuthLimits| {
        let input = AuthInput {
            providers: vec![provider("main", ISSUER, inline())],
            ..Default::default()
        };
        AuthConfig::compile(&input, &limits).map_err(|e| e.to_string())
    };
    let err = compile(AuthLimits {
        max_jwks_keys: Some(4),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        err.starts_with("auth.providers[0].jwks.inline: JWKS has 5 keys"),
        "{err}"
    );
    assert!(compile(AuthLimits {
        max_jwks_keys: Some(5),
        ..Default::default()
    })
    .is_ok());
    let err = compile(AuthLimits {
        max_jwks_keys: Some(0),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(err, "limits.max_jwks_keys: must be positive");
}

#[test]
fn the_key_table_budget_is_configurable() {
    let input = AuthInput {
        providers: vec![provider("main", ISSUER, inline())],
        default: Some(RequirementInput::Provider("main".into())),
        ..Default::default()
    };
    for (limit, table) in [(None, true), (Some(1000), false)] {
        let limits = AuthLimits {
            max_key_table_bytes: limit,
            ..Default::default()
        };
        let cfg = AuthConfig::compile(&input, &limits).unwrap();
        let mut st = AuthState::new(&cfg);
        for _ in 0..2 {
            allowed(run(
                &cfg,
                &mut st,
                &bearer(&token("ES256", &claims())),
                now(),
            ));
            // Another token each time: the verified-token cache would skip the check.
            st.cache = super::super::cache::TokenCache::new(0);
        }
        assert_eq!(cfg.tables.used() > 0, table, "{limit:?}");
    }
}

/// `n` distinct P-256 keys without `kid`, and their signers.
fn kidless_p256(n: usize) -> (Vec<p256::ecdsa::SigningKey>, Vec<Value>) {
    let sks: Vec<_> = (0..n)
        // Test-only scalars, distinct per key (far below the group order).
        .map(|i| p256::ecdsa::SigningKey::from_slice(&[u8::try_from(i + 1).unwrap(); 32]).unwrap())
        .collect();
    let jwks = sks
        .iter()
        .map(|sk| serde_json::to_value(JsonWebKey::from(sk.verifying_key())).unwrap())
        .collect();
    (sks, jwks)
}

fn inline_config(keys: Vec<Value>) -> AuthConfig {
    config_with(provider(
        "main",
        ISSUER,
        JwksInput {
            inline: Some(json!({ "keys": keys }).to_string()),
            remote: None,
        },
    ))
}

#[test]
fn a_kid_less_token_is_tried_against_at_most_four_distinct_keys() {
    let (sks, keys) = kidless_p256(6);
    let cfg = inline_config(keys.clone());
    let by_key = |i: usize| sign_raw(&json!({"alg": "ES256"}), &claims(), by(Es256, &sks[i]));
    for i in 0..4 {
        let mut st = AuthState::new(&cfg);
        allowed(run(&cfg, &mut st, &bearer(&by_key(i)), now()));
    }
    for i in 4..6 {
        let mut st = AuthState::new(&cfg);
        let out = run(&cfg, &mut st, &bearer(&by_key(i)), now());
        assert_eq!(denied(&out), (DenyReason::BadSignature, 401), "key {i}");
    }
    // Copies of one key are one try: 40 copies of the first key under distinct kids, then the
    // signing one.
    let mut copies: Vec<Value> = (0..40)
        .map(|i| {
            let mut k = keys[0].clone();
            k["kid"] = json!(format!("copy{i}"));
            k
        })
        .collect();
    copies.push(keys[5].clone());
    let cfg = inline_config(copies);
    let mut st = AuthState::new(&cfg);
    allowed(run(&cfg, &mut st, &bearer(&by_key(5)), now()));
}

#[test]
fn a_token_with_a_kid_also_matches_kid_less_keys() {
    // Envoy's jwt_authn tries keys without `kid` for any token; they come after the keys of
    // the token's own `kid`.
    let mut bare = rsa_jwk("x");
    bare.as_object_mut().unwrap().remove("kid");
    let cfg = inline_config(vec![p256_jwk("p256"), bare]);
    let t = sign_raw(
        &json!({"alg": "RS256", "kid": "not-in-the-set"}),
        &claims(),
        by(Rsa::rs256(), &keys().rsa),
    );
    let mut st = AuthState::new(&cfg);
    allowed(run(&cfg, &mut st, &bearer(&t), now()));
    // A kid that names another key and a signature that fits neither: a bad signature.
    let t = sign_raw(
        &json!({"alg": "ES256", "kid": "p256"}),
        &claims(),
        by(
            Es256,
            &p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap(),
        ),
    );
    assert_eq!(
        denied(&run(&cfg, &mut st, &bearer(&t), now())),
        (DenyReason::BadSignature, 401)
    );
}

#[test]
fn iat_later_than_now_plus_skew_is_rejected() {
    let mut c = claims();
    c["iat"] = json!(NOW + 61);
    c["exp"] = json!(NOW + 600);
    assert_eq!(
        denied(&check(&token("ES256", &c))),
        (DenyReason::NotYetValid, 401)
    );
    c["iat"] = json!(NOW + 59);
    allowed(check(&token("ES256", &c)));
    // Ten years ahead (the issue's token) is refused too.
    let ten_years = 10 * 365 * 24 * 3600;
    c["iat"] = json!(NOW + ten_years);
    c["exp"] = json!(NOW + ten_years + 3600);
    assert_eq!(
        denied(&check(&token("ES256", &c))),
        (DenyReason::NotYetValid, 401)
    );
}

#[test]
fn max_lifetime_is_measured_from_the_earlier_of_iat_and_now() {
    let mut p = provider("main", ISSUER, inline());
    p.max_lifetime_seconds = Some(3600);
    let cfg = config_with(p);
    let mut st = AuthState::new(&cfg);
    // `iat` 50 s ahead (within the skew), `exp` an hour after it: 3650 s from now.
    let mut c = claims();
    c["iat"] = json!(NOW + 50);
    c["exp"] = json!(NOW + 50 + 3600);
    let out = run(&cfg, &mut st, &bearer(&token("RS256", &c)), now());
    assert_eq!(denied(&out), (DenyReason::LifetimeTooLong, 401));
    c["exp"] = json!(NOW + 3600);
    allowed(run(&cfg, &mut st, &bearer(&token("RS256", &c)), now()));
}

#[test]
fn crit_must_be_a_non_empty_array_of_names() {
    let with_crit = |crit: Value| {
        let h = json!({"alg": "RS256", "kid": "rsa", "crit": crit});
        check(&sign_raw(&h, &claims(), by(Rsa::rs256(), &keys().rsa)))
    };
    for bad in [json!(null), json!([]), json!("exp"), json!({}), json!([1])] {
        assert_eq!(
            denied(&with_crit(bad.clone())),
            (DenyReason::Malformed, 401),
            "crit {bad}"
        );
    }
    assert_eq!(
        denied(&with_crit(json!(["b64"]))),
        (DenyReason::UnsupportedCritical, 401)
    );
}

/// The issue's flood: 1,300 copies of one P-384 key under distinct kids (~230 KB, under
/// `max_jwks_bytes`). Refused by the count before any key is parsed; with the limit raised,
/// parsed into one key material. The times are printed (debug build, host).
#[test]
fn a_key_flood_is_refused_before_any_key_is_parsed() {
    let flood: Vec<Value> = (0..1300).map(|i| p384_jwk(&format!("k{i}"))).collect();
    let flood = json!({ "keys": flood }).to_string();
    let cfg = remote_with(false);
    assert!(flood.len() < cfg.max_jwks_bytes, "{}", flood.len());
    let (mut st, _) = fetched(&cfg, &jwks());
    st.due_fetches(at(NOW + 600));
    let started = std::time::Instant::now();
    let out = st.on_fetch_response(
        &cfg,
        0,
        FetchKind::Jwks,
        Some(200),
        flood.as_bytes(),
        at(NOW + 600),
    );
    let refused_in = started.elapsed();
    assert_eq!(out.as_str(), "refused", "{out:?}");
    let tables = super::super::keys::TableBudget::new(1 << 30);
    let rules = super::super::keys::KeyRules {
        max_keys: 2000,
        allow_symmetric: false,
        tables: &tables,
        previous: None,
    };
    let started = std::time::Instant::now();
    let (set, _) = super::super::keys::parse_jwks(flood.as_bytes(), &rules).unwrap();
    let parsed_in = started.elapsed();
    assert_eq!((set.keys.len(), set.materials()), (1300, 1));
    assert_eq!(tables.used(), 0, "no table at parse time");
    eprintln!(
        "flood of {} bytes: refused in {refused_in:?}; parsed with the limit raised in \
         {parsed_in:?} (1300 keys, 1 material)",
        flood.len()
    );
    assert!(refused_in < Duration::from_secs(1), "{refused_in:?}");
}

/// The table sizes `docs/security.md` gives, the same on every target (P-256: 832 affine points
/// of two 40-byte field elements, `[u32; 10]`; P-384: the p384 crate's 48-byte elements).
#[test]
fn a_key_table_is_66_560_bytes_for_p256_and_207_360_for_p384() {
    assert_eq!(super::super::ecdsa::P256Key::table_bytes(), 66_560);
    assert_eq!(super::super::ecdsa::P384Key::table_bytes(), 207_360);
    let budget = super::super::keys::DEFAULT_TABLE_BYTES;
    assert_eq!(
        (budget / 66_560, budget / 207_360),
        (31, 10),
        "tables per VM"
    );
}
