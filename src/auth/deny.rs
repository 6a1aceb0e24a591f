//! Why a request was refused, and the reply for it: 401 with `WWW-Authenticate` (RFC 6750),
//! 403 for a token that is valid but not for this API, or the configured JWKS-outage status.

use crate::status::{AuthError, GatewayError};

/// The reason of a refusal; [`DenyReason::as_str`] is the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// No token in any configured place.
    Missing,
    /// Not three base64url segments of JSON, bad claim types, or an absurd `kid`.
    Malformed,
    /// Longer than `limits.max_token_bytes` (refused before any parsing).
    TooLarge,
    /// `alg` is `none` or not an algorithm meshgate verifies.
    UnsupportedAlgorithm,
    /// A `crit` header: meshgate understands no JWS extensions (RFC 7515 §4.1.11).
    UnsupportedCritical,
    /// The key the token names does not allow the token's `alg` (algorithm confusion, or a key
    /// of the wrong type).
    AlgorithmMismatch,
    UnknownKid,
    BadSignature,
    Expired,
    NotYetValid,
    MissingExpiration,
    LifetimeTooLong,
    WrongIssuer,
    WrongAudience,
    WrongSubject,
    /// No keys: the JWKS could not be fetched (an outage, not a bad token).
    KeysUnavailable,
    /// The operation has no auth rule and the default denies.
    NoRule,
    /// No API key in the configured header or parameter.
    ApiKeyMissing,
    /// An API key no client has.
    ApiKeyUnknown,
    /// A client's key marked `revoked`.
    ApiKeyRevoked,
    /// A client's key on an operation the client may not call (403).
    ApiKeyForbidden,
    /// No verified client certificate on the connection (a `client_cert` requirement).
    ClientCertMissing,
    /// A client certificate whose identity is not among the requirement's principals.
    ClientCertNotAllowed,
}

impl From<super::client_cert::ClientCertDenial> for DenyReason {
    fn from(d: super::client_cert::ClientCertDenial) -> DenyReason {
        match d {
            super::client_cert::ClientCertDenial::Missing => DenyReason::ClientCertMissing,
            super::client_cert::ClientCertDenial::NotAllowed => DenyReason::ClientCertNotAllowed,
        }
    }
}

impl DenyReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            DenyReason::Missing => "missing",
            DenyReason::Malformed => "malformed",
            DenyReason::TooLarge => "too_large",
            DenyReason::UnsupportedAlgorithm => "unsupported_algorithm",
            DenyReason::UnsupportedCritical => "unsupported_critical",
            DenyReason::AlgorithmMismatch => "algorithm_mismatch",
            DenyReason::UnknownKid => "unknown_kid",
            DenyReason::BadSignature => "bad_signature",
            DenyReason::Expired => "expired",
            DenyReason::NotYetValid => "not_yet_valid",
            DenyReason::MissingExpiration => "missing_expiration",
            DenyReason::LifetimeTooLong => "lifetime_too_long",
            DenyReason::WrongIssuer => "wrong_issuer",
            DenyReason::WrongAudience => "wrong_audience",
            DenyReason::WrongSubject => "wrong_subject",
            DenyReason::KeysUnavailable => "keys_unavailable",
            DenyReason::NoRule => "no_rule",
            DenyReason::ApiKeyMissing => "api_key_missing",
            DenyReason::ApiKeyUnknown => "api_key_unknown",
            DenyReason::ApiKeyRevoked => "api_key_revoked",
            DenyReason::ApiKeyForbidden => "api_key_forbidden",
            DenyReason::ClientCertMissing => "client_cert_missing",
            DenyReason::ClientCertNotAllowed => "client_cert_not_allowed",
        }
    }

    /// Fixed text for replies and logs (never any part of the token: no reflection).
    pub fn description(&self) -> &'static str {
        match self {
            DenyReason::Missing => "Jwt is missing",
            DenyReason::Malformed => "Jwt is not in the form of Header.Payload.Signature",
            DenyReason::TooLarge => "Jwt is too large",
            DenyReason::UnsupportedAlgorithm => "Jwt algorithm is not supported",
            DenyReason::UnsupportedCritical => "Jwt has unsupported critical header parameters",
            DenyReason::AlgorithmMismatch => "Jwt algorithm is not allowed for its key",
            DenyReason::UnknownKid => "Jwt key id is not known",
            DenyReason::BadSignature => "Jwt verification fails",
            DenyReason::Expired => "Jwt is expired",
            DenyReason::NotYetValid => "Jwt not yet valid",
            DenyReason::MissingExpiration => "Jwt has no expiration",
            DenyReason::LifetimeTooLong => "Jwt lifetime is longer than allowed",
            DenyReason::WrongIssuer => "Jwt issuer is not configured",
            DenyReason::WrongAudience => "Audiences in Jwt are not allowed",
            DenyReason::WrongSubject => "Jwt subject is not allowed",
            DenyReason::KeysUnavailable => "Jwt verification keys are unavailable",
            DenyReason::NoRule => "No authentication rule allows this operation",
            DenyReason::ApiKeyMissing => "API key is missing",
            DenyReason::ApiKeyUnknown => "API key is not valid",
            DenyReason::ApiKeyRevoked => "API key is revoked",
            DenyReason::ApiKeyForbidden => "API key does not allow this operation",
            DenyReason::ClientCertMissing => "Client certificate is missing",
            DenyReason::ClientCertNotAllowed => "Client certificate is not allowed",
        }
    }

    /// 403: a valid token that is not for this API, or an operation nobody may call.
    pub fn is_forbidden(&self) -> bool {
        matches!(
            self,
            DenyReason::WrongAudience
                | DenyReason::WrongSubject
                | DenyReason::NoRule
                | DenyReason::ApiKeyForbidden
                | DenyReason::ClientCertNotAllowed
        )
    }

    /// How much a failure says about the request, to pick the one to report when several
    /// providers were tried: a token that failed where its issuer is configured says more than
    /// "wrong issuer" from the others, which says more than "missing".
    pub(super) fn rank(&self) -> u8 {
        match self {
            DenyReason::Missing | DenyReason::ApiKeyMissing | DenyReason::ClientCertMissing => 0,
            DenyReason::WrongIssuer => 1,
            _ => 2,
        }
    }
}

