//! The upstream request of a transcoded call: the gRPC message built from path, query and
//! body, sent through Envoy's router (the request headers rewritten as transcode asks) or as
//! a side call to the upstream's cluster.

use super::classify::internal_error;
use super::{Filter, Mode, Phase, RequestKind};
use crate::config::OpKind;
use crate::host::{Action, BodyKind, Host, MapKind};
use crate::status::{Code, GatewayError, RequestError, UpstreamError};
use crate::transcode::client_stream::{self, build_stream_request, StreamBody};
use crate::transcode::upstream::{grpc_request_headers, side_call_headers, Original};
use crate::transcode::{self, encode_frame, RequestOptions};

impl Filter {
    /// Build the gRPC request from path, query and body, then send it on: through Envoy's
    /// router when the request has a body to replace, or the proxy lets the filter append one
    /// to a body-less request (the native module: `Host::can_append_request_body`), else as a
    /// side call (Proxy-Wasm gives a filter no body buffer to fill on a body-less request).
    pub(super) fn transcode_body(&mut self, host: &mut dyn Host, size: usize) -> Action {
        let frame = match self.build_frames(host, size) {
            Ok(f) => f,
            Err(err) => return self.reply_error(host, err),
        };
        if (size > 0 || host.can_append_request_body()) && !self.side_calls_only(host) {
            if let Err(e) = host.set_body(BodyKind::Request, &frame) {
                return self.reply_error(host, host_failure(&e.to_string()));
            }
            // Headers rewritten only now (router mode holds them until the body is whole).
            if let Err(err) = self.rewrite_grpc_headers(host) {
                return self.reply_error(host, err);
            }
            self.phase = Phase::Upstream;
            return Action::Continue;
        }
        if let Some(err) = self.side_call_quota(host) {
            return self.reply_error(host, err);
        }
        if self.ask_rls(host, &frame) {
            return Action::Pause;
        }
        match self.side_call(host, &frame) {
            Ok(()) => Action::Pause,
            Err(err) => self.reply_error(host, err),
        }
    }

    /// The gRPC request body: one framed message, or for a client-streaming method every
    /// message of the HTTP body (a JSON array or NDJSON; see `transcode::client_stream`).
    fn build_frames(&self, host: &dyn Host, size: usize) -> Result<Vec<u8>, GatewayError> {
        let Mode::Transcode(t) = &self.mode else {
            return Err(internal_error());
        };
        let plan = self.binding_plan(t.binding).ok_or_else(internal_error)?;
        let body = if size > 0 {
            host.body(BodyKind::Request, 0, size).unwrap_or_default()
        } else {
            Vec::new()
        };
        let query = self.request_query(t)?;
        let kind = match t.request_kind {
            RequestKind::Json => transcode::BodyKind::Json,
            RequestKind::Protobuf => transcode::BodyKind::Protobuf,
            RequestKind::Raw => transcode::BodyKind::Raw {
                content_type: &self.req.content_type,
            },
        };
        let opts = self.request_options();
        match (self.client_streaming(), t.request_kind) {
            (true, RequestKind::Json) => {
                let stream = StreamBody::of(&self.req.content_type);
                build_stream_request(&plan.request, &t.bindings, &query, &body, stream, &opts)
            }
            (true, RequestKind::Protobuf) => {
                Err(client_stream::unsupported(&self.req.content_type))
            }
            // An HttpBody request (or a unary call): the body is one message.
            _ => transcode::build_request(&plan.request, &t.bindings, &query, &body, kind, &opts)
                .map(|m| encode_frame(&m)),
        }
    }

    /// The query as it fills the message: decoded (`+` as `query_param_unescape_plus` says),
    /// the `ignored_query_parameters` dropped.
    pub(super) fn request_query(
        &self,
        t: &super::Transcode,
    ) -> Result<Vec<(String, String)>, GatewayError> {
        let cfg = &self.vm.config;
        let plus_as_space = cfg.transcoding.query_param_unescape_plus;
        let mut query = crate::operation::parse_query_with(&t.query, plus_as_space)
            .map_err(|e| GatewayError::from(RequestError::Invalid(e)))?;
        let ignored = &cfg.transcoding.ignored_query_parameters;
        query.retain(|(name, _)| !ignored.contains(name));
        Ok(query)
    }

