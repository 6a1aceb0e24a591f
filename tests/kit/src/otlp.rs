//! An OTLP/gRPC trace receiver: the collector's `TraceService/Export` (tonic, the subset of
//! opentelemetry-proto in `tests/kit/proto`), in-process on 127.0.0.1, keeping every span it
//! receives for a test to read. What Envoy's OpenTelemetry tracer sends to a collector.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{KitError, KitResult};
use crate::http_server::ServerThread;
use crate::proto::opentelemetry::proto::collector::trace::v1 as otlp;
use otlp::trace_service_server::{TraceService, TraceServiceServer};

/// One received span, flattened: ids in lower-case hex, attributes as strings.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// `otlp::span::SpanKind` as a number (2 server, 3 client).
    pub kind: i32,
    pub attributes: Vec<(String, String)>,
    /// The resource's `service.name`.
    pub service: String,
    /// The span's status code (0 unset, 1 OK, 2 ERROR).
    pub status: i32,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
}

impl ReceivedSpan {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn value(v: Option<&otlp::AnyValue>) -> String {
    use otlp::any_value::Value;
    match v.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => hex(b),
        None => String::new(),
    }
}

fn attributes(kvs: &[otlp::KeyValue]) -> Vec<(String, String)> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), value(kv.value.as_ref())))
        .collect()
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<otlp::ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<otlp::ExportTraceServiceResponse>, tonic::Status> {
        let mut out = Vec::new();
        for rs in request.into_inner().resource_spans {
            let resource = rs
                .resource
                .as_ref()
                .map(|r| attributes(&r.attributes))
                .unwrap_or_default();
            let service = resource
                .iter()
                .find(|(k, _)| k == "service.name")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
                out.push(ReceivedSpan {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name.clone(),
                    kind: span.kind,
                    attributes: attributes(&span.attributes),
                    service: service.clone(),
                    status: span.status.as_ref().map_or(0, |s| s.code),
                    start_unix_nanos: span.start_time_unix_nano,
                    end_unix_nanos: span.end_time_unix_nano,
                });
            }
        }
        self.spans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(out);
        Ok(tonic::Response::new(otlp::ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// A running receiver; stopped on drop.
pub struct OtlpReceiver {
    server: ServerThread,
    receiver: Receiver,
}

impl OtlpReceiver {
    /// Starts on 127.0.0.1 at a free port.
    pub fn start() -> KitResult<OtlpReceiver> {
        let receiver = Receiver::default();
        let served = receiver.clone();
        let server = ServerThread::spawn("otlp", "127.0.0.1:0", |listener, stopped| async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            let _ = tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(served))
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await;
        })?;
        Ok(OtlpReceiver { server, receiver })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.receiver
            .spans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The spans of `trace_id` once `pred` holds for them, waiting up to `timeout` (Envoy
    /// batches spans: it flushes every 5 s by default).
    pub fn wait_for_trace(
        &self,
        trace_id: &str,
        timeout: Duration,
        pred: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> KitResult<Vec<ReceivedSpan>> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans: Vec<ReceivedSpan> = self
                .spans()
                .into_iter()
                .filter(|s| s.trace_id == trace_id)
                .collect();
            if pred(&spans) {
                return Ok(spans);
            }
            if Instant::now() > deadline {
                return Err(KitError::new(format!(
                    "trace {trace_id}: not as expected after {timeout:?}: {spans:#?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
