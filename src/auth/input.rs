//! The `auth` section of the gateway configuration as people write it (serde input types, owned
//! by this domain; [`crate::config`] assembles them into the gateway's document).

use serde::{Deserialize, Serialize};

pub use super::apikey::{ApiClientInput, ApiKeysInput, GlobalRateLimitInput, QuotaInput};

/// Who must have signed the request's token. Written like Envoy's `JwtRequirement`:
/// `{provider: name}`, `{any: [...]}`, `{all: [...]}`, `allow_missing`,
/// `allow_missing_or_failed`, `none`; `api_key` (a configured client's key:
/// [`super::apikey`]); and `{client_cert: {principals: [...]}}` (mTLS).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RequirementInput {
    Provider(String),
    Any(Vec<RequirementInput>),
    All(Vec<RequirementInput>),
    AllowMissing,
    AllowMissingOrFailed,
    None,
    ApiKey,
    /// A verified client certificate (mTLS), optionally one of `principals`.
    ClientCert(super::client_cert::ClientCertInput),
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthInput {
    pub providers: Vec<ProviderInput>,
    /// Requirement for operations with none of their own (and no service default). Deny by
    /// default: a new operation is not public by accident.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<RequirementInput>,
    /// Status for requests refused because keys could not be fetched (JWKS outage), told apart
    /// from a bad token. Default 503 (UNAVAILABLE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_unavailable_status: Option<u16>,
    /// Verified-token cache (on by default).
    pub cache: TokenCacheInput,
    /// `realm` of `WWW-Authenticate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    /// Partners' API keys (the `api_key` requirement).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_keys: Option<ApiKeysInput>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TokenCacheInput {
    pub enabled: bool,
    pub max_entries: usize,
}

impl Default for TokenCacheInput {
    fn default() -> Self {
        TokenCacheInput {
            enabled: true,
            max_entries: 4096,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderInput {
    pub name: String,
    pub issuer: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    pub require_expiration: bool,
    /// Longest accepted `exp - iat` (or `exp - now` without `iat`), seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lifetime_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_skew_seconds: Option<u64>,
    pub jwks: JwksInput,
    /// Where tokens come from. Empty: `Authorization: Bearer <token>`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_headers: Vec<HeaderSourceInput>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_params: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_cookies: Vec<String>,
    /// Keep the token in the upstream request (removed by default).
    pub forward: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub claim_to_headers: Vec<ClaimToHeaderInput>,
    /// Header that carries the verified payload, base64url.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_payload_header: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderSourceInput {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_prefix: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClaimToHeaderInput {
    /// Dotted claim path (`realm_access.roles`); arrays are joined with `,`.
    pub claim: String,
    pub header: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JwksInput {
    /// A JWKS document inline (JSON text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteJwksInput>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteJwksInput {
    /// URL of the JWKS (or of the OIDC discovery document, with `discovery: true`).
    pub uri: String,
    /// Envoy cluster that reaches the URL's host (Istio: `outbound|443||host`).
    pub cluster: String,
    pub discovery: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_duration_seconds: Option<u64>,
    /// How long a request may wait for the first fetch before it is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_fetch_wait_ms: Option<u64>,
    /// Least time between refetches triggered by an unknown `kid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refetch_min_interval_seconds: Option<u64>,
    /// Take `oct` (HMAC) keys from the fetched JWKS. Off by default: a JWKS is public, so a
    /// secret published in it lets anyone sign tokens. Only for an endpoint that is itself
    /// private (a warning is logged whenever such keys are loaded). Written only when set, so
    /// a compiled configuration that does not use it also loads in modules that predate it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_symmetric_keys: bool,
}

/// The `limits` that bound authentication (the gateway's `limits` section holds them; the
/// configuration passes them here). `None`: the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthLimits {
    pub max_token_bytes: Option<usize>,
    pub max_jwks_bytes: Option<usize>,
    pub max_jwks_keys: Option<usize>,
    pub max_key_table_bytes: Option<usize>,
}
