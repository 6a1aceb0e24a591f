//! Remote JWKS: where to fetch (an Envoy cluster and a URL), and when.
//!
//! The proxy does the HTTP; this module only decides. A fetch is due for the first keys, when
//! the cached keys expire (`cache_duration_seconds`), when a token names an unknown `kid` (at
//! most once per `refetch_min_interval_seconds`), and after a failure with exponential backoff.
//! A failed fetch never drops the keys in use. With `discovery`, the OIDC discovery document
//! is fetched first and its `jwks_uri` used from then on.

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::auth::input::RemoteJwksInput;
use crate::config_error::ConfigError;

const DEFAULT_TIMEOUT_MS: u64 = 5_000;
const DEFAULT_CACHE_SECONDS: u64 = 600;
const DEFAULT_REFETCH_MIN_SECONDS: u64 = 30;
/// Longest duration accepted anywhere in `remote` (keeps time arithmetic far from overflow).
const MAX_SECONDS: u64 = 366 * 24 * 3600;
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long past its timeout a fetch whose reply never came is still waited for.
const LOST_REPLY_GRACE: Duration = Duration::from_secs(5);
const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// A compiled `jwks.remote`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteConfig {
    pub cluster: String,
    /// The URI is `https://`: the cluster that reaches it needs TLS (`meshgate envoy`).
    pub tls: bool,
    /// `:authority` and `:path` of the JWKS, or of the discovery document with `discovery`.
    pub authority: String,
    pub path: String,
    pub discovery: bool,
    pub timeout: Duration,
    pub cache_duration: Duration,
    pub initial_wait: Duration,
    pub refetch_min_interval: Duration,
    /// `oct` keys of the fetched document are taken (`allow_symmetric_keys`).
    pub allow_symmetric_keys: bool,
}

/// What a fetch is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchKind {
    Jwks,
    Discovery,
}

impl FetchKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            FetchKind::Jwks => "jwks",
            FetchKind::Discovery => "discovery",
        }
    }
}

/// One HTTP call to make: `GET` `path` on `cluster` with `:authority` `authority`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub provider: usize,
    pub kind: FetchKind,
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub timeout: Duration,
}

impl FetchRequest {
    /// The request headers for the proxy's HTTP call.
    pub fn headers(&self) -> Vec<(String, String)> {
        vec![
            (":method".into(), "GET".into()),
            (":path".into(), self.path.clone()),
            (":authority".into(), self.authority.clone()),
            ("accept".into(), "application/json".into()),
        ]
    }
}

pub fn compile_remote(r: &RemoteJwksInput) -> Result<RemoteConfig, ConfigError> {
    if r.cluster.is_empty() {
        return Err(ConfigError::new("cluster", "must name an Envoy cluster"));
    }
    let (authority, mut path) = parse_url(&r.uri).map_err(|m| ConfigError::new("uri", m))?;
    if r.discovery && !path.contains("/.well-known/") {
        path = format!("{}{WELL_KNOWN}", path.trim_end_matches('/'));
    }
    let ms = |v: Option<u64>, default: u64, field: &str| match v {
        Some(0) => Err(ConfigError::new(field, "must be positive")),
        Some(n) if n > MAX_SECONDS * 1000 => Err(ConfigError::new(field, "is too long")),
        v => Ok(Duration::from_millis(v.unwrap_or(default))),
    };
    let timeout = ms(r.timeout_ms, DEFAULT_TIMEOUT_MS, "timeout_ms")?;
    let cache = ms(
        r.cache_duration_seconds.map(|s| s.saturating_mul(1000)),
        DEFAULT_CACHE_SECONDS * 1000,
        "cache_duration_seconds",
    )?;
    let refetch = ms(
        r.refetch_min_interval_seconds
            .map(|s| s.saturating_mul(1000)),
        DEFAULT_REFETCH_MIN_SECONDS * 1000,
        "refetch_min_interval_seconds",
    )?;
    // By default a request waits for the whole first fetch (and the discovery before it).
    let rounds = if r.discovery { 2 } else { 1 };
    let default_wait = timeout.saturating_mul(rounds) + Duration::from_millis(500);
    let initial_wait = ms(
        r.initial_fetch_wait_ms,
        default_wait.as_millis().try_into().unwrap_or(u64::MAX),
        "initial_fetch_wait_ms",
    )?;
    Ok(RemoteConfig {
        cluster: r.cluster.clone(),
        tls: r.uri.starts_with("https://"),
        authority,
        path,
        discovery: r.discovery,
        timeout,
        cache_duration: cache,
        initial_wait,
        refetch_min_interval: refetch,
        allow_symmetric_keys: r.allow_symmetric_keys,
    })
}

