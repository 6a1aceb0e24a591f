//! Near-miss RSA encodings, signed with a test key by the raw private operation (`m^d mod n`),
//! each refused by the module's verifier. Each case is also shown to matter: a parsing verifier
//! (below) with exactly the one check the case targets switched off accepts it, so a verifier
//! lenient on that point would let the forgery through. A correctly encoded message signed the
//! same way is accepted (the signing path is right, so refusals are the verifier's doing).

use meshgate::auth::crypto_probe::ProbeKey;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};

/// DER OIDs of SHA-256 and SHA-512 (2.16.840.1.101.3.4.2.1 / .3).
const SHA256_OID: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const SHA512_OID: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];

const MSG: &[u8] = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0";

struct Key {
    sk: RsaPrivateKey,
    pk: RsaPublicKey,
    /// Modulus length in bytes.
    k: usize,
    ours: ProbeKey,
}

fn key() -> Key {
    // The fuzz target's first test key (openssl genrsa, 2048 bits): its modulus starts with
    // 0xcb, so an encoding with its top bit set can still be below n.
    let (p, q) = crate::crypto_diff::RSA_KEYS[0];
    let p = BigUint::parse_bytes(p.as_bytes(), 16).unwrap();
    let q = BigUint::parse_bytes(q.as_bytes(), 16).unwrap();
    let sk = RsaPrivateKey::from_p_q(p, q, BigUint::from(65537u32)).unwrap();
    let pk = sk.to_public_key();
    let ours = ProbeKey::rsa(&pk.n().to_bytes_be(), &pk.e().to_bytes_be()).unwrap();
    assert_eq!(pk.n().bits(), 2048);
    Key {
        k: pk.size(),
        sk,
        pk,
        ours,
    }
}

impl Key {
    /// The raw private operation on an encoded message (which must be below n): k bytes.
    fn sign_raw(&self, em: &[u8]) -> Vec<u8> {
        assert_eq!(em.len(), self.k);
        let m = BigUint::from_bytes_be(em);
        assert!(&m < self.pk.n(), "the encoding is not below n");
        pad(&m.modpow(self.sk.d(), self.pk.n()), self.k)
    }

    /// The raw public operation, reduced mod n (what a verifier that skips the range check
    /// computes): k bytes.
    fn open_raw(&self, sig: &[u8]) -> Vec<u8> {
        let s = BigUint::from_bytes_be(sig);
        pad(&s.modpow(self.pk.e(), self.pk.n()), self.k)
    }

    fn ours(&self, alg: &str, sig: &[u8]) -> bool {
        self.ours.verify(alg, MSG, sig)
    }

    /// The `rsa` crate's verdicts, as a second opinion: (PKCS#1 v1.5, PSS).
    fn reference(&self, sig: &[u8]) -> (bool, bool) {
        let digest = Sha256::digest(MSG);
        let pkcs = self
            .pk
            .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, sig)
            .is_ok();
        let pss = self.pk.verify(Pss::new::<Sha256>(), &digest, sig).is_ok();
        (pkcs, pss)
    }
}

fn pad(x: &BigUint, len: usize) -> Vec<u8> {
    let bytes = x.to_bytes_be();
    let mut out = vec![0u8; len.saturating_sub(bytes.len())];
    out.extend_from_slice(&bytes);
    out
}

// ---- PKCS#1 v1.5 ------------------------------------------------------------------------------

/// The checks of a parsing EMSA-PKCS1-v1_5 verifier, each of which can be switched off.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Check {
    /// `00 01`, and the padding all `ff` (off: `00 02` and any non-zero padding pass).
    BlockType,
    /// At least 8 padding bytes.
    MinPadding,
    /// The DigestInfo's OID is the hash's.
    Oid,
    /// The algorithm parameters are an explicit NULL (off: absent parameters pass too).
    Null,
    /// Nothing after the DigestInfo.
    Trailing,
}

fn digest_info(oid: &[u8; 9], null: bool, hash: &[u8]) -> Vec<u8> {
    let params: &[u8] = if null { &[0x05, 0x00] } else { &[] };
    let alg_len = 2 + oid.len() + params.len();
    let mut t = vec![
        0x30,
        (2 + alg_len + 2 + hash.len()) as u8,
        0x30,
        alg_len as u8,
    ];
    t.extend_from_slice(&[0x06, 0x09]);
    t.extend_from_slice(oid);
    t.extend_from_slice(params);
    t.extend_from_slice(&[0x04, hash.len() as u8]);
    t.extend_from_slice(hash);
    t
}

