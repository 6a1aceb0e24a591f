//! The gateway's errors, typed by domain, and the one place where each becomes a
//! `google.rpc.Status` code and an HTTP status. Every status that is not the code's standard
//! mapping (401/403 with `WWW-Authenticate`, 413, 415, 431, the JWKS-outage status, 502, 504)
//! is decided here and nowhere else; the domains only say what went wrong.

use super::{Code, GatewayError};

/// A refusal of the auth domain (`auth::deny` builds it from a `DenyReason`). `description`
/// is fixed text: no part of the token is ever reflected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No token at all: 401 with a bare challenge (RFC 6750 §3.1: no error code).
    Missing {
        realm: String,
        description: &'static str,
    },
    /// A token that is not valid: 401, `error="invalid_token"`.
    Invalid {
        realm: String,
        description: &'static str,
    },
    /// A valid token that is not for this API: 403, `error="insufficient_scope"`.
    Forbidden {
        realm: String,
        description: &'static str,
    },
    /// No rule lets anyone call the operation: 403 without a challenge.
    NoRule { description: &'static str },
    /// The keys to verify with are not available (an outage, not a bad token): UNAVAILABLE
    /// with the configured `auth.jwks_unavailable_status`.
    KeysUnavailable { message: String, status: u16 },
    /// An API key refused: 401 UNAUTHENTICATED with an `ApiKey` challenge (missing, unknown,
    /// revoked), or 403 PERMISSION_DENIED without one (a key not allowed this operation).
    ApiKey {
        realm: String,
        description: &'static str,
        forbidden: bool,
    },
}

/// A configured limit was crossed (`limits:`); each is checked once, where it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitError {
    /// `max_header_bytes`: 431 RESOURCE_EXHAUSTED.
    RequestHeaders { limit: usize },
    /// `max_request_bytes`: 413 RESOURCE_EXHAUSTED.
    RequestBody { limit: usize },
    /// `max_response_bytes`, by the whole reply: INTERNAL, 500.
    Response { limit: usize },
    /// `max_response_bytes`, by one declared gRPC message: INTERNAL, 500 (as the whole reply).
    ResponseMessage { message: String },
}

/// The client's request cannot be routed or transcoded as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// No operation matches an HTTP request: 404 NOT_FOUND.
    NoOperation { method: String, path: String },
    /// No operation is this gRPC method: UNIMPLEMENTED (501).
    UnknownGrpcMethod { path: String },
    /// The route's policy switches transcoding off: UNIMPLEMENTED with 415.
    TranscodingOff,
    /// A body of a type the gateway does not transcode: INVALID_ARGUMENT with 415.
    UnsupportedMediaType { content_type: String },
    /// A client-streaming call whose body is not a JSON array or NDJSON (a binary protobuf
    /// body has no message boundaries): INVALID_ARGUMENT with 415.
    StreamBody { content_type: String },
    /// Anything else wrong with the request (path, query, body): INVALID_ARGUMENT (400).
    Invalid(String),
}

/// The upstream (or Envoy's router on its behalf) failed the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamError {
    /// No answer within the upstream's timeout: DEADLINE_EXCEEDED, 504 (what Envoy's router
    /// answers a route timeout).
    Timeout { ms: u128 },
    /// The call could not be made, or ended without an answer: UNAVAILABLE (503).
    Unavailable(String),
    /// The upstream broke the protocol (no status, a bad frame, an invalid message):
    /// INTERNAL with 502, the fault being upstream, not the gateway's.
    Broken(String),
    /// A plain-HTTP answer where gRPC was expected (Envoy's router errors, a non-gRPC
    /// server): gRPC's HTTP -> code mapping with that code's status, except that a 2xx is
    /// UNKNOWN with 502 and a 413 or 408 (Envoy refused or timed out the request body) stays.
    Http { status: u16, message: String },
    /// An answer that is already a `google.rpc.Status` (Envoy's local replies as `meshgate
    /// envoy` renders them): kept with its own HTTP status.
    Relayed {
        status: u16,
        code: Code,
        message: String,
    },
}

