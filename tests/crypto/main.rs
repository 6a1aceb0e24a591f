//! The signature verifiers the module ships, proved on vectors: Wycheproof's RSA PKCS#1 v1.5,
//! RSA-PSS, ECDSA (P1363, JWS's `r || s`) and Ed25519 sets (`wycheproof.rs`), and hand-crafted
//! near-miss RSA encodings signed with a test key (`crafted.rs`).
//!
//! Everything goes through `meshgate::auth::crypto_probe`: the key constructors the JWKS parser
//! calls and the request path's `signature::verify`. The same binary runs on the host and,
//! through `tests/tools/crypto-wasm.sh`, as wasm32-wasip1 in Node's V8, the engine Envoy runs the
//! module in (32-bit RSA limbs there, 64-bit on the host; P-256 on meshgate's own 26-bit field
//! on both; P-384 on the p384 crate's). The RSA limb width it ran on is printed with the counts.
//! `timing.rs` (ignored by default) prints how long RS256 and ES256 verifications take.
//!
//! Counts go to the process's stderr handle directly (not `eprintln!`, which the test harness
//! captures), so `cargo test` shows them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod crafted;
// The fuzz target's keys (and, on the host, its seeds); the differential itself is unused here.
#[path = "../fuzz/src/crypto_diff.rs"]
#[allow(dead_code)]
mod crypto_diff;
#[allow(dead_code)]
mod previous;
#[cfg(not(target_arch = "wasm32"))]
mod seeds;
mod timing;
mod wycheproof;

use std::io::Write;

/// One line on the real stderr, past the harness's capture.
pub fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "crypto: {line}");
}
