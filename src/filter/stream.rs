//! Server-streaming replies to HTTP clients (`transcoding.stream_format`: JSON array, NDJSON or
//! SSE), each message forwarded as it arrives, a terminal error reported in the body.
//!
//! What Envoy 1.40 allows (found in real runs, see docs/transcoding.md, Server streaming): a
//! response body can be replaced only while it is buffered (the body callback returned Pause),
//! and the closing bytes can be written from the trailers callback only into such a buffer. So
//! every body chunk is rendered in place and held (Pause); the root context's tick releases what
//! is held (`continue_stream`), and the trailers callback writes the closing bytes into the buffer and
//! pauses once more, to be released by the next tick. Messages therefore reach the client
//! within one tick of their arrival. Replies that arrive whole (a side call's, or a
//! trailers-only or data-less reply) are rendered at once.

use super::{Filter, Mode};
use crate::config::OpKind;
use crate::host::{find_header, Action, BodyKind, Host, Level, MapKind};
use crate::status::{Code, GatewayError};
use crate::transcode::{self, FrameDecoder, GrpcEnd, StreamFormat, StreamWriter};

/// A server stream being forwarded.
#[derive(Debug)]
pub struct StreamState {
    writer: StreamWriter,
    decoder: FrameDecoder,
    /// Rendered bytes in Envoy's buffer that the client has not been sent yet.
    held: Vec<u8>,
    /// `held` waits for the tick to release it.
    pending_flush: bool,
    /// The response headers were released (they cannot be changed any more).
    headers_released: bool,
    /// A body chunk was seen (a body buffer exists in Envoy).
    body_seen: bool,
    /// The stream broke (bad frame or message); later messages are dropped.
    failure: Option<GatewayError>,
}

impl Filter {
    fn streaming(&self) -> bool {
        matches!(&self.mode, Mode::Transcode(t) if t.server_streaming)
    }

    fn new_stream(&self) -> StreamState {
        let http_body = match &self.mode {
            Mode::Transcode(t) => self
                .binding_plan(t.binding)
                .is_some_and(|b| b.response.is_http_body()),
            _ => false,
        };
        let writer = if http_body {
            StreamWriter::http_body()
        } else {
            StreamWriter::new(self.stream_format())
        };
        StreamState {
            writer: writer.with_print_options(&self.print_options()),
            decoder: FrameDecoder::new(self.vm.config.limits.max_response_bytes),
            held: Vec::new(),
            pending_flush: false,
            headers_released: false,
            body_seen: false,
            failure: None,
        }
    }

    /// The stream's format: the one the client's `Accept` names, else the operation's, else
    /// `transcoding.stream_format`.
    fn stream_format(&self) -> StreamFormat {
        let configured = self
            .op
            .and_then(|i| self.vm.config.operations.get(i))
            .and_then(|o| match &o.kind {
                OpKind::Grpc { stream_format, .. } => *stream_format,
                OpKind::Rest => None,
            });
        StreamFormat::from_accept(&self.req.accept)
            .or(configured)
            .unwrap_or(self.vm.config.transcoding.stream_format)
    }

    /// Whether this request is a server stream whose reply the stream code handles.
    pub(super) fn is_stream_reply(&self) -> bool {
        self.streaming() && !self.replied()
    }

    /// A streamed reply's gRPC headers arrived (not trailers-only): hold them until the first
    /// message is rendered.
    pub(super) fn stream_headers(&mut self) -> Action {
        self.resp.stream = Some(self.new_stream());
        Action::Pause
    }

    /// One more chunk of the gRPC stream: render complete messages in place and hold them.
    pub(super) fn stream_body(&mut self, host: &mut dyn Host, size: usize, eos: bool) -> Action {
        let Some(mut st) = self.resp.stream.take() else {
            return Action::Continue;
        };
        st.body_seen = true;
        let buffered = host.body(BodyKind::Response, 0, size).unwrap_or_default();
        let fresh = buffered.get(st.held.len()..).unwrap_or_default();
        if st.failure.is_none() {
            st.decoder.push(fresh);
            let (out, err) = self.render_messages(&mut st);
            st.held.extend(out);
            st.failure = err;
        }
        if eos {
            // Data that ends the stream without trailers: the status is missing.
            let err = GatewayError::new(
                Code::Internal,
                "the upstream ended its gRPC stream without a status",
            );
            let failure = st.failure.clone().unwrap_or(err);
            let end = GrpcEnd::default();
            let closing = transcode::finish_stream(
                &self.vm.config.pool,
                &st.decoder,
                &mut st.writer,
                &end,
                Some(&failure),
            );
            st.held.extend(closing);
        }
        self.release_headers(host, &mut st);
        if let Err(e) = host.set_body(BodyKind::Response, &st.held) {
            host.log(Level::Warn, &format!("meshgate: stream chunk refused: {e}"));
        }
        st.pending_flush = !st.held.is_empty();
        self.resp.stream = Some(st);
        if eos {
            return Action::Continue;
        }
        Action::Pause
    }

