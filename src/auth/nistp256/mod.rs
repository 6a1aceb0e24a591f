//! P-256 ECDSA verification (`ES256`) on meshgate's own field arithmetic (`field`: 26-bit limbs,
//! which wasm multiplies natively) and fixed-base tables in affine coordinates.
//!
//! Verification computes `u1·G + u2·Q`. Each point has a table of `d·2^(5i)·P` for every 5-bit
//! window `i` (52 windows) and digit `d` in 1..=16; a scalar recoded into signed 5-bit digits
//! (-15..=16) is then one mixed Jacobian-affine addition per non-zero digit (a negative digit
//! adds the negated point) and no doubling: about 100 additions of 11 field products for both
//! scalars. The sum stays in Jacobian coordinates: `x(R) mod n == r` is checked as
//! `X == r·Z²` (and `(r + n)·Z²` when `r + n < p`), without an inversion.
//!
//! The tables are built with the `p256` crate's own (complete) point arithmetic and converted
//! once; scalars (`u1 = z/s`, `u2 = r/s`) use its scalar field. Everything involved is public
//! (key, signature, message): nothing here runs in constant time, and the table lookups depend
//! on the scalars. The tests check every result against the `p256` crate.

mod field;

use std::sync::OnceLock;

use p256::elliptic_curve::ops::{Invert, Reduce};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::elliptic_curve::PrimeField;
use p256::{Scalar, U256};

use field::Fe;

/// Bits per window; a table row holds digits 1..=2^(W-1).
const W: usize = 5;
const ROW: usize = 1 << (W - 1);
/// Windows of a 256-bit scalar in signed digits (the recoding can carry into bit 256).
const WINDOWS: usize = 257usize.div_ceil(W);

/// The group order n, big-endian.
const ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
/// p - n, big-endian: `r + n < p` exactly when `r < p - n`.
const P_MINUS_N: [u8; 32] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x43, 0x19, 0x05, 0x53, 0x58, 0xe8, 0x61, 0x7b,
    0x0c, 0x46, 0x35, 0x3d, 0x03, 0x9c, 0xda, 0xae,
];

/// An affine point (never the identity).
#[derive(Clone, Copy)]
struct Affine {
    x: Fe,
    y: Fe,
}

/// A point in Jacobian coordinates (x = X/Z², y = Y/Z³), or the identity.
#[derive(Clone)]
struct Jacobian {
    x: Fe,
    y: Fe,
    z: Fe,
    identity: bool,
}

impl Jacobian {
    const IDENTITY: Jacobian = Jacobian {
        x: Fe::ONE,
        y: Fe::ONE,
        z: Fe::ZERO,
        identity: true,
    };

    /// `self + q` (madd-2007-bl shape: 8 products, 3 squares), with the cases the formula
    /// does not cover (`self = ±q`, the identity) handled apart.
    fn add_affine(&mut self, q: &Affine) {
        if self.identity {
            *self = Jacobian {
                x: q.x,
                y: q.y,
                z: Fe::ONE,
                identity: false,
            };
            return;
        }
        let z1z1 = self.z.square();
        let u2 = q.x.mul(&z1z1);
        let s2 = q.y.mul(&self.z.mul(&z1z1));
        let h = u2.sub(&self.x);
        let r = s2.sub(&self.y);
        if h.is_zero() {
            if r.is_zero() {
                self.double();
            } else {
                *self = Jacobian::IDENTITY;
            }
            return;
        }
        let hh = h.square();
        let hhh = h.mul(&hh);
        let v = self.x.mul(&hh);
        let x3 = r.square().sub(&hhh).sub(&v.double());
        let y3 = r.mul(&v.sub(&x3)).sub(&self.y.mul(&hhh));
        self.z = self.z.mul(&h);
        self.x = x3;
        self.y = y3;
    }

    /// `2·self` for a = -3 (dbl-2001-b). Reached only when a sum meets its own next term.
    fn double(&mut self) {
        let delta = self.z.square();
        let gamma = self.y.square();
        let beta = self.x.mul(&gamma);
        let t = self.x.sub(&delta).mul(&self.x.add(&delta));
        let alpha = t.double().add(&t);
        let beta4 = beta.double().double();
        let x3 = alpha.square().sub(&beta4.double());
        let z3 = self.y.add(&self.z).square().sub(&gamma).sub(&delta);
        let gamma2_8 = gamma.square().double().double().double();
        let y3 = alpha.mul(&beta4.sub(&x3)).sub(&gamma2_8);
        self.x = x3;
        self.y = y3;
        self.z = z3;
    }
}

