//! Modular exponentiation for RSA verification on 27-bit limbs with lazy carries: Montgomery
//! products in product-scanning order (column by column), every column summed in one `u64`
//! without a carry per product.
//!
//! Why this shape: wasm32 has a 64-bit multiply but no 64×64→128 one, so a 32-bit-limb loop
//! (`u32 × u32 → u64`, then split the sum into limb and carry) is what a 2048-bit product costs
//! there, and its carry chain makes every multiply-add wait for the previous one. With limbs of
//! 27 bits a product is below 2^54 and a whole column (at most 2 × 152 products for a 4096-bit
//! modulus) still fits in 64 bits, so the inner loop is an independent multiply and add; the
//! carry is taken once per column. 2048 bits are 76 limbs instead of 64 (1.4× the products) but
//! each product is several times cheaper in V8.
//!
//! The products are "lazy" (Walter): with R = 2^(27·limbs) ≥ 4n, inputs below 2n give an output
//! below 2n, so no product needs a final subtraction; one reduction below n is made at the end.
//! Everything here is public (key, signature), so nothing needs to run in constant time.

/// Bits per limb.
const B: u32 = 27;
pub(super) const LIMB_BITS: u32 = B;
const MASK: u64 = (1 << B) - 1;

/// A modulus with its Montgomery constants (computed once, with the key).
pub(super) struct Modulus {
    /// Limbs of `B` bits, least significant first; `R = 2^(B × n.len()) ≥ 4n`.
    n: Vec<u32>,
    /// -n⁻¹ mod 2^B.
    n0inv: u32,
    /// R² mod n.
    rr: Vec<u32>,
}

impl Modulus {
    /// The constants of an odd modulus given big-endian (no leading zero byte needed), of
    /// `bits` bits; `None` when it is even.
    pub(super) fn new(be: &[u8], bits: usize) -> Option<Modulus> {
        let width = (bits + 2).div_ceil(B as usize);
        let n = from_be(be, width)?;
        let n0 = n.first().copied().filter(|n0| n0 % 2 == 1)?;
        let rr = r_squared(&n);
        Some(Modulus {
            n0inv: neg_inverse(n0),
            n,
            rr,
        })
    }

    /// `s^e mod n` as `len` big-endian bytes, for big-endian `s` and odd `e ≥ 3`; `None` when
    /// `s` is not below `n`.
    pub(super) fn pow(&self, s: &[u8], e: u64, len: usize) -> Option<Vec<u8>> {
        let width = self.n.len();
        let s = from_be(s, width).filter(|s| less_than(s, &self.n))?;
        let mut m = vec![0; width];
        let mut base = vec![0; width];
        self.mul(&mut base, &s, &self.rr, &mut m); // s·R
        let mut acc = base.clone();
        let mut tmp = vec![0; width];
        let top = u64::BITS - 1 - e.leading_zeros();
        // Left to right over the bits below the top one, but the last: e is odd, and its last
        // step multiplies by s itself, which also leaves the Montgomery form (s^(e-1)·R·s/R).
        for i in (1..top).rev() {
            self.sqr(&mut tmp, &acc, &mut m);
            std::mem::swap(&mut acc, &mut tmp);
            if e >> i & 1 == 1 {
                self.mul(&mut tmp, &acc, &base, &mut m);
                std::mem::swap(&mut acc, &mut tmp);
            }
        }
        self.sqr(&mut tmp, &acc, &mut m);
        self.mul(&mut acc, &tmp, &s, &mut m);
        if !less_than(&acc, &self.n) {
            sub_assign(&mut acc, &self.n);
        }
        Some(to_be(&acc, len))
    }

    /// `out = a × b × R⁻¹ (mod n)`, below 2n for `a`, `b` below 2n.
    fn mul(&self, out: &mut [u32], a: &[u32], b: &[u32], m: &mut [u32]) {
        self.reduce(out, m, |lo, hi| {
            let (Some(a), Some(b)) = (a.get(lo..=hi), b.get(lo..=hi)) else {
                return 0;
            };
            dot(a, b)
        });
    }

