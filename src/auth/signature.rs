//! Signature checks, every algorithm through jwt-compact's [`Algorithm`] trait: EdDSA and HMAC
//! with jwt-compact's own implementations; RSA and ECDSA with meshgate's verification backends
//! (`super::rsa`: per-key Montgomery constants; `super::ecdsa`: per-key tables), which implement
//! the same trait over keys whose precomputation was done once, when the key set was loaded.
//!
//! jwt-compact's `Validator` would also deserialize the claims into its own `Claims` type; the
//! verifier needs the raw claims object anyway, so [`check`] does the same two steps as the
//! validator (fixed signature length, then `verify_signature`) and nothing else.

use std::borrow::Cow;
use std::num::NonZeroUsize;

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
        (KeyRef::Rsa(k), _) => match RsaVerifier::for_alg(alg) {
            Some(rsa) => check(&rsa, k, signed, signature),
            None => false,
        },
        (KeyRef::P256(k), Alg::Es256) => check(&Es256Verifier, k, signed, signature),
        (KeyRef::P384(k), Alg::Es384) => check(&Es384Verifier, k, signed, signature),
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

/// The signing key of a verification-only backend: there is none (the gateway never issues
/// tokens), so `sign` cannot be called.
#[derive(Debug, Clone, Copy)]
pub enum NoSigningKey {}

/// An RSA signature: as long as the key's modulus, which `RsaKey::verify` checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaSignature(Vec<u8>);

impl AlgorithmSignature for RsaSignature {
    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        Ok(RsaSignature(slice.to_vec()))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }
}

/// A JWS ECDSA signature, `r || s` (not DER): 64 bytes for ES256, 96 for ES384.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcdsaSignature<const N: usize>([u8; N]);

impl<const N: usize> AlgorithmSignature for EcdsaSignature<N> {
    const LENGTH: Option<NonZeroUsize> = NonZeroUsize::new(N);

    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        <[u8; N]>::try_from(slice)
            .map(EcdsaSignature)
            .map_err(|_| anyhow::anyhow!("an ECDSA signature must be {N} bytes"))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }
}

/// `RS256/384/512` and `PS256/384/512` over [`RsaKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RsaVerifier {
    name: &'static str,
    hash: Hash,
    padding: Padding,
}

impl RsaVerifier {
    pub fn for_alg(alg: Alg) -> Option<RsaVerifier> {
        let (hash, padding) = match alg {
            Alg::Rs256 => (Hash::Sha256, Padding::Pkcs1v15),
            Alg::Rs384 => (Hash::Sha384, Padding::Pkcs1v15),
            Alg::Rs512 => (Hash::Sha512, Padding::Pkcs1v15),
            Alg::Ps256 => (Hash::Sha256, Padding::Pss),
            Alg::Ps384 => (Hash::Sha384, Padding::Pss),
            Alg::Ps512 => (Hash::Sha512, Padding::Pss),
            _ => return None,
        };
        Some(RsaVerifier {
            name: alg.name(),
            hash,
            padding,
        })
    }
}

impl Algorithm for RsaVerifier {
    type SigningKey = NoSigningKey;
    type VerifyingKey = RsaKey;
    type Signature = RsaSignature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.name)
    }

    fn sign(&self, signing_key: &NoSigningKey, _message: &[u8]) -> RsaSignature {
        match *signing_key {}
    }

    fn verify_signature(&self, sig: &RsaSignature, key: &RsaKey, message: &[u8]) -> bool {
        key.verify(self.hash, self.padding, message, &sig.0)
    }
}

/// `ES256` over [`P256Key`] (per-key table).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Es256Verifier;

impl Algorithm for Es256Verifier {
    type SigningKey = NoSigningKey;
    type VerifyingKey = P256Key;
    type Signature = EcdsaSignature<64>;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("ES256")
    }

    fn sign(&self, signing_key: &NoSigningKey, _message: &[u8]) -> EcdsaSignature<64> {
        match *signing_key {}
    }

    fn verify_signature(&self, sig: &EcdsaSignature<64>, key: &P256Key, message: &[u8]) -> bool {
        key.verify(message, &sig.0)
    }
}

