//! A trap: the module panicked (a bug, or the test build's trigger) and the VM is about to
//! abort. Envoy then fails the request whose callback trapped (503 `wasm_fail_stream`, or a
//! reset once its response started) and, under `FAIL_RELOAD`, serves later requests from a new
//! VM; the old VM's log callbacks never run. So that nothing is lost, the wasm glue's panic hook
//! calls [`Scheduler::on_trap`] first, while the VM can still call the proxy:
//!
//! - every request of this VM that is not logged yet (the trapping one and those in flight on
//!   other streams) is **counted** once in `meshgate_requests_total` as `unavailable` with a bad
//!   availability event (its objective's), as a 503 UNAVAILABLE would be; a request trapped in
//!   its log callback is counted with the status it already got;
//! - its `operation` and `upstream` go to filter state, so the record Envoy writes for it
//!   (`cli::envoy::envoy_record`) names them;
//! - a request that would otherwise wait forever for this VM (a side call out, or waiting for
//!   keys: their replies would go to the dead VM) is **answered** 503 UNAVAILABLE now. Requests
//!   on their way through Envoy's router need nothing: Envoy fails them at their next callback.
//!
//! Pure core code over [`RootHost`]: host-side tests drive it with the fake.

use std::time::Duration;

use super::{Filter, Phase, Scheduler};
use crate::host::{Host, Level, MapKind, RootHost};
use crate::observe::{classify, MetricNames, Outcome, Verdict};
use crate::operation::split_path;
use crate::status::{BodyFormat, Code, GatewayError};

/// The callback a trap happened in (the wasm glue records it at each callback's entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callback {
    RequestHeaders,
    RequestBody,
    ResponseHeaders,
    ResponseBody,
    ResponseTrailers,
    Log,
    /// An HTTP call's reply delivered to a stream.
    StreamCallReply,
    /// The root's tick.
    Tick,
    /// An HTTP call's reply delivered to the root (a JWKS fetch's).
    RootCallReply,
}

impl Callback {
    /// The test build's trigger value for this callback (`x-meshgate-test-trap: <name>`).
    pub fn name(self) -> &'static str {
        match self {
            Callback::RequestHeaders => "request_headers",
            Callback::RequestBody => "request_body",
            Callback::ResponseHeaders => "response_headers",
            Callback::ResponseBody => "response_body",
            Callback::ResponseTrailers => "response_trailers",
            Callback::Log => "log",
            Callback::StreamCallReply => "call_reply",
            Callback::Tick => "tick",
            Callback::RootCallReply => "jwks",
        }
    }

    pub const ALL: [Callback; 9] = [
        Callback::RequestHeaders,
        Callback::RequestBody,
        Callback::ResponseHeaders,
        Callback::ResponseBody,
        Callback::ResponseTrailers,
        Callback::Log,
        Callback::StreamCallReply,
        Callback::Tick,
        Callback::RootCallReply,
    ];

    pub fn from_name(name: &str) -> Option<Callback> {
        Callback::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// What [`Scheduler::on_trap`] did, for the log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrapReport {
    /// Requests counted (the trapping one included).
    pub counted: usize,
    /// Requests answered 503 that would have waited forever.
    pub answered: usize,
}

impl Scheduler {
    /// The VM is trapping in `callback` of stream `current` (None: a root callback). Count and
    /// name every request not logged yet, answer those that would hang (see the module
    /// documentation). Must not panic itself: it runs inside the panic hook.
    pub fn on_trap(
        &self,
        host: &mut dyn RootHost,
        current: Option<u32>,
        callback: Callback,
    ) -> TrapReport {
        let live = self
            .live
            .try_borrow()
            .map(|l| l.clone())
            .unwrap_or_default();
        let mut report = TrapReport::default();
        for (id, weak) in live {
            let Some(filter) = weak.upgrade() else {
                continue;
            };
            if host.set_effective_context(id).is_err() {
                continue;
            }
            let trapping = current == Some(id);
            let done = match filter.try_borrow_mut() {
                Ok(mut f) => Some(f.account_trap(host, trapping, callback)),
                Err(_) => None,
            };
            match done {
                Some((counted, answered)) => {
                    report.counted += usize::from(counted);
                    report.answered += usize::from(answered);
                }
                // The trapping callback holds its own filter: account from the proxy's view.
                None => {
                    report.answered += usize::from(self.account_held(host, callback));
                    report.counted += 1;
                }
            }
        }
        if let Some(id) = current {
            let _ = host.set_effective_context(id);
        }
        host.log(
            Level::Error,
            &format!(
                "meshgate: the VM trapped in {}; {} requests counted as failed, {} answered 503",
                callback.name(),
                report.counted,
                report.answered
            ),
        );
        report
    }

    /// The trapping request, whose filter its own callback holds: its operation from its
    /// request headers, its outcome a 503 (or, in the log callback, the status it got).
    /// Envoy fails the stream of a trapping stream callback itself; a trap in an HTTP call's
    /// reply (or a root callback holding the request) leaves the stream paused, so it is
    /// answered here. Whether it was answered.
    fn account_held(&self, host: &mut dyn RootHost, callback: Callback) -> bool {
        let vm = self.vm();
        let op = operation_from_headers(vm, host);
        let outcome = trapped_outcome(host, callback == Callback::Log, Duration::ZERO);
        count_trapped(vm, host, op, None, &outcome);
        if envoy_answers(callback) {
            return false;
        }
        let (status, headers, body) = vm_failed().to_response(BodyFormat::Json);
        host.send_response(status, &headers, &body).is_ok()
    }
}

