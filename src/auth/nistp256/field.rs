//! Arithmetic modulo the P-256 prime p = 2^256 - 2^224 + 2^192 + 2^96 - 1 on ten 26-bit limbs,
//! for ECDSA verification in wasm.
//!
//! Why not the `p256` crate's field: on 32-bit targets (wasm32) its field code widens to 64-bit
//! words and multiplies them into `u128`, which wasm has no instruction for (every product is a
//! call to compiler-rt's `__multi3`). Here a product of two 26-bit limbs is one 64-bit multiply
//! and a column of them sums in an `i64` without carries, and the Montgomery reduction uses the
//! prime's shape (p ≡ -1 mod 2^26, so each reduction step is four shifted additions instead of
//! ten products).
//!
//! Representation: Montgomery form `x·R mod p` with R = 2^260, any representative below 2p,
//! limbs normalised below 2^26. A product of inputs below 4p is below 2p (R ≥ 16p), so only
//! additions and subtractions reduce (by 2p). Verification works on public values only: nothing
//! here runs in constant time.

const BITS: u32 = 26;
const MASK: i64 = (1 << BITS) - 1;

/// A field element (see the module's documentation for the representation).
#[derive(Clone, Copy, Debug)]
pub struct Fe([u32; 10]);

/// p.
const P: [u32; 10] = [
    0x3ffffff, 0x3ffffff, 0x3ffffff, 0x3ffff, 0, 0, 0, 0x400, 0x3ff0000, 0x3fffff,
];
/// 2p.
const P2: [u32; 10] = [
    0x3fffffe, 0x3ffffff, 0x3ffffff, 0x7ffff, 0, 0, 0, 0x800, 0x3fe0000, 0x7fffff,
];
/// R² mod p (2^520 mod p), to enter the Montgomery form.
const RR: [u32; 10] = [
    0x300, 0, 0x3f00000, 0x3ffffff, 0x3fffffb, 0x3ffffbf, 0x3ffffff, 0x3f7ffff, 0xffffff, 0x1,
];
/// R mod p: one, in Montgomery form.
const R1: [u32; 10] = [
    0x10, 0, 0, 0x3c00000, 0x3ffffff, 0x3ffffff, 0x3ffffff, 0x3ffbfff, 0xfffff, 0,
];

impl Fe {
    pub const ZERO: Fe = Fe([0; 10]);
    pub const ONE: Fe = Fe(R1);

    /// The element of a 32-byte big-endian number below 2^256 (reduced mod p).
    pub fn from_be(be: &[u8; 32]) -> Fe {
        let mut limbs = [0u32; 10];
        let mut buf: u64 = 0;
        let mut bits = 0;
        let mut out = limbs.iter_mut();
        for &byte in be.iter().rev() {
            buf |= u64::from(byte) << bits;
            bits += 8;
            if bits >= BITS {
                if let Some(l) = out.next() {
                    *l = (buf & MASK as u64) as u32;
                }
                buf >>= BITS;
                bits -= BITS;
            }
        }
        if let Some(l) = out.next() {
            *l = buf as u32;
        }
        // Below 2^256 < 2p: a valid representative; into the Montgomery form.
        Fe(limbs).mul(&Fe(RR))
    }

    /// The canonical 32 big-endian bytes (out of the Montgomery form).
    #[cfg(test)]
    pub fn to_be(self) -> [u8; 32] {
        let mut one = [0u32; 10];
        one[0] = 1;
        let plain = self.mul(&Fe(one)).canonical();
        let mut out = [0u8; 32];
        let mut buf: u64 = 0;
        let mut bits = 0;
        let mut bytes = out.iter_mut().rev();
        for &limb in &plain {
            buf |= u64::from(limb) << bits;
            bits += BITS;
            while bits >= 8 {
                if let Some(b) = bytes.next() {
                    *b = buf as u8;
                }
                buf >>= 8;
                bits -= 8;
            }
        }
        out
    }

