//! The gateway's health endpoint: `GET /healthz` is answered by meshgate itself, so a `200`
//! says the filter is configured and running (a refused configuration never answers it);
//! `GET /healthz?jwks=1` is `200` only once every provider has keys (the first fetch of each
//! remote JWKS is done), `503` with a `google.rpc.Status` before. docs/operations.md, "Health".
//! Its answers are counted and recorded under their own operation label,
//! [`HEALTH_OPERATION`], outside every objective.

use super::{Filter, Phase};
use crate::host::{Action, Host, Level};
use crate::observe::{MetricNames, Outcome, RequestMetric, Verdict, HEALTH_OPERATION};
use crate::operation::split_path;

/// The path meshgate answers (reserved: it is not routed).
pub const HEALTH_PATH: &str = "/healthz";

const SERVING: &str = r#"{"status":"SERVING"}"#;
const KEYS_PENDING: &str =
    r#"{"code":14,"details":[],"message":"not ready: remote JWKS not loaded yet"}"#;

impl Filter {
    /// The request is the health endpoint's (answered by [`Filter::health`] before anything
    /// else looks at it).
    pub(super) fn is_health_request(&self) -> bool {
        split_path(&self.req.path).0 == HEALTH_PATH
            && matches!(self.req.method.as_str(), "GET" | "HEAD")
    }

    /// `Some`: the request was the health endpoint's, answered.
    pub(super) fn health(&mut self, host: &mut dyn Host) -> Option<Action> {
        if !self.is_health_request() {
            return None;
        }
        let query = split_path(&self.req.path).1;
        let wants_keys = query.is_some_and(|q| q.split('&').any(|p| p == "jwks=1"));
        let ready = !wants_keys || self.vm.auth.borrow().all_keys_loaded();
        let (status, body) = if ready {
            (200, SERVING)
        } else {
            (503, KEYS_PENDING)
        };
        let headers = [
            ("content-type".to_string(), "application/json".to_string()),
            ("cache-control".to_string(), "no-store".to_string()),
        ];
        if let Err(e) = host.send_response(status, &headers, body.as_bytes()) {
            host.log(Level::Warn, &format!("meshgate: health reply: {e}"));
        }
        self.resp.status = Some(status);
        self.phase = Phase::Replied { error: None };
        Some(Action::Pause)
    }
}

/// A health answer in the metrics: the request counter under [`HEALTH_OPERATION`], nothing
/// else (no SLO counters, no latency histogram).
pub(super) fn count_health(vm: &super::Vm, host: &dyn Host, outcome: &Outcome) {
    let names = &vm.config.observe.names;
    let outside = (Verdict::NotApplicable, Verdict::NotApplicable);
    for (metric, value) in MetricNames::request_metrics(outcome, outside) {
        if let RequestMetric::Requests(label) = metric {
            vm.add(host, &names.requests(HEALTH_OPERATION, label), value);
        }
    }
}