/// `https://host[:port]/path?query` -> (`host[:port]`, `/path?query`).
pub fn parse_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must be an http:// or https:// URL")?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (
            rest.get(..i).unwrap_or_default(),
            rest.get(i..).unwrap_or_default(),
        ),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains(['@', ' ']) || path.contains(['#', ' ']) {
        return Err("must be an absolute URL with a host (no user info or fragment)".into());
    }
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Ok((authority.to_string(), path))
}

/// Fetch state of one remote provider.
#[derive(Debug, Clone)]
pub struct RemoteState {
    rc: RemoteConfig,
    /// Where the JWKS is; `None` until discovery found it.
    target: Option<(String, String)>,
    in_flight: Option<(FetchKind, SystemTime)>,
    /// When the cached keys expire and a refresh is due.
    refresh_at: Option<SystemTime>,
    retry_at: Option<SystemTime>,
    /// Failures in a row (backoff).
    pub failures: u32,
    refetch_wanted: bool,
    /// When the last refetch for an unknown `kid` started: the rate limit counts from it, not
    /// from ordinary fetches, so keys rotated just after a refresh are still picked up.
    last_refetch_start: Option<SystemTime>,
    pub last_error: Option<String>,
    /// The periodic refresh (at cache expiry) is made elsewhere and its keys handed over
    /// ([`crate::auth::AuthState::adopt_keys`]): this state fetches only the first keys, for
    /// an unknown `kid`, and after its own failures (the native module's clock-driven keeper).
    refreshed_elsewhere: bool,
}

impl RemoteState {
    pub fn new(rc: &RemoteConfig) -> RemoteState {
        RemoteState {
            rc: rc.clone(),
            target: (!rc.discovery).then(|| (rc.authority.clone(), rc.path.clone())),
            in_flight: None,
            refresh_at: None,
            retry_at: None,
            failures: 0,
            refetch_wanted: false,
            last_refetch_start: None,
            last_error: None,
            refreshed_elsewhere: false,
        }
    }

    /// From now on the refresh at cache expiry is left to whoever hands keys over.
    pub fn refresh_elsewhere(&mut self) {
        self.refreshed_elsewhere = true;
    }

    /// The fetch due now, if any; marks it in flight. `has_keys`: the provider has keys.
    pub fn due(
        &mut self,
        provider: usize,
        has_keys: bool,
        now: SystemTime,
    ) -> Option<FetchRequest> {
        if let Some((_, started)) = self.in_flight {
            if now < later(started, self.rc.timeout + LOST_REPLY_GRACE) {
                return None;
            }
            // The reply never came: count it as a failure and go on.
            self.in_flight = None;
            self.failed("no reply".into(), now);
        }
        if self.retry_at.is_some_and(|t| now < t) {
            return None;
        }
        let (kind, authority, path) = match &self.target {
            None => (
                FetchKind::Discovery,
                self.rc.authority.clone(),
                self.rc.path.clone(),
            ),
            Some((a, p)) => {
                let refetch = self.refetch_wanted && self.refetch_allowed(now);
                let expired =
                    !self.refreshed_elsewhere && self.refresh_at.is_some_and(|t| now >= t);
                if has_keys && !refetch && !expired {
                    return None;
                }
                if refetch {
                    self.last_refetch_start = Some(now);
                }
                (FetchKind::Jwks, a.clone(), p.clone())
            }
        };
        self.in_flight = Some((kind, now));
        Some(FetchRequest {
            provider,
            kind,
            cluster: self.rc.cluster.clone(),
            authority,
            path,
            timeout: self.rc.timeout,
        })
    }

    /// Whether the provider's first fetch may still bring keys (requests wait rather than fail).
    pub fn first_fetch_pending(&self) -> bool {
        self.failures == 0
    }

    /// A token named an unknown `kid`: `true` when a JWKS fetch is (or will now be) on its way
    /// that the request may wait for, `false` when the rate limit (or a backoff) says no.
    pub fn request_refetch(&mut self, now: SystemTime) -> bool {
        if matches!(self.in_flight, Some((FetchKind::Jwks, _))) {
            return true;
        }
        if self.target.is_none() || self.retry_at.is_some_and(|t| now < t) {
            return false;
        }
        let allowed = self.refetch_allowed(now);
        if allowed {
            self.refetch_wanted = true;
        }
        allowed
    }

    fn refetch_allowed(&self, now: SystemTime) -> bool {
        self.last_refetch_start
            .is_none_or(|s| now >= later(s, self.rc.refetch_min_interval))
    }

