//! `ES384` (ECDSA on P-384 with SHA-384) for jwt-compact, which ships ES256 but not ES384.
//!
//! Implemented through jwt-compact's [`Algorithm`] trait with the RustCrypto `p384` crate of the
//! same generation as jwt-compact's `p256` (ecdsa 0.16), so ES384 keys and tokens go through
//! exactly the same code path as the algorithms jwt-compact provides.

use std::borrow::Cow;
use std::num::NonZeroUsize;

use jwt_compact::{Algorithm, AlgorithmSignature};
use p384::ecdsa::signature::{DigestSigner, DigestVerifier};
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha384};

/// Length of a P-384 coordinate and of each of `r` and `s` in a JWS signature.
pub const COORDINATE_LEN: usize = 48;

/// `ES384`: ECDSA over secp384r1 with SHA-384 (RFC 7518 §3.4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Es384;

/// A JWS ECDSA signature: `r || s`, 96 bytes (not DER). A newtype because both the trait and
/// `p384`'s signature type are foreign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Es384Signature(pub Signature);

impl AlgorithmSignature for Es384Signature {
    const LENGTH: Option<NonZeroUsize> = NonZeroUsize::new(2 * COORDINATE_LEN);

    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        Signature::try_from(slice)
            .map(Es384Signature)
            .map_err(|e| anyhow::anyhow!(e))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.to_bytes().to_vec())
    }
}

impl Algorithm for Es384 {
    type SigningKey = SigningKey;
    type VerifyingKey = VerifyingKey;
    type Signature = Es384Signature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("ES384")
    }

    fn sign(&self, signing_key: &SigningKey, message: &[u8]) -> Es384Signature {
        Es384Signature(signing_key.sign_digest(Sha384::new_with_prefix(message)))
    }

    fn verify_signature(
        &self,
        signature: &Es384Signature,
        verifying_key: &VerifyingKey,
        message: &[u8],
    ) -> bool {
        verifying_key
            .verify_digest(Sha384::new_with_prefix(message), &signature.0)
            .is_ok()
    }
}

/// The verifying key from a JWK's `x` and `y` (each exactly 48 bytes); the point is checked to
/// be on the curve here, once, when the key set is loaded.
pub fn verifying_key_from_coordinates(x: &[u8], y: &[u8]) -> Result<VerifyingKey, String> {
    if x.len() != COORDINATE_LEN || y.len() != COORDINATE_LEN {
        return Err(format!(
            "P-384 coordinates must be {COORDINATE_LEN} bytes (x: {}, y: {})",
            x.len(),
            y.len()
        ));
    }
    let mut sec1 = Vec::with_capacity(1 + 2 * COORDINATE_LEN);
    sec1.push(4); // uncompressed point
    sec1.extend_from_slice(x);
    sec1.extend_from_slice(y);
    VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| "not a point on P-384".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_compact::{AlgorithmExt, Claims, Header, UntrustedToken};
    use rand_core::OsRng;

    #[test]
    fn es384_token_round_trips_through_jwt_compact() {
        let sk = SigningKey::random(&mut OsRng);
        let token = Es384
            .token(
                &Header::empty(),
                &Claims::new(serde_json::json!({"a": 1})),
                &sk,
            )
            .unwrap();
        let parsed = UntrustedToken::new(&token).unwrap();
        assert_eq!(parsed.algorithm(), "ES384");
        let vk = *sk.verifying_key();
        assert!(Es384
            .validator::<serde_json::Value>(&vk)
            .validate(&parsed)
            .is_ok());
        let other = *SigningKey::random(&mut OsRng).verifying_key();
        assert!(Es384
            .validator::<serde_json::Value>(&other)
            .validate(&parsed)
            .is_err());
    }

    #[test]
    fn coordinates_off_the_curve_are_refused() {
        let sk = SigningKey::random(&mut OsRng);
        let point = sk.verifying_key().to_encoded_point(false);
        let (x, y) = (point.x().unwrap().to_vec(), point.y().unwrap().to_vec());
        assert!(verifying_key_from_coordinates(&x, &y).is_ok());
        let mut bad_y = y.clone();
        bad_y[47] ^= 1;
        assert!(verifying_key_from_coordinates(&x, &bad_y).is_err());
        assert!(verifying_key_from_coordinates(&x[1..], &y).is_err());
    }
}
