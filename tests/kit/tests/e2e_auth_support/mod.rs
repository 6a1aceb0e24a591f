//! Shared fixtures of the auth end-to-end tests (`e2e_auth*.rs`).
//!
//! Keys are generated per test run, never stored: RSA 2048 (`kid` `rsa`), P-256 (`p256`),
//! P-384 (`p384`), Ed25519 (`ed`) and a 64-byte HMAC secret (`hmac`), plus a second P-256 key
//! (`other`) for the second provider and one (`rotated`) that only a rotated JWKS publishes.
//! Tokens are signed by hand from header and claims JSON so that hostile shapes can be built.
//! The baseline claims ([`claims`]) make a valid token of provider `main`: `iss` [`ISSUER`],
//! `aud` `api`, `sub` `user-1`, issued 10 s ago, expiring in 300 s, with nested and array
//! claims for `claim_to_headers`.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key};
use jwt_compact::alg::{Rsa, RsaPrivateKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{Algorithm, AlgorithmSignature};
use meshgate::auth::es384::Es384;
use meshgate::cli::envoy::types::Cluster;
use meshgate::cli::envoy::ClusterSpec;
use meshgate_kit::harness::{repo_root, Gateway};
use rand_core::{OsRng, RngCore};
use serde_json::{json, Value};

pub const ISSUER: &str = "https://issuer.meshgate.test";
pub const OTHER_ISSUER: &str = "https://other.meshgate.test";
pub const ALGS: [&str; 12] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256",
    "HS384", "HS512",
];

pub struct Keys {
    pub rsa: RsaPrivateKey,
    pub p256: <Es256 as Algorithm>::SigningKey,
    pub p384: p384::ecdsa::SigningKey,
    pub ed: <Ed25519 as Algorithm>::SigningKey,
    pub hmac: Vec<u8>,
    pub other: <Es256 as Algorithm>::SigningKey,
    pub rotated: <Es256 as Algorithm>::SigningKey,
}

/// The run's keys (RSA generation is slow in debug builds: once per test binary).
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
            other: <Es256 as Algorithm>::SigningKey::random(&mut OsRng),
            rotated: <Es256 as Algorithm>::SigningKey::random(&mut OsRng),
        }
    })
}

