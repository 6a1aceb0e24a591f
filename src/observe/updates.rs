//! The metric changes one finished request makes, as data: the filter defines each name once
//! (and caches its id) and applies the values. Keeping the list here means the request
//! counter, the SLO counters and the histogram can never disagree with the access record.

use super::classify::{outcome_label, Outcome, Verdict};
use super::metrics::{MetricNames, SloKind};
use crate::host::MetricKind;

/// One change: add `value` to a counter, or record `value` in a histogram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricUpdate {
    pub kind: MetricKind,
    /// The stat name to define (Envoy shows it under `wasmcustom.`).
    pub name: String,
    pub value: u64,
}

/// Which of an operation's request metrics an update is for: with the operation, it names
/// the stat (see [`MetricNames::request_metric_name`]) without building the name, so the
/// filter can find the id it defined on an earlier request without formatting anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestMetric {
    /// The request counter, by `outcome` label.
    Requests(&'static str),
    /// The latency histogram (ms).
    Duration,
    SloEvents(SloKind),
    SloGoodEvents(SloKind),
}

impl RequestMetric {
    /// Whether the stat name carries the `policy` label.
    pub fn by_policy(self) -> bool {
        matches!(
            self,
            RequestMetric::SloEvents(_) | RequestMetric::SloGoodEvents(_)
        )
    }

    pub fn kind(self) -> MetricKind {
        match self {
            RequestMetric::Duration => MetricKind::Histogram,
            _ => MetricKind::Counter,
        }
    }
}

impl MetricNames {
    /// The stat name of one of an operation's request metrics.
    /// `policy`: the route policy whose objective judged the request (SLO counters only).
    pub fn request_metric_name(
        &self,
        operation: &str,
        policy: Option<&str>,
        metric: RequestMetric,
    ) -> String {
        match metric {
            RequestMetric::Requests(outcome) => self.requests(operation, outcome),
            RequestMetric::Duration => self.latency_histogram(operation),
            RequestMetric::SloEvents(kind) => self.slo_events(operation, kind, policy),
            RequestMetric::SloGoodEvents(kind) => self.slo_good_events(operation, kind, policy),
        }
    }

    /// The updates for one request: its outcome counter, the latency histogram (ms), and for
    /// each objective that counts it, the total and the good counter. The good counter gets
    /// `+0` on a bad event, so both counters of an objective exist from its first request
    /// (a ratio over a missing series would be no ratio at all).
    pub fn request_metrics(
        outcome: &Outcome,
        verdicts: (Verdict, Verdict),
    ) -> impl Iterator<Item = (RequestMetric, u64)> {
        let ms = u64::try_from(outcome.latency.as_millis()).unwrap_or(u64::MAX);
        let (availability, latency) = verdicts;
        let slo = [
            (SloKind::Availability, availability),
            (SloKind::Latency, latency),
        ]
        .into_iter()
        .filter(|(_, verdict)| verdict.counts())
        .flat_map(|(kind, verdict)| {
            let good = u64::from(verdict == Verdict::Good);
            [
                (RequestMetric::SloEvents(kind), 1),
                (RequestMetric::SloGoodEvents(kind), good),
            ]
        });
        [
            (RequestMetric::Requests(outcome_label(outcome)), 1),
            (RequestMetric::Duration, ms),
        ]
        .into_iter()
        .chain(slo)
    }

    /// [`MetricNames::request_metrics`] with their stat names.
    pub fn request_updates(
        &self,
        operation: &str,
        policy: Option<&str>,
        outcome: &Outcome,
        verdicts: (Verdict, Verdict),
    ) -> Vec<MetricUpdate> {
        MetricNames::request_metrics(outcome, verdicts)
            .map(|(metric, value)| MetricUpdate {
                kind: metric.kind(),
                name: self.request_metric_name(operation, policy, metric),
                value,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Code;
    use std::time::Duration;

    fn outcome() -> Outcome {
        Outcome {
            http_status: 503,
            grpc_status: Some(Code::Unavailable),
            latency: Duration::from_micros(12_700),
            local_reply: false,
            cancelled: false,
        }
    }

    #[test]
    fn bad_availability_counts_total_and_zero_good() {
        let n = MetricNames::new("meshgate").unwrap();
        let u = n.request_updates(
            "a.B.C",
            None,
            &outcome(),
            (Verdict::Bad, Verdict::NotApplicable),
        );
        let find = |name: String| u.iter().find(|x| x.name == name).map(|x| x.value);
        assert_eq!(find(n.requests("a.B.C", "unavailable")), Some(1));
        assert_eq!(find(n.latency_histogram("a.B.C")), Some(12));
        assert_eq!(
            find(n.slo_events("a.B.C", SloKind::Availability, None)),
            Some(1)
        );
        assert_eq!(
            find(n.slo_good_events("a.B.C", SloKind::Availability, None)),
            Some(0)
        );
        assert_eq!(find(n.slo_events("a.B.C", SloKind::Latency, None)), None);
        assert_eq!(u.len(), 4);
    }

    #[test]
    fn good_events_count_in_both_counters() {
        let n = MetricNames::new("gw").unwrap();
        let u = n.request_updates(
            "op",
            Some("partner"),
            &outcome(),
            (Verdict::Good, Verdict::Good),
        );
        let good: Vec<_> = u.iter().filter(|x| x.name.contains("slo_good")).collect();
        assert_eq!(good.len(), 2);
        // The policy whose objective judged them is in the SLO counters' names only.
        assert!(good.iter().all(|x| x.name.contains(".policy.partner.")));
        assert_eq!(u.iter().filter(|x| x.name.contains("partner")).count(), 4);
        assert!(good
            .iter()
            .all(|x| x.value == 1 && x.kind == MetricKind::Counter));
        assert_eq!(
            u.iter().filter(|x| x.kind == MetricKind::Histogram).count(),
            1
        );
    }
}
