//! The gateway's trace, from the filter's side (docs/tracing.md):
//! - the request's operation and upstream as filter state from the moment they are known (not
//!   only when the access record is written): Envoy reads them for the server span's name and
//!   attributes (`meshgate envoy --otlp`, `cli::envoy::tracing`), which it formats before the
//!   filter's log callback runs;
//! - for the same reason the outcome and SLO verdicts, written when the response ends (the
//!   record writes them again, final, in the log callback);
//! - meshgate's own calls (side calls): a client span, child of the gateway's server span
//!   (named by the header Envoy sets, `observe::span_export`), exported by the root's tick,
//!   with a `traceparent` naming it sent to the backend.

use super::log::stream_facts;
use super::{Filter, Phase};
use crate::host::{find_header, Host};
use crate::observe::span_export::{self, AttrValue, FinishedSpan, GatewaySpan, SPAN_HEADER};
use crate::observe::{classify, outcome_label, Outcome, Verdict};

/// A request's trace, as far as meshgate's own spans need it.
#[derive(Debug, Default)]
pub(super) struct SpanState {
    /// The gateway's server span (None: not traced, or not by the bootstrap meshgate renders).
    gateway: Option<GatewaySpan>,
    /// The side call in flight: its span id and start (ns since the epoch).
    call: Option<([u8; 8], u64)>,
}

fn unix_nanos(host: &dyn Host) -> u64 {
    host.now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Filter {
    pub(super) fn publish_span_fields(&mut self, host: &mut dyn Host) {
        let Some(op) = self.op.and_then(|i| self.vm.config.operations.get(i)) else {
            return;
        };
        // Written once: the record leaves these two to this (see `log::publish`).
        let _ = host.set_property(&["meshgate.operation"], op.name.as_bytes());
        let _ = host.set_property(&["meshgate.upstream"], op.upstream.name.as_bytes());
        self.span_fields_published = true;
    }

    /// Read (and remove: nobody else's business) the gateway span's header Envoy set.
    pub(super) fn take_gateway_span(&mut self, host: &mut dyn Host) {
        let Some(value) = find_header(&self.req.headers, SPAN_HEADER) else {
            return;
        };
        // Without tracing (the config says) the header can only be a client's: no span.
        if self.vm.config.spans {
            let sampled = span_export::sampled(&self.req.headers);
            self.span.gateway = GatewaySpan::parse(value, sampled);
        }
        self.set_request_header(host, SPAN_HEADER, None);
    }

    /// A side call is about to leave: its span starts, and the backend gets a `traceparent`
    /// naming it (instead of the client's).
    pub(super) fn start_call_span(&mut self, host: &dyn Host, headers: &mut Vec<(String, String)>) {
        let Some(gateway) = &self.span.gateway else {
            return;
        };
        let now = unix_nanos(host);
        let counter = {
            let mut q = self.vm.spans.borrow_mut();
            q.calls = q.calls.wrapping_add(1);
            q.calls
        };
        let id = span_export::new_span_id(now, self.context_id, counter, &gateway.span_id);
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case("traceparent"));
        headers.push(("traceparent".into(), gateway.traceparent(id)));
        self.span.call = Some((id, now));
    }

    /// The side call's reply (or its failure) came: its span ends and waits for the export.
    /// `status` None: no reply at all.
    pub(super) fn end_call_span(
        &mut self,
        host: &dyn Host,
        status: Option<u16>,
        grpc: Option<&str>,
    ) {
        let (Some(gateway), Some((id, start))) = (&self.span.gateway, self.span.call.take()) else {
            return;
        };
        if !gateway.sampled {
            return;
        }
        let Some(op) = self.op.and_then(|i| self.vm.config.operations.get(i)) else {
            return;
        };
        let mut attributes = vec![
            ("meshgate.operation", AttrValue::Str(op.name.clone())),
            (
                "meshgate.upstream",
                AttrValue::Str(op.upstream.name.clone()),
            ),
            ("meshgate.call", AttrValue::Str("side_call".into())),
            ("upstream_cluster", AttrValue::Str(op.upstream.name.clone())),
            ("rpc.system", AttrValue::Str("grpc".into())),
        ];
        if let crate::config::OpKind::Grpc { grpc_path, .. } = &op.kind {
            attributes.push(("rpc.method", AttrValue::Str(grpc_path.clone())));
        }
        if let Some(s) = status {
            attributes.push(("http.status_code", AttrValue::Int(i64::from(s))));
        }
        let code = grpc.and_then(|c| c.parse::<i64>().ok());
        if let Some(c) = code {
            attributes.push(("rpc.grpc.status_code", AttrValue::Int(c)));
        }
        let error = match (status, code) {
            (None, _) => Some("no reply".to_string()),
            (_, Some(0)) => None,
            (_, Some(c)) => Some(format!("grpc-status {c}")),
            (Some(s), None) => Some(format!("HTTP {s}")),
        };
        let span = FinishedSpan {
            trace_id: gateway.trace_id,
            span_id: id,
            parent_span_id: gateway.span_id,
            name: format!("{} upstream", op.upstream.name),
            start_unix_nanos: start,
            end_unix_nanos: unix_nanos(host),
            attributes,
            error,
            service: gateway.service.clone(),
        };
        self.vm.spans.borrow_mut().push(span);
    }

    /// The outcome and SLO verdicts as filter state when the response ends, for the server
    /// span's attributes (only where the bootstrap traces: Envoy set the span header).
    pub(super) fn publish_span_verdicts(&mut self, host: &mut dyn Host) {
        if self.span.gateway.is_none() || self.phase == Phase::Logged {
            return;
        }
        let vm = self.vm.clone();
        let cfg = &vm.config;
        let facts = stream_facts(host, self.start, self.resp.status);
        let outcome = Outcome {
            http_status: self.resp.status.unwrap_or(facts.status),
            grpc_status: self.resp.grpc_status,
            latency: facts.latency,
            local_reply: matches!(self.phase, Phase::Replied { error: Some(_) })
                && !self.resp.upstream_answered,
            cancelled: false,
        };
        let op = self.op.and_then(|i| cfg.operations.get(i));
        let slo_policy = self.policy().filter(|p| p.slo.is_some());
        let slo = match op {
            Some(o) => slo_policy.and_then(|p| p.slo.as_ref()).or(Some(&o.slo)),
            None => Some(&cfg.observe.unmatched_slo),
        };
        let (availability, latency) = match slo {
            Some(slo) => classify(slo, &outcome),
            None => (Verdict::NotApplicable, Verdict::NotApplicable),
        };
        let entries = [
            ("meshgate.outcome", outcome_label(&outcome)),
            ("meshgate.slo.availability", availability.as_str()),
            ("meshgate.slo.latency", latency.as_str()),
        ];
        for (key, value) in entries {
            let _ = host.set_property(&[key], value.as_bytes());
        }
    }
}