impl From<AuthError> for GatewayError {
    fn from(e: AuthError) -> GatewayError {
        match e {
            AuthError::Missing { realm, description } => {
                GatewayError::new(Code::Unauthenticated, description)
                    .with_header("www-authenticate", challenge(&realm, None))
            }
            AuthError::Invalid { realm, description } => {
                GatewayError::new(Code::Unauthenticated, description).with_header(
                    "www-authenticate",
                    challenge(&realm, Some(("invalid_token", description))),
                )
            }
            AuthError::Forbidden { realm, description } => {
                GatewayError::new(Code::PermissionDenied, description).with_header(
                    "www-authenticate",
                    challenge(&realm, Some(("insufficient_scope", description))),
                )
            }
            AuthError::NoRule { description } => {
                GatewayError::new(Code::PermissionDenied, description)
            }
            AuthError::KeysUnavailable { message, status } => {
                GatewayError::new(Code::Unavailable, message).with_status(status)
            }
            AuthError::ApiKey {
                description,
                forbidden: true,
                ..
            } => GatewayError::new(Code::PermissionDenied, description),
            AuthError::ApiKey {
                realm, description, ..
            } => GatewayError::new(Code::Unauthenticated, description).with_header(
                "www-authenticate",
                format!("ApiKey realm=\"{}\"", quote(&realm)),
            ),
        }
    }
}

impl From<LimitError> for GatewayError {
    fn from(e: LimitError) -> GatewayError {
        let exhausted = Code::ResourceExhausted;
        match e {
            LimitError::RequestHeaders { limit } => GatewayError::new(
                exhausted,
                format!("request headers are larger than the limit of {limit} bytes"),
            )
            .with_status(431),
            LimitError::RequestBody { limit } => GatewayError::new(
                exhausted,
                format!("request body is larger than the limit of {limit} bytes"),
            )
            .with_status(413),
            LimitError::Response { limit } => GatewayError::new(
                Code::Internal,
                format!("the upstream's reply is larger than the limit of {limit} bytes"),
            ),
            LimitError::ResponseMessage { message } => GatewayError::new(Code::Internal, message),
        }
    }
}

impl From<RequestError> for GatewayError {
    fn from(e: RequestError) -> GatewayError {
        match e {
            RequestError::NoOperation { method, path } => GatewayError::new(
                Code::NotFound,
                format!("no operation matches {method} {path}"),
            ),
            RequestError::UnknownGrpcMethod { path } => {
                GatewayError::new(Code::Unimplemented, format!("unknown gRPC method {path}"))
            }
            RequestError::TranscodingOff => GatewayError::new(
                Code::Unimplemented,
                "transcoding is switched off for this route; call it over gRPC",
            )
            .with_status(415),
            RequestError::UnsupportedMediaType { content_type } => GatewayError::new(
                Code::InvalidArgument,
                format!("unsupported content type '{content_type}': send application/json or application/x-protobuf"),
            )
            .with_status(415),
            RequestError::StreamBody { content_type } => GatewayError::new(
                Code::InvalidArgument,
                format!("a client-streaming method takes a JSON array (application/json) or NDJSON (application/x-ndjson) body, one message per element or line, not '{content_type}'"),
            )
            .with_status(415),
            RequestError::Invalid(message) => GatewayError::new(Code::InvalidArgument, message),
        }
    }
}

