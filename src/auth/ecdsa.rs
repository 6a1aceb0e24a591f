//! ECDSA verification (`ES256` on P-256, `ES384` on P-384) with fixed-base tables: the
//! generator's per curve (built once per VM) and the public key's (built by `super::keys` after
//! the key's first verified token, within the VM's table budget).
//!
//! ES256 runs on `super::nistp256` (meshgate's own P-256 field on 26-bit limbs, affine tables,
//! signed 5-bit windows, no final inversion): the `p256` crate's field multiplies 64-bit words
//! into `u128`, which wasm32 emulates. ES384 stays on the generic [`Comb`] below over the p384
//! crate's arithmetic.
//!
//! Verification computes `u1·G + u2·Q`. ecdsa's `verify_prehashed` does it with a constant-time
//! 4-bit window over both points at once: 384 doublings for P-384, ~200 additions and a masked
//! scan of a 16-entry table per window. With `16^i·d·P` precomputed for every 4-bit window `i`
//! and digit `d`, the same sum is one addition per non-zero digit and no doubling: about a third
//! of the field multiplications. Everything involved is public (key, signature, message), so the
//! table lookups may depend on the scalars. The arithmetic is the curve crate's own (complete
//! projective formulas); only the order of operations changes, and the tests check every result
//! against the crate's verifier.

use std::sync::OnceLock;

use p256::elliptic_curve::group::Group;
use p256::elliptic_curve::ops::{Invert, Reduce};
use p256::elliptic_curve::point::AffineCoordinates;
use p256::elliptic_curve::{CurveArithmetic, FieldBytes, NonZeroScalar, PrimeField};
use p384::NistP384;
use sha2::{Digest, Sha256, Sha384};

use super::nistp256::P256Table;

/// Multiples of one point: `rows[i][d - 1] = d·16^i·P` for each 4-bit window `i` of a scalar.
pub struct Comb<C: CurveArithmetic> {
    rows: Vec<[C::ProjectivePoint; 15]>,
}

impl<C: CurveArithmetic> Comb<C> {
    fn new(point: C::ProjectivePoint) -> Comb<C> {
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
            base = next; // 16·base
        }
        Comb { rows }
    }

    /// Bytes of the table (the points; the row vector's own header aside).
    fn bytes() -> usize {
        FieldBytes::<C>::default().len() * 2 * 15 * std::mem::size_of::<C::ProjectivePoint>()
    }

    /// `scalar·P`, in variable time.
    fn mul(&self, scalar: &C::Scalar) -> C::ProjectivePoint {
        let repr = scalar.to_repr(); // big-endian
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

/// ECDSA verification of a prehashed message (SEC 1 §4.1.4, as ecdsa's `verify_prehashed`):
/// `r == x(u1·G + u2·Q) mod n` with `u1 = z/s`, `u2 = r/s`.
fn verify_prehashed<C: CurveArithmetic>(
    generator: &Comb<C>,
    key: &Comb<C>,
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

fn p384_generator() -> &'static Comb<NistP384> {
    static TABLE: OnceLock<Comb<NistP384>> = OnceLock::new();
    TABLE.get_or_init(|| Comb::new(p384::ProjectivePoint::generator()))
}

/// A P-256 public key with its table (`super::nistp256`: affine, signed 5-bit windows, ~65 KB;
/// meshgate's own field arithmetic on 26-bit limbs, which wasm multiplies natively).
pub struct P256Key(P256Table);

impl P256Key {
    /// The generator's table is built here too, so no request pays for it.
    pub fn new(key: &p256::ecdsa::VerifyingKey) -> P256Key {
        P256Key(P256Table::new(key))
    }

    /// Bytes of a key's table (66,560: 832 affine points of 80 bytes).
    pub fn table_bytes() -> usize {
        P256Table::table_bytes()
    }

    /// `ES256`: `signature` is `r || s` (64 bytes) over SHA-256 of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.0
            .verify_digest(&Sha256::digest(message).into(), signature)
    }
}

/// A P-384 public key with its table (~200 KB).
pub struct P384Key(Comb<NistP384>);

