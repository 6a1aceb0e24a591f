//! Upstream health: active gRPC health checks and outlier detection on a cluster.

use serde::Serialize;

/// `envoy.config.core.v3.HealthCheck` with `grpc_health_check` (grpc.health.v1 `Check`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthCheck {
    /// Proto3 JSON durations.
    pub timeout: String,
    pub interval: String,
    /// The interval while the cluster has no traffic (Envoy's default is 60 s).
    pub no_traffic_interval: String,
    pub unhealthy_threshold: u32,
    pub healthy_threshold: u32,
    pub grpc_health_check: GrpcHealthCheck,
}

/// `HealthCheck.GrpcHealthCheck`: the whole server (`service_name` empty).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GrpcHealthCheck {}

/// `envoy.config.cluster.v3.OutlierDetection`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutlierDetection {
    pub consecutive_5xx: u32,
    pub consecutive_gateway_failure: u32,
    pub interval: String,
    pub base_ejection_time: String,
    pub max_ejection_percent: u32,
}