/// Multiples of one point: `rows[i][d - 1] = d·2^(W·i)·P`, affine.
pub struct Table {
    rows: Vec<[Affine; ROW]>,
}

impl Table {
    /// The table of an affine point (not the identity): each row's 16 multiples summed in
    /// Jacobian coordinates, then made affine with one inversion per row (Montgomery's trick).
    fn new(point: Affine) -> Table {
        let mut base = point;
        let rows = (0..WINDOWS)
            .map(|_| {
                let mut sum = Jacobian::IDENTITY;
                // d·base for d in 1..=2^(W-1), then (the extra entry) the next row's base:
                // 2^W·base = 2·(2^(W-1)·base).
                let mut row: [Jacobian; ROW + 1] = std::array::from_fn(|d| {
                    if d < ROW {
                        sum.add_affine(&base);
                    }
                    sum.clone()
                });
                if let Some(last) = row.last_mut() {
                    last.double();
                }
                let affine = to_affine(&row);
                base = affine.last().copied().unwrap_or(base);
                std::array::from_fn(|d| affine.get(d).copied().unwrap_or(base))
            })
            .collect();
        Table { rows }
    }

    /// Bytes of a table (the points; the row vector's own header aside).
    pub fn bytes() -> usize {
        WINDOWS * std::mem::size_of::<[Affine; ROW]>()
    }

    /// `acc += scalar·P` (scalar given big-endian), in variable time.
    fn mul_add(&self, acc: &mut Jacobian, scalar: &[u8; 32]) {
        for (row, digit) in self.rows.iter().zip(signed_digits(scalar)) {
            let Some(point) = row.get(usize::from(digit.unsigned_abs()).wrapping_sub(1)) else {
                continue; // digit 0
            };
            if digit > 0 {
                acc.add_affine(point);
            } else {
                acc.add_affine(&Affine {
                    x: point.x,
                    y: point.y.neg(),
                });
            }
        }
    }
}

/// The affine forms of Jacobian points (none the identity), with one inversion.
fn to_affine<const N: usize>(points: &[Jacobian; N]) -> [Affine; N] {
    // prefix[i] = z0·…·z(i-1); then walk back from the inverse of the whole product.
    let mut prefix = [Fe::ONE; N];
    let mut product = Fe::ONE;
    for (pre, p) in prefix.iter_mut().zip(points) {
        *pre = product;
        product = product.mul(&p.z);
    }
    let mut inverse = product.invert();
    let mut out = [Affine {
        x: Fe::ZERO,
        y: Fe::ZERO,
    }; N];
    for ((o, p), pre) in out.iter_mut().zip(points).zip(&prefix).rev() {
        let zinv = inverse.mul(pre);
        inverse = inverse.mul(&p.z);
        let zinv2 = zinv.square();
        *o = Affine {
            x: p.x.mul(&zinv2),
            y: p.y.mul(&zinv2.mul(&zinv)),
        };
    }
    out
}

/// The coordinates of a `p256` affine point (not the identity).
fn affine(point: &p256::AffinePoint) -> Affine {
    let encoded = point.to_encoded_point(false);
    let coordinate = |c: Option<&p256::FieldBytes>| {
        let mut be = [0u8; 32];
        if let Some(c) = c {
            be.copy_from_slice(c);
        }
        Fe::from_be(&be)
    };
    Affine {
        x: coordinate(encoded.x()),
        y: coordinate(encoded.y()),
    }
}

/// The scalar (big-endian) in `WINDOWS` signed digits of `W` bits, least significant first:
/// each in -(2^(W-1) - 1)..=2^(W-1), summing (× 2^(W·i)) to the scalar.
fn signed_digits(scalar: &[u8; 32]) -> [i8; WINDOWS] {
    let mut digits = [0i8; WINDOWS];
    let bit = |i: usize| -> u32 {
        scalar
            .get(31usize.wrapping_sub(i / 8))
            .map_or(0, |b| u32::from(b >> (i % 8) & 1))
    };
    let mut carry = 0;
    for (i, d) in digits.iter_mut().enumerate() {
        let window = (0..W).fold(0, |v, k| v | bit(W * i + k) << k) + carry;
        if window > ROW as u32 {
            *d = window as i8 - (1 << W) as i8;
            carry = 1;
        } else {
            *d = window as i8;
            carry = 0;
        }
    }
    digits
}

