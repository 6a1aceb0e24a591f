//! `auth` configuration -> [`AuthConfig`]: validated and compiled once per VM, with inline key
//! sets parsed here. A bad field is refused with its path (`auth.providers[1].issuer: ...`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::input::{AuthInput, AuthLimits, ProviderInput, RequirementInput};
use crate::config_error::ConfigError;

use super::apikey::ApiKeys;
use super::claims::{compile_claim_headers, ClaimHeader};
use super::deny::{deny_error, DenyReason};
use super::extract::{
    compile_sources, header_name, query_without_params, redact_params, TokenSource,
};
use super::fetch::{compile_remote, RemoteConfig};
use super::keys::{
    parse_jwks, KeyRules, KeySet, TableBudget, DEFAULT_MAX_KEYS, DEFAULT_TABLE_BYTES,
};
use super::requirement::Requirement;
use super::AuthOutcome;

const DEFAULT_SKEW_SECONDS: u64 = 60;
const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;
const DEFAULT_MAX_JWKS_BYTES: usize = 256 * 1024;
const DEFAULT_UNAVAILABLE_STATUS: u16 = 503;
const DEFAULT_REALM: &str = "meshgate";

/// Where a provider's keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Parsed at configuration time.
    Inline(Arc<KeySet>),
    Remote(RemoteConfig),
}

/// One compiled provider (an issuer and the rules its tokens must meet).
#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    pub subjects: Vec<String>,
    pub require_expiration: bool,
    pub max_lifetime: Option<u64>,
    pub clock_skew: u64,
    pub sources: Vec<TokenSource>,
    pub forward: bool,
    pub claim_headers: Vec<ClaimHeader>,
    pub payload_header: Option<String>,
    pub keys: KeySource,
}

/// The compiled, immutable auth configuration of a VM.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub providers: Vec<Provider>,
    by_name: BTreeMap<String, usize>,
    default: Requirement,
    pub unavailable_status: u16,
    pub realm: String,
    pub cache_enabled: bool,
    pub cache_max_entries: usize,
    pub max_token_bytes: usize,
    pub max_jwks_bytes: usize,
    /// Most entries in one provider's JWKS (`limits.max_jwks_keys`).
    pub max_jwks_keys: usize,
    /// The VM's memory for ECDSA tables (`limits.max_key_table_bytes`), shared by all keys.
    pub tables: Arc<TableBudget>,
    /// Every provider's `from_params` and the API key's parameter, once each: hidden in logged
    /// URLs ([`Self::redact_path`]).
    token_params: Vec<String>,
    /// `auth.api_keys`: the clients the `api_key` requirement knows.
    pub api_keys: Option<ApiKeys>,
}

impl AuthConfig {
    /// Errors name the field under `auth` (or `limits`).
    pub fn compile(input: &AuthInput, limits: &AuthLimits) -> Result<AuthConfig, ConfigError> {
        Self::compile_inner(input, limits).map_err(|e| {
            if e.field.starts_with("limits") {
                e
            } else {
                e.within("auth")
            }
        })
    }

