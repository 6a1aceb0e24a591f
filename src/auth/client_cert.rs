//! The client certificate as a principal (mTLS): Envoy verifies the certificate at the TLS
//! handshake (the listener's `--client-certs` and `--client-ca`, or Istio's `MUTUAL` gateway
//! server and mesh mTLS); meshgate takes its identity (the first URI SAN, else the first DNS
//! SAN, else the subject), can require one per operation (`{client_cert: {}}` or
//! `{client_cert: {principals: [...]}}`, combinable with `any`/`all` and the token providers),
//! forwards it upstream in [`PRINCIPAL_HEADER`] (incoming copies are stripped) and writes it to
//! the access record (`clientPrincipal`).

use serde::{Deserialize, Serialize};

/// The header meshgate sets to the verified client certificate's identity.
pub const PRINCIPAL_HEADER: &str = "x-meshgate-client-principal";

/// Envoy's connection attributes, in the order the identity is taken from.
pub const IDENTITY_PROPERTIES: [&str; 3] = [
    "uri_san_peer_certificate",
    "dns_san_peer_certificate",
    "subject_peer_certificate",
];

/// `{client_cert: {principals: [...]}}` as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ClientCertInput {
    /// The identities allowed (exact); empty: any verified client certificate.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<String>,
}

/// What [`ClientCertRule::check`] found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCertDenial {
    /// No verified client certificate on the connection.
    Missing,
    /// A certificate whose identity is not among the principals.
    NotAllowed,
}

/// A compiled `client_cert` requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertRule {
    pub principals: Vec<String>,
}

impl ClientCertRule {
    pub fn compile(
        input: &ClientCertInput,
    ) -> Result<ClientCertRule, crate::config_error::ConfigError> {
        if let Some(i) = input.principals.iter().position(|p| p.trim().is_empty()) {
            return Err(crate::config_error::ConfigError::new(
                format!("client_cert.principals[{i}]"),
                "must not be empty",
            ));
        }
        Ok(ClientCertRule {
            principals: input.principals.clone(),
        })
    }

    /// `identity`: the connection's verified client certificate identity, if any.
    pub fn check(&self, identity: Option<&str>) -> Result<(), ClientCertDenial> {
        let id = identity.ok_or(ClientCertDenial::Missing)?;
        if self.principals.is_empty() || self.principals.iter().any(|p| p == id) {
            Ok(())
        } else {
            Err(ClientCertDenial::NotAllowed)
        }
    }
}

/// The identity from the values of [`IDENTITY_PROPERTIES`] (in order): the first that is
/// present, not empty, and a valid header value (no control characters), at most 1 KiB.
pub fn identity<'a>(values: impl IntoIterator<Item = Option<&'a [u8]>>) -> Option<String> {
    values.into_iter().flatten().find_map(|v| {
        let s = std::str::from_utf8(v).ok()?.trim();
        let ok = !s.is_empty() && s.len() <= 1024 && !s.chars().any(char::is_control);
        ok.then(|| s.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_prefers_uri_san_then_dns_san_then_subject() {
        let uri: &[u8] = b"spiffe://partners/acme";
        let dns: &[u8] = b"acme.example.com";
        let subject: &[u8] = b"CN=acme,O=Partners";
        assert_eq!(
            identity([Some(uri), Some(dns), Some(subject)]).as_deref(),
            Some("spiffe://partners/acme")
        );
        assert_eq!(
            identity([Some(&b""[..]), Some(dns), Some(subject)]).as_deref(),
            Some("acme.example.com")
        );
        assert_eq!(
            identity([None, None, Some(subject)]).as_deref(),
            Some("CN=acme,O=Partners")
        );
        assert_eq!(identity([None, None, None]), None);
        assert_eq!(identity([Some(&b"a\nb"[..]), None, None]), None);
    }

    #[test]
    fn rule_requires_a_certificate_and_one_of_its_principals() {
        let any = ClientCertRule::compile(&ClientCertInput::default()).unwrap();
        assert_eq!(any.check(None), Err(ClientCertDenial::Missing));
        assert_eq!(any.check(Some("x")), Ok(()));
        let acme = ClientCertRule::compile(&ClientCertInput {
            principals: vec!["spiffe://partners/acme".into()],
        })
        .unwrap();
        assert_eq!(acme.check(Some("spiffe://partners/acme")), Ok(()));
        assert_eq!(
            acme.check(Some("spiffe://partners/other")),
            Err(ClientCertDenial::NotAllowed)
        );
        let bad = ClientCertInput {
            principals: vec![" ".into()],
        };
        assert_eq!(
            ClientCertRule::compile(&bad).unwrap_err().field,
            "client_cert.principals[0]"
        );
    }
}
