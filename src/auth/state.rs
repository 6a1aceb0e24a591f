//! Mutable per-VM auth state: each provider's keys (inline ones from the configuration, remote
//! ones as fetched), the remote fetch state, and the verified-token cache.

use std::sync::Arc;
use std::time::SystemTime;

use super::cache::TokenCache;
use super::config::{AuthConfig, KeySource};
use super::fetch::{parse_discovery, FetchKind, FetchRequest, RemoteState};
use super::keys::{parse_jwks, JwksError, KeyRules, KeySet};

/// The result of a fetch reply, for the caller's metrics (`as_str`) and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// New keys are in use. `changed`: they differ from the previous ones. `skipped`: keys of
    /// the document that cannot verify anything (or may not: `oct` keys without
    /// `allow_symmetric_keys`), and why. `symmetric`: `oct` keys taken because the provider
    /// allows them (worth a warning: the document is fetched, so who can read it can sign).
    Updated {
        keys: usize,
        changed: bool,
        skipped: Vec<String>,
        symmetric: usize,
    },
    /// Discovery found the JWKS; its fetch is due now.
    Discovered { jwks_uri: String },
    /// The fetch failed; the keys in use (if any) stay in use.
    Failed { error: String, kept_keys: bool },
    /// The reply broke a bound (`limits.max_jwks_bytes`, checked before the body is read;
    /// `limits.max_jwks_keys`): not used at all; the keys in use (if any) stay in use.
    Refused { error: String, kept_keys: bool },
    /// A reply nobody waits for (unknown provider, or no such fetch in flight).
    Ignored,
}

impl FetchOutcome {
    pub fn is_success(&self) -> bool {
        matches!(
            self,
            FetchOutcome::Updated { .. } | FetchOutcome::Discovered { .. }
        )
    }

    /// Metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            FetchOutcome::Updated { .. } | FetchOutcome::Discovered { .. } => "success",
            FetchOutcome::Failed { .. } => "failure",
            FetchOutcome::Refused { .. } => "refused",
            FetchOutcome::Ignored => "ignored",
        }
    }
}

impl std::fmt::Display for FetchOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchOutcome::Updated {
                keys,
                changed,
                skipped,
                ..
            } => {
                write!(f, "{keys} keys in use (changed: {changed})")?;
                if !skipped.is_empty() {
                    write!(f, "; skipped {}", skipped.join("; "))?;
                }
                Ok(())
            }
            FetchOutcome::Discovered { jwks_uri } => write!(f, "discovered jwks_uri {jwks_uri}"),
            FetchOutcome::Failed { error, kept_keys } => {
                write!(f, "fetch failed: {error} (previous keys kept: {kept_keys})")
            }
            FetchOutcome::Refused { error, kept_keys } => {
                write!(f, "JWKS refused: {error} (previous keys kept: {kept_keys})")
            }
            FetchOutcome::Ignored => f.write_str("reply ignored (no such fetch in flight)"),
        }
    }
}

pub(super) struct ProviderState {
    pub keys: Option<Arc<KeySet>>,
    /// Bumped when the keys change; cached verifications of older keys are not used.
    pub generation: u64,
    pub remote: Option<RemoteState>,
}

/// Mutable per-VM state: key sets per provider, remote JWKS fetch state, the token cache.
pub struct AuthState {
    pub(super) providers: Vec<ProviderState>,
    pub(super) cache: TokenCache,
}

impl AuthState {
    /// Every provider has keys (each remote JWKS has been fetched once): the health endpoint's
    /// `?jwks=1` readiness.
    pub fn all_keys_loaded(&self) -> bool {
        self.providers.iter().all(|p| p.keys.is_some())
    }

    pub fn new(cfg: &AuthConfig) -> AuthState {
        let providers = cfg
            .providers
            .iter()
            .map(|p| match &p.keys {
                KeySource::Inline(set) => ProviderState {
                    keys: Some(set.clone()),
                    generation: 0,
                    remote: None,
                },
                KeySource::Remote(rc) => ProviderState {
                    keys: None,
                    generation: 0,
                    remote: Some(RemoteState::new(rc)),
                },
            })
            .collect();
        let max = if cfg.cache_enabled {
            cfg.cache_max_entries
        } else {
            0
        };
        AuthState {
            providers,
            cache: TokenCache::new(max),
        }
    }