    /// `out = a² × R⁻¹ (mod n)`, below 2n for `a` below 2n: each cross product once, doubled.
    fn sqr(&self, out: &mut [u32], a: &[u32], m: &mut [u32]) {
        self.reduce(out, m, |lo, hi| {
            // Column lo + hi: pairs (j, lo + hi - j) with j < lo + hi - j, then the square.
            let half = (hi - lo).div_ceil(2);
            let cross = match (a.get(lo..lo + half), a.get(hi + 1 - half..=hi)) {
                (Some(x), Some(y)) => dot(x, y),
                _ => 0,
            };
            let middle = if (hi - lo) % 2 == 0 {
                a.get(lo + half).map_or(0, |&x| u64::from(x) * u64::from(x))
            } else {
                0
            };
            2 * cross + middle
        });
    }

    /// Montgomery reduction in product-scanning order: column `i` of the product (summed by
    /// `column(lo, hi)`: the products of limbs `j` and `i - j` for `j` in `lo..=hi`) plus
    /// column `i` of `m × n`, where `m` is chosen limb by limb to clear the low limbs.
    fn reduce(&self, out: &mut [u32], m: &mut [u32], column: impl Fn(usize, usize) -> u64) {
        let width = self.n.len();
        let n0 = self.n.first().copied().unwrap_or(1);
        let mut acc: u64 = 0;
        for i in 0..width {
            acc += column(0, i);
            if let (Some(ms), Some(ns)) = (m.get(..i), self.n.get(1..=i)) {
                acc += dot(ms, ns);
            }
            let mi = (acc as u32).wrapping_mul(self.n0inv) & MASK as u32;
            if let Some(slot) = m.get_mut(i) {
                *slot = mi;
            }
            acc += u64::from(mi) * u64::from(n0);
            acc >>= B;
        }
        for (i, limb) in (width..2 * width).zip(out.iter_mut()) {
            let lo = i + 1 - width;
            if lo < width {
                acc += column(lo, width - 1);
                if let (Some(ms), Some(ns)) = (m.get(lo..), self.n.get(lo..)) {
                    acc += dot(ms, ns);
                }
            }
            *limb = (acc & MASK) as u32;
            acc >>= B;
        }
    }
}

/// `Σ x[j] × y[len - 1 - j]`: one column of a product (x ascending, y descending).
fn dot(x: &[u32], y: &[u32]) -> u64 {
    x.iter()
        .zip(y.iter().rev())
        .map(|(&p, &q)| u64::from(p) * u64::from(q))
        .sum()
}

/// Big-endian bytes as `width` limbs, least significant first; `None` when the number does not
/// fit in them.
fn from_be(be: &[u8], width: usize) -> Option<Vec<u32>> {
    let mut out = Vec::with_capacity(width + 1);
    let mut buf: u64 = 0;
    let mut bits = 0;
    for &byte in be.iter().rev() {
        buf |= u64::from(byte) << bits;
        bits += 8;
        if bits >= B {
            out.push((buf & MASK) as u32);
            buf >>= B;
            bits -= B;
        }
    }
    out.push(buf as u32);
    if out.iter().skip(width).any(|l| *l != 0) {
        return None;
    }
    out.resize(width, 0);
    Some(out)
}

/// `len` big-endian bytes of a number that fits in them.
fn to_be(limbs: &[u32], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 4);
    let mut buf: u64 = 0;
    let mut bits = 0;
    for &limb in limbs {
        buf |= u64::from(limb) << bits;
        bits += B;
        while bits >= 8 {
            out.push(buf as u8);
            buf >>= 8;
            bits -= 8;
        }
    }
    out.push(buf as u8);
    out.resize(len, 0);
    out.reverse();
    out
}

fn less_than(a: &[u32], b: &[u32]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

/// `a -= b`, for `a ≥ b`.
fn sub_assign(a: &mut [u32], b: &[u32]) {
    let mut borrow = 0;
    for (x, &y) in a.iter_mut().zip(b) {
        let d = i64::from(*x) - i64::from(y) - borrow;
        borrow = i64::from(d < 0);
        *x = (d & MASK as i64) as u32;
    }
}

/// -n0⁻¹ mod 2^B for odd `n0` (Newton's iteration doubles the correct bits each step).
fn neg_inverse(n0: u32) -> u32 {
    let mut inv: u32 = 1;
    for _ in 0..5 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inv)));
    }
    inv.wrapping_neg() & MASK as u32
}

