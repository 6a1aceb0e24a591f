//! Mutable per-VM auth state: each provider's keys (inline ones from the configuration, remote
//! ones as fetched), the remote fetch state, and the verified-token cache.

use std::sync::Arc;
use std::time::SystemTime;

use super::cache::TokenCache;
use super::config::{AuthConfig, KeySource};
use super::fetch::{parse_discovery, FetchKind, FetchRequest, RemoteState};
use super::keys::{parse_jwks, KeySet};

/// The result of a fetch reply, for the caller's metrics (`as_str`) and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// New keys are in use. `changed`: they differ from the previous ones. `skipped`: keys of
    /// the document that cannot verify anything, and why.
    Updated {
        keys: usize,
        changed: bool,
        skipped: Vec<String>,
    },
    /// Discovery found the JWKS; its fetch is due now.
    Discovered { jwks_uri: String },
    /// The fetch failed; the keys in use (if any) stay in use.
    Failed { error: String, kept_keys: bool },
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
        let (Some(p), Some(st)) = (
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
        let result = check_reply(status, body, cfg.max_jwks_bytes).and_then(|body| match kind {
            FetchKind::Discovery => parse_discovery(body, &p.issuer).map(Reply::Discovered),
            FetchKind::Jwks => parse_keys(body).map(Reply::Keys),
        });
        match result {
            Ok(Reply::Discovered((authority, path, jwks_uri))) => {
                remote.discovered(authority, path);
                FetchOutcome::Discovered { jwks_uri }
            }
            Ok(Reply::Keys((set, skipped))) => {
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
                }
            }
            Err(error) => {
                remote.failed(error.clone(), now);
                if kind == FetchKind::Jwks && remote.failures >= 3 {
                    remote.forget_target();
                }
                FetchOutcome::Failed {
                    error,
                    kept_keys: st.keys.is_some(),
                }
            }
        }
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
    Keys((KeySet, Vec<String>)),
}

fn check_reply(status: Option<u16>, body: &[u8], max: usize) -> Result<&[u8], String> {
    match status {
        None => Err("no reply (timeout or reset)".into()),
        Some(200) if body.len() > max => Err(format!("reply larger than {max} bytes")),
        Some(200) => Ok(body),
        Some(s) => Err(format!("HTTP status {s}")),
    }
}

/// A JWKS reply must bring at least one usable key; otherwise it is a failure.
fn parse_keys(body: &[u8]) -> Result<(KeySet, Vec<String>), String> {
    let (set, skipped) = parse_jwks(body)?;
    let skipped: Vec<String> = skipped
        .into_iter()
        .map(|s| format!("keys[{}]: {}", s.index, s.reason))
        .collect();
    if set.keys.is_empty() {
        return Err(format!("JWKS has no usable key ({})", skipped.join("; ")));
    }
    Ok((set, skipped))
}
