//! The seed corpus of the `crypto_diff` fuzz target (`tests/fuzz/corpus/crypto_diff/`): one
//! valid signature per algorithm and test key, so that mutations start from inputs both sides
//! accept. Checked here (every seed verifies, and the differential agrees on it); rewritten by
//! `cargo test -p meshgate --test crypto -- --ignored write_crypto_diff_seeds`.

use std::fs;
use std::path::{Path, PathBuf};

use meshgate::auth::crypto_probe::ProbeKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use rsa::{BigUint, RsaPrivateKey};
use sha2::{Sha256, Sha384, Sha512};

use crate::crypto_diff::{self, ALGS, P256_SCALAR, P384_SCALAR, RSA_KEYS};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus/crypto_diff")
}

fn rsa_private(i: usize) -> RsaPrivateKey {
    let (p, q) = RSA_KEYS[i];
    let p = BigUint::parse_bytes(p.as_bytes(), 16).unwrap();
    let q = BigUint::parse_bytes(q.as_bytes(), 16).unwrap();
    RsaPrivateKey::from_p_q(p, q, BigUint::from(65537u32)).unwrap()
}

/// `(file name, input)` for every algorithm and key.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let msg = b"eyJhbGciOiJ4In0.eyJzdWIiOiJmdXp6In0";
    let mut rng = rand_core::OsRng;
    let mut out = Vec::new();
    for (which, alg) in ALGS.iter().enumerate() {
        let keys = if which < 6 { 0..2 } else { 0..1 };
        for key in keys {
            let sig: Vec<u8> = match which {
                0 => rsa::pkcs1v15::SigningKey::<Sha256>::new(rsa_private(key))
                    .sign(msg)
                    .to_vec(),
                1 => rsa::pkcs1v15::SigningKey::<Sha384>::new(rsa_private(key))
                    .sign(msg)
                    .to_vec(),
                2 => rsa::pkcs1v15::SigningKey::<Sha512>::new(rsa_private(key))
                    .sign(msg)
                    .to_vec(),
                3 => rsa::pss::SigningKey::<Sha256>::new(rsa_private(key))
                    .sign_with_rng(&mut rng, msg)
                    .to_vec(),
                4 => rsa::pss::SigningKey::<Sha384>::new(rsa_private(key))
                    .sign_with_rng(&mut rng, msg)
                    .to_vec(),
                5 => rsa::pss::SigningKey::<Sha512>::new(rsa_private(key))
                    .sign_with_rng(&mut rng, msg)
                    .to_vec(),
                6 => {
                    let sk = p256::ecdsa::SigningKey::from_slice(&P256_SCALAR).unwrap();
                    let sig: p256::ecdsa::Signature = sk.sign(msg);
                    sig.to_bytes().to_vec()
                }
                _ => {
                    let sk = p384::ecdsa::SigningKey::from_slice(&P384_SCALAR).unwrap();
                    let sig: p384::ecdsa::Signature = sk.sign(msg);
                    sig.to_bytes().to_vec()
                }
            };
            let selector = which as u8 | (key as u8) << 3;
            let mut input = vec![selector, 0, 0, msg.len() as u8];
            input.extend_from_slice(msg);
            input.extend_from_slice(&sig);
            out.push((format!("valid-{}-key{key}", alg.to_lowercase()), input));
        }
    }
    out
}

/// meshgate's verdict on a seed (unmodified key).
fn accepted(input: &[u8]) -> bool {
    let (&[selector, _, _, msg_len], rest) = input.split_first_chunk::<4>().unwrap();
    let (msg, sig) = rest.split_at(usize::from(msg_len));
    let which = usize::from(selector & 7);
    let key = if which < 6 {
        ProbeKey::rsa(
            &crypto_diff::rsa_modulus(usize::from(selector >> 3 & 1)),
            &[1, 0, 1],
        )
    } else {
        let (p256, p384) = crypto_diff::ec_points();
        let (point, len) = if which == 6 { (p256, 32) } else { (p384, 48) };
        let (x, y) = point[1..].split_at(len);
        if which == 6 {
            ProbeKey::p256(x, y)
        } else {
            ProbeKey::p384(x, y)
        }
    }
    .unwrap();
    key.verify(ALGS[which], msg, sig)
}

#[test]
fn crypto_diff_seed_corpus_holds_valid_signatures() {
    let mut n = 0;
    for entry in fs::read_dir(dir()).unwrap() {
        let input = fs::read(entry.unwrap().path()).unwrap();
        assert!(accepted(&input), "a seed meshgate refuses");
        crypto_diff::crypto_diff(&input);
        n += 1;
    }
    assert!(
        n >= 14,
        "only {n} seeds (6 RSA algorithms x 2 keys, ES256, ES384)"
    );
}

#[test]
#[ignore = "rewrites the committed seed corpus"]
fn write_crypto_diff_seeds() {
    fs::create_dir_all(dir()).unwrap();
    for (name, input) in seeds() {
        assert!(accepted(&input), "{name}");
        fs::write(dir().join(name), input).unwrap();
    }
}
