//! The end of a request: one access record (to the proxy's log and, as filter state, to
//! Envoy's own access log) and its metrics: requests by outcome, SLO good/total events, and
//! the latency histogram.

use std::time::Duration;

use super::{Filter, Phase};
use crate::host::{Host, Level};
use crate::observe::{
    classify, outcome_label, parse_trace, AccessRecord, MetricNames, Outcome, RequestMetric,
    Verdict, CLIENT_CLOSED_STATUS, UNMATCHED_OPERATION,
};
use crate::status::Code;

/// Filter state key of the whole record: `%FILTER_STATE(wasm.meshgate.record:PLAIN)%`.
pub const RECORD_PROPERTY: &str = "meshgate.record";

/// Envoy serializes integer and duration properties as 8 little-endian bytes.
fn as_i64(b: Option<&Vec<u8>>) -> Option<i64> {
    let arr: [u8; 8] = b?.get(..8)?.try_into().ok()?;
    Some(i64::from_le_bytes(arr))
}

fn as_string(b: Option<Vec<u8>>) -> Option<String> {
    b.and_then(|b| String::from_utf8(b).ok())
        .filter(|s| !s.is_empty())
}

fn as_u64(b: Option<&Vec<u8>>) -> u64 {
    as_i64(b).and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

/// What the record and the verdicts take from Envoy at the end of a stream, read in one
/// batch ([`Host::properties`]: one host call in Envoy, instead of one per property).
const FACT_PATHS: [&[&str]; 8] = [
    &["request", "duration"],
    &["response", "code"],
    &["request", "total_size"],
    &["response", "total_size"],
    &["source", "address"],
    &["request", "protocol"],
    &["response", "code_details"],
    &["response", "grpc_status"],
];

impl Filter {
    pub fn on_log(&mut self, host: &mut dyn Host) {
        if self.phase == Phase::Logged || self.log_preflight(host) {
            return;
        }
        let vm = self.vm.clone();
        let cfg = &vm.config;
        let facts = stream_facts(host, self.start, self.resp.status);
        let latency = facts.latency;
        let cancelled = facts.status == 0 || facts.client_went_away;
        let status = facts.status;
        // Envoy derives a gRPC status from any HTTP status: only a gRPC exchange has one.
        let grpc_status = self.resp.grpc_status.or_else(|| {
            let grpc = self.resp.grpc || self.mode == super::Mode::Grpc;
            facts
                .grpc_status
                .filter(|_| grpc)
                .and_then(|n| i32::try_from(n).ok())
                .map(Code::from_i32)
        });
        let outcome = Outcome {
            http_status: status,
            grpc_status,
            latency,
            local_reply: self.answered_without_upstream(),
            cancelled,
        };
        // What the client saw: a cancelled request is logged as load balancers log it.
        let (status, grpc_status) = if cancelled {
            (CLIENT_CLOSED_STATUS, Some(Code::Cancelled))
        } else {
            (status, grpc_status)
        };
        self.phase = Phase::Logged;
        let op = self.op.and_then(|i| cfg.operations.get(i));
        // A route policy's objective, where it has one, judges the request instead of the
        // operation's; its counters carry the policy's label.
        let slo_policy = self.policy().filter(|p| p.slo.is_some());
        // Without an operation, the objective of unmatched requests (default_slo's
        // availability).
        // Health answers are outside every objective (`health.rs`).
        let health = op.is_none() && self.is_health_request();
        let slo = match op {
            Some(o) => slo_policy.and_then(|p| p.slo.as_ref()).or(Some(&o.slo)),
            None if health => None,
            None => Some(&cfg.observe.unmatched_slo),
        };
        let (availability, latency_verdict) = match slo {
            Some(slo) => classify(slo, &outcome),
            None => (Verdict::NotApplicable, Verdict::NotApplicable),
        };
        let label = outcome_label(&outcome);
        let record = AccessRecord {
            method: self.req.method.clone(),
            // Token query parameters hidden, whatever became of the request.
            url: record_url(&self.req, cfg),
            status,
            request_size: facts.request_size,
            response_size: facts.response_size,
            user_agent: self.req.user_agent.clone(),
            remote_ip: facts.remote_ip,
            protocol: facts.protocol,
            latency,
            trace: parse_trace(&self.req.headers),
            trace_project: cfg.observe.trace_project.clone(),
            request_id: self.req.request_id.clone(),
            operation: op
                .map(|o| o.name.clone())
                .or_else(|| health.then(|| crate::observe::HEALTH_OPERATION.to_string())),
            upstream: op.map(|o| o.upstream.name.clone()),
            grpc_status,
            principal: self.principal.clone(),
            client: self.client.clone(),
            client_principal: self.client_principal.clone(),
            policy: self.policy.clone(),
            outcome: label,
            availability,
            latency_verdict,
            client_protocol: self.client_protocol(),
        };
        let written: &[&str] = if self.span_fields_published {
            &SPAN_FIELDS
        } else {
            &[]
        };
        publish(host, cfg, &record, written);
        let (Some(index), Some(op)) = (self.op, op) else {
            if health {
                super::health::count_health(&vm, host, &outcome);
            } else {
                count_unmatched(&vm, host, &outcome, (availability, latency_verdict));
            }
            return;
        };
        if let Some(client) = &self.client {
            vm.count(
                host,
                &cfg.observe.names.client_requests(&op.name, client, label),
            );
        }
        for (metric, value) in
            MetricNames::request_metrics(&outcome, (availability, latency_verdict))
        {
            vm.apply(host, index, &op.name, slo_policy, metric, value);
        }
    }
}

/// A request without an operation is counted all the same, under the operation label
/// [`UNMATCHED_OPERATION`]: the request counter, and the SLO counters of its objective
/// (`observe.default_slo`'s availability); no latency histogram.
pub(super) fn count_unmatched(
    vm: &super::Vm,
    host: &dyn Host,
    outcome: &Outcome,
    verdicts: (Verdict, Verdict),
) {
    let names = &vm.config.observe.names;
    for (metric, value) in MetricNames::request_metrics(outcome, verdicts) {
        let name = match metric {
            RequestMetric::Requests(label) => names.requests(UNMATCHED_OPERATION, label),
            RequestMetric::SloEvents(kind) => names.slo_events(UNMATCHED_OPERATION, kind, None),
            RequestMetric::SloGoodEvents(kind) => {
                names.slo_good_events(UNMATCHED_OPERATION, kind, None)
            }
            RequestMetric::Duration => continue,
        };
        vm.add(host, &name, value);
    }
}

impl Filter {
    /// The gateway answered with an error of its own before any response came (auth refusal,
    /// no operation, JWKS outage, bad request body). An upstream answer the gateway converted
    /// (a transcoded NOT_FOUND or INVALID_ARGUMENT) is the service's answer: it counts for
    /// latency like any other.
    fn answered_without_upstream(&self) -> bool {
        matches!(self.phase, Phase::Replied { error: Some(_) }) && !self.resp.upstream_answered
    }
}

/// What Envoy knows about a finished stream (for records made outside [`Filter::on_log`]'s
/// main path).
pub(super) struct StreamFacts {
    pub latency: Duration,
    pub status: u16,
    pub request_size: u64,
    pub response_size: u64,
    pub remote_ip: Option<String>,
    pub protocol: Option<String>,
    /// The stream ended on the client's disconnect or reset (Envoy's response code details
    /// `downstream_remote_disconnect`, `downstream_remote_reset`...), whatever status was sent.
    pub client_went_away: bool,
    /// Envoy's `response.grpc_status` (derived from any HTTP status too).
    pub grpc_status: Option<i64>,
}

pub(super) fn stream_facts(
    host: &dyn Host,
    start: Option<std::time::SystemTime>,
    replied: Option<u16>,
) -> StreamFacts {
    let mut read = host.properties(&FACT_PATHS).into_iter();
    let mut next = || read.next().flatten();
    let (duration, code) = (next(), next());
    let (request_size, response_size) = (next(), next());
    let (address, protocol, details, grpc_status) = (next(), next(), next(), next());
    let latency = as_i64(duration.as_ref())
        .and_then(|n| u64::try_from(n).ok())
        .map(Duration::from_nanos)
        .or_else(|| host.now().duration_since(start?).ok())
        .unwrap_or_default();
    let status = as_i64(code.as_ref())
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| *s != 0)
        .or(replied)
        .unwrap_or(0);
    StreamFacts {
        latency,
        status,
        request_size: as_u64(request_size.as_ref()),
        response_size: as_u64(response_size.as_ref()),
        remote_ip: as_string(address).map(strip_port),
        protocol: as_string(protocol),
        client_went_away: as_string(details).is_some_and(|d| d.starts_with("downstream_remote")),
        grpc_status: as_i64(grpc_status.as_ref()),
    }
}

