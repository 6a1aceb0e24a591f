//! JWKS documents -> verification keys, parsed once (configuration or fetch time).
//!
//! The per-key costs paid here are the small ones: base64url and big-number decoding, the
//! curve-point checks, RSA's Montgomery constants, the HMAC key objects. Each key also records
//! which algorithms it may verify, from its `kty`/`crv`/`alg` (RFC 7517/7518): an RSA key never
//! verifies `HS256`, and a key with `alg` verifies only that algorithm.
//!
//! What a fetched document may cost is bounded (`docs/security.md`):
//! - at most [`KeyRules::max_keys`] entries in `keys` (`limits.max_jwks_keys`): a longer
//!   document is refused whole, counted before any key is parsed;
//! - keys with the same material are one key (one [`Material`], one table), whatever their
//!   `kid`s; a refresh that brings a key again keeps its material (and its table);
//! - the ECDSA tables (`super::ecdsa`, ~90 KB for P-256, ~200 KB for P-384) are built for a key
//!   only after it verified a token with the plain verifier, while the VM's
//!   [`TableBudget`] (`limits.max_key_table_bytes`) lasts; other keys verify without one;
//! - `oct` (HMAC) keys are secrets: from a fetched document (public by design) they are skipped
//!   unless the provider sets `jwks.remote.allow_symmetric_keys`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use jwt_compact::alg::{Ed25519, Es256, Hs256Key, Hs384Key, Hs512Key};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::Algorithm;
use p256::ecdsa::signature::DigestVerifier;
use serde::de::IgnoredAny;
use serde::Deserialize;
use sha2::{Digest, Sha256, Sha384};

use super::alg::{Alg, AlgSet};
use super::ecdsa::{P256Key, P384Key};
use super::es384;
use super::rsa::RsaKey;

/// Default of `limits.max_jwks_keys`.
pub const DEFAULT_MAX_KEYS: usize = 64;
/// Default of `limits.max_key_table_bytes`: about 22 P-256 or 10 P-384 tables per VM.
pub const DEFAULT_TABLE_BYTES: usize = 2 * 1024 * 1024;

/// The VM's allowance of memory for ECDSA tables, shared by every provider's keys. A table's
/// bytes are taken when it is built and given back when its key is dropped.
#[derive(Debug)]
pub struct TableBudget {
    limit: usize,
    used: AtomicUsize,
}

impl TableBudget {
    pub fn new(limit: usize) -> Arc<TableBudget> {
        Arc::new(TableBudget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// Bytes held by built tables now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .ok()?;
        Some(Reservation {
            bytes,
            budget: self.clone(),
        })
    }
}

/// Bytes of the budget held by one table; given back on drop.
#[derive(Debug)]
struct Reservation {
    bytes: usize,
    budget: Arc<TableBudget>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// An ECDSA public key, and its table once it has earned one.
struct EcKey<K, T> {
    key: K,
    /// Set once: the table (with the budget it holds), or `None` when the budget was spent.
    table: OnceLock<Option<(T, Reservation)>>,
    budget: Arc<TableBudget>,
}

impl<K, T> EcKey<K, T> {
    fn new(key: K, budget: &Arc<TableBudget>) -> Self {
        EcKey {
            key,
            table: OnceLock::new(),
            budget: budget.clone(),
        }
    }

    /// With the table when there is one; otherwise with `plain`, and on success the table is
    /// built (while the budget lasts) for the next tokens.
    fn verify(
        &self,
        with_table: impl Fn(&T) -> bool,
        plain: impl Fn(&K) -> bool,
        build: impl FnOnce(&K) -> T,
        bytes: usize,
    ) -> bool {
        if let Some(Some((table, _))) = self.table.get() {
            return with_table(table);
        }
        if !plain(&self.key) {
            return false;
        }
        self.table.get_or_init(|| {
            self.budget
                .reserve(bytes)
                .map(|reservation| (build(&self.key), reservation))
        });
        true
    }

    fn has_table(&self) -> bool {
        matches!(self.table.get(), Some(Some(_)))
    }
}

/// The key material, in the form the verifier uses directly.
enum Material {
    /// The key with its Montgomery constants.
    Rsa(Box<RsaKey>),
    P256(Box<EcKey<p256::ecdsa::VerifyingKey, P256Key>>),
    P384(Box<EcKey<p384::ecdsa::VerifyingKey, P384Key>>),
    Ed25519(<Ed25519 as Algorithm>::VerifyingKey),
    Hmac(Box<HmacKeys>),
}

/// One `oct` secret as the three HMAC key objects (only the allowed ones are used).
struct HmacKeys {
    hs256: Hs256Key,
    hs384: Hs384Key,
    hs512: Hs512Key,
}

impl Material {
    fn verify(&self, alg: Alg, signed: &[u8], signature: &[u8]) -> bool {
        use super::signature::{verify, KeyRef};
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

    fn has_table(&self) -> bool {
        match self {
            Material::P256(k) => k.has_table(),
            Material::P384(k) => k.has_table(),
            _ => false,
        }
    }
}

/// A verification key from a JWKS.
pub struct Key {
    pub kid: Option<String>,
    /// Algorithms this key may verify.
    pub algs: AlgSet,
    /// SHA-256 of the key type and material: keys with the same one share one [`Material`].
    fingerprint: [u8; 32],
    material: Arc<Material>,
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
        self.material.verify(alg, signed, signature)
    }

