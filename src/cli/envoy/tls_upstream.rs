//! TLS to upstreams, per upstream cluster: the CA that verifies it, the SNI sent and the DNS
//! name its certificate must carry, and a client certificate (mTLS to the backend). gRPC
//! upstreams offer ALPN `h2`. docs/tls.md, "TLS to upstreams".

use super::types::{
    Any, CertificateValidationContext, Cluster, DataSource, NamedFilter, SanType, StringMatcher,
    SubjectAltNameMatcher, TlsCertificate, TlsParams, UpstreamCommonTls, UpstreamTls,
};
use super::{ClusterSpec, HTTP_PROTOCOL_OPTIONS};

/// `--upstream-tls NAME,ca=PATH[,sni=HOST][,san=NAME][,cert=PATH,key=PATH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTlsSpec {
    /// The cluster (a `--cluster` name).
    pub cluster: String,
    /// The CA bundle the upstream's certificate must chain to.
    pub ca: String,
    /// Sent as SNI.
    pub sni: Option<String>,
    /// The DNS SAN the upstream's certificate must carry (default: `sni`; neither: any
    /// certificate of `ca`).
    pub san: Option<String>,
    /// A client certificate and key for upstreams that require one.
    pub client_cert: Option<(String, String)>,
}

pub fn parse_upstream_tls(s: &str) -> Result<UpstreamTlsSpec, String> {
    let mut parts = s.split(',');
    let cluster = parts.next().unwrap_or_default().to_string();
    if cluster.is_empty() || cluster.contains('=') {
        return Err(format!(
            "--upstream-tls `{s}`: start with the cluster's name"
        ));
    }
    let (mut ca, mut sni, mut san, mut cert, mut key) = (None, None, None, None, None);
    for part in parts {
        let slot = match part.split_once('=') {
            Some(("ca", v)) => (&mut ca, v),
            Some(("sni", v)) => (&mut sni, v),
            Some(("san", v)) => (&mut san, v),
            Some(("cert", v)) => (&mut cert, v),
            Some(("key", v)) => (&mut key, v),
            _ => return Err(format!("--upstream-tls `{s}`: unknown part `{part}`")),
        };
        if slot.1.is_empty() {
            return Err(format!("--upstream-tls `{s}`: `{part}` has no value"));
        }
        *slot.0 = Some(slot.1.to_string());
    }
    let ca = ca.ok_or_else(|| format!("--upstream-tls `{s}`: `ca=` is required"))?;
    let client_cert = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            return Err(format!(
                "--upstream-tls `{s}`: `cert=` and `key=` go together"
            ))
        }
    };
    Ok(UpstreamTlsSpec {
        cluster,
        ca,
        sni,
        san,
        client_cert,
    })
}

/// Every `spec` names one of `clusters`, once.
pub fn check(specs: &[UpstreamTlsSpec], clusters: &[ClusterSpec]) -> Result<(), String> {
    for (i, s) in specs.iter().enumerate() {
        if !clusters.iter().any(|c| c.name == s.cluster) {
            return Err(format!(
                "--upstream-tls {}: no --cluster of that name",
                s.cluster
            ));
        }
        if specs.iter().take(i).any(|o| o.cluster == s.cluster) {
            return Err(format!("--upstream-tls {}: given twice", s.cluster));
        }
    }
    Ok(())
}

/// Puts each spec's transport socket on its cluster.
pub(super) fn apply(specs: &[UpstreamTlsSpec], clusters: &mut [Cluster]) {
    for c in clusters.iter_mut() {
        if let Some(s) = specs.iter().find(|s| s.cluster == c.name) {
            let h2 = c
                .typed_extension_protocol_options
                .contains_key(HTTP_PROTOCOL_OPTIONS);
            c.transport_socket = Some(NamedFilter {
                name: super::tls::TLS_TRANSPORT_SOCKET.into(),
                typed_config: Any::UpstreamTls(Box::new(context(s, h2))),
            });
        }
    }
}

fn context(s: &UpstreamTlsSpec, h2: bool) -> UpstreamTls {
    let san = s.san.as_ref().or(s.sni.as_ref());
    UpstreamTls {
        common_tls_context: UpstreamCommonTls {
            tls_params: TlsParams {
                tls_minimum_protocol_version: "TLSv1_2".into(),
                cipher_suites: Vec::new(),
            },
            alpn_protocols: if h2 { vec!["h2".into()] } else { Vec::new() },
            tls_certificates: s
                .client_cert
                .iter()
                .map(|(cert, key)| TlsCertificate {
                    certificate_chain: DataSource {
                        filename: cert.clone(),
                    },
                    private_key: DataSource {
                        filename: key.clone(),
                    },
                })
                .collect(),
            validation_context: CertificateValidationContext {
                trusted_ca: DataSource {
                    filename: s.ca.clone(),
                },
                match_typed_subject_alt_names: san
                    .map(|n| SubjectAltNameMatcher {
                        san_type: SanType::Dns,
                        matcher: StringMatcher::Exact(n.clone()),
                    })
                    .into_iter()
                    .collect(),
            },
        },
        sni: s.sni.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn parses_and_refuses_mistakes() {
        let s = parse_upstream_tls("payments,ca=/ca.pem,sni=p.internal,cert=/c,key=/k").unwrap();
        assert_eq!(s.cluster, "payments");
        assert_eq!(s.sni.as_deref(), Some("p.internal"));
        assert_eq!(s.client_cert, Some(("/c".into(), "/k".into())));
        for (bad, needle) in [
            ("payments", "`ca=` is required"),
            ("ca=/x", "cluster's name"),
            ("p,ca=/x,cert=/c", "go together"),
            ("p,ca=/x,bogus=1", "unknown part"),
            ("p,ca=", "no value"),
        ] {
            let err = parse_upstream_tls(bad).unwrap_err();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn renders_ca_sni_san_client_cert_and_h2_alpn() {
        let spec = parse_upstream_tls("payments,ca=/ca.pem,sni=p.internal,cert=/c,key=/k").unwrap();
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
        assert!(check(std::slice::from_ref(&spec), std::slice::from_ref(&rest)).is_err());
        assert!(check(&[spec.clone(), spec.clone()], std::slice::from_ref(&grpc)).is_err());
        let mut clusters = vec![Cluster::from(&grpc), Cluster::from(&rest)];
        apply(std::slice::from_ref(&spec), &mut clusters);
        assert!(clusters[1].transport_socket.is_none());
        let v = serde_json::to_value(&clusters[0]).unwrap();
        let ctx = &v["transport_socket"]["typed_config"];
        assert_eq!(ctx["sni"], "p.internal");
        let common = &ctx["common_tls_context"];
        assert_eq!(common["alpn_protocols"], serde_json::json!(["h2"]));
        assert_eq!(
            common["tls_certificates"][0]["private_key"]["filename"],
            "/k"
        );
        let validation = &common["validation_context"];
        assert_eq!(validation["trusted_ca"]["filename"], "/ca.pem");
        assert_eq!(
            validation["match_typed_subject_alt_names"][0]["matcher"]["exact"],
            "p.internal"
        );
    }
}
