//! TLS messages for the gateway's own listeners: `DownstreamTlsContext` with its certificate
//! (files or SDS from a file), TLS parameters, ALPN, client certificate validation; and the
//! redirect-only connection manager of the plaintext listener that sends clients to HTTPS.

use serde::Serialize;

use super::{Any, DataSource, NamedFilter};

/// `envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DownstreamTlsContext {
    pub common_tls_context: ServerTlsContext,
    /// Refuse the handshake without a (valid) client certificate.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub require_client_certificate: bool,
}

/// `envoy.extensions.transport_sockets.tls.v3.CommonTlsContext`, as a server (or a client
/// with its own certificate) sets it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerTlsContext {
    pub tls_params: TlsParams,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alpn_protocols: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tls_certificates: Vec<TlsCertificate>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tls_certificate_sds_secret_configs: Vec<SdsSecretConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_context: Option<TrustedCa>,
}

/// `envoy.extensions.transport_sockets.tls.v3.TlsParameters`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TlsParams {
    /// `TLSv1_2`, `TLSv1_3`.
    pub tls_minimum_protocol_version: String,
    /// TLS 1.2 suites (TLS 1.3's are fixed by BoringSSL).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cipher_suites: Vec<String>,
}

/// `envoy.extensions.transport_sockets.tls.v3.TlsCertificate` from files.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsCertificate {
    pub certificate_chain: DataSource,
    pub private_key: DataSource,
}

/// `envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SdsSecretConfig {
    pub name: String,
    pub sds_config: SdsConfigSource,
}

/// `envoy.config.core.v3.ConfigSource` reading a file Envoy watches (`path_config_source`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SdsConfigSource {
    pub path_config_source: PathConfigSource,
    pub resource_api_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathConfigSource {
    pub path: String,
}

/// `CertificateValidationContext` with only a trusted CA (client certificates).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrustedCa {
    pub trusted_ca: DataSource,
}

/// An SDS file's content: `envoy.service.discovery.v3.DiscoveryResponse` with `Secret`s.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SdsFile {
    pub resources: Vec<Any>,
}

/// `envoy.extensions.transport_sockets.tls.v3.Secret` holding a certificate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Secret {
    pub name: String,
    pub tls_certificate: TlsCertificate,
}

/// A connection manager that only redirects (the plaintext listener in front of HTTPS).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RedirectManager {
    pub stat_prefix: String,
    pub route_config: RedirectRouteConfiguration,
    pub http_filters: Vec<NamedFilter>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RedirectRouteConfiguration {
    pub name: String,
    pub virtual_hosts: Vec<RedirectVirtualHost>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RedirectVirtualHost {
    pub name: String,
    pub domains: Vec<String>,
    pub routes: Vec<RedirectRoute>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RedirectRoute {
    #[serde(rename = "match")]
    pub matcher: PrefixMatch,
    pub redirect: RedirectAction,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrefixMatch {
    pub prefix: String,
}

/// `envoy.config.route.v3.RedirectAction`: same host and path, `https`, the TLS port.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RedirectAction {
    pub https_redirect: bool,
    pub port_redirect: u16,
}

/// `envoy.config.core.v3.Node`: who this Envoy is (SDS and tracing need an id and a cluster).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub id: String,
    pub cluster: String,
}

/// `envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext` for an upstream cluster:
/// the CA that verifies the upstream, the name it must carry, SNI, and a client certificate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpstreamTls {
    pub common_tls_context: UpstreamCommonTls,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpstreamCommonTls {
    pub tls_params: TlsParams,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alpn_protocols: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tls_certificates: Vec<TlsCertificate>,
    pub validation_context: super::CertificateValidationContext,
}