/// R² mod n by doubling 1 modulo n (2 × B × limbs times; once per key).
fn r_squared(n: &[u32]) -> Vec<u32> {
    let mut x = vec![0; n.len()];
    if let Some(low) = x.first_mut() {
        *low = 1;
    }
    for _ in 0..2 * B as usize * n.len() {
        let mut carry = 0;
        for l in x.iter_mut() {
            let v = *l << 1 | carry;
            *l = v & MASK as u32;
            carry = v >> B;
        }
        // x < n before, so 2x < 2n < R: no carry out, one subtraction at most.
        if !less_than(&x, n) {
            sub_assign(&mut x, n);
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::BigUint;

    /// A deterministic stream of bytes (xorshift; tests only).
    struct XorShift(u64);
    impl XorShift {
        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len)
                .map(|_| {
                    self.0 ^= self.0 << 13;
                    self.0 ^= self.0 >> 7;
                    self.0 ^= self.0 << 17;
                    self.0 as u8
                })
                .collect()
        }
    }

    fn odd_modulus(rng: &mut XorShift, bits: usize) -> Vec<u8> {
        let mut n = rng.bytes(bits.div_ceil(8));
        let top_bits = bits - 8 * (n.len() - 1);
        n[0] &= (0xffu16 >> (8 - top_bits)) as u8;
        n[0] |= 1 << (top_bits - 1);
        *n.last_mut().unwrap() |= 1;
        n
    }

    fn check(n: &[u8], bits: usize, s: &[u8], e: u64) {
        let modulus = Modulus::new(n, bits).unwrap();
        let (n_big, s_big) = (BigUint::from_bytes_be(n), BigUint::from_bytes_be(s));
        let ours = modulus.pow(s, e, n.len());
        if s_big >= n_big {
            assert_eq!(ours, None, "s >= n is refused");
            return;
        }
        let expected = s_big.modpow(&BigUint::from(e), &n_big);
        assert_eq!(
            BigUint::from_bytes_be(&ours.unwrap()),
            expected,
            "{bits} bits, e = {e}"
        );
    }

    #[test]
    fn powers_match_num_bigint_for_random_moduli_exponents_and_bases() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for bits in [
            2048, 2049, 2050, 2051, 2052, 2053, 2055, 2056, 3072, 4095, 4096,
        ] {
            for round in 0..6 {
                let n = odd_modulus(&mut rng, bits);
                let e = match round {
                    0 => 65537,
                    1 => 3,
                    2 => (1 << 33) - 1,
                    _ => u64::from_be_bytes(rng.bytes(8).try_into().unwrap()) >> 31 | 1,
                };
                let s = rng.bytes(n.len());
                check(&n, bits, &s, e);
                // Edge bases: 0, 1, 2, n - 1, n (refused), n + 1 (refused), all ones.
                let n_big = BigUint::from_bytes_be(&n);
                let one = BigUint::from(1u8);
                for edge in [
                    BigUint::from(0u8),
                    one.clone(),
                    BigUint::from(2u8),
                    &n_big - &one,
                    n_big.clone(),
                    &n_big + &one,
                ] {
                    let mut be = edge.to_bytes_be();
                    if be.len() > n.len() {
                        continue;
                    }
                    while be.len() < n.len() {
                        be.insert(0, 0);
                    }
                    check(&n, bits, &be, e);
                }
                check(&n, bits, &vec![0xff; n.len()], e);
            }
        }
    }

    #[test]
    fn moduli_with_extreme_limbs_match_num_bigint() {
        // All-ones limbs (the largest column sums) and a sparse modulus 2^k + 1.
        let mut rng = XorShift(7);
        for bits in [2048, 4096] {
            let ones = vec![0xffu8; bits / 8];
            let mut sparse = vec![0u8; bits / 8];
            sparse[0] = 0x80;
            sparse[bits / 8 - 1] = 1;
            for n in [ones, sparse] {
                for _ in 0..4 {
                    let mut s = rng.bytes(n.len());
                    s[0] &= 0x7f;
                    check(&n, bits, &s, 65537);
                }
                let mut top = vec![0xffu8; n.len()];
                top[0] = n[0];
                top[n.len() - 1] = 0;
                check(&n, bits, &top, 65537);
            }
        }
    }

    #[test]
    fn even_moduli_are_refused() {
        let mut n = vec![0xffu8; 256];
        n[255] = 0xfe;
        assert!(Modulus::new(&n, 2048).is_none());
    }

    #[test]
    fn limbs_round_trip() {
        let mut rng = XorShift(99);
        for len in [1, 3, 27, 256, 257, 512] {
            let be = rng.bytes(len);
            let width = (len * 8 + 2).div_ceil(B as usize);
            assert_eq!(to_be(&from_be(&be, width).unwrap(), len), be);
        }
        assert_eq!(from_be(&[1, 0, 0, 0, 0], 1), None);
    }
}
