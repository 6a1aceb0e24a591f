//! Signature checks with the key's precomputed material: RSA through `super::rsa` (per-key
//! Montgomery constants), ECDSA through `super::ecdsa` (per-key tables), EdDSA and HMAC
//! through jwt-compact's `Algorithm` trait.
//!
//! jwt-compact's `Validator` would also deserialize the claims into its own `Claims` type; the
//! verifier needs the raw claims object anyway, so this does the same two steps as the validator
//! (fixed signature length, then `verify_signature`) and nothing else.

use jwt_compact::alg::{Ed25519, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key};
use jwt_compact::{Algorithm, AlgorithmSignature};

use super::alg::Alg;
use super::ecdsa::{P256Key, P384Key};
use super::rsa::{Hash, Padding, RsaKey};

/// Borrowed key material, one variant per cryptosystem.
pub enum KeyRef<'a> {
    /// The key with its Montgomery constants (computed once, at parse time).
    Rsa(&'a RsaKey),
    P256(&'a P256Key),
    P384(&'a P384Key),
    Ed25519(&'a <Ed25519 as Algorithm>::VerifyingKey),
    Hmac(&'a Hs256Key, &'a Hs384Key, &'a Hs512Key),
}

/// `true` only when `signature` is a valid `alg` signature of `signed` under `key`. A key of
/// another type than `alg` needs is `false` (never a panic, never a fallback).
pub fn verify(key: &KeyRef<'_>, alg: Alg, signed: &[u8], signature: &[u8]) -> bool {
    match (key, alg) {
        (KeyRef::Rsa(k), Alg::Rs256) => {
            k.verify(Hash::Sha256, Padding::Pkcs1v15, signed, signature)
        }
        (KeyRef::Rsa(k), Alg::Rs384) => {
            k.verify(Hash::Sha384, Padding::Pkcs1v15, signed, signature)
        }
        (KeyRef::Rsa(k), Alg::Rs512) => {
            k.verify(Hash::Sha512, Padding::Pkcs1v15, signed, signature)
        }
        (KeyRef::Rsa(k), Alg::Ps256) => k.verify(Hash::Sha256, Padding::Pss, signed, signature),
        (KeyRef::Rsa(k), Alg::Ps384) => k.verify(Hash::Sha384, Padding::Pss, signed, signature),
        (KeyRef::Rsa(k), Alg::Ps512) => k.verify(Hash::Sha512, Padding::Pss, signed, signature),
        (KeyRef::P256(k), Alg::Es256) => k.verify(signed, signature),
        (KeyRef::P384(k), Alg::Es384) => k.verify(signed, signature),
        (KeyRef::Ed25519(k), Alg::EdDsa) => check(&Ed25519, k, signed, signature),
        (KeyRef::Hmac(k, _, _), Alg::Hs256) => check(&Hs256, k, signed, signature),
        (KeyRef::Hmac(_, k, _), Alg::Hs384) => check(&Hs384, k, signed, signature),
        (KeyRef::Hmac(_, _, k), Alg::Hs512) => check(&Hs512, k, signed, signature),
        _ => false,
    }
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
