//! meshgate's own spans: Envoy gives a call a Wasm filter makes (`dispatch_http_call`: a
//! transcoded GET, every transcoded call under `upstream_calls: side_call`) no span, so meshgate
//! makes a client span for it, child of the gateway's server span, and exports it itself over
//! OTLP/gRPC (`TraceService/Export`) to the collector's cluster that `meshgate envoy --otlp`
//! renders. The server span's context reaches the filter in a request header that Envoy sets
//! in front of it ([`SPAN_HEADER`], `cli::envoy::tracing`); without it (no tracing, Istio) no
//! span is made. Spans wait in a bounded queue and leave in one export per tick: a collector
//! that is down costs at most [`MAX_QUEUED`] spans of memory, the rest are dropped and counted.
//! docs/tracing.md.

/// Request header Envoy's `header_mutation` filter sets to `{trace id}-{span id}-{service}`
/// from the gateway span (`%TRACE_ID%-%SPAN_ID%-...`); meshgate removes it from the request.
pub const SPAN_HEADER: &str = "x-meshgate-span";
/// The collector's cluster (`meshgate envoy --otlp`).
pub const OTLP_CLUSTER: &str = "meshgate_otlp";
/// The OTLP/gRPC method spans are exported with.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// Most finished spans waiting for an export.
pub const MAX_QUEUED: usize = 256;
/// Most spans in one export request.
pub const MAX_PER_EXPORT: usize = 64;

/// The gateway's server span, as the request header names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySpan {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
    pub service: String,
}

fn hex_nibble(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let (hi, lo) = (pair.first().copied()?, pair.get(1).copied()?);
        *o = (hex_nibble(hi)? << 4) | hex_nibble(lo)?;
    }
    Some(out)
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for n in [b >> 4, b & 15] {
            s.push(DIGITS.get(usize::from(n)).map_or('0', |d| char::from(*d)));
        }
    }
    s
}

impl GatewaySpan {
    /// From [`SPAN_HEADER`]'s value and the request's sampling decision. None when Envoy has
    /// no span (`--`: not traced) or the value is not Envoy's.
    pub fn parse(value: &str, sampled: bool) -> Option<GatewaySpan> {
        let mut parts = value.splitn(3, '-');
        let trace_id = unhex::<16>(parts.next()?)?;
        let span_id = unhex::<8>(parts.next()?)?;
        let service = parts.next().unwrap_or("meshgate").to_string();
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(GatewaySpan {
            trace_id,
            span_id,
            sampled,
            service,
        })
    }

    /// The `traceparent` that names a child span `span_id` of this one.
    pub fn traceparent(&self, span_id: [u8; 8]) -> String {
        let flags = if self.sampled { "01" } else { "00" };
        format!("00-{}-{}-{flags}", hex(&self.trace_id), hex(&span_id))
    }
}

/// Whether Envoy samples the request's spans: the incoming `traceparent`'s flag when there is
/// one (Envoy's OpenTelemetry tracer follows its parent), else the connection manager's
/// decision, which Envoy writes into the `x-request-id` UUID (its 15th character: `9`, `a` or
/// `b` traced, anything else not). Without either, sampled.
pub fn sampled(headers: &[(String, String)]) -> bool {
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if let Some(tp) = find("traceparent") {
        let flags = tp
            .rsplit('-')
            .next()
            .and_then(|f| u8::from_str_radix(f, 16).ok());
        if tp.len() == 55 {
            if let Some(f) = flags {
                return f & 1 == 1;
            }
        }
    }
    match find("x-request-id").map(str::as_bytes) {
        Some(id) if id.len() == 36 => matches!(id.get(14), Some(b'9' | b'a' | b'b')),
        _ => true,
    }
}

/// A span id for a new span: unique enough within a trace (a mix of the clock, the stream,
/// a per-VM counter and the parent), never zero.
pub fn new_span_id(now_nanos: u64, context_id: u32, counter: u64, parent: &[u8; 8]) -> [u8; 8] {
    let mut x = now_nanos
        ^ (u64::from(context_id) << 32)
        ^ counter.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ u64::from_le_bytes(*parent);
    // splitmix64's finalizer.
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    if x == 0 {
        x = 1;
    }
    x.to_be_bytes()
}

