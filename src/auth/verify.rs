//! One token, one provider: parse (jwt-compact), check the header, pick the key, check the
//! signature, then the claims. Claims are only trusted after the signature, except `iss`, which
//! is read first to skip providers a token is not for (a mismatch only ever refuses).

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_compact::UntrustedToken;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::alg::Alg;
use super::cache::Verified;
use super::claims::{audiences, header_value, lookup, numeric_date};
use super::config::Provider;
use super::deny::DenyReason;
use super::keys::KeySet;
use super::Principal;

/// Longest `kid` looked up; longer ones are malformed, not unknown (no refetch for them).
const MAX_KID_BYTES: usize = 256;

/// Most signature checks one token may cost: distinct key materials tried (keys of its `kid`
/// first, then keys without a `kid`; every key when the token names none), among the keys that
/// allow its `alg`. A token that needs more is refused (`bad_signature`): without this, a
/// kid-less token cost one verification per key of the set.
pub const MAX_KEYS_TRIED: usize = 4;

/// Header fields jwt-compact does not model.
#[derive(Debug, Clone, Deserialize)]
struct HeaderExtra {
    /// `Some` whenever the header has `crit`, even `"crit": null`.
    #[serde(default, deserialize_with = "present")]
    crit: Option<Value>,
}

/// Any value, `null` included, as `Some` (plain `Option` would read `null` as absent).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A token parsed and checked as far as it can be without keys.
pub struct Parsed<'t> {
    alg: Alg,
    kid: Option<String>,
    signed: &'t [u8],
    signature: Vec<u8>,
    payload_b64: &'t str,
    claims: Map<String, Value>,
}

impl Parsed<'_> {
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

/// Structure, header and `iss`. The caller checked the size.
pub fn parse<'t>(token: &'t str, issuer: &str) -> Result<Parsed<'t>, DenyReason> {
    let untrusted =
        UntrustedToken::<HeaderExtra>::try_from(token).map_err(|_| DenyReason::Malformed)?;
    // RFC 7515 §4.1.11: when present, a non-empty array of names. No extension is understood,
    // so a well-formed `crit` is unsupported; anything else is malformed.
    match &untrusted.header().other_fields.crit {
        None => {}
        Some(Value::Array(names)) if !names.is_empty() && names.iter().all(Value::is_string) => {
            return Err(DenyReason::UnsupportedCritical);
        }
        Some(_) => return Err(DenyReason::Malformed),
    }
    let alg = Alg::from_name(untrusted.algorithm()).ok_or(DenyReason::UnsupportedAlgorithm)?;
    let kid = untrusted.header().key_id.clone();
    if kid
        .as_ref()
        .is_some_and(|k| k.len() > MAX_KID_BYTES || k.chars().any(char::is_control))
    {
        return Err(DenyReason::Malformed);
    }
    let (signed, _) = token.rsplit_once('.').ok_or(DenyReason::Malformed)?;
    let payload_b64 = signed.split_once('.').ok_or(DenyReason::Malformed)?.1;
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| DenyReason::Malformed)?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&payload).map_err(|_| DenyReason::Malformed)?;
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(DenyReason::WrongIssuer);
    }
    Ok(Parsed {
        alg,
        kid,
        signed: signed.as_bytes(),
        signature: untrusted.signature_bytes().to_vec(),
        payload_b64,
        claims,
    })
}

/// The signature, under the keys the token may use ([`KeySet::candidates`]: the keys of its
/// `kid`, then the keys without one; every key without a `kid`), only with an algorithm the
/// key allows, and at most [`MAX_KEYS_TRIED`] distinct keys.
pub fn check_signature(parsed: &Parsed<'_>, keys: &KeySet) -> Result<(), DenyReason> {
    let mut named = false;
    let mut allowed = false;
    let mut tried: Vec<&[u8; 32]> = Vec::with_capacity(MAX_KEYS_TRIED);
    for key in keys.candidates(parsed.kid()) {
        named |= key.kid.is_some();
        if !key.algs.contains(parsed.alg) {
            continue;
        }
        allowed = true;
        if tried.contains(&key.fingerprint()) {
            continue;
        }
        if tried.len() >= MAX_KEYS_TRIED {
            break;
        }
        tried.push(key.fingerprint());
        if key.verify(parsed.alg, parsed.signed, &parsed.signature) {
            return Ok(());
        }
    }
    match (named, allowed) {
        (false, _) if parsed.kid.is_some() => Err(DenyReason::UnknownKid),
        (_, false) => Err(DenyReason::AlgorithmMismatch),
        _ => Err(DenyReason::BadSignature),
    }
}

/// Time, audience and subject rules, then the outputs (principal, claim and payload headers).
pub fn check_claims(p: &Provider, parsed: Parsed<'_>, now: u64) -> Result<Verified, DenyReason> {
    let c = &parsed.claims;
    let exp = numeric_date(c, "exp").map_err(|_| DenyReason::Malformed)?;
    let nbf = numeric_date(c, "nbf").map_err(|_| DenyReason::Malformed)?;
    let iat = numeric_date(c, "iat").map_err(|_| DenyReason::Malformed)?;
    check_times(p, exp, nbf, iat, now)?;
    if !p.audiences.is_empty()
        && !audiences(c)
            .iter()
            .any(|a| p.audiences.iter().any(|x| x == a))
    {
        return Err(DenyReason::WrongAudience);
    }
    let subject = c.get("sub").and_then(Value::as_str).map(str::to_string);
    if !p.subjects.is_empty() && !subject.as_ref().is_some_and(|s| p.subjects.contains(s)) {
        return Err(DenyReason::WrongSubject);
    }
    let mut set_headers = Vec::new();
    for ch in &p.claim_headers {
        if let Some(v) = lookup(c, &ch.path).and_then(header_value) {
            set_headers.push((ch.header.clone(), v));
        }
    }
    if let Some(h) = &p.payload_header {
        set_headers.push((h.clone(), parsed.payload_b64.to_string()));
    }
    let principal = Principal {
        subject,
        issuer: p.issuer.clone(),
        provider: p.name.clone(),
        claims: Arc::new(parsed.claims),
    };
    Ok(Verified {
        principal,
        set_headers,
        exp,
    })
}

fn check_times(
    p: &Provider,
    exp: Option<u64>,
    nbf: Option<u64>,
    iat: Option<u64>,
    now: u64,
) -> Result<(), DenyReason> {
    let skew = p.clock_skew;
    if exp.is_some_and(|e| now > e.saturating_add(skew)) {
        return Err(DenyReason::Expired);
    }
    if exp.is_none() && p.require_expiration {
        return Err(DenyReason::MissingExpiration);
    }
    // `nbf` only when present (jwt-compact's maturity check would refuse tokens without it).
    // A token issued in the future is not valid yet either.
    let future = |t: Option<u64>| t.is_some_and(|t| t > now.saturating_add(skew));
    if future(nbf) || future(iat) {
        return Err(DenyReason::NotYetValid);
    }
    if let Some(max) = p.max_lifetime {
        let e = exp.ok_or(DenyReason::LifetimeTooLong)?;
        // From issue (or now, if earlier): a token dated ahead gains no lifetime by it.
        let lifetime = e.saturating_sub(iat.unwrap_or(now).min(now));
        if lifetime > max {
            return Err(DenyReason::LifetimeTooLong);
        }
    }
    Ok(())
}
