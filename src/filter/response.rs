//! Response side: gRPC replies back to JSON/protobuf clients, in the three shapes Envoy delivers
//! them (headers+data+trailers, trailers-only, headers+trailers without data), Envoy's own
//! router errors (plain HTTP). A side call's reply: `side_call.rs`.

use super::{Filter, Mode, Phase};
use crate::host::{find_header, Action, BodyKind, Host, Level, MapKind};
use crate::status::{Code, GatewayError, LimitError, UpstreamError};
use crate::transcode::{self, FrameDecoder, GrpcEnd};

impl Filter {
    pub(super) fn response_headers(&mut self, host: &mut dyn Host, eos: bool) -> Action {
        if self.native_grpc_upstream() {
            return self.grpc_response_headers(host, eos);
        }
        let headers = host.headers(MapKind::ResponseHeaders);
        self.note_response_headers(&headers);
        self.note_rate_limited(host, &headers);
        if !matches!(self.mode, Mode::Transcode(_)) || self.replied() {
            return Action::Continue;
        }
        if self.pass_rate_limited(&headers) {
            return Action::Continue;
        }
        if self.side_calls_only(host) {
            // `upstream_calls: side_call`: the stream the request headers opened through the
            // router carries no data, so only a failure answers it (no healthy upstream, route
            // timeout, a reset). Answer now: these headers cannot be held (the host that needs
            // side calls would never deliver the body that follows them).
            if let Some(code) = find_header(&headers, "grpc-status") {
                let code = code.to_string();
                return self.finish_from_status(host, &headers, &code, None);
            }
            if self.resp.grpc && self.resp.status == Some(200) {
                // A streaming handler (bidirectional) may answer the data-less stream's
                // headers at once, before any message: not a failure. The side call's reply
                // answers the client; these headers are held until then.
                return Action::Pause;
            }
            let err = transcode::error_from_http(self.resp.status.unwrap_or(502), b"", None);
            return self.reply_error(host, err);
        }
        if let Some(code) = find_header(&headers, "grpc-status") {
            // Trailers-only reply: the whole answer is in these headers.
            self.log_ignored_details(host, &headers);
            let code = code.to_string();
            if self.is_stream_reply() {
                return self.stream_whole(host, &headers, &code, &[]);
            }
            return self.finish_from_status(host, &headers, &code, None);
        }
        if !self.resp.grpc {
            // A stream whose upstream broke before anything was released: Envoy's own reply
            // replaces it.
            self.resp.stream = None;
            // An error made by Envoy's router (no healthy upstream, timeout) or a non-gRPC
            // upstream: convert it once its body is complete.
            if eos {
                let err = transcode::error_from_http(self.resp.status.unwrap_or(502), b"", None);
                if host.can_add_response_body() {
                    return self.convert_in_place(host, err);
                }
                return self.reply_error(host, err);
            }
            return Action::Pause;
        }
        if self.is_stream_reply() {
            return self.stream_headers();
        }
        Action::Pause
    }

    pub(super) fn response_body(&mut self, host: &mut dyn Host, size: usize, eos: bool) -> Action {
        self.resp.body_seen = size;
        if !matches!(self.mode, Mode::Transcode(_)) || self.replied() {
            return Action::Continue;
        }
        if self.resp.stream.is_some() {
            return self.stream_body(host, size, eos);
        }
        let limit = self.vm.config.limits.max_response_bytes;
        if size > limit {
            return self.reply_error(host, LimitError::Response { limit }.into());
        }
        if !eos {
            return Action::Pause;
        }
        let body = host.body(BodyKind::Response, 0, size).unwrap_or_default();
        if !self.resp.grpc {
            let ct = self.resp.content_type.clone();
            let err = transcode::error_from_http(self.resp.status.unwrap_or(502), &body, Some(&ct));
            return self.convert_in_place(host, err);
        }
        // gRPC data that ends the stream without trailers: the status is missing.
        let err =
            UpstreamError::Broken("the upstream ended its gRPC reply without a status".into());
        self.reply_error(host, err.into())
    }

    pub(super) fn response_trailers(&mut self, host: &mut dyn Host) -> Action {
        if self.native_grpc_upstream() {
            self.note_grpc_status(host, MapKind::ResponseTrailers);
            return Action::Continue;
        }
        let trailers = host.headers(MapKind::ResponseTrailers);
        self.note_forwarded(&trailers);
        if let Some(code) = find_header(&trailers, "grpc-status") {
            self.resp.grpc_status = code.parse::<i32>().ok().map(Code::from_i32);
        }
        if !matches!(self.mode, Mode::Transcode(_)) || self.replied() {
            return Action::Continue;
        }
        self.log_ignored_details(host, &trailers);
        if self.resp.stream.is_some() {
            return self.stream_trailers(host, &trailers);
        }
        let code = find_header(&trailers, "grpc-status")
            .unwrap_or_default()
            .to_string();
        let body = if self.resp.body_seen > 0 {
            host.body(BodyKind::Response, 0, self.resp.body_seen)
        } else {
            None
        };
        self.finish_from_status(host, &trailers, &code, body)
    }

