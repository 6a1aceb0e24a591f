//! The access record: one JSON line per request that Cloud Logging reads as structured
//! (`severity`, `httpRequest`, `logging.googleapis.com/trace`...), plus meshgate's fields. The
//! same fields go to Envoy's own access log through filter state, so both logs agree.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::classify::Verdict;
use super::trace::TraceContext;
use crate::status::Code;

/// Everything the record says about one request. The filter fills it at the end of the
/// stream; nothing here reads the clock or the proxy.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessRecord {
    pub method: String,
    /// `scheme://authority/path?query`, as Cloud Logging's `requestUrl` wants.
    pub url: String,
    /// Status sent to the client (0: none).
    pub status: u16,
    pub request_size: u64,
    pub response_size: u64,
    pub user_agent: Option<String>,
    pub remote_ip: Option<String>,
    /// `HTTP/1.1`, `HTTP/2`...
    pub protocol: Option<String>,
    /// The whole request as Envoy saw it.
    pub latency: Duration,
    pub trace: Option<TraceContext>,
    /// `observe.trace_project`: the trace field becomes `projects/<id>/traces/<trace>`.
    pub trace_project: Option<String>,
    pub request_id: Option<String>,
    pub operation: Option<String>,
    pub upstream: Option<String>,
    pub grpc_status: Option<Code>,
    /// The authenticated subject only (never the token or other claims).
    pub principal: Option<String>,
    pub policy: Option<String>,
    /// The request counter's `outcome` label ([`super::outcome_label`]).
    pub outcome: &'static str,
    pub availability: Verdict,
    pub latency_verdict: Verdict,
}

impl AccessRecord {
    /// `ERROR` for 5xx, `WARNING` for 4xx, `INFO` otherwise. A native gRPC error (HTTP 200 with a
    /// non-OK `grpc-status`) is read as its code's mapped HTTP status.
    pub fn severity(&self) -> &'static str {
        let status = match self.grpc_status {
            Some(code) if code != Code::Ok && (200..300).contains(&self.status) => {
                code.http_status()
            }
            _ => self.status,
        };
        match status {
            500..=599 => "ERROR",
            400..=499 => "WARNING",
            _ => "INFO",
        }
    }

    /// The record as one line of JSON (no trailing newline). Absent values are left out rather
    /// than written as null, so Cloud Logging's parser accepts every field it knows.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(&self.to_json()).unwrap_or_default()
    }

    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("severity".into(), json!(self.severity()));
        out.insert("message".into(), json!(self.message()));
        out.insert("httpRequest".into(), Value::Object(self.http_request()));
        if let Some(trace) = &self.trace {
            out.insert(
                "logging.googleapis.com/trace".into(),
                json!(self.trace_name(trace)),
            );
            if let Some(span) = &trace.span_id {
                out.insert("logging.googleapis.com/spanId".into(), json!(span));
            }
            if let Some(sampled) = trace.sampled {
                out.insert(
                    "logging.googleapis.com/trace_sampled".into(),
                    json!(sampled),
                );
            }
        }
        let mut put = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                out.insert(k.into(), json!(v));
            }
        };
        put("requestId", &self.request_id);
        put("operation", &self.operation);
        put("upstream", &self.upstream);
        put("principal", &self.principal);
        put("policy", &self.policy);
        if let Some(code) = self.grpc_status {
            out.insert("grpcStatus".into(), json!(code.name()));
        }
        out.insert("outcome".into(), json!(self.outcome));
        out.insert(
            "slo".into(),
            json!({
                "availability": self.availability.as_str(),
                "latency": self.latency_verdict.as_str(),
            }),
        );
        Value::Object(out)
    }

    /// Fields for Envoy's access log, published with `Host::set_property`. Envoy keeps a
    /// property set by a wasm filter as filter state named `wasm.<name>`, so an access log
    /// format reads them as `%FILTER_STATE(wasm.meshgate.operation:PLAIN)%`. Absent values are
    /// left out (Envoy then prints `-`).
    pub fn filter_state_entries(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::with_capacity(10);
        let optional = [
            ("meshgate.operation", &self.operation),
            ("meshgate.upstream", &self.upstream),
            ("meshgate.principal", &self.principal),
            ("meshgate.policy", &self.policy),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                out.push((name, v.clone()));
            }
        }
        if let Some(code) = self.grpc_status {
            out.push(("meshgate.grpc_status", code.name().to_string()));
        }
        out.push(("meshgate.outcome", self.outcome.to_string()));
        out.push((
            "meshgate.slo.availability",
            self.availability.as_str().to_string(),
        ));
        out.push((
            "meshgate.slo.latency",
            self.latency_verdict.as_str().to_string(),
        ));
        out
    }

    fn http_request(&self) -> Map<String, Value> {
        let mut req = Map::new();
        req.insert("requestMethod".into(), json!(self.method));
        req.insert("requestUrl".into(), json!(self.url));
        req.insert("status".into(), json!(self.status));
        // int64 fields are strings in proto3 JSON (LogEntry's own format).
        req.insert("requestSize".into(), json!(self.request_size.to_string()));
        req.insert("responseSize".into(), json!(self.response_size.to_string()));
        for (k, v) in [
            ("userAgent", &self.user_agent),
            ("remoteIp", &self.remote_ip),
            ("protocol", &self.protocol),
        ] {
            if let Some(v) = v {
                req.insert(k.into(), json!(v));
            }
        }
        req.insert("latency".into(), json!(format_duration(self.latency)));
        req
    }

    fn trace_name(&self, trace: &TraceContext) -> String {
        match self.trace_project.as_deref().filter(|p| !p.is_empty()) {
            Some(project) => format!("projects/{project}/traces/{}", trace.trace_id),
            None => trace.trace_id.clone(),
        }
    }

    /// A short summary Cloud Logging shows as the entry's headline.
    fn message(&self) -> String {
        let op = self.operation.as_deref().unwrap_or("-");
        format!(
            "{} {} {} {} {}",
            self.method,
            self.url,
            self.status,
            op,
            format_duration(self.latency)
        )
    }
}

