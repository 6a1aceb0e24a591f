//! API keys: the `api_key` requirement kind. A partner's key identifies a configured client
//! (its name, the operations it may call, its quota); the configuration holds only each key's
//! SHA-256, so a leaked configuration leaks no key.
//!
//! A key comes from a header (`x-api-key` by default) or, where configured, a query parameter
//! (hidden in logged URLs and never a message field, like a token parameter). It is taken out
//! of the upstream request; the upstream gets the client's name in
//! [`ApiKeys::client_header`] instead (incoming copies are stripped from every request).
//!
//! Looking a key up by its hash leaks nothing useful through timing: an attacker who learns
//! that a guess's SHA-256 shares a prefix with a stored hash learns nothing about the key.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::extract::{find_token, header_name, TokenSource};
use super::Request;
use crate::config_error::ConfigError;

pub const DEFAULT_KEY_HEADER: &str = "x-api-key";
pub const DEFAULT_CLIENT_HEADER: &str = "x-meshgate-client";
/// A presented key longer than this is not looked up (no configured key is that long).
pub const MAX_KEY_BYTES: usize = 512;

/// `auth.api_keys` as people write it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeysInput {
    /// Header the key comes in. Default `x-api-key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_header: Option<String>,
    /// Query parameter the key may also come in (none by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_param: Option<String>,
    /// Header that carries the client's name upstream. Default `x-meshgate-client`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_header: Option<String>,
    pub clients: Vec<ApiClientInput>,
    /// Limits across a fleet: Envoy's `ratelimit` filter asks a Rate Limit Service (v3 RLS)
    /// about each client's request (rendered by `meshgate envoy`; the filter ignores it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_rate_limit: Option<GlobalRateLimitInput>,
}

/// `auth.api_keys.global_rate_limit`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalRateLimitInput {
    /// The RLS's Envoy cluster. Default `meshgate_rls`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// `HOST:PORT` of the RLS (gRPC): `meshgate envoy` renders the cluster from it unless
    /// `--cluster` names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The RLS domain. Default `meshgate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// When the RLS cannot answer: `allow` (fail open, the default) or `deny` (fail closed:
    /// 503 UNAVAILABLE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_mode: Option<String>,
    /// How long a request waits for the RLS. Default 200.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// `global_rate_limit`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalRateLimit {
    pub cluster: String,
    /// Host and port of the RLS, when given.
    pub address: Option<(String, u16)>,
    pub domain: String,
    /// Fail closed when the RLS cannot answer.
    pub deny_on_failure: bool,
    pub timeout_ms: u64,
}

impl GlobalRateLimit {
    pub fn compile(g: &GlobalRateLimitInput) -> Result<GlobalRateLimit, ConfigError> {
        let deny_on_failure = match g.failure_mode.as_deref() {
            None | Some("allow") => false,
            Some("deny") => true,
            Some(other) => {
                return Err(ConfigError::new(
                    "failure_mode",
                    format!("unknown value {other:?} (allow, deny)"),
                ))
            }
        };
        let address = g
            .address
            .as_deref()
            .map(|a| {
                a.rsplit_once(':')
                    .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
                    .filter(|(h, p)| !h.is_empty() && *p > 0)
                    .ok_or_else(|| ConfigError::new("address", "write HOST:PORT"))
            })
            .transpose()?;
        let timeout_ms = g.timeout_ms.unwrap_or(200);
        if timeout_ms == 0 {
            return Err(ConfigError::new("timeout_ms", "must be positive"));
        }
        let cluster = g.cluster.clone().unwrap_or_else(|| "meshgate_rls".into());
        let domain = g.domain.clone().unwrap_or_else(|| "meshgate".into());
        if cluster.is_empty() || domain.is_empty() {
            return Err(ConfigError::new("", "cluster and domain must not be empty"));
        }
        Ok(GlobalRateLimit {
            cluster,
            address,
            domain,
            deny_on_failure,
            timeout_ms,
        })
    }
}

/// One client: what `meshgate apikey <name>` prints.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiClientInput {
    /// `[A-Za-z0-9_-]+`: a metric label value and a header value.
    pub name: String,
    /// Hex SHA-256 of the key (64 characters).
    pub key_sha256: String,
    /// Operations the client may call: full names (`pkg.Service.Method`), `pkg.Service.*`,
    /// or `*`.
    pub operations: Vec<String>,
    /// Its rate limit (rendered by `meshgate envoy` as a local rate limit per operation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaInput>,
    /// A revoked key is refused (401) like an unknown one.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub revoked: bool,
}