    fn compile_inner(input: &AuthInput, limits: &AuthLimits) -> Result<AuthConfig, ConfigError> {
        let max_jwks_bytes = positive(
            limits.max_jwks_bytes,
            DEFAULT_MAX_JWKS_BYTES,
            "limits.max_jwks_bytes",
        )?;
        let max_token_bytes = positive(
            limits.max_token_bytes,
            DEFAULT_MAX_TOKEN_BYTES,
            "limits.max_token_bytes",
        )?;
        let max_jwks_keys = positive(
            limits.max_jwks_keys,
            DEFAULT_MAX_KEYS,
            "limits.max_jwks_keys",
        )?;
        let tables = TableBudget::new(limits.max_key_table_bytes.unwrap_or(DEFAULT_TABLE_BYTES));
        let bounds = InlineBounds {
            max_bytes: max_jwks_bytes,
            max_keys: max_jwks_keys,
            tables: &tables,
        };
        let mut providers = Vec::with_capacity(input.providers.len());
        let mut by_name = BTreeMap::new();
        for (i, p) in input.providers.iter().enumerate() {
            let at = format!("providers[{i}]");
            let provider = compile_provider(p, &bounds).map_err(|e| e.within(&at))?;
            if by_name.insert(provider.name.clone(), i).is_some() {
                return Err(ConfigError::new("name", "duplicate provider name").within(&at));
            }
            providers.push(provider);
        }
        let unavailable_status = input
            .jwks_unavailable_status
            .unwrap_or(DEFAULT_UNAVAILABLE_STATUS);
        if !(400..=599).contains(&unavailable_status) {
            return Err(ConfigError::new(
                "jwks_unavailable_status",
                "must be a 4xx or 5xx status",
            ));
        }
        if input.cache.enabled && input.cache.max_entries == 0 {
            return Err(ConfigError::new(
                "cache.max_entries",
                "must be positive when the cache is enabled",
            ));
        }
        let mut cfg = AuthConfig {
            providers,
            by_name,
            default: Requirement::Deny,
            unavailable_status,
            realm: input
                .realm
                .clone()
                .unwrap_or_else(|| DEFAULT_REALM.to_string()),
            cache_enabled: input.cache.enabled,
            cache_max_entries: input.cache.max_entries,
            max_token_bytes,
            max_jwks_bytes,
            max_jwks_keys,
            tables: tables.clone(),
            token_params: Vec::new(),
            api_keys: input
                .api_keys
                .as_ref()
                .map(ApiKeys::compile)
                .transpose()
                .map_err(|e| e.within("api_keys"))?,
        };
        for p in &cfg.providers {
            for s in &p.sources {
                if let TokenSource::Query(name) = s {
                    if !cfg.token_params.contains(name) {
                        cfg.token_params.push(name.clone());
                    }
                }
            }
        }
        if let Some(param) = cfg.api_keys.as_ref().and_then(|k| k.param()) {
            if !cfg.token_params.iter().any(|p| p == param) {
                cfg.token_params.push(param.to_string());
            }
        }
        if let Some(d) = &input.default {
            cfg.default = cfg
                .compile_requirement(d)
                .map_err(|e| e.within("default"))?;
        }
        Ok(cfg)
    }

    /// A requirement written in the configuration; an unknown provider name is an error (the
    /// caller adds the field path above `auth`).
    pub fn compile_requirement(&self, r: &RequirementInput) -> Result<Requirement, ConfigError> {
        let req = Requirement::compile(r, &|name| self.by_name.get(name).copied())?;
        if self.api_keys.is_none() && req.uses_api_key() {
            return Err(ConfigError::new(
                "",
                "`api_key` needs clients in auth.api_keys",
            ));
        }
        Ok(req)
    }

    /// For operations without a rule of their own: `auth.default`, or deny (a new operation is
    /// never public by accident).
    pub fn default_requirement(&self) -> &Requirement {
        &self.default
    }

    /// Every header the auth layer sets upstream (claim headers, payload headers): the caller
    /// strips incoming copies from every request, authenticated or not.
    pub fn headers_to_strip(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        out.extend(self.api_keys.iter().map(|k| k.client_header.clone()));
        for p in &self.providers {
            let names = p
                .claim_headers
                .iter()
                .map(|c| &c.header)
                .chain(&p.payload_header);
            for n in names {
                if !out.contains(n) {
                    out.push(n.clone());
                }
            }
        }
        out
    }

    /// `:path` as a log line or an access record may show it: the value of every token query
    /// parameter (any provider's `from_params`) is `REDACTED`, whether the token was accepted,
    /// refused, or forwarded upstream (`forward: true`).
    pub fn redact_path<'a>(&self, path: &'a str) -> Cow<'a, str> {
        redact_params(path, &self.token_params)
    }

    /// The query string a transcoded request's message is built from: without the token
    /// parameters (any provider's `from_params`), which are credentials, never message fields,
    /// whether the token was taken out of the upstream request or not (`forward: true`, a token
    /// that failed under `allow_missing_or_failed`).
    pub fn query_without_tokens<'a>(&self, query: &'a str) -> Cow<'a, str> {
        query_without_params(query, &self.token_params)
    }

    /// How long a request may wait for `provider`'s first keys (zero for inline keys).
    pub fn initial_fetch_wait(&self, provider: usize) -> Duration {
        match self.providers.get(provider).map(|p| &p.keys) {
            Some(KeySource::Remote(r)) => r.initial_wait,
            _ => Duration::ZERO,
        }
    }

    /// The denial for `reason` under this configuration (realm, outage status): what the
    /// caller answers when a `Pending` request waited `initial_fetch_wait` in vain
    /// ([`DenyReason::KeysUnavailable`]).
    pub fn deny(&self, reason: DenyReason) -> AuthOutcome {
        AuthOutcome::Denied(
            deny_error(reason, &self.realm, self.unavailable_status),
            reason,
        )
    }

    /// Whether any provider fetches its keys: the caller then needs a periodic tick (about a
    /// second) to call [`super::AuthState::due_fetches`] for refreshes and retries.
    pub fn needs_ticks(&self) -> bool {
        self.providers
            .iter()
            .any(|p| matches!(p.keys, KeySource::Remote(_)))
    }

    pub fn provider_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }
}

