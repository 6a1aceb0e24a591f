//! The end of a request: one access record (to the proxy's log and, as filter state, to
//! Envoy's own access log) and its metrics: requests by outcome, SLO good/total events, and
//! the latency histogram.

use std::time::Duration;

use super::{Filter, Phase};
use crate::host::{Host, Level};
use crate::observe::{
    classify, outcome_label, parse_trace, AccessRecord, MetricNames, Outcome, Verdict,
};
use crate::status::Code;

/// Filter state key of the whole record: `%FILTER_STATE(wasm.meshgate.record:PLAIN)%`.
pub const RECORD_PROPERTY: &str = "meshgate.record";

/// Envoy serializes integer and duration properties as 8 little-endian bytes.
fn property_i64(host: &dyn Host, path: &[&str]) -> Option<i64> {
    let b = host.property(path)?;
    let arr: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some(i64::from_le_bytes(arr))
}

fn property_string(host: &dyn Host, path: &[&str]) -> Option<String> {
    host.property(path)
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| !s.is_empty())
}

fn property_u64(host: &dyn Host, path: &[&str]) -> u64 {
    property_i64(host, path)
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0)
}

impl Filter {
    pub fn on_log(&mut self, host: &mut dyn Host) {
        if self.phase == Phase::Logged {
            return;
        }
        let vm = self.vm.clone();
        let cfg = &vm.config;
        let latency = property_i64(host, &["request", "duration"])
            .and_then(|n| u64::try_from(n).ok())
            .map(Duration::from_nanos)
            .or_else(|| host.now().duration_since(self.start?).ok())
            .unwrap_or_default();
        let status = property_i64(host, &["response", "code"])
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| *s != 0)
            .or(self.resp.status)
            .unwrap_or(0);
        let grpc_status = self.resp.grpc_status.or_else(|| {
            property_i64(host, &["response", "grpc_status"])
                .and_then(|n| i32::try_from(n).ok())
                .map(Code::from_i32)
        });
        let outcome = Outcome {
            http_status: status,
            grpc_status,
            latency,
            local_reply: self.answered_without_upstream(),
        };
        self.phase = Phase::Logged;
        let op = self.op.and_then(|i| cfg.operations.get(i));
        // A route policy's objective, where it has one, judges the request instead of the
        // operation's; its counters carry the policy's label.
        let slo_policy = self.policy().filter(|p| p.slo.is_some());
        let slo = slo_policy
            .and_then(|p| p.slo.as_ref())
            .or(op.map(|o| &o.slo));
        let (availability, latency_verdict) = match slo {
            Some(slo) => classify(slo, &outcome),
            None => (Verdict::NotApplicable, Verdict::NotApplicable),
        };
        let label = outcome_label(&outcome);
        let record = AccessRecord {
            method: self.req.method.clone(),
            // Token query parameters hidden, whatever became of the request.
            url: format!(
                "{}://{}{}",
                scheme(&self.req.scheme),
                self.req.authority,
                cfg.auth.redact_path(&self.req.path)
            ),
            status,
            request_size: property_u64(host, &["request", "total_size"]),
            response_size: property_u64(host, &["response", "total_size"]),
            user_agent: self.req.user_agent.clone(),
            remote_ip: property_string(host, &["source", "address"]).map(strip_port),
            protocol: property_string(host, &["request", "protocol"]),
            latency,
            trace: parse_trace(&self.req.headers),
            trace_project: cfg.observe.trace_project.clone(),
            request_id: self.req.request_id.clone(),
            operation: op.map(|o| o.name.clone()),
            upstream: op.map(|o| o.upstream.name.clone()),
            grpc_status,
            principal: self.principal.clone(),
            client_principal: self.client_principal.clone(),
            policy: self.policy.clone(),
            outcome: label,
            availability,
            latency_verdict,
        };
        let line = record.to_json_line();
        for (key, value) in record.filter_state_entries() {
            let _ = host.set_property(&[key], value.as_bytes());
        }
        let _ = host.set_property(&[RECORD_PROPERTY], line.as_bytes());
        if cfg.observe.access_log {
            host.log(Level::Info, &line);
        }
        let (Some(index), Some(op)) = (self.op, op) else {
            return;
        };
        for (metric, value) in
            MetricNames::request_metrics(&outcome, (availability, latency_verdict))
        {
            vm.apply(host, index, &op.name, slo_policy, metric, value);
        }
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