    /// Native gRPC on its way through the router: the reply passes untouched, and only what
    /// the record needs of it is read, one header at a time (host calls are the pass-through
    /// path's main cost): `:status`, and `grpc-status` where it is (the trailers, or the
    /// headers of a trailers-only reply). Not Envoy's `response.grpc_status` alone: a filter
    /// that runs after this one on the response (`grpc_web`) turns the trailers into body
    /// bytes before `on_log`, and Envoy then derives UNKNOWN from the HTTP 200.
    fn native_grpc_upstream(&self) -> bool {
        self.mode == Mode::Grpc && !self.replied()
    }

    /// A rate limit filter's 429 (the only reply whose headers change anything here) is looked
    /// at whole.
    fn grpc_response_headers(&mut self, host: &mut dyn Host, eos: bool) -> Action {
        let status = host.header(MapKind::ResponseHeaders, ":status");
        self.resp.status = status.as_deref().and_then(|s| s.parse().ok());
        if self.resp.status == Some(429) {
            let headers = host.headers(MapKind::ResponseHeaders);
            self.note_response_headers(&headers);
            self.note_rate_limited(host, &headers);
            return Action::Continue;
        }
        if status.is_some() {
            self.resp.upstream_answered = true;
        }
        if eos {
            self.note_grpc_status(host, MapKind::ResponseHeaders);
        }
        Action::Continue
    }

    fn note_grpc_status(&mut self, host: &dyn Host, map: MapKind) {
        if let Some(code) = host.header(map, "grpc-status") {
            self.resp.grpc_status = code.parse::<i32>().ok().map(Code::from_i32);
        }
    }

    /// A `grpc-status-details-bin` that does not decode, or whose code is not `grpc-status`'s,
    /// is ignored by the error mapping (`transcode::error_from_grpc`): say so in the log.
    pub(super) fn log_ignored_details(&self, host: &dyn Host, map: &[(String, String)]) {
        let Some(code) = find_header(map, "grpc-status") else {
            return;
        };
        let details = find_header(map, "grpc-status-details-bin");
        if let Some(why) = transcode::grpc_status::details_problem(code, details) {
            let op = self.operation_name().unwrap_or("-");
            host.log(
                Level::Warn,
                &format!("meshgate: {op}: grpc-status-details-bin ignored: {why}"),
            );
        }
    }

    /// Keep the listed upstream metadata found in `map` for the client's reply.
    pub(super) fn note_forwarded(&mut self, map: &[(String, String)]) {
        let listed = &self.vm.config.transcoding.response_metadata_to_headers;
        for pair in transcode::metadata::response_headers(listed, &[map]) {
            if !self.resp.forward.contains(&pair) {
                self.resp.forward.push(pair);
            }
        }
    }

