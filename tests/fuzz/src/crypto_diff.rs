//! Differential fuzzing of meshgate's own signature verifiers (`src/auth/rsa.rs`,
//! `src/auth/ecdsa.rs`, through `meshgate::auth::crypto_probe`, the request path's call) against
//! the reference crates: `rsa` 0.9 (`pkcs1v15::VerifyingKey`, `pss::VerifyingKey` with a salt as
//! long as the hash) and the `p256`/`p384` ECDSA verifiers. Any disagreement panics.
//!
//! Input: `selector | key byte index | key xor | message length | message | signature`.
//! The selector picks the algorithm (low 3 bits: RS256, RS384, RS512, PS256, PS384, PS512,
//! ES256, ES384) and, for RSA, the key (bit 3: the 2048-bit or the 3076-bit one). A non-zero
//! key xor flips bits of one byte of the modulus (RSA) or of the point's coordinates (ECDSA).
//! The seed corpus (`tests/fuzz/corpus/crypto_diff/`) holds valid signatures of each kind, so
//! mutations start from inputs both sides accept.
//!
//! Key construction may differ where meshgate is stricter by design (2048..=4096-bit, odd
//! moduli only): a key only meshgate refuses is fine, a key only meshgate accepts is not.

use std::sync::OnceLock;

use meshgate::auth::crypto_probe::ProbeKey;
use rsa::signature::Verifier as _;
use rsa::{BigUint, RsaPublicKey};
use sha2::{Sha256, Sha384, Sha512};

/// The fixed test keys' primes (openssl genrsa; test use only). The signing side (the seed
/// corpus, the crafted-encoding tests) rebuilds the private keys from them.
pub const RSA_KEYS: [(&str, &str); 2] = [
    (
        concat!(
            "e8fc3b1ed824c98470d5f41be778ffcdf8259575d6c8b08901198af6f88ed45920f8558bf1fa3264bdcdcfb3157c91ff",
            "92407278b20c9bdc11602cf219fbbd5b15aea0a3f3628f671cb86ff69877e2b7c7efa2d0f1818fb7ef3ccba6cdc5b37f",
            "45c74f5f3b5976399be69f57c70d6a8487081ab87635f094f152ad9c7febcda5",
        ),
        concat!(
            "e00efbed5a89e495867a5034f96dcdf1e0d5b8fa30c9ca95ec2ede385cf726efbde87e633a287746e0f91d8bdd674891",
            "db1448c7a404ea1d5a26b5beb57b1dca9851797f0b08f1694127b365f332ae1af41de917ab498337aa36983b75556565",
            "0211e1f733620748d52237382afb95ff6e4583c4d45888499ce6a755bfef4d99",
        ),
    ),
    (
        concat!(
            "372e5214f172b65fc7dac461e521689d0e59ef8418bb87932f6e5938fec3bceed5b5bfbe3bdfa9ae7bb0dca6eba37715",
            "d0ef1612cd5a3799382a62e974704864557adfbe2b210751a165f7c839b74b5ff254b497ebad34c068dd8d8085c7ae06",
            "0a75e551028247c6311ef10325ac9c8c10fabc359a294e446d2bc296217327370c866904218e64478c3d767b643e5937",
            "d29d4956807c57133018fd576debe16915a9b0d74dbe4ee0c0dafd107c3864c0a07b509269fae2dff12f3aea4ade5015",
            "9",
        ),
        concat!(
            "371ed1d3fa979f380123e35fccf37b88f773b4636faaec81897293ff1a2e828469b5cf9d7b407e47c69564affdd76b16",
            "8778a6c7f36aa1f2ec2a140febb73d4bea072f5889063ed83277e133930d7e0ea6e5dd2fc3fe80aef2702ab609eadea3",
            "eff3ffb651bc3a5dafe176e4a9548b47c69f4b6d99d22ab04965d403b24ff1d03ed7a45cffbc3154d561e7bcb0c2f818",
            "542c103bdd9ed3ed573185076d21e420e4bbe30148e8758e1dcf8cfb3c7623edbf7a4982ed39ad05f5ce04fb22c6ec29",
            "5",
        ),
    ),
];

/// The fixed ECDSA test keys' private scalars (P-256, P-384; test use only).
pub const P256_SCALAR: [u8; 32] = [0x11; 32];
pub const P384_SCALAR: [u8; 48] = [0x22; 48];

/// The algorithms, by the selector's low 3 bits.
pub const ALGS: [&str; 8] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
];

/// Big-endian modulus of test key `i`.
pub fn rsa_modulus(i: usize) -> Vec<u8> {
    static N: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    let all = N.get_or_init(|| {
        RSA_KEYS
            .iter()
            .map(|(p, q)| {
                let p = BigUint::parse_bytes(p.as_bytes(), 16).unwrap_or_default();
                let q = BigUint::parse_bytes(q.as_bytes(), 16).unwrap_or_default();
                (p * q).to_bytes_be()
            })
            .collect()
    });
    all.get(i % all.len()).cloned().unwrap_or_default()
}

const E: [u8; 3] = [1, 0, 1];

/// Uncompressed SEC1 points of the ECDSA test keys (P-256, P-384).
pub fn ec_points() -> &'static (Vec<u8>, Vec<u8>) {
    static POINTS: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    POINTS.get_or_init(|| {
        let p256 = p256::ecdsa::SigningKey::from_slice(&P256_SCALAR)
            .map(|k| {
                k.verifying_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec()
            })
            .unwrap_or_default();
        let p384 = p384::ecdsa::SigningKey::from_slice(&P384_SCALAR)
            .map(|k| {
                k.verifying_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec()
            })
            .unwrap_or_default();
        (p256, p384)
    })
}

