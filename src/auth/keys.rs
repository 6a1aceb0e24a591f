//! JWKS documents -> verification keys, parsed once (configuration or fetch time).
//!
//! Every per-key cost is paid here, never per request: the base64url and big-number decoding,
//! the curve-point checks, the HMAC key objects. Each key also records which algorithms it may
//! verify, from its `kty`/`crv`/`alg` (RFC 7517/7518): an RSA key never verifies `HS256`, and a
//! key with `alg` verifies only that algorithm.

use jwt_compact::alg::{Ed25519, Es256, Hs256Key, Hs384Key, Hs512Key};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::Algorithm;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::alg::{Alg, AlgSet};
use super::ecdsa::{P256Key, P384Key};
use super::es384;
use super::rsa::RsaKey;

/// The key material, in the form the verifier uses directly.
enum Material {
    /// The key with its Montgomery constants.
    Rsa(Box<RsaKey>),
    /// The point with its table of multiples.
    P256(Box<P256Key>),
    P384(Box<P384Key>),
    Ed25519(<Ed25519 as Algorithm>::VerifyingKey),
    Hmac(Box<HmacKeys>),
}

/// One `oct` secret as the three HMAC key objects (only the allowed ones are used).
struct HmacKeys {
    hs256: Hs256Key,
    hs384: Hs384Key,
    hs512: Hs512Key,
}

/// A verification key from a JWKS.
pub struct Key {
    pub kid: Option<String>,
    /// Algorithms this key may verify.
    pub algs: AlgSet,
    material: Material,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("algs", &self.algs.names())
            .finish()
    }
}

impl Key {
    /// Whether `signature` is this key's `alg` signature of `signed`; `false` when the key does
    /// not allow `alg`.
    pub(super) fn verify(&self, alg: Alg, signed: &[u8], signature: &[u8]) -> bool {
        if !self.algs.contains(alg) {
            return false;
        }
        super::signature::verify(&self.material_ref(), alg, signed, signature)
    }

    fn material_ref(&self) -> super::signature::KeyRef<'_> {
        use super::signature::KeyRef;
        match &self.material {
            Material::Rsa(k) => KeyRef::Rsa(k),
            Material::P256(k) => KeyRef::P256(k),
            Material::P384(k) => KeyRef::P384(k),
            Material::Ed25519(k) => KeyRef::Ed25519(k),
            Material::Hmac(h) => KeyRef::Hmac(&h.hs256, &h.hs384, &h.hs512),
        }
    }
}

/// The usable keys of one JWKS document, and a digest of the document (a refresh that brings
/// the same keys keeps the verified-token cache).
#[derive(Debug, Default)]
pub struct KeySet {
    pub keys: Vec<Key>,
    pub digest: [u8; 32],
}

/// A key left out of the set, and why (index in `keys`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    pub index: usize,
    pub reason: String,
}

#[derive(Deserialize)]
struct JwksDoc {
    keys: Vec<serde_json::Value>,
}

/// The JWK fields that decide how a key may be used (the material is parsed by jwt-compact).
#[derive(Deserialize)]
struct JwkMeta {
    kty: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
}

/// Parse a JWKS document. Keys that cannot verify signatures (encryption keys, unknown types,
/// weak or malformed keys) are skipped and reported; the set may come back empty.
pub fn parse_jwks(text: &[u8]) -> Result<(KeySet, Vec<SkippedKey>), String> {
    let doc: JwksDoc =
        serde_json::from_slice(text).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut keys = Vec::with_capacity(doc.keys.len());
    let mut skipped = Vec::new();
    for (index, value) in doc.keys.iter().enumerate() {
        match parse_key(value) {
            Ok(k) => keys.push(k),
            Err(reason) => skipped.push(SkippedKey { index, reason }),
        }
    }
    let digest = Sha256::digest(text).into();
    Ok((KeySet { keys, digest }, skipped))
}

fn parse_key(value: &serde_json::Value) -> Result<Key, String> {
    let meta = JwkMeta::deserialize(value).map_err(|e| format!("bad JWK fields: {e}"))?;
    if meta.use_.as_deref().is_some_and(|u| u != "sig") {
        return Err("not a signature key (use is not \"sig\")".into());
    }
    if let Some(ops) = &meta.key_ops {
        if !ops.iter().any(|o| o == "verify") {
            return Err("key_ops does not allow \"verify\"".into());
        }
    }
    let jwk = JsonWebKey::deserialize(value).map_err(|e| format!("bad key material: {e}"))?;
    let (material, natural) = material(&jwk, meta.kty.as_deref().unwrap_or(""))?;
    let algs = match meta.alg.as_deref() {
        None => natural,
        Some(name) => {
            let alg = Alg::from_name(name)
                .ok_or_else(|| format!("alg {name:?} is not a supported signature algorithm"))?;
            if !natural.contains(alg) {
                return Err(format!("alg {name} does not fit the key's type"));
            }
            AlgSet::of(&[alg])
        }
    };
    Ok(Key {
        kid: meta.kid,
        algs,
        material,
    })
}

