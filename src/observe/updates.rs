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

impl MetricNames {
    /// The updates for one request: its outcome counter, the latency histogram (ms), and for
    /// each objective that counts it, the total and the good counter. The good counter gets
    /// `+0` on a bad event, so both counters of an objective exist from its first request
    /// (a ratio over a missing series would be no ratio at all).
    pub fn request_updates(
        &self,
        operation: &str,
        outcome: &Outcome,
        verdicts: (Verdict, Verdict),
    ) -> Vec<MetricUpdate> {
        let counter = |name: String, value: u64| MetricUpdate {
            kind: MetricKind::Counter,
            name,
            value,
        };
        let ms = u64::try_from(outcome.latency.as_millis()).unwrap_or(u64::MAX);
        let mut out = vec![
            counter(self.requests(operation, outcome_label(outcome)), 1),
            MetricUpdate {
                kind: MetricKind::Histogram,
                name: self.latency_histogram(operation),
                value: ms,
            },
        ];
        let (availability, latency) = verdicts;
        for (kind, verdict) in [
            (SloKind::Availability, availability),
            (SloKind::Latency, latency),
        ] {
            if verdict.counts() {
                out.push(counter(self.slo_events(operation, kind), 1));
                let good = u64::from(verdict == Verdict::Good);
                out.push(counter(self.slo_good_events(operation, kind), good));
            }
        }
        out
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
        }
    }

    #[test]
    fn bad_availability_counts_total_and_zero_good() {
        let n = MetricNames::new("meshgate").unwrap();
        let u = n.request_updates("a.B.C", &outcome(), (Verdict::Bad, Verdict::NotApplicable));
        let find = |name: String| u.iter().find(|x| x.name == name).map(|x| x.value);
        assert_eq!(find(n.requests("a.B.C", "unavailable")), Some(1));
        assert_eq!(find(n.latency_histogram("a.B.C")), Some(12));
        assert_eq!(find(n.slo_events("a.B.C", SloKind::Availability)), Some(1));
        assert_eq!(
            find(n.slo_good_events("a.B.C", SloKind::Availability)),
            Some(0)
        );
        assert_eq!(find(n.slo_events("a.B.C", SloKind::Latency)), None);
        assert_eq!(u.len(), 4);
    }

    #[test]
    fn good_events_count_in_both_counters() {
        let n = MetricNames::new("gw").unwrap();
        let u = n.request_updates("op", &outcome(), (Verdict::Good, Verdict::Good));
        let good: Vec<_> = u.iter().filter(|x| x.name.contains("slo_good")).collect();
        assert_eq!(good.len(), 2);
        assert!(good
            .iter()
            .all(|x| x.value == 1 && x.kind == MetricKind::Counter));
        assert_eq!(
            u.iter().filter(|x| x.kind == MetricKind::Histogram).count(),
            1
        );
    }
}
