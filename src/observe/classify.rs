//! Did a request meet its objectives? One pure function per request, used by the access record
//! and the SLO counters alike so logs and metrics never disagree.
//!
//! Decisions (also in docs/observability.md, Metrics):
//! - **Availability.** When the response carries a gRPC status other than OK (transcoded,
//!   native gRPC, or a gateway-made error, which always has one), that code decides: bad if it
//!   is one of the objective's `error_codes`, good otherwise. Without one, HTTP 5xx is bad and
//!   everything else good. The gRPC code decides first because for gRPC upstreams the HTTP
//!   status is derived from it, and native gRPC errors arrive with HTTP 200. So 4xx, NOT_FOUND,
//!   INVALID_ARGUMENT, UNAUTHENTICATED, PERMISSION_DENIED... are good: client errors are not the
//!   service's fault.
//! - **Gateway-made replies count like any other.** A 503 UNAVAILABLE the gateway makes because
//!   it could not fetch the JWKS is bad: the client did nothing wrong and the API, as its users
//!   see it, was down. A 401 for a bad token is good (the client's fault).
//! - **Latency** is judged only over requests the service answered without failing: not for
//!   availability failures (a fast error is not a good request, and counting it again as slow
//!   would charge one failure to two budgets) and not for gateway-made replies (a 401 made in
//!   a millisecond says nothing about the service, and a flood of them would dilute the SLI).
//!   This is the SRE workbook's "latency of successful requests".
//! - **Cancelled** (the client went away before the whole answer: Envoy sent no status, or
//!   ended the stream on the client's disconnect or reset) is counted with the outcome
//!   `cancelled` (gRPC CANCELLED; HTTP 499 in the record, as Google's load balancers log it).
//!   Availability: not applicable (the client's choice, not the service's failure). Latency: bad
//!   when the client gave up after the threshold (the service was already too slow: a client
//!   timing out on a slow backend must not hide it), else not applicable (the client was
//!   impatient; nothing is known about the service).
//! - **Request timeout** (HTTP 408: the client did not send its whole request within Envoy's
//!   `request_timeout`, a slow body) is a client error whatever gRPC code its Status carries:
//!   availability good, latency not applicable (the time measured is the client's slowness). A
//!   slow-body attack must not burn the operation's error budget.

use std::time::Duration;

use super::slo::Slo;
use crate::status::Code;

/// One objective's judgement of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Good,
    Bad,
    /// The request does not count for this objective (no such objective, or excluded by the
    /// rules above). It is neither in the good nor in the total counter.
    NotApplicable,
}

impl Verdict {
    /// `good`, `bad`, or `n/a` (the access record and filter state write it as is).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Good => "good",
            Verdict::Bad => "bad",
            Verdict::NotApplicable => "n/a",
        }
    }

    /// Counted in the objective's total (and, when good, in its good counter).
    pub fn counts(self) -> bool {
        self != Verdict::NotApplicable
    }
}

/// What happened to a request, as the filter saw it at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The status sent to the client (0: none was sent).
    pub http_status: u16,
    /// `grpc-status` of the response (upstream or gateway-made), when there is one.
    pub grpc_status: Option<Code>,
    /// The whole request as Envoy saw it, first byte in to last byte out.
    pub latency: Duration,
    /// The gateway answered itself (auth refusal, no matching operation, JWKS outage...).
    pub local_reply: bool,
    /// The client went away before the whole answer.
    pub cancelled: bool,
}

/// What the record writes as the HTTP status of a cancelled request (nginx's and Google's
/// load balancers' "client closed request").
pub const CLIENT_CLOSED_STATUS: u16 = 499;

impl Outcome {
    /// Whether the service failed this request (the availability rule above).
    pub fn failed(&self, slo: &Slo) -> bool {
        match self.grpc_status {
            Some(code) if code != Code::Ok => slo.is_error_code(code),
            _ => self.http_status >= 500,
        }
    }

    /// The HTTP status a person would read this outcome as: a native gRPC error with HTTP 200
    /// reads as its code's mapped status.
    pub fn effective_http_status(&self) -> u16 {
        match self.grpc_status {
            Some(code) if code != Code::Ok && (200..300).contains(&self.http_status) => {
                code.http_status()
            }
            _ => self.http_status,
        }
    }
}

/// HTTP 408: the request did not arrive in time.
const REQUEST_TIMEOUT: u16 = 408;

