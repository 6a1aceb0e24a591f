//! Requirement kinds, outputs (principal, claim headers, payload header, token removal),
//! the verified-token cache, and configuration errors.

use super::*;
use crate::auth::input::{ClaimToHeaderInput, HeaderSourceInput, TokenCacheInput};

const ISSUER_B: &str = "https://b.test";

/// Providers `a` (Authorization: Bearer, issuer [`ISSUER`]) and `b` (`x-b-token` header,
/// issuer [`ISSUER_B`]), both with the inline test keys.
fn two_providers(default: Option<RequirementInput>) -> AuthConfig {
    let a = provider("a", ISSUER, inline());
    let mut b = provider("b", ISSUER_B, inline());
    b.from_headers = vec![HeaderSourceInput {
        name: "x-b-token".into(),
        value_prefix: None,
    }];
    let input = AuthInput {
        providers: vec![a, b],
        default,
        ..Default::default()
    };
    AuthConfig::compile(&input, &AuthLimits::default()).unwrap()
}

fn b_claims() -> Value {
    let mut c = claims();
    c["iss"] = json!(ISSUER_B);
    c["sub"] = json!("user-b");
    c
}

fn eval(cfg: &AuthConfig, r: &RequirementInput, headers: &[(String, String)]) -> AuthOutcome {
    let req = cfg.compile_requirement(r).unwrap();
    let mut st = AuthState::new(cfg);
    authenticate(
        cfg,
        &mut st,
        &req,
        &Request {
            headers,
            query: None,
            client_cert: None,
        },
        now(),
    )
}

fn headers(a: Option<&str>, b: Option<&str>) -> Vec<(String, String)> {
    let mut h = vec![(":path".to_string(), "/x".to_string())];
    if let Some(a) = a {
        h.push(("authorization".into(), format!("Bearer {a}")));
    }
    if let Some(b) = b {
        h.push(("x-b-token".into(), b.into()));
    }
    h
}

fn subject(out: AuthOutcome) -> Option<String> {
    allowed(out).principal.and_then(|p| p.subject)
}

#[test]
fn any_accepts_either_provider_and_reports_the_most_telling_failure() {
    let cfg = two_providers(None);
    let any = RequirementInput::Any(vec![
        RequirementInput::Provider("a".into()),
        RequirementInput::Provider("b".into()),
    ]);
    let tb = token("ES256", &b_claims());
    assert_eq!(
        subject(eval(&cfg, &any, &headers(None, Some(&tb)))).as_deref(),
        Some("user-b")
    );
    let ta = token("ES256", &claims());
    assert_eq!(
        subject(eval(&cfg, &any, &headers(Some(&ta), None))).as_deref(),
        Some("user-1")
    );
    assert_eq!(
        denied(&eval(&cfg, &any, &headers(None, None))),
        (DenyReason::Missing, 401)
    );
    let mut expired = b_claims();
    expired["exp"] = json!(NOW - 1000);
    let out = eval(&cfg, &any, &headers(None, Some(&token("ES256", &expired))));
    assert_eq!(denied(&out).0, DenyReason::Expired);
}

#[test]
fn all_needs_every_provider() {
    let cfg = two_providers(None);
    let all = RequirementInput::All(vec![
        RequirementInput::Provider("a".into()),
        RequirementInput::Provider("b".into()),
    ]);
    let (ta, tb) = (token("EdDSA", &claims()), token("EdDSA", &b_claims()));
    let r = allowed(eval(&cfg, &all, &headers(Some(&ta), Some(&tb))));
    assert_eq!(r.principal.unwrap().provider, "a");
    assert_eq!(
        r.remove_headers,
        vec!["authorization".to_string(), "x-b-token".to_string()]
    );
    assert_eq!(
        denied(&eval(&cfg, &all, &headers(Some(&ta), None))).0,
        DenyReason::Missing
    );
}

#[test]
fn allow_missing_accepts_no_token_but_not_a_bad_one() {
    let cfg = two_providers(None);
    let r = allowed(eval(
        &cfg,
        &RequirementInput::AllowMissing,
        &headers(None, None),
    ));
    assert_eq!(r.principal, None);
    let ta = token("HS256", &claims());
    assert_eq!(
        subject(eval(
            &cfg,
            &RequirementInput::AllowMissing,
            &headers(Some(&ta), None)
        ))
        .as_deref(),
        Some("user-1")
    );
    let bad = tamper_signature(&ta);
    let out = eval(
        &cfg,
        &RequirementInput::AllowMissing,
        &headers(Some(&bad), None),
    );
    assert_eq!(denied(&out).0, DenyReason::BadSignature);
}

