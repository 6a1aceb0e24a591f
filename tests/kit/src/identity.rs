//! The demo issuer of `make run`: a P-256 key generated at first run (never committed), its
//! JWKS, and tokens signed with it. The key is kept as a private JWK (mode 0600) in the run's
//! directory, so the JWKS stays the same across runs and a printed token stays valid until it
//! expires.
use std::io::{Read, Write};
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{json, Value};

/// The `kid` of the demo key.
pub const KID: &str = "demo-1";

/// The demo issuer's key: loaded from `<dir>/key.jwk`, or generated and written there.
pub fn load_or_create(dir: &Path) -> Result<SigningKey, String> {
    let path = dir.join("key.jwk");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let jwk: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let d = jwk
            .get("d")
            .and_then(Value::as_str)
            .and_then(|d| URL_SAFE_NO_PAD.decode(d).ok())
            .ok_or_else(|| format!("{}: no private key `d`", path.display()))?;
        return SigningKey::from_slice(&d).map_err(|e| format!("{}: {e}", path.display()));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let key = generate()?;
    let mut private = public_jwk(&key);
    if let Some(map) = private.as_object_mut() {
        map.insert("d".into(), json!(URL_SAFE_NO_PAD.encode(key.to_bytes())));
    }
    write_private(&path, &private.to_string())?;
    Ok(key)
}

/// A new key from the operating system's randomness.
pub fn generate() -> Result<SigningKey, String> {
    let mut f = std::fs::File::open("/dev/urandom").map_err(|e| format!("/dev/urandom: {e}"))?;
    // A 32-byte string is a valid scalar except with probability ~2^-32: try a few.
    for _ in 0..8 {
        let mut bytes = [0u8; 32];
        f.read_exact(&mut bytes)
            .map_err(|e| format!("/dev/urandom: {e}"))?;
        if let Ok(key) = SigningKey::from_slice(&bytes) {
            return Ok(key);
        }
    }
    Err("no valid P-256 scalar from /dev/urandom".into())
}

/// The public JWK of `key` (`kty` EC, `crv` P-256, `alg` ES256, `kid` [`KID`]).
pub fn public_jwk(key: &SigningKey) -> Value {
    let point = key.verifying_key().to_encoded_point(false);
    let coord =
        |c: Option<&p256::FieldBytes>| c.map(|b| URL_SAFE_NO_PAD.encode(b)).unwrap_or_default();
    json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": KID,
        "x": coord(point.x()), "y": coord(point.y()),
    })
}

/// The JWKS document that publishes `key`.
pub fn jwks(key: &SigningKey) -> String {
    json!({"keys": [public_jwk(key)]}).to_string()
}

/// An ES256 token of `claims` signed with `key`.
pub fn sign(key: &SigningKey, claims: &Value) -> String {
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": KID});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig: Signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_kept_and_tokens_verify_with_its_jwks() {
        let dir = std::env::temp_dir().join(format!("meshgate-identity-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = load_or_create(&dir).unwrap();
        let b = load_or_create(&dir).unwrap();
        assert_eq!(a.to_bytes(), b.to_bytes(), "the key is generated once");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.join("key.jwk"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        assert_ne!(generate().unwrap().to_bytes(), a.to_bytes());
        let token = sign(&a, &json!({"sub": "demo"}));
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
        use p256::ecdsa::signature::Verifier;
        a.verifying_key()
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .unwrap();
        let jwks: Value = serde_json::from_str(&jwks(&a)).unwrap();
        assert!(
            jwks["keys"][0].get("d").is_none(),
            "the JWKS is public only"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
