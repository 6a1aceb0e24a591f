//! Observability, declared in one place: SLO classification, the access record, trace
//! context, metric names and the alert rules generated from the same objectives.
//!
//! Everything here is pure: the filter gathers what happened to a request into an
//! [`Outcome`] and an [`AccessRecord`], and publishes what these functions return.

mod classify;
mod metrics;
mod record;
mod slo;
mod trace;

#[cfg(not(target_arch = "wasm32"))]
mod alerts;

pub use classify::{classify, outcome_label, Outcome, Verdict, OUTCOME_LABELS};
pub use metrics::{
    histogram_buckets, AuthDecision, Family, MetricNames, SloKind, DEFAULT_BUCKETS_MS,
    WASM_NAMESPACE,
};
pub use record::{format_duration, AccessRecord};
pub use slo::{LatencySlo, Slo, DEFAULT_ERROR_CODES};
pub use trace::{parse_cloud_trace, parse_trace, parse_traceparent, TraceContext};

#[cfg(not(target_arch = "wasm32"))]
pub use alerts::{alert_rules, Objective};