#[test]
fn allow_missing_or_failed_never_refuses_but_keeps_a_valid_principal() {
    let cfg = two_providers(None);
    let r = RequirementInput::AllowMissingOrFailed;
    assert_eq!(
        allowed(eval(&cfg, &r, &headers(Some("garbage"), None))).principal,
        None
    );
    assert_eq!(
        allowed(eval(&cfg, &r, &headers(None, None))).principal,
        None
    );
    let tb = token("RS256", &b_claims());
    assert_eq!(
        subject(eval(&cfg, &r, &headers(None, Some(&tb)))).as_deref(),
        Some("user-b")
    );
}

#[test]
fn none_does_not_look_at_tokens() {
    let cfg = two_providers(None);
    let r = allowed(eval(
        &cfg,
        &RequirementInput::None,
        &headers(Some("garbage"), None),
    ));
    assert_eq!(r, AuthResult::default());
}

#[test]
fn operations_without_a_rule_are_denied_by_default() {
    let cfg = two_providers(None);
    assert_eq!(cfg.default_requirement(), &Requirement::Deny);
    let mut st = AuthState::new(&cfg);
    let out = run(
        &cfg,
        &mut st,
        &headers(Some(&token("ES256", &claims())), None),
        now(),
    );
    assert_eq!(denied(&out), (DenyReason::NoRule, 403));
    let cfg = two_providers(Some(RequirementInput::Provider("b".into())));
    assert_eq!(cfg.default_requirement(), &Requirement::Provider(1));
}

#[test]
fn outputs_claim_headers_payload_header_and_strip_the_token() {
    let mut p = provider("main", ISSUER, inline());
    p.claim_to_headers = vec![
        ClaimToHeaderInput {
            claim: "sub".into(),
            header: "X-User".into(),
        },
        ClaimToHeaderInput {
            claim: "realm_access.roles".into(),
            header: "x-roles".into(),
        },
        ClaimToHeaderInput {
            claim: "absent.claim".into(),
            header: "x-absent".into(),
        },
    ];
    p.forward_payload_header = Some("x-jwt-payload".into());
    let cfg = config_with(p);
    assert_eq!(
        cfg.headers_to_strip(),
        vec!["x-user", "x-roles", "x-absent", "x-jwt-payload"]
    );
    let mut c = claims();
    c["realm_access"] = json!({"roles": ["admin", "ops"]});
    let t = token("PS384", &c);
    let mut st = AuthState::new(&cfg);
    let r = allowed(run(&cfg, &mut st, &bearer(&t), now()));
    let payload = t.split('.').nth(1).unwrap().to_string();
    assert_eq!(
        r.set_headers,
        vec![
            ("x-user".to_string(), "user-1".to_string()),
            ("x-roles".to_string(), "admin,ops".to_string()),
            ("x-jwt-payload".to_string(), payload),
        ]
    );
    assert_eq!(r.remove_headers, vec!["authorization".to_string()]);
    let p = r.principal.unwrap();
    assert_eq!(
        (p.subject.as_deref(), p.issuer.as_str()),
        (Some("user-1"), ISSUER)
    );
    assert_eq!(p.claims["realm_access"]["roles"][1], "ops");
}

#[test]
fn forward_true_keeps_the_token() {
    let mut p = provider("main", ISSUER, inline());
    p.forward = true;
    let cfg = config_with(p);
    let mut st = AuthState::new(&cfg);
    let r = allowed(run(
        &cfg,
        &mut st,
        &bearer(&token("ES256", &claims())),
        now(),
    ));
    assert!(r.remove_headers.is_empty());
}

#[test]
fn query_token_is_verified_and_removed_from_the_path() {
    let mut p = provider("main", ISSUER, inline());
    p.from_params = vec!["access_token".into()];
    let cfg = config_with(p);
    let t = token("ES256", &claims());
    let query = format!("view=full&access_token={t}");
    let headers = vec![(":path".to_string(), format!("/v1/payments/1?{query}"))];
    let mut st = AuthState::new(&cfg);
    let req = Request {
        headers: &headers,
        query: Some(&query),
        client_cert: None,
    };
    let r = allowed(authenticate(
        &cfg,
        &mut st,
        cfg.default_requirement(),
        &req,
        now(),
    ));
    assert_eq!(
        r.set_headers,
        vec![(":path".to_string(), "/v1/payments/1?view=full".to_string())]
    );
}

