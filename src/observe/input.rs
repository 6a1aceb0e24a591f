//! The `observe` section and the objectives (`slo`) of the gateway configuration as people write
//! them (serde input types, owned by this domain; [`crate::config`] assembles them).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SloInput {
    /// Availability objective, percent (`99.9`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySloInput>,
    /// gRPC codes counted against availability (besides HTTP 5xx). Default: UNAVAILABLE,
    /// DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, DATA_LOSS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_codes: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LatencySloInput {
    pub threshold_ms: u64,
    /// Percent of requests that must be faster than the threshold (`95`).
    pub target: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ObserveInput {
    /// Write one JSON access record per request to the proxy's log (info level).
    pub access_log: bool,
    /// Prefix of metric names (`meshgate` -> `meshgate_requests_total`).
    pub metric_prefix: String,
    /// Default objective for operations and services without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_slo: Option<SloInput>,
    /// Latency histogram bucket bounds, milliseconds; every objective's threshold is added.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub latency_buckets_ms: Vec<u64>,
    /// The GCP project, to write `logging.googleapis.com/trace` as
    /// `projects/<id>/traces/<trace>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_project: Option<String>,
    /// The record's fields also written as filter state of their own
    /// (`wasm.meshgate.<name>`, for the user's own access log formats), besides the whole
    /// record (`wasm.meshgate.record`, always). Default: none (`observe::FILTER_STATE_FIELDS`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filter_state: Vec<String>,
}

impl Default for ObserveInput {
    fn default() -> Self {
        ObserveInput {
            access_log: true,
            metric_prefix: "meshgate".to_string(),
            default_slo: None,
            latency_buckets_ms: Vec::new(),
            trace_project: None,
            filter_state: Vec::new(),
        }
    }
}
