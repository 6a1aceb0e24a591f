//! `listener:` in the gateway file: how `meshgate envoy` renders the listeners (TLS), for
//! people who keep it with the rest of the gateway rather than in flags. Read by the command
//! only (`cli::envoy::tls`): the filter's JSON never carries it. Each flag of `meshgate envoy`
//! overrides its field. docs/tls.md.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTlsInput>,
}

/// The TLS listener; the fields of `meshgate envoy`'s `--tls-*` flags. Relative paths are
/// relative to the gateway file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerTlsInput {
    /// `HOST:PORT` (`--tls-listen`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Certificate chain and private key, PEM (`--tls-cert`, `--tls-key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// An SDS file instead (`--tls-sds`), and the secret's name in it (`--tls-sds-secret`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sds: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sds_secret: Option<String>,
    /// `1.2` or `1.3` (`--tls-min-version`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    /// The plaintext listener only redirects to this one (`--https-redirect`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect: Option<bool>,
    /// `off`, `optional` or `required` (`--client-certs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certs: Option<String>,
    /// The CA bundle client certificates must chain to (`--client-ca`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<String>,
}

impl ListenerTlsInput {
    /// The paths made relative to `base` (the gateway file's directory) where they are not
    /// absolute.
    pub fn resolved(mut self, base: &std::path::Path) -> ListenerTlsInput {
        for p in [
            &mut self.cert,
            &mut self.key,
            &mut self.sds,
            &mut self.client_ca,
        ]
        .into_iter()
        .flatten()
        {
            if std::path::Path::new(p.as_str()).is_relative() {
                *p = base.join(p.as_str()).display().to_string();
            }
        }
        self
    }
}
