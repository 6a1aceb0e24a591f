//! The clients' quotas on requests that never reach Envoy's rate limit filters: a body-less
//! transcoded call (a `GET`) is answered by meshgate through a side call, so the
//! `local_ratelimit` filter after meshgate never sees it. meshgate keeps the same token bucket
//! for such requests itself, in the proxy's shared data (one bucket per client and operation
//! for every VM of the Envoy, updated with compare-and-swap), and answers a request past it
//! exactly as Envoy's filter and reply mapper do: 429, a `google.rpc.Status` of code 8 with a
//! `QuotaFailure`, `Retry-After` and the draft RateLimit headers.
//!
//! The bucket is Envoy's: `requests` tokens, refilled continuously at `requests` per `unit`;
//! a request takes one. It is a second bucket beside the filter's: an operation reachable both
//! ways (a body-less and a body-carrying binding) gets the quota on each.

use super::{Filter, Phase};
use crate::auth::apikey::Quota;
use crate::host::{Host, Level};
use crate::status::{AnyProto, Code, GatewayError};

/// Tries at a compare-and-swap before giving up (another VM wrote in between each time).
const CAS_TRIES: usize = 8;
const QUOTA_FAILURE: &str = "type.googleapis.com/google.rpc.QuotaFailure";

/// A bucket's state in shared data: its level, in 1/`window_ms` tokens, and when it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    level: u64,
    at_ms: u64,
}

impl Bucket {
    fn decode(bytes: &[u8]) -> Option<Bucket> {
        let level = u64::from_le_bytes(bytes.get(0..8)?.try_into().ok()?);
        let at_ms = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
        Some(Bucket { level, at_ms })
    }

    fn encode(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        let (a, b) = out.split_at_mut(8);
        a.copy_from_slice(&self.level.to_le_bytes());
        b.copy_from_slice(&self.at_ms.to_le_bytes());
        out
    }
}

/// The verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Take {
    pub allowed: bool,
    /// Whole tokens left after this request.
    pub remaining: u64,
    /// Milliseconds until the next token.
    pub next_ms: u64,
}

/// Take a token from the bucket `state` (None: a new, full one) at `now_ms`. One token is
/// `window` units of level; the bucket holds `requests` tokens and gains `requests` units a
/// millisecond, so it refills whole in one window.
fn take(state: Option<Bucket>, now_ms: u64, quota: Quota) -> (Take, Bucket) {
    let n = u64::from(quota.requests);
    let window = quota.unit.seconds().saturating_mul(1000);
    let full = n.saturating_mul(window);
    let level = match state {
        None => full,
        Some(b) => {
            let gained = now_ms.saturating_sub(b.at_ms).saturating_mul(n);
            b.level.saturating_add(gained).min(full)
        }
    };
    let allowed = level >= window && n > 0;
    let level = if allowed { level - window } else { level };
    let missing = window.saturating_sub(level % window.max(1));
    let next_ms = if n == 0 { window } else { missing.div_ceil(n) };
    let verdict = Take {
        allowed,
        remaining: level / window.max(1),
        next_ms,
    };
    (
        verdict,
        Bucket {
            level,
            at_ms: now_ms,
        },
    )
}

/// The shared-data key of a client's bucket for an operation.
fn key(client: &str, operation: &str) -> String {
    format!("meshgate.quota/{client}/{operation}")
}

/// Take a token from the shared bucket, retrying when another VM wrote in between. A host
/// that keeps no shared data (or keeps refusing) lets the request go: the limiter failing is
/// not the API failing (the same choice as the global limit's default).
fn take_shared(host: &mut dyn Host, key: &str, now_ms: u64, quota: Quota) -> Option<Take> {
    for _ in 0..CAS_TRIES {
        let (state, cas) = match host.shared_data(key) {
            Some((bytes, cas)) => (Bucket::decode(&bytes), cas),
            None => (None, 0),
        };
        let (verdict, next) = take(state, now_ms, quota);
        if host.set_shared_data(key, &next.encode(), cas).is_ok() {
            return Some(verdict);
        }
    }
    host.log(
        Level::Warn,
        &format!("meshgate: quota bucket {key} not updated: request allowed"),
    );
    None
}

/// `google.rpc.QuotaFailure` with one violation, binary (for protobuf clients).
#[derive(Clone, PartialEq, prost::Message)]
struct QuotaFailure {
    #[prost(message, repeated, tag = "1")]
    violations: Vec<Violation>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Violation {
    #[prost(string, tag = "1")]
    subject: String,
    #[prost(string, tag = "2")]
    description: String,
}

/// What a limiter says about a refused request: the draft RateLimit headers' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limited {
    pub limit: Option<u32>,
    pub remaining: u64,
    /// Milliseconds until a request may pass again, when known (`Retry-After`).
    pub reset_ms: Option<u64>,
}

