//! Behaviour tests of the auth core over the shared test keys and tokens.
//!
//! The keys, JWKS and token signing are the shared fixtures of `meshgate-fixtures`
//! (tests/fixtures: fixed TEST-ONLY keys, one per algorithm family: RSA 2048, P-256, P-384,
//! Ed25519, a 64-byte HMAC secret), published as an inline JWKS with `kid`s `rsa`, `p256`,
//! `p384`, `ed`, `hmac`. Tokens are signed by hand from header and claim JSON so that every
//! malformed or hostile shape can be built. The baseline claims ([`claims`]) are a valid token
//! of provider `main`: `iss` [`ISSUER`], `aud` `api`, `sub` `user-1`, issued at [`NOW`] - 10 s,
//! expiring at [`NOW`] + 300 s.

mod client_cert;
mod hardening;
mod remote;
mod requirements;
mod security;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_compact::alg::{Es256, Hs256Key};
use jwt_compact::jwk::JsonWebKey;
pub use meshgate_fixtures::b64;
pub use meshgate_fixtures::jwks::{
    hmac as hmac_jwk, p256 as p256_jwk, p384 as p384_jwk, rsa as rsa_jwk,
};
pub use meshgate_fixtures::keys::keys;
pub use meshgate_fixtures::token::{by, sign_raw, tamper_signature, token};
use serde_json::{json, Value};

use super::*;
use crate::auth::input::{AuthInput, AuthLimits, JwksInput, ProviderInput, RequirementInput};

pub const ISSUER: &str = "https://issuer.test";
pub const NOW: u64 = 1_700_000_000;

pub fn now() -> SystemTime {
    at(NOW)
}

pub fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// All five main test keys (`meshgate_fixtures::jwks::main`).
pub fn jwks() -> String {
    meshgate_fixtures::jwks::main()
}

/// A valid token's claims for provider `main` at [`NOW`].
pub fn claims() -> Value {
    meshgate_fixtures::claims::valid(ISSUER, NOW)
}

/// A signer of jwt-compact's `alg` with an owned key (for keys built inside a test).
pub fn hmac_signer<A: jwt_compact::Algorithm>(
    alg: A,
    key: A::SigningKey,
) -> impl Fn(&[u8]) -> Vec<u8> {
    move |m| jwt_compact::AlgorithmSignature::as_bytes(&alg.sign(&key, m)).to_vec()
}

pub fn provider(name: &str, issuer: &str, jwks: JwksInput) -> ProviderInput {
    ProviderInput {
        name: name.into(),
        issuer: issuer.into(),
        audiences: vec!["api".into()],
        jwks,
        ..Default::default()
    }
}

pub fn inline() -> JwksInput {
    JwksInput {
        inline: Some(jwks()),
        remote: None,
    }
}

/// One provider `main` with the inline test keys; default requirement: `main`.
pub fn config_with(p: ProviderInput) -> AuthConfig {
    let input = AuthInput {
        providers: vec![p],
        default: Some(RequirementInput::Provider("main".into())),
        ..Default::default()
    };
    AuthConfig::compile(&input, &AuthLimits::default()).unwrap()
}

pub fn config() -> AuthConfig {
    config_with(provider("main", ISSUER, inline()))
}

pub fn bearer(token: &str) -> Vec<(String, String)> {
    vec![
        (":path".into(), "/v1/payments/1".into()),
        ("authorization".into(), format!("Bearer {token}")),
    ]
}

/// Authenticate `headers` with the configuration's default requirement at `when`.
pub fn run(
    cfg: &AuthConfig,
    state: &mut AuthState,
    headers: &[(String, String)],
    when: SystemTime,
) -> AuthOutcome {
    let req = Request {
        headers,
        query: None,
        client_cert: None,
    };
    authenticate(cfg, state, cfg.default_requirement(), &req, when)
}

/// The deny reason and HTTP status, or panic when allowed/pending.
pub fn denied(outcome: &AuthOutcome) -> (DenyReason, u16) {
    match outcome {
        AuthOutcome::Denied(e, r) => (*r, e.status()),
        other => panic!("expected a denial, got {other:?}"),
    }
}

pub fn allowed(outcome: AuthOutcome) -> AuthResult {
    match outcome {
        AuthOutcome::Allowed(r) => r,
        other => panic!("expected allowed, got {other:?}"),
    }
}

/// One-shot: the default configuration, a fresh state, this token, now.
pub fn check(token: &str) -> AuthOutcome {
    let cfg = config();
    let mut st = AuthState::new(&cfg);
    run(&cfg, &mut st, &bearer(token), now())
}
