//! Request side: classify (native gRPC, transcoded HTTP, REST, unmatched), authenticate, set
//! routing metadata, and turn JSON/protobuf bodies into gRPC frames.

use super::{Filter, Mode, RequestInfo, RequestKind, Transcode, Waiting};
use crate::auth::{self, AuthOutcome};
use crate::config::{HttpTarget, OpKind, PathTranslation, UpstreamCalls};
use crate::host::{find_header, Action, BodyKind, Host, Level, MapKind};
use crate::observe::AuthDecision;
use crate::operation::split_path;
use crate::route;
use crate::status::{
    AuthError, BodyFormat, Code, GatewayError, LimitError, RequestError, UpstreamError,
};
use crate::transcode::{self, encode_frame, RequestOptions, ResponseFormat};

impl RequestInfo {
    fn from_headers(headers: Vec<(String, String)>) -> RequestInfo {
        let get = |n: &str| find_header(&headers, n).map(str::to_string);
        RequestInfo {
            method: get(":method").unwrap_or_default(),
            path: get(":path").unwrap_or_default(),
            authority: get(":authority").unwrap_or_default(),
            scheme: get(":scheme").unwrap_or_default(),
            content_type: get("content-type").unwrap_or_default().to_ascii_lowercase(),
            accept: get("accept").unwrap_or_default().to_ascii_lowercase(),
            user_agent: get("user-agent"),
            request_id: get("x-request-id"),
            headers,
        }
    }
}

fn is_grpc(content_type: &str) -> bool {
    content_type.starts_with("application/grpc")
        && !content_type.starts_with("application/grpc-web")
}

fn is_protobuf(content_type: &str) -> bool {
    let ct = content_type.split(';').next().unwrap_or_default().trim();
    ct == "application/x-protobuf" || ct == "application/protobuf"
}

