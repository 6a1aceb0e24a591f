//! Every algorithm, and every hostile token shape, each refused with the right status.

use super::*;
use jwt_compact::alg::{Hs256, Rsa};

const ALL_ALGS: [&str; 12] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256",
    "HS384", "HS512",
];

#[test]
fn every_algorithm_verifies_with_its_key() {
    let cfg = config();
    let mut st = AuthState::new(&cfg);
    for alg in ALL_ALGS {
        let out = run(&cfg, &mut st, &bearer(&token(alg, &claims())), now());
        let r = allowed(out);
        let p = r.principal.unwrap();
        assert_eq!(p.subject.as_deref(), Some("user-1"), "{alg}");
        assert_eq!(p.provider, "main");
    }
}

#[test]
fn a_token_signed_by_another_key_of_the_same_type_fails() {
    let other = keys().attacker_p384.clone();
    let t = sign_raw(
        &json!({"alg": "ES384", "kid": "p384"}),
        &claims(),
        hmac_signer(es384::Es384, other),
    );
    assert_eq!(denied(&check(&t)), (DenyReason::BadSignature, 401));
}

/// `alg: none` with an empty signature (the classic bypass), in the spellings seen in attacks.
#[test]
fn alg_none_is_rejected() {
    for alg in ["none", "None", "NONE", "nOnE"] {
        let t = sign_raw(&json!({"alg": alg, "kid": "rsa"}), &claims(), |_| {
            Vec::new()
        });
        assert_eq!(
            denied(&check(&t)),
            (DenyReason::UnsupportedAlgorithm, 401),
            "{alg}"
        );
    }
}

/// HS256 "signed" with the RSA public key as the HMAC secret (algorithm confusion): the RSA key
/// only allows RS*/PS*, so the token's `alg` is refused before any HMAC is computed.
#[test]
fn hs256_signed_with_the_rsa_public_key_is_rejected() {
    let public_key = keys().rsa.to_public_key();
    let public = JsonWebKey::from(&public_key);
    let secret = serde_json::to_vec(&public).unwrap();
    let t = sign_raw(
        &json!({"alg": "HS256", "kid": "rsa"}),
        &claims(),
        hmac_signer(Hs256, Hs256Key::new(&secret)),
    );
    assert_eq!(denied(&check(&t)), (DenyReason::AlgorithmMismatch, 401));
    // Without kid, every key is a candidate; still none of the HMAC keys is that secret.
    let t = sign_raw(
        &json!({"alg": "HS256"}),
        &claims(),
        hmac_signer(Hs256, Hs256Key::new(&secret)),
    );
    assert_eq!(denied(&check(&t)), (DenyReason::BadSignature, 401));
}

#[test]
fn a_key_of_the_wrong_type_for_the_tokens_algorithm_is_rejected() {
    // kid `rsa` names an RSA key; the token claims ES256 and is signed with the P-256 key.
    let t = sign_raw(
        &json!({"alg": "ES256", "kid": "rsa"}),
        &claims(),
        by(Es256, &keys().p256),
    );
    assert_eq!(denied(&check(&t)), (DenyReason::AlgorithmMismatch, 401));
    // A JWKS whose key is pinned to RS256 refuses PS256 tokens under it.
    let mut jwk = rsa_jwk("rsa");
    jwk["alg"] = json!("RS256");
    let jwks = JwksInput {
        inline: Some(json!({"keys": [jwk]}).to_string()),
        remote: None,
    };
    let cfg = config_with(provider("main", ISSUER, jwks));
    let mut st = AuthState::new(&cfg);
    let out = run(&cfg, &mut st, &bearer(&token("PS256", &claims())), now());
    assert_eq!(denied(&out), (DenyReason::AlgorithmMismatch, 401));
    allowed(run(
        &cfg,
        &mut st,
        &bearer(&token("RS256", &claims())),
        now(),
    ));
}

#[test]
fn unknown_kid_is_rejected() {
    let t = sign_raw(
        &json!({"alg": "RS256", "kid": "rotated-away"}),
        &claims(),
        by(Rsa::rs256(), &keys().rsa),
    );
    assert_eq!(denied(&check(&t)), (DenyReason::UnknownKid, 401));
}

