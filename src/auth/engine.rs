//! `authenticate`: a requirement evaluated over a request, one provider verdict at a time.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::apikey::KeyVerdict;
use super::cache::{TokenCache, Verified};
use super::config::AuthConfig;
use super::deny::DenyReason;
use super::extract::{find_token, removal};
use super::requirement::Requirement;
use super::state::AuthState;
use super::verify::{check_claims, check_signature, parse};
use super::{AuthOutcome, AuthResult, Request};

/// One provider's view of the request.
#[derive(Clone)]
enum Verdict {
    /// Valid, from the provider's source number `.1`; `.2`: found in the verified-token cache.
    Ok(Arc<Verified>, usize, bool),
    Missing,
    Failed(DenyReason),
    /// Keys are on their way (first fetch, or a refetch for an unknown `kid`).
    Pending,
}

/// One accepting provider: index, result, source, whether the result came from the cache.
type Accepted = (usize, Arc<Verified>, usize, bool);

/// What let a request in: the providers that accepted a token, and the API key's client
/// (index) and source, if a key took part.
#[derive(Default)]
struct Allow {
    jwt: Vec<Accepted>,
    client: Option<(usize, usize)>,
}

impl Allow {
    fn jwt(list: Vec<Accepted>) -> Allow {
        Allow {
            jwt: list,
            client: None,
        }
    }

    fn extend(&mut self, other: Allow) {
        self.jwt.extend(other.jwt);
        self.client = self.client.or(other.client);
    }
}

/// A requirement's result.
enum Eval {
    Allowed(Allow),
    Denied(DenyReason),
    Pending(Vec<usize>),
}

struct Ctx<'c, 's, 'r> {
    cfg: &'c AuthConfig,
    state: &'s mut AuthState,
    request: &'r Request<'r>,
    now: u64,
    now_time: SystemTime,
    /// Each provider is checked at most once per request, however often the requirement
    /// names it.
    memo: Vec<Option<Verdict>>,
    /// The operation called (what an API key's client may call is checked against it).
    operation: Option<&'r str>,
}

/// Authenticate `request` against `req`. `Pending` means keys are being fetched: pause the
/// request, call [`AuthState::due_fetches`], and call this again when a fetch completes (or
/// deny with the outage status after `initial_fetch_wait`).
pub fn authenticate(
    cfg: &AuthConfig,
    state: &mut AuthState,
    req: &Requirement,
    request: &Request<'_>,
    now: SystemTime,
) -> AuthOutcome {
    authenticate_operation(cfg, state, req, request, None, now)
}

/// [`authenticate`] for a call of `operation` (`pkg.Service.Method`): an API key is accepted
/// only for the operations its client may call (without an operation, only a client allowed
/// `*`).
pub fn authenticate_operation(
    cfg: &AuthConfig,
    state: &mut AuthState,
    req: &Requirement,
    request: &Request<'_>,
    operation: Option<&str>,
    now: SystemTime,
) -> AuthOutcome {
    let now_time = now;
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut ctx = Ctx {
        cfg,
        state,
        request,
        now,
        now_time,
        memo: vec![None; cfg.providers.len()],
        operation,
    };
    match eval(&mut ctx, req) {
        Eval::Allowed(allow) => AuthOutcome::Allowed(result(cfg, request, &allow)),
        Eval::Denied(reason) => cfg.deny(reason),
        Eval::Pending(mut providers) => {
            providers.sort_unstable();
            providers.dedup();
            AuthOutcome::Pending { providers }
        }
    }
}

fn eval(ctx: &mut Ctx<'_, '_, '_>, req: &Requirement) -> Eval {
    match req {
        Requirement::Provider(i) => match verdict(ctx, *i) {
            Verdict::Ok(v, source, cached) => {
                Eval::Allowed(Allow::jwt(vec![(*i, v, source, cached)]))
            }
            Verdict::Missing => Eval::Denied(DenyReason::Missing),
            Verdict::Failed(r) => Eval::Denied(r),
            Verdict::Pending => Eval::Pending(vec![*i]),
        },
        Requirement::Any(list) => any(ctx, list),
        Requirement::All(list) => all(ctx, list),
        Requirement::AllowMissing => {
            let every = every_provider(ctx);
            match any(ctx, &every) {
                Eval::Denied(DenyReason::Missing) => Eval::Allowed(Allow::default()),
                other => other,
            }
        }
        Requirement::AllowMissingOrFailed => {
            let every = every_provider(ctx);
            match any(ctx, &every) {
                Eval::Allowed(allow) => Eval::Allowed(allow),
                // Never refused, never held: a failed or not yet verifiable token is no token.
                Eval::Denied(_) | Eval::Pending(_) => Eval::Allowed(Allow::default()),
            }
        }
        Requirement::None => Eval::Allowed(Allow::default()),
        Requirement::Deny => Eval::Denied(DenyReason::NoRule),
        Requirement::ApiKey => api_key(ctx),
        Requirement::ClientCert(rule) => match rule.check(ctx.request.client_cert) {
            Ok(()) => Eval::Allowed(Allow::default()),
            Err(d) => Eval::Denied(d.into()),
        },
    }
}

fn api_key(ctx: &Ctx<'_, '_, '_>) -> Eval {
    let Some(keys) = &ctx.cfg.api_keys else {
        return Eval::Denied(DenyReason::ApiKeyMissing);
    };
    match keys.check(ctx.request, ctx.operation) {
        KeyVerdict::Ok(client, source) => Eval::Allowed(Allow {
            jwt: Vec::new(),
            client: Some((client, source)),
        }),
        KeyVerdict::Missing => Eval::Denied(DenyReason::ApiKeyMissing),
        KeyVerdict::Unknown => Eval::Denied(DenyReason::ApiKeyUnknown),
        KeyVerdict::Revoked => Eval::Denied(DenyReason::ApiKeyRevoked),
        KeyVerdict::Forbidden => Eval::Denied(DenyReason::ApiKeyForbidden),
    }
}