    /// Keys with the same material (whatever their `kid` or `alg`) give the same answer.
    pub(super) fn fingerprint(&self) -> &[u8; 32] {
        &self.fingerprint
    }

    /// An `oct` (HMAC) key.
    pub fn is_symmetric(&self) -> bool {
        matches!(*self.material, Material::Hmac(_))
    }

    /// Whether the key's ECDSA table is built.
    pub fn has_table(&self) -> bool {
        self.material.has_table()
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

/// Why a document was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksError {
    /// Not a JWKS document (not JSON, no `keys` array).
    Invalid(String),
    /// Over a bound (`limits.max_jwks_keys`): refused whole, never truncated.
    Refused(String),
}

impl std::fmt::Display for JwksError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksError::Invalid(m) | JwksError::Refused(m) => f.write_str(m),
        }
    }
}

/// How a document's keys are taken.
#[derive(Clone, Copy)]
pub struct KeyRules<'a> {
    /// Most entries `keys` may have (usable or not).
    pub max_keys: usize,
    /// Take `oct` keys (inline keys, or a remote provider that opted in).
    pub allow_symmetric: bool,
    pub tables: &'a Arc<TableBudget>,
    /// The key set in use: keys it already has keep their material (and table).
    pub previous: Option<&'a KeySet>,
}

#[derive(Deserialize)]
struct JwksDoc {
    keys: Vec<serde_json::Value>,
}

