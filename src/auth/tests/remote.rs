//! Remote JWKS: fetch scheduling, waiting for the first keys, failures that keep the keys in
//! use, the rate-limited unknown-`kid` refetch, and OIDC discovery.

use super::*;
use crate::auth::input::RemoteJwksInput;
use jwt_compact::alg::Rsa;

fn remote(discovery: bool) -> AuthConfig {
    let r = RemoteJwksInput {
        uri: if discovery {
            "https://issuer.test".into()
        } else {
            "https://issuer.test/keys".into()
        },
        cluster: "idp".into(),
        discovery,
        timeout_ms: Some(1000),
        cache_duration_seconds: Some(300),
        refetch_min_interval_seconds: Some(30),
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

fn reply(
    cfg: &AuthConfig,
    st: &mut AuthState,
    kind: FetchKind,
    status: Option<u16>,
    body: &str,
    t: SystemTime,
) -> FetchOutcome {
    st.on_fetch_response(cfg, 0, kind, status, body.as_bytes(), t)
}

#[test]
fn requests_wait_for_the_first_fetch_then_verify() {
    let cfg = remote(false);
    let mut st = AuthState::new(&cfg);
    let h = bearer(&token("ES256", &claims()));
    assert_eq!(
        run(&cfg, &mut st, &h, now()),
        AuthOutcome::Pending { providers: vec![0] }
    );
    let due = st.due_fetches(now());
    assert_eq!(due.len(), 1);
    let f = &due[0];
    assert_eq!(
        (
            f.kind,
            f.cluster.as_str(),
            f.authority.as_str(),
            f.path.as_str()
        ),
        (FetchKind::Jwks, "idp", "issuer.test", "/keys")
    );
    assert!(f.headers().contains(&(":method".into(), "GET".into())));
    assert!(
        st.due_fetches(now()).is_empty(),
        "one fetch in flight at a time"
    );
    let out = reply(&cfg, &mut st, FetchKind::Jwks, Some(200), &jwks(), now());
    assert!(
        matches!(
            out,
            FetchOutcome::Updated {
                // The `oct` key is not taken from a fetched JWKS (no allow_symmetric_keys).
                keys: 4,
                changed: true,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(out.as_str(), "success");
    allowed(run(&cfg, &mut st, &h, now()));
    // A token of another issuer is refused at once, not held for keys.
    let mut c = claims();
    c["iss"] = json!("https://other.test");
    let cfg2 = remote(false);
    let mut st2 = AuthState::new(&cfg2);
    let out = run(&cfg2, &mut st2, &bearer(&token("ES256", &c)), now());
    assert_eq!(denied(&out).0, DenyReason::WrongIssuer);
}

#[test]
fn jwks_garbage_500_and_timeout_are_outages_not_bad_tokens() {
    for (status, body) in [
        (Some(200), "<html>oops</html>"),
        (Some(500), ""),
        (None, ""),
        (Some(200), r#"{"keys":[]}"#),
    ] {
        let cfg = remote(false);
        let mut st = AuthState::new(&cfg);
        st.due_fetches(now());
        let out = reply(&cfg, &mut st, FetchKind::Jwks, status, body, now());
        assert!(
            matches!(
                out,
                FetchOutcome::Failed {
                    kept_keys: false,
                    ..
                }
            ),
            "{out:?}"
        );
        assert!(!out.is_success());
        assert!(st.last_fetch_error(0).is_some());
        let h = bearer(&token("ES256", &claims()));
        assert_eq!(
            denied(&run(&cfg, &mut st, &h, now())),
            (DenyReason::KeysUnavailable, 503)
        );
        // Retried with backoff: not at once, but after a second.
        assert!(st.due_fetches(now()).is_empty());
        assert_eq!(st.due_fetches(at(NOW + 1)).len(), 1);
    }
}

#[test]
fn the_outage_status_is_configurable() {
    let mut cfg = remote(false);
    cfg.unavailable_status = 500;
    let mut st = AuthState::new(&cfg);
    st.due_fetches(now());
    reply(&cfg, &mut st, FetchKind::Jwks, Some(502), "", now());
    let out = run(&cfg, &mut st, &bearer(&token("ES256", &claims())), now());
    assert_eq!(denied(&out), (DenyReason::KeysUnavailable, 500));
}

#[test]
fn keys_are_refreshed_at_cache_expiry_and_kept_when_the_refresh_fails() {
    let cfg = remote(false);
    let mut st = AuthState::new(&cfg);
    st.due_fetches(now());
    reply(&cfg, &mut st, FetchKind::Jwks, Some(200), &jwks(), now());
    assert!(st.due_fetches(at(NOW + 299)).is_empty());
    let due = st.due_fetches(at(NOW + 300));
    assert_eq!(due.len(), 1, "refresh at cache expiry");
    let out = reply(&cfg, &mut st, FetchKind::Jwks, Some(503), "", at(NOW + 300));
    assert!(matches!(
        out,
        FetchOutcome::Failed {
            kept_keys: true,
            ..
        }
    ));
    allowed(run(
        &cfg,
        &mut st,
        &bearer(&token("RS256", &claims())),
        at(NOW + 100),
    ));
    // The same keys again: the cache of verified tokens stays valid.
    assert_eq!(st.due_fetches(at(NOW + 301)).len(), 1);
    let out = reply(
        &cfg,
        &mut st,
        FetchKind::Jwks,
        Some(200),
        &jwks(),
        at(NOW + 301),
    );
    assert!(matches!(out, FetchOutcome::Updated { changed: false, .. }));
}

#[test]
fn a_lost_reply_counts_as_a_failure() {
    let cfg = remote(false);
    let mut st = AuthState::new(&cfg);
    assert_eq!(st.due_fetches(now()).len(), 1);
    assert!(st.due_fetches(at(NOW + 3)).is_empty());
    // timeout 1 s + 5 s grace: the fetch is abandoned, backoff 1 s, then retried.
    assert!(st.due_fetches(at(NOW + 6)).is_empty());
    assert_eq!(st.due_fetches(at(NOW + 7)).len(), 1);
    assert_eq!(
        reply(&cfg, &mut st, FetchKind::Discovery, Some(200), "{}", now()),
        FetchOutcome::Ignored
    );
}

#[test]
fn unknown_kid_triggers_one_rate_limited_refetch() {
    let cfg = remote(false);
    let mut st = AuthState::new(&cfg);
    let old = json!({"keys": [rsa_jwk("old")]}).to_string();
    st.due_fetches(now());
    reply(&cfg, &mut st, FetchKind::Jwks, Some(200), &old, now());
    // The issuer rotated to kid `new` (the same RSA key under a new name, for the test).
    let t = sign_raw(
        &json!({"alg": "RS256", "kid": "new"}),
        &claims(),
        by(Rsa::rs256(), &keys().rsa),
    );
    let h = bearer(&t);
    let t1 = at(NOW + 40);
    assert_eq!(
        run(&cfg, &mut st, &h, t1),
        AuthOutcome::Pending { providers: vec![0] }
    );
    assert_eq!(st.due_fetches(t1).len(), 1);
    let rotated = json!({"keys": [rsa_jwk("new")]}).to_string();
    reply(&cfg, &mut st, FetchKind::Jwks, Some(200), &rotated, t1);
    allowed(run(&cfg, &mut st, &h, t1));
    // Another unknown kid within 30 s: refused at once, and no fetch.
    let t2 = at(NOW + 50);
    let t = sign_raw(
        &json!({"alg": "RS256", "kid": "random"}),
        &claims(),
        by(Rsa::rs256(), &keys().rsa),
    );
    assert_eq!(
        denied(&run(&cfg, &mut st, &bearer(&t), t2)),
        (DenyReason::UnknownKid, 401)
    );
    assert!(st.due_fetches(t2).is_empty());
}

#[test]
fn a_rotation_right_after_a_fetch_is_picked_up() {
    // The refetch limit counts from unknown-kid refetches, not from ordinary fetches: a key
    // the issuer starts using a second after a refresh is fetched at once.
    let cfg = remote(false);
    let mut st = AuthState::new(&cfg);
    st.due_fetches(now());
    let old = json!({"keys": [rsa_jwk("old")]}).to_string();
    reply(&cfg, &mut st, FetchKind::Jwks, Some(200), &old, now());
    let t = sign_raw(
        &json!({"alg": "RS256", "kid": "new"}),
        &claims(),
        by(Rsa::rs256(), &keys().rsa),
    );
    let t1 = at(NOW + 1);
    assert_eq!(
        run(&cfg, &mut st, &bearer(&t), t1),
        AuthOutcome::Pending { providers: vec![0] }
    );
    assert_eq!(st.due_fetches(t1).len(), 1);
}

#[test]
fn discovery_then_jwks() {
    let cfg = remote(true);
    let mut st = AuthState::new(&cfg);
    let due = st.due_fetches(now());
    assert_eq!(
        (due[0].kind, due[0].path.as_str()),
        (FetchKind::Discovery, "/.well-known/openid-configuration")
    );
    let doc = json!({"issuer": ISSUER, "jwks_uri": "https://keys.issuer.test/certs"}).to_string();
    let out = reply(&cfg, &mut st, FetchKind::Discovery, Some(200), &doc, now());
    assert_eq!(
        out,
        FetchOutcome::Discovered {
            jwks_uri: "https://keys.issuer.test/certs".into()
        }
    );
    let due = st.due_fetches(now());
    assert_eq!(
        (due[0].kind, due[0].authority.as_str(), due[0].path.as_str()),
        (FetchKind::Jwks, "keys.issuer.test", "/certs")
    );
    reply(&cfg, &mut st, FetchKind::Jwks, Some(200), &jwks(), now());
    allowed(run(
        &cfg,
        &mut st,
        &bearer(&token("EdDSA", &claims())),
        now(),
    ));
}

#[test]
fn oversized_jwks_is_refused() {
    let mut cfg = remote(false);
    cfg.max_jwks_bytes = 100;
    let mut st = AuthState::new(&cfg);
    st.due_fetches(now());
    let out = reply(&cfg, &mut st, FetchKind::Jwks, Some(200), &jwks(), now());
    assert!(matches!(out, FetchOutcome::Refused { .. }), "{out:?}");
    assert_eq!(out.as_str(), "refused");
}

#[test]
fn remote_keys_that_cannot_verify_are_skipped_not_fatal() {
    let cfg = remote(false);
    let mut st = AuthState::new(&cfg);
    st.due_fetches(now());
    let doc =
        json!({"keys": [{"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}, p256_jwk("p256")]})
            .to_string();
    let out = reply(&cfg, &mut st, FetchKind::Jwks, Some(200), &doc, now());
    let FetchOutcome::Updated {
        keys: 1, skipped, ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(skipped.len(), 1);
}

#[test]
fn inline_keys_never_fetch_and_need_no_ticks() {
    let cfg = config();
    assert!(!cfg.needs_ticks());
    assert!(remote(false).needs_ticks());
    let mut st = AuthState::new(&cfg);
    assert!(st.due_fetches(now()).is_empty());
    assert_eq!(cfg.initial_fetch_wait(0), Duration::ZERO);
}

#[test]
fn a_waiting_request_is_denied_with_the_outage_status_by_the_caller() {
    let cfg = remote(false);
    assert_eq!(cfg.initial_fetch_wait(0), Duration::from_millis(1500));
    let out = cfg.deny(DenyReason::KeysUnavailable);
    assert_eq!(denied(&out), (DenyReason::KeysUnavailable, 503));
}

#[test]
fn fetch_outcomes_read_well_in_logs() {
    let f = FetchOutcome::Failed {
        error: "HTTP status 500".into(),
        kept_keys: true,
    };
    assert_eq!(
        f.to_string(),
        "fetch failed: HTTP status 500 (previous keys kept: true)"
    );
}

#[test]
fn keys_handed_over_by_another_root_replace_the_refresh_at_expiry() {
    // The native module's keeper refreshes by the clock and hands its keys over; a worker's
    // state then never refreshes at expiry itself, but still makes its first fetch.
    let cfg = remote(false);
    let mut keeper = AuthState::new(&cfg);
    keeper.due_fetches(now());
    reply(
        &cfg,
        &mut keeper,
        FetchKind::Jwks,
        Some(200),
        &jwks(),
        now(),
    );
    let mut worker = AuthState::new(&cfg);
    worker.refresh_elsewhere();
    assert_eq!(worker.due_fetches(now()).len(), 1, "its own first fetch");
    reply(
        &cfg,
        &mut worker,
        FetchKind::Jwks,
        Some(200),
        &jwks(),
        now(),
    );
    assert!(
        worker.due_fetches(at(NOW + 301)).is_empty(),
        "no refresh at expiry"
    );
    let h = bearer(&token("ES256", &claims()));
    allowed(run(&cfg, &mut worker, &h, at(NOW + 10)));
    // The keeper's refresh drops `p256`: handed over, the cached token is not taken any more.
    let rotated = json!({"keys": [rsa_jwk("rsa")]}).to_string();
    assert_eq!(keeper.due_fetches(at(NOW + 300)).len(), 1);
    reply(
        &cfg,
        &mut keeper,
        FetchKind::Jwks,
        Some(200),
        &rotated,
        at(NOW + 300),
    );
    let sets = keeper.key_sets();
    let set = sets[0].clone().unwrap();
    assert!(worker.adopt_keys(0, set.clone()));
    assert!(
        !worker.adopt_keys(0, set),
        "the same set twice changes nothing"
    );
    // (Not the cached verification: its key is gone, so an unknown-`kid` refetch.)
    assert_eq!(
        run(&cfg, &mut worker, &h, at(NOW + 301)),
        AuthOutcome::Pending { providers: vec![0] }
    );
    allowed(run(
        &cfg,
        &mut worker,
        &bearer(&token("RS256", &claims())),
        at(NOW + 301),
    ));
    // Without the hand-over a state refreshes at expiry, as before.
    assert_eq!(keeper.due_fetches(at(NOW + 600)).len(), 1);
}