/// The record's `requestUrl`, token query parameters hidden.
pub(super) fn record_url(req: &super::RequestInfo, cfg: &crate::config::Config) -> String {
    format!(
        "{}://{}{}",
        scheme(&req.scheme),
        req.authority,
        cfg.auth.redact_path(&req.path)
    )
}

/// The filter state entries [`Filter::publish_span_fields`] writes when the operation matches.
const SPAN_FIELDS: [&str; 2] = ["meshgate.operation", "meshgate.upstream"];

/// The record to Envoy's access log (filter state) and, where configured, the proxy's log.
/// The per-field entries are written only where `observe.filter_state` lists them (one host
/// call each; nothing meshgate renders reads them from here); those in `written` are already
/// in the filter state with the same values.
pub(super) fn publish(
    host: &mut dyn Host,
    cfg: &crate::config::Config,
    record: &AccessRecord,
    written: &[&str],
) {
    let line = record.to_json_line();
    let wanted = &cfg.observe.filter_state;
    if !wanted.is_empty() {
        for (key, value) in record.filter_state_entries() {
            if !written.contains(&key) && wanted.iter().any(|w| w == key) {
                let _ = host.set_property(&[key], value.as_bytes());
            }
        }
    }
    let _ = host.set_property(&[RECORD_PROPERTY], line.as_bytes());
    if cfg.observe.access_log {
        host.log(Level::Info, &line);
    }
}

fn scheme(s: &str) -> &str {
    if s.is_empty() {
        "http"
    } else {
        s
    }
}

/// `10.0.0.1:5555` -> `10.0.0.1`; `[::1]:5555` -> `::1`.
fn strip_port(addr: String) -> String {
    match addr.rsplit_once(':') {
        Some((ip, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
            ip.trim_start_matches('[').trim_end_matches(']').to_string()
        }
        _ => addr,
    }
}