/// Counts the entries of `keys` without building them.
#[derive(Deserialize)]
struct JwksCount {
    keys: Vec<IgnoredAny>,
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
/// weak or malformed keys, `oct` keys where they are not allowed) are skipped and reported; the
/// set may come back empty. A document with more than `rules.max_keys` entries is refused
/// before any key is parsed.
pub fn parse_jwks(
    text: &[u8],
    rules: &KeyRules<'_>,
) -> Result<(KeySet, Vec<SkippedKey>), JwksError> {
    let count: JwksCount = serde_json::from_slice(text)
        .map_err(|e| JwksError::Invalid(format!("not a JWKS document: {e}")))?;
    if count.keys.len() > rules.max_keys {
        return Err(JwksError::Refused(format!(
            "JWKS has {} keys, more than limits.max_jwks_keys ({})",
            count.keys.len(),
            rules.max_keys
        )));
    }
    let doc: JwksDoc = serde_json::from_slice(text)
        .map_err(|e| JwksError::Invalid(format!("not a JWKS document: {e}")))?;
    let mut keys: Vec<Key> = Vec::with_capacity(doc.keys.len());
    let mut skipped = Vec::new();
    for (index, value) in doc.keys.iter().enumerate() {
        match parse_key(value, rules, &keys) {
            Ok(Some(k)) => keys.push(k),
            Ok(None) => {}
            Err(reason) => skipped.push(SkippedKey { index, reason }),
        }
    }
    let digest = Sha256::digest(text).into();
    Ok((KeySet { keys, digest }, skipped))
}

/// One key; `None` when `earlier` already has it (same material, `kid` and algorithms).
fn parse_key(
    value: &serde_json::Value,
    rules: &KeyRules<'_>,
    earlier: &[Key],
) -> Result<Option<Key>, String> {
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
    if matches!(jwk, JsonWebKey::Symmetric { .. }) && !rules.allow_symmetric {
        return Err(
            "oct (symmetric) key in a fetched JWKS: a published secret is no secret \
                    (set jwks.remote.allow_symmetric_keys to accept it)"
                .into(),
        );
    }
    let fingerprint = fingerprint(&jwk)?;
    let (material, natural) = material(&jwk, meta.kty.as_deref().unwrap_or(""), rules.tables)?;
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
    let same = |k: &&Key| k.fingerprint == fingerprint;
    if earlier
        .iter()
        .any(|k| same(&k) && k.kid == meta.kid && k.algs == algs)
    {
        return Ok(None);
    }
    // The same material under another name (or in the key set in use) is shared.
    let shared = earlier
        .iter()
        .chain(
            rules
                .previous
                .map(|p| p.keys.as_slice())
                .unwrap_or_default(),
        )
        .find(same)
        .map(|k| k.material.clone());
    Ok(Some(Key {
        kid: meta.kid,
        algs,
        fingerprint,
        material: shared.unwrap_or_else(|| Arc::new(material)),
    }))
}

/// SHA-256 over the key type and its material in a canonical form (big numbers without leading
/// zeros, curve points as SEC1 uncompressed points), so that two spellings of one key match.
fn fingerprint(jwk: &JsonWebKey<'_>) -> Result<[u8; 32], String> {
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
fn material(
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

impl KeySet {
    /// The keys a token may be tried against, in order: with a `kid`, the keys of that `kid`,
    /// then the keys without one (as Envoy's jwt_authn, which tries kid-less keys for any
    /// token); without a `kid`, every key.
    pub fn candidates<'a>(&'a self, kid: Option<&'a str>) -> impl Iterator<Item = &'a Key> + 'a {
        let named = self
            .keys
            .iter()
            .filter(move |k| kid.is_some() && k.kid.as_deref() == kid);
        let rest = self
            .keys
            .iter()
            .filter(move |k| kid.is_none() || k.kid.is_none());
        named.chain(rest)
    }

    /// Distinct key materials (identical keys under several `kid`s count once).
    pub fn materials(&self) -> usize {
        let mut seen: Vec<&[u8; 32]> = Vec::with_capacity(self.keys.len());
        for k in &self.keys {
            if !seen.contains(&&k.fingerprint) {
                seen.push(&k.fingerprint);
            }
        }
        seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::json;

    fn budget() -> Arc<TableBudget> {
        TableBudget::new(DEFAULT_TABLE_BYTES)
    }

    fn rules(tables: &Arc<TableBudget>) -> KeyRules<'_> {
        KeyRules {
            max_keys: DEFAULT_MAX_KEYS,
            allow_symmetric: true,
            tables,
            previous: None,
        }
    }

    fn parse(doc: &serde_json::Value, rules: &KeyRules<'_>) -> (KeySet, Vec<SkippedKey>) {
        parse_jwks(doc.to_string().as_bytes(), rules).unwrap()
    }

    fn parse_one(jwk: serde_json::Value) -> Result<Key, String> {
        let tables = budget();
        let (mut set, skipped) = parse_jwks(
            json!({ "keys": [jwk] }).to_string().as_bytes(),
            &rules(&tables),
        )
        .map_err(|e| e.to_string())?;
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
        let tables = budget();
        let r = rules(&tables);
        assert!(matches!(
            parse_jwks(b"<html>", &r),
            Err(JwksError::Invalid(_))
        ));
        assert!(matches!(
            parse_jwks(br#"{"keys": 5}"#, &r),
            Err(JwksError::Invalid(_))
        ));
    }

    /// A P-256 key and an ES256 signer for it.
    fn p256_pair() -> (p256::ecdsa::SigningKey, serde_json::Value) {
        let sk = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let point = sk.verifying_key().to_encoded_point(false);
        let jwk = json!({"kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap())});
        (sk, jwk)
    }

    fn es256(sk: &p256::ecdsa::SigningKey, msg: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer;
        let sig: p256::ecdsa::Signature = sk.sign(msg);
        sig.to_bytes().to_vec()
    }

    fn with_kid(mut jwk: serde_json::Value, kid: &str) -> serde_json::Value {
        jwk["kid"] = json!(kid);
        jwk
    }

    #[test]
    fn a_document_with_more_keys_than_the_limit_is_refused_whole() {
        let tables = budget();
        let mut r = rules(&tables);
        r.max_keys = 3;
        let key = rsa_jwk(2048);
        let doc = |n: usize| json!({"keys": vec![key.clone(); n]});
        assert_eq!(
            parse(&doc(3), &r).0.keys.len(),
            1,
            "three copies are one key"
        );
        let err = parse_jwks(doc(4).to_string().as_bytes(), &r).unwrap_err();
        assert!(
            matches!(&err, JwksError::Refused(m) if m.contains("4 keys")),
            "{err:?}"
        );
        // Entries count whether they are usable or not: junk cannot pad a document either.
        let junk = json!({"keys": [1, 2, 3, 4]});
        assert!(matches!(
            parse_jwks(junk.to_string().as_bytes(), &r),
            Err(JwksError::Refused(_))
        ));
    }

    #[test]
    fn identical_keys_share_one_material_whatever_their_kids() {
        let tables = budget();
        let (sk, jwk) = p256_pair();
        // 1,300 copies under distinct kids (the flood of issue 13), with limits raised for it.
        let keys: Vec<_> = (0..1300)
            .map(|i| with_kid(jwk.clone(), &format!("k{i}")))
            .collect();
        let mut r = rules(&tables);
        r.max_keys = 2000;
        let (set, skipped) = parse(&json!({ "keys": keys }), &r);
        assert!(skipped.is_empty());
        assert_eq!(set.keys.len(), 1300, "every kid resolves");
        assert_eq!(set.materials(), 1, "one key material");
        let sig = es256(&sk, b"m");
        assert!(set.keys[7].verify(Alg::Es256, b"m", &sig));
        assert!(
            set.keys[1299].has_table(),
            "the table is shared by every copy"
        );
        assert_eq!(tables.used(), P256Key::table_bytes(), "one table");
        // Leading zeros do not make another key.
        let mut padded = rsa_jwk(2048);
        padded["n"] = json!(URL_SAFE_NO_PAD.encode([vec![0u8], vec![0xffu8; 256]].concat()));
        let (set, _) = parse(&json!({"keys": [rsa_jwk(2048), padded]}), &rules(&tables));
        assert_eq!(set.materials(), 1);
    }

    #[test]
    fn tables_are_built_after_a_verified_token_within_the_budget() {
        // Room for two P-256 tables.
        let tables = TableBudget::new(2 * P256Key::table_bytes() + 1);
        let pairs: Vec<_> = (0..3).map(|_| p256_pair()).collect();
        let doc = json!({"keys": pairs.iter().map(|(_, j)| j.clone()).collect::<Vec<_>>()});
        let (set, _) = parse(&doc, &rules(&tables));
        assert_eq!(tables.used(), 0, "nothing is built at parse time");
        // A forged signature builds nothing.
        assert!(!set.keys[0].verify(Alg::Es256, b"m", &[1u8; 64]));
        assert!(!set.keys[0].has_table());
        for (i, (sk, _)) in pairs.iter().enumerate() {
            let sig = es256(sk, b"m");
            assert!(set.keys[i].verify(Alg::Es256, b"m", &sig), "plain verifier");
            assert!(set.keys[i].verify(Alg::Es256, b"m", &sig), "again");
            assert!(!set.keys[i].verify(Alg::Es256, b"n", &sig));
        }
        assert!(set.keys[0].has_table() && set.keys[1].has_table());
        assert!(
            !set.keys[2].has_table(),
            "over the budget: the plain verifier"
        );
        assert_eq!(tables.used(), 2 * P256Key::table_bytes());
        // A refresh with the same keys keeps their tables; dropping the old set gives nothing
        // back while the new one holds them.
        let mut r = rules(&tables);
        r.previous = Some(&set);
        let (again, _) = parse(&doc, &r);
        assert!(again.keys[0].has_table());
        drop(set);
        assert_eq!(tables.used(), 2 * P256Key::table_bytes());
        drop(again);
        assert_eq!(
            tables.used(),
            0,
            "dropped keys give their tables' bytes back"
        );
    }

    #[test]
    fn oct_keys_are_skipped_unless_allowed() {
        let tables = budget();
        let mut r = rules(&tables);
        r.allow_symmetric = false;
        let oct = json!({"kty": "oct", "kid": "pub-oct", "k": URL_SAFE_NO_PAD.encode([7u8; 32])});
        let (set, skipped) = parse(&json!({"keys": [rsa_jwk(2048), oct.clone()]}), &r);
        assert_eq!(set.keys.len(), 1);
        assert!(!set.keys[0].is_symmetric());
        assert_eq!(skipped[0].index, 1);
        assert!(
            skipped[0].reason.contains("allow_symmetric_keys"),
            "{:?}",
            skipped
        );
        r.allow_symmetric = true;
        let (set, _) = parse(&json!({"keys": [oct]}), &r);
        assert!(set.keys[0].is_symmetric());
    }

    #[test]
    fn a_kid_also_matches_kid_less_keys_after_its_own() {
        let tables = budget();
        let mut named = rsa_jwk(2048);
        named["kid"] = json!("a");
        let bare = json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode([7u8; 32])});
        let mut other = rsa_jwk(2048);
        other["kid"] = json!("b");
        other["n"] = json!(URL_SAFE_NO_PAD.encode([0xfdu8; 256]));
        let (set, _) = parse(&json!({"keys": [bare, other, named]}), &rules(&tables));
        let kids = |kid| {
            set.candidates(kid)
                .map(|k| k.kid.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(kids(Some("a")), vec![Some("a".to_string()), None]);
        assert_eq!(kids(Some("zzz")), vec![None]);
        assert_eq!(kids(None).len(), 3);
    }
}
