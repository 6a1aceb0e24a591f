//! Test-only entry to the signature verifiers, for the vector tests (`tests/wycheproof.rs`), the
//! crafted-encoding tests and the differential fuzz target: the same key constructors the JWKS
//! parser calls (`RsaKey::new` from `n`/`e`, jwt-compact's JWK conversion then `P256Key::new`,
//! `es384::verifying_key_from_coordinates` then `P384Key::new`, jwt-compact's Ed25519 key), and
//! the same verification call the request path makes (`signature::verify`: jwt-compact's
//! `Algorithm` trait over meshgate's backends). Not an API: hidden from the docs, and nothing in
//! the module uses it.

use std::borrow::Cow;

use jwt_compact::alg::{Ed25519, Es256};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::Algorithm;

use super::alg::Alg;
use super::ecdsa::{P256Key, P384Key};
use super::es384;
use super::rsa::RsaKey;
use super::signature::{self, KeyRef};

/// Width of the RSA verifier's limbs on this target (64 on 64-bit hosts, 32 on wasm32).
pub const RSA_LIMB_BITS: u32 = super::rsa::LIMB_BITS;

/// A public key, built as the JWKS parser builds it.
pub enum ProbeKey {
    Rsa(Box<RsaKey>),
    P256(Box<P256Key>),
    P384(Box<P384Key>),
    Ed25519(Box<<Ed25519 as Algorithm>::VerifyingKey>),
}

impl ProbeKey {
    /// An RSA key from the big-endian modulus and exponent (a JWK's `n` and `e`).
    pub fn rsa(n: &[u8], e: &[u8]) -> Result<ProbeKey, String> {
        RsaKey::new(n, e).map(|k| ProbeKey::Rsa(Box::new(k)))
    }

    /// A P-256 key from its coordinates (32 bytes each, as in a JWK).
    pub fn p256(x: &[u8], y: &[u8]) -> Result<ProbeKey, String> {
        let jwk = JsonWebKey::EllipticCurve {
            curve: Cow::Borrowed("P-256"),
            x: Cow::Borrowed(x),
            y: Cow::Borrowed(y),
            secret: None,
        };
        <Es256 as Algorithm>::VerifyingKey::try_from(&jwk)
            .map(|k| ProbeKey::P256(Box::new(P256Key::new(&k))))
            .map_err(|e| format!("bad P-256 key: {e}"))
    }

    /// A P-384 key from its coordinates (48 bytes each, as in a JWK).
    pub fn p384(x: &[u8], y: &[u8]) -> Result<ProbeKey, String> {
        es384::verifying_key_from_coordinates(x, y)
            .map(|k| ProbeKey::P384(Box::new(P384Key::new(&k))))
    }

    /// An Ed25519 key from its 32 bytes (a JWK's `x`).
    pub fn ed25519(x: &[u8]) -> Result<ProbeKey, String> {
        let jwk = JsonWebKey::KeyPair {
            curve: Cow::Borrowed("Ed25519"),
            x: Cow::Borrowed(x),
            secret: None,
        };
        <Ed25519 as Algorithm>::VerifyingKey::try_from(&jwk)
            .map(|k| ProbeKey::Ed25519(Box::new(k)))
            .map_err(|e| format!("bad OKP key: {e}"))
    }

    /// Whether `signature` is a valid `alg` (JWS name) signature of `signed` under this key,
    /// through the request path's `signature::verify`. An unknown `alg` is `false`.
    pub fn verify(&self, alg: &str, signed: &[u8], sig: &[u8]) -> bool {
        let Some(alg) = Alg::from_name(alg) else {
            return false;
        };
        let key = match self {
            ProbeKey::Rsa(k) => KeyRef::Rsa(k),
            ProbeKey::P256(k) => KeyRef::P256(k),
            ProbeKey::P384(k) => KeyRef::P384(k),
            ProbeKey::Ed25519(k) => KeyRef::Ed25519(k),
        };
        signature::verify(&key, alg, signed, sig)
    }
}
