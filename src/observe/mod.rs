//! Observability, declared in one place: SLO classification, the access record, trace
//! context, metric names and the alert rules generated from the same objectives.
//!
//! Everything here is pure: the filter gathers what happened to a request into an
//! [`Outcome`] and an [`AccessRecord`], and publishes what these functions return.
//!
//! Per VM: [`Slo::compile_at`] per operation (layers operation > service >
//! `observe.default_slo`), [`MetricNames::new`] from `observe.metric_prefix`. Per request, at
//! the end: [`classify`] the [`Outcome`], apply [`MetricNames::request_metrics`], fill an
//! [`AccessRecord`] (trace from [`parse_trace`] on the request headers), publish
//! [`AccessRecord::filter_state_entries`] and log [`AccessRecord::to_json_line`]. Host-side:
//! `cli::envoy::stats_config_for` for the Envoy bootstrap, [`rule_file`] for Prometheus.

mod classify;
mod fields;
pub mod input;
mod metrics;
mod record;
mod slo;
pub mod span_export;
mod trace;
mod updates;

#[cfg(not(target_arch = "wasm32"))]
mod alerts;

pub use classify::{
    classify, outcome_label, Outcome, Verdict, CLIENT_CLOSED_STATUS, OUTCOME_LABELS,
};
pub use fields::{compile_filter_state, FILTER_STATE_FIELDS};
pub use metrics::{
    histogram_buckets, policy_label, AuthDecision, Family, MetricNames, SloKind,
    DEFAULT_BUCKETS_MS, HEALTH_OPERATION, OWN_OBJECTIVE, UNMATCHED_OPERATION, WASM_NAMESPACE,
};
pub use record::{format_duration, AccessRecord};
pub use slo::{LatencySlo, Slo, DEFAULT_ERROR_CODES};
pub use trace::{parse_cloud_trace, parse_trace, parse_traceparent, TraceContext};
pub use updates::{MetricUpdate, RequestMetric};

#[cfg(not(target_arch = "wasm32"))]
pub use alerts::{
    rule_file, AlertLabels, AlertingRule, Annotations, Objective, RecordingRule, Rule, RuleFile,
    RuleGroup, ALERT_NAME, BURN_RATES, ENVOY_RELOAD_REFUSALS, WINDOWS,
};