    /// Fetches due now: first fetch, refresh at cache expiry, unknown-`kid` refetch (rate
    /// limited), retry after failure (backoff). Each is marked in flight: report its reply (or
    /// its failure to dispatch, as `status: None`) to [`AuthState::on_fetch_response`].
    /// Call on every tick and after `authenticate` returned `Pending`.
    pub fn due_fetches(&mut self, now: SystemTime) -> Vec<FetchRequest> {
        let mut out = Vec::new();
        for (i, st) in self.providers.iter_mut().enumerate() {
            if let Some(remote) = st.remote.as_mut() {
                out.extend(remote.due(i, st.keys.is_some(), now));
            }
        }
        out
    }

    /// A fetch reply as the proxy reports it: `body_size` bytes, read by `read_body` only when
    /// they are within `limits.max_jwks_bytes` (a larger reply is refused without being copied
    /// into the VM, whose memory never shrinks). Otherwise as [`AuthState::on_fetch_response`].
    #[allow(clippy::too_many_arguments)]
    pub fn on_fetch_reply(
        &mut self,
        cfg: &AuthConfig,
        provider: usize,
        kind: FetchKind,
        status: Option<u16>,
        body_size: usize,
        read_body: impl FnOnce(usize) -> Vec<u8>,
        now: SystemTime,
    ) -> FetchOutcome {
        if status == Some(200) && body_size > cfg.max_jwks_bytes {
            return self.finish(
                cfg,
                provider,
                kind,
                Err(JwksError::Refused(format!(
                    "{}; not read",
                    too_large(body_size, cfg.max_jwks_bytes)
                ))),
                now,
            );
        }
        let body = if status == Some(200) {
            read_body(body_size)
        } else {
            Vec::new()
        };
        self.on_fetch_response(cfg, provider, kind, status, &body, now)
    }

    /// A fetch reply (`status: None`: timeout, reset, or the call could not be dispatched).
    /// On failure the keys in use are kept.
    pub fn on_fetch_response(
        &mut self,
        cfg: &AuthConfig,
        provider: usize,
        kind: FetchKind,
        status: Option<u16>,
        body: &[u8],
        now: SystemTime,
    ) -> FetchOutcome {
        let (Some(p), Some(st)) = (cfg.providers.get(provider), self.providers.get(provider))
        else {
            return FetchOutcome::Ignored;
        };
        let allow_symmetric = match &p.keys {
            KeySource::Remote(rc) => rc.allow_symmetric_keys,
            KeySource::Inline(_) => return FetchOutcome::Ignored,
        };
        if !st.remote.as_ref().is_some_and(|r| r.in_flight(kind)) {
            return FetchOutcome::Ignored;
        }
        let result = check_reply(status, body, cfg.max_jwks_bytes).and_then(|body| match kind {
            FetchKind::Discovery => parse_discovery(body, &p.issuer)
                .map(Reply::Discovered)
                .map_err(JwksError::Invalid),
            FetchKind::Jwks => {
                let rules = KeyRules {
                    max_keys: cfg.max_jwks_keys,
                    allow_symmetric,
                    tables: &cfg.tables,
                    previous: st.keys.as_deref(),
                };
                parse_keys(body, &rules).map(Reply::Keys)
            }
        });
        self.finish(cfg, provider, kind, result, now)
    }

    /// The fetch in flight is over, with `result`.
    fn finish(
        &mut self,
        cfg: &AuthConfig,
        provider: usize,
        kind: FetchKind,
        result: Result<Reply, JwksError>,
        now: SystemTime,
    ) -> FetchOutcome {
        let (Some(_), Some(st)) = (
            cfg.providers.get(provider),
            self.providers.get_mut(provider),
        ) else {
            return FetchOutcome::Ignored;
        };
        let Some(remote) = st.remote.as_mut() else {
            return FetchOutcome::Ignored;
        };
        if !remote.take_in_flight(kind) {
            return FetchOutcome::Ignored;
        }
        match result {
            Ok(Reply::Discovered((authority, path, jwks_uri))) => {
                remote.discovered(authority, path);
                FetchOutcome::Discovered { jwks_uri }
            }
            Ok(Reply::Keys((set, skipped, symmetric))) => {
                remote.keys_updated(now);
                let changed = st.keys.as_ref().is_none_or(|old| old.digest != set.digest);
                if changed {
                    st.generation = st.generation.wrapping_add(1);
                }
                let keys = set.keys.len();
                st.keys = Some(Arc::new(set));
                FetchOutcome::Updated {
                    keys,
                    changed,
                    skipped,
                    symmetric,
                }
            }
            Err(error) => {
                let refused = matches!(error, JwksError::Refused(_));
                let error = error.to_string();
                remote.failed(error.clone(), now);
                if kind == FetchKind::Jwks && remote.failures >= 3 {
                    remote.forget_target();
                }
                let kept_keys = st.keys.is_some();
                if refused {
                    FetchOutcome::Refused { error, kept_keys }
                } else {
                    FetchOutcome::Failed { error, kept_keys }
                }
            }
        }
    }