/// A span attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
}

/// A finished span of meshgate's, waiting for its export.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedSpan {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: [u8; 8],
    pub name: String,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub attributes: Vec<(&'static str, AttrValue)>,
    /// The call failed (OTLP status ERROR, with this message); None: OK.
    pub error: Option<String>,
    pub service: String,
}

/// Finished spans waiting for the next export; bounded.
#[derive(Debug, Default)]
pub struct SpanQueue {
    spans: Vec<FinishedSpan>,
    /// Spans dropped because the queue was full (the collector slow or down).
    pub dropped: u64,
    /// Calls given a span so far (a span id ingredient).
    pub calls: u64,
}

impl SpanQueue {
    /// Queue a span; false (and counted) when the queue is full.
    pub fn push(&mut self, span: FinishedSpan) -> bool {
        if self.spans.len() >= MAX_QUEUED {
            self.dropped += 1;
            return false;
        }
        self.spans.push(span);
        true
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The next export's `ExportTraceServiceRequest` (to frame as a gRPC message), taking up
    /// to [`MAX_PER_EXPORT`] spans.
    pub fn take_export(&mut self) -> Option<Vec<u8>> {
        if self.spans.is_empty() {
            return None;
        }
        let n = self.spans.len().min(MAX_PER_EXPORT);
        let batch: Vec<FinishedSpan> = self.spans.drain(..n).collect();
        Some(encode_export(&batch))
    }
}

/// The request headers of an export call.
pub fn export_headers() -> Vec<(String, String)> {
    [
        (":method", "POST"),
        (":path", EXPORT_PATH),
        (":authority", OTLP_CLUSTER),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

// Protobuf, written by hand: the few OTLP messages meshgate sends (field numbers of
// opentelemetry-proto's trace, common and resource protos).

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn bytes_field(out: &mut Vec<u8>, field: u32, data: &[u8]) {
    key(out, field, 2);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

fn message(out: &mut Vec<u8>, field: u32, build: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    build(&mut inner);
    bytes_field(out, field, &inner);
}

fn fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    key(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

/// `KeyValue{key, value: AnyValue}`.
fn attribute(out: &mut Vec<u8>, field: u32, name: &str, value: &AttrValue) {
    message(out, field, |kv| {
        bytes_field(kv, 1, name.as_bytes());
        message(kv, 2, |v| match value {
            AttrValue::Str(s) => bytes_field(v, 1, s.as_bytes()),
            AttrValue::Int(i) => {
                key(v, 3, 0);
                varint(v, *i as u64);
            }
        });
    });
}

fn span(out: &mut Vec<u8>, s: &FinishedSpan) {
    message(out, 2, |m| {
        bytes_field(m, 1, &s.trace_id);
        bytes_field(m, 2, &s.span_id);
        bytes_field(m, 4, &s.parent_span_id);
        bytes_field(m, 5, s.name.as_bytes());
        key(m, 6, 0);
        varint(m, 3); // SPAN_KIND_CLIENT
        fixed64(m, 7, s.start_unix_nanos);
        fixed64(m, 8, s.end_unix_nanos);
        for (k, v) in &s.attributes {
            attribute(m, 9, k, v);
        }
        // Status{message = 2, code = 3}: OK 1, ERROR 2.
        message(m, 15, |st| {
            if let Some(msg) = &s.error {
                bytes_field(st, 2, msg.as_bytes());
            }
            key(st, 3, 0);
            varint(st, if s.error.is_some() { 2 } else { 1 });
        });
    });
}

/// `ExportTraceServiceRequest`: one `ResourceSpans` per service name, one scope (`meshgate`).
pub fn encode_export(spans: &[FinishedSpan]) -> Vec<u8> {
    let mut services: Vec<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    let mut out = Vec::new();
    for service in services {
        message(&mut out, 1, |rs| {
            message(rs, 1, |res| {
                attribute(res, 1, "service.name", &AttrValue::Str(service.to_string()));
            });
            message(rs, 2, |ss| {
                message(ss, 1, |scope| bytes_field(scope, 1, b"meshgate"));
                for s in spans.iter().filter(|s| s.service == service) {
                    span(ss, s);
                }
            });
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_header_names_the_gateway_span() {
        let v = "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-meshgate-e2e";
        let s = GatewaySpan::parse(v, true).unwrap();
        assert_eq!(hex(&s.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex(&s.span_id), "00f067aa0ba902b7");
        assert_eq!(s.service, "meshgate-e2e");
        assert_eq!(
            s.traceparent([1, 2, 3, 4, 5, 6, 7, 8]),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0102030405060708-01"
        );
        // Envoy with no span formats the ids empty.
        assert_eq!(GatewaySpan::parse("--meshgate", true), None);
        assert_eq!(GatewaySpan::parse("zz-00f067aa0ba902b7-x", true), None);
        assert_eq!(
            GatewaySpan::parse("00000000000000000000000000000000-00f067aa0ba902b7-x", true),
            None
        );
    }

    #[test]
    fn sampling_follows_the_parent_then_the_request_id() {
        let tp = |f: &str| format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{f}");
        assert!(sampled(&headers(&[("traceparent", &tp("01"))])));
        assert!(!sampled(&headers(&[("traceparent", &tp("00"))])));
        let rid = |c: char| format!("9cf78a62-c44d-{c}8dd-883f-62fc012e7436");
        assert!(sampled(&headers(&[("x-request-id", &rid('9'))])));
        assert!(sampled(&headers(&[("x-request-id", &rid('b'))])));
        assert!(!sampled(&headers(&[("x-request-id", &rid('4'))])));
        assert!(sampled(&headers(&[])));
    }

    fn finished(i: u8, service: &str) -> FinishedSpan {
        FinishedSpan {
            trace_id: [7; 16],
            span_id: [i; 8],
            parent_span_id: [9; 8],
            name: "payments.GetPayment".into(),
            start_unix_nanos: 10,
            end_unix_nanos: 20,
            attributes: vec![
                ("rpc.system", AttrValue::Str("grpc".into())),
                ("rpc.grpc.status_code", AttrValue::Int(5)),
            ],
            error: Some("NOT_FOUND".into()),
            service: service.into(),
        }
    }

    /// Decoded with prost-reflect against a hand-made descriptor would be heavier: check the
    /// wire bytes that matter instead (the kit's OTLP receiver decodes the real thing e2e).
    #[test]
    fn export_is_grouped_by_service_and_carries_the_ids() {
        let body = encode_export(&[finished(1, "a"), finished(2, "b"), finished(3, "a")]);
        let find = |needle: &[u8]| body.windows(needle.len()).filter(|w| *w == needle).count();
        assert_eq!(find(b"service.name"), 2);
        assert_eq!(find(&[1; 8]), 1);
        assert_eq!(find(&[7; 16]), 3);
        assert_eq!(find(b"NOT_FOUND"), 3);
        // The first span of service `a` comes before `b`'s resource.
        let a = body.windows(1).position(|w| w == b"a").unwrap();
        let b = body.windows(1).position(|w| w == b"b").unwrap();
        assert!(a < b);
    }

    #[test]
    fn the_queue_is_bounded_and_exports_in_batches() {
        let mut q = SpanQueue::default();
        for i in 0..(MAX_QUEUED + 3) {
            q.push(finished((i % 200) as u8, "s"));
        }
        assert_eq!(q.len(), MAX_QUEUED);
        assert_eq!(q.dropped, 3);
        let first = q.take_export().unwrap();
        let name = b"payments.GetPayment";
        let spans = first.windows(name.len()).filter(|w| *w == name).count();
        assert_eq!(spans, MAX_PER_EXPORT);
        assert_eq!(q.len(), MAX_QUEUED - MAX_PER_EXPORT);
        while q.take_export().is_some() {}
        assert!(q.is_empty());
        assert_eq!(q.take_export(), None);
    }

    #[test]
    fn span_ids_differ_per_call_and_are_never_zero() {
        let p = [1; 8];
        let a = new_span_id(5, 1, 0, &p);
        let b = new_span_id(5, 1, 1, &p);
        assert_ne!(a, b);
        assert_ne!(a, [0; 8]);
    }
}
