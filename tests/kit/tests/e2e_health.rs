//! Issue 19, the gateway's health endpoint end to end: `GET /healthz` answered by meshgate in a
//! real Envoy; `?jwks=1` is `503` while a remote JWKS has not answered yet and `200` once its
//! first keys arrived; its answers are counted under `operation="_health"`, in no objective.
//!
//! Needs `build/meshgate.wasm` and Envoy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use meshgate::cli::envoy::types::Cluster;
use meshgate::cli::envoy::ClusterSpec;
use meshgate_kit::harness::GatewayBuilder;
use meshgate_kit::jwks::{JwksMode, JwksServer};
use meshgate_kit::tls::curl;
use serde_json::json;

/// An HTTP/1.1 cluster to the JWKS server.
fn cluster(name: &str, addr: std::net::SocketAddr) -> Cluster {
    Cluster::from(&ClusterSpec {
        name: name.into(),
        address: "127.0.0.1".into(),
        port: addr.port(),
        http2: false,
    })
}

fn gateway_with_jwks_at(server: &JwksServer, tag: &str) -> meshgate_kit::harness::Gateway {
    let addr = server.addr();
    let extra = json!({"auth": {"providers": [{
        "name": "main",
        "issuer": "https://idp.test/",
        "jwks": {"remote": {"uri": format!("http://{addr}/jwks.json"), "cluster": "jwks",
                 "timeout_ms": 500}},
    }]}});
    GatewayBuilder::demo_doc(tag, extra)
        .cluster(cluster("jwks", addr))
        .start()
        .unwrap()
}

#[test]
fn healthz_answers_and_waits_for_the_first_jwks_when_asked() {
    // A JWKS server that never answers: configured (200), not ready with keys (503).
    let hanging = JwksServer::start(&meshgate_fixtures::jwks::of(&[
        meshgate_fixtures::jwks::p256("k1"),
    ]))
    .unwrap();
    hanging.set_mode(JwksMode::Hang);
    let gw = gateway_with_jwks_at(&hanging, "health-hang");
    let r = curl(&[], &gw.url("/healthz")).unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json().unwrap(), json!({"status": "SERVING"}));
    let r = curl(&[], &gw.url("/healthz?jwks=1")).unwrap();
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.json().unwrap()["code"], 14, "{r:?}");
    // Counted apart, outside every objective: the request counter under `_health` (as Envoy's
    // /stats/prometheus names it with the rendered stats_tags), no SLO event anywhere.
    let deadline = Instant::now() + Duration::from_secs(5);
    let health_5xx = |text: &str| {
        text.lines().any(|l| {
            l.starts_with("meshgate_requests_total{")
                && l.contains(r#"operation="_health""#)
                && l.contains(r#"outcome="5xx""#)
                && l.ends_with(" 1")
        })
    };
    let mut text = gw.envoy.stats_prometheus().unwrap_or_default();
    while !health_5xx(&text) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        text = gw.envoy.stats_prometheus().unwrap_or_default();
    }
    assert!(health_5xx(&text), "{text}");
    let slo: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("meshgate_slo_") && !l.ends_with(" 0"))
        .collect();
    assert!(slo.is_empty(), "{slo:?}");
    drop(gw);
    // A JWKS server that answers: ready once the first fetch is in.
    let serving = JwksServer::start(&meshgate_fixtures::jwks::of(&[
        meshgate_fixtures::jwks::p256("k1"),
    ]))
    .unwrap();
    let gw = gateway_with_jwks_at(&serving, "health-serve");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut r = curl(&[], &gw.url("/healthz?jwks=1")).unwrap();
    while r.status != 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        r = curl(&[], &gw.url("/healthz?jwks=1")).unwrap();
    }
    assert_eq!(r.status, 200, "{r:?}");
}
