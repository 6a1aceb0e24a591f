//! RSA signature verification (RFC 8017 RSASSA-PKCS1-v1_5 and RSASSA-PSS: the JWS `RS*` and
//! `PS*` algorithms) with each key's Montgomery constants computed once, when the key is parsed.
//!
//! Why not the `rsa` crate (what jwt-compact verifies with): its `modpow` (num-bigint-dig)
//! recomputes R² mod n by a shift and a long division and a 16-entry window table on every call,
//! then walks all 64 bits of the exponent's limb in 4-bit windows: ~96 Montgomery
//! multiplications per signature for e = 65537, where square-and-multiply needs 17, and each of
//! its multiplications is slower than the loop below. Everything here is public (key, signature,
//! message), so nothing needs to run in constant time; the results are checked against the `rsa`
//! crate in the tests.

use sha2::{Digest, Sha256, Sha384, Sha512};

// 64-bit limbs where the CPU multiplies 64x64->128; 32-bit ones on wasm32 (no wide multiply).
#[cfg(target_pointer_width = "64")]
type Limb = u64;
#[cfg(target_pointer_width = "64")]
type Wide = u128;
#[cfg(not(target_pointer_width = "64"))]
type Limb = u32;
#[cfg(not(target_pointer_width = "64"))]
type Wide = u64;

pub(super) const LIMB_BITS: u32 = Limb::BITS;
const LIMB_BYTES: usize = std::mem::size_of::<Limb>();

/// Smallest accepted modulus (RFC 7518 §3.3: 2048 bits or larger).
pub const MIN_BITS: usize = 2048;
/// Largest accepted modulus (the `rsa` crate's limit, kept).
pub const MAX_BITS: usize = 4096;
/// Largest accepted public exponent (the `rsa` crate's limit, kept).
const MAX_EXPONENT: u64 = (1 << 33) - 1;

/// The hash of a JWS RSA algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

/// The signature padding of a JWS RSA algorithm (`RS*`: PKCS #1 v1.5; `PS*`: PSS, salt as long
/// as the hash, RFC 7518 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    Pkcs1v15,
    Pss,
}

/// An RSA public key with its Montgomery constants.
pub struct RsaKey {
    /// The modulus, least significant limb first.
    n: Vec<Limb>,
    /// -n⁻¹ mod 2^LIMB_BITS.
    n0inv: Limb,
    /// R² mod n, R = 2^(LIMB_BITS × limbs).
    rr: Vec<Limb>,
    e: u64,
    bits: usize,
}

impl RsaKey {
    /// A key from the big-endian modulus and exponent (a JWK's `n` and `e`).
    pub fn new(modulus: &[u8], exponent: &[u8]) -> Result<RsaKey, String> {
        let modulus = strip_zeros(modulus);
        let bits = bit_len(modulus);
        if bits < MIN_BITS {
            return Err(format!("RSA modulus of {bits} bits is below {MIN_BITS}"));
        }
        if bits > MAX_BITS {
            return Err(format!("RSA modulus of {bits} bits is above {MAX_BITS}"));
        }
        let exponent = strip_zeros(exponent);
        let e = (exponent.len() <= 8)
            .then(|| exponent.iter().fold(0u64, |e, b| e << 8 | u64::from(*b)))
            .filter(|e| (3..=MAX_EXPONENT).contains(e) && e % 2 == 1)
            .ok_or("RSA public exponent is not an odd number from 3 to 2^33-1")?;
        let n = limbs(modulus, bits.div_ceil(LIMB_BITS as usize));
        let n0 = n.first().copied().unwrap_or(0);
        if n0 % 2 == 0 {
            return Err("RSA modulus is even".into());
        }
        let rr = r_squared(&n);
        Ok(RsaKey {
            n0inv: neg_inverse(n0),
            n,
            rr,
            e,
            bits,
        })
    }

    /// Length of the modulus, and of every signature, in bytes.
    pub fn len(&self) -> usize {
        self.bits.div_ceil(8)
    }

