//! Prometheus rules generated from the same objectives the filter enforces: error-ratio
//! recording rules over the standard windows, and multiwindow, multi-burn-rate alerts (Google
//! SRE workbook, "Alerting on SLOs", table 5-8):
//!
//! | severity | long window | short window | burn rate | budget spent when it fires |
//! |----------|-------------|--------------|-----------|----------------------------|
//! | page     | 1h          | 5m           | 14.4      | 2% in 1 hour               |
//! | page     | 6h          | 30m          | 6         | 5% in 6 hours              |
//! | ticket   | 1d          | 2h           | 3         | 10% in 1 day               |
//! | ticket   | 3d          | 6h           | 1         | 10% in 3 days              |
//!
//! The error ratio is `1 - good/total` from the SLO counters (`slo` = availability|latency), so
//! the latency objective alerts the same way as availability. The counters' `policy` label
//! tells which objective judged a request: an operation's alerts read its `policy="none"`
//! series, a route policy's alerts read the series with its name, one alert per operation.
//! The rules are typed ([`RuleFile`]); the `meshgate alerts` command writes them as YAML (host
//! side only). Label values inside PromQL selectors go through a JSON string encoder (a JSON
//! string is a valid PromQL string).

use serde::Serialize;

use super::metrics::{
    policy_label, Family, MetricNames, SloKind, OWN_OBJECTIVE, UNMATCHED_OPERATION,
};
use super::slo::Slo;

/// Whose objectives: an operation's own, or a route policy's.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// An operation's, with the service it belongs to (an alert label).
    Operation { operation: String, service: String },
    /// A route policy's, which judges the requests of every operation its routes serve; each
    /// operation alerts on its own (the `operation` label comes from the series).
    Policy(String),
}

/// One operation's or policy's objectives.
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    pub scope: Scope,
    pub slo: Slo,
}

impl Objective {
    pub fn operation(operation: &str, service: &str, slo: Slo) -> Objective {
        Objective {
            scope: Scope::Operation {
                operation: operation.to_string(),
                service: service.to_string(),
            },
            slo,
        }
    }

    pub fn policy(name: &str, slo: Slo) -> Objective {
        Objective {
            scope: Scope::Policy(name.to_string()),
            slo,
        }
    }
}

/// Windows of the recording rules, shortest first.
pub const WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

/// (severity, long window, short window, burn rate).
pub const BURN_RATES: [(&str, &str, &str, f64); 4] = [
    ("page", "1h", "5m", 14.4),
    ("page", "6h", "30m", 6.0),
    ("ticket", "1d", "2h", 3.0),
    ("ticket", "3d", "6h", 1.0),
];

/// The alert's name; `severity`, `slo` and `operation` labels tell the alerts apart.
pub const ALERT_NAME: &str = "MeshgateErrorBudgetBurn";

/// A Prometheus rules file (the 2.x `groups:` format).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleFile {
    pub groups: Vec<RuleGroup>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleGroup {
    pub name: String,
    pub rules: Vec<Rule>,
}