/// meshgate's keys for the unmodified test keys, built once (RSA's Montgomery constants, the
/// curves' tables).
fn cached(slot: usize) -> Option<&'static ProbeKey> {
    static KEYS: OnceLock<Vec<Option<ProbeKey>>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let (p256, p384) = ec_points();
        vec![
            ProbeKey::rsa(&rsa_modulus(0), &E).ok(),
            ProbeKey::rsa(&rsa_modulus(1), &E).ok(),
            ec_key(p256, 32, ProbeKey::p256).ok(),
            ec_key(p384, 48, ProbeKey::p384).ok(),
        ]
    })
    .get(slot)
    .and_then(Option::as_ref)
}

fn ec_key(
    point: &[u8],
    len: usize,
    make: fn(&[u8], &[u8]) -> Result<ProbeKey, String>,
) -> Result<ProbeKey, String> {
    let coords = point.get(1..1 + 2 * len).ok_or("short point")?;
    let (x, y) = coords.split_at(len);
    make(x, y)
}

/// One differential check; panics on a disagreement.
pub fn crypto_diff(data: &[u8]) {
    let Some((&[selector, key_at, key_xor, msg_len], rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let (msg, sig) = rest.split_at(usize::from(msg_len).min(rest.len()));
    let which = usize::from(selector & 7);
    let alg = ALGS.get(which).copied().unwrap_or("RS256");
    if which < 6 {
        rsa_case(
            which,
            usize::from(selector >> 3 & 1),
            key_at,
            key_xor,
            msg,
            sig,
            alg,
        );
    } else {
        ecdsa_case(which == 7, key_at, key_xor, msg, sig, alg);
    }
}

fn rsa_case(which: usize, key: usize, at: u8, xor: u8, msg: &[u8], sig: &[u8], alg: &str) {
    let mut n = rsa_modulus(key);
    let at = usize::from(at) * n.len() / 256;
    if let Some(b) = n.get_mut(at) {
        *b ^= xor;
    }
    let built;
    let ours = if xor == 0 {
        cached(key)
    } else {
        built = ProbeKey::rsa(&n, &E).ok();
        built.as_ref()
    };
    let Ok(reference) = RsaPublicKey::new(BigUint::from_bytes_be(&n), BigUint::from(65537u32))
    else {
        assert!(
            ours.is_none(),
            "meshgate accepted an RSA key the rsa crate refuses"
        );
        return;
    };
    let Some(ours) = ours else {
        return; // meshgate is stricter on keys (size, odd modulus)
    };
    // The reference verdict: `$kind::Signature` parses any bytes in rsa 0.9.
    macro_rules! reference {
        ($kind:ident, $hash:ty) => {
            rsa::$kind::Signature::try_from(sig).is_ok_and(|s| {
                rsa::$kind::VerifyingKey::<$hash>::new(reference)
                    .verify(msg, &s)
                    .is_ok()
            })
        };
    }
    let theirs = match which {
        0 => reference!(pkcs1v15, Sha256),
        1 => reference!(pkcs1v15, Sha384),
        2 => reference!(pkcs1v15, Sha512),
        3 => reference!(pss, Sha256),
        4 => reference!(pss, Sha384),
        _ => reference!(pss, Sha512),
    };
    let mine = ours.verify(alg, msg, sig);
    assert_eq!(mine, theirs, "{alg}: meshgate {mine}, rsa crate {theirs}");
}

fn ecdsa_case(p384: bool, at: u8, xor: u8, msg: &[u8], sig: &[u8], alg: &str) {
    let (p256_point, p384_point) = ec_points();
    let mut point = if p384 { p384_point } else { p256_point }.clone();
    // Coordinates only: the 0x04 tag stays.
    let len = point.len() - 1;
    let at = 1 + usize::from(at) * len / 256;
    if let Some(b) = point.get_mut(at) {
        *b ^= xor;
    }
    let len = len / 2;
    let make = if p384 { ProbeKey::p384 } else { ProbeKey::p256 };
    let built;
    let ours = if xor == 0 {
        cached(if p384 { 3 } else { 2 })
    } else {
        built = ec_key(&point, len, make).ok();
        built.as_ref()
    };
    let (theirs_key, theirs) = if p384 {
        match p384::ecdsa::VerifyingKey::from_sec1_bytes(&point) {
            Ok(k) => (
                true,
                p384::ecdsa::Signature::from_slice(sig).is_ok_and(|s| k.verify(msg, &s).is_ok()),
            ),
            Err(_) => (false, false),
        }
    } else {
        match p256::ecdsa::VerifyingKey::from_sec1_bytes(&point) {
            Ok(k) => (
                true,
                p256::ecdsa::Signature::from_slice(sig).is_ok_and(|s| k.verify(msg, &s).is_ok()),
            ),
            Err(_) => (false, false),
        }
    };
    assert_eq!(ours.is_some(), theirs_key, "{alg}: key acceptance differs");
    if let Some(ours) = ours {
        let mine = ours.verify(alg, msg, sig);
        assert_eq!(
            mine, theirs,
            "{alg}: meshgate {mine}, the curve crate {theirs}"
        );
    }
}
