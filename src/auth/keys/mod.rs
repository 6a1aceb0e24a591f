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
//! - the ECDSA tables (`super::ecdsa`, ~65 KB for P-256, ~200 KB for P-384) are built for a key
//!   only after it verified a token with the plain verifier, while the VM's
//!   [`TableBudget`] (`limits.max_key_table_bytes`) lasts; other keys verify without one;
//! - `oct` (HMAC) keys are secrets: from a fetched document (public by design) they are skipped
//!   unless the provider sets `jwks.remote.allow_symmetric_keys`.

mod budget;
mod material;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use jwt_compact::jwk::JsonWebKey;
use serde::de::IgnoredAny;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::alg::{Alg, AlgSet};
pub use budget::TableBudget;
use material::{fingerprint, material, Material};

/// Default of `limits.max_jwks_keys`.
pub const DEFAULT_MAX_KEYS: usize = 64;
/// Default of `limits.max_key_table_bytes`: about 31 P-256 or 10 P-384 tables per VM.
pub const DEFAULT_TABLE_BYTES: usize = 2 * 1024 * 1024;

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
        self.material.is_symmetric()
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
