//! The previous verifiers (before the 27-bit RSA limbs and meshgate's own P-256 field), kept
//! for `timing.rs` only: the same V8 run times old and new side by side. Copied from
//! src/auth/rsa.rs (RSA public operation on 32-bit limbs in wasm, CIOS/SOS with a carry per
//! product) and src/auth/ecdsa.rs (4-bit comb over the `p256` crate's projective points).

use p256::elliptic_curve::group::Group;
use p256::elliptic_curve::ops::{Invert, Reduce};
use p256::elliptic_curve::point::AffineCoordinates;
use p256::elliptic_curve::{CurveArithmetic, FieldBytes, NonZeroScalar, PrimeField};

#[cfg(target_pointer_width = "64")]
type Limb = u64;
#[cfg(target_pointer_width = "64")]
type Wide = u128;
#[cfg(not(target_pointer_width = "64"))]
type Limb = u32;
#[cfg(not(target_pointer_width = "64"))]
type Wide = u64;

const LIMB_BITS: u32 = Limb::BITS;
const LIMB_BYTES: usize = std::mem::size_of::<Limb>();

/// The previous RSA key: Montgomery constants on machine-word limbs.
pub struct OldRsa {
    n: Vec<Limb>,
    n0inv: Limb,
    rr: Vec<Limb>,
    e: u64,
    len: usize,
}

impl OldRsa {
    pub fn new(modulus: &[u8], e: u64) -> OldRsa {
        let leading = modulus.iter().take_while(|b| **b == 0).count();
        let modulus = &modulus[leading..];
        let n = limbs(modulus, modulus.len().div_ceil(LIMB_BYTES));
        let rr = r_squared(&n);
        OldRsa {
            n0inv: neg_inverse(n[0]),
            n,
            rr,
            e,
            len: modulus.len(),
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    /// `signature^e mod n`, big-endian.
    pub fn public_op(&self, signature: &[u8]) -> Option<Vec<u8>> {
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
        for i in (0..top).rev() {
            self.mont_sqr(&mut tmp, &acc, &mut square_scratch);
            std::mem::swap(&mut acc, &mut tmp);
            if self.e >> i & 1 == 1 {
                self.mont_mul(&mut tmp, &acc, &base, &mut scratch);
                std::mem::swap(&mut acc, &mut tmp);
            }
        }
        let mut one = vec![0; width];
        if let Some(low) = one.first_mut() {
            *low = 1;
        }
        self.mont_mul(&mut tmp, &acc, &one, &mut scratch);
        Some(to_bytes(&tmp, self.len()))
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

/// Multiples of one point: `rows[i][d - 1] = d·16^i·P` (the previous ES256 table).
pub struct OldComb<C: CurveArithmetic> {
    rows: Vec<[C::ProjectivePoint; 15]>,
}

impl<C: CurveArithmetic> OldComb<C> {
    pub fn new(point: C::ProjectivePoint) -> OldComb<C> {
        let windows = FieldBytes::<C>::default().len() * 2;
        let mut rows = Vec::with_capacity(windows);
        let mut base = point;
        for _ in 0..windows {
            let mut next = base;
            let row = std::array::from_fn(|_| {
                let current = next;
                next += base;
                current
            });
            rows.push(row);
            base = next;
        }
        OldComb { rows }
    }

    fn mul(&self, scalar: &C::Scalar) -> C::ProjectivePoint {
        let repr = scalar.to_repr();
        let mut acc = C::ProjectivePoint::identity();
        let digits = repr.iter().rev().flat_map(|b| [b & 0x0f, b >> 4]);
        for (row, digit) in self.rows.iter().zip(digits) {
            if let Some(p) = usize::from(digit).checked_sub(1).and_then(|i| row.get(i)) {
                acc += p;
            }
        }
        acc
    }
}

/// The previous ES256 verification: `r == x(u1·G + u2·Q) mod n` over two combs.
pub fn old_verify<C: CurveArithmetic>(
    generator: &OldComb<C>,
    key: &OldComb<C>,
    z: &FieldBytes<C>,
    r: NonZeroScalar<C>,
    s: NonZeroScalar<C>,
) -> bool {
    let z = <C::Scalar as Reduce<C::Uint>>::reduce_bytes(z);
    let s_inv = *s.invert_vartime();
    let u1 = z * s_inv;
    let u2 = *r * s_inv;
    let point = generator.mul(&u1) + key.mul(&u2);
    if bool::from(point.is_identity()) {
        return false;
    }
    let x = point.into().x();
    *r == <C::Scalar as Reduce<C::Uint>>::reduce_bytes(&x)
}
