//! TLS termination: a second listener with the same connection manager as the plaintext one,
//! behind `envoy.transport_sockets.tls` (TLS 1.2+ with ECDHE + AEAD suites only, ALPN `h2` and
//! `http/1.1`), its certificate from files or from an SDS file Envoy watches (rotation without
//! a restart); optionally the plaintext listener only redirects to HTTPS. Client certificates
//! (mTLS): see [`ClientCerts`]. docs/tls.md.

use super::types::{
    Any, DataSource, DownstreamTlsContext, FilterChain, HttpConnectionManager, Listener,
    NamedFilter, Node, PathConfigSource, PrefixMatch, RedirectAction, RedirectManager,
    RedirectRoute, RedirectRouteConfiguration, RedirectVirtualHost, Router, SdsConfigSource,
    SdsFile, SdsSecretConfig, Secret, ServerTlsContext, TlsCertificate, TlsParams, TrustedCa,
};
use super::{parse_addr, EnvoyOptions, HCM_FILTER_NAME};
use crate::cli::envoy::types::Address;
use crate::config::listener::ListenerTlsInput;

/// The transport socket's extension name.
pub const TLS_TRANSPORT_SOCKET: &str = "envoy.transport_sockets.tls";

/// The secret name of `--tls-sds` when `--tls-sds-secret` is not given.
pub const DEFAULT_SDS_SECRET: &str = "meshgate-gateway";

/// TLS 1.2 suites: forward secrecy (ECDHE) and AEAD only, Mozilla's "intermediate" list.
/// TLS 1.3 suites are all AEAD and fixed by BoringSSL.
pub const CIPHER_SUITES: [&str; 6] = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
];

/// Where the listener's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Certificate {
    /// PEM files read at start.
    Files { cert: String, key: String },
    /// The secret `secret` in an SDS file (a `DiscoveryResponse` of `Secret`s, see
    /// [`sds_file`]) that Envoy watches: replacing the file (a move) rotates the certificate.
    Sds { path: String, secret: String },
}

/// Whether the TLS listener asks for client certificates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientCerts {
    /// Not asked for.
    #[default]
    Off,
    /// Asked for and verified when sent; a connection without one is accepted.
    Optional,
    /// A connection without a valid client certificate is refused at the handshake.
    Required,
}

/// The TLS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub address: String,
    pub port: u16,
    pub certificate: Certificate,
    /// `TLSv1_2` or `TLSv1_3`.
    pub min_version: String,
    /// The plaintext listener answers every request with a redirect to this listener.
    pub redirect_plaintext: bool,
    pub client_certs: ClientCerts,
    /// The CA bundle client certificates must chain to (needed unless `client_certs` is off).
    pub client_ca: Option<String>,
}

/// The node `o`'s bootstrap names: SDS from a file needs one (Envoy refuses to start
/// without), and then it is `meshgate`/`meshgate`.
pub fn node(o: &EnvoyOptions) -> Option<Node> {
    let sds = o
        .tls
        .as_ref()
        .is_some_and(|t| matches!(t.certificate, Certificate::Sds { .. }));
    sds.then(|| Node {
        id: "meshgate".into(),
        cluster: "meshgate".into(),
    })
}

/// The `DownstreamTlsContext` of `t`.
pub fn downstream_tls_context(t: &Tls) -> DownstreamTlsContext {
    let mut common = ServerTlsContext {
        tls_params: TlsParams {
            tls_minimum_protocol_version: t.min_version.clone(),
            cipher_suites: CIPHER_SUITES.iter().map(|s| s.to_string()).collect(),
        },
        alpn_protocols: vec!["h2".into(), "http/1.1".into()],
        ..ServerTlsContext::default()
    };
    match &t.certificate {
        Certificate::Files { cert, key } => {
            common.tls_certificates = vec![certificate(cert, key)];
        }
        Certificate::Sds { path, secret } => {
            common.tls_certificate_sds_secret_configs = vec![SdsSecretConfig {
                name: secret.clone(),
                sds_config: SdsConfigSource {
                    path_config_source: PathConfigSource { path: path.clone() },
                    resource_api_version: "V3".into(),
                },
            }];
        }
    }
    if t.client_certs != ClientCerts::Off {
        common.validation_context = t.client_ca.as_ref().map(|ca| TrustedCa {
            trusted_ca: DataSource {
                filename: ca.clone(),
            },
        });
    }
    DownstreamTlsContext {
        common_tls_context: common,
        require_client_certificate: t.client_certs == ClientCerts::Required,
    }
}

fn certificate(cert: &str, key: &str) -> TlsCertificate {
    TlsCertificate {
        certificate_chain: DataSource {
            filename: cert.to_string(),
        },
        private_key: DataSource {
            filename: key.to_string(),
        },
    }
}

