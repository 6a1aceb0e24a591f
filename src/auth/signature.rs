//! Signature checks through jwt-compact's `Algorithm` trait, with the key's precomputed material.
//!
//! jwt-compact's `Validator` would also deserialize the claims into its own `Claims` type; the
//! verifier needs the raw claims object anyway, so this does the same two steps as the validator
//! (fixed signature length, then `verify_signature`) and nothing else.

use jwt_compact::alg::{
    Ed25519, Es256, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key, Rsa, RsaPublicKey,
};
use jwt_compact::{Algorithm, AlgorithmSignature};

use super::alg::Alg;
use super::es384::Es384;

/// Borrowed key material, one variant per cryptosystem.
pub enum KeyRef<'a> {
    /// The key and its modulus length in bytes (computed once, at parse time).
    Rsa(&'a RsaPublicKey, usize),
    P256(&'a <Es256 as Algorithm>::VerifyingKey),
    P384(&'a <Es384 as Algorithm>::VerifyingKey),
    Ed25519(&'a <Ed25519 as Algorithm>::VerifyingKey),
    Hmac(&'a Hs256Key, &'a Hs384Key, &'a Hs512Key),
}

/// `true` only when `signature` is a valid `alg` signature of `signed` under `key`. A key of
/// another type than `alg` needs is `false` (never a panic, never a fallback).
pub fn verify(key: &KeyRef<'_>, alg: Alg, signed: &[u8], signature: &[u8]) -> bool {
    match (key, alg) {
        (KeyRef::Rsa(k, n), Alg::Rs256) => rsa(Rsa::rs256(), k, *n, signed, signature),
        (KeyRef::Rsa(k, n), Alg::Rs384) => rsa(Rsa::rs384(), k, *n, signed, signature),
        (KeyRef::Rsa(k, n), Alg::Rs512) => rsa(Rsa::rs512(), k, *n, signed, signature),
        (KeyRef::Rsa(k, n), Alg::Ps256) => rsa(Rsa::ps256(), k, *n, signed, signature),
        (KeyRef::Rsa(k, n), Alg::Ps384) => rsa(Rsa::ps384(), k, *n, signed, signature),
        (KeyRef::Rsa(k, n), Alg::Ps512) => rsa(Rsa::ps512(), k, *n, signed, signature),
        (KeyRef::P256(k), Alg::Es256) => check(&Es256, k, signed, signature),
        (KeyRef::P384(k), Alg::Es384) => check(&Es384, k, signed, signature),
        (KeyRef::Ed25519(k), Alg::EdDsa) => check(&Ed25519, k, signed, signature),
        (KeyRef::Hmac(k, _, _), Alg::Hs256) => check(&Hs256, k, signed, signature),
        (KeyRef::Hmac(_, k, _), Alg::Hs384) => check(&Hs384, k, signed, signature),
        (KeyRef::Hmac(_, _, k), Alg::Hs512) => check(&Hs512, k, signed, signature),
        _ => false,
    }
}

/// RSA signatures are exactly as long as the modulus (RFC 8017 §8.2.2); anything else is
/// refused before any big-number work.
fn rsa(alg: Rsa, key: &RsaPublicKey, len: usize, signed: &[u8], signature: &[u8]) -> bool {
    signature.len() == len && check(&alg, key, signed, signature)
}

fn check<A: Algorithm>(alg: &A, key: &A::VerifyingKey, signed: &[u8], signature: &[u8]) -> bool {
    if let Some(len) = A::Signature::LENGTH {
        if signature.len() != len.get() {
            return false;
        }
    }
    match A::Signature::try_from_slice(signature) {
        Ok(sig) => alg.verify_signature(&sig, key, signed),
        Err(_) => false,
    }
}