impl From<UpstreamError> for GatewayError {
    fn from(e: UpstreamError) -> GatewayError {
        match e {
            UpstreamError::Timeout { ms } => GatewayError::new(
                Code::DeadlineExceeded,
                format!("upstream did not answer within {ms} ms"),
            )
            .with_status(504),
            UpstreamError::Unavailable(message) => GatewayError::new(Code::Unavailable, message),
            UpstreamError::Broken(message) => {
                GatewayError::new(Code::Internal, message).with_status(502)
            }
            UpstreamError::Http { status, message } => {
                let mapped = Code::from_http_status(status);
                match status {
                    _ if mapped == Code::Ok => {
                        GatewayError::new(Code::Unknown, message).with_status(502)
                    }
                    // Envoy refused the request before it was whole: a body over its limit
                    // (413) or one that did not arrive within `request_timeout` (408). The
                    // client's side, so the client's status, not the code's 429 or 504.
                    408 | 413 => GatewayError::new(mapped, message).with_status(status),
                    _ => GatewayError::new(mapped, message),
                }
            }
            UpstreamError::Relayed {
                status,
                code,
                message,
            } => GatewayError::new(code, message).with_status(status),
        }
    }
}

/// `WWW-Authenticate: Bearer realm="..."[, error="...", error_description="..."]`.
fn challenge(realm: &str, error: Option<(&str, &str)>) -> String {
    let mut out = format!("Bearer realm=\"{}\"", quote(realm));
    if let Some((code, description)) = error {
        out.push_str(&format!(
            ", error=\"{code}\", error_description=\"{}\"",
            quote(description)
        ));
    }
    out
}

/// Inside an RFC 9110 quoted-string: escape `"` and `\`, drop control characters.
fn quote(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            _ => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_domain_error_gets_its_status_here() {
        let cases: Vec<(GatewayError, u16, Code)> = vec![
            (
                LimitError::RequestHeaders { limit: 8 }.into(),
                431,
                Code::ResourceExhausted,
            ),
            (
                LimitError::RequestBody { limit: 8 }.into(),
                413,
                Code::ResourceExhausted,
            ),
            (
                LimitError::Response { limit: 8 }.into(),
                500,
                Code::Internal,
            ),
            (
                RequestError::TranscodingOff.into(),
                415,
                Code::Unimplemented,
            ),
            (
                RequestError::UnsupportedMediaType {
                    content_type: "text/csv".into(),
                }
                .into(),
                415,
                Code::InvalidArgument,
            ),
            (
                UpstreamError::Timeout { ms: 5 }.into(),
                504,
                Code::DeadlineExceeded,
            ),
            (
                UpstreamError::Broken("x".into()).into(),
                502,
                Code::Internal,
            ),
            (
                UpstreamError::Http {
                    status: 200,
                    message: "x".into(),
                }
                .into(),
                502,
                Code::Unknown,
            ),
            (
                UpstreamError::Http {
                    status: 413,
                    message: "x".into(),
                }
                .into(),
                413,
                Code::ResourceExhausted,
            ),
            (
                UpstreamError::Http {
                    status: 502,
                    message: "x".into(),
                }
                .into(),
                503,
                Code::Unavailable,
            ),
            (
                AuthError::KeysUnavailable {
                    message: "x".into(),
                    status: 500,
                }
                .into(),
                500,
                Code::Unavailable,
            ),
        ];
        for (err, status, code) in cases {
            assert_eq!((err.status(), err.code), (status, code), "{err}");
        }
    }

    #[test]
    fn only_401_and_the_scoped_403_carry_a_challenge() {
        let realm = || "api".to_string();
        let www = |e: GatewayError| {
            e.headers
                .iter()
                .find(|(k, _)| k == "www-authenticate")
                .map(|(_, v)| v.clone())
        };
        let missing = AuthError::Missing {
            realm: realm(),
            description: "Jwt is missing",
        };
        assert_eq!(www(missing.into()).as_deref(), Some("Bearer realm=\"api\""));
        let no_rule = AuthError::NoRule { description: "no" };
        assert_eq!(www(no_rule.into()), None);
        let outage = AuthError::KeysUnavailable {
            message: "x".into(),
            status: 503,
        };
        assert_eq!(www(outage.into()), None);
    }
}
