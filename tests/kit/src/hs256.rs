//! HS256 tokens for end-to-end suites that need a valid token without testing the verifier
//! (the auth suites sign every algorithm with jwt-compact): base64url without padding, HMAC-SHA-256
//! (RFC 2104) over `sha2`, and the compact token.
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Base64url without padding (RFC 7515 §2).
pub fn b64url(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            let sextet = (n >> (18 - 6 * i)) & 63;
            out.push(char::from(
                ABC.get(sextet as usize).copied().unwrap_or(b'A'),
            ));
        }
    }
    out
}

/// HMAC-SHA-256 (RFC 2104); keys longer than the block are hashed first.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    let digest;
    let key = if key.len() > block.len() {
        digest = Sha256::digest(key);
        &digest[..]
    } else {
        key
    };
    block.iter_mut().zip(key).for_each(|(b, k)| *b = *k);
    let pad = |byte: u8| block.iter().map(|x| x ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// A compact HS256 token of `claims` under `key`, with `kid` in its header.
pub fn token(key: &[u8], kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": kid});
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let signature = hmac_sha256(key, signing_input.as_bytes());
    format!("{signing_input}.{}", b64url(&signature))
}

/// The JWK of `key` (`kty: oct`, HS256) under `kid`.
pub fn jwk(key: &[u8], kid: &str) -> Value {
    json!({"kty": "oct", "kid": kid, "alg": "HS256", "k": b64url(key)})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_and_hmac_match_their_rfc_vectors() {
        // RFC 4648 §10 (base64url alphabet, no padding).
        assert_eq!(b64url(b""), "");
        assert_eq!(b64url(b"f"), "Zg");
        assert_eq!(b64url(b"fo"), "Zm8");
        assert_eq!(b64url(b"foob"), "Zm9vYg");
        assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
        // RFC 4231 test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