pub fn b64(bytes: &[u8]) -> String {
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

pub fn other_jwk(kid: &str) -> Value {
    with_kid(JsonWebKey::from(keys().other.verifying_key()), kid)
}

pub fn rotated_jwk(kid: &str) -> Value {
    with_kid(JsonWebKey::from(keys().rotated.verifying_key()), kid)
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

/// The five keys of provider `main`.
pub fn main_jwks() -> String {
    json!({"keys": [rsa_jwk("rsa"), p256_jwk("p256"), p384_jwk("p384"), ed_jwk("ed"), hmac_jwk("hmac")]})
        .to_string()
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A valid token's claims for provider `main`.
pub fn claims() -> Value {
    let now = now_secs();
    json!({
        "iss": ISSUER, "aud": "api", "sub": "user-1", "iat": now - 10, "exp": now + 300,
        "email": "user-1@example.test",
        "realm_access": {"roles": ["reader", "payer"]},
        "org": {"team": {"name": "payments"}},
    })
}

pub type Signer = Box<dyn Fn(&[u8]) -> Vec<u8>>;

pub fn signer<A: Algorithm + 'static>(alg: A, key: A::SigningKey) -> Signer
where
    A::SigningKey: 'static,
{
    Box::new(move |m| alg.sign(&key, m).as_bytes().to_vec())
}

/// `header.payload.signature` with exactly these header and claims JSON.
pub fn sign_raw(header: &Value, claims: &Value, sign: &Signer) -> String {
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = sign(signed.as_bytes());
    format!("{signed}.{}", b64(&sig))
}

/// The signer and `kid` of `alg` with the matching test key.
pub fn signer_for(alg: &str) -> (&'static str, Signer) {
    let k = keys();
    match alg {
        "RS256" => ("rsa", signer(Rsa::rs256(), k.rsa.clone())),
        "RS384" => ("rsa", signer(Rsa::rs384(), k.rsa.clone())),
        "RS512" => ("rsa", signer(Rsa::rs512(), k.rsa.clone())),
        "PS256" => ("rsa", signer(Rsa::ps256(), k.rsa.clone())),
        "PS384" => ("rsa", signer(Rsa::ps384(), k.rsa.clone())),
        "PS512" => ("rsa", signer(Rsa::ps512(), k.rsa.clone())),
        "ES256" => ("p256", signer(Es256, k.p256.clone())),
        "ES384" => ("p384", signer(Es384, k.p384.clone())),
        "EdDSA" => ("ed", signer(Ed25519, k.ed.clone())),
        "HS256" => ("hmac", signer(Hs256, Hs256Key::new(&k.hmac))),
        "HS384" => ("hmac", signer(Hs384, Hs384Key::new(&k.hmac))),
        "HS512" => ("hmac", signer(Hs512, Hs512Key::new(&k.hmac))),
        other => panic!("no test key for {other}"),
    }
}

/// A token of `alg` signed with the matching test key, `kid` naming it.
pub fn token(alg: &str, claims: &Value) -> String {
    let (kid, sign) = signer_for(alg);
    sign_raw(
        &json!({"alg": alg, "kid": kid, "typ": "JWT"}),
        claims,
        &sign,
    )
}

/// An ES256 token of the second provider (`kid` `other`).
pub fn other_token(claims: &Value) -> String {
    let sign = signer(Es256, keys().other.clone());
    sign_raw(&json!({"alg": "ES256", "kid": "other"}), claims, &sign)
}

/// An ES256 token signed with the key only the rotated JWKS publishes (`kid` `rotated`).
pub fn rotated_token(claims: &Value) -> String {
    let sign = signer(Es256, keys().rotated.clone());
    sign_raw(&json!({"alg": "ES256", "kid": "rotated"}), claims, &sign)
}

/// Writes a gateway YAML (the demo protos and upstreams, plus `extra` merged on top) into a
/// fresh temp directory and returns its path.
pub fn gateway_yaml(tag: &str, extra: Value) -> PathBuf {
    let proto = repo_root().join("proto");
    let mut doc = json!({
        "descriptors": {
            "files": ["meshgate/demo/v1/payments.proto", "google/rpc/error_details.proto"],
            "include": [proto.display().to_string()],
        },
        "upstreams": {"payments": {}, "wallets": {}},
        "services": {
            "meshgate.demo.v1.Payments": {"upstream": "payments"},
            "meshgate.demo.v1.Wallets": {"upstream": "wallets"},
        },
        "observe": {"access_log": true},
    });
    merge(&mut doc, extra);
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "meshgate-e2e-auth-{}-{tag}-{n}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
    path
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

/// A raw Envoy cluster (HTTP/1.1) that reaches `addr` (a JWKS server).
pub fn jwks_cluster(name: &str, addr: std::net::SocketAddr) -> Cluster {
    let mut cluster = Cluster::from(&ClusterSpec {
        name: name.into(),
        address: "127.0.0.1".into(),
        port: addr.port(),
        http2: false,
    });
    cluster.connect_timeout = "1s".into();
    cluster
}

/// Sum of the Prometheus samples of `metric` (a name suffix such as
/// `auth_decisions_total`) whose labels contain every `label="value"` of `labels`.
pub fn prom_sum(text: &str, metric: &str, labels: &[(&str, &str)]) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, rest) = l.split_once('{')?;
            if !name.ends_with(metric) {
                return None;
            }
            let (lab, value) = rest.rsplit_once('}')?;
            labels
                .iter()
                .all(|(k, v)| lab.contains(&format!("{k}=\"{v}\"")))
                .then(|| value.trim().parse::<f64>().ok())
                .flatten()
        })
        .map(|v| v as u64)
        .sum()
}

/// Waits (bounded) until `prom_sum` reaches `at_least`; returns the last value.
pub fn wait_prom(gw: &Gateway, metric: &str, labels: &[(&str, &str)], at_least: u64) -> u64 {
    let mut last = 0;
    for _ in 0..100 {
        let text = gw.envoy.stats_prometheus().unwrap_or_default();
        last = prom_sum(&text, metric, labels);
        if last >= at_least {
            return last;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    last
}

/// Access records, waiting (bounded) until there are at least `n`.
pub fn records(gw: &Gateway, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for _ in 0..100 {
        out = gw.access_records();
        if out.len() >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    out
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}