/// (availability verdict, latency verdict) of one request.
pub fn classify(slo: &Slo, outcome: &Outcome) -> (Verdict, Verdict) {
    if outcome.cancelled {
        let slow = slo
            .latency
            .is_some_and(|l| outcome.latency > Duration::from_millis(l.threshold_ms));
        let latency = if slow && !outcome.local_reply {
            Verdict::Bad
        } else {
            Verdict::NotApplicable
        };
        return (Verdict::NotApplicable, latency);
    }
    if outcome.http_status == 0 && outcome.grpc_status.is_none() {
        return (Verdict::NotApplicable, Verdict::NotApplicable);
    }
    if outcome.http_status == REQUEST_TIMEOUT {
        // The client did not send its whole request within the request timeout (Envoy's 408,
        // whatever gRPC code the reply carries): a client error, so good for availability, and
        // its duration is the client's slowness, not the service's latency.
        let availability = match slo.availability {
            None => Verdict::NotApplicable,
            Some(_) => Verdict::Good,
        };
        return (availability, Verdict::NotApplicable);
    }
    let failed = outcome.failed(slo);
    let availability = match slo.availability {
        None => Verdict::NotApplicable,
        Some(_) if failed => Verdict::Bad,
        Some(_) => Verdict::Good,
    };
    let latency = match slo.latency {
        None => Verdict::NotApplicable,
        Some(_) if failed || outcome.local_reply => Verdict::NotApplicable,
        // A request exactly at the threshold is good: "under 300 ms" as people read it is
        // Prometheus' `le`, and the histogram bucket at the threshold then agrees.
        Some(l) if outcome.latency <= Duration::from_millis(l.threshold_ms) => Verdict::Good,
        Some(_) => Verdict::Bad,
    };
    (availability, latency)
}

/// The `outcome` label of the request counter. A small bounded set: the lower-case gRPC code
/// name when the response has a gRPC status (`ok`, `not_found`, `unavailable`: 17 values),
/// else the HTTP status class (`1xx`..`5xx`), else `none` when no response was sent.
pub fn outcome_label(outcome: &Outcome) -> &'static str {
    if outcome.cancelled {
        return grpc_label(Code::Cancelled);
    }
    if let Some(code) = outcome.grpc_status {
        return grpc_label(code);
    }
    match outcome.http_status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "none",
    }
}

/// Every value [`outcome_label`] can return, to define the counters up front.
pub const OUTCOME_LABELS: [&str; 23] = [
    "ok",
    "cancelled",
    "unknown",
    "invalid_argument",
    "deadline_exceeded",
    "not_found",
    "already_exists",
    "permission_denied",
    "resource_exhausted",
    "failed_precondition",
    "aborted",
    "out_of_range",
    "unimplemented",
    "internal",
    "unavailable",
    "data_loss",
    "unauthenticated",
    "1xx",
    "2xx",
    "3xx",
    "4xx",
    "5xx",
    "none",
];