    pub(super) fn note_response_headers(&mut self, headers: &[(String, String)]) {
        self.note_forwarded(headers);
        // The gateway's own local reply passes through here too, once it has replied.
        if !self.replied() && !headers.is_empty() {
            self.resp.upstream_answered = true;
        }
        self.resp.status = find_header(headers, ":status").and_then(|s| s.parse().ok());
        self.resp.content_type = find_header(headers, "content-type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        self.resp.grpc = self.resp.content_type.starts_with("application/grpc");
        if let Some(code) = find_header(headers, "grpc-status") {
            self.resp.grpc_status = code.parse::<i32>().ok().map(Code::from_i32);
        }
    }

    /// The reply is complete (status known, body buffered or absent): answer the client. With
    /// a buffered body, or where the proxy can add one (`Host::can_add_response_body`: the
    /// native module), the reply is replaced in place and goes on through Envoy's encoder
    /// filters; without one (trailers-only, or no data) under Proxy-Wasm, Envoy refuses a body
    /// from these callbacks, so the answer is a local reply (with the CORS headers Envoy's
    /// filter would have added: `browser.rs`).
    fn finish_from_status(
        &mut self,
        host: &mut dyn Host,
        status_map: &[(String, String)],
        code: &str,
        body: Option<Vec<u8>>,
    ) -> Action {
        let in_place = body.is_some() || host.can_add_response_body();
        match self.render(status_map, code, body.as_deref().unwrap_or_default()) {
            Ok((bytes, content_type)) if in_place => {
                if let Err(e) = self.replace_response(host, &bytes, &content_type) {
                    host.log(Level::Warn, &format!("meshgate: {e}; answering locally"));
                    return self.send_rendered(host, &bytes, &content_type);
                }
                self.resp.status = Some(200);
                Action::Continue
            }
            Ok((bytes, content_type)) => self.send_rendered(host, &bytes, &content_type),
            Err(err) if host.can_add_response_body() => self.convert_in_place(host, err),
            Err(err) => self.reply_error(host, err),
        }
    }

    pub(super) fn send_rendered(
        &mut self,
        host: &mut dyn Host,
        bytes: &[u8],
        content_type: &str,
    ) -> Action {
        let mut headers = vec![("content-type".to_string(), content_type.to_string())];
        headers.extend(self.resp.forward.iter().cloned());
        headers.extend(self.cors_reply_headers());
        if let Err(e) = host.send_response(200, &headers, bytes) {
            host.log(Level::Warn, &format!("meshgate: reply refused: {e}"));
        }
        self.resp.status = Some(200);
        self.phase = Phase::Replied { error: None };
        Action::Pause
    }

    /// Framed gRPC reply body + status -> the client's body and content type, or the error.
    pub(super) fn render(
        &self,
        status_map: &[(String, String)],
        code: &str,
        framed: &[u8],
    ) -> Result<(Vec<u8>, String), GatewayError> {
        let Mode::Transcode(t) = &self.mode else {
            return Err(GatewayError::new(Code::Internal, "gateway state error"));
        };
        let plan = self
            .binding_plan(t.binding)
            .ok_or_else(|| GatewayError::new(Code::Internal, "gateway state error"))?;
        let mut frames = FrameDecoder::new(self.vm.config.limits.max_response_bytes);
        frames.push(framed);
        let end = GrpcEnd {
            // No grpc-status at all: a broken reply (INTERNAL, 502), not UNKNOWN.
            status: Some(code).filter(|c| !c.is_empty()),
            message: find_header(status_map, "grpc-message"),
            details_bin: find_header(status_map, "grpc-status-details-bin"),
        };
        let opts = self.print_options();
        transcode::finish_unary(
            &self.vm.config.pool,
            &plan.response,
            &mut frames,
            &end,
            t.response_format,
            &opts,
        )
    }

    /// Replace a held non-gRPC reply (an error made by Envoy's router, often itself a local
    /// reply) with `err`'s body. A second local reply while Envoy sends its own is ignored by
    /// Envoy, so the held reply is rewritten in place; only if that is refused is a local reply
    /// tried. Where the proxy can add a body to a header-only response (the native module), a
    /// gRPC error reply is rewritten so too, its `grpc-*` headers and trailers removed.
    fn convert_in_place(&mut self, host: &mut dyn Host, mut err: GatewayError) -> Action {
        let opts = self.print_options();
        crate::transcode::grpc_status::print_details(&self.vm.config.pool, &mut err, &opts);
        let print = opts.status_print();
        let (status, mut headers, body) = err.to_response_with(self.error_format, print);
        headers.extend(self.resp.forward.iter().cloned());
        let grpc = self.resp.grpc;
        let apply = |host: &mut dyn Host| -> Result<(), crate::host::HostError> {
            host.set_body(BodyKind::Response, &body)?;
            let status = status.to_string();
            host.set_header(MapKind::ResponseHeaders, ":status", Some(&status))?;
            host.set_header(
                MapKind::ResponseHeaders,
                "content-length",
                Some(&body.len().to_string()),
            )?;
            if grpc {
                strip_grpc(host)?;
            }
            for (name, value) in &headers {
                host.set_header(MapKind::ResponseHeaders, name, Some(value))?;
            }
            Ok(())
        };
        if let Err(e) = apply(host) {
            host.log(Level::Warn, &format!("meshgate: {e}; answering locally"));
            return self.reply_error(host, err);
        }
        self.resp.status = Some(status);
        self.resp.grpc_status = Some(err.code);
        self.phase = Phase::Replied { error: Some(err) };
        Action::Continue
    }

    /// Replace the held reply with the rendered one (headers were paused, body buffered).
    fn replace_response(
        &self,
        host: &mut dyn Host,
        bytes: &[u8],
        content_type: &str,
    ) -> Result<(), crate::host::HostError> {
        host.set_body(BodyKind::Response, bytes)?;
        let len = bytes.len().to_string();
        host.set_header(MapKind::ResponseHeaders, ":status", Some("200"))?;
        host.set_header(MapKind::ResponseHeaders, "content-type", Some(content_type))?;
        host.set_header(MapKind::ResponseHeaders, "content-length", Some(&len))?;
        strip_grpc(host)?;
        for (name, value) in &self.resp.forward {
            host.set_header(MapKind::ResponseHeaders, name, Some(value))?;
        }
        Ok(())
    }
}

/// No `grpc-*` header or trailer of the upstream's reply may reach an HTTP client.
fn strip_grpc(host: &mut dyn Host) -> Result<(), crate::host::HostError> {
    for h in [
        "grpc-status",
        "grpc-message",
        "grpc-status-details-bin",
        "grpc-encoding",
    ] {
        host.set_header(MapKind::ResponseHeaders, h, None)?;
    }
    host.set_headers(MapKind::ResponseTrailers, &[])
}
