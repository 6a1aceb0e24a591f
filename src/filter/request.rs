//! Request side callbacks: classify, authenticate (or wait for keys), then the routing
//! headers and the mode's own work (REST rewrite, transcoding, a side call).

use super::classify::{is_grpc, is_protobuf};
use super::{Filter, Mode, Phase, RequestInfo};
use crate::config::UpstreamCalls;
use crate::host::{find_header, Action, HeaderOp, Host, Level, MapKind};
use crate::route;
use crate::status::{BodyFormat, GatewayError, LimitError};

impl Filter {
    pub(super) fn request_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Action {
        self.start = Some(self.callback_now(host));
        self.req = RequestInfo::from_headers(host.headers(MapKind::RequestHeaders));
        if let Some(action) = self.health(host).or_else(|| self.served_document()) {
            return action;
        }
        self.read_route_and_connection(host);
        self.strip_owned_headers(host);
        self.take_gateway_span(host);

        if let Some(err) = self.check_header_size().or_else(|| self.check_policy()) {
            return self.reply_error(host, err);
        }
        if self.req.preflight {
            return self.refuse_preflight(host);
        }
        let classified = if is_grpc(&self.req.content_type) {
            self.error_format = BodyFormat::Grpc;
            self.classify_grpc()
        } else {
            if is_protobuf(&self.req.content_type) || is_protobuf(&self.req.accept) {
                self.error_format = BodyFormat::Protobuf;
            }
            self.classify_http()
        };
        if let Err(err) = classified {
            return self.reply_error(host, err);
        }
        // Only where Envoy traces (it names the span with them before the log callback);
        // otherwise the record writes them where `observe.filter_state` lists them, and a trap
        // (`trap.rs`) for the record Envoy writes itself.
        if self.span_traced() {
            self.publish_span_fields(host);
        }
        self.name_server_span(host);
        if self.mode == Mode::PassThrough {
            self.phase = Phase::Upstream;
            return Action::Continue;
        }
        match self.authenticate(host) {
            Some(action) => {
                // A request that ended with its headers waits with its (empty) body complete.
                if let Phase::AwaitKeys { body_end, .. } = &mut self.phase {
                    *body_end = end_of_stream.then_some(0);
                }
                action
            }
            None => self.after_auth(host, end_of_stream),
        }
    }

    pub(super) fn request_body(&mut self, host: &mut dyn Host, size: usize, eos: bool) -> Action {
        let limit = self.vm.config.limits.max_request_bytes;
        let transcoded = matches!(self.mode, Mode::Transcode(_));
        match &mut self.phase {
            Phase::Replied { .. } | Phase::Logged => return Action::Pause,
            _ if transcoded && size > limit => {
                return self.reply_error(host, LimitError::RequestBody { limit }.into());
            }
            // Held while the request waits for keys; converted once it is allowed.
            Phase::AwaitKeys { body_end, .. } => {
                if eos {
                    *body_end = Some(size);
                }
                return Action::Pause;
            }
            _ => {}
        }
        if let Some(action) = self.stream_request_chunk(host, size, eos) {
            return action;
        }
        match () {
            _ if !transcoded => Action::Continue,
            _ if !eos => Action::Pause,
            _ => self.transcode_body(host, size),
        }
    }

    /// Called (from the root context) when keys a paused request waited for have arrived, or
    /// when the wait is over. Returns true when the request should be resumed now.
    pub(super) fn keys_ready(&mut self, host: &mut dyn Host) -> bool {
        let Phase::AwaitKeys {
            since, body_end, ..
        } = self.phase
        else {
            return false;
        };
        self.phase = Phase::Headers;
        let outcome = self.authenticate(host);
        // Still waiting (other keys still on their way): the bound counts from the first wait.
        if let Phase::AwaitKeys {
            since: s,
            body_end: b,
            ..
        } = &mut self.phase
        {
            *s = since;
            *b = body_end;
        }
        match (outcome, body_end) {
            (Some(_), _) => false,
            // The body arrived (and was held) while the request waited.
            (None, Some(size)) if matches!(self.mode, Mode::Transcode(_)) => {
                self.set_routing_headers(host);
                self.transcode_body(host, size) == Action::Continue
            }
            (None, _) => self.after_auth(host, false) == Action::Continue,
        }
    }

    /// The route's policy and the connection's `connection.mtls` (for the client certificate's
    /// identity, `auth.rs`), read in one host call where Envoy evaluates CEL.
    fn read_route_and_connection(&mut self, host: &dyn Host) {
        let vm = self.vm.clone();
        let routing = &vm.config.routing;
        let policy_path = route::policy_metadata_path(routing);
        let mut read = host
            .properties(&[&policy_path, &["connection", "mtls"]])
            .into_iter();
        let metadata = read.next().flatten();
        self.mtls = read.next().flatten();
        self.policy = route::policy_from(metadata, host, routing);
    }