    /// The stream's trailers: write the closing bytes (and any in-stream error) and hold them
    /// for the next tick. A stream that sent no data at all is answered locally.
    pub(super) fn stream_trailers(
        &mut self,
        host: &mut dyn Host,
        trailers: &[(String, String)],
    ) -> Action {
        let code = find_header(trailers, "grpc-status")
            .unwrap_or("2")
            .to_string();
        let Some(mut st) = self.resp.stream.take() else {
            return Action::Continue;
        };
        if !st.body_seen {
            // Headers + trailers, no data: Envoy has no body buffer to write into.
            return self.stream_whole(host, trailers, &code, &[]);
        }
        let end = GrpcEnd {
            status: Some(&code),
            message: find_header(trailers, "grpc-message"),
            details_bin: find_header(trailers, "grpc-status-details-bin"),
        };
        self.log_http_body_failure(host, &st, &end, st.failure.as_ref());
        let closing = transcode::finish_stream(
            &self.vm.config.pool,
            &st.decoder,
            &mut st.writer,
            &end,
            st.failure.as_ref(),
        );
        st.held.extend(closing);
        self.release_headers(host, &mut st);
        if let Err(e) = host.set_body(BodyKind::Response, &st.held) {
            host.log(Level::Warn, &format!("meshgate: stream end refused: {e}"));
        }
        // No grpc-* trailer may reach an HTTP client.
        if let Err(e) = host.set_headers(MapKind::ResponseTrailers, &[]) {
            host.log(Level::Warn, &format!("meshgate: trailers: {e}"));
        }
        st.pending_flush = true;
        self.resp.stream = Some(st);
        Action::Pause
    }

    /// End the reply stream with `err` in-band (a failure already there stands); the
    /// messages after it are dropped. False when there is no reply stream.
    pub(super) fn fail_stream(&mut self, err: GatewayError) -> bool {
        match self.resp.stream.as_mut() {
            Some(st) => {
                st.failure.get_or_insert(err);
                true
            }
            None => false,
        }
    }

    /// Whether held stream bytes wait for the root context to release them.
    pub fn wants_flush(&self) -> bool {
        self.resp.stream.as_ref().is_some_and(|s| s.pending_flush)
    }

    /// Called from the root context's tick (with this request's context in effect): release
    /// what is held. Envoy sends it (and the headers, the first time) right after the tick.
    pub fn on_flush(&mut self, host: &mut dyn Host) {
        let Some(st) = self.resp.stream.as_mut() else {
            return;
        };
        if !st.pending_flush {
            return;
        }
        st.pending_flush = false;
        st.held.clear();
        st.headers_released = true;
        host.resume_response();
    }

    /// A whole streamed reply (side call, trailers-only, or no data): render it at once. With
    /// no message and an error, the client gets the error as an ordinary HTTP error.
    pub(super) fn stream_whole(
        &mut self,
        host: &mut dyn Host,
        status_map: &[(String, String)],
        code: &str,
        framed: &[u8],
    ) -> Action {
        let mut st = self.new_stream();
        st.decoder.push(framed);
        let (mut out, failure) = self.render_messages(&mut st);
        let end = GrpcEnd {
            status: Some(code),
            message: find_header(status_map, "grpc-message"),
            details_bin: find_header(status_map, "grpc-status-details-bin"),
        };
        if out.is_empty() {
            let error = failure
                .clone()
                .or_else(|| st.decoder.finish().err().map(|e| e.to_upstream_error()))
                .or_else(|| end.error(&self.vm.config.pool));
            if let Some(err) = error {
                return self.reply_error(host, err);
            }
        }
        self.log_http_body_failure(host, &st, &end, failure.as_ref());
        out.extend(transcode::finish_stream(
            &self.vm.config.pool,
            &st.decoder,
            &mut st.writer,
            &end,
            failure.as_ref(),
        ));
        let content_type = st.writer.content_type();
        self.send_rendered(host, &out, content_type)
    }

    /// A `google.api.HttpBody` stream has no place for an error after its first bytes: the body
    /// ends where the stream failed, and the log says why (the access record has the status).
    fn log_http_body_failure(
        &self,
        host: &dyn Host,
        st: &StreamState,
        end: &GrpcEnd<'_>,
        failure: Option<&GatewayError>,
    ) {
        if !st.writer.is_http_body() {
            return;
        }
        let pool = &self.vm.config.pool;
        if let Some(err) = transcode::reply::stream_error(pool, &st.decoder, end, failure) {
            let op = self.operation_name().unwrap_or("-");
            host.log(
                Level::Warn,
                &format!("meshgate: {op}: HttpBody stream ended early, its body is cut: {err}"),
            );
        }
    }

    fn render_messages(&self, st: &mut StreamState) -> (Vec<u8>, Option<GatewayError>) {
        let plan = match &self.mode {
            Mode::Transcode(t) => self.binding_plan(t.binding),
            _ => None,
        };
        let Some(plan) = plan else {
            return (
                Vec::new(),
                Some(GatewayError::new(Code::Internal, "gateway state error")),
            );
        };
        let opts = self.print_options();
        transcode::stream_messages(&plan.response, &mut st.decoder, &mut st.writer, &opts)
    }

    /// Turn the held gRPC headers into the stream's HTTP headers (once, before release).
    fn release_headers(&self, host: &mut dyn Host, st: &mut StreamState) {
        if st.headers_released {
            return;
        }
        let mut set = |n: &str, v: Option<&str>| {
            if let Err(e) = host.set_header(MapKind::ResponseHeaders, n, v) {
                host.log(Level::Warn, &format!("meshgate: stream header {n}: {e}"));
            }
        };
        set(":status", Some("200"));
        set("content-type", Some(st.writer.content_type()));
        set("content-length", None);
        set("grpc-encoding", None);
        set("grpc-accept-encoding", None);
        for (name, value) in &self.resp.forward {
            set(name, Some(value));
        }
        if st.writer.content_type() == "text/event-stream" {
            set("cache-control", Some("no-cache"));
        }
    }
}
