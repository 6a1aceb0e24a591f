//! Behaviour tests of the auth core over generated keys and tokens.
//!
//! Fixtures are generated, not stored: one key per algorithm family (RSA 2048, P-256, P-384,
//! Ed25519, a 64-byte HMAC secret), made once per test run, published as an inline JWKS with
//! `kid`s `rsa`, `p256`, `p384`, `ed`, `hmac`. Tokens are signed by hand from header and claim
//! JSON so that every malformed or hostile shape can be built. The baseline claims
//! ([`claims`]) are a valid token of provider `main`: `iss` [`ISSUER`], `aud` `api`, `sub`
//! `user-1`, issued at [`NOW`] - 10 s, expiring at [`NOW`] + 300 s.

mod hardening;
mod remote;
mod requirements;
mod security;

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_compact::alg::{Ed25519, Es256, Hs256Key, RsaPrivateKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::Algorithm;
use rand_core::{OsRng, RngCore};
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

pub struct Keys {
    pub rsa: RsaPrivateKey,
    pub p256: <Es256 as Algorithm>::SigningKey,
    pub p384: p384::ecdsa::SigningKey,
    pub ed: <Ed25519 as Algorithm>::SigningKey,
    pub hmac: Vec<u8>,
}

/// The test keys (RSA generation is slow in debug builds: once per run).
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut seed = [0u8; 32];
        OsRng.fill_bytes(&mut seed);
        let mut hmac = vec![0u8; 64];
        OsRng.fill_bytes(&mut hmac);
        Keys {
            rsa: RsaPrivateKey::new(&mut OsRng, 2048).unwrap(),
            p256: <Es256 as Algorithm>::SigningKey::random(&mut OsRng),
            p384: p384::ecdsa::SigningKey::random(&mut OsRng),
            ed: <Ed25519 as Algorithm>::SigningKey::from_bytes(&seed),
            hmac,
        }
    })
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn with_kid(jwk: JsonWebKey<'_>, kid: &str) -> Value {
    let mut v = serde_json::to_value(&jwk).unwrap();
    v["kid"] = json!(kid);
    v
}

pub fn rsa_jwk(kid: &str) -> Value {
    with_kid(JsonWebKey::from(&keys().rsa.to_public_key()), kid)
}

pub fn p256_jwk(kid: &str) -> Value {
    with_kid(JsonWebKey::from(keys().p256.verifying_key()), kid)
}

pub fn p384_jwk(kid: &str) -> Value {
    let point = keys().p384.verifying_key().to_encoded_point(false);
    json!({"kty": "EC", "crv": "P-384", "kid": kid,
           "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())})
}

pub fn ed_jwk(kid: &str) -> Value {
    with_kid(JsonWebKey::from(&keys().ed.verifying_key()), kid)
}

pub fn hmac_jwk(kid: &str) -> Value {
    json!({"kty": "oct", "kid": kid, "k": b64(&keys().hmac)})
}

/// All five test keys.
pub fn jwks() -> String {
    json!({"keys": [rsa_jwk("rsa"), p256_jwk("p256"), p384_jwk("p384"), ed_jwk("ed"), hmac_jwk("hmac")]})
        .to_string()
}

/// A valid token's claims for provider `main`.
pub fn claims() -> Value {
    json!({"iss": ISSUER, "aud": "api", "sub": "user-1", "iat": NOW - 10, "exp": NOW + 300})
}

/// `header.payload` signed with `alg` under `key`, with exactly these header and claims JSON.
pub fn sign_raw(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = sign(signed.as_bytes());
    format!("{signed}.{}", b64(&sig))
}

pub fn by<'k, A: Algorithm + 'k>(alg: A, key: &'k A::SigningKey) -> impl Fn(&[u8]) -> Vec<u8> + 'k {
    move |m| jwt_compact::AlgorithmSignature::as_bytes(&alg.sign(key, m)).to_vec()
}

type Signer = Box<dyn Fn(&[u8]) -> Vec<u8>>;

/// A token of `alg` (by name) with the matching test key, `kid` set to that key.
pub fn token(alg: &str, claims: &Value) -> String {
    use jwt_compact::alg::{Hs256, Hs384, Hs512, Rsa};
    let k = keys();
    let (kid, sign): (&str, Signer) = match alg {
        "RS256" => ("rsa", Box::new(by(Rsa::rs256(), &k.rsa))),
        "RS384" => ("rsa", Box::new(by(Rsa::rs384(), &k.rsa))),
        "RS512" => ("rsa", Box::new(by(Rsa::rs512(), &k.rsa))),
        "PS256" => ("rsa", Box::new(by(Rsa::ps256(), &k.rsa))),
        "PS384" => ("rsa", Box::new(by(Rsa::ps384(), &k.rsa))),
        "PS512" => ("rsa", Box::new(by(Rsa::ps512(), &k.rsa))),
        "ES256" => ("p256", Box::new(by(Es256, &k.p256))),
        "ES384" => ("p384", Box::new(by(es384::Es384, &k.p384))),
        "EdDSA" => ("ed", Box::new(by(Ed25519, &k.ed))),
        "HS256" => ("hmac", Box::new(hmac_signer(Hs256, Hs256Key::new(&k.hmac)))),
        "HS384" => (
            "hmac",
            Box::new(hmac_signer(Hs384, jwt_compact::alg::Hs384Key::new(&k.hmac))),
        ),
        "HS512" => (
            "hmac",
            Box::new(hmac_signer(Hs512, jwt_compact::alg::Hs512Key::new(&k.hmac))),
        ),
        other => panic!("no test key for {other}"),
    };
    sign_raw(&json!({"alg": alg, "kid": kid, "typ": "JWT"}), claims, sign)
}

/// The token with one bit of its signature flipped (still canonical base64url).
pub fn tamper_signature(token: &str) -> String {
    let (signed, sig) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
    bytes[0] ^= 1;
    format!("{signed}.{}", b64(&bytes))
}

pub fn hmac_signer<A: Algorithm>(alg: A, key: A::SigningKey) -> impl Fn(&[u8]) -> Vec<u8> {
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