    /// Whether `signature` is a valid signature of `message` under this key.
    pub fn verify(&self, hash: Hash, padding: Padding, message: &[u8], signature: &[u8]) -> bool {
        let Some(em) = self.public_op(signature) else {
            return false;
        };
        let digest = hash.digest(&[message]);
        match padding {
            Padding::Pkcs1v15 => pkcs1v15_matches(&em, hash, &digest),
            Padding::Pss => pss_matches(&em, self.bits, hash, &digest),
        }
    }

    /// RSAVP1 and I2OSP (RFC 8017 §5.2.2, §4.1): `signature^e mod n` as `len()` bytes, or `None`
    /// when the signature is not exactly `len()` bytes or not below the modulus.
    fn public_op(&self, signature: &[u8]) -> Option<Vec<u8>> {
        if signature.len() != self.len() {
            return None;
        }
        let s = limbs(signature, self.n.len());
        if !less_than(&s, &self.n) {
            return None;
        }
        let width = self.n.len();
        let mut scratch = vec![0; width + 2];
        let mut square_scratch = vec![0; 2 * width + 1];
        let mut base = vec![0; width];
        self.mont_mul(&mut base, &s, &self.rr, &mut scratch);
        let mut acc = base.clone();
        let mut tmp = vec![0; width];
        let top = u64::BITS - 1 - self.e.leading_zeros();
        // Every bit below the top one but the last; e is odd, and its last step multiplies by
        // s itself rather than s·R, which also leaves the Montgomery form: s^(e-1)·R × s / R.
        // 18 products for e = 65537 (17 and one conversion), not 19.
        for i in (1..top).rev() {
            self.mont_sqr(&mut tmp, &acc, &mut square_scratch);
            std::mem::swap(&mut acc, &mut tmp);
            if self.e >> i & 1 == 1 {
                self.mont_mul(&mut tmp, &acc, &base, &mut scratch);
                std::mem::swap(&mut acc, &mut tmp);
            }
        }
        self.mont_sqr(&mut tmp, &acc, &mut square_scratch);
        self.mont_mul(&mut acc, &tmp, &s, &mut scratch);
        Some(to_bytes(&acc, self.len()))
    }

    /// `out = a² × R⁻¹ mod n` (SOS: the square's cross products once and doubled, then the
    /// reduction), for `a` below `n`. `t` is scratch of `2 × limbs + 1`.
    fn mont_sqr(&self, out: &mut [Limb], a: &[Limb], t: &mut [Limb]) {
        t.fill(0);
        // Cross products a[i]·a[j], i < j, at t[i + j].
        for (i, &ai) in a.iter().enumerate() {
            let (Some(row), Some(rest)) = (t.get_mut(2 * i + 1..), a.get(i + 1..)) else {
                continue;
            };
            let mut carry: Limb = 0;
            let mut cells = row.iter_mut();
            // The shorter side first: zip would drop a cell after `rest` runs out.
            for (&aj, tj) in rest.iter().zip(&mut cells) {
                let w = Wide::from(*tj) + Wide::from(ai) * Wide::from(aj) + Wide::from(carry);
                *tj = w as Limb;
                carry = (w >> LIMB_BITS) as Limb;
            }
            if let Some(next) = cells.next() {
                *next = carry;
            }
        }
        // Doubled, plus the squares a[i]² at t[2i].
        let mut shifted: Limb = 0;
        for l in t.iter_mut() {
            let top = *l >> (LIMB_BITS - 1);
            *l = *l << 1 | shifted;
            shifted = top;
        }
        let mut carry: Wide = 0;
        for (pair, &ai) in t.chunks_mut(2).zip(a) {
            let sq = Wide::from(ai) * Wide::from(ai);
            let parts = [sq as Limb, (sq >> LIMB_BITS) as Limb];
            for (cell, part) in pair.iter_mut().zip(parts) {
                let w = Wide::from(*cell) + Wide::from(part) + carry;
                *cell = w as Limb;
                carry = w >> LIMB_BITS;
            }
        }
        // Montgomery reduction, one limb at a time.
        let width = self.n.len();
        for i in 0..width {
            let Some(window) = t.get_mut(i..) else {
                break;
            };
            let m = window
                .first()
                .copied()
                .unwrap_or(0)
                .wrapping_mul(self.n0inv);
            let mut carry: Limb = 0;
            let mut cells = window.iter_mut();
            for (&nj, tj) in self.n.iter().zip(&mut cells) {
                let w = Wide::from(*tj) + Wide::from(m) * Wide::from(nj) + Wide::from(carry);
                *tj = w as Limb;
                carry = (w >> LIMB_BITS) as Limb;
            }
            for tj in cells {
                if carry == 0 {
                    break;
                }
                let (v, c) = tj.overflowing_add(carry);
                *tj = v;
                carry = Limb::from(c);
            }
        }
        let Some(high) = t.get_mut(width..) else {
            return;
        };
        let Some((&mut top, low)) = high.split_last_mut() else {
            return;
        };
        if top != 0 || !less_than(low, &self.n) {
            sub_assign(low, &self.n);
        }
        out.copy_from_slice(low);
    }

