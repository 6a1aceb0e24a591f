//! Tests of JWKS parsing, key bounds and shared material.

use super::*;
use crate::auth::ecdsa::P256Key;
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