impl Filter {
    /// This request's share of a trap: (counted, answered).
    pub(super) fn account_trap(
        &mut self,
        host: &mut dyn RootHost,
        trapping: bool,
        callback: Callback,
    ) -> (bool, bool) {
        if self.phase == Phase::Logged {
            return (false, false);
        }
        let waits_for_vm = matches!(self.phase, Phase::SideCall { .. } | Phase::AwaitKeys { .. });
        // Envoy answers a request whose own stream callback trapped; nothing else.
        let envoy_answers = trapping && envoy_answers(callback);
        let mut answered = false;
        if waits_for_vm && !envoy_answers {
            self.reply_error(host, vm_failed());
            answered = true;
        }
        let latency = self
            .start
            .and_then(|s| host.now().duration_since(s).ok())
            .unwrap_or_default();
        let in_log = trapping && callback == Callback::Log;
        let outcome = trapped_outcome(host, in_log, latency);
        let op = self.op.or_else(|| operation_from_headers(&self.vm, host));
        let policy = self.policy().filter(|p| p.slo.is_some());
        count_trapped(&self.vm, host, op, policy, &outcome);
        self.phase = Phase::Logged;
        (true, answered)
    }
}

/// Envoy fails the stream whose own callback trapped in one of these (503, or a reset once
/// the response started; in the log callback the answer is already out). A trap in an HTTP
/// call's reply or a root callback leaves every stream as it was.
fn envoy_answers(callback: Callback) -> bool {
    matches!(
        callback,
        Callback::RequestHeaders
            | Callback::RequestBody
            | Callback::ResponseHeaders
            | Callback::ResponseBody
            | Callback::ResponseTrailers
            | Callback::Log
    )
}

/// The answer to a request the failed VM would leave waiting.
fn vm_failed() -> GatewayError {
    GatewayError::new(
        Code::Unavailable,
        "the gateway's filter failed while this request was in flight",
    )
}

/// A trapped request's outcome: a 503 UNAVAILABLE the gateway made, except in its log callback
/// (`in_log`), where the request already has its status.
fn trapped_outcome(host: &dyn RootHost, in_log: bool, latency: Duration) -> Outcome {
    let sent = host
        .property(&["response", "code"])
        .and_then(|b| Some(i64::from_le_bytes(b.get(..8)?.try_into().ok()?)))
        .and_then(|n| u16::try_from(n).ok())
        .filter(|s| *s != 0);
    match sent.filter(|_| in_log) {
        Some(status) => Outcome {
            http_status: status,
            grpc_status: None,
            latency,
            local_reply: false,
            cancelled: false,
        },
        _ => Outcome {
            http_status: 503,
            grpc_status: Some(Code::Unavailable),
            latency,
            local_reply: true,
            cancelled: false,
        },
    }
}

/// Count a trapped request and name its operation for Envoy's record.
fn count_trapped(
    vm: &super::Vm,
    host: &mut dyn RootHost,
    op: Option<usize>,
    policy: Option<&crate::config::Policy>,
    outcome: &Outcome,
) {
    let cfg = &vm.config;
    let Some((index, operation)) = op.and_then(|i| Some((i, cfg.operations.get(i)?))) else {
        let (availability, _) = classify(&cfg.observe.unmatched_slo, outcome);
        super::log::count_unmatched(vm, host, outcome, (availability, Verdict::NotApplicable));
        return;
    };
    let _ = host.set_property(&["meshgate.operation"], operation.name.as_bytes());
    let _ = host.set_property(&["meshgate.upstream"], operation.upstream.name.as_bytes());
    let slo = policy
        .and_then(|p| p.slo.as_ref())
        .unwrap_or(&operation.slo);
    // Availability as judged for the status; latency is not judged (a failure).
    let (availability, _) = classify(slo, outcome);
    let verdicts = (availability, Verdict::NotApplicable);
    for (metric, value) in MetricNames::request_metrics(outcome, verdicts) {
        vm.apply(host, index, &operation.name, policy, metric, value);
    }
}

/// The operation a request's headers name, as classification would find it.
pub(super) fn operation_from_headers(vm: &super::Vm, host: &dyn Host) -> Option<usize> {
    let cfg = &vm.config;
    let path = host.header(MapKind::RequestHeaders, ":path")?;
    let (path, _) = split_path(&path);
    let content_type = host
        .header(MapKind::RequestHeaders, "content-type")
        .unwrap_or_default();
    if super::classify::is_grpc(&content_type) {
        return cfg.grpc_paths.get(path).copied();
    }
    let method = host.header(MapKind::RequestHeaders, ":method")?;
    match cfg
        .http
        .lookup(&method, path, cfg.transcoding.url_unescape_spec)
    {
        Some(Ok(m)) => Some(m.value.op),
        _ => None,
    }
}