    /// `out = a × b × R⁻¹ mod n` (CIOS Montgomery multiplication), for `a`, `b` below `n`.
    /// `t` is scratch of `limbs + 2`.
    fn mont_mul(&self, out: &mut [Limb], a: &[Limb], b: &[Limb], t: &mut [Limb]) {
        t.fill(0);
        let (low, high) = t.split_at_mut(self.n.len());
        let [t_s, t_s1] = high else {
            return;
        };
        for &bi in b {
            let mut carry: Limb = 0;
            for (tj, &aj) in low.iter_mut().zip(a) {
                let w = Wide::from(*tj) + Wide::from(aj) * Wide::from(bi) + Wide::from(carry);
                *tj = w as Limb;
                carry = (w >> LIMB_BITS) as Limb;
            }
            let w = Wide::from(*t_s) + Wide::from(carry);
            *t_s = w as Limb;
            *t_s1 = (w >> LIMB_BITS) as Limb;
            // t = (t + m × n) / 2^LIMB_BITS, with m making the low limb zero.
            let mut pairs = low.iter_mut().zip(&self.n);
            let Some((t0, &n0)) = pairs.next() else {
                return;
            };
            let m = t0.wrapping_mul(self.n0inv);
            let w = Wide::from(*t0) + Wide::from(m) * Wide::from(n0);
            let mut carry = (w >> LIMB_BITS) as Limb;
            let mut prev = t0;
            for (tj, &nj) in pairs {
                let w = Wide::from(*tj) + Wide::from(m) * Wide::from(nj) + Wide::from(carry);
                *prev = w as Limb;
                carry = (w >> LIMB_BITS) as Limb;
                prev = tj;
            }
            let w = Wide::from(*t_s) + Wide::from(carry);
            *prev = w as Limb;
            *t_s = t_s1.wrapping_add((w >> LIMB_BITS) as Limb);
            *t_s1 = 0;
        }
        // t < 2n: one subtraction at most.
        if *t_s != 0 || !less_than(low, &self.n) {
            sub_assign(low, &self.n);
        }
        out.copy_from_slice(low);
    }
}