    /// `self × b` (Montgomery product: the product's `R` factor is divided out).
    pub fn mul(&self, b: &Fe) -> Fe {
        let mut t = [0i64; 20];
        for (i, &ai) in self.0.iter().enumerate() {
            let ai = i64::from(ai);
            for (tk, &bj) in t.iter_mut().skip(i).zip(&b.0) {
                *tk += ai * i64::from(bj);
            }
        }
        reduce(t)
    }

    /// `self²`: each cross product once, doubled.
    pub fn square(&self) -> Fe {
        let mut t = [0i64; 20];
        for (i, &ai) in self.0.iter().enumerate() {
            let ai = i64::from(ai);
            if let Some(t2i) = t.get_mut(2 * i) {
                *t2i += ai * ai;
            }
            let ai2 = 2 * ai;
            for (tk, &aj) in t.iter_mut().skip(2 * i + 1).zip(self.0.iter().skip(i + 1)) {
                *tk += ai2 * i64::from(aj);
            }
        }
        reduce(t)
    }

    pub fn add(&self, b: &Fe) -> Fe {
        let mut sum = [0u32; 10];
        let mut carry = 0i64;
        for ((s, &x), &y) in sum.iter_mut().zip(&self.0).zip(&b.0) {
            let v = i64::from(x) + i64::from(y) + carry;
            *s = (v & MASK) as u32;
            carry = v >> BITS;
        }
        // Below 4p (< 2^259: no carry out of the top limb); below 2p after one subtraction.
        Fe(sub_if_not_below(sum, &P2))
    }

    pub fn sub(&self, b: &Fe) -> Fe {
        let (diff, negative) = sub_limbs(&self.0, &b.0);
        if !negative {
            return Fe(diff);
        }
        let mut out = [0u32; 10];
        let mut carry = 0i64;
        for ((o, &x), &y) in out.iter_mut().zip(&diff).zip(&P2) {
            let v = i64::from(x) + i64::from(y) + carry;
            *o = (v & MASK) as u32;
            carry = v >> BITS;
        }
        Fe(out)
    }

    /// `self^(p-2)`: the inverse (zero for zero), by Fermat; for building tables, not per
    /// verification.
    pub fn invert(&self) -> Fe {
        // p - 2, big-endian.
        const E: [u8; 32] = [
            0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd,
        ];
        let mut acc = Fe::ONE;
        for byte in E {
            for k in (0..8).rev() {
                acc = acc.square();
                if byte >> k & 1 == 1 {
                    acc = acc.mul(self);
                }
            }
        }
        acc
    }

    pub fn neg(&self) -> Fe {
        Fe::ZERO.sub(self)
    }

    pub fn double(&self) -> Fe {
        self.add(self)
    }

    /// Whether the element is zero (0 or p).
    pub fn is_zero(&self) -> bool {
        self.canonical() == [0; 10]
    }

    /// Whether both are the same element.
    pub fn equals(&self, other: &Fe) -> bool {
        self.canonical() == other.canonical()
    }

    /// The representative below p.
    fn canonical(&self) -> [u32; 10] {
        sub_if_not_below(self.0, &P)
    }
}

/// `a - b` on normalised limbs, and whether it went below zero (then `a - b + 2^260`).
fn sub_limbs(a: &[u32; 10], b: &[u32; 10]) -> ([u32; 10], bool) {
    let mut out = [0u32; 10];
    let mut carry = 0i64;
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        let v = i64::from(x) - i64::from(y) + carry;
        *o = (v & MASK) as u32;
        carry = v >> BITS;
    }
    (out, carry < 0)
}

/// `a - m` when `a ≥ m`, else `a`.
fn sub_if_not_below(a: [u32; 10], m: &[u32; 10]) -> [u32; 10] {
    match sub_limbs(&a, m) {
        (d, false) => d,
        (_, true) => a,
    }
}

