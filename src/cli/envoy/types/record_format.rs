//! The `json_format` of the access log Envoy writes for a request meshgate did not record
//! (`cli::envoy::envoy_record`): the access record's own field names, each value an Envoy
//! command string. Typed, so the shape cannot drift from the record's by a typo.

use serde::Serialize;

/// The fields of `observe::AccessRecord`'s JSON that Envoy can know, plus `recordedBy`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordFormat {
    #[serde(rename = "recordedBy")]
    pub recorded_by: String,
    pub severity: String,
    pub message: String,
    #[serde(rename = "httpRequest")]
    pub http_request: HttpRequestFormat,
    #[serde(rename = "requestId")]
    pub request_id: String,
    pub operation: String,
    pub upstream: String,
    #[serde(rename = "grpcStatus")]
    pub grpc_status: String,
    pub outcome: String,
    pub slo: SloFormat,
}

/// Cloud Logging's `httpRequest`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpRequestFormat {
    #[serde(rename = "requestMethod")]
    pub request_method: String,
    #[serde(rename = "requestUrl")]
    pub request_url: String,
    pub status: String,
    #[serde(rename = "requestSize")]
    pub request_size: String,
    #[serde(rename = "responseSize")]
    pub response_size: String,
    #[serde(rename = "userAgent")]
    pub user_agent: String,
    #[serde(rename = "remoteIp")]
    pub remote_ip: String,
    pub protocol: String,
    pub latency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloFormat {
    pub availability: String,
    pub latency: String,
}