/// `00 <block type> <padding> 00 <t> <trailing>`, the padding filled to make k bytes.
fn pkcs1_em(
    k: usize,
    block_type: u8,
    pad_len: Option<usize>,
    t: &[u8],
    trailing: &[u8],
) -> Vec<u8> {
    let pad_len = pad_len.unwrap_or(k - 3 - t.len() - trailing.len());
    let filler = |i: usize| {
        if block_type == 1 {
            0xff
        } else {
            (i % 255 + 1) as u8
        }
    };
    let mut em = vec![0x00, block_type];
    em.extend((0..pad_len).map(filler));
    em.push(0x00);
    em.extend_from_slice(t);
    em.extend_from_slice(trailing);
    let garbage = k - em.len();
    em.extend((0..garbage).map(|i| (i * 7 + 3) as u8));
    assert_eq!(em.len(), k);
    em
}

/// A parsing EMSA-PKCS1-v1_5 verifier for SHA-256 (the shape of many historical bugs), with
/// the checks in `off` skipped. With none skipped it decides like RFC 8017's comparison.
fn parse_pkcs1(em: &[u8], digest: &[u8], off: &[Check]) -> bool {
    let on = |c: Check| !off.contains(&c);
    let Some((&[0x00, block_type], rest)) = em.split_first_chunk::<2>() else {
        return false;
    };
    if block_type != 1 && (on(Check::BlockType) || block_type != 2) {
        return false;
    }
    let Some(sep) = rest.iter().position(|b| *b == 0) else {
        return false;
    };
    let (padding, rest) = (&rest[..sep], &rest[sep + 1..]);
    if on(Check::BlockType) && padding.iter().any(|b| *b != 0xff) {
        return false;
    }
    if on(Check::MinPadding) && padding.len() < 8 {
        return false;
    }
    // 30 L [30 L' [06 09 OID] [05 00]?] [04 20 H] <trailing>
    let [0x30, len, ref body @ ..] = *rest else {
        return false;
    };
    let Some((info, trailing)) = body.split_at_checked(usize::from(len)) else {
        return false;
    };
    if on(Check::Trailing) && !trailing.is_empty() {
        return false;
    }
    let [0x30, alg_len, ref info @ ..] = *info else {
        return false;
    };
    let Some((alg, octets)) = info.split_at_checked(usize::from(alg_len)) else {
        return false;
    };
    let [0x06, 0x09, ref oid_params @ ..] = *alg else {
        return false;
    };
    let (oid, params) = oid_params.split_at(9.min(oid_params.len()));
    if on(Check::Oid) && oid != SHA256_OID {
        return false;
    }
    if !(params == [0x05, 0x00] || (params.is_empty() && !on(Check::Null))) {
        return false;
    }
    matches!(*octets, [0x04, 0x20, ref hash @ ..] if hash == digest)
}