impl P384Key {
    pub fn new(key: &p384::ecdsa::VerifyingKey) -> P384Key {
        p384_generator();
        P384Key(Comb::new((*key.as_affine()).into()))
    }

    /// Bytes of a key's table (207,360 with 144-byte projective points).
    pub fn table_bytes() -> usize {
        Comb::<NistP384>::bytes()
    }

    /// `ES384`: `signature` is `r || s` (96 bytes) over SHA-384 of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = p384::ecdsa::Signature::from_slice(signature) else {
            return false;
        };
        let (r, s) = sig.split_scalars();
        verify_prehashed(p384_generator(), &self.0, &Sha384::digest(message), r, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::{Signer, Verifier};
    use rand_core::OsRng;

    fn flip(sig: &[u8], i: usize) -> Vec<u8> {
        let mut v = sig.to_vec();
        v[i] ^= 0x10;
        v
    }

    #[test]
    fn tables_multiply_like_the_curve() {
        let g = p256::ProjectivePoint::generator();
        let comb = Comb::<p256::NistP256>::new(g);
        for _ in 0..20 {
            let k = *p256::NonZeroScalar::random(&mut OsRng);
            assert_eq!(comb.mul(&k), g * k);
        }
        assert_eq!(
            comb.mul(&p256::Scalar::ZERO),
            p256::ProjectivePoint::identity()
        );
        assert_eq!(comb.mul(&-p256::Scalar::ONE), -g);
    }

    #[test]
    fn es256_agrees_with_p256() {
        for round in 0..30 {
            let sk = p256::ecdsa::SigningKey::random(&mut OsRng);
            let vk = *sk.verifying_key();
            let ours = P256Key::new(&vk);
            let msg = format!("header.payload{round}");
            let sig: p256::ecdsa::Signature = sk.sign(msg.as_bytes());
            let bytes = sig.to_bytes();
            assert!(ours.verify(msg.as_bytes(), &bytes));
            assert!(!ours.verify(b"header.payloaD", &bytes));
            for i in [0, 31, 32, 63] {
                let bad = flip(&bytes, i);
                let theirs = p256::ecdsa::Signature::from_slice(&bad)
                    .is_ok_and(|s| vk.verify(msg.as_bytes(), &s).is_ok());
                assert_eq!(ours.verify(msg.as_bytes(), &bad), theirs, "byte {i}");
                assert!(!theirs);
            }
            // (r, n - s) is valid too (ECDSA is malleable; neither verifier refuses high s).
            let (r, s) = sig.split_scalars();
            let high = p256::ecdsa::Signature::from_scalars(*r, -*s).unwrap();
            assert!(vk.verify(msg.as_bytes(), &high).is_ok());
            assert!(ours.verify(msg.as_bytes(), &high.to_bytes()));
            let other = P256Key::new(p256::ecdsa::SigningKey::random(&mut OsRng).verifying_key());
            assert!(!other.verify(msg.as_bytes(), &bytes));
        }
    }

    #[test]
    fn es384_agrees_with_p384() {
        for round in 0..10 {
            let sk = p384::ecdsa::SigningKey::random(&mut OsRng);
            let vk = *sk.verifying_key();
            let ours = P384Key::new(&vk);
            let msg = format!("m{round}");
            let sig: p384::ecdsa::Signature = sk.sign(msg.as_bytes());
            let bytes = sig.to_bytes();
            assert!(ours.verify(msg.as_bytes(), &bytes));
            assert!(!ours.verify(b"other", &bytes));
            for i in [0, 47, 48, 95] {
                assert!(!ours.verify(msg.as_bytes(), &flip(&bytes, i)), "byte {i}");
            }
        }
    }

    #[test]
    fn zero_and_out_of_range_scalars_are_refused() {
        let sk = p256::ecdsa::SigningKey::random(&mut OsRng);
        let ours = P256Key::new(sk.verifying_key());
        assert!(!ours.verify(b"m", &[0u8; 64]));
        assert!(!ours.verify(b"m", &[0xffu8; 64]));
        assert!(!ours.verify(b"m", &[1u8; 63]));
        assert!(!ours.verify(b"m", &[]));
    }
}