/// What `reason` is as an auth error. `realm` goes into `WWW-Authenticate`;
/// `unavailable_status` is the configured status of a JWKS outage. The statuses and the
/// challenge are decided in `status::errors`.
pub fn deny_reason_error(reason: DenyReason, realm: &str, unavailable_status: u16) -> AuthError {
    let description = reason.description();
    let realm = realm.to_string();
    match reason {
        DenyReason::KeysUnavailable => AuthError::KeysUnavailable {
            message: description.to_string(),
            status: unavailable_status,
        },
        DenyReason::NoRule => AuthError::NoRule { description },
        DenyReason::ApiKeyMissing
        | DenyReason::ApiKeyUnknown
        | DenyReason::ApiKeyRevoked
        | DenyReason::ApiKeyForbidden => AuthError::ApiKey {
            realm,
            description,
            forbidden: reason.is_forbidden(),
        },
        r if r.is_forbidden() => AuthError::Forbidden { realm, description },
        DenyReason::Missing | DenyReason::ClientCertMissing => {
            AuthError::Missing { realm, description }
        }
        _ => AuthError::Invalid { realm, description },
    }
}

/// The reply for `reason` (see `deny_reason_error`).
pub fn deny_error(reason: DenyReason, realm: &str, unavailable_status: u16) -> GatewayError {
    deny_reason_error(reason, realm, unavailable_status).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{BodyFormat, Code};

    #[test]
    fn invalid_token_is_401_with_bearer_challenge_and_status_body() {
        let e = deny_error(DenyReason::Expired, "api", 503);
        let (status, headers, body) = e.to_response(BodyFormat::Json);
        assert_eq!(status, 401);
        let www = headers
            .iter()
            .find(|(k, _)| k == "www-authenticate")
            .unwrap();
        assert_eq!(
            www.1,
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"Jwt is expired\""
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], 16);
    }

    #[test]
    fn audience_mismatch_is_403_permission_denied() {
        let e = deny_error(DenyReason::WrongAudience, "api", 503);
        assert_eq!(e.status(), 403);
        assert_eq!(e.code, Code::PermissionDenied);
    }

    #[test]
    fn missing_token_challenge_has_no_error_code() {
        let e = deny_error(DenyReason::Missing, "r\"x", 503);
        assert_eq!(e.headers[0].1, "Bearer realm=\"r\\\"x\"");
    }

    #[test]
    fn api_key_refusals_are_401_with_an_api_key_challenge_or_403() {
        for reason in [
            DenyReason::ApiKeyMissing,
            DenyReason::ApiKeyUnknown,
            DenyReason::ApiKeyRevoked,
        ] {
            let e = deny_error(reason, "api", 503);
            assert_eq!((e.status(), e.code), (401, Code::Unauthenticated));
            assert_eq!(
                e.headers,
                [("www-authenticate".into(), "ApiKey realm=\"api\"".into())]
            );
        }
        let e = deny_error(DenyReason::ApiKeyForbidden, "api", 503);
        assert_eq!((e.status(), e.code), (403, Code::PermissionDenied));
        assert!(e.headers.is_empty());
    }

    #[test]
    fn jwks_outage_uses_the_configured_status() {
        let e = deny_error(DenyReason::KeysUnavailable, "api", 500);
        assert_eq!((e.status(), e.code), (500, Code::Unavailable));
        assert!(e.headers.is_empty());
    }
}