/// A recording rule or an alerting rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Rule {
    Record(RecordingRule),
    Alert(AlertingRule),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordingRule {
    pub record: String,
    pub expr: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertingRule {
    pub alert: String,
    pub expr: String,
    pub labels: AlertLabels,
    pub annotations: Annotations,
}

/// An alert's labels: an operation's alerts name it and its service, a policy's its label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertLabels {
    pub severity: String,
    pub slo: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Annotations {
    pub summary: String,
}

/// The rules file for `objectives`.
pub fn rule_file(objectives: &[Objective], names: &MetricNames) -> RuleFile {
    let mut rules: Vec<Rule> = WINDOWS
        .iter()
        .map(|window| Rule::Record(recording_rule(names, window)))
        .collect();
    for objective in objectives {
        rules.extend(
            objective_alerts(objective, names)
                .into_iter()
                .map(Rule::Alert),
        );
    }
    // One group: Prometheus evaluates a group's rules in order, so the alerts always read the
    // ratios of the same evaluation (two groups run on their own schedules, and an alert
    // could read a stale ratio or none).
    RuleFile {
        groups: vec![RuleGroup {
            name: format!("{}-slo", names.prefix()),
            rules,
        }],
    }
}

/// Envoy's count of the requests it refused while reloading a trapped Wasm VM (`FAIL_RELOAD`:
/// `wasm.<plugin>.vm_reload_backoff`, 503 before any filter ran): no VM saw them, so they are
/// in no meshgate counter. Matched by name for any plugin name (`meshgate`, Istio's
/// `<namespace>.<name>`).
pub const ENVOY_RELOAD_REFUSALS: &str = r#"{__name__=~"envoy_wasm_.+_vm_reload_backoff"}"#;

/// `<prefix>:sli_error_ratio:rate<window>` by operation, judging policy and objective. A
/// missing good counter reads as zero good events (`or 0 * total`), so an operation that never
/// succeeded still has a ratio (of 1) instead of no series at all. The total also holds
/// Envoy's reload refusals ([`events`]).
fn recording_rule(names: &MetricNames, window: &str) -> RecordingRule {
    let good = names.family(Family::SloGoodEvents);
    let total = events(names, window);
    let by = "sum by (operation, policy, slo)";
    RecordingRule {
        record: ratio_record(names, window),
        expr: format!(
            "1 - (\n  (\n    {by} (rate({good}[{window}]))\n    or\n    0 * {by} ({total})\n  )\n  /\n  {by} ({total})\n)"
        ),
    }
}

/// The rate of SLO events: meshgate's counter, and Envoy's reload refusals as availability
/// events of requests without an operation (`operation="_unmatched"`, `policy="none"`), never
/// good: a request the gateway refused with a 503 is availability-bad, judged by
/// `observe.default_slo` like the other requests refused before meshgate knew an operation.
/// (`refused_by` keeps them apart from meshgate's own `_unmatched` series under `or`.)
fn events(names: &MetricNames, window: &str) -> String {
    let total = names.family(Family::SloEvents);
    let refused = format!("rate({ENVOY_RELOAD_REFUSALS}[{window}])");
    let labelled = [
        ("operation", UNMATCHED_OPERATION),
        ("policy", OWN_OBJECTIVE),
        ("slo", SloKind::Availability.as_str()),
        ("refused_by", "envoy"),
    ]
    .iter()
    .fold(refused, |inner, (label, value)| {
        format!(
            "label_replace({inner}, {}, {}, \"\", \"\")",
            quote(label),
            quote(value)
        )
    });
    format!("rate({total}[{window}])\n      or\n      {labelled}")
}

fn ratio_record(names: &MetricNames, window: &str) -> String {
    format!("{}:sli_error_ratio:rate{window}", names.prefix())
}

/// A page and a ticket rule for each objective the operation has.
fn objective_alerts(objective: &Objective, names: &MetricNames) -> Vec<AlertingRule> {
    let kinds = [
        (SloKind::Availability, objective.slo.availability),
        (SloKind::Latency, objective.slo.latency.map(|l| l.target)),
    ];
    let mut rules = Vec::new();
    for (kind, target) in kinds {
        let Some(target) = target else { continue };
        for severity in ["page", "ticket"] {
            rules.push(alert_rule(objective, names, kind, target, severity));
        }
    }
    rules
}

/// The alert's PromQL: one `(long and short)` branch per burn rate of `severity`.
fn alert_expr(
    objective: &Objective,
    names: &MetricNames,
    kind: SloKind,
    target: f64,
    severity: &str,
) -> String {
    let budget = number((100.0 - target) / 100.0);
    let selector = match &objective.scope {
        Scope::Operation { operation, .. } => format!(
            "{{operation={},policy={},slo={}}}",
            quote(operation),
            quote(OWN_OBJECTIVE),
            quote(kind.as_str())
        ),
        Scope::Policy(name) => format!(
            "{{policy={},slo={}}}",
            quote(&policy_label(Some(name))),
            quote(kind.as_str())
        ),
    };
    let branches: Vec<String> = BURN_RATES
        .iter()
        .filter(|(sev, ..)| *sev == severity)
        .map(|(_, long, short, rate)| {
            let rate = number(*rate);
            let cond =
                |w: &str| format!("{}{selector} > ({rate} * {budget})", ratio_record(names, w));
            format!("(\n  {}\n  and\n  {}\n)", cond(long), cond(short))
        })
        .collect();
    branches.join("\nor\n")
}

fn alert_rule(
    objective: &Objective,
    names: &MetricNames,
    kind: SloKind,
    target: f64,
    severity: &str,
) -> AlertingRule {
    let what = match kind {
        SloKind::Availability => format!("availability objective {}%", number(target)),
        SloKind::Latency => {
            let ms = objective.slo.latency.map(|l| l.threshold_ms).unwrap_or(0);
            format!("latency objective {}% under {ms} ms", number(target))
        }
    };
    let mut labels = AlertLabels {
        severity: severity.to_string(),
        slo: kind.as_str().to_string(),
        operation: None,
        service: None,
        policy: None,
    };
    let summary = match &objective.scope {
        Scope::Operation { operation, service } => {
            labels.operation = Some(operation.clone());
            labels.service = Some(service.clone());
            format!("{operation} is burning the error budget of its {what} too fast ({severity})")
        }
        Scope::Policy(name) => {
            labels.policy = Some(policy_label(Some(name)));
            format!(
                "{{{{ $labels.operation }}}} under policy {name} is burning the error budget of the policy's {what} too fast ({severity})"
            )
        }
    };
    AlertingRule {
        alert: ALERT_NAME.to_string(),
        expr: alert_expr(objective, names, kind, target, severity),
        labels,
        annotations: Annotations { summary },
    }
}

/// A double-quoted PromQL string.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// A number without float noise (`0.001`, not `0.0009999999999999432`; `6`, not `6.0`).
fn number(n: f64) -> String {
    let s = format!("{n:.12}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::observe::slo::LatencySlo;

    fn slo(avail: Option<f64>, latency: Option<(u64, f64)>) -> Slo {
        Slo {
            availability: avail,
            latency: latency.map(|(threshold_ms, target)| LatencySlo {
                threshold_ms,
                target,
            }),
            ..Slo::default()
        }
    }

    fn objective(op: &str, avail: Option<f64>, latency: Option<(u64, f64)>) -> Objective {
        Objective::operation(op, "meshgate.demo.v1.Payments", slo(avail, latency))
    }

    fn names() -> MetricNames {
        MetricNames::new("meshgate").unwrap()
    }

    /// The alerting rules of the file's one group.
    fn alerts(file: &RuleFile) -> Vec<&AlertingRule> {
        assert_eq!(file.groups.len(), 1, "one group: one evaluation for all");
        file.groups[0]
            .rules
            .iter()
            .filter_map(|r| match r {
                Rule::Alert(a) => Some(a),
                Rule::Record(_) => None,
            })
            .collect()
    }

    fn records(file: &RuleFile) -> Vec<&RecordingRule> {
        file.groups[0]
            .rules
            .iter()
            .filter_map(|r| match r {
                Rule::Record(r) => Some(r),
                Rule::Alert(_) => None,
            })
            .collect()
    }

    #[test]
    fn a_policy_objective_alerts_on_its_own_series_for_every_operation() {
        let file = rule_file(
            &[
                objective("op", Some(99.9), None),
                Objective::policy("partner-api", slo(None, Some((50, 90.0)))),
            ],
            &names(),
        );
        assert!(records(&file)
            .iter()
            .all(|r| r.expr.contains("sum by (operation, policy, slo)")));
        let alerts = alerts(&file);
        // The operation's alerts read only the requests its own objective judged.
        assert!(alerts[0].expr.contains(
            "rate1h{operation=\"op\",policy=\"none\",slo=\"availability\"} > (14.4 * 0.001)"
        ));
        assert_eq!(alerts[0].labels.operation.as_deref(), Some("op"));
        assert_eq!(alerts[0].labels.policy, None);
        // The policy's read its series, whatever the operation.
        let policy_rules: Vec<&&AlertingRule> = alerts
            .iter()
            .filter(|r| r.labels.policy.as_deref() == Some("partner_api"))
            .collect();
        assert_eq!(policy_rules.len(), 2, "a page and a ticket");
        assert!(policy_rules[0]
            .expr
            .contains("rate1h{policy=\"partner_api\",slo=\"latency\"} > (14.4 * 0.1)"));
        for r in policy_rules {
            assert_eq!(
                (r.labels.operation.as_ref(), r.labels.service.as_ref()),
                (None, None)
            );
            assert!(r
                .annotations
                .summary
                .starts_with("{{ $labels.operation }} under policy partner-api"));
            assert!(r.annotations.summary.contains("90% under 50 ms"));
        }
    }

    #[test]
    fn every_window_has_a_recording_rule() {
        let file = rule_file(&[], &names());
        let records = records(&file);
        assert_eq!(records.len(), WINDOWS.len());
        for (r, w) in records.iter().zip(WINDOWS) {
            assert_eq!(r.record, format!("meshgate:sli_error_ratio:rate{w}"));
            assert!(r
                .expr
                .contains(&format!("rate(meshgate_slo_good_events_total[{w}])")));
        }
        assert!(alerts(&file).is_empty());
    }

    #[test]
    fn page_uses_fast_windows_and_ticket_slow_ones() {
        let file = rule_file(&[objective("a.B.C", Some(99.9), None)], &names());
        let rules = alerts(&file);
        assert_eq!(rules.len(), 2);
        let page = rules[0];
        assert_eq!(page.labels.severity, "page");
        assert!(page.expr.contains(
            "meshgate:sli_error_ratio:rate1h{operation=\"a.B.C\",policy=\"none\",slo=\"availability\"} > (14.4 * 0.001)"
        ));
        assert!(page.expr.contains(
            "rate5m{operation=\"a.B.C\",policy=\"none\",slo=\"availability\"} > (14.4 * 0.001)"
        ));
        assert!(page.expr.contains(
            "rate6h{operation=\"a.B.C\",policy=\"none\",slo=\"availability\"} > (6 * 0.001)"
        ));
        assert!(page.expr.contains("rate30m"));
        assert!(!page.expr.contains("rate3d"));
        let ticket = rules[1];
        assert_eq!(ticket.labels.severity, "ticket");
        assert!(ticket.expr.contains(
            "rate3d{operation=\"a.B.C\",policy=\"none\",slo=\"availability\"} > (1 * 0.001)"
        ));
        assert!(ticket.expr.contains(
            "rate6h{operation=\"a.B.C\",policy=\"none\",slo=\"availability\"} > (1 * 0.001)"
        ));
        assert!(ticket.expr.contains("rate1d") && ticket.expr.contains("(3 * 0.001)"));
        assert!(!ticket.expr.contains("rate5m"));
    }

    #[test]
    fn latency_objective_gets_its_own_alerts_with_its_target() {
        let file = rule_file(&[objective("op", None, Some((300, 95.0)))], &names());
        let rules = alerts(&file);
        assert_eq!(rules.len(), 2);
        for r in &rules {
            assert_eq!(r.alert, "MeshgateErrorBudgetBurn");
            assert_eq!(r.labels.slo, "latency");
            assert!(r.annotations.summary.contains("95% under 300 ms"));
        }
        assert!(rules[0].expr.contains("slo=\"latency\"} > (14.4 * 0.05)"));
        assert!(rules[1].expr.contains("slo=\"latency\"} > (1 * 0.05)"));
    }

    #[test]
    fn operations_without_objectives_get_no_alerts() {
        let file = rule_file(&[objective("op", None, None)], &names());
        assert!(alerts(&file).is_empty());
    }

    #[test]
    fn names_follow_the_metric_prefix() {
        let file = rule_file(
            &[objective("op", Some(99.0), None)],
            &MetricNames::new("gw").unwrap(),
        );
        assert_eq!(file.groups[0].name, "gw-slo");
        let records = records(&file);
        assert_eq!(records[0].record, "gw:sli_error_ratio:rate5m");
        assert!(records[6].expr.contains("gw_slo_events_total[3d]"));
        assert!(alerts(&file)[0]
            .expr
            .contains("gw:sli_error_ratio:rate1h{operation=\"op\""));
    }

    #[test]
    fn quotes_in_names_are_escaped_in_promql_and_kept_in_labels() {
        let file = rule_file(&[objective("we\"ird\\op", Some(99.0), None)], &names());
        let alert = alerts(&file)[0];
        assert!(alert.expr.contains(r#"{operation="we\"ird\\op","#));
        assert_eq!(alert.labels.operation.as_deref(), Some("we\"ird\\op"));
    }

    #[test]
    fn numbers_are_written_without_float_noise() {
        assert_eq!(number((100.0 - 99.9) / 100.0), "0.001");
        assert_eq!(number((100.0 - 99.95) / 100.0), "0.0005");
        assert_eq!(number(6.0), "6");
        assert_eq!(number(14.4), "14.4");
        assert_eq!(number(0.0), "0");
    }
}
