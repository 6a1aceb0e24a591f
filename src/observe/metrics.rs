//! The one place where metric names are declared: the stat names the filter defines, the
//! `stats_tags` that turn parts of them into Prometheus labels, and the histogram buckets.
//!
//! Envoy shows a stat a wasm filter defines as `wasmcustom.<name>` in /stats, and in
//! /stats/prometheus without the `wasmcustom.` namespace, after tag extraction, with every
//! character outside `[a-zA-Z0-9_]` turned into `_`. A tag is a regex run over the full name:
//! its first capture group is cut out of the name, its second is the label value.
//!
//! Layout of a name: `<prefix>_<family>` then `.<key>.<value>` pairs. Every value but the last
//! is a word from a small fixed vocabulary (`\w+`: outcome, slo, decision, reason, result); the
//! last is free-form and may contain dots (an operation like
//! `meshgate.demo.v1.Payments.GetPayment`, or a provider name). Because each family's layout is
//! fixed, every tag regex is anchored at the start and names its families, so a dot inside an
//! operation can never be mistaken for a delimiter, and after extraction each family has one
//! clean name:
//! `wasmcustom.meshgate_requests_total.outcome.ok.operation.meshgate.demo.v1.Payments.GetPayment`
//! becomes `meshgate_requests_total{outcome="ok",operation="meshgate.demo.v1.Payments.GetPayment"}`.
//! The regexes keep to what both RE2 and std::regex (ECMAScript) accept: no lookaround, no
//! named groups, no lazy quantifiers.
//!
//! Checked against a real Envoy 1.40 (2026-11-25): a probe filter defining these names, with
//! `cli::envoy::stats_config_for` in the bootstrap, showed in /stats/prometheus exactly
//! `meshgate_requests_total{outcome="ok",operation="meshgate.demo.v1.Payments.GetPayment"}`,
//! `meshgate_slo_good_events_total{operation=...,slo="availability"}`,
//! `meshgate_request_duration_ms_bucket{operation=...,le="300"}` (the threshold bucket), and
//! likewise for every family; no `envoy_` prefix. Envoy's histograms are approximate
//! (log-linear bins), which is one reason the SLO is counted with exact good/total counters
//! and the histogram is for dashboards.

use super::slo::Slo;
use crate::config_error::ConfigError;

/// The namespace Envoy puts in front of every stat a wasm filter defines.
pub const WASM_NAMESPACE: &str = "wasmcustom";

/// Envoy's default histogram buckets (ms here), used when the configuration names none.
pub const DEFAULT_BUCKETS_MS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// An objective kind: the `slo` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SloKind {
    Availability,
    Latency,
}

impl SloKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SloKind::Availability => "availability",
            SloKind::Latency => "latency",
        }
    }
}

/// The `decision` label of the auth counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthDecision {
    Allowed,
    Denied,
}

impl AuthDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthDecision::Allowed => "allowed",
            AuthDecision::Denied => "denied",
        }
    }
}

/// A metric family: one Prometheus metric name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Counter `{outcome, operation}`.
    Requests,
    /// Counter `{slo, policy, operation}`: requests that count for the objective.
    SloEvents,
    /// Counter `{slo, policy, operation}`: those that met it.
    SloGoodEvents,
    /// Histogram `{operation}`, milliseconds.
    RequestDuration,
    /// Counter `{decision, reason, operation}`.
    AuthDecisions,
    /// Counter `{result, provider}`: JWKS fetches.
    JwksFetches,
    /// Counter `{client, outcome, operation}`: requests of configured API-key clients only
    /// (bounded label values).
    ClientRequests,
}

impl Family {
    pub const ALL: [Family; 7] = [
        Family::Requests,
        Family::SloEvents,
        Family::SloGoodEvents,
        Family::RequestDuration,
        Family::AuthDecisions,
        Family::JwksFetches,
        Family::ClientRequests,
    ];

    fn suffix(self) -> &'static str {
        match self {
            Family::Requests => "requests_total",
            Family::SloEvents => "slo_events_total",
            Family::SloGoodEvents => "slo_good_events_total",
            Family::RequestDuration => "request_duration_ms",
            Family::AuthDecisions => "auth_decisions_total",
            Family::JwksFetches => "jwks_fetches_total",
            Family::ClientRequests => "client_requests_total",
        }
    }

    /// The fixed-vocabulary keys before the free-form one, and the free-form key.
    fn keys(self) -> (&'static [&'static str], &'static str) {
        match self {
            Family::Requests => (&["outcome"], "operation"),
            Family::SloEvents | Family::SloGoodEvents => (&["slo", "policy"], "operation"),
            Family::RequestDuration => (&[], "operation"),
            Family::AuthDecisions => (&["decision", "reason"], "operation"),
            Family::JwksFetches => (&["result"], "provider"),
            Family::ClientRequests => (&["client", "outcome"], "operation"),
        }
    }
}