fn every_provider(ctx: &Ctx<'_, '_, '_>) -> Vec<Requirement> {
    (0..ctx.cfg.providers.len())
        .map(Requirement::Provider)
        .collect()
}

fn any(ctx: &mut Ctx<'_, '_, '_>, list: &[Requirement]) -> Eval {
    let mut best: Option<DenyReason> = None;
    let mut pending = Vec::new();
    for r in list {
        match eval(ctx, r) {
            Eval::Allowed(a) => return Eval::Allowed(a),
            Eval::Pending(p) => pending.extend(p),
            Eval::Denied(d) => {
                if best.is_none_or(|b| d.rank() > b.rank()) {
                    best = Some(d);
                }
            }
        }
    }
    if pending.is_empty() {
        Eval::Denied(best.unwrap_or(DenyReason::Missing))
    } else {
        Eval::Pending(pending)
    }
}

fn all(ctx: &mut Ctx<'_, '_, '_>, list: &[Requirement]) -> Eval {
    let mut allowed = Allow::default();
    let mut pending = Vec::new();
    for r in list {
        match eval(ctx, r) {
            Eval::Allowed(a) => allowed.extend(a),
            Eval::Pending(p) => pending.extend(p),
            Eval::Denied(d) => return Eval::Denied(d),
        }
    }
    if pending.is_empty() {
        Eval::Allowed(allowed)
    } else {
        Eval::Pending(pending)
    }
}

fn verdict(ctx: &mut Ctx<'_, '_, '_>, i: usize) -> Verdict {
    if let Some(Some(v)) = ctx.memo.get(i) {
        return v.clone();
    }
    let v = check_provider(ctx, i);
    if let Some(slot) = ctx.memo.get_mut(i) {
        *slot = Some(v.clone());
    }
    v
}

fn check_provider(ctx: &mut Ctx<'_, '_, '_>, i: usize) -> Verdict {
    let (Some(p), Some(st)) = (ctx.cfg.providers.get(i), ctx.state.providers.get_mut(i)) else {
        return Verdict::Failed(DenyReason::KeysUnavailable);
    };
    let Some(found) = find_token(&p.sources, ctx.request) else {
        return Verdict::Missing;
    };
    // Refused before any decoding: a 1 MiB token costs a length check.
    if found.token.len() > ctx.cfg.max_token_bytes {
        return Verdict::Failed(DenyReason::TooLarge);
    }
    let key = TokenCache::key(i, &found.token);
    if let Some(v) = ctx.state.cache.get(&key, st.generation, ctx.now) {
        return Verdict::Ok(v, found.source, true);
    }
    let parsed = match parse(&found.token, &p.issuer) {
        Ok(parsed) => parsed,
        Err(r) => return Verdict::Failed(r),
    };
    let Some(keys) = st.keys.clone() else {
        let waiting = st.remote.as_ref().is_some_and(|r| r.first_fetch_pending());
        return if waiting {
            Verdict::Pending
        } else {
            Verdict::Failed(DenyReason::KeysUnavailable)
        };
    };
    match check_signature(&parsed, &keys) {
        Ok(()) => {}
        Err(DenyReason::UnknownKid) => {
            let now_time = ctx.now_time;
            let wait = st
                .remote
                .as_mut()
                .is_some_and(|r| r.request_refetch(now_time));
            return if wait {
                Verdict::Pending
            } else {
                Verdict::Failed(DenyReason::UnknownKid)
            };
        }
        Err(r) => return Verdict::Failed(r),
    }
    let generation = st.generation;
    match check_claims(p, parsed, ctx.now) {
        Ok(v) => {
            let v = Arc::new(v);
            ctx.state
                .cache
                .insert(key, v.clone(), p.clock_skew, generation);
            Verdict::Ok(v, found.source, false)
        }
        Err(r) => Verdict::Failed(r),
    }
}

/// Principal of the first accepting provider; every accepting provider's headers; the tokens
/// taken out of the upstream request unless the provider forwards them; the API key's client
/// in its header, the key taken out.
fn result(cfg: &AuthConfig, request: &Request<'_>, allow: &Allow) -> AuthResult {
    let list = &allow.jwt;
    let mut out = AuthResult {
        principal: list.first().map(|(_, v, _, _)| v.principal.clone()),
        set_headers: Vec::new(),
        remove_headers: Vec::new(),
        cached: !list.is_empty() && list.iter().all(|(_, _, _, cached)| *cached),
        client: None,
    };
    let keys = cfg.api_keys.as_ref();
    if let Some((keys, (client, source))) = keys.zip(allow.client) {
        if let Some(c) = keys.client(client) {
            out.client = Some(c.name.clone());
            out.set_headers
                .push((keys.client_header.clone(), c.name.clone()));
        }
        if let Some(src) = keys.sources.get(source) {
            removal(src, request, &mut out.remove_headers, &mut out.set_headers);
        }
    }
    for (i, v, source, _) in list {
        out.set_headers.extend(v.set_headers.iter().cloned());
        let provider = cfg.providers.get(*i);
        if let Some(src) = provider
            .filter(|p| !p.forward)
            .and_then(|p| p.sources.get(*source))
        {
            removal(src, request, &mut out.remove_headers, &mut out.set_headers);
        }
    }
    out.set_headers.dedup();
    out
}