/// `requests` per `unit` (`second`, `minute`, `hour`, `day`), as Envoy's rate limit
/// service writes quotas.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct QuotaInput {
    pub requests: u32,
    pub unit: String,
}

/// A quota, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub requests: u32,
    pub unit: QuotaUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaUnit {
    Second,
    Minute,
    Hour,
    Day,
}

impl QuotaUnit {
    pub fn parse(s: &str) -> Option<QuotaUnit> {
        match s {
            "second" => Some(QuotaUnit::Second),
            "minute" => Some(QuotaUnit::Minute),
            "hour" => Some(QuotaUnit::Hour),
            "day" => Some(QuotaUnit::Day),
            _ => None,
        }
    }

    pub fn seconds(self) -> u64 {
        match self {
            QuotaUnit::Second => 1,
            QuotaUnit::Minute => 60,
            QuotaUnit::Hour => 3600,
            QuotaUnit::Day => 86400,
        }
    }

    /// Envoy's `RateLimitUnit` name.
    pub fn envoy_name(self) -> &'static str {
        match self {
            QuotaUnit::Second => "SECOND",
            QuotaUnit::Minute => "MINUTE",
            QuotaUnit::Hour => "HOUR",
            QuotaUnit::Day => "DAY",
        }
    }
}

/// One compiled client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiClient {
    pub name: String,
    operations: Vec<String>,
    pub quota: Option<Quota>,
    pub revoked: bool,
}

impl ApiClient {
    /// Whether the client may call `operation` (`None`: not known, so only `*` allows it).
    pub fn may_call(&self, operation: Option<&str>) -> bool {
        self.operations
            .iter()
            .any(|p| match (p.as_str(), operation) {
                ("*", _) => true,
                (p, Some(op)) => match p.strip_suffix('*') {
                    Some(prefix) => op.starts_with(prefix),
                    None => p == op,
                },
                (_, None) => false,
            })
    }

    /// The patterns as written (`pkg.Service.Method`, `pkg.Service.*`, `*`).
    pub fn operations(&self) -> &[String] {
        &self.operations
    }
}

/// The compiled `auth.api_keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeys {
    /// The header, then the parameter (if any): searched in that order.
    pub sources: Vec<TokenSource>,
    pub client_header: String,
    pub clients: Vec<ApiClient>,
    by_hash: HashMap<[u8; 32], usize>,
    /// Client name -> index in `clients` (the side-call quota looks clients up by name).
    by_name: HashMap<String, usize>,
    pub global_rate_limit: Option<GlobalRateLimit>,
}

/// What the key in a request says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyVerdict {
    /// The client (index), and the source the key came from.
    Ok(usize, usize),
    Missing,
    Unknown,
    Revoked,
    /// A known key on an operation its client may not call.
    Forbidden,
}

impl ApiKeys {
    pub fn compile(input: &ApiKeysInput) -> Result<ApiKeys, ConfigError> {
        let header = header_name(input.from_header.as_deref().unwrap_or(DEFAULT_KEY_HEADER))
            .map_err(|e| e.within("from_header"))?;
        let mut sources = vec![TokenSource::Header {
            name: header,
            prefix: String::new(),
        }];
        if let Some(p) = &input.from_param {
            if p.is_empty() || p.contains(['&', '=', '#', '?']) {
                return Err(ConfigError::new(
                    "from_param",
                    "must be a query parameter name",
                ));
            }
            sources.push(TokenSource::Query(p.clone()));
        }
        let client_header = header_name(
            input
                .client_header
                .as_deref()
                .unwrap_or(DEFAULT_CLIENT_HEADER),
        )
        .map_err(|e| e.within("client_header"))?;
        let mut clients = Vec::with_capacity(input.clients.len());
        let mut by_hash = HashMap::new();
        let mut by_name = HashMap::new();
        for (i, c) in input.clients.iter().enumerate() {
            let at = format!("clients[{i}]");
            let (client, hash) = compile_client(c).map_err(|e| e.within(&at))?;
            if by_name.insert(client.name.clone(), i).is_some() {
                return Err(ConfigError::new("name", "duplicate client name").within(&at));
            }
            if by_hash.insert(hash, i).is_some() {
                return Err(
                    ConfigError::new("key_sha256", "the same key as another client").within(&at),
                );
            }
            clients.push(client);
        }
        let global_rate_limit = input
            .global_rate_limit
            .as_ref()
            .map(GlobalRateLimit::compile)
            .transpose()
            .map_err(|e| e.within("global_rate_limit"))?;
        Ok(ApiKeys {
            sources,
            client_header,
            clients,
            by_hash,
            by_name,
            global_rate_limit,
        })
    }