/// The generator's table (built once per VM, at the first P-256 key).
fn generator() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| Table::new(affine(&p256::AffinePoint::GENERATOR)))
}

/// A P-256 public key with its table.
pub struct P256Table(Table);

impl P256Table {
    /// The key's table; the generator's is built here too, so no request pays for it.
    pub fn new(key: &p256::ecdsa::VerifyingKey) -> P256Table {
        generator();
        P256Table(Table::new(affine(key.as_affine())))
    }

    /// Bytes of a key's table.
    pub fn table_bytes() -> usize {
        Table::bytes()
    }

    /// ECDSA verification of a SHA-256 digest (SEC 1 §4.1.4): `signature` is `r || s`.
    pub fn verify_digest(&self, digest: &[u8; 32], signature: &[u8]) -> bool {
        let Ok(sig) = p256::ecdsa::Signature::from_slice(signature) else {
            return false; // r or s zero, not below n, or not 64 bytes
        };
        let (r, s) = sig.split_scalars();
        let z = <Scalar as Reduce<U256>>::reduce_bytes(digest.into());
        let s_inv = *s.invert_vartime();
        let u1: [u8; 32] = (z * s_inv).to_repr().into();
        let u2: [u8; 32] = (*r * s_inv).to_repr().into();
        let mut sum = Jacobian::IDENTITY;
        generator().mul_add(&mut sum, &u1);
        self.0.mul_add(&mut sum, &u2);
        if sum.identity {
            return false;
        }
        let r_bytes: [u8; 32] = r.to_repr().into();
        let zz = sum.z.square();
        let r_fe = Fe::from_be(&r_bytes);
        if sum.x.equals(&r_fe.mul(&zz)) {
            return true;
        }
        // x(R) in [n, p) reduces to r = x - n: x = r + n, possible only when r + n < p.
        r_bytes < P_MINUS_N && sum.x.equals(&r_fe.add(&Fe::from_be(&ORDER)).mul(&zz))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use p256::ecdsa::signature::Signer;
    use p256::elliptic_curve::group::Group;
    use p256::elliptic_curve::point::AffineCoordinates;
    use p256::ProjectivePoint;
    use rand_core::{OsRng, RngCore};
    use sha2::{Digest, Sha256};

    fn x_of(p: &ProjectivePoint) -> [u8; 32] {
        p.to_affine().x().into()
    }

    fn jacobian_x(j: &Jacobian) -> [u8; 32] {
        let zinv = j.z.invert();
        j.x.mul(&zinv.square()).to_be()
    }

    fn scalar_bytes(k: &Scalar) -> [u8; 32] {
        k.to_repr().into()
    }

    #[test]
    fn signed_digits_sum_to_the_scalar() {
        let mut rng = OsRng;
        let mut cases = vec![[0u8; 32], [0xff; 32], ORDER, P_MINUS_N];
        for _ in 0..50 {
            let mut k = [0u8; 32];
            rng.fill_bytes(&mut k);
            cases.push(k);
        }
        for k in cases {
            let digits = signed_digits(&k);
            let mut sum = Scalar::ZERO;
            for d in digits.iter().rev() {
                assert!((-(ROW as i8) < *d) && (*d <= ROW as i8), "{d}");
                let magnitude = Scalar::from(u64::from(d.unsigned_abs()));
                sum = sum * Scalar::from(1u64 << W) + if *d < 0 { -magnitude } else { magnitude };
            }
            assert_eq!(sum, <Scalar as Reduce<U256>>::reduce_bytes(&k.into()));
        }
    }

    #[test]
    fn tables_multiply_like_the_curve() {
        let g = ProjectivePoint::generator();
        let mut scalars = vec![
            Scalar::ONE,
            -Scalar::ONE,
            Scalar::from(2u64),
            Scalar::from(17u64),
        ];
        for _ in 0..20 {
            scalars.push(*p256::NonZeroScalar::random(&mut OsRng));
        }
        let q = g * *p256::NonZeroScalar::random(&mut OsRng);
        let table = Table::new(affine(&q.to_affine()));
        for k in &scalars {
            let mut acc = Jacobian::IDENTITY;
            generator().mul_add(&mut acc, &scalar_bytes(k));
            assert_eq!(jacobian_x(&acc), x_of(&(g * k)));
            let mut acc = Jacobian::IDENTITY;
            table.mul_add(&mut acc, &scalar_bytes(k));
            assert_eq!(jacobian_x(&acc), x_of(&(q * k)));
        }
        let mut acc = Jacobian::IDENTITY;
        generator().mul_add(&mut acc, &[0; 32]);
        assert!(acc.identity);
    }

    #[test]
    fn sums_that_meet_a_point_again_double_or_vanish() {
        // u1·G + u2·Q with Q = G: the second sum meets the first's points (doubling), and
        // u2 = -u1 gives the identity.
        let g = ProjectivePoint::generator();
        let table = Table::new(affine(&g.to_affine()));
        for _ in 0..10 {
            let k = *p256::NonZeroScalar::random(&mut OsRng);
            let mut acc = Jacobian::IDENTITY;
            generator().mul_add(&mut acc, &scalar_bytes(&k));
            table.mul_add(&mut acc, &scalar_bytes(&k));
            assert_eq!(jacobian_x(&acc), x_of(&(g * (k + k))));
            let mut acc = Jacobian::IDENTITY;
            generator().mul_add(&mut acc, &scalar_bytes(&k));
            table.mul_add(&mut acc, &scalar_bytes(&-k));
            assert!(acc.identity);
        }
        // A single-digit doubling: 1·G + 1·G.
        let mut acc = Jacobian::IDENTITY;
        generator().mul_add(&mut acc, &scalar_bytes(&Scalar::ONE));
        table.mul_add(&mut acc, &scalar_bytes(&Scalar::ONE));
        assert_eq!(jacobian_x(&acc), x_of(&g.double()));
    }

    #[test]
    fn verification_agrees_with_p256() {
        for round in 0..40 {
            let sk = p256::ecdsa::SigningKey::random(&mut OsRng);
            let vk = *sk.verifying_key();
            let ours = P256Table::new(&vk);
            let msg = format!("header.payload{round}");
            let digest: [u8; 32] = Sha256::digest(msg.as_bytes()).into();
            let sig: p256::ecdsa::Signature = sk.sign(msg.as_bytes());
            let bytes = sig.to_bytes();
            assert!(ours.verify_digest(&digest, &bytes));
            let (r, s) = sig.split_scalars();
            let high = p256::ecdsa::Signature::from_scalars(*r, -*s).unwrap();
            assert!(ours.verify_digest(&digest, &high.to_bytes()));
            let mut other = digest;
            other[round % 32] ^= 1;
            assert!(!ours.verify_digest(&other, &bytes));
            for i in [0, 5, 31, 32, 50, 63] {
                let mut bad = bytes.to_vec();
                bad[i] ^= 1 << (round % 8);
                let theirs = p256::ecdsa::Signature::from_slice(&bad)
                    .is_ok_and(|s| vk.verify_prehash(&digest, &s).is_ok());
                assert_eq!(ours.verify_digest(&digest, &bad), theirs, "byte {i}");
            }
        }
    }

    #[test]
    fn edge_scalars_agree_with_p256() {
        // Digests that make u1 zero, small or n - 1; r = x(k·G) for small and large k.
        let sk = p256::ecdsa::SigningKey::random(&mut OsRng);
        let vk = *sk.verifying_key();
        let ours = P256Table::new(&vk);
        let g = ProjectivePoint::generator();
        for k in [1u64, 2, 3, 16, 17, 31, 32, 33] {
            for k in [Scalar::from(k), -Scalar::from(k)] {
                let r_bytes = x_of(&(g * k));
                let r = <Scalar as Reduce<U256>>::reduce_bytes(&r_bytes.into());
                for s in [Scalar::ONE, Scalar::from(2u64), -Scalar::ONE, r] {
                    for digest in [[0u8; 32], ORDER, [0xff; 32], r_bytes] {
                        let Some(sig) = p256::ecdsa::Signature::from_scalars(r, s).ok() else {
                            continue;
                        };
                        let theirs = vk.verify_prehash(&digest, &sig).is_ok();
                        assert_eq!(
                            ours.verify_digest(&digest, &sig.to_bytes()),
                            theirs,
                            "k {k:?} s {s:?}"
                        );
                    }
                }
            }
        }
        assert!(!ours.verify_digest(&[0; 32], &[0u8; 64]));
        assert!(!ours.verify_digest(&[0; 32], &[0xffu8; 64]));
        assert!(!ours.verify_digest(&[0; 32], &[1u8; 63]));
    }
}
