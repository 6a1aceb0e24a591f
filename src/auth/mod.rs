//! Authentication: token extraction, JWKS (parse, cache, refresh), verification, requirements.
//!
//! The proxy glue calls [`AuthConfig::compile`] once per VM, keeps one [`AuthState`], turns
//! [`AuthState::due_fetches`] into HTTP calls and their replies into
//! [`AuthState::on_fetch_response`], and calls [`authenticate`] per request. Time and network
//! results are inputs; nothing here touches the proxy.
//!
//! Security choices, in one place:
//! - the algorithm comes from the key (`kty`/`crv`/`alg`), never from the token; `none` and
//!   anything not listed in [`alg::Alg`] is refused;
//! - keys embedded in or pointed at by tokens (`jwk`, `jku`, `x5u`) are never used;
//! - a `crit` header is refused (no JWS extension is understood);
//! - tokens longer than `limits.max_token_bytes` are refused before any decoding;
//! - claims are trusted only after the signature (`iss` is read first, to choose the provider).

pub mod alg;
pub mod apikey;
mod cache;
mod claims;
pub mod client_cert;
mod config;
#[doc(hidden)]
pub mod crypto_probe;
mod deny;
mod ecdsa;
mod engine;
pub mod es384;
mod extract;
mod fetch;
pub mod input;
pub mod keys;
mod nistp256;
mod requirement;
mod rsa;
mod signature;
mod state;
mod verify;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde_json::{Map, Value};

pub use config::{AuthConfig, KeySource, Provider};
pub use deny::{deny_error, DenyReason};
pub use engine::{authenticate, authenticate_operation};
pub use extract::TokenSource;
pub use fetch::{FetchKind, FetchRequest, RemoteConfig};
pub use requirement::Requirement;
pub use state::{AuthState, FetchOutcome};

/// What `authenticate` reads of a request: the request headers (with `:path`), the raw
/// query string (without `?`), and the connection's verified client certificate identity
/// ([`client_cert::identity`]).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub headers: &'a [(String, String)],
    pub query: Option<&'a str>,
    pub client_cert: Option<&'a str>,
}

/// Who called: from a verified token.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// `sub` (the access record's principal).
    pub subject: Option<String>,
    pub issuer: String,
    /// Name of the provider that verified the token.
    pub provider: String,
    /// All claims of the token.
    pub claims: Arc<Map<String, Value>>,
}

/// Header changes for the upstream request: apply `remove_headers` first, then `set_headers`
/// (claim headers, payload headers, and a rewritten `:path`/`cookie` when a token is taken out
/// of the query or cookies). The caller strips [`AuthConfig::headers_to_strip`] from every
/// request before either.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuthResult {
    /// `None` for `allow_missing` without a token, `none`, or `allow_missing_or_failed`
    /// without a valid token.
    pub principal: Option<Principal>,
    pub set_headers: Vec<(String, String)>,
    /// Headers that carried tokens not to be forwarded.
    pub remove_headers: Vec<String>,
    /// Every accepted token came from the verified-token cache (no signature checked): the
    /// caller counts it (`auth_decisions{decision="allowed",reason="cached"}`).
    pub cached: bool,
    /// The configured client whose API key let the request in (`auth.api_keys`).
    pub client: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AuthOutcome {
    Allowed(AuthResult),
    /// 401 with `WWW-Authenticate`, 403, or the JWKS-outage status.
    Denied(crate::status::GatewayError, DenyReason),
    /// Keys not yet available for these providers (first JWKS fetch, or an unknown-`kid`
    /// refetch): pause the request, call [`AuthState::due_fetches`], and call `authenticate`
    /// again when a fetch completes, or deny with the outage status
    /// ([`DenyReason::KeysUnavailable`]) after [`AuthConfig::initial_fetch_wait`].
    Pending {
        providers: Vec<usize>,
    },
}