#[test]
fn kid_with_path_or_sql_content_is_just_an_unknown_kid() {
    for kid in [
        "../../../../dev/null",
        "/etc/passwd",
        "x' OR '1'='1",
        "1; DROP TABLE keys--",
    ] {
        let t = sign_raw(
            &json!({"alg": "RS256", "kid": kid}),
            &claims(),
            by(Rsa::rs256(), &keys().rsa),
        );
        assert_eq!(denied(&check(&t)), (DenyReason::UnknownKid, 401), "{kid}");
    }
    for kid in ["a\nb".to_string(), "k".repeat(300)] {
        let t = sign_raw(
            &json!({"alg": "RS256", "kid": kid}),
            &claims(),
            by(Rsa::rs256(), &keys().rsa),
        );
        assert_eq!(denied(&check(&t)), (DenyReason::Malformed, 401));
    }
}

#[test]
fn crit_header_with_unknown_extensions_is_rejected() {
    let h = json!({"alg": "RS256", "kid": "rsa", "crit": ["exp-ext"], "exp-ext": 1});
    let t = sign_raw(&h, &claims(), by(Rsa::rs256(), &keys().rsa));
    assert_eq!(denied(&check(&t)), (DenyReason::UnsupportedCritical, 401));
}

#[test]
fn stripped_or_truncated_signature_is_rejected() {
    for alg in ["RS256", "ES256", "ES384", "EdDSA", "HS256"] {
        let t = token(alg, &claims());
        let (signed, sig) = t.rsplit_once('.').unwrap();
        assert_eq!(
            denied(&check(&format!("{signed}."))),
            (DenyReason::BadSignature, 401),
            "{alg}"
        );
        assert_eq!(
            denied(&check(signed)),
            (DenyReason::Malformed, 401),
            "{alg}"
        );
        let bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
        let short = b64(&bytes[..bytes.len() - 1]);
        assert_eq!(
            denied(&check(&format!("{signed}.{short}"))),
            (DenyReason::BadSignature, 401),
            "{alg}"
        );
        // Cut inside a base64 group: the segment itself is no longer canonical base64url.
        let cut = &sig[..sig.len() - 1];
        assert_eq!(denied(&check(&format!("{signed}.{cut}"))).1, 401, "{alg}");
        assert_eq!(
            denied(&check(&tamper_signature(&t))),
            (DenyReason::BadSignature, 401),
            "{alg}"
        );
    }
}

