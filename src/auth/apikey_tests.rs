//! API keys: lookup by hash, revocation, operations, sources, the requirement kind combined
//! with JWT providers, redaction, and configuration errors.

use super::*;
use crate::auth::input::{AuthInput, AuthLimits, RequirementInput};
use crate::auth::tests::{inline, now, provider, token, ISSUER};
use crate::auth::{authenticate_operation, AuthConfig, AuthOutcome, AuthState, DenyReason};

const ACME_KEY: &str = "mgk_acme_test_key";
const OLD_KEY: &str = "mgk_old_test_key";
const GET: &str = "meshgate.demo.v1.Payments.GetPayment";

fn client(name: &str, key: &str, ops: &[&str]) -> ApiClientInput {
    ApiClientInput {
        name: name.into(),
        key_sha256: key_sha256(key),
        operations: ops.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn keys_input() -> ApiKeysInput {
    let mut old = client("old", OLD_KEY, &["*"]);
    old.revoked = true;
    ApiKeysInput {
        from_param: Some("api_key".into()),
        clients: vec![
            client("acme", ACME_KEY, &[GET, "meshgate.demo.v1.Wallets.*"]),
            old,
        ],
        ..Default::default()
    }
}

fn config() -> AuthConfig {
    let input = AuthInput {
        providers: vec![provider("main", ISSUER, inline())],
        api_keys: Some(keys_input()),
        ..Default::default()
    };
    AuthConfig::compile(&input, &AuthLimits::default()).unwrap()
}

fn run(
    cfg: &AuthConfig,
    r: &RequirementInput,
    headers: &[(&str, &str)],
    query: Option<&str>,
    op: &str,
) -> AuthOutcome {
    let req = cfg.compile_requirement(r).unwrap();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut st = AuthState::new(cfg);
    let request = Request {
        headers: &headers,
        query,
        client_cert: None,
    };
    authenticate_operation(cfg, &mut st, &req, &request, Some(op), now())
}

fn reason(out: &AuthOutcome) -> (DenyReason, u16) {
    match out {
        AuthOutcome::Denied(e, r) => (*r, e.status()),
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[test]
fn a_known_key_names_its_client_upstream_and_is_not_forwarded() {
    let cfg = config();
    let out = run(
        &cfg,
        &RequirementInput::ApiKey,
        &[(":path", "/v1/payments/1"), ("x-api-key", ACME_KEY)],
        None,
        GET,
    );
    let AuthOutcome::Allowed(r) = out else {
        panic!("{out:?}")
    };
    assert_eq!(r.client.as_deref(), Some("acme"));
    assert!(r.principal.is_none());
    assert_eq!(
        r.set_headers,
        [("x-meshgate-client".to_string(), "acme".to_string())]
    );
    assert_eq!(r.remove_headers, ["x-api-key"]);
    assert!(cfg
        .headers_to_strip()
        .contains(&"x-meshgate-client".to_string()));
}

#[test]
fn unknown_revoked_and_missing_keys_are_401_and_a_forbidden_operation_403() {
    let cfg = config();
    let k = RequirementInput::ApiKey;
    let with = |key: &str, op: &str| run(&cfg, &k, &[("x-api-key", key)], None, op);
    assert_eq!(reason(&with("nope", GET)), (DenyReason::ApiKeyUnknown, 401));
    assert_eq!(
        reason(&with(OLD_KEY, GET)),
        (DenyReason::ApiKeyRevoked, 401)
    );
    assert_eq!(
        reason(&run(&cfg, &k, &[], None, GET)),
        (DenyReason::ApiKeyMissing, 401)
    );
    assert_eq!(
        reason(&with(ACME_KEY, "meshgate.demo.v1.Payments.CreatePayment")),
        (DenyReason::ApiKeyForbidden, 403)
    );
    // `pkg.Service.*` covers the service's methods.
    assert!(matches!(
        with(ACME_KEY, "meshgate.demo.v1.Wallets.GetWallet"),
        AuthOutcome::Allowed(_)
    ));
    // A key far longer than any configured one is not even hashed.
    let long = "k".repeat(MAX_KEY_BYTES + 1);
    assert_eq!(reason(&with(&long, GET)), (DenyReason::ApiKeyUnknown, 401));
}

#[test]
fn a_key_in_the_query_is_accepted_taken_out_and_redacted() {
    let cfg = config();
    let path = format!("/v1/payments/1?view=FULL&api_key={ACME_KEY}");
    let out = run(
        &cfg,
        &RequirementInput::ApiKey,
        &[(":path", &path)],
        path.split_once('?').map(|(_, q)| q),
        GET,
    );
    let AuthOutcome::Allowed(r) = out else {
        panic!("{out:?}")
    };
    assert_eq!(r.client.as_deref(), Some("acme"));
    assert!(r
        .set_headers
        .contains(&(":path".to_string(), "/v1/payments/1?view=FULL".to_string())));
    assert_eq!(
        cfg.redact_path(&path),
        "/v1/payments/1?view=FULL&api_key=REDACTED"
    );
    assert_eq!(cfg.query_without_tokens("view=FULL&api_key=x"), "view=FULL");
}

#[test]
fn api_keys_combine_with_jwt_providers_in_any_and_all() {
    let cfg = config();
    let jwt = token("ES256", &crate::auth::tests::claims());
    let bearer = format!("Bearer {jwt}");
    let any = RequirementInput::Any(vec![
        RequirementInput::Provider("main".into()),
        RequirementInput::ApiKey,
    ]);
    let all = RequirementInput::All(vec![
        RequirementInput::Provider("main".into()),
        RequirementInput::ApiKey,
    ]);
    // any: either one is enough.
    for headers in [
        vec![("authorization", bearer.as_str())],
        vec![("x-api-key", ACME_KEY)],
    ] {
        assert!(matches!(
            run(&cfg, &any, &headers, None, GET),
            AuthOutcome::Allowed(_)
        ));
    }
    // any: a forbidden key says more than a missing token.
    let out = run(&cfg, &any, &[("x-api-key", ACME_KEY)], None, "x.Y.Z");
    assert_eq!(reason(&out), (DenyReason::ApiKeyForbidden, 403));
    // all: both, and the result carries both identities.
    let both = [("authorization", bearer.as_str()), ("x-api-key", ACME_KEY)];
    let AuthOutcome::Allowed(r) = run(&cfg, &all, &both, None, GET) else {
        panic!("all with both")
    };
    assert_eq!(r.client.as_deref(), Some("acme"));
    assert!(r.principal.is_some());
    let out = run(&cfg, &all, &[("authorization", &bearer)], None, GET);
    assert_eq!(reason(&out), (DenyReason::ApiKeyMissing, 401));
}

#[test]
fn configuration_errors_name_the_field() {
    let compile = |k: ApiKeysInput| {
        let input = AuthInput {
            api_keys: Some(k),
            ..Default::default()
        };
        AuthConfig::compile(&input, &AuthLimits::default())
            .unwrap_err()
            .to_string()
    };
    let mut k = keys_input();
    k.clients[0].key_sha256 = "abc".into();
    assert!(compile(k).starts_with("auth.api_keys.clients[0].key_sha256: must be 64 hex"));
    let mut k = keys_input();
    k.clients[1].key_sha256 = k.clients[0].key_sha256.clone();
    assert!(compile(k).contains("clients[1].key_sha256: the same key"));
    let mut k = keys_input();
    k.clients[1].name = "acme".into();
    assert!(compile(k).contains("clients[1].name: duplicate"));
    let mut k = keys_input();
    k.clients[0].name = "a b".into();
    assert!(compile(k).contains("clients[0].name"));
    let mut k = keys_input();
    k.clients[0].operations = vec![];
    assert!(compile(k).contains("clients[0].operations"));
    let mut k = keys_input();
    k.clients[0].operations = vec!["pkg.*.Get".into()];
    assert!(compile(k).contains("clients[0].operations[0]"));
    let mut k = keys_input();
    k.clients[0].quota = Some(QuotaInput {
        requests: 5,
        unit: "week".into(),
    });
    assert!(compile(k).contains("clients[0].quota.unit: unknown unit"));
    let mut k = keys_input();
    k.global_rate_limit = Some(GlobalRateLimitInput {
        failure_mode: Some("maybe".into()),
        ..Default::default()
    });
    assert!(compile(k).contains("api_keys.global_rate_limit.failure_mode: unknown value"));
    let mut k = keys_input();
    k.global_rate_limit = Some(GlobalRateLimitInput {
        address: Some("no-port".into()),
        ..Default::default()
    });
    assert!(compile(k).contains("global_rate_limit.address"));
    let mut k = keys_input();
    k.from_header = Some("bad header".into());
    assert!(compile(k).contains("api_keys.from_header"));

    // `api_key` without clients is refused where it is written.
    let input = AuthInput {
        default: Some(RequirementInput::ApiKey),
        ..Default::default()
    };
    let err = AuthConfig::compile(&input, &AuthLimits::default()).unwrap_err();
    assert_eq!(err.field, "auth.default");
}

#[test]
fn quotas_and_hashes() {
    let q = compile_quota(&QuotaInput {
        requests: 10,
        unit: "minute".into(),
    })
    .unwrap();
    assert_eq!(
        (q.requests, q.unit.seconds(), q.unit.envoy_name()),
        (10, 60, "MINUTE")
    );
    assert!(compile_quota(&QuotaInput {
        requests: 0,
        unit: "second".into()
    })
    .is_err());
    // The well-known SHA-256 of "abc".
    assert_eq!(
        key_sha256("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn clients_are_found_by_name_through_the_index() {
    let keys = ApiKeys::compile(&keys_input()).unwrap();
    assert_eq!(
        keys.client_named("acme").map(|c| c.name.as_str()),
        Some("acme")
    );
    assert!(keys.client_named("old").is_some_and(|c| c.revoked));
    assert!(keys.client_named("nobody").is_none());
    assert!(keys.client_named("").is_none());
}
