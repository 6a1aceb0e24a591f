//! The per-request state machine. Each callback reads what it needs through [`Host`], asks the
//! domains for decisions (route: header changes; transcode: the upstream request), applies
//! them, moves the request to its next [`Phase`] and returns a [`Step`]: the proxy's
//! [`Action`] and what the VM-wide [`Scheduler`] does next. It never names the proxy's ABI, so
//! the whole flow, the scheduler included, runs in host-side tests against a fake `Host`.

mod auth;
mod browser;
mod classify;
mod export;
mod handle;
mod health;
mod log;
mod panicked;
mod phase;
mod quota;
mod request;
mod request_stream;
mod response;
mod scheduler;
mod served;
mod side_call;
mod side_quota;
mod side_rls;
mod span;
mod stream;
mod trap;
mod upstream;
mod vm;

use std::rc::Rc;
use std::time::SystemTime;

pub use handle::Stream;
pub use phase::{Phase, Step, Then};
pub use scheduler::{Scheduler, TICK};
pub use trap::{Callback, TrapReport};
pub use vm::Vm;

use crate::config::{OpId, Policy};
use crate::host::{Action, Host};
use crate::status::{BodyFormat, Code, GatewayError};
use crate::transcode::{PrintOptions, ResponseFormat};

/// How the gateway handles the request: what classification found (it never changes after).
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Not classified (headers not seen, or refused before classification).
    New,
    /// Native gRPC: authenticated, routed and observed, bytes untouched.
    Grpc,
    /// HTTP+JSON or HTTP+Protobuf to gRPC through Envoy's router.
    Transcode(Transcode),
    /// Plain HTTP to a REST upstream (path rewritten), with its path variables.
    Rest(Vec<(String, String)>),
    /// Unmatched and passed through by configuration.
    PassThrough,
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
    /// A CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`).
    pub preflight: bool,
    /// A gRPC-Web client's call (seen as native gRPC after Envoy's `grpc_web` filter).
    pub grpc_web: bool,
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
    /// The configured client whose API key let the request in.
    client: Option<String>,
    /// The verified client certificate's identity (mTLS), read when authenticating.
    client_principal: Option<String>,
    /// Envoy's `connection.mtls`, read with the route's policy in one call (`request.rs`).
    mtls: Option<Vec<u8>>,
    /// The operation and upstream are already in the filter state (written when the operation
    /// matched, for the trace span): the record does not write them again.
    span_fields_published: bool,
    error_format: BodyFormat,
    /// Where the request is, with that phase's data.
    phase: Phase,
    resp: ResponseState,
    /// The token of an HTTP call made in this callback, not yet reported to the scheduler.
    call_token: Option<u32>,
    /// The gateway's trace, for meshgate's own spans (`span.rs`).
    span: span::SpanState,
    /// The side call's gRPC frame, held while the Rate Limit Service is asked (`side_rls`).
    rls_frame: Option<Vec<u8>>,
    /// The clock as read once in the current callback (`callback_now`); cleared by `step`.
    clock: Option<SystemTime>,
}

#[derive(Default)]
struct ResponseState {
    status: Option<u16>,
    grpc_status: Option<Code>,
    content_type: String,
    /// The upstream spoke gRPC (content-type application/grpc*).
    grpc: bool,
    body_seen: usize,
    /// Upstream metadata listed in `transcoding.response_metadata_to_headers`.
    forward: Vec<(String, String)>,
    /// A server stream being forwarded through the router.
    stream: Option<stream::StreamState>,
    /// Response headers came from the upstream (or Envoy's router) before any reply of the
    /// gateway's own: the access log tells the service's answers from the gateway's.
    upstream_answered: bool,
    /// A response callback ran: a local reply now bypasses every encoder filter (Envoy's
    /// `sendDirectLocalReply`), Envoy's CORS filter included (`browser.rs`).
    started: bool,
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
            client: None,
            client_principal: None,
            mtls: None,
            span_fields_published: false,
            error_format: BodyFormat::Json,
            phase: Phase::Headers,
            resp: ResponseState::default(),
            call_token: None,
            span: span::SpanState::default(),
            rls_frame: None,
            clock: None,
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
        self.resp.started = true;
        let action = self.response_headers(host, eos);
        self.response_step(host, action, eos)
    }

    pub fn on_response_body(&mut self, host: &mut dyn Host, size: usize, eos: bool) -> Step {
        self.resp.started = true;
        let action = self.response_body(host, size, eos);
        self.response_step(host, action, eos)
    }

    pub fn on_response_trailers(&mut self, host: &mut dyn Host) -> Step {
        self.resp.started = true;
        let action = self.response_trailers(host);
        self.response_step(host, action, true)
    }

    /// A response callback's step; where the response ends (or the gateway answered), the
    /// outcome goes to the trace span first (`span.rs`).
    fn response_step(&mut self, host: &mut dyn Host, action: Action, end: bool) -> Step {
        if end || self.replied() {
            self.publish_span_verdicts(host);
        }
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
        self.clock = None;
        let then = if self.is_waiting() {
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

    /// The time, read from the proxy at most once per callback (every callback that reaches
    /// this ends in `step`, which forgets it).
    fn callback_now(&mut self, host: &dyn Host) -> SystemTime {
        *self.clock.get_or_insert_with(|| host.now())
    }

    pub fn is_waiting(&self) -> bool {
        matches!(self.phase, Phase::AwaitKeys { .. })
    }

    /// The gateway answered the client itself (the upstream's reply, if any, is dropped).
    fn replied(&self) -> bool {
        matches!(self.phase, Phase::Replied { .. })
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    pub fn operation_name(&self) -> Option<&str> {
        let op = self.op?;
        self.vm.config.operations.get(op).map(|o| o.name.as_str())
    }

    fn policy(&self) -> Option<&Policy> {
        let name = self.policy.as_ref()?;
        self.vm.config.policies.get(name)
    }

    /// The print options in effect: the route's policy's, else `transcoding.print_options`.
    fn print_options(&self) -> PrintOptions {
        self.policy()
            .and_then(|p| p.print_options)
            .unwrap_or(self.vm.config.transcoding.print_options)
    }

    /// Answer the client with `err` in the shape it understands, and remember it for the log.
    fn reply_error(&mut self, host: &mut dyn Host, mut err: GatewayError) -> Action {
        let opts = self.print_options();
        crate::transcode::grpc_status::print_details(&self.vm.config.pool, &mut err, &opts);
        let print = opts.status_print();
        let (status, mut headers, body) = err.to_response_with(self.error_format, print);
        headers.extend(self.resp.forward.iter().cloned());
        headers.extend(self.cors_reply_headers());
        if let Err(e) = host.send_response(status, &headers, &body) {
            host.log(
                crate::host::Level::Warn,
                &format!("meshgate: could not send error reply ({e}): {err}"),
            );
        }
        self.resp.status = Some(status);
        self.resp.grpc_status = Some(err.code);
        self.phase = Phase::Replied { error: Some(err) };
        Action::Pause
    }
}
