//! The per-request state machine. Each callback reads what it needs through [`Host`], asks the
//! core modules for decisions, applies them, and returns an [`Action`]. It never names the
//! proxy's ABI, so the whole flow runs in host-side tests against a fake `Host`.

mod auth;
mod classify;
mod log;
mod request;
mod response;
mod scheduler;
mod stream;
mod upstream;
mod vm;

use std::rc::Rc;
use std::time::SystemTime;

pub use scheduler::{Scheduler, Stream, TICK};
pub use vm::Vm;

use crate::config::{OpId, Policy};
use crate::host::{Action, Host};
use crate::status::{BodyFormat, Code, GatewayError};
use crate::transcode::ResponseFormat;

/// How the gateway handles the request once it is classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Not yet classified (headers not seen).
    New,
    /// Native gRPC: authenticated, routed and observed, bytes untouched.
    Grpc,
    /// HTTP+JSON or HTTP+Protobuf to gRPC through Envoy's router.
    Transcode(Transcode),
    /// Plain HTTP to a REST upstream (path rewritten), with its path variables.
    Rest(Vec<(String, String)>),
    /// Unmatched and passed through by configuration.
    PassThrough,
    /// The gateway answered itself.
    LocalReply,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Transcode {
    pub binding: usize,
    pub bindings: Vec<(String, String)>,
    pub query: String,
    pub request_kind: RequestKind,
    pub response_format: ResponseFormat,
    pub server_streaming: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Json,
    Protobuf,
    Raw,
}

/// What a request waits for between callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    Nothing,
    /// Keys of a remote JWKS that has not been fetched yet; the root context resumes us.
    Keys {
        since: SystemTime,
        bound: std::time::Duration,
    },
}

/// Facts about the request, read once from its headers.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub method: String,
    pub path: String,
    pub authority: String,
    pub scheme: String,
    pub content_type: String,
    pub accept: String,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub headers: Vec<(String, String)>,
}

pub struct Filter {
    vm: Rc<Vm>,
    pub context_id: u32,
    start: Option<SystemTime>,
    req: RequestInfo,
    mode: Mode,
    op: Option<OpId>,
    policy: Option<String>,
    principal: Option<String>,
    waiting: Waiting,
    error_format: BodyFormat,
    /// Set when the gateway answered (or converted) with an error.
    error: Option<GatewayError>,
    resp: ResponseState,
    request_body_seen: usize,
    /// The whole request has arrived (end of stream on headers or body).
    request_end: bool,
    /// The request headers were rewritten to the gRPC call's (`:path`, content-type, ...).
    grpc_headers_set: bool,
    /// Headers of the side call, taken before the request headers went on to the router
    /// (`transcoding.upstream_calls: side_call`).
    side_call_headers: Option<Vec<(String, String)>>,
    /// When the side call left and its timeout: a call that ends without an answer after that
    /// long timed out (Envoy reports a timeout and a failure alike, with no headers).
    side_call_sent: Option<(SystemTime, std::time::Duration)>,
    logged: bool,
    /// The token of an HTTP call made in this callback, not yet reported to the scheduler.
    call_token: Option<u32>,
}

/// What the VM-wide [`Scheduler`] must do for a request after one of its callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    Nothing,
    /// Paused until keys arrive (or the wait's bound passes): the root wakes it.
    WaitForKeys,
    /// Rendered stream bytes are held: the next tick releases them.
    Flush,
    /// An HTTP call left with this token: its reply belongs to this request, whichever
    /// context the proxy delivers it to.
    CallReply(u32),
}

/// A callback's result: what the proxy does with the stream, and what the scheduler does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    pub then: Then,
}