/// The content of an SDS file serving the certificate `cert`/`key` as the secret `name`
/// (what `--tls-sds` reads; write it elsewhere and move it over the old one to rotate).
pub fn sds_file(name: &str, cert: &str, key: &str) -> SdsFile {
    SdsFile {
        resources: vec![Any::Secret(Box::new(Secret {
            name: name.to_string(),
            tls_certificate: certificate(cert, key),
        }))],
    }
}

/// The TLS listener: `hcm` (the plaintext listener's connection manager) behind TLS.
pub(super) fn tls_listener(o: &EnvoyOptions, t: &Tls, mut hcm: HttpConnectionManager) -> Listener {
    hcm.stat_prefix = Some("gateway_tls".into());
    Listener {
        name: "gateway_tls".into(),
        address: Address::socket(&t.address, t.port),
        filter_chains: vec![FilterChain {
            filters: vec![NamedFilter {
                name: HCM_FILTER_NAME.into(),
                typed_config: Any::HttpConnectionManager(Box::new(hcm)),
            }],
            transport_socket: Some(NamedFilter {
                name: TLS_TRANSPORT_SOCKET.into(),
                typed_config: Any::DownstreamTlsContext(Box::new(downstream_tls_context(t))),
            }),
        }],
        per_connection_buffer_limit_bytes: o.buffer_limit_bytes,
    }
}

/// The plaintext listener when it only redirects: every request gets `301` to the same host
/// and path, `https`, on the TLS listener's port. meshgate does not run there.
pub(super) fn redirect_listener(o: &EnvoyOptions, t: &Tls) -> Listener {
    let manager = RedirectManager {
        stat_prefix: "gateway_redirect".into(),
        route_config: RedirectRouteConfiguration {
            name: "https_redirect".into(),
            virtual_hosts: vec![RedirectVirtualHost {
                name: "all".into(),
                domains: vec!["*".into()],
                routes: vec![RedirectRoute {
                    matcher: PrefixMatch { prefix: "/".into() },
                    redirect: RedirectAction {
                        https_redirect: true,
                        port_redirect: t.port,
                    },
                }],
            }],
        },
        http_filters: vec![NamedFilter {
            name: "envoy.filters.http.router".into(),
            typed_config: Any::Router(Router {}),
        }],
    };
    Listener {
        name: "gateway".into(),
        address: Address::socket(&o.listen_address, o.listen_port),
        filter_chains: vec![FilterChain {
            filters: vec![NamedFilter {
                name: HCM_FILTER_NAME.into(),
                typed_config: Any::RedirectManager(Box::new(manager)),
            }],
            transport_socket: None,
        }],
        per_connection_buffer_limit_bytes: None,
    }
}

/// `meshgate envoy`'s TLS options.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Also listen with TLS here (ALPN h2 and http/1.1, TLS 1.2+); needs --tls-cert and
    /// --tls-key, or --tls-sds.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_addr)]
    pub tls_listen: Option<(String, u16)>,
    /// The TLS listener's certificate chain (PEM).
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<String>,
    /// The TLS listener's private key (PEM).
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<String>,
    /// Take the certificate from this SDS file instead (a DiscoveryResponse of Secrets, which
    /// Envoy watches: move a new file over it to rotate).
    #[arg(long, value_name = "PATH", conflicts_with = "tls_cert")]
    pub tls_sds: Option<String>,
    /// The secret's name in the --tls-sds file [default: meshgate-gateway].
    #[arg(long, value_name = "NAME")]
    pub tls_sds_secret: Option<String>,
    /// The lowest TLS version the TLS listener accepts [default: 1.2].
    #[arg(long, value_name = "VERSION", value_parser = ["1.2", "1.3"])]
    pub tls_min_version: Option<String>,
    /// The plaintext listener (--listen) answers every request with a 301 to the TLS one.
    #[arg(long)]
    pub https_redirect: bool,
    /// Client certificates on the TLS listener (mTLS): off, optional (verified when sent) or
    /// required (no handshake without one). Needs --client-ca unless off [default: off].
    #[arg(long, value_enum)]
    pub client_certs: Option<ClientCerts>,
    /// The CA bundle (PEM) client certificates must chain to.
    #[arg(long, value_name = "PATH")]
    pub client_ca: Option<String>,
}

/// The flags over the gateway file's `listener.tls`: each flag given wins over its field.
struct Merged {
    listen: Option<(String, u16)>,
    cert: Option<String>,
    key: Option<String>,
    sds: Option<String>,
    sds_secret: String,
    min_version: String,
    redirect: bool,
    client_certs: ClientCerts,
    client_ca: Option<String>,
}