/// Logged URLs hide the token parameters of every provider, `forward: true` ones included
/// (their token stays in the upstream request, so the path still holds it), and of a token that
/// was refused (the path was never rewritten).
#[test]
fn logged_paths_hide_every_provider_token_parameter() {
    let mut a = provider("a", ISSUER, inline());
    a.from_params = vec!["access_token".into()];
    let mut b = provider("b", ISSUER_B, inline());
    b.from_params = vec!["b_token".into(), "access_token".into()];
    b.forward = true;
    let input = AuthInput {
        providers: vec![a, b],
        ..Default::default()
    };
    let cfg = AuthConfig::compile(&input, &AuthLimits::default()).unwrap();
    let expired = {
        let mut c = claims();
        c["exp"] = json!(NOW - 3600);
        token("ES256", &c)
    };
    let path = format!("/v1/p?access_token={expired}&page=2&b_token={expired}");
    let shown = cfg.redact_path(&path);
    assert_eq!(shown, "/v1/p?access_token=REDACTED&page=2&b_token=REDACTED");
    assert!(!shown.contains(&expired[..20]));
    assert_eq!(cfg.redact_path("/v1/p?page=2"), "/v1/p?page=2");
    // Without query-parameter sources nothing is hidden (the name means nothing here).
    assert_eq!(
        config().redact_path("/v1/p?access_token=x"),
        "/v1/p?access_token=x"
    );
}

#[test]
fn a_repeated_token_is_served_from_the_cache_until_it_expires() {
    let cfg = config();
    let mut st = AuthState::new(&cfg);
    let mut c = claims();
    c["exp"] = json!(NOW + 100);
    let h = bearer(&token("RS256", &c));
    let first = allowed(run(&cfg, &mut st, &h, now()));
    assert_eq!(st.cached_tokens(), 1);
    let second = allowed(run(&cfg, &mut st, &h, at(NOW + 50)));
    assert!(
        !first.cached && second.cached,
        "the second answer comes from the cache"
    );
    assert_eq!(first.principal, second.principal);
    assert_eq!(first.set_headers, second.set_headers);
    assert_eq!(st.cached_tokens(), 1);
    // Past exp + skew the cached entry is not used: the token is expired.
    assert_eq!(
        denied(&run(&cfg, &mut st, &h, at(NOW + 161))).0,
        DenyReason::Expired
    );
}

#[test]
fn a_disabled_cache_stores_nothing() {
    let input = AuthInput {
        providers: vec![provider("main", ISSUER, inline())],
        default: Some(RequirementInput::Provider("main".into())),
        cache: TokenCacheInput {
            enabled: false,
            max_entries: 10,
        },
        ..Default::default()
    };
    let cfg = AuthConfig::compile(&input, &AuthLimits::default()).unwrap();
    let mut st = AuthState::new(&cfg);
    allowed(run(
        &cfg,
        &mut st,
        &bearer(&token("ES256", &claims())),
        now(),
    ));
    assert_eq!(st.cached_tokens(), 0);
}

#[test]
fn configuration_errors_name_their_field() {
    let compile = |providers: Vec<ProviderInput>, default: Option<RequirementInput>| {
        let input = AuthInput {
            providers,
            default,
            ..Default::default()
        };
        AuthConfig::compile(&input, &AuthLimits::default())
            .unwrap_err()
            .to_string()
    };
    let ok = provider("a", ISSUER, inline());
    let no_issuer = provider("b", "", inline());
    assert_eq!(
        compile(vec![ok.clone(), no_issuer], None),
        "auth.providers[1].issuer: must not be empty"
    );
    let err = compile(
        vec![ok.clone()],
        Some(RequirementInput::Provider("zz".into())),
    );
    assert!(err.starts_with("auth.default.provider: "), "{err}");
    let weak = json!({"keys": [hmac_jwk("ok"), {"kty": "oct", "k": "c2hvcnQ"}]}).to_string();
    let bad_keys = provider(
        "c",
        ISSUER,
        JwksInput {
            inline: Some(weak),
            remote: None,
        },
    );
    let err = compile(vec![bad_keys], None);
    assert!(
        err.starts_with("auth.providers[0].jwks.inline.keys[1]: "),
        "{err}"
    );
    let both = provider(
        "d",
        ISSUER,
        JwksInput {
            inline: Some(jwks()),
            remote: Some(Default::default()),
        },
    );
    assert!(compile(vec![both], None).starts_with("auth.providers[0].jwks: "));
    assert!(compile(vec![ok.clone(), ok], None).starts_with("auth.providers[1].name: duplicate"));
}
