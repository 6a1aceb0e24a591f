//! Shared helpers of the auth end-to-end tests (`e2e_auth*.rs`).
//!
//! Keys and token signing are the shared fixtures of `meshgate-fixtures` (tests/fixtures:
//! fixed TEST-ONLY keys): RSA 2048 (`kid` `rsa`), P-256 (`p256`), P-384 (`p384`), Ed25519
//! (`ed`) and a 64-byte HMAC secret (`hmac`), plus a second P-256 key (`other`) for the second
//! provider and one (`rotated`) that only a rotated JWKS publishes. Tokens are signed by hand
//! from header and claims JSON so that hostile shapes can be built. The baseline claims
//! ([`claims`]) make a valid token of provider `main`: `iss` [`ISSUER`], `aud` `api`, `sub`
//! `user-1`, issued 10 s ago, expiring in 300 s, with nested and array claims for
//! `claim_to_headers` (`meshgate_fixtures::claims::with_forwarded`).
// Each `e2e_auth*` binary uses a different part of this module (and of its re-exports).
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use meshgate::cli::envoy::types::Cluster;
use meshgate::cli::envoy::ClusterSpec;
pub use meshgate_fixtures::b64;
pub use meshgate_fixtures::claims::now_secs;
pub use meshgate_fixtures::jwks::{ed as ed_jwk, hmac as hmac_jwk, other as other_jwk};
pub use meshgate_fixtures::jwks::{main as main_jwks, rotated as rotated_jwk};
pub use meshgate_fixtures::jwks::{p256 as p256_jwk, p384 as p384_jwk, rsa as rsa_jwk};
pub use meshgate_fixtures::keys::keys;
pub use meshgate_fixtures::token::{other as other_token, rotated as rotated_token};
pub use meshgate_fixtures::token::{sign_raw, signer, signer_for, token, Signer, ALGS};
use meshgate_kit::harness::Gateway;

pub mod inline;
use serde_json::{json, Value};

pub const ISSUER: &str = "https://issuer.meshgate.test";
pub const OTHER_ISSUER: &str = "https://other.meshgate.test";

/// A valid token's claims for provider `main`, now.
pub fn claims() -> Value {
    meshgate_fixtures::claims::with_forwarded(ISSUER, now_secs())
}

/// An Envoy cluster (HTTP/1.1) that reaches `addr` (a JWKS server).
pub fn jwks_cluster(name: &str, addr: std::net::SocketAddr) -> Cluster {
    let mut cluster = Cluster::from(&ClusterSpec {
        name: name.into(),
        address: "127.0.0.1".into(),
        port: addr.port(),
        http2: false,
    });
    cluster.connect_timeout = "1s".into();
    cluster
}

/// Sum of the Prometheus samples of `metric` (a name suffix such as
/// `auth_decisions_total`) whose labels contain every `label="value"` of `labels`.
pub fn prom_sum(text: &str, metric: &str, labels: &[(&str, &str)]) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, rest) = l.split_once('{')?;
            if !name.ends_with(metric) {
                return None;
            }
            let (lab, value) = rest.rsplit_once('}')?;
            labels
                .iter()
                .all(|(k, v)| lab.contains(&format!("{k}=\"{v}\"")))
                .then(|| value.trim().parse::<f64>().ok())
                .flatten()
        })
        .map(|v| v as u64)
        .sum()
}

/// Waits (bounded) until `prom_sum` reaches `at_least`; returns the last value.
pub fn wait_prom(gw: &Gateway, metric: &str, labels: &[(&str, &str)], at_least: u64) -> u64 {
    let mut last = 0;
    for _ in 0..100 {
        let text = gw.envoy.stats_prometheus().unwrap_or_default();
        last = prom_sum(&text, metric, labels);
        if last >= at_least {
            return last;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    last
}

/// Access records, waiting (bounded) until there are at least `n`.
pub fn records(gw: &Gateway, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for _ in 0..100 {
        out = gw.access_records();
        if out.len() >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    out
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}