    /// The key in `request` checked for `operation`.
    pub fn check(&self, request: &Request<'_>, operation: Option<&str>) -> KeyVerdict {
        let Some(found) = find_token(&self.sources, request) else {
            return KeyVerdict::Missing;
        };
        if found.token.len() > MAX_KEY_BYTES {
            return KeyVerdict::Unknown;
        }
        let hash: [u8; 32] = Sha256::digest(found.token.as_bytes()).into();
        let Some((i, client)) = self
            .by_hash
            .get(&hash)
            .and_then(|i| Some((*i, self.clients.get(*i)?)))
        else {
            return KeyVerdict::Unknown;
        };
        if client.revoked {
            KeyVerdict::Revoked
        } else if !client.may_call(operation) {
            KeyVerdict::Forbidden
        } else {
            KeyVerdict::Ok(i, found.source)
        }
    }

    /// The key's query parameter, if one is configured (hidden in logs, never a message field).
    pub fn param(&self) -> Option<&str> {
        self.sources.iter().find_map(|s| match s {
            TokenSource::Query(p) => Some(p.as_str()),
            _ => None,
        })
    }

    pub fn client(&self, i: usize) -> Option<&ApiClient> {
        self.clients.get(i)
    }

    /// The client named `name` (an index lookup, not a search).
    pub fn client_named(&self, name: &str) -> Option<&ApiClient> {
        self.by_name.get(name).and_then(|i| self.clients.get(*i))
    }
}

/// A client name is a metric label value and a header value: `[A-Za-z0-9_-]{1,64}`.
pub fn valid_client_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn compile_client(c: &ApiClientInput) -> Result<(ApiClient, [u8; 32]), ConfigError> {
    if !valid_client_name(&c.name) {
        return Err(ConfigError::new(
            "name",
            format!("{:?} is not 1-64 of [A-Za-z0-9_-]", c.name),
        ));
    }
    let hash = parse_sha256(&c.key_sha256).ok_or_else(|| {
        ConfigError::new(
            "key_sha256",
            "must be 64 hex digits (the SHA-256 of the key; `meshgate apikey` prints it)",
        )
    })?;
    if c.operations.is_empty() {
        return Err(ConfigError::new(
            "operations",
            "must list what the client may call (`*` for everything)",
        ));
    }
    for (i, op) in c.operations.iter().enumerate() {
        let inner_star = op.trim_end_matches('*').contains('*') || op.ends_with("**");
        if op.is_empty() || inner_star || (op.ends_with('*') && op != "*" && !op.ends_with(".*")) {
            return Err(ConfigError::new(
                format!("operations[{i}]"),
                "write pkg.Service.Method, pkg.Service.* or *",
            ));
        }
    }
    let quota = c
        .quota
        .as_ref()
        .map(compile_quota)
        .transpose()
        .map_err(|e| e.within("quota"))?;
    Ok((
        ApiClient {
            name: c.name.clone(),
            operations: c.operations.clone(),
            quota,
            revoked: c.revoked,
        },
        hash,
    ))
}

pub fn compile_quota(q: &QuotaInput) -> Result<Quota, ConfigError> {
    if q.requests == 0 {
        return Err(ConfigError::new("requests", "must be positive"));
    }
    let unit = QuotaUnit::parse(&q.unit).ok_or_else(|| {
        ConfigError::new(
            "unit",
            format!("unknown unit {:?} (second, minute, hour, day)", q.unit),
        )
    })?;
    Ok(Quota {
        requests: q.requests,
        unit,
    })
}

fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, slot) in out.iter_mut().enumerate() {
        let pair = hex.get(i * 2..i * 2 + 2)?;
        *slot = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// Lower-case hex SHA-256 of `key`: the `key_sha256` of its entry.
pub fn key_sha256(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
#[path = "apikey_tests.rs"]
mod tests;
