//! Clusters: endpoints, HTTP/2 protocol options, upstream TLS.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Address, Any, NamedFilter, StringMatcher};

/// `envoy.config.cluster.v3.Cluster`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cluster {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: DiscoveryType,
    /// A proto3 JSON duration (`2s`).
    pub connect_timeout: String,
    pub load_assignment: ClusterLoadAssignment,
    /// By extension name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub typed_extension_protocol_options: BTreeMap<String, Any>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport_socket: Option<NamedFilter>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub health_checks: Vec<super::HealthCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<super::OutlierDetection>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DiscoveryType {
    Static,
    LogicalDns,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterLoadAssignment {
    pub cluster_name: String,
    pub endpoints: Vec<LocalityLbEndpoints>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalityLbEndpoints {
    pub lb_endpoints: Vec<LbEndpoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LbEndpoint {
    pub endpoint: Endpoint,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Endpoint {
    pub address: Address,
}

impl ClusterLoadAssignment {
    /// One endpoint at `address:port`.
    pub fn single(cluster_name: &str, address: &str, port: u16) -> ClusterLoadAssignment {
        let endpoint = Endpoint {
            address: Address::socket(address, port),
        };
        ClusterLoadAssignment {
            cluster_name: cluster_name.to_string(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint { endpoint }],
            }],
        }
    }
}

/// `envoy.extensions.upstreams.http.v3.HttpProtocolOptions` with an explicit protocol.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpProtocolOptions {
    pub explicit_http_config: ExplicitHttpConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExplicitHttpConfig {
    pub http2_protocol_options: Http2ProtocolOptions,
}

/// Envoy's defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Http2ProtocolOptions {}

/// `envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpstreamTlsContext {
    pub common_tls_context: CommonTlsContext,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommonTlsContext {
    pub validation_context: CertificateValidationContext,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CertificateValidationContext {
    pub trusted_ca: DataSource,
    pub match_typed_subject_alt_names: Vec<SubjectAltNameMatcher>,
}

/// `envoy.config.core.v3.DataSource` (a file).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataSource {
    pub filename: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubjectAltNameMatcher {
    pub san_type: SanType,
    pub matcher: StringMatcher,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SanType {
    Dns,
    IpAddress,
}
