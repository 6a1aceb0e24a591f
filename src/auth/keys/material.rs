//! Key material from a JWK, in the form the verifiers use, and its fingerprint.

use std::sync::Arc;

use jwt_compact::alg::{Ed25519, Es256, Hs256Key, Hs384Key, Hs512Key};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::Algorithm;
use p256::ecdsa::signature::DigestVerifier;
use sha2::{Digest, Sha256, Sha384};

use super::budget::{EcKey, TableBudget};
use crate::auth::alg::{Alg, AlgSet};
use crate::auth::ecdsa::{P256Key, P384Key};
use crate::auth::es384;
use crate::auth::rsa::RsaKey;

/// The key material, in the form the verifier uses directly.
pub(super) enum Material {
    /// The key with its Montgomery constants.
    Rsa(Box<RsaKey>),
    P256(Box<EcKey<p256::ecdsa::VerifyingKey, P256Key>>),
    P384(Box<EcKey<p384::ecdsa::VerifyingKey, P384Key>>),
    Ed25519(<Ed25519 as Algorithm>::VerifyingKey),
    Hmac(Box<HmacKeys>),
}

/// One `oct` secret as the three HMAC key objects (only the allowed ones are used).
pub(super) struct HmacKeys {
    hs256: Hs256Key,
    hs384: Hs384Key,
    hs512: Hs512Key,
}

impl Material {
    pub(super) fn verify(&self, alg: Alg, signed: &[u8], signature: &[u8]) -> bool {
        use crate::auth::signature::{verify, KeyRef};
        match self {
            Material::Rsa(k) => verify(&KeyRef::Rsa(k), alg, signed, signature),
            Material::P256(k) if alg == Alg::Es256 => k.verify(
                |t| verify(&KeyRef::P256(t), alg, signed, signature),
                |key| {
                    p256::ecdsa::Signature::from_slice(signature).is_ok_and(|sig| {
                        key.verify_digest(Sha256::new_with_prefix(signed), &sig)
                            .is_ok()
                    })
                },
                P256Key::new,
                P256Key::table_bytes(),
            ),
            Material::P384(k) if alg == Alg::Es384 => k.verify(
                |t| verify(&KeyRef::P384(t), alg, signed, signature),
                |key| {
                    p384::ecdsa::Signature::from_slice(signature).is_ok_and(|sig| {
                        key.verify_digest(Sha384::new_with_prefix(signed), &sig)
                            .is_ok()
                    })
                },
                P384Key::new,
                P384Key::table_bytes(),
            ),
            Material::Ed25519(k) => verify(&KeyRef::Ed25519(k), alg, signed, signature),
            Material::Hmac(h) => verify(
                &KeyRef::Hmac(&h.hs256, &h.hs384, &h.hs512),
                alg,
                signed,
                signature,
            ),
            Material::P256(_) | Material::P384(_) => false,
        }
    }

    pub(super) fn is_symmetric(&self) -> bool {
        matches!(self, Material::Hmac(_))
    }

    pub(super) fn has_table(&self) -> bool {
        match self {
            Material::P256(k) => k.has_table(),
            Material::P384(k) => k.has_table(),
            _ => false,
        }
    }
}

/// SHA-256 over the key type and its material in a canonical form (big numbers without leading
/// zeros, curve points as SEC1 uncompressed points), so that two spellings of one key match.
pub(super) fn fingerprint(jwk: &JsonWebKey<'_>) -> Result<[u8; 32], String> {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    match jwk {
        JsonWebKey::Rsa {
            modulus,
            public_exponent,
            ..
        } => {
            field(b"RSA");
            field(strip_zeros(modulus));
            field(strip_zeros(public_exponent));
        }
        JsonWebKey::EllipticCurve { curve, x, y, .. } => {
            field(b"EC");
            field(curve.as_bytes());
            field(strip_zeros(x));
            field(strip_zeros(y));
        }
        JsonWebKey::KeyPair { curve, x, .. } => {
            field(b"OKP");
            field(curve.as_bytes());
            field(x);
        }
        JsonWebKey::Symmetric { secret } => {
            field(b"oct");
            field(secret);
        }
        _ => return Err("unsupported key type".into()),
    }
    Ok(h.finalize().into())
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

/// The key material and the algorithms its type allows.
pub(super) fn material(
    jwk: &JsonWebKey<'_>,
    kty: &str,
    tables: &Arc<TableBudget>,
) -> Result<(Material, AlgSet), String> {
    match jwk {
        JsonWebKey::Rsa { .. } => rsa_material(jwk),
        JsonWebKey::EllipticCurve { curve, x, y, .. } => match curve.as_ref() {
            "P-256" => <Es256 as Algorithm>::VerifyingKey::try_from(jwk)
                .map(|k| {
                    (
                        Material::P256(Box::new(EcKey::new(k, tables))),
                        AlgSet::of(&[Alg::Es256]),
                    )
                })
                .map_err(|e| format!("bad P-256 key: {e}")),
            "P-384" => es384::verifying_key_from_coordinates(x, y).map(|k| {
                (
                    Material::P384(Box::new(EcKey::new(k, tables))),
                    AlgSet::of(&[Alg::Es384]),
                )
            }),
            other => Err(format!("unsupported EC curve {other:?}")),
        },
        JsonWebKey::KeyPair { .. } => <Ed25519 as Algorithm>::VerifyingKey::try_from(jwk)
            .map(|k| (Material::Ed25519(k), AlgSet::of(&[Alg::EdDsa])))
            .map_err(|e| format!("bad OKP key: {e}")),
        JsonWebKey::Symmetric { secret } => hmac_material(secret),
        _ => Err(format!("unsupported key type {kty:?}")),
    }
}

fn rsa_material(jwk: &JsonWebKey<'_>) -> Result<(Material, AlgSet), String> {
    let JsonWebKey::Rsa {
        modulus,
        public_exponent,
        ..
    } = jwk
    else {
        return Err("bad RSA key".into());
    };
    let key = RsaKey::new(modulus, public_exponent)?;
    Ok((Material::Rsa(Box::new(key)), AlgSet::RSA))
}

/// An `oct` key verifies the HMACs whose hash is no longer than the key (RFC 7518 §3.2).
fn hmac_material(secret: &[u8]) -> Result<(Material, AlgSet), String> {
    let mut algs = Vec::new();
    for (alg, len) in [(Alg::Hs256, 32), (Alg::Hs384, 48), (Alg::Hs512, 64)] {
        if secret.len() >= len {
            algs.push(alg);
        }
    }
    if algs.is_empty() {
        return Err(format!(
            "oct key of {} bytes is shorter than HS256 requires (32)",
            secret.len()
        ));
    }
    let keys = HmacKeys {
        hs256: Hs256Key::new(secret),
        hs384: Hs384Key::new(secret),
        hs512: Hs512Key::new(secret),
    };
    Ok((Material::Hmac(Box::new(keys)), AlgSet::of(&algs)))
}