/// A duration as protobuf's JSON writes `google.protobuf.Duration`: seconds with 0, 3, 6 or 9
/// fractional digits and an `s` (`0.012s`, `1s`, `1.000500s`).
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        format!("{secs}s")
    } else if nanos % 1_000_000 == 0 {
        format!("{secs}.{:03}s", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!("{secs}.{:06}s", nanos / 1_000)
    } else {
        format!("{secs}.{nanos:09}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AccessRecord {
        AccessRecord {
            method: "GET".into(),
            url: "http://localhost:8080/v1/payments/p1?view=FULL".into(),
            status: 200,
            request_size: 120,
            response_size: 345,
            user_agent: Some("curl/8.5".into()),
            remote_ip: Some("127.0.0.1".into()),
            protocol: Some("HTTP/1.1".into()),
            latency: Duration::from_millis(12),
            trace: Some(TraceContext {
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                span_id: Some("00f067aa0ba902b7".into()),
                sampled: Some(true),
            }),
            trace_project: Some("my-proj".into()),
            request_id: Some("r-1".into()),
            operation: Some("meshgate.demo.v1.Payments.GetPayment".into()),
            upstream: Some("payments".into()),
            grpc_status: Some(Code::Ok),
            principal: Some("alice".into()),
            policy: None,
            outcome: "ok",
            availability: Verdict::Good,
            latency_verdict: Verdict::Good,
        }
    }

    #[test]
    fn record_is_one_line_of_cloud_logging_json() {
        let line = record().to_json_line();
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["severity"], "INFO");
        assert_eq!(v["httpRequest"]["requestMethod"], "GET");
        assert_eq!(v["httpRequest"]["status"], 200);
        assert_eq!(v["httpRequest"]["requestSize"], "120");
        assert_eq!(v["httpRequest"]["responseSize"], "345");
        assert_eq!(v["httpRequest"]["latency"], "0.012s");
        assert_eq!(v["httpRequest"]["protocol"], "HTTP/1.1");
        assert_eq!(v["httpRequest"]["remoteIp"], "127.0.0.1");
        assert_eq!(v["httpRequest"]["userAgent"], "curl/8.5");
        assert_eq!(
            v["logging.googleapis.com/trace"],
            "projects/my-proj/traces/4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(v["logging.googleapis.com/spanId"], "00f067aa0ba902b7");
        assert_eq!(v["logging.googleapis.com/trace_sampled"], true);
        assert_eq!(v["operation"], "meshgate.demo.v1.Payments.GetPayment");
        assert_eq!(v["grpcStatus"], "OK");
        assert_eq!(v["principal"], "alice");
        assert_eq!(v["slo"]["availability"], "good");
        assert!(v.get("policy").is_none());
    }

    #[test]
    fn trace_is_bare_without_project() {
        let mut r = record();
        r.trace_project = None;
        let v = r.to_json();
        assert_eq!(
            v["logging.googleapis.com/trace"],
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    #[test]
    fn no_trace_means_no_trace_fields() {
        let mut r = record();
        r.trace = None;
        let v = r.to_json();
        assert!(v.get("logging.googleapis.com/trace").is_none());
        assert!(v.get("logging.googleapis.com/spanId").is_none());
    }

    #[test]
    fn severity_follows_status_class() {
        let mut r = record();
        r.grpc_status = None;
        for (status, sev) in [
            (200, "INFO"),
            (302, "INFO"),
            (404, "WARNING"),
            (503, "ERROR"),
        ] {
            r.status = status;
            assert_eq!(r.severity(), sev, "{status}");
        }
    }

    #[test]
    fn native_grpc_error_with_http_200_is_an_error() {
        let mut r = record();
        r.grpc_status = Some(Code::Unavailable);
        assert_eq!(r.severity(), "ERROR");
        r.grpc_status = Some(Code::NotFound);
        assert_eq!(r.severity(), "WARNING");
    }

    #[test]
    fn durations_are_written_like_protobuf_json() {
        let cases = [
            (Duration::from_millis(12), "0.012s"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(1500), "1.500s"),
            (Duration::from_micros(1_000_500), "1.000500s"),
            (Duration::from_nanos(1_234_567), "0.001234567s"),
            (Duration::ZERO, "0s"),
        ];
        for (d, s) in cases {
            assert_eq!(format_duration(d), s);
        }
    }

    #[test]
    fn filter_state_carries_the_meshgate_fields() {
        let mut r = record();
        r.latency_verdict = Verdict::NotApplicable;
        let entries = r.filter_state_entries();
        let get = |k: &str| {
            entries
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            get("meshgate.operation"),
            Some("meshgate.demo.v1.Payments.GetPayment")
        );
        assert_eq!(get("meshgate.upstream"), Some("payments"));
        assert_eq!(get("meshgate.principal"), Some("alice"));
        assert_eq!(get("meshgate.grpc_status"), Some("OK"));
        assert_eq!(get("meshgate.slo.availability"), Some("good"));
        assert_eq!(get("meshgate.slo.latency"), Some("n/a"));
        assert_eq!(get("meshgate.policy"), None);
    }
}
