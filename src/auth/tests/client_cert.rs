//! The `client_cert` requirement kind (mTLS) through `authenticate`, alone and combined with a
//! token provider.

use super::*;
use crate::auth::client_cert::ClientCertInput;

fn eval(
    cfg: &AuthConfig,
    r: &RequirementInput,
    token: Option<&str>,
    cert: Option<&str>,
) -> AuthOutcome {
    let req = cfg.compile_requirement(r).unwrap();
    let mut st = AuthState::new(cfg);
    let headers = match token {
        Some(t) => bearer(t),
        None => vec![(":path".to_string(), "/x".to_string())],
    };
    let request = Request {
        headers: &headers,
        query: None,
        client_cert: cert,
    };
    authenticate(cfg, &mut st, &req, &request, now())
}

fn cert(principals: &[&str]) -> RequirementInput {
    RequirementInput::ClientCert(ClientCertInput {
        principals: principals.iter().map(|p| p.to_string()).collect(),
    })
}

const ACME: &str = "spiffe://partners/acme";

#[test]
fn client_cert_requirement_needs_a_verified_certificate_of_a_listed_principal() {
    let cfg = config();
    assert_eq!(
        denied(&eval(&cfg, &cert(&[]), None, None)),
        (DenyReason::ClientCertMissing, 401)
    );
    assert!(allowed(eval(&cfg, &cert(&[]), None, Some(ACME)))
        .principal
        .is_none());
    assert!(matches!(
        eval(&cfg, &cert(&[ACME]), None, Some(ACME)),
        AuthOutcome::Allowed(_)
    ));
    assert_eq!(
        denied(&eval(
            &cfg,
            &cert(&[ACME]),
            None,
            Some("spiffe://partners/other")
        )),
        (DenyReason::ClientCertNotAllowed, 403)
    );
}

#[test]
fn client_cert_combines_with_token_providers() {
    let cfg = config();
    let t = token("ES256", &claims());
    let jwt = RequirementInput::Provider("main".into());
    let any = RequirementInput::Any(vec![jwt.clone(), cert(&[ACME])]);
    let all = RequirementInput::All(vec![jwt, cert(&[ACME])]);
    // any: either is enough.
    assert!(matches!(
        eval(&cfg, &any, None, Some(ACME)),
        AuthOutcome::Allowed(_)
    ));
    let r = allowed(eval(&cfg, &any, Some(&t), None));
    assert_eq!(
        r.principal.and_then(|p| p.subject).as_deref(),
        Some("user-1")
    );
    assert_eq!(denied(&eval(&cfg, &any, None, None)).1, 401);
    // all: both, and the token's subject is the principal.
    assert_eq!(
        denied(&eval(&cfg, &all, Some(&t), None)),
        (DenyReason::ClientCertMissing, 401)
    );
    assert_eq!(
        denied(&eval(&cfg, &all, None, Some(ACME))).0,
        DenyReason::Missing
    );
    let r = allowed(eval(&cfg, &all, Some(&t), Some(ACME)));
    assert_eq!(
        r.principal.and_then(|p| p.subject).as_deref(),
        Some("user-1")
    );
}

#[test]
fn the_requirement_kind_parses() {
    let parsed: RequirementInput =
        serde_json::from_value(json!({"client_cert": {"principals": [ACME]}})).unwrap();
    assert_eq!(parsed, cert(&[ACME]));
    let any: RequirementInput = serde_json::from_value(json!({"client_cert": {}})).unwrap();
    assert_eq!(any, cert(&[]));
    assert!(
        serde_json::from_value::<RequirementInput>(json!({"client_cert": {"sans": []}})).is_err()
    );
}
