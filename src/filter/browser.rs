//! Browser requests: CORS preflights (recorded and counted as such, outside every operation's
//! objective) and the client protocol the record states (gRPC-Web or gRPC).
//!
//! Envoy's CORS filter runs before meshgate and answers the preflights it serves: meshgate's
//! request callbacks never see those, but its log callback runs for every stream, so the
//! preflight is recognised there from the request headers Envoy hands the log phase. A
//! preflight that does reach meshgate (no `cors` section, or a proxy that forwards preflights
//! it does not allow) is refused with a `Status` (403), without auth and without a backend.

use super::{Filter, Mode, Phase, RequestInfo};
use crate::cors::{is_preflight, PolicyCors, PREFLIGHT_OUTCOME};
use crate::host::{find_header, Host, MapKind};
use crate::observe::{AccessRecord, Verdict};
use crate::operation::split_path;
use crate::status::{Code, GatewayError};

impl Filter {
    /// A preflight that reached meshgate: refused (no CORS policy allowed it), never
    /// authenticated or sent upstream.
    pub(super) fn refuse_preflight(&mut self, host: &mut dyn Host) -> crate::host::Action {
        let origin = find_header(&self.req.headers, "origin").unwrap_or_default();
        let err = GatewayError::new(
            Code::PermissionDenied,
            format!("cross-origin requests from {origin} are not allowed (CORS preflight refused)"),
        );
        self.reply_error(host, err)
    }

    /// The CORS response headers for a local reply made once the response has started: Envoy
    /// sends such a reply with `sendDirectLocalReply`, past every encoder filter, so its CORS
    /// filter (before meshgate in the chain) never adds them. Decided as that filter would: the
    /// route policy's CORS (tightened, or off), else the `cors` section; only for an `Origin`
    /// it allows. The request's headers were read at its start: no host call. Earlier replies
    /// pass the CORS filter's encoder and get nothing here.
    pub(super) fn cors_reply_headers(&self) -> Vec<(String, String)> {
        if !self.resp.started {
            return Vec::new();
        }
        let Some(origin) = find_header(&self.req.headers, "origin") else {
            return Vec::new();
        };
        let cors = match self.policy().and_then(|p| p.cors.as_ref()) {
            Some(PolicyCors::Off) => return Vec::new(),
            Some(PolicyCors::On(c)) => Some(c),
            None => self.vm.config.cors.as_ref(),
        };
        cors.map(|c| c.response_headers(origin)).unwrap_or_default()
    }

    /// The client protocol for the record: `grpc-web` or `grpc` (native gRPC and gRPC-Web
    /// calls reach meshgate alike), `http` for the rest.
    pub(super) fn client_protocol(&self) -> Option<&'static str> {
        match self.mode {
            Mode::Grpc if self.req.grpc_web => Some("grpc-web"),
            Mode::Grpc => Some("grpc"),
            Mode::New => None,
            _ => Some("http"),
        }
    }

    /// The request's headers when its request callbacks never ran (Envoy's CORS filter answered
    /// it): read from the log phase, only to recognise a preflight.
    fn preflight_unseen(&mut self, host: &dyn Host) -> bool {
        if self.phase != Phase::Headers || !self.req.method.is_empty() {
            return false;
        }
        let headers = host.headers(MapKind::RequestHeaders);
        let method = find_header(&headers, ":method").unwrap_or_default();
        if !is_preflight(method, &headers) {
            return false;
        }
        self.req = RequestInfo::from_headers(headers);
        true
    }

    /// Log and count a preflight, if this request is one. Returns whether it was.
    pub(super) fn log_preflight(&mut self, host: &mut dyn Host) -> bool {
        if !self.req.preflight && !self.preflight_unseen(host) {
            return false;
        }
        self.phase = Phase::Logged;
        let vm = self.vm.clone();
        let cfg = &vm.config;
        let operation = self.preflight_operation();
        let facts = super::log::stream_facts(host, self.start, self.resp.status);
        let record = AccessRecord {
            method: self.req.method.clone(),
            url: super::log::record_url(&self.req, cfg),
            status: facts.status,
            request_size: facts.request_size,
            response_size: facts.response_size,
            user_agent: self.req.user_agent.clone(),
            remote_ip: facts.remote_ip,
            protocol: facts.protocol,
            latency: facts.latency,
            trace: crate::observe::parse_trace(&self.req.headers),
            trace_project: cfg.observe.trace_project.clone(),
            request_id: self.req.request_id.clone(),
            operation: operation.clone(),
            upstream: None,
            grpc_status: None,
            principal: None,
            client: None,
            client_principal: None,
            policy: self.policy.clone(),
            outcome: PREFLIGHT_OUTCOME,
            availability: Verdict::NotApplicable,
            latency_verdict: Verdict::NotApplicable,
            client_protocol: Some("cors-preflight"),
        };
        super::log::publish(host, cfg, &record, &[]);
        let label = operation
            .as_deref()
            .unwrap_or(crate::observe::UNMATCHED_OPERATION);
        vm.count(host, &cfg.observe.names.requests(label, PREFLIGHT_OUTCOME));
        true
    }

    /// The operation a preflight asks about: its path with the method it announces.
    fn preflight_operation(&self) -> Option<String> {
        let cfg = &self.vm.config;
        let method = find_header(&self.req.headers, "access-control-request-method")?;
        let (path, _) = split_path(&self.req.path);
        let op = match cfg.grpc_paths.get(path) {
            Some(&op) => op,
            None => {
                let found = cfg
                    .http
                    .lookup(method, path, cfg.transcoding.url_unescape_spec)?
                    .ok()?;
                found.value.op
            }
        };
        cfg.operations.get(op).map(|o| o.name.clone())
    }
}
