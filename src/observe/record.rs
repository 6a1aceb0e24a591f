//! The access record: one JSON line per request that Cloud Logging reads as structured
//! (`severity`, `httpRequest`, `logging.googleapis.com/trace`...), plus meshgate's fields. The
//! same fields go to Envoy's own access log through filter state, so both logs agree.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::classify::Verdict;
use super::trace::TraceContext;
use crate::status::Code;

/// The record's `recordedBy`: meshgate wrote it. Envoy writes a record of the same shape for
/// a request meshgate could not record (`"envoy"`: `cli::envoy::envoy_record`).
pub const RECORDED_BY: &str = "meshgate";

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
    /// The configured client whose API key let the request in (never the key).
    pub client: Option<String>,
    /// The verified client certificate's identity (mTLS), when the connection had one.
    pub client_principal: Option<String>,
    pub policy: Option<String>,
    /// The request counter's `outcome` label ([`super::outcome_label`]).
    pub outcome: &'static str,
    pub availability: Verdict,
    pub latency_verdict: Verdict,
    /// What the client spoke: `grpc`, `grpc-web`, `http`, or `cors-preflight`.
    pub client_protocol: Option<&'static str>,
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
    ///
    /// Written directly, byte for byte what `serde_json::to_string(&self.to_json())` gives
    /// (keys in the same sorted order, the same escapes), without building the `Value` tree:
    /// this runs on every request.
    pub fn to_json_line(&self) -> String {
        let mut w = JsonWriter::with_capacity(512 + self.url.len() * 2);
        w.open();
        w.str_field("client", self.client.as_deref());
        w.str_field("clientPrincipal", self.client_principal.as_deref());
        w.str_field("clientProtocol", self.client_protocol);
        if let Some(code) = self.grpc_status {
            w.str_field("grpcStatus", code.name());
        }
        w.key("httpRequest");
        self.write_http_request(&mut w);
        if let Some(trace) = &self.trace {
            w.str_field("logging.googleapis.com/spanId", trace.span_id.as_deref());
            w.str_field(
                "logging.googleapis.com/trace",
                self.trace_name(trace).as_str(),
            );
            if let Some(sampled) = trace.sampled {
                w.key("logging.googleapis.com/trace_sampled");
                w.raw(if sampled { "true" } else { "false" });
            }
        }
        w.str_field("message", self.message().as_str());
        w.str_field("operation", self.operation.as_deref());
        w.str_field("outcome", self.outcome);
        w.str_field("policy", self.policy.as_deref());
        w.str_field("principal", self.principal.as_deref());
        w.str_field("recordedBy", RECORDED_BY);
        w.str_field("requestId", self.request_id.as_deref());
        w.str_field("severity", self.severity());
        w.key("slo");
        w.open();
        w.str_field("availability", self.availability.as_str());
        w.str_field("latency", self.latency_verdict.as_str());
        w.close();
        w.str_field("upstream", self.upstream.as_deref());
        w.close();
        w.out
    }

    fn write_http_request(&self, w: &mut JsonWriter) {
        w.open();
        w.str_field("latency", format_duration(self.latency).as_str());
        w.str_field("protocol", self.protocol.as_deref());
        w.str_field("remoteIp", self.remote_ip.as_deref());
        w.str_field("requestMethod", self.method.as_str());
        w.str_field("requestSize", self.request_size.to_string().as_str());
        w.str_field("requestUrl", self.url.as_str());
        w.str_field("responseSize", self.response_size.to_string().as_str());
        w.key("status");
        w.raw(&self.status.to_string());
        w.str_field("userAgent", self.user_agent.as_deref());
        w.close();
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
        put("client", &self.client);
        put("clientPrincipal", &self.client_principal);
        put("policy", &self.policy);
        if let Some(p) = self.client_protocol {
            out.insert("clientProtocol".into(), json!(p));
        }
        if let Some(code) = self.grpc_status {
            out.insert("grpcStatus".into(), json!(code.name()));
        }
        out.insert("outcome".into(), json!(self.outcome));
        out.insert("recordedBy".into(), json!(RECORDED_BY));
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
            ("meshgate.client", &self.client),
            ("meshgate.client_principal", &self.client_principal),
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
        if let Some(p) = self.client_protocol {
            out.push(("meshgate.client_protocol", p.to_string()));
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

/// A compact JSON object writer for [`AccessRecord::to_json_line`]: keys come in the order
/// given (the caller keeps them sorted, as serde_json's map does).
struct JsonWriter {
    out: String,
    /// Whether the innermost open object has a field already.
    first: bool,
}

impl JsonWriter {
    fn with_capacity(n: usize) -> JsonWriter {
        JsonWriter {
            out: String::with_capacity(n),
            first: true,
        }
    }

    fn open(&mut self) {
        self.out.push('{');
        self.first = true;
    }

    fn close(&mut self) {
        self.out.push('}');
        self.first = false;
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.string(key);
        self.out.push(':');
    }

    fn raw(&mut self, text: &str) {
        self.out.push_str(text);
    }

    /// A string field; `None` leaves the field out.
    fn str_field<'a>(&mut self, key: &str, value: impl Into<Option<&'a str>>) {
        if let Some(v) = value.into() {
            self.key(key);
            self.string(v);
        }
    }

    /// A JSON string with serde_json's escapes: `"` and `\\`, the short forms of
    /// `\b \t \n \f \r`, `\u00XX` for the other control characters; everything else as is.
    fn string(&mut self, s: &str) {
        self.out.push('"');
        let mut rest = s;
        while let Some(i) = rest.find(|c: char| c < ' ' || c == '"' || c == '\\') {
            let (plain, tail) = rest.split_at(i);
            self.out.push_str(plain);
            let mut chars = tail.chars();
            if let Some(c) = chars.next() {
                match c {
                    '"' => self.out.push_str("\\\""),
                    '\\' => self.out.push_str("\\\\"),
                    '\u{8}' => self.out.push_str("\\b"),
                    '\t' => self.out.push_str("\\t"),
                    '\n' => self.out.push_str("\\n"),
                    '\u{c}' => self.out.push_str("\\f"),
                    '\r' => self.out.push_str("\\r"),
                    c => self.out.push_str(&format!("\\u{:04x}", u32::from(c))),
                }
            }
            rest = chars.as_str();
        }
        self.out.push_str(rest);
        self.out.push('"');
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
            client: Some("acme".into()),
            client_principal: None,
            policy: None,
            outcome: "ok",
            availability: Verdict::Good,
            latency_verdict: Verdict::Good,
            client_protocol: Some("grpc-web"),
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
        assert_eq!(v["recordedBy"], "meshgate");
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
    fn the_line_is_exactly_what_serde_json_writes() {
        let mut odd = record();
        odd.url = "http://h/p?q=\"a\"&b=\\x\u{1}\u{1f}\u{7f}\t\r\n\u{8}\u{c}é漢😀".into();
        odd.user_agent = Some("ua \"quoted\" \\ back".into());
        odd.principal = Some("\u{0}".into());
        odd.client_principal = Some("spiffe://partners/acme".into());
        odd.policy = Some(String::new());
        odd.trace_project = None;
        odd.latency = Duration::from_nanos(1_000_500);
        let mut bare = record();
        bare.trace = None;
        bare.grpc_status = None;
        bare.user_agent = None;
        bare.remote_ip = None;
        bare.protocol = None;
        bare.request_id = None;
        bare.operation = None;
        bare.upstream = None;
        bare.principal = None;
        bare.status = 0;
        let mut half_trace = record();
        half_trace.trace = Some(TraceContext {
            trace_id: "t".into(),
            span_id: None,
            sampled: Some(false),
        });
        for r in [record(), odd, bare, half_trace] {
            assert_eq!(
                r.to_json_line(),
                serde_json::to_string(&r.to_json()).unwrap()
            );
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
        assert_eq!(get("meshgate.client_principal"), None);
        r.client_principal = Some("spiffe://partners/acme".into());
        let entries = r.filter_state_entries();
        assert!(entries.contains(&("meshgate.client_principal", "spiffe://partners/acme".into())));
        assert_eq!(r.to_json()["clientPrincipal"], "spiffe://partners/acme");
    }
}