#[test]
fn crafted_pkcs1v15_encodings_are_refused() {
    let key = key();
    let k = key.k;
    let digest = Sha256::digest(MSG);
    let good_t = digest_info(&SHA256_OID, true, &digest);

    // The control: the correct encoding, signed the same way, is accepted by all three.
    let good = pkcs1_em(k, 1, None, &good_t, &[]);
    assert!(parse_pkcs1(&good, &digest, &[]));
    let sig = key.sign_raw(&good);
    assert!(key.ours("RS256", &sig));
    assert_eq!(key.reference(&sig), (true, false));

    let garbage = [0xde, 0xad, 0xbe, 0xef];
    let cases: [(&str, Vec<u8>, &[Check]); 5] = [
        (
            "block type 00 02 (random non-zero padding)",
            pkcs1_em(k, 2, None, &good_t, &[]),
            &[Check::BlockType],
        ),
        (
            // Needs room: the garbage after the hash fills what the padding lacks.
            "padding of 7 bytes",
            pkcs1_em(k, 1, Some(7), &good_t, &[]),
            &[Check::MinPadding, Check::Trailing],
        ),
        (
            "garbage after the hash (Bleichenbacher 2006)",
            pkcs1_em(
                k,
                1,
                Some(k - 3 - good_t.len() - garbage.len()),
                &good_t,
                &garbage,
            ),
            &[Check::Trailing],
        ),
        (
            "SHA-512's OID in the DigestInfo, SHA-256 hash",
            pkcs1_em(k, 1, None, &digest_info(&SHA512_OID, true, &digest), &[]),
            &[Check::Oid],
        ),
        (
            "DigestInfo without the NULL parameter",
            pkcs1_em(k, 1, None, &digest_info(&SHA256_OID, false, &digest), &[]),
            &[Check::Null],
        ),
    ];
    for (name, em, lenient) in cases {
        assert!(
            !parse_pkcs1(&em, &digest, &[]),
            "{name}: a strict parser refuses it"
        );
        assert!(
            parse_pkcs1(&em, &digest, lenient),
            "{name}: lenient on {lenient:?}, accepted"
        );
        let sig = key.sign_raw(&em);
        assert_eq!(
            key.open_raw(&sig),
            em,
            "{name}: the signature opens to the encoding"
        );
        for alg in ["RS256", "PS256"] {
            assert!(!key.ours(alg, &sig), "{name}: {alg} accepted it");
        }
        assert_eq!(
            key.reference(&sig),
            (false, false),
            "{name}: the rsa crate refuses it"
        );
    }
    // The 7-byte padding is refused for its length alone: skipping only the trailing-bytes check
    // still refuses it.
    let short = pkcs1_em(k, 1, Some(7), &good_t, &[]);
    assert!(!parse_pkcs1(&short, &digest, &[Check::Trailing]));
}

// ---- PSS ----------------------------------------------------------------------------------------

/// MGF1 with SHA-256 (RFC 8017 B.2.1), written out independently of the module's.
fn mgf1(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for counter in 0u32.. {
        if out.len() >= len {
            break;
        }
        out.extend_from_slice(
            &Sha256::new()
                .chain_update(seed)
                .chain_update(counter.to_be_bytes())
                .finalize(),
        );
    }
    out.truncate(len);
    out
}