fn client_certs_of(s: &str) -> Result<ClientCerts, String> {
    match s {
        "off" => Ok(ClientCerts::Off),
        "optional" => Ok(ClientCerts::Optional),
        "required" => Ok(ClientCerts::Required),
        _ => Err(format!(
            "listener.tls.client_certs: `{s}` is not off, optional or required"
        )),
    }
}

impl TlsArgs {
    fn merged(&self, file: Option<&ListenerTlsInput>) -> Result<Merged, String> {
        let f = file.cloned().unwrap_or_default();
        let listen = match (&self.tls_listen, &f.listen) {
            (Some(l), _) => Some(l.clone()),
            (None, Some(s)) => {
                Some(parse_addr(s).map_err(|e| format!("listener.tls.listen: {e}"))?)
            }
            (None, None) => None,
        };
        // A certificate from the flags replaces the file's whole (files or SDS).
        let flags_cert = self.tls_cert.is_some() || self.tls_sds.is_some();
        let (cert, key, sds) = if flags_cert {
            (
                self.tls_cert.clone(),
                self.tls_key.clone(),
                self.tls_sds.clone(),
            )
        } else {
            (f.cert, f.key, f.sds)
        };
        let min_version = match self.tls_min_version.clone().or(f.min_version) {
            None => "1.2".to_string(),
            Some(v) if v == "1.2" || v == "1.3" => v,
            Some(v) => return Err(format!("listener.tls.min_version: `{v}` is not 1.2 or 1.3")),
        };
        let client_certs = match (self.client_certs, f.client_certs.as_deref()) {
            (Some(c), _) => c,
            (None, Some(s)) => client_certs_of(s)?,
            (None, None) => ClientCerts::Off,
        };
        Ok(Merged {
            listen,
            cert,
            key,
            sds,
            sds_secret: self
                .tls_sds_secret
                .clone()
                .or(f.sds_secret)
                .unwrap_or_else(|| DEFAULT_SDS_SECRET.to_string()),
            min_version,
            redirect: self.https_redirect || f.redirect.unwrap_or(false),
            client_certs,
            // `--client-certs off` turns the file's client certificates off whole.
            client_ca: match self.client_certs {
                Some(ClientCerts::Off) => self.client_ca.clone(),
                _ => self.client_ca.clone().or(f.client_ca),
            },
        })
    }

    /// The TLS listener from the flags alone.
    pub fn tls(&self) -> Result<Option<Tls>, String> {
        self.tls_with(None)
    }

    /// The TLS listener, from the flags over the gateway file's `listener.tls` (each flag
    /// given wins); `None` without a listen address; an error for settings that would do
    /// nothing or a listener without a certificate.
    pub fn tls_with(&self, file: Option<&ListenerTlsInput>) -> Result<Option<Tls>, String> {
        let m = self.merged(file)?;
        let Some((address, port)) = m.listen else {
            let stray = [
                ("--tls-cert (listener.tls.cert)", m.cert.is_some()),
                ("--tls-sds (listener.tls.sds)", m.sds.is_some()),
                ("--https-redirect (listener.tls.redirect)", m.redirect),
                (
                    "--client-ca (listener.tls.client_ca)",
                    m.client_ca.is_some(),
                ),
                (
                    "--client-certs (listener.tls.client_certs)",
                    m.client_certs != ClientCerts::Off,
                ),
            ];
            return match stray.iter().find(|(_, set)| *set) {
                Some((flag, _)) => Err(format!("{flag} needs --tls-listen (listener.tls.listen)")),
                None => Ok(None),
            };
        };
        let certificate = match (m.cert, m.key, m.sds) {
            (Some(cert), Some(key), None) => Certificate::Files { cert, key },
            (None, None, Some(path)) => Certificate::Sds {
                path,
                secret: m.sds_secret,
            },
            _ => {
                return Err("--tls-listen needs --tls-cert and --tls-key, or --tls-sds \
                     (listener.tls: cert and key, or sds)"
                    .to_string())
            }
        };
        if m.client_certs != ClientCerts::Off && m.client_ca.is_none() {
            return Err("--client-certs optional|required needs --client-ca \
                 (listener.tls.client_ca)"
                .into());
        }
        if m.client_certs == ClientCerts::Off && m.client_ca.is_some() {
            return Err("--client-ca needs --client-certs optional|required \
                 (listener.tls.client_certs)"
                .into());
        }
        Ok(Some(Tls {
            address,
            port,
            certificate,
            min_version: format!("TLSv{}", m.min_version.replace('.', "_")),
            redirect_plaintext: m.redirect,
            client_certs: m.client_certs,
            client_ca: m.client_ca,
        }))
    }
}