impl Filter {
    pub(super) fn request_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Action {
        self.start = Some(host.now());
        self.request_end = end_of_stream;
        self.req = RequestInfo::from_headers(host.headers(MapKind::RequestHeaders));
        self.policy = route::select_policy(host, &self.vm.config.routing);
        self.strip_owned_headers(host);

        if let Some(err) = self.check_header_size().or_else(|| self.check_policy()) {
            return self.reply_error(host, err);
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
        if self.mode == Mode::PassThrough {
            return Action::Continue;
        }
        match self.authenticate(host) {
            Some(Action::Pause) if self.waiting != Waiting::Nothing => Action::Pause,
            Some(action) => action,
            None => self.after_auth(host, end_of_stream),
        }
    }

    pub(super) fn request_body(&mut self, host: &mut dyn Host, size: usize, eos: bool) -> Action {
        self.request_body_seen = size;
        self.request_end |= eos;
        let limit = self.vm.config.limits.max_request_bytes;
        match &self.mode {
            Mode::Transcode(_) | Mode::LocalReply if size > limit => {
                if self.mode == Mode::LocalReply {
                    return Action::Pause;
                }
                self.reply_error(host, LimitError::RequestBody { limit }.into())
            }
            Mode::LocalReply => Action::Pause,
            _ if self.waiting != Waiting::Nothing => Action::Pause,
            Mode::Transcode(_) if !eos => Action::Pause,
            Mode::Transcode(_) => self.transcode_body(host, size),
            _ => Action::Continue,
        }
    }

    /// Called (from the root context) when keys a paused request waited for have arrived, or
    /// when the wait is over. Returns true when the request should be resumed now.
    pub(super) fn keys_ready(&mut self, host: &mut dyn Host) -> bool {
        let before = self.waiting;
        self.waiting = Waiting::Nothing;
        let outcome = self.authenticate(host);
        // Still waiting (other keys still on their way): the bound counts from the first wait.
        if let (Waiting::Keys { since, .. }, Waiting::Keys { bound, .. }) = (before, self.waiting) {
            self.waiting = Waiting::Keys { since, bound };
        }
        match outcome {
            Some(_) => false,
            // The body may have arrived (and been held) while the request waited.
            None if self.request_end && matches!(self.mode, Mode::Transcode(_)) => {
                self.set_routing_headers(host);
                self.transcode_body(host, self.request_body_seen) == Action::Continue
            }
            None => self.after_auth(host, false) == Action::Continue,
        }
    }

    fn check_header_size(&self) -> Option<GatewayError> {
        let limit = self.vm.config.limits.max_header_bytes;
        let size: usize = self
            .req
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        (size > limit).then(|| LimitError::RequestHeaders { limit }.into())
    }

    /// A route that names a policy the configuration lacks is a deployment mistake: refuse
    /// (fail closed) rather than silently run without the policy's requirements.
    fn check_policy(&self) -> Option<GatewayError> {
        let name = self.policy.as_ref()?;
        if self.vm.config.policies.contains_key(name) {
            return None;
        }
        Some(GatewayError::new(
            Code::Internal,
            format!("the route selects policy `{name}`, which the gateway configuration does not define"),
        ))
    }

    fn classify_grpc(&mut self) -> Result<(), GatewayError> {
        let cfg = &self.vm.config;
        let (path, _) = split_path(&self.req.path);
        match cfg.grpc_paths.get(path) {
            Some(&op) => {
                self.op = Some(op);
                self.mode = Mode::Grpc;
                Ok(())
            }
            None if cfg.transcoding.pass_through_unmatched => {
                self.mode = Mode::PassThrough;
                Ok(())
            }
            None => Err(RequestError::UnknownGrpcMethod {
                path: path.to_string(),
            }
            .into()),
        }
    }

    fn classify_http(&mut self) -> Result<(), GatewayError> {
        let cfg = &self.vm.config;
        let (path, query) = split_path(&self.req.path);
        let found = cfg
            .http
            .lookup(&self.req.method, path, cfg.transcoding.url_unescape_spec);
        let m = match found {
            Some(Ok(m)) => m,
            Some(Err(e)) => return Err(RequestError::Invalid(e.to_string()).into()),
            None if cfg.transcoding.pass_through_unmatched => {
                self.mode = Mode::PassThrough;
                return Ok(());
            }
            None => {
                return Err(RequestError::NoOperation {
                    method: self.req.method.clone(),
                    path: path.to_string(),
                }
                .into())
            }
        };
        let HttpTarget { op, binding } = *m.value;
        self.op = Some(op);
        let operation = cfg.operations.get(op).ok_or_else(internal_error)?;
        self.mode = match &operation.kind {
            OpKind::Rest => Mode::Rest(m.bindings.clone()),
            OpKind::Grpc {
                server_streaming,
                bindings,
                ..
            } => {
                if self.policy().is_some_and(|p| !p.transcoding_enabled) {
                    return Err(RequestError::TranscodingOff.into());
                }
                let plan = bindings.get(binding).ok_or_else(internal_error)?;
                let request_kind = if plan.request.is_http_body() {
                    RequestKind::Raw
                } else if is_protobuf(&self.req.content_type) {
                    RequestKind::Protobuf
                } else {
                    RequestKind::Json
                };
                let response_format = if self.error_format == BodyFormat::Protobuf {
                    ResponseFormat::Protobuf
                } else {
                    ResponseFormat::Json
                };
                Mode::Transcode(Transcode {
                    binding,
                    bindings: m.bindings.clone(),
                    query: cfg
                        .auth
                        .query_without_tokens(query.unwrap_or_default())
                        .into_owned(),
                    request_kind,
                    response_format,
                    server_streaming: *server_streaming,
                })
            }
        };
        Ok(())
    }

    /// `None`: allowed, go on. `Some(action)`: denied (replied) or waiting for keys.
    fn authenticate(&mut self, host: &mut dyn Host) -> Option<Action> {
        let vm = self.vm.clone();
        let cfg = &vm.config;
        let op = cfg.operations.get(self.op?)?;
        let requirement = self
            .policy()
            .and_then(|p| p.auth.clone())
            .unwrap_or_else(|| op.auth.clone());
        let (_, query) = split_path(&self.req.path);
        let request = auth::Request {
            headers: &self.req.headers,
            query,
        };
        let now = host.now();
        let outcome = {
            let mut state = vm.auth.borrow_mut();
            auth::authenticate(&cfg.auth, &mut state, &requirement, &request, now)
        };
        match outcome {
            AuthOutcome::Allowed(result) => {
                // `cached`: the verified-token cache answered (no signature was checked).
                let reason = if result.cached { "cached" } else { "ok" };
                let name =
                    cfg.observe
                        .names
                        .auth_decisions(&op.name, AuthDecision::Allowed, reason);
                vm.count(host, &name);
                self.principal = result.principal.as_ref().and_then(|p| p.subject.clone());
                for name in &result.remove_headers {
                    self.set_request_header(host, name, None);
                }
                for (name, value) in &result.set_headers {
                    self.set_request_header(host, name, Some(value));
                    if name == ":path" {
                        self.token_left_query(value);
                    }
                }
                None
            }
            AuthOutcome::Denied(err, reason) => {
                let name = cfg.observe.names.auth_decisions(
                    &op.name,
                    AuthDecision::Denied,
                    reason.as_str(),
                );
                vm.count(host, &name);
                host.log(
                    Level::Info,
                    &format!(
                        "meshgate: {} denied: {} ({}){}",
                        self.logged_request(),
                        err.message,
                        reason.as_str(),
                        self.logged_request_id()
                    ),
                );
                Some(self.reply_error(host, err))
            }
            AuthOutcome::Pending { providers } => {
                let bound = providers
                    .iter()
                    .map(|p| cfg.auth.initial_fetch_wait(*p))
                    .max()
                    .unwrap_or_default();
                self.waiting = Waiting::Keys { since: now, bound };
                Some(Action::Pause)
            }
        }
    }

    /// Routing metadata, then the mode's own work.
    fn after_auth(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Action {
        self.set_routing_headers(host);
        match &self.mode {
            Mode::Rest(_) => {
                self.rewrite_rest_path(host);
                Action::Continue
            }
            Mode::Transcode(_) if end_of_stream => self.transcode_body(host, 0),
            Mode::Transcode(_) if self.side_calls_only() => match self.send_headers_first(host) {
                Ok(()) => Action::Continue,
                Err(err) => self.reply_error(host, err),
            },
            Mode::Transcode(_) => Action::Pause,
            _ => Action::Continue,
        }
    }

    /// `upstream_calls: side_call`: every transcoded call is a side call, and the request headers
    /// are not held while the body comes. Where a filter cannot pause headers and still see
    /// the body, or pause the upstream's response headers until its trailers give the status
    /// (Istio's WasmPlugin sets no `allow_on_headers_stop_iteration`), holding either would
    /// stall the request; a side call's reply comes back whole instead.
    pub(super) fn side_calls_only(&self) -> bool {
        self.vm.config.transcoding.upstream_calls == UpstreamCalls::SideCall
    }

    /// Take the side call's headers from the client's request as received, then rewrite the
    /// request headers to the gRPC call's and let them go on so that the body follows (it is
    /// converted at its end). The stream that Envoy's router opens with these headers carries
    /// no data; it is cancelled when the side call's answer is sent.
    fn send_headers_first(&mut self, host: &mut dyn Host) -> Result<(), GatewayError> {
        self.side_call_headers = Some(self.side_call_headers_now(host)?);
        self.rewrite_grpc_headers(host)
    }

    fn set_request_header(&self, host: &mut dyn Host, name: &str, value: Option<&str>) {
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

    fn set_routing_headers(&mut self, host: &mut dyn Host) {
        let vm = self.vm.clone();
        let cfg = &vm.config;
        let Some(op) = self.op.and_then(|i| cfg.operations.get(i)) else {
            return;
        };
        let r = &cfg.routing;
        self.set_request_header(host, &r.upstream_header, Some(&op.upstream.header_value));
        self.set_request_header(host, &r.operation_header, Some(&op.name));
        if let Some(sub) = self.principal.clone() {
            self.set_request_header(host, &r.subject_header, Some(&sub));
        }
        if self.req.request_id.is_none() && r.generate_request_id {
            let id = request_id(host, self.context_id);
            self.set_request_header(host, "x-request-id", Some(&id));
            self.req.request_id = Some(id);
        }
        // No explicit route cache clearing: Envoy re-selects the route after a filter changes
        // a request header (ENVOY_NOTES).
    }

    fn rewrite_rest_path(&self, host: &mut dyn Host) {
        let Some(op) = self.op.and_then(|i| self.vm.config.operations.get(i)) else {
            return;
        };
        let up = &op.upstream;
        let new_path = match up.path_translation {
            Some(PathTranslation::AppendPathToAddress) => {
                route::append_path(&up.path_prefix, &self.req.path)
            }
            // The path variables the matcher bound in `classify_http`: no second lookup.
            Some(PathTranslation::ConstantAddress) => {
                let vars = match &self.mode {
                    Mode::Rest(vars) => vars.as_slice(),
                    _ => &[],
                };
                route::constant_address_path(&up.path_prefix, &self.req.path, vars)
            }
            None => return,
        };
        self.set_request_header(host, "x-envoy-original-path", Some(&self.req.path));
        self.set_request_header(host, ":path", Some(&new_path));
    }

    /// Build the gRPC request from path, query and body, then send it on: through Envoy's
    /// router when the request has a body to replace, or as a side call when it has none
    /// (Envoy gives a filter no body buffer to fill on a body-less request).
    fn transcode_body(&mut self, host: &mut dyn Host, size: usize) -> Action {
        let message = match self.build_message(host, size) {
            Ok(m) => m,
            Err(err) => return self.reply_error(host, err),
        };
        let frame = encode_frame(&message);
        if size > 0 && !self.side_calls_only() {
            if let Err(e) = host.set_body(BodyKind::Request, &frame) {
                return self.reply_error(host, host_failure(&e.to_string()));
            }
            if !self.grpc_headers_set {
                if let Err(err) = self.rewrite_grpc_headers(host) {
                    return self.reply_error(host, err);
                }
            }
            return Action::Continue;
        }
        match self.side_call(host, &frame) {
            Ok(()) => Action::Pause,
            Err(err) => self.reply_error(host, err),
        }
    }

    fn build_message(&self, host: &dyn Host, size: usize) -> Result<Vec<u8>, GatewayError> {
        let Mode::Transcode(t) = &self.mode else {
            return Err(internal_error());
        };
        let cfg = &self.vm.config;
        let plan = self.binding_plan(t.binding).ok_or_else(internal_error)?;
        let body = if size > 0 {
            host.body(BodyKind::Request, 0, size).unwrap_or_default()
        } else {
            Vec::new()
        };
        let query = crate::operation::parse_query(&t.query)
            .map_err(|e| GatewayError::from(RequestError::Invalid(e)))?;
        let kind = match t.request_kind {
            RequestKind::Json => transcode::BodyKind::Json,
            RequestKind::Protobuf => transcode::BodyKind::Protobuf,
            RequestKind::Raw => transcode::BodyKind::Raw {
                content_type: &self.req.content_type,
            },
        };
        let opts = RequestOptions {
            ignore_unknown_query_parameters: cfg.transcoding.ignore_unknown_query_parameters,
            max_depth: cfg.limits.max_json_depth,
        };
        transcode::build_request(&plan.request, &t.bindings, &query, &body, kind, &opts)
    }

    pub(super) fn binding_plan(&self, binding: usize) -> Option<&crate::config::Binding> {
        let op = self.vm.config.operations.get(self.op?)?;
        match &op.kind {
            OpKind::Grpc { bindings, .. } => bindings.get(binding),
            OpKind::Rest => None,
        }
    }

    fn grpc_path(&self) -> Option<String> {
        let op = self.vm.config.operations.get(self.op?)?;
        match &op.kind {
            OpKind::Grpc { grpc_path, .. } => Some(grpc_path.clone()),
            OpKind::Rest => None,
        }
    }

    fn rewrite_grpc_headers(&mut self, host: &mut dyn Host) -> Result<(), GatewayError> {
        let path = self.grpc_path().ok_or_else(internal_error)?;
        let set = |host: &mut dyn Host, n: &str, v: Option<&str>| {
            host.set_header(MapKind::RequestHeaders, n, v)
                .map_err(|e| host_failure(&e.to_string()))
        };
        set(host, "x-envoy-original-path", Some(&self.req.path))?;
        set(host, "x-envoy-original-method", Some(&self.req.method))?;
        set(host, ":path", Some(&path))?;
        set(host, ":method", Some("POST"))?;
        set(host, "content-type", Some("application/grpc"))?;
        set(host, "te", Some("trailers"))?;
        set(host, "content-length", None)?;
        for (name, value) in self.forwarded_metadata() {
            set(host, &name, value.as_deref())?;
        }
        self.grpc_headers_set = true;
        Ok(())
    }

    /// `transcoding.request_headers_to_metadata`, from the client's headers as received.
    fn forwarded_metadata(&self) -> Vec<(String, Option<String>)> {
        let listed = &self.vm.config.transcoding.request_headers_to_metadata;
        transcode::metadata::request_metadata(listed, &self.req.headers)
    }

    /// Body-less transcoded request (or any one with `upstream_calls: side_call`): the gRPC
    /// call goes to the upstream's cluster directly and the reply comes back to
    /// `on_http_call_response`.
    fn side_call(&mut self, host: &mut dyn Host, frame: &[u8]) -> Result<(), GatewayError> {
        let op = self
            .op
            .and_then(|i| self.vm.config.operations.get(i))
            .ok_or_else(internal_error)?;
        let cluster = op.upstream.name.clone();
        let timeout = op.upstream.timeout;
        let headers = match self.side_call_headers.take() {
            Some(h) => h,
            None => self.side_call_headers_now(host)?,
        };
        self.side_call_sent = Some((host.now(), timeout));
        host.http_call(&cluster, &headers, Some(frame), timeout)
            .map(|token| self.call_token = Some(token))
            .map_err(|e| {
                UpstreamError::Unavailable(format!("could not call upstream `{cluster}`: {e}"))
                    .into()
            })
    }

    /// The side call's headers: the gRPC call's own, then the client's (as the router would
    /// forward them) from the request map, which also holds the headers the gateway set.
    fn side_call_headers_now(
        &self,
        host: &dyn Host,
    ) -> Result<Vec<(String, String)>, GatewayError> {
        let path = self.grpc_path().ok_or_else(internal_error)?;
        let mut headers: Vec<(String, String)> = vec![
            (":method".into(), "POST".into()),
            (":path".into(), path),
            (":authority".into(), self.req.authority.clone()),
            ("content-type".into(), "application/grpc".into()),
            ("te".into(), "trailers".into()),
            ("x-envoy-original-path".into(), self.req.path.clone()),
            ("x-envoy-original-method".into(), self.req.method.clone()),
        ];
        // Forward the client's headers as metadata, as Envoy's router would, minus what a gRPC
        // request must not carry. Headers set by the gateway were written into the request map
        // and are re-read here.
        let metadata = self.forwarded_metadata();
        for (k, v) in host.headers(MapKind::RequestHeaders) {
            let listed = metadata.iter().any(|(m, _)| *m == k);
            if forwardable(&k) && !listed && !headers.iter().any(|(h, _)| *h == k) {
                headers.push((k, v));
            }
        }
        headers.extend(metadata.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
        Ok(headers)
    }
}

fn forwardable(name: &str) -> bool {
    !name.starts_with(':')
        && !matches!(
            name,
            "content-type"
                | "content-length"
                | "te"
                | "connection"
                | "transfer-encoding"
                | "keep-alive"
                | "upgrade"
                | "host"
                | "accept-encoding"
        )
}

/// A request id when the client sent none: time and context make it unique per VM; the VM's
/// address space is private, so no randomness is needed for uniqueness within a proxy.
fn request_id(host: &dyn Host, context_id: u32) -> String {
    let nanos = host
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:032x}-{context_id:08x}")
}

fn internal_error() -> GatewayError {
    GatewayError::new(Code::Internal, "gateway state error")
}

fn host_failure(msg: &str) -> GatewayError {
    GatewayError::new(Code::Internal, format!("proxy refused a change: {msg}"))
}

impl Filter {
    /// The token was taken out of the query (`path` is the new `:path`): what is forwarded from
    /// now on (a REST upstream's path, `x-envoy-original-path`) is without it. (The query a
    /// transcoded message is built from never holds a token parameter: `classify_http`.)
    fn token_left_query(&mut self, path: &str) {
        self.req.path = path.to_string();
    }

    /// `METHOD path` for a log line, with the value of every token query parameter hidden
    /// (the path still holds a refused or forwarded token).
    fn logged_request(&self) -> String {
        let path = self.vm.config.auth.redact_path(&self.req.path);
        format!("{} {path}", self.req.method)
    }

    /// ` request_id=ID` (empty without one): what finds the request's access record.
    fn logged_request_id(&self) -> String {
        self.req
            .request_id
            .as_deref()
            .map(|id| format!(" request_id={id}"))
            .unwrap_or_default()
    }

    /// Whether a request that waits for a provider's first keys has waited long enough.
    pub fn keys_wait_expired(&self, now: std::time::SystemTime) -> bool {
        match self.waiting {
            Waiting::Keys { since, bound } => now
                .duration_since(since)
                .map(|d| d >= bound)
                .unwrap_or(false),
            Waiting::Nothing => false,
        }
    }

    /// The keys did not come in time: the request is refused as an outage, not a bad token.
    pub(super) fn keys_timeout(&mut self, host: &mut dyn Host) {
        let waited = match self.waiting {
            Waiting::Keys { bound, .. } => bound.as_millis(),
            Waiting::Nothing => 0,
        };
        self.waiting = Waiting::Nothing;
        let err = AuthError::KeysUnavailable {
            message: "the token issuer's keys are not available yet; try again".into(),
            status: self.vm.config.auth.unavailable_status,
        };
        host.log(
            Level::Info,
            &format!(
                "meshgate: {} denied: no keys after waiting {waited} ms (keys_unavailable){}",
                self.logged_request(),
                self.logged_request_id()
            ),
        );
        if let Some(op) = self.op.and_then(|i| self.vm.config.operations.get(i)) {
            let names = &self.vm.config.observe.names;
            let name = names.auth_decisions(&op.name, AuthDecision::Denied, "keys_unavailable");
            self.vm.count(host, &name);
        }
        self.reply_error(host, err.into());
    }
}
