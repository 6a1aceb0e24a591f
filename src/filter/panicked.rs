//! A request whose filter panicked in a hook of the native glue (`src/native/hooks.rs`). The
//! glue answers it 500 INTERNAL and leaves the core alone from then on, except at its end, so
//! that the request is still recorded and counted exactly once:
//!
//! - a panic in an earlier hook: the log hook runs [`Stream::on_log_after_panic`], the record
//!   and counts every request gets (`log.rs`), with the status it was answered (Envoy's
//!   response code: the 500) and what the core had read of it. A panic in the request headers
//!   can come before the core read them: they are read here (method, URL, request id, the
//!   operation they name), as far as the panic left them unread;
//! - a panic in the log hook itself (the answer is out, the glue does not reply again):
//!   [`Stream::on_log_panicked`] counts the request with the status it had, unless its log
//!   callback had already counted it, and names its operation for the record Envoy writes
//!   (`cli::envoy::envoy_record`), as a trap in the wasm module's log callback is accounted
//!   (`trap.rs`).
//!
//! Pure core code over [`Host`]: host-side tests drive it with the fake.

use super::trap::operation_from_headers;
use super::{Callback, Filter, Phase, RequestInfo, Stream};
use crate::host::{Host, MapKind, RootHost};

impl Stream {
    /// The log hook of a request whose filter panicked in an earlier hook.
    pub fn on_log_after_panic(&self, host: &mut dyn Host) {
        let Ok(mut f) = self.filter.try_borrow_mut() else {
            return;
        };
        f.read_unseen_request(host);
        f.on_log(host);
    }

    /// The log hook panicked: count the request once with the answer it had (if its log
    /// callback had not counted it yet). Whether it was counted here.
    pub fn on_log_panicked(&self, host: &mut dyn RootHost) -> bool {
        let Ok(mut f) = self.filter.try_borrow_mut() else {
            return false;
        };
        let (counted, _) = f.account_trap(host, true, Callback::Log);
        counted
    }
}

impl Filter {
    /// The request's headers and operation, when a panic came before the core read them.
    fn read_unseen_request(&mut self, host: &dyn Host) {
        if self.phase != Phase::Headers || !self.req.method.is_empty() {
            return;
        }
        self.req = RequestInfo::from_headers(host.headers(MapKind::RequestHeaders));
        if self.op.is_none() {
            self.op = operation_from_headers(&self.vm, host);
        }
    }
}