/// `ES384` over [`P384Key`] (per-key table).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Es384Verifier;

impl Algorithm for Es384Verifier {
    type SigningKey = NoSigningKey;
    type VerifyingKey = P384Key;
    type Signature = EcdsaSignature<96>;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("ES384")
    }

    fn sign(&self, signing_key: &NoSigningKey, _message: &[u8]) -> EcdsaSignature<96> {
        match *signing_key {}
    }

    fn verify_signature(&self, sig: &EcdsaSignature<96>, key: &P384Key, message: &[u8]) -> bool {
        key.verify(message, &sig.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_compact::alg::{Rsa, RsaPrivateKey, RsaPublicKey};
    use jwt_compact::{AlgorithmExt, Claims, Empty, Header, UntrustedToken};
    use rsa::traits::PublicKeyParts;

    /// jwt-compact's own validator accepts tokens through the backends: the trait is really
    /// implemented (name, signature length, verification), not only called by [`verify`].
    #[test]
    fn jwt_compact_validates_tokens_through_the_rsa_backend() {
        let private = RsaPrivateKey::new(&mut rand_core::OsRng, 2048).expect("key");
        let public = RsaPublicKey::from(&private);
        let key = RsaKey::new(&public.n().to_bytes_be(), &public.e().to_bytes_be()).expect("key");
        let claims = Claims::empty();
        for (signer, alg) in [
            (Rsa::rs256(), Alg::Rs256),
            (Rsa::rs384(), Alg::Rs384),
            (Rsa::rs512(), Alg::Rs512),
            (Rsa::ps256(), Alg::Ps256),
            (Rsa::ps384(), Alg::Ps384),
            (Rsa::ps512(), Alg::Ps512),
        ] {
            let token = signer
                .token(&Header::empty(), &claims, &private)
                .expect("sign");
            let untrusted = UntrustedToken::new(&token).expect("parse");
            let ours = RsaVerifier::for_alg(alg).expect("an RSA alg");
            assert_eq!(ours.name(), signer.name());
            assert!(ours.validator::<Empty>(&key).validate(&untrusted).is_ok());
            // The same signature under another padding or hash is refused.
            let other = if alg == Alg::Rs256 {
                Alg::Ps256
            } else {
                Alg::Rs256
            };
            let renamed = jwt_compact::Renamed::new(
                RsaVerifier::for_alg(other).expect("an RSA alg"),
                alg.name(),
            );
            assert!(renamed
                .validator::<Empty>(&key)
                .validate(&untrusted)
                .is_err());
        }
    }

    #[test]
    fn ecdsa_backends_check_the_signature_length_and_the_signature() {
        use p256::ecdsa::signature::Signer;
        let signing = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let key = P256Key::new(signing.verifying_key());
        let sig: p256::ecdsa::Signature = signing.sign(b"message");
        let bytes = sig.to_bytes();
        let p256 = KeyRef::P256(&key);
        assert!(verify(&p256, Alg::Es256, b"message", &bytes));
        assert!(!verify(&p256, Alg::Es256, b"other message", &bytes));
        assert!(!verify(&p256, Alg::Es256, b"message", &bytes[..63]));
        assert!(!verify(&p256, Alg::Es384, b"message", &bytes));
        assert!(EcdsaSignature::<96>::try_from_slice(&bytes).is_err());
    }

    #[test]
    fn an_rsa_key_never_verifies_a_non_rsa_algorithm() {
        assert!(RsaVerifier::for_alg(Alg::Es256).is_none());
        assert!(RsaVerifier::for_alg(Alg::Hs256).is_none());
        assert!(RsaVerifier::for_alg(Alg::EdDsa).is_none());
    }
}
