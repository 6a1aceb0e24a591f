//! The bootstrap's clusters: the upstreams given on the command line, and one per remote JWKS
//! (and discovery document) that has none.

use std::collections::BTreeMap;

use super::types::{
    Any, CertificateValidationContext, Cluster, ClusterLoadAssignment, CommonTlsContext,
    DataSource, DiscoveryType, ExplicitHttpConfig, Http2ProtocolOptions, HttpProtocolOptions,
    NamedFilter, SanType, StringMatcher, SubjectAltNameMatcher, UpstreamTlsContext,
};
use super::ClusterSpec;

/// The key of `typed_extension_protocol_options` for HTTP protocol options.
pub const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// Debian's (and most distributions') CA bundle: what the JWKS clusters trust by default.
pub const DEFAULT_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

impl From<&ClusterSpec> for Cluster {
    /// A static upstream; HTTP/2 (gRPC) unless the spec says HTTP/1.1.
    fn from(c: &ClusterSpec) -> Cluster {
        let mut options = BTreeMap::new();
        if c.http2 {
            let http2 = HttpProtocolOptions {
                explicit_http_config: ExplicitHttpConfig {
                    http2_protocol_options: Http2ProtocolOptions {},
                },
            };
            options.insert(
                HTTP_PROTOCOL_OPTIONS.to_string(),
                Any::HttpProtocolOptions(http2),
            );
        }
        Cluster {
            name: c.name.clone(),
            kind: DiscoveryType::Static,
            connect_timeout: "2s".into(),
            load_assignment: ClusterLoadAssignment::single(&c.name, &c.address, c.port),
            typed_extension_protocol_options: options,
            transport_socket: None,
            health_checks: Vec::new(),
            outlier_detection: None,
        }
    }
}

/// A cluster for every remote JWKS (and discovery document) whose cluster is not among
/// `existing`: reached at the URI's host and port (443/80 by default), over TLS for `https://`
/// with the host as SNI and as the certificate's required DNS name, trusting `ca_file`. One
/// cluster per name, even when several providers share it.
pub fn jwks_clusters(
    config: &crate::config::Config,
    existing: &[String],
    ca_file: &str,
) -> Vec<Cluster> {
    let mut seen: Vec<&str> = existing.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for p in &config.auth.providers {
        let crate::auth::KeySource::Remote(rc) = &p.keys else {
            continue;
        };
        if seen.contains(&rc.cluster.as_str()) {
            continue;
        }
        seen.push(&rc.cluster);
        out.push(jwks_cluster(rc, ca_file));
    }
    out
}

pub(super) fn jwks_cluster(rc: &crate::auth::RemoteConfig, ca_file: &str) -> Cluster {
    let (host, port) = split_authority(&rc.authority, if rc.tls { 443 } else { 80 });
    let literal = host.parse::<std::net::IpAddr>().is_ok();
    let transport_socket = rc.tls.then(|| NamedFilter {
        name: "envoy.transport_sockets.tls".into(),
        typed_config: Any::UpstreamTlsContext(tls_context(host, literal, ca_file)),
    });
    Cluster {
        name: rc.cluster.clone(),
        kind: if literal {
            DiscoveryType::Static
        } else {
            DiscoveryType::LogicalDns
        },
        connect_timeout: "5s".into(),
        load_assignment: ClusterLoadAssignment::single(&rc.cluster, host, port),
        typed_extension_protocol_options: BTreeMap::new(),
        transport_socket,
        health_checks: Vec::new(),
        outlier_detection: None,
    }
}

/// A name is sent as SNI and required as a DNS SAN; an IP (never valid SNI) as an IP SAN.
fn tls_context(host: &str, literal: bool, ca_file: &str) -> UpstreamTlsContext {
    let san = SubjectAltNameMatcher {
        san_type: if literal {
            SanType::IpAddress
        } else {
            SanType::Dns
        },
        matcher: StringMatcher::Exact(host.to_string()),
    };
    UpstreamTlsContext {
        common_tls_context: CommonTlsContext {
            validation_context: CertificateValidationContext {
                trusted_ca: DataSource {
                    filename: ca_file.to_string(),
                },
                match_typed_subject_alt_names: vec![san],
            },
        },
        sni: (!literal).then(|| host.to_string()),
    }
}

/// `host:port`, `[v6]:port` or a bare host -> (host, port or `default`).
pub(super) fn split_authority(authority: &str, default: u16) -> (&str, u16) {
    if let Some(rest) = authority.strip_prefix('[') {
        if let Some((host, tail)) = rest.split_once(']') {
            let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
            return (host, port.unwrap_or(default));
        }
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, port),
            Err(_) => (authority, default),
        },
        _ => (authority, default),
    }
}