fn positive(v: Option<usize>, default: usize, field: &str) -> Result<usize, ConfigError> {
    match v {
        Some(0) => Err(ConfigError::new(field, "must be positive")),
        Some(n) => Ok(n),
        None => Ok(default),
    }
}

/// What inline key sets are checked against.
struct InlineBounds<'a> {
    max_bytes: usize,
    max_keys: usize,
    tables: &'a Arc<TableBudget>,
}

fn compile_provider(p: &ProviderInput, bounds: &InlineBounds<'_>) -> Result<Provider, ConfigError> {
    if p.name.is_empty() {
        return Err(ConfigError::new("name", "must not be empty"));
    }
    if p.issuer.is_empty() {
        return Err(ConfigError::new("issuer", "must not be empty"));
    }
    if p.max_lifetime_seconds == Some(0) {
        return Err(ConfigError::new("max_lifetime_seconds", "must be positive"));
    }
    let payload_header = p
        .forward_payload_header
        .as_deref()
        .map(header_name)
        .transpose()
        .map_err(|e| ConfigError::new("forward_payload_header", e.message))?;
    Ok(Provider {
        name: p.name.clone(),
        issuer: p.issuer.clone(),
        audiences: p.audiences.clone(),
        subjects: p.subjects.clone(),
        require_expiration: p.require_expiration,
        max_lifetime: p.max_lifetime_seconds,
        clock_skew: p.clock_skew_seconds.unwrap_or(DEFAULT_SKEW_SECONDS),
        sources: compile_sources(p)?,
        forward: p.forward,
        claim_headers: compile_claim_headers(&p.claim_to_headers)?,
        payload_header,
        keys: compile_keys(p, bounds).map_err(|e| e.within("jwks"))?,
    })
}

fn compile_keys(p: &ProviderInput, bounds: &InlineBounds<'_>) -> Result<KeySource, ConfigError> {
    match (&p.jwks.inline, &p.jwks.remote) {
        (Some(text), None) => inline_keys(text, bounds).map(KeySource::Inline),
        (None, Some(remote)) => compile_remote(remote)
            .map(KeySource::Remote)
            .map_err(|e| e.within("remote")),
        (Some(_), Some(_)) => Err(ConfigError::new(
            "",
            "set one of inline and remote, not both",
        )),
        (None, None) => Err(ConfigError::new("", "set inline or remote keys")),
    }
}

/// Inline keys must all be usable: a key that cannot verify anything is a configuration mistake.
/// `oct` keys are allowed here: the configuration is as secret as the keys in it.
fn inline_keys(text: &str, bounds: &InlineBounds<'_>) -> Result<Arc<KeySet>, ConfigError> {
    if text.len() > bounds.max_bytes {
        return Err(ConfigError::new(
            "inline",
            "larger than limits.max_jwks_bytes",
        ));
    }
    let rules = KeyRules {
        max_keys: bounds.max_keys,
        allow_symmetric: true,
        tables: bounds.tables,
        previous: None,
    };
    let (set, skipped) = parse_jwks(text.as_bytes(), &rules)
        .map_err(|e| ConfigError::new("inline", e.to_string()))?;
    if let Some(s) = skipped.first() {
        return Err(ConfigError::new(
            format!("inline.keys[{}]", s.index),
            s.reason.clone(),
        ));
    }
    if set.keys.is_empty() {
        return Err(ConfigError::new("inline", "has no keys"));
    }
    Ok(Arc::new(set))
}