/// EMSA-PSS-ENCODE (SHA-256, MGF1-SHA-256, 32-byte salt) for a 2048-bit modulus (emBits 2047).
fn pss_em(salt: &[u8; 32]) -> Vec<u8> {
    let m_hash = Sha256::digest(MSG);
    let h = Sha256::new()
        .chain_update([0u8; 8])
        .chain_update(m_hash)
        .chain_update(salt)
        .finalize();
    let em_len = 256;
    let mut db = vec![0u8; em_len - 32 - 32 - 2];
    db.push(0x01);
    db.extend_from_slice(salt);
    for (d, m) in db.iter_mut().zip(mgf1(&h, em_len - 32 - 1)) {
        *d ^= m;
    }
    db[0] &= 0x7f;
    db.extend_from_slice(&h);
    db.push(0xbc);
    db
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum PssCheck {
    /// The last byte is 0xbc.
    Trailer,
    /// The bits above emBits are zero.
    TopBits,
}

/// A parsing EMSA-PSS-VERIFY (as `pss_em`), with the checks in `off` skipped.
fn parse_pss(em: &[u8], off: &[PssCheck]) -> bool {
    let on = |c: PssCheck| !off.contains(&c);
    let m_hash = Sha256::digest(MSG);
    if on(PssCheck::Trailer) && em.last() != Some(&0xbc) {
        return false;
    }
    let (masked, rest) = em.split_at(em.len() - 33);
    let h = &rest[..32];
    if on(PssCheck::TopBits) && masked[0] & 0x80 != 0 {
        return false;
    }
    let mut db: Vec<u8> = masked
        .iter()
        .zip(mgf1(h, masked.len()))
        .map(|(a, b)| a ^ b)
        .collect();
    db[0] &= 0x7f;
    let (ps, rest) = db.split_at(db.len() - 33);
    if ps.iter().any(|b| *b != 0) || rest[0] != 0x01 {
        return false;
    }
    let salt = &rest[1..];
    Sha256::new()
        .chain_update([0u8; 8])
        .chain_update(m_hash)
        .chain_update(salt)
        .finalize()[..]
        == *h
}

#[test]
fn crafted_pss_encodings_are_refused() {
    let key = key();
    let good = pss_em(&[7; 32]);
    assert!(parse_pss(&good, &[]));
    let sig = key.sign_raw(&good);
    assert!(key.ours("PS256", &sig));
    assert_eq!(key.reference(&sig), (false, true));

    let mut trailers = Vec::new();
    for trailer in [0x00, 0xbd, 0xcc, 0x3c] {
        let mut em = good.clone();
        *em.last_mut().unwrap() = trailer;
        trailers.push((
            format!("trailer byte {trailer:#04x}"),
            em,
            PssCheck::Trailer,
        ));
    }
    // The top bit of maskedDB set (emBits = 2047): pick a salt whose encoding stays below n
    // (n starts with 0xcb).
    let top = (0u8..=255)
        .map(|i| {
            let mut em = pss_em(&[i; 32]);
            em[0] |= 0x80;
            em
        })
        .find(|em| em[0] < 0xcb)
        .unwrap();
    trailers.push((
        "leftmost bit of maskedDB set".into(),
        top,
        PssCheck::TopBits,
    ));
    for (name, em, lenient) in trailers {
        assert!(!parse_pss(&em, &[]), "{name}: a strict parser refuses it");
        assert!(
            parse_pss(&em, &[lenient]),
            "{name}: lenient on {lenient:?}, accepted"
        );
        let sig = key.sign_raw(&em);
        assert_eq!(key.open_raw(&sig), em);
        for alg in ["PS256", "RS256"] {
            assert!(!key.ours(alg, &sig), "{name}: {alg} accepted it");
        }
        assert_eq!(
            key.reference(&sig),
            (false, false),
            "{name}: the rsa crate refuses it"
        );
    }
}

// ---- Signature values ---------------------------------------------------------------------------

#[test]
fn out_of_range_and_misshaped_signatures_are_refused() {
    let key = key();
    let k = key.k;
    let n = key.pk.n().clone();
    let one = BigUint::from(1u32);

    // A valid PSS signature small enough that s + n still fits in k bytes.
    let (sig, em) = (0u8..=255)
        .map(|i| {
            let em = pss_em(&[i; 32]);
            (key.sign_raw(&em), em)
        })
        .find(|(sig, _)| BigUint::from_bytes_be(sig) + &n < (BigUint::from(1u32) << (8 * k)))
        .unwrap();
    assert!(key.ours("PS256", &sig));
    let plus_n = pad(&(BigUint::from_bytes_be(&sig) + &n), k);
    // Reduced mod n it is the valid signature: a verifier without the s < n check accepts it.
    // The rsa crate 0.9's `RsaPublicKey::verify(Pss, ..)` is such a verifier (its PKCS#1 v1.5
    // path checks the range).
    assert_eq!(key.open_raw(&plus_n), em);
    assert_eq!(
        key.reference(&plus_n),
        (false, true),
        "rsa 0.9's PSS range check"
    );
    assert!(!key.ours("PS256", &plus_n), "s + n accepted");

    // A leading zero byte (k + 1 bytes): the same number, so a verifier that reads the
    // signature as an integer without checking its length accepts it (RFC 8017 §8.2.2 step 1
    // refuses it).
    let mut long = vec![0u8];
    long.extend_from_slice(&sig);
    assert_eq!(BigUint::from_bytes_be(&long), BigUint::from_bytes_be(&sig));

    let values: [(&str, Vec<u8>); 8] = [
        ("s = 0", pad(&BigUint::from(0u32), k)),
        ("s = 1", pad(&one, k)),
        ("s = n - 1", pad(&(&n - &one), k)),
        ("s = n", pad(&n, k)),
        ("s = n + 1", pad(&(&n + &one), k)),
        ("s = 2^2048 - 1", vec![0xff; k]),
        ("k - 1 bytes", sig[1..].to_vec()),
        ("k + 1 bytes", long),
    ];
    for (name, value) in &values {
        for alg in ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"] {
            assert!(!key.ours(alg, value), "{name}: {alg} accepted it");
        }
    }
    assert!(!key.ours("PS256", &[]), "the empty signature");
}