fn grpc_label(code: Code) -> &'static str {
    // Same order as the codes' numbers, so the table and `Code` cannot drift apart silently
    // (a unit test walks every code).
    let i = usize::try_from(code.as_i32()).unwrap_or(2);
    OUTCOME_LABELS.get(i).copied().unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::slo::LatencySlo;

    fn slo() -> Slo {
        Slo {
            availability: Some(99.9),
            latency: Some(LatencySlo {
                threshold_ms: 300,
                target: 95.0,
            }),
            ..Slo::default()
        }
    }

    fn out(http: u16, grpc: Option<Code>, ms: u64) -> Outcome {
        Outcome {
            http_status: http,
            grpc_status: grpc,
            latency: Duration::from_millis(ms),
            local_reply: false,
            cancelled: false,
        }
    }

    fn cancelled(ms: u64) -> Outcome {
        Outcome {
            cancelled: true,
            ..out(0, None, ms)
        }
    }

    #[test]
    fn abandoned_after_the_threshold_is_slow_and_not_an_outage() {
        assert_eq!(
            classify(&slo(), &cancelled(301)),
            (Verdict::NotApplicable, Verdict::Bad)
        );
        assert_eq!(outcome_label(&cancelled(301)), "cancelled");
    }

    #[test]
    fn a_request_timeout_is_the_clients_error_even_as_deadline_exceeded() {
        // A slow body: Envoy's 408, carried as DEADLINE_EXCEEDED, seconds past the threshold.
        let o = out(408, Some(Code::DeadlineExceeded), 4_000);
        assert!(slo().is_error_code(Code::DeadlineExceeded));
        assert_eq!(
            classify(&slo(), &o),
            (Verdict::Good, Verdict::NotApplicable)
        );
        // The same code with the gateway's 504 is the service's failure.
        let o = out(504, Some(Code::DeadlineExceeded), 4_000);
        assert_eq!(classify(&slo(), &o).0, Verdict::Bad);
    }

    #[test]
    fn abandoned_before_the_threshold_counts_for_nothing() {
        assert_eq!(
            classify(&slo(), &cancelled(300)),
            (Verdict::NotApplicable, Verdict::NotApplicable)
        );
        // Whatever status the gateway had meant to send: the client never got it.
        let mut o = cancelled(10);
        o.grpc_status = Some(Code::Unavailable);
        o.http_status = 503;
        assert_eq!(classify(&slo(), &o).0, Verdict::NotApplicable);
        assert_eq!(outcome_label(&o), "cancelled");
    }

    #[test]
    fn fast_success_is_good_twice() {
        assert_eq!(
            classify(&slo(), &out(200, Some(Code::Ok), 12)),
            (Verdict::Good, Verdict::Good)
        );
    }

    #[test]
    fn slow_success_is_available_but_slow() {
        assert_eq!(
            classify(&slo(), &out(200, None, 301)),
            (Verdict::Good, Verdict::Bad)
        );
    }

    #[test]
    fn exactly_at_threshold_is_fast() {
        assert_eq!(classify(&slo(), &out(200, None, 300)).1, Verdict::Good);
    }

    #[test]
    fn upstream_5xx_is_bad_and_not_judged_for_latency() {
        assert_eq!(
            classify(&slo(), &out(503, None, 5)),
            (Verdict::Bad, Verdict::NotApplicable)
        );
    }

    #[test]
    fn client_errors_are_good_for_availability() {
        for code in [
            Code::NotFound,
            Code::InvalidArgument,
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::FailedPrecondition,
        ] {
            let (a, l) = classify(&slo(), &out(code.http_status(), Some(code), 10));
            assert_eq!((a, l), (Verdict::Good, Verdict::Good), "{code:?}");
        }
        assert_eq!(classify(&slo(), &out(404, None, 10)).0, Verdict::Good);
    }

    #[test]
    fn configured_grpc_codes_are_bad_even_with_http_200() {
        // Native gRPC error: HTTP 200, grpc-status 14.
        let (a, _) = classify(&slo(), &out(200, Some(Code::Unavailable), 10));
        assert_eq!(a, Verdict::Bad);
    }

    #[test]
    fn grpc_code_decides_over_http_5xx() {
        let mut s = slo();
        s.error_codes = vec![Code::Unavailable];
        // INTERNAL is no longer an error code: its HTTP 500 does not make it one.
        assert_eq!(
            classify(&s, &out(500, Some(Code::Internal), 1)).0,
            Verdict::Good
        );
        assert_eq!(
            classify(&s, &out(503, Some(Code::Unavailable), 1)).0,
            Verdict::Bad
        );
    }

    #[test]
    fn resource_exhausted_is_good_unless_configured() {
        let o = out(429, Some(Code::ResourceExhausted), 1);
        assert_eq!(classify(&slo(), &o).0, Verdict::Good);
        let mut s = slo();
        s.error_codes.push(Code::ResourceExhausted);
        assert_eq!(classify(&s, &o).0, Verdict::Bad);
    }

    #[test]
    fn gateway_503_for_jwks_outage_is_bad() {
        let o = Outcome {
            local_reply: true,
            ..out(503, Some(Code::Unavailable), 2)
        };
        assert_eq!(classify(&slo(), &o), (Verdict::Bad, Verdict::NotApplicable));
    }

    #[test]
    fn gateway_401_is_good_and_not_judged_for_latency() {
        let o = Outcome {
            local_reply: true,
            ..out(401, Some(Code::Unauthenticated), 900)
        };
        assert_eq!(
            classify(&slo(), &o),
            (Verdict::Good, Verdict::NotApplicable)
        );
    }

    #[test]
    fn missing_objectives_are_not_applicable() {
        let s = Slo::default();
        assert_eq!(
            classify(&s, &out(500, None, 1000)),
            (Verdict::NotApplicable, Verdict::NotApplicable)
        );
    }

    #[test]
    fn latency_still_excludes_failures_without_availability_objective() {
        let mut s = slo();
        s.availability = None;
        assert_eq!(
            classify(&s, &out(500, None, 10)),
            (Verdict::NotApplicable, Verdict::NotApplicable)
        );
    }

    #[test]
    fn no_response_counts_for_nothing() {
        assert_eq!(
            classify(&slo(), &out(0, None, 10)),
            (Verdict::NotApplicable, Verdict::NotApplicable)
        );
    }

    #[test]
    fn outcome_label_prefers_grpc_code_then_http_class() {
        assert_eq!(outcome_label(&out(200, Some(Code::Ok), 1)), "ok");
        assert_eq!(
            outcome_label(&out(200, Some(Code::DeadlineExceeded), 1)),
            "deadline_exceeded"
        );
        assert_eq!(outcome_label(&out(302, None, 1)), "3xx");
        assert_eq!(outcome_label(&out(503, None, 1)), "5xx");
        assert_eq!(outcome_label(&out(0, None, 1)), "none");
        assert_eq!(outcome_label(&out(999, None, 1)), "none");
    }

    #[test]
    fn every_grpc_code_has_its_own_label() {
        for n in 0..17 {
            let code = Code::from_i32(n);
            assert_eq!(grpc_label(code), code.name().to_ascii_lowercase());
        }
    }

    #[test]
    fn effective_status_maps_native_grpc_errors() {
        assert_eq!(
            out(200, Some(Code::NotFound), 1).effective_http_status(),
            404
        );
        assert_eq!(out(200, Some(Code::Ok), 1).effective_http_status(), 200);
        assert_eq!(out(502, None, 1).effective_http_status(), 502);
    }
}