impl Hash {
    fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            Hash::Sha256 => run::<Sha256>(parts),
            Hash::Sha384 => run::<Sha384>(parts),
            Hash::Sha512 => run::<Sha512>(parts),
        }
    }

    /// The DER `DigestInfo` header before the hash (RFC 8017 §9.2, note 1).
    fn digest_info(self) -> &'static [u8] {
        match self {
            Hash::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Hash::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Hash::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// EMSA-PKCS1-v1_5 (RFC 8017 §9.2) by building the expected encoding and comparing, as §8.2.2
/// recommends (no parsing of the decrypted block).
fn pkcs1v15_matches(em: &[u8], hash: Hash, digest: &[u8]) -> bool {
    let prefix = hash.digest_info();
    let t_len = prefix.len() + digest.len();
    if em.len() < t_len + 11 {
        return false;
    }
    let mut expected = Vec::with_capacity(em.len());
    expected.extend_from_slice(&[0x00, 0x01]);
    expected.resize(em.len() - t_len - 1, 0xff);
    expected.push(0x00);
    expected.extend_from_slice(prefix);
    expected.extend_from_slice(digest);
    em == expected.as_slice()
}

/// EMSA-PSS-VERIFY (RFC 8017 §9.1.2) with MGF1 of the same hash and a salt as long as the hash.
fn pss_matches(full: &[u8], mod_bits: usize, hash: Hash, m_hash: &[u8]) -> bool {
    let em_bits = mod_bits - 1;
    let em_len = em_bits.div_ceil(8);
    let Some((head, em)) = full.split_at_checked(full.len().saturating_sub(em_len)) else {
        return false;
    };
    // I2OSP(m, emLen) fails when m needs the extra byte.
    if head.iter().any(|b| *b != 0) {
        return false;
    }
    let h_len = m_hash.len();
    let s_len = h_len;
    if em_len < h_len + s_len + 2 || em.last() != Some(&0xbc) {
        return false;
    }
    let Some((masked_db, rest)) = em.split_at_checked(em_len - h_len - 1) else {
        return false;
    };
    let Some(h) = rest.get(..h_len) else {
        return false;
    };
    let top_mask = 0xffu8 >> (8 * em_len - em_bits);
    if masked_db.first().is_some_and(|b| b & !top_mask != 0) {
        return false;
    }
    let mut db = mgf1(hash, h, masked_db.len());
    for (d, m) in db.iter_mut().zip(masked_db) {
        *d ^= m;
    }
    if let Some(first) = db.first_mut() {
        *first &= top_mask;
    }
    let Some((padding, rest)) = db.split_at_checked(em_len - h_len - s_len - 2) else {
        return false;
    };
    let Some((&0x01, salt)) = rest.split_first() else {
        return false;
    };
    if padding.iter().any(|b| *b != 0) {
        return false;
    }
    hash.digest(&[&[0u8; 8], m_hash, salt]) == h
}

/// MGF1 (RFC 8017 B.2.1).
fn mgf1(hash: Hash, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut counter: u32 = 0;
    while out.len() < len {
        out.extend_from_slice(&hash.digest(&[seed, &counter.to_be_bytes()]));
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let leading = bytes.iter().take_while(|b| **b == 0).count();
    bytes.get(leading..).unwrap_or_default()
}

fn bit_len(be: &[u8]) -> usize {
    match be.first() {
        None => 0,
        Some(top) => be.len() * 8 - top.leading_zeros() as usize,
    }
}

/// Big-endian bytes as `width` limbs, least significant first (extra high bytes are dropped:
/// callers pass numbers that fit).
fn limbs(be: &[u8], width: usize) -> Vec<Limb> {
    let mut out: Vec<Limb> = be
        .rchunks(LIMB_BYTES)
        .map(|chunk| chunk.iter().fold(0, |l, b| l << 8 | Limb::from(*b)))
        .collect();
    out.resize(width, 0);
    out
}

/// `len` big-endian bytes of a number that fits in them.
fn to_bytes(limbs: &[Limb], len: usize) -> Vec<u8> {
    let le: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
    let mut out: Vec<u8> = le.into_iter().take(len).collect();
    out.resize(len, 0);
    out.reverse();
    out
}

fn less_than(a: &[Limb], b: &[Limb]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

/// `a -= b` (mod 2^(LIMB_BITS × len)).
fn sub_assign(a: &mut [Limb], b: &[Limb]) {
    let mut borrow = false;
    for (x, &y) in a.iter_mut().zip(b) {
        let (d, b1) = x.overflowing_sub(y);
        let (d, b2) = d.overflowing_sub(Limb::from(borrow));
        *x = d;
        borrow = b1 || b2;
    }
}

/// -n0⁻¹ mod 2^LIMB_BITS for odd `n0` (Newton's iteration doubles the correct bits each step).
fn neg_inverse(n0: Limb) -> Limb {
    let mut inv: Limb = 1;
    for _ in 0..7 {
        inv = inv.wrapping_mul((2 as Limb).wrapping_sub(n0.wrapping_mul(inv)));
    }
    inv.wrapping_neg()
}

/// R² mod n by doubling 1 modulo n (2 × LIMB_BITS × limbs times; once per key).
fn r_squared(n: &[Limb]) -> Vec<Limb> {
    let mut x = vec![0; n.len()];
    if let Some(low) = x.first_mut() {
        *low = 1;
    }
    for _ in 0..2 * LIMB_BITS as usize * n.len() {
        let mut carry = 0;
        for l in x.iter_mut() {
            let top = *l >> (LIMB_BITS - 1);
            *l = *l << 1 | carry;
            carry = top;
        }
        if carry != 0 || !less_than(&x, n) {
            sub_assign(&mut x, n);
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::traits::PublicKeyParts;
    use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey};

    fn key(private: &RsaPrivateKey) -> RsaKey {
        let public = private.to_public_key();
        RsaKey::new(&public.n().to_bytes_be(), &public.e().to_bytes_be()).unwrap()
    }

    fn private(bits: usize) -> RsaPrivateKey {
        // Deterministic, so a failure reproduces.
        let mut rng = rand_chacha_like(bits as u64);
        RsaPrivateKey::new(&mut rng, bits).unwrap()
    }

    /// A small deterministic RNG for key generation (xorshift; tests only).
    fn rand_chacha_like(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    struct XorShift(u64);
    impl rand_core::RngCore for XorShift {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for chunk in dest.chunks_mut(8) {
                let v = self.next_u64().to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl rand_core::CryptoRng for XorShift {}

    #[test]
    fn public_operation_matches_num_bigint_modpow() {
        for bits in [2048, 2056, 3072, 4096] {
            let sk = private(bits);
            let pk = RsaPublicKey::from(&sk);
            let k = key(&sk);
            assert_eq!(k.len(), pk.size());
            let mut rng = rand_chacha_like(bits as u64 + 7);
            for round in 0..20 {
                let mut s = vec![0u8; k.len()];
                rand_core::RngCore::fill_bytes(&mut rng, &mut s);
                if round == 0 {
                    s.fill(0);
                    s[k.len() - 1] = 1;
                }
                let s_big = BigUint::from_bytes_be(&s);
                let ours = k.public_op(&s);
                if s_big >= *pk.n() {
                    assert_eq!(ours, None, "{bits}: a signature >= n is refused");
                    continue;
                }
                let expected = s_big.modpow(pk.e(), pk.n()).to_bytes_be();
                let ours = ours.unwrap();
                let start = ours.iter().take_while(|b| **b == 0).count();
                assert_eq!(
                    &ours[start..],
                    expected.as_slice(),
                    "{bits} bits, round {round}"
                );
            }
        }
    }

    #[test]
    fn every_padding_and_hash_verifies_what_the_rsa_crate_signs() {
        let sk = private(2048);
        let k = key(&sk);
        let msg = b"header.payload";
        for hash in [Hash::Sha256, Hash::Sha384, Hash::Sha512] {
            let digest = hash.digest(&[msg]);
            let pkcs = match hash {
                Hash::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
                Hash::Sha384 => Pkcs1v15Sign::new::<Sha384>(),
                Hash::Sha512 => Pkcs1v15Sign::new::<Sha512>(),
            };
            let sig = sk.sign(pkcs, &digest).unwrap();
            assert!(k.verify(hash, Padding::Pkcs1v15, msg, &sig), "{hash:?}");
            assert!(!k.verify(hash, Padding::Pss, msg, &sig), "{hash:?}");
            assert!(!k.verify(hash, Padding::Pkcs1v15, b"header.payloaD", &sig));
            let mut rng = rand_chacha_like(3);
            let pss = match hash {
                Hash::Sha256 => Pss::new_with_salt::<Sha256>(32),
                Hash::Sha384 => Pss::new_with_salt::<Sha384>(48),
                Hash::Sha512 => Pss::new_with_salt::<Sha512>(64),
            };
            let sig = sk.sign_with_rng(&mut rng, pss, &digest).unwrap();
            assert!(k.verify(hash, Padding::Pss, msg, &sig), "{hash:?}");
            assert!(!k.verify(hash, Padding::Pkcs1v15, msg, &sig), "{hash:?}");
            assert!(!k.verify(hash, Padding::Pss, b"header.payloaD", &sig));
            let other = if hash == Hash::Sha256 {
                Hash::Sha384
            } else {
                Hash::Sha256
            };
            assert!(!k.verify(other, Padding::Pss, msg, &sig), "{hash:?}");
        }
    }

    #[test]
    fn pss_with_another_salt_length_is_refused() {
        let sk = private(2048);
        let k = key(&sk);
        let digest = Hash::Sha256.digest(&[b"m"]);
        let mut rng = rand_chacha_like(5);
        let sig = sk
            .sign_with_rng(&mut rng, Pss::new_with_salt::<Sha256>(20), &digest)
            .unwrap();
        assert!(!k.verify(Hash::Sha256, Padding::Pss, b"m", &sig));
    }

    #[test]
    fn pss_with_a_modulus_of_8k_plus_1_bits_verifies() {
        // emLen is one byte shorter than the modulus: the leading byte must be zero.
        let sk = private(2049);
        let k = key(&sk);
        assert_eq!(k.len(), 257);
        let digest = Hash::Sha256.digest(&[b"m"]);
        let mut rng = rand_chacha_like(9);
        let sig = sk
            .sign_with_rng(&mut rng, Pss::new_with_salt::<Sha256>(32), &digest)
            .unwrap();
        assert!(k.verify(Hash::Sha256, Padding::Pss, b"m", &sig));
    }

    #[test]
    fn tampered_and_misshaped_signatures_are_refused() {
        let sk = private(2048);
        let k = key(&sk);
        let digest = Hash::Sha256.digest(&[b"m"]);
        let sig = sk.sign(Pkcs1v15Sign::new::<Sha256>(), &digest).unwrap();
        assert!(k.verify(Hash::Sha256, Padding::Pkcs1v15, b"m", &sig));
        for i in [0, 1, 100, 255] {
            let mut bad = sig.clone();
            bad[i] ^= 1;
            assert!(
                !k.verify(Hash::Sha256, Padding::Pkcs1v15, b"m", &bad),
                "byte {i}"
            );
        }
        assert!(!k.verify(Hash::Sha256, Padding::Pkcs1v15, b"m", &sig[1..]));
        let mut long = vec![0u8];
        long.extend_from_slice(&sig);
        assert!(!k.verify(Hash::Sha256, Padding::Pkcs1v15, b"m", &long));
        // The signature plus n: same value mod n, but not below n.
        let pk = RsaPublicKey::from(&sk);
        let bigger = (BigUint::from_bytes_be(&sig) + pk.n()).to_bytes_be();
        if bigger.len() == sig.len() {
            assert!(!k.verify(Hash::Sha256, Padding::Pkcs1v15, b"m", &bigger));
        }
        assert!(!k.verify(Hash::Sha256, Padding::Pkcs1v15, b"m", &[]));
    }

    #[test]
    fn keys_are_checked() {
        let n = vec![0xffu8; 256];
        assert!(RsaKey::new(&n, &[1, 0, 1]).is_ok());
        let err = RsaKey::new(&[0xff; 128], &[1, 0, 1]).err().unwrap();
        assert!(err.contains("1024 bits"), "{err}");
        assert!(RsaKey::new(&[0xff; 513], &[1, 0, 1]).is_err());
        let mut even = n.clone();
        even[255] = 0xfe;
        assert!(RsaKey::new(&even, &[1, 0, 1]).is_err());
        for e in [&[][..], &[1], &[2], &[1, 0, 0], &[4, 0, 0, 0, 1]] {
            assert!(RsaKey::new(&n, e).is_err(), "e = {e:?}");
        }
        assert!(RsaKey::new(&n, &[3]).is_ok());
        let mut padded = vec![0u8; 3];
        padded.extend_from_slice(&n);
        assert_eq!(RsaKey::new(&padded, &[0, 1, 0, 1]).unwrap().len(), 256);
    }
}
