//! Issue 19, upstream health end to end: the clusters `meshgate envoy` renders get active gRPC
//! health checks (grpc.health.v1 `Check`, which the demo backend serves) and outlier
//! detection. A gRPC backend is healthy; an upstream that does not speak the health protocol
//! (the REST echo backend behind an HTTP/2 cluster) fails its checks.
//!
//! Needs `build/meshgate.wasm` and Envoy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use meshgate::cli::envoy::ClusterSpec;
use meshgate_kit::harness::{start_rest_backend, GatewayBuilder};
use meshgate_kit::tls::curl;

#[test]
fn grpc_backends_pass_health_checks_and_a_non_grpc_one_fails_them() {
    let rest = start_rest_backend("not-grpc").unwrap();
    let port = rest.addr.port();
    let gw = GatewayBuilder::demo()
        .envoy_options(move |o| {
            o.upstream_health = true;
            o.clusters.push(ClusterSpec {
                name: "not_grpc".into(),
                address: "127.0.0.1".into(),
                port,
                http2: true,
            });
        })
        .start()
        .unwrap();
    let success = gw
        .envoy
        .wait_for_stat(
            "cluster.payments.health_check.success",
            |v| v >= 1,
            Duration::from_secs(15),
        )
        .unwrap();
    assert!(success >= 1);
    assert_eq!(
        gw.envoy.stat("cluster.payments.membership_healthy"),
        Some(1)
    );
    // (No assertion on payments' failures: under load one check at Envoy's start can fail
    // before the first success; membership_healthy is what routing follows.)
    gw.envoy
        .wait_for_stat(
            "cluster.not_grpc.health_check.failure",
            |v| v >= 1,
            Duration::from_secs(15),
        )
        .unwrap();
    assert_eq!(
        gw.envoy.stat("cluster.not_grpc.membership_healthy"),
        Some(0)
    );
    // Requests still flow to the healthy upstream.
    let r = curl(&[], &gw.url("/v1/payments/pay_001")).unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    // Outlier detection is on (Envoy counts its ejections per cluster).
    assert!(gw
        .envoy
        .stat("cluster.payments.outlier_detection.ejections_active")
        .is_some());
}