    /// Envoy traces this request: the bootstrap's header naming its server span came with it
    /// (`observe::span_export::SPAN_HEADER`, what `take_gateway_span` reads).
    fn span_traced(&self) -> bool {
        find_header(&self.req.headers, crate::observe::span_export::SPAN_HEADER).is_some()
    }

    /// Routing metadata, then the mode's own work.
    fn after_auth(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Action {
        self.set_routing_headers(host);
        match &self.mode {
            Mode::Rest(_) => {
                self.rewrite_rest_path(host);
                self.phase = Phase::Upstream;
                Action::Continue
            }
            Mode::Transcode(_) if end_of_stream => self.transcode_body(host, 0),
            Mode::Transcode(_) if self.side_calls_only(host) => match self.send_headers_first(host)
            {
                Ok(()) => Action::Continue,
                Err(err) => self.reply_error(host, err),
            },
            Mode::Transcode(_) => {
                self.phase = Phase::AwaitBody {
                    side_call_headers: None,
                };
                Action::Pause
            }
            _ => {
                self.phase = Phase::Upstream;
                Action::Continue
            }
        }
    }

    /// `upstream_calls: side_call`: every transcoded call is a side call, and the request headers
    /// are not held while the body comes. Where a filter cannot pause headers and still see
    /// the body, or pause the upstream's response headers until its trailers give the status
    /// (Istio's WasmPlugin sets no `allow_on_headers_stop_iteration`), holding either would
    /// stall the request; a side call's reply comes back whole instead. A proxy that lets the
    /// filter append a body (the native module) holds headers too: every transcoded call goes
    /// through its router, whatever the option says.
    pub(super) fn side_calls_only(&self, host: &dyn Host) -> bool {
        self.vm.config.transcoding.upstream_calls == UpstreamCalls::SideCall
            && !host.can_append_request_body()
    }

    /// The proxy's server span takes the operation's name (a no-op where the proxy offers no
    /// span access, as under Proxy-Wasm).
    fn name_server_span(&self, host: &mut dyn Host) {
        if let Some(name) = self.operation_name() {
            host.set_span_operation(name);
        }
    }

    /// Take the side call's headers from the client's request as received, then rewrite the
    /// request headers to the gRPC call's and let them go on so that the body follows (it is
    /// converted at its end). The stream that Envoy's router opens with these headers carries
    /// no data; it is cancelled when the side call's answer is sent.
    fn send_headers_first(&mut self, host: &mut dyn Host) -> Result<(), GatewayError> {
        let headers = self.side_call_headers_now(host)?;
        self.rewrite_grpc_headers(host)?;
        self.phase = Phase::AwaitBody {
            side_call_headers: Some(headers),
        };
        Ok(())
    }

    pub(super) fn set_request_header(&self, host: &mut dyn Host, name: &str, value: Option<&str>) {
        if let Err(e) = host.set_header(MapKind::RequestHeaders, name, value) {
            host.log(Level::Warn, &format!("meshgate: header {name}: {e}"));
        }
    }

    fn strip_owned_headers(&self, host: &mut dyn Host) {
        for name in &self.vm.config.owned_headers {
            if find_header(&self.req.headers, name).is_some() {
                self.set_request_header(host, name, None);
            }
        }
    }

    /// Apply header changes a domain asked for (failures are logged: a header the proxy
    /// refuses is no reason to fail the request).
    pub(super) fn apply(&self, host: &mut dyn Host, ops: &[HeaderOp]) {
        for op in ops {
            self.set_request_header(host, op.name(), op.value());
        }
    }

    fn set_routing_headers(&mut self, host: &mut dyn Host) {
        let vm = self.vm.clone();
        let cfg = &vm.config;
        let Some(op) = self.op.and_then(|i| cfg.operations.get(i)) else {
            return;
        };
        let new_id = (self.req.request_id.is_none() && cfg.routing.generate_request_id)
            .then(|| route::new_request_id(self.callback_now(host), self.context_id));
        let ops = route::routing_headers(
            &cfg.routing,
            &op.upstream,
            &op.name,
            self.principal.as_deref(),
            new_id.as_deref(),
        );
        self.apply(host, &ops);
        if new_id.is_some() {
            self.req.request_id = new_id;
        }
    }

    fn rewrite_rest_path(&self, host: &mut dyn Host) {
        let Some(op) = self.op.and_then(|i| self.vm.config.operations.get(i)) else {
            return;
        };
        // The path variables the matcher bound in `classify_http`: no second lookup.
        let vars = match &self.mode {
            Mode::Rest(vars) => vars.as_slice(),
            _ => &[],
        };
        let ops = route::rest_rewrite(&op.upstream, &self.req.path, vars);
        self.apply(host, &ops);
    }
}