    /// Whether a fetch of `kind` is in flight (a reply for it is awaited).
    pub fn in_flight(&self, kind: FetchKind) -> bool {
        matches!(self.in_flight, Some((k, _)) if k == kind)
    }

    /// A reply arrived for `kind`; `false` when no such fetch was in flight (a stale reply).
    pub fn take_in_flight(&mut self, kind: FetchKind) -> bool {
        match self.in_flight {
            Some((k, _)) if k == kind => {
                self.in_flight = None;
                true
            }
            _ => false,
        }
    }

    pub fn discovered(&mut self, authority: String, path: String) {
        self.target = Some((authority, path));
        self.failures = 0;
        self.retry_at = None;
        self.last_error = None;
    }

    pub fn keys_updated(&mut self, now: SystemTime) {
        self.refresh_at = Some(later(now, self.rc.cache_duration));
        self.failures = 0;
        self.retry_at = None;
        self.refetch_wanted = false;
        self.last_error = None;
    }

    /// Backoff 1 s, 2 s, 4 s ... up to a minute (or the cache duration, if shorter).
    pub fn failed(&mut self, error: String, now: SystemTime) {
        self.failures = self.failures.saturating_add(1);
        let exp = self.failures.saturating_sub(1).min(16);
        let backoff = Duration::from_secs(1u64 << exp)
            .min(MAX_BACKOFF)
            .min(self.rc.cache_duration);
        self.retry_at = Some(later(now, backoff));
        self.refetch_wanted = false;
        self.last_error = Some(error);
    }

    /// With discovery, a JWKS URI that keeps failing is looked up again.
    pub fn forget_target(&mut self) {
        if self.rc.discovery {
            self.target = None;
        }
    }
}

fn later(t: SystemTime, d: Duration) -> SystemTime {
    t.checked_add(d).unwrap_or(t)
}

#[derive(Deserialize)]
struct DiscoveryDoc {
    issuer: Option<String>,
    jwks_uri: String,
}

/// The JWKS location from an OIDC discovery document, whose `issuer` must be the provider's
/// (OpenID Connect Discovery §4.3).
pub fn parse_discovery(body: &[u8], issuer: &str) -> Result<(String, String, String), String> {
    let doc: DiscoveryDoc =
        serde_json::from_slice(body).map_err(|e| format!("bad discovery document: {e}"))?;
    if doc.issuer.as_deref().is_some_and(|i| i != issuer) {
        return Err("discovery document names another issuer".into());
    }
    let (authority, path) = parse_url(&doc.jwks_uri).map_err(|e| format!("jwks_uri {e}"))?;
    Ok((authority, path, doc.jwks_uri))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_authority_and_path() {
        assert_eq!(
            parse_url("https://idp.example.com:8443/keys?x=1").unwrap(),
            ("idp.example.com:8443".into(), "/keys?x=1".into())
        );
        assert_eq!(parse_url("http://idp").unwrap(), ("idp".into(), "/".into()));
        assert!(parse_url("ftp://idp/x").is_err());
        assert!(parse_url("https:///x").is_err());
        assert!(parse_url("https://u@idp/x").is_err());
    }

    #[test]
    fn discovery_path_gets_the_well_known_suffix() {
        let r = RemoteJwksInput {
            uri: "https://idp.example.com/realms/x/".into(),
            cluster: "idp".into(),
            discovery: true,
            ..Default::default()
        };
        let rc = compile_remote(&r).unwrap();
        assert_eq!(rc.path, "/realms/x/.well-known/openid-configuration");
        assert!(rc.initial_wait > rc.timeout * 2);
    }

    #[test]
    fn discovery_must_name_the_same_issuer() {
        let doc = br#"{"issuer":"https://a","jwks_uri":"https://a/keys"}"#;
        assert_eq!(parse_discovery(doc, "https://a").unwrap().1, "/keys");
        assert_eq!(
            parse_discovery(doc, "https://a").unwrap().2,
            "https://a/keys"
        );
        assert!(parse_discovery(doc, "https://b").is_err());
        assert!(parse_discovery(b"<html>", "https://a").is_err());
    }

    #[test]
    fn zero_durations_and_missing_cluster_are_refused() {
        let r = RemoteJwksInput {
            uri: "https://a/k".into(),
            cluster: "".into(),
            ..Default::default()
        };
        assert_eq!(compile_remote(&r).unwrap_err().field, "cluster");
        let r = RemoteJwksInput {
            uri: "https://a/k".into(),
            cluster: "c".into(),
            timeout_ms: Some(0),
            ..Default::default()
        };
        assert_eq!(compile_remote(&r).unwrap_err().field, "timeout_ms");
    }
}