/// Metric names under one prefix (`observe.metric_prefix`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricNames {
    prefix: String,
    /// What /stats/prometheus puts in front of the family name: empty for Envoy 1.40, which
    /// exposes the `wasmcustom` namespace bare. Set it if a proxy adds one.
    pub exposition_prefix: String,
}

impl MetricNames {
    /// The prefix must be a Prometheus name fragment without dots (`[a-zA-Z_][a-zA-Z0-9_]*`),
    /// or the tag regexes could not find where the family ends.
    pub fn new(prefix: &str) -> Result<MetricNames, ConfigError> {
        let ok = prefix
            .bytes()
            .enumerate()
            .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()));
        if prefix.is_empty() || !ok {
            return Err(ConfigError::new(
                "observe.metric_prefix",
                format!("must match [a-zA-Z_][a-zA-Z0-9_]* (got {prefix:?})"),
            ));
        }
        Ok(MetricNames {
            prefix: prefix.to_string(),
            exposition_prefix: String::new(),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The Prometheus metric name of a family (`meshgate_requests_total`); histograms add
    /// `_bucket`, `_sum` and `_count`.
    pub fn family(&self, family: Family) -> String {
        format!("{}{}", self.exposition_prefix, self.base(family))
    }

    /// Request counter; `outcome` from [`super::outcome_label`].
    pub fn requests(&self, operation: &str, outcome: &str) -> String {
        self.name(Family::Requests, &[outcome], operation)
    }

    /// `policy`: the route policy whose objective judged the request, `None` for the
    /// operation's own (label [`OWN_OBJECTIVE`]).
    pub fn slo_events(&self, operation: &str, slo: SloKind, policy: Option<&str>) -> String {
        let policy = policy_label(policy);
        self.name(Family::SloEvents, &[slo.as_str(), &policy], operation)
    }

    pub fn slo_good_events(&self, operation: &str, slo: SloKind, policy: Option<&str>) -> String {
        let policy = policy_label(policy);
        self.name(Family::SloGoodEvents, &[slo.as_str(), &policy], operation)
    }

    /// Latency histogram, milliseconds.
    pub fn latency_histogram(&self, operation: &str) -> String {
        self.name(Family::RequestDuration, &[], operation)
    }

    /// Auth decisions; `reason` is a short word from the auth module (`missing`, `expired`...).
    pub fn auth_decisions(&self, operation: &str, decision: AuthDecision, reason: &str) -> String {
        self.name(
            Family::AuthDecisions,
            &[decision.as_str(), reason],
            operation,
        )
    }

    /// A configured client's request; `client` is a configured name (`-` shows as `_`).
    pub fn client_requests(&self, operation: &str, client: &str, outcome: &str) -> String {
        self.name(Family::ClientRequests, &[client, outcome], operation)
    }

    pub fn jwks_fetches(&self, provider: &str, success: bool) -> String {
        let result = if success { "success" } else { "failure" };
        self.jwks_fetch_result(provider, result)
    }

    /// `result`: `success`, `failure`, or `refused` (a document over a bound).
    pub fn jwks_fetch_result(&self, provider: &str, result: &str) -> String {
        self.name(Family::JwksFetches, &[result], provider)
    }

    /// The gauge of the VM's linear memory in bytes (`<prefix>_vm_memory_bytes`, no labels:
    /// Envoy shares one stat between the workers' VMs, so it holds the value a VM set last).
    /// Wasm memory only grows: growth after warm-up is a leak or a high-water mark.
    pub fn vm_memory(&self) -> String {
        format!("{}_vm_memory_bytes", self.prefix)
    }

    /// `stats_config.stats_tags` for the Envoy bootstrap: (tag name, regex) pairs, one per
    /// label (Envoy refuses a tag name given twice), each an alternation over the families
    /// that carry the label.
    pub fn stats_tags(&self) -> Vec<(String, String)> {
        // (key, is the free-form last key, heads of the families that carry it)
        let mut keys: Vec<(&str, bool, Vec<String>)> = Vec::new();
        for family in Family::ALL {
            let (fixed, free) = family.keys();
            let all = fixed.iter().map(|k| (*k, false)).chain([(free, true)]);
            for (i, (key, last)) in all.enumerate() {
                let head = self.head(family, fixed.get(..i).unwrap_or(fixed));
                match keys.iter_mut().find(|(k, _, _)| *k == key) {
                    Some((_, _, heads)) => heads.push(head),
                    None => keys.push((key, last, vec![head])),
                }
            }
        }
        keys.into_iter()
            .map(|(key, last, heads)| {
                let tail = if last {
                    format!(r"(\.{key}\.(.+))$")
                } else {
                    format!(r"(\.{key}\.(\w+))\.")
                };
                let regex = format!(r"^{WASM_NAMESPACE}\.(?:{}){tail}", heads.join("|"));
                (key.to_string(), regex)
            })
            .collect()
    }

    /// A full-match RE2 regex for `histogram_bucket_settings[].match.safe_regex`, which Envoy
    /// applies to the stat's full name before tag extraction.
    pub fn latency_histogram_regex(&self) -> String {
        format!(
            r"{WASM_NAMESPACE}\.{}\.operation\..+",
            self.base(Family::RequestDuration)
        )
    }

    fn base(&self, family: Family) -> String {
        format!("{}_{}", self.prefix, family.suffix())
    }

    fn name(&self, family: Family, fixed: &[&str], free: &str) -> String {
        let (keys, free_key) = family.keys();
        let mut out = self.base(family);
        for (key, value) in keys.iter().zip(fixed) {
            out.push('.');
            out.push_str(key);
            out.push('.');
            out.push_str(&word(value));
        }
        out.push('.');
        out.push_str(free_key);
        out.push('.');
        out.push_str(&free_form(free));
        out
    }

    /// The part of a family's names before a key: the family and the fixed keys before it,
    /// as a regex.
    fn head(&self, family: Family, before: &[&str]) -> String {
        let mut head = self.base(family);
        for k in before {
            head.push_str(&format!(r"\.{k}\.\w+"));
        }
        head
    }
}

/// The `operation` label of the request counter for requests that matched no operation (an
/// unknown path, a request Envoy's codec refused before meshgate saw its headers): counted
/// all the same, so a 404 storm or a flood of malformed requests shows in the metrics. No
/// operation can have this name (gRPC ones are `pkg.Service.Method`; the configuration refuses
/// it as a REST operation's `name`).
pub const UNMATCHED_OPERATION: &str = "_unmatched";

/// The `operation` label of the gateway's health answers (`GET /healthz`): counted in the
/// request counter only, outside every objective (no SLO counters, so no recording or alert
/// rule reads them: a `503` before the first JWKS fetch is not a request the API failed).
/// Reserved like [`UNMATCHED_OPERATION`].
pub const HEALTH_OPERATION: &str = "_health";

/// The `policy` label of the SLO counters when the operation's own objective judged the
/// request (no route policy, or one without an objective of its own).
pub const OWN_OBJECTIVE: &str = "none";

/// The `policy` label: the policy's name as a word (`-` and other characters become `_`), or
/// [`OWN_OBJECTIVE`]. The configuration refuses policy names whose labels would collide.
pub fn policy_label(policy: Option<&str>) -> String {
    word(policy.unwrap_or_default())
}

/// A fixed-vocabulary value as `\w+`: anything else becomes `_`; empty becomes `none`.
fn word(value: &str) -> String {
    if value.is_empty() {
        return "none".to_string();
    }
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A free-form value: letters, digits, `_`, `-` and single inner dots are kept; anything
/// else (and a dot that would make an empty segment) becomes `_`.
fn free_form(value: &str) -> String {
    if value.is_empty() {
        return "_".to_string();
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    let mut prev_dot = true;
    while let Some(c) = chars.next() {
        let keep = match c {
            '.' => !prev_dot && chars.peek().is_some_and(|n| *n != '.'),
            c => c.is_ascii_alphanumeric() || c == '_' || c == '-',
        };
        out.push(if keep { c } else { '_' });
        prev_dot = c == '.' && keep;
    }
    out
}

/// Histogram bucket bounds (ms) that include every latency threshold, so "faster than the
/// threshold" can also be read off the histogram exactly. `extra_ms` empty: Envoy's defaults.
pub fn histogram_buckets(slos: &[&Slo], extra_ms: &[u64]) -> Vec<f64> {
    let mut buckets: Vec<f64> = if extra_ms.is_empty() {
        DEFAULT_BUCKETS_MS.to_vec()
    } else {
        extra_ms.iter().map(|b| *b as f64).collect()
    };
    buckets.extend(
        slos.iter()
            .filter_map(|s| s.latency)
            .map(|l| l.threshold_ms as f64),
    );
    buckets.retain(|b| b.is_finite() && *b > 0.0);
    buckets.sort_by(f64::total_cmp);
    buckets.dedup();
    buckets
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
