//! Upstream health, rendered by `meshgate envoy` on every `--cluster` unless
//! `--no-upstream-health`: active gRPC health checks (grpc.health.v1 `Check` on the whole
//! server) on HTTP/2 clusters, and outlier detection on all of them. The defaults are below;
//! docs/operations.md, "Health".

use super::types::{Cluster, GrpcHealthCheck, HealthCheck, OutlierDetection};
use super::HTTP_PROTOCOL_OPTIONS;

/// A check's timeout, and the interval between checks (also without traffic).
pub const CHECK_TIMEOUT: &str = "1s";
pub const CHECK_INTERVAL: &str = "5s";
/// Failed checks before a host is unhealthy; passed checks before it is healthy again.
pub const UNHEALTHY_THRESHOLD: u32 = 3;
pub const HEALTHY_THRESHOLD: u32 = 1;
/// Consecutive 5xx (or gateway failures: 502/503/504, resets) before a host is ejected.
pub const CONSECUTIVE_5XX: u32 = 5;
pub const EJECTION_INTERVAL: &str = "10s";
pub const BASE_EJECTION_TIME: &str = "30s";
/// Envoy still ejects one host of a smaller cluster.
pub const MAX_EJECTION_PERCENT: u32 = 50;

/// Adds health checks (HTTP/2 clusters) and outlier detection to `clusters`.
pub(super) fn apply(clusters: &mut [Cluster]) {
    for c in clusters {
        if c.typed_extension_protocol_options
            .contains_key(HTTP_PROTOCOL_OPTIONS)
        {
            c.health_checks = vec![HealthCheck {
                timeout: CHECK_TIMEOUT.into(),
                interval: CHECK_INTERVAL.into(),
                no_traffic_interval: CHECK_INTERVAL.into(),
                unhealthy_threshold: UNHEALTHY_THRESHOLD,
                healthy_threshold: HEALTHY_THRESHOLD,
                grpc_health_check: GrpcHealthCheck {},
            }];
        }
        c.outlier_detection = Some(OutlierDetection {
            consecutive_5xx: CONSECUTIVE_5XX,
            consecutive_gateway_failure: CONSECUTIVE_5XX,
            interval: EJECTION_INTERVAL.into(),
            base_ejection_time: BASE_EJECTION_TIME.into(),
            max_ejection_percent: MAX_EJECTION_PERCENT,
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::super::ClusterSpec;
    use super::*;

    #[test]
    fn grpc_clusters_get_health_checks_and_every_cluster_outlier_detection() {
        let grpc = ClusterSpec {
            name: "payments".into(),
            address: "127.0.0.1".into(),
            port: 1,
            http2: true,
        };
        let rest = ClusterSpec {
            name: "rest".into(),
            http2: false,
            ..grpc.clone()
        };
        let mut clusters = vec![Cluster::from(&grpc), Cluster::from(&rest)];
        apply(&mut clusters);
        let v = serde_json::to_value(&clusters).unwrap();
        let hc = &v[0]["health_checks"][0];
        assert!(hc["grpc_health_check"].is_object());
        assert_eq!(hc["interval"], CHECK_INTERVAL);
        assert_eq!(hc["unhealthy_threshold"], UNHEALTHY_THRESHOLD);
        assert!(v[1].get("health_checks").is_none());
        for c in [&v[0], &v[1]] {
            assert_eq!(c["outlier_detection"]["consecutive_5xx"], CONSECUTIVE_5XX);
            assert_eq!(
                c["outlier_detection"]["base_ejection_time"],
                BASE_EJECTION_TIME
            );
        }
    }
}