#[test]
fn altered_payload_is_rejected() {
    let t = token("RS256", &claims());
    let parts: Vec<&str> = t.split('.').collect();
    let mut c = claims();
    c["sub"] = json!("admin");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(c.to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(denied(&check(&forged)), (DenyReason::BadSignature, 401));
}

#[test]
fn bad_base64url_in_each_segment_is_rejected() {
    let t = token("ES256", &claims());
    for i in 0..3 {
        for bad in ["*", "+", "/", "=", "é"] {
            let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
            parts[i].insert_str(4, bad);
            let reason = denied(&check(&parts.join("."))).0;
            assert_eq!(reason, DenyReason::Malformed, "segment {i} with {bad:?}");
        }
    }
}

#[test]
fn extra_segments_are_rejected() {
    let t = token("RS256", &claims());
    assert_eq!(
        denied(&check(&format!("{t}.e30"))),
        (DenyReason::Malformed, 401)
    );
    assert_eq!(
        denied(&check(&format!("e30.{t}"))),
        (DenyReason::Malformed, 401)
    );
}

#[test]
fn a_one_mebibyte_token_is_refused_before_parsing() {
    let huge = format!("{}.{}.{}", "e".repeat(1 << 19), "e".repeat(1 << 19), "x");
    let cfg = config();
    let mut st = AuthState::new(&cfg);
    let headers = bearer(&huge);
    let start = std::time::Instant::now();
    assert_eq!(
        denied(&run(&cfg, &mut st, &headers, now())),
        (DenyReason::TooLarge, 401)
    );
    assert!(start.elapsed() < Duration::from_millis(200));
}

#[test]
fn expired_token_is_rejected_but_skew_is_honoured() {
    let mut c = claims();
    c["exp"] = json!(NOW - 61);
    assert_eq!(
        denied(&check(&token("RS256", &c))),
        (DenyReason::Expired, 401)
    );
    c["exp"] = json!(NOW - 59);
    allowed(check(&token("RS256", &c)));
}

#[test]
fn nbf_in_the_future_beyond_skew_is_rejected() {
    let mut c = claims();
    c["nbf"] = json!(NOW + 61);
    assert_eq!(
        denied(&check(&token("ES256", &c))),
        (DenyReason::NotYetValid, 401)
    );
    c["nbf"] = json!(NOW + 30);
    allowed(check(&token("ES256", &c)));
}

#[test]
fn wrong_issuer_is_rejected() {
    let mut c = claims();
    c["iss"] = json!("https://evil.test");
    assert_eq!(
        denied(&check(&token("ES256", &c))),
        (DenyReason::WrongIssuer, 401)
    );
    c.as_object_mut().unwrap().remove("iss");
    assert_eq!(
        denied(&check(&token("ES256", &c))),
        (DenyReason::WrongIssuer, 401)
    );
}

#[test]
fn wrong_audience_is_forbidden() {
    let mut c = claims();
    c["aud"] = json!(["other", "another"]);
    let out = check(&token("ES256", &c));
    assert_eq!(denied(&out), (DenyReason::WrongAudience, 403));
    let AuthOutcome::Denied(e, _) = out else {
        unreachable!()
    };
    assert_eq!(e.code, crate::status::Code::PermissionDenied);
    c["aud"] = json!(["other", "api"]);
    allowed(check(&token("ES256", &c)));
}

#[test]
fn wrong_subject_is_forbidden() {
    let mut p = provider("main", ISSUER, inline());
    p.subjects = vec!["svc-a".into()];
    let cfg = config_with(p);
    let mut st = AuthState::new(&cfg);
    let out = run(&cfg, &mut st, &bearer(&token("EdDSA", &claims())), now());
    assert_eq!(denied(&out), (DenyReason::WrongSubject, 403));
    let mut c = claims();
    c["sub"] = json!("svc-a");
    allowed(run(&cfg, &mut st, &bearer(&token("EdDSA", &c)), now()));
}

#[test]
fn missing_exp_is_rejected_when_required() {
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    allowed(check(&token("HS256", &c)));
    let mut p = provider("main", ISSUER, inline());
    p.require_expiration = true;
    let cfg = config_with(p);
    let mut st = AuthState::new(&cfg);
    let out = run(&cfg, &mut st, &bearer(&token("HS256", &c)), now());
    assert_eq!(denied(&out), (DenyReason::MissingExpiration, 401));
}

#[test]
fn lifetime_above_max_lifetime_is_rejected() {
    let mut p = provider("main", ISSUER, inline());
    p.max_lifetime_seconds = Some(3600);
    let cfg = config_with(p);
    let mut st = AuthState::new(&cfg);
    let mut c = claims();
    c["iat"] = json!(NOW);
    c["exp"] = json!(NOW + 7200);
    let out = run(&cfg, &mut st, &bearer(&token("RS256", &c)), now());
    assert_eq!(denied(&out), (DenyReason::LifetimeTooLong, 401));
    c["exp"] = json!(NOW + 3600);
    allowed(run(&cfg, &mut st, &bearer(&token("RS256", &c)), now()));
    c.as_object_mut().unwrap().remove("exp");
    let out = run(&cfg, &mut st, &bearer(&token("RS256", &c)), now());
    assert_eq!(denied(&out), (DenyReason::LifetimeTooLong, 401));
}

#[test]
fn non_numeric_dates_and_non_object_payloads_are_malformed() {
    let mut c = claims();
    c["exp"] = json!("tomorrow");
    assert_eq!(denied(&check(&token("ES256", &c))).0, DenyReason::Malformed);
    assert_eq!(
        denied(&check(&token("ES256", &json!([1, 2])))).0,
        DenyReason::Malformed
    );
}

#[test]
fn failure_replies_carry_the_bearer_challenge() {
    let out = check("not-a-token");
    let AuthOutcome::Denied(e, DenyReason::Malformed) = out else {
        panic!("{out:?}")
    };
    let www = e
        .headers
        .iter()
        .find(|(k, _)| k == "www-authenticate")
        .unwrap();
    assert!(www
        .1
        .starts_with("Bearer realm=\"meshgate\", error=\"invalid_token\""));
}

/// A token carrying its own key (`jwk` header, and `jku` pointing elsewhere) signed by that
/// key: embedded and referenced keys are never used.
#[test]
fn keys_embedded_in_the_token_are_ignored() {
    let attacker = keys().attacker_p256.clone();
    let embedded = serde_json::to_value(JsonWebKey::from(attacker.verifying_key())).unwrap();
    let h = json!({"alg": "ES256", "jwk": embedded, "jku": "https://evil.test/keys"});
    let t = sign_raw(&h, &claims(), by(Es256, &attacker));
    assert_eq!(denied(&check(&t)), (DenyReason::BadSignature, 401));
}