#[derive(Default)]
struct ResponseState {
    status: Option<u16>,
    grpc_status: Option<Code>,
    content_type: String,
    /// The upstream spoke gRPC (content-type application/grpc*).
    grpc: bool,
    body_seen: usize,
    /// The converted reply was sent as a local reply (the rest of the upstream's is dropped).
    replaced: bool,
    /// Upstream metadata listed in `transcoding.response_metadata_to_headers`.
    forward: Vec<(String, String)>,
    /// A server stream being forwarded through the router.
    stream: Option<stream::StreamState>,
    /// Response headers came from the upstream (or Envoy's router) before any reply of the
    /// gateway's own: the access log tells the service's answers from the gateway's.
    upstream_answered: bool,
}

impl Filter {
    pub fn new(vm: Rc<Vm>, context_id: u32) -> Filter {
        Filter {
            vm,
            context_id,
            start: None,
            req: RequestInfo::default(),
            mode: Mode::New,
            op: None,
            policy: None,
            principal: None,
            waiting: Waiting::Nothing,
            error_format: BodyFormat::Json,
            error: None,
            resp: ResponseState::default(),
            request_body_seen: 0,
            request_end: false,
            grpc_headers_set: false,
            side_call_headers: None,
            side_call_sent: None,
            logged: false,
            call_token: None,
        }
    }

    pub fn on_request_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Step {
        let action = self.request_headers(host, end_of_stream);
        self.step(action)
    }

    pub fn on_request_body(&mut self, host: &mut dyn Host, size: usize, eos: bool) -> Step {
        let action = self.request_body(host, size, eos);
        self.step(action)
    }

    pub fn on_response_headers(&mut self, host: &mut dyn Host, eos: bool) -> Step {
        let action = self.response_headers(host, eos);
        self.step(action)
    }

    pub fn on_response_body(&mut self, host: &mut dyn Host, size: usize, eos: bool) -> Step {
        let action = self.response_body(host, size, eos);
        self.step(action)
    }

    pub fn on_response_trailers(&mut self, host: &mut dyn Host) -> Step {
        let action = self.response_trailers(host);
        self.step(action)
    }

    /// Keys a paused request waited for have arrived (or the wait ended): verify again.
    /// `Continue` means resume the request now.
    pub fn on_keys_ready(&mut self, host: &mut dyn Host) -> Step {
        let resume = self.keys_ready(host);
        self.step(if resume {
            Action::Continue
        } else {
            Action::Pause
        })
    }

    /// The keys did not come in time: refused as an outage, not a bad token.
    pub fn on_keys_timeout(&mut self, host: &mut dyn Host) -> Step {
        self.keys_timeout(host);
        self.step(Action::Pause)
    }

    /// What the scheduler must do after this callback.
    fn step(&mut self, action: Action) -> Step {
        let then = if self.waiting != Waiting::Nothing {
            Then::WaitForKeys
        } else if let Some(token) = self.call_token.take() {
            Then::CallReply(token)
        } else if self.wants_flush() {
            Then::Flush
        } else {
            Then::Nothing
        };
        Step { action, then }
    }

    pub fn is_waiting(&self) -> bool {
        self.waiting != Waiting::Nothing
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    pub fn waiting(&self) -> Waiting {
        self.waiting
    }

    pub fn operation_name(&self) -> Option<&str> {
        let op = self.op?;
        self.vm.config.operations.get(op).map(|o| o.name.as_str())
    }

    fn policy(&self) -> Option<&Policy> {
        let name = self.policy.as_ref()?;
        self.vm.config.policies.get(name)
    }

    /// Answer the client with `err` in the shape it understands, and remember it for the log.
    fn reply_error(&mut self, host: &mut dyn Host, err: GatewayError) -> Action {
        let (status, mut headers, body) = err.to_response(self.error_format);
        headers.extend(self.resp.forward.iter().cloned());
        if let Err(e) = host.send_response(status, &headers, &body) {
            host.log(
                crate::host::Level::Warn,
                &format!("meshgate: could not send error reply ({e}): {err}"),
            );
        }
        self.resp.status = Some(status);
        self.resp.grpc_status = Some(err.code);
        self.resp.replaced = true;
        self.error = Some(err);
        self.mode = Mode::LocalReply;
        Action::Pause
    }
}