    /// Each provider's keys in use (`None`: none yet), to hand over to other roots.
    pub fn key_sets(&self) -> Vec<Option<Arc<KeySet>>> {
        self.providers.iter().map(|p| p.keys.clone()).collect()
    }

    /// The periodic refresh of every remote provider is made by another root, whose keys
    /// arrive through [`AuthState::adopt_keys`]; this state still fetches the first keys, for
    /// an unknown `kid` and after its own failures.
    pub fn refresh_elsewhere(&mut self) {
        for st in &mut self.providers {
            if let Some(remote) = st.remote.as_mut() {
                remote.refresh_elsewhere();
            }
        }
    }

    /// Use `set`, fetched and checked by another root of the same configuration, as a remote
    /// provider's keys (as if this state had fetched it): tokens verified with other keys are
    /// no longer taken from the cache. `false` when nothing changed (the same set, an unknown
    /// or inline provider).
    pub fn adopt_keys(&mut self, provider: usize, set: Arc<KeySet>) -> bool {
        let Some(st) = self.providers.get_mut(provider) else {
            return false;
        };
        if st.remote.is_none() || st.keys.as_ref().is_some_and(|k| Arc::ptr_eq(k, &set)) {
            return false;
        }
        if st.keys.as_ref().is_none_or(|old| old.digest != set.digest) {
            st.generation = st.generation.wrapping_add(1);
        }
        st.keys = Some(set);
        true
    }

    /// The last fetch error of a provider (for logs and status pages).
    pub fn last_fetch_error(&self, provider: usize) -> Option<&str> {
        self.providers
            .get(provider)?
            .remote
            .as_ref()?
            .last_error
            .as_deref()
    }

    /// Whether the provider has keys to verify with.
    pub fn has_keys(&self, provider: usize) -> bool {
        self.providers
            .get(provider)
            .is_some_and(|p| p.keys.is_some())
    }

    /// Number of verified tokens cached.
    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }
}

enum Reply {
    Discovered((String, String, String)),
    /// The keys, the skipped ones (why), how many `oct` keys were taken.
    Keys((KeySet, Vec<String>, usize)),
}

fn too_large(size: usize, max: usize) -> String {
    format!("reply of {size} bytes is larger than limits.max_jwks_bytes ({max})")
}

fn check_reply(status: Option<u16>, body: &[u8], max: usize) -> Result<&[u8], JwksError> {
    match status {
        None => Err(JwksError::Invalid("no reply (timeout or reset)".into())),
        Some(200) if body.len() > max => Err(JwksError::Refused(too_large(body.len(), max))),
        Some(200) => Ok(body),
        Some(s) => Err(JwksError::Invalid(format!("HTTP status {s}"))),
    }
}

/// A JWKS reply must bring at least one usable key; otherwise it is a failure.
fn parse_keys(
    body: &[u8],
    rules: &KeyRules<'_>,
) -> Result<(KeySet, Vec<String>, usize), JwksError> {
    let (set, skipped) = parse_jwks(body, rules)?;
    let skipped: Vec<String> = skipped
        .into_iter()
        .map(|s| format!("keys[{}]: {}", s.index, s.reason))
        .collect();
    if set.keys.is_empty() {
        return Err(JwksError::Invalid(format!(
            "JWKS has no usable key ({})",
            skipped.join("; ")
        )));
    }
    let symmetric = set.keys.iter().filter(|k| k.is_symmetric()).count();
    Ok((set, skipped, symmetric))
}