/// Montgomery reduction of a 20-column product: `t / R mod p`, below 2p for `t < 16p²`.
/// Column `i` gets `m = t_i mod 2^26` times p (-p⁻¹ ≡ 1 mod 2^26): `-m` clears it (its carry goes
/// to column `i+1`), and `m·(2^96 + 2^192 - 2^224 + 2^256)` lands in columns `i+3`, `i+7`,
/// `i+8`, `i+9` shifted by 18, 10, 16 and 22 bits.
fn reduce(mut t: [i64; 20]) -> Fe {
    for i in 0..10 {
        if let Some([t0, t1, _, t3, _, _, _, t7, t8, t9]) = t.get_mut(i..i + 10) {
            let m = *t0 & MASK;
            *t1 += (*t0 - m) >> BITS;
            *t3 += m << 18;
            *t7 += m << 10;
            *t8 -= m << 16;
            *t9 += m << 22;
        }
    }
    let mut out = [0u32; 10];
    let mut carry = 0i64;
    for (o, &x) in out.iter_mut().zip(t.iter().skip(10)) {
        let v = x + carry;
        *o = (v & MASK) as u32;
        carry = v >> BITS;
    }
    Fe(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::BigUint;

    fn p() -> BigUint {
        BigUint::parse_bytes(
            b"ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
            16,
        )
        .unwrap()
    }

    fn big(fe: Fe) -> BigUint {
        BigUint::from_bytes_be(&fe.to_be())
    }

    fn fe(x: &BigUint) -> Fe {
        let mut be = [0u8; 32];
        let bytes = x.to_bytes_be();
        be[32 - bytes.len()..].copy_from_slice(&bytes);
        Fe::from_be(&be)
    }

    fn limbs_of(x: &BigUint) -> [u32; 10] {
        let mut out = [0u32; 10];
        let mask = BigUint::from((1u32 << 26) - 1);
        for (i, l) in out.iter_mut().enumerate() {
            let v = (x >> (26 * i)) & &mask;
            *l = v
                .to_bytes_le()
                .iter()
                .rev()
                .fold(0, |acc, b| acc << 8 | u32::from(*b));
        }
        out
    }

    #[test]
    fn constants_are_what_they_say() {
        let p = p();
        assert_eq!(limbs_of(&p), P);
        assert_eq!(limbs_of(&(&p * 2u32)), P2);
        let r = BigUint::from(1u8) << 260;
        assert_eq!(limbs_of(&((&r * &r) % &p)), RR);
        assert_eq!(limbs_of(&(&r % &p)), R1);
        assert_eq!(big(Fe::ONE), BigUint::from(1u8));
    }

    /// Random elements and the edges (0, 1, 2, p - 1, p - 2, 2^255, 2^256 - 1 reduced, values
    /// with all-ones limbs), through every operation, against num-bigint.
    #[test]
    fn operations_match_num_bigint() {
        let p = p();
        let one = BigUint::from(1u8);
        let mut values = vec![
            BigUint::from(0u8),
            one.clone(),
            BigUint::from(2u8),
            &p - &one,
            &p - 2u32,
            one.clone() << 255,
            (one.clone() << 256) - &one - &p,
            (one.clone() << 234) - &one,
            (one.clone() << 224) + (one.clone() << 96),
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..40 {
            let mut be = [0u8; 32];
            for b in be.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            values.push(BigUint::from_bytes_be(&be) % &p);
        }
        for a in &values {
            let fa = fe(a);
            assert_eq!(&big(fa), a);
            assert_eq!(big(fa.square()), (a * a) % &p, "{a:x}²");
            assert_eq!(big(fa.neg()), (&p - a) % &p, "-{a:x}");
            assert_eq!(fa.is_zero(), a == &BigUint::from(0u8));
            if !fa.is_zero() {
                assert!(fa.invert().mul(&fa).equals(&Fe::ONE), "1/{a:x}");
            }
            for b in &values {
                let fb = fe(b);
                assert_eq!(big(fa.mul(&fb)), (a * b) % &p, "{a:x} × {b:x}");
                assert_eq!(big(fa.add(&fb)), (a + b) % &p, "{a:x} + {b:x}");
                assert_eq!(big(fa.sub(&fb)), (a + &p - b) % &p, "{a:x} - {b:x}");
                assert_eq!(fa.equals(&fb), a == b);
                // Chains keep the bounds: sums and differences fed back into products.
                let s = fa.add(&fb).add(&fa.sub(&fb));
                assert_eq!(big(s.mul(&s)), ((a * 2u32) * (a * 2u32)) % &p);
            }
        }
    }
}