/// The key material and the algorithms its type allows.
fn material(jwk: &JsonWebKey<'_>, kty: &str) -> Result<(Material, AlgSet), String> {
    match jwk {
        JsonWebKey::Rsa { .. } => rsa_material(jwk),
        JsonWebKey::EllipticCurve { curve, x, y, .. } => match curve.as_ref() {
            "P-256" => <Es256 as Algorithm>::VerifyingKey::try_from(jwk)
                .map(|k| {
                    (
                        Material::P256(Box::new(P256Key::new(&k))),
                        AlgSet::of(&[Alg::Es256]),
                    )
                })
                .map_err(|e| format!("bad P-256 key: {e}")),
            "P-384" => es384::verifying_key_from_coordinates(x, y).map(|k| {
                (
                    Material::P384(Box::new(P384Key::new(&k))),
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

impl KeySet {
    /// Keys named `kid`, or every key when the token names none.
    pub fn candidates<'a>(&'a self, kid: Option<&'a str>) -> impl Iterator<Item = &'a Key> + 'a {
        self.keys
            .iter()
            .filter(move |k| kid.is_none() || k.kid.as_deref() == kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::json;

    fn parse_one(jwk: serde_json::Value) -> Result<Key, String> {
        let (mut set, skipped) = parse_jwks(json!({ "keys": [jwk] }).to_string().as_bytes())?;
        match skipped.first() {
            Some(s) => Err(s.reason.clone()),
            None => Ok(set.keys.remove(0)),
        }
    }

    /// An RSA modulus of `bits` bits (all ones: not a real key, but RSA key parsing does not
    /// factor the modulus, and only the size matters here).
    fn rsa_jwk(bits: usize) -> serde_json::Value {
        let n = URL_SAFE_NO_PAD.encode(vec![0xffu8; bits / 8]);
        json!({"kty": "RSA", "n": n, "e": "AQAB"})
    }

    #[test]
    fn rsa_keys_allow_rs_and_ps_unless_pinned() {
        assert_eq!(parse_one(rsa_jwk(2048)).unwrap().algs, AlgSet::RSA);
        let mut pinned = rsa_jwk(2048);
        pinned["alg"] = json!("PS256");
        assert_eq!(parse_one(pinned).unwrap().algs, AlgSet::of(&[Alg::Ps256]));
    }

    #[test]
    fn weak_rsa_keys_are_refused() {
        let err = parse_one(rsa_jwk(1024)).unwrap_err();
        assert!(err.contains("1024 bits"), "{err}");
    }

    #[test]
    fn an_alg_that_does_not_fit_the_key_type_is_refused() {
        let mut k = rsa_jwk(2048);
        k["alg"] = json!("HS256");
        assert!(parse_one(k).is_err());
        let mut k = rsa_jwk(2048);
        k["alg"] = json!("none");
        assert!(parse_one(k).is_err());
    }

    #[test]
    fn encryption_keys_and_unknown_types_are_skipped() {
        let mut k = rsa_jwk(2048);
        k["use"] = json!("enc");
        assert!(parse_one(k).is_err());
        let mut k = rsa_jwk(2048);
        k["key_ops"] = json!(["encrypt"]);
        assert!(parse_one(k).is_err());
        assert!(parse_one(json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"})).is_err());
        assert!(parse_one(json!({"kty": "XYZ"})).is_err());
    }

    #[test]
    fn hmac_keys_verify_only_hashes_they_are_long_enough_for() {
        let k = |len: usize| json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode(vec![7u8; len])});
        assert!(parse_one(k(16)).is_err());
        assert_eq!(parse_one(k(32)).unwrap().algs, AlgSet::of(&[Alg::Hs256]));
        assert_eq!(
            parse_one(k(64)).unwrap().algs,
            AlgSet::of(&[Alg::Hs256, Alg::Hs384, Alg::Hs512])
        );
    }

    #[test]
    fn points_off_the_curve_are_refused() {
        let c = URL_SAFE_NO_PAD.encode([1u8; 32]);
        assert!(parse_one(json!({"kty": "EC", "crv": "P-256", "x": c, "y": c})).is_err());
        let c = URL_SAFE_NO_PAD.encode([1u8; 48]);
        assert!(parse_one(json!({"kty": "EC", "crv": "P-384", "x": c, "y": c})).is_err());
    }

    #[test]
    fn a_document_that_is_not_a_jwks_is_an_error() {
        assert!(parse_jwks(b"<html>").is_err());
        assert!(parse_jwks(br#"{"keys": 5}"#).is_err());
    }
}