    pub(super) fn request_options(&self) -> RequestOptions {
        let cfg = &self.vm.config;
        RequestOptions {
            ignore_unknown_query_parameters: cfg.transcoding.ignore_unknown_query_parameters,
            max_depth: cfg.limits.max_json_depth,
        }
    }

    /// The operation takes a stream of request messages (client or bidirectional streaming).
    pub(super) fn client_streaming(&self) -> bool {
        self.op
            .and_then(|i| self.vm.config.operations.get(i))
            .is_some_and(|o| {
                matches!(
                    o.kind,
                    OpKind::Grpc {
                        client_streaming: true,
                        ..
                    }
                )
            })
    }

    pub(super) fn binding_plan(&self, binding: usize) -> Option<&crate::config::Binding> {
        let op = self.vm.config.operations.get(self.op?)?;
        match &op.kind {
            OpKind::Grpc { bindings, .. } => bindings.get(binding),
            OpKind::Rest => None,
        }
    }

    /// The client's request as transcode builds the upstream request from it.
    fn original(&self) -> Result<Original<'_>, GatewayError> {
        let op = self
            .vm
            .config
            .operations
            .get(self.op.ok_or_else(internal_error)?);
        let grpc_path = match op.map(|o| &o.kind) {
            Some(OpKind::Grpc { grpc_path, .. }) => grpc_path.as_str(),
            _ => return Err(internal_error()),
        };
        Ok(Original {
            grpc_path,
            method: &self.req.method,
            path: &self.req.path,
            authority: &self.req.authority,
            headers: &self.req.headers,
            metadata: &self.vm.config.transcoding.request_headers_to_metadata,
        })
    }

    /// Rewrite the request headers to the gRPC call's; a refused change fails the request
    /// (the call would reach the upstream half rewritten).
    pub(super) fn rewrite_grpc_headers(&mut self, host: &mut dyn Host) -> Result<(), GatewayError> {
        let ops = grpc_request_headers(&self.original()?);
        for op in &ops {
            host.set_header(MapKind::RequestHeaders, op.name(), op.value())
                .map_err(|e| host_failure(&e.to_string()))?;
        }
        Ok(())
    }

    /// Body-less transcoded request (or any one with `upstream_calls: side_call`): the gRPC
    /// call goes to the upstream's cluster directly and the reply comes back to
    /// `on_http_call_response`.
    pub(super) fn side_call(
        &mut self,
        host: &mut dyn Host,
        frame: &[u8],
    ) -> Result<(), GatewayError> {
        let op = self
            .op
            .and_then(|i| self.vm.config.operations.get(i))
            .ok_or_else(internal_error)?;
        let cluster = op.upstream.name.clone();
        let timeout = self.side_call_bound(op);
        let kept = match &mut self.phase {
            Phase::AwaitBody { side_call_headers } => side_call_headers.take(),
            _ => None,
        };
        let mut headers = match kept {
            Some(h) => h,
            None => self.side_call_headers_now(host)?,
        };
        self.start_call_span(host, &mut headers);
        let sent = host.now();
        host.http_call(&cluster, &headers, Some(frame), timeout)
            .map(|token| {
                self.call_token = Some(token);
                self.phase = Phase::SideCall { sent, timeout };
            })
            .map_err(|e| {
                UpstreamError::Unavailable(format!("could not call upstream `{cluster}`: {e}"))
                    .into()
            })
    }

    /// How long a side call may take: a server or bidirectional stream's bound
    /// (`operations.<m>.stream_timeout_ms`, else `transcoding.stream_timeout_ms`: a long
    /// stream is not cut at the upstream's 15 s), else the upstream's `timeout_ms`.
    fn side_call_bound(&self, op: &crate::config::Operation) -> std::time::Duration {
        match &op.kind {
            OpKind::Grpc {
                server_streaming: true,
                stream_timeout,
                ..
            } => stream_timeout.unwrap_or(self.vm.config.transcoding.stream_timeout),
            _ => op.upstream.timeout,
        }
    }

    /// The side call's headers, from the request map as it is now: it also holds the headers
    /// the gateway set (routing, claims), which the call carries like the router would.
    pub(super) fn side_call_headers_now(
        &self,
        host: &dyn Host,
    ) -> Result<Vec<(String, String)>, GatewayError> {
        let current = host.headers(MapKind::RequestHeaders);
        Ok(side_call_headers(&self.original()?, current))
    }
}

pub(super) fn host_failure(msg: &str) -> GatewayError {
    GatewayError::new(Code::Internal, format!("proxy refused a change: {msg}"))
}