/// The reply to a request past its client's quota: what Envoy's filter and the rendered reply
/// mapper give a request through the router.
pub(super) fn exhausted(client: &str, operation: &str, l: Limited) -> GatewayError {
    let subject = format!("client:{client}");
    let description = format!("the client's quota of operation {operation} is exhausted");
    let mut err = GatewayError::new(Code::ResourceExhausted, "quota exhausted: try again later");
    err.details.push(serde_json::json!({
        "@type": QUOTA_FAILURE,
        "violations": [{"subject": subject, "description": description}],
    }));
    let bin = QuotaFailure {
        violations: vec![Violation {
            subject,
            description,
        }],
    };
    err.details_bin.push(AnyProto {
        type_url: QUOTA_FAILURE.into(),
        value: prost::Message::encode_to_vec(&bin),
    });
    if let Some(limit) = l.limit {
        err.headers
            .push(("x-ratelimit-limit".into(), limit.to_string()));
        err.headers
            .push(("x-ratelimit-remaining".into(), l.remaining.to_string()));
    }
    if let Some(ms) = l.reset_ms {
        let reset = ms.div_ceil(1000).max(1).to_string();
        err.headers
            .push(("x-ratelimit-reset".into(), reset.clone()));
        err.headers.push(("retry-after".into(), reset));
    }
    err
}

impl Filter {
    /// Before a side call: the client's quota for this operation, kept by meshgate because
    /// the rate limit filters after it never see the request. None: the call may go. A side
    /// call whose request headers already went through the filter chain
    /// (`upstream_calls: side_call` with a body) was counted there and is not counted again.
    pub(super) fn side_call_quota(&mut self, host: &mut dyn Host) -> Option<GatewayError> {
        if matches!(
            self.phase,
            Phase::AwaitBody {
                side_call_headers: Some(_)
            }
        ) {
            return None;
        }
        let vm = self.vm.clone();
        let op = vm.config.operations.get(self.op?)?;
        let keys = vm.config.auth.api_keys.as_ref()?;
        // The client by name from the map built with the configuration (not a search).
        let quota = keys.client_named(self.client.as_deref()?)?.quota?;
        // The callback's one clock read (the bucket's refill needs no finer time).
        let now_ms = self
            .callback_now(host)
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|d| u64::try_from(d.as_millis()).ok())?;
        let client_name = self.client.as_deref()?;
        let verdict = take_shared(host, &key(client_name, &op.name), now_ms, quota)?;
        let limited = Limited {
            limit: Some(quota.requests),
            remaining: verdict.remaining,
            reset_ms: Some(verdict.next_ms),
        };
        (!verdict.allowed).then(|| exhausted(client_name, &op.name, limited))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::apikey::QuotaUnit;

    fn five_a_second() -> Quota {
        Quota {
            requests: 5,
            unit: QuotaUnit::Second,
        }
    }

    #[test]
    fn a_burst_gets_the_quota_then_refusals_and_a_token_comes_back_in_time() {
        let q = five_a_second();
        let mut state = None;
        let mut allowed = 0;
        let mut last = None;
        for _ in 0..12 {
            let (t, next) = take(state, 1_000, q);
            state = Some(next);
            allowed += usize::from(t.allowed);
            last = Some(t);
        }
        assert_eq!(allowed, 5);
        let last = last.unwrap();
        assert!(!last.allowed);
        assert_eq!((last.remaining, last.next_ms), (0, 200));
        // 199 ms later: still nothing; 200 ms later: one token.
        assert!(!take(state, 1_199, q).0.allowed);
        let (t, _) = take(state, 1_200, q);
        assert!(t.allowed && t.remaining == 0, "{t:?}");
        // A whole window later the bucket is full again (never more than full).
        let (t, _) = take(state, 60_000, q);
        assert_eq!((t.allowed, t.remaining), (true, 4));
    }

    #[test]
    fn state_round_trips_and_garbage_is_a_new_bucket() {
        let b = Bucket {
            level: 12345,
            at_ms: 678,
        };
        assert_eq!(Bucket::decode(&b.encode()), Some(b));
        assert_eq!(Bucket::decode(b"short"), None);
    }

    #[test]
    fn the_reply_is_status_8_with_quota_failure_and_rate_limit_headers() {
        let l = Limited {
            limit: Some(5),
            remaining: 0,
            reset_ms: Some(1_500),
        };
        let err = exhausted("acme", "pkg.S.M", l);
        let (status, headers, body) = err.to_response(crate::status::BodyFormat::Json);
        assert_eq!(status, 429);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], 8);
        assert_eq!(v["details"][0]["@type"], QUOTA_FAILURE);
        assert_eq!(v["details"][0]["violations"][0]["subject"], "client:acme");
        let h = |n: &str| crate::host::find_header(&headers, n).map(str::to_string);
        assert_eq!(h("retry-after").as_deref(), Some("2"));
        assert_eq!(h("x-ratelimit-limit").as_deref(), Some("5"));
        assert_eq!(h("x-ratelimit-remaining").as_deref(), Some("0"));
        let (_, _, bin) = err.to_response(crate::status::BodyFormat::Protobuf);
        let s: crate::status::RpcStatus = prost::Message::decode(bin.as_slice()).unwrap();
        let qf: QuotaFailure = prost::Message::decode(s.details[0].value.as_slice()).unwrap();
        assert_eq!(qf.violations[0].subject, "client:acme");
    }
}
