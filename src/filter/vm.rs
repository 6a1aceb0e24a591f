//! What one VM shares between its requests: the compiled configuration, the auth state (keys,
//! token cache, fetch schedule) and the metric ids defined so far.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::auth::{AuthState, FetchOutcome};
use crate::config::Config;
use crate::host::{Host, Level, MetricId, MetricKind};
use crate::observe::RequestMetric;

/// (operation index, id of the policy whose objective judged the request (SLO counters only),
/// metric).
type RequestMetricKey = (usize, Option<usize>, RequestMetric);

pub struct Vm {
    pub config: Config,
    pub auth: RefCell<AuthState>,
    /// meshgate's own finished spans, waiting for the root's export (`filter::span`).
    pub spans: RefCell<crate::observe::span_export::SpanQueue>,
    metrics: RefCell<HashMap<String, MetricId>>,
    /// Request metrics found without building their names.
    request_metrics: RefCell<HashMap<RequestMetricKey, MetricId>>,
}

impl Vm {
    pub fn new(config: Config) -> Vm {
        let auth = RefCell::new(AuthState::new(&config.auth));
        Vm {
            config,
            auth,
            spans: RefCell::default(),
            metrics: RefCell::new(HashMap::new()),
            request_metrics: RefCell::new(HashMap::new()),
        }
    }

    /// The id of a metric, defined on first use (names are bounded: operations x outcomes).
    fn metric(&self, host: &dyn Host, kind: MetricKind, name: &str) -> Option<MetricId> {
        if let Some(id) = self.metrics.borrow().get(name) {
            return Some(*id);
        }
        match host.define_metric(kind, name) {
            Ok(id) => {
                self.metrics.borrow_mut().insert(name.to_string(), id);
                Some(id)
            }
            Err(e) => {
                host.log(Level::Warn, &format!("meshgate: metric {name}: {e}"));
                None
            }
        }
    }

    pub fn count(&self, host: &dyn Host, name: &str) {
        self.add(host, name, 1);
    }

    /// Add `value` to a counter; 0 still defines it (so a ratio has both series).
    pub fn add(&self, host: &dyn Host, name: &str, value: u64) {
        if let Some(id) = self.metric(host, MetricKind::Counter, name) {
            if value > 0 {
                host.increment_metric(id, i64::try_from(value).unwrap_or(i64::MAX));
            }
        }
    }

    /// Metrics and a log line for a finished JWKS (or discovery) fetch.
    pub fn note_fetch(&self, host: &dyn Host, provider: usize, outcome: &FetchOutcome) {
        let name = self
            .config
            .auth
            .providers
            .get(provider)
            .map(|p| p.name.as_str())
            .unwrap_or("unknown");
        let names = &self.config.observe.names;
        match outcome {
            FetchOutcome::Updated {
                keys,
                skipped,
                symmetric,
                ..
            } => {
                self.count(host, &names.jwks_fetches(name, true));
                let note = if skipped.is_empty() {
                    String::new()
                } else {
                    format!("; skipped: {}", skipped.join(", "))
                };
                host.log(
                    Level::Info,
                    &format!("meshgate: provider `{name}`: {keys} keys{note}"),
                );
                if *symmetric > 0 {
                    host.log(
                        Level::Warn,
                        &format!(
                            "meshgate: provider `{name}`: {symmetric} symmetric (oct) keys taken \
                             from a fetched JWKS (allow_symmetric_keys): whoever can read that \
                             document can sign tokens"
                        ),
                    );
                }
            }
            FetchOutcome::Discovered { jwks_uri } => {
                host.log(
                    Level::Info,
                    &format!("meshgate: provider `{name}`: jwks_uri {jwks_uri}"),
                );
            }
            FetchOutcome::Failed { error, kept_keys }
            | FetchOutcome::Refused { error, kept_keys } => {
                self.count(host, &names.jwks_fetch_result(name, outcome.as_str()));
                let kept = if *kept_keys {
                    "; the cached keys stay in use"
                } else {
                    ""
                };
                let what = if matches!(outcome, FetchOutcome::Refused { .. }) {
                    "JWKS refused"
                } else {
                    "JWKS fetch failed"
                };
                host.log(
                    Level::Warn,
                    &format!("meshgate: provider `{name}`: {what}: {error}{kept}"),
                );
            }
            _ => {}
        }
    }

    /// One of the metric changes of a finished request of operation `op` (index in the
    /// configuration; `op_name` names the stat the first time). A counter update of 0 still
    /// defines the counter, so it exists from the first request.
    pub fn apply(
        &self,
        host: &dyn Host,
        op: usize,
        op_name: &str,
        slo_policy: Option<&crate::config::Policy>,
        metric: RequestMetric,
        value: u64,
    ) {
        let policy = slo_policy.filter(|_| metric.by_policy());
        let key = (op, policy.map(|p| p.id), metric);
        let cached = self.request_metrics.borrow().get(&key).copied();
        let id = match cached {
            Some(id) => id,
            None => {
                let name = self.config.observe.names.request_metric_name(
                    op_name,
                    policy.map(|p| p.name.as_str()),
                    metric,
                );
                let Some(id) = self.metric(host, metric.kind(), &name) else {
                    return;
                };
                self.request_metrics.borrow_mut().insert(key, id);
                id
            }
        };
        match metric.kind() {
            MetricKind::Histogram => host.record_metric(id, value),
            _ if value > 0 => host.increment_metric(id, i64::try_from(value).unwrap_or(i64::MAX)),
            _ => {}
        }
    }

    /// Set a gauge (defined on first use).
    pub fn set_gauge(&self, host: &dyn Host, name: &str, value: u64) {
        if let Some(id) = self.metric(host, MetricKind::Gauge, name) {
            host.record_metric(id, value);
        }
    }

    pub fn record(&self, host: &dyn Host, name: &str, value: u64) {
        if let Some(id) = self.metric(host, MetricKind::Histogram, name) {
            host.record_metric(id, value);
        }
    }
}
