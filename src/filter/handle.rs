//! One HTTP stream's handle: its filter and the scheduler its callbacks report to. The wasm
//! glue holds one per HTTP context and forwards each callback here.

use std::cell::RefCell;
use std::rc::Rc;

use super::{Filter, Scheduler, Step};
use crate::host::{Action, Host};

/// Read an HTTP call's reply for the request that made it, the body only within the response
/// limit (an oversized reply is refused without being copied into the VM). Returns the token
/// of a call the request made in turn (the side call after the Rate Limit Service's answer).
pub(super) fn deliver_call_reply(
    filter: &Rc<RefCell<Filter>>,
    host: &mut dyn Host,
    num_headers: usize,
    body_size: usize,
) -> Option<u32> {
    let mut f = filter.borrow_mut();
    if f.awaits_rls() {
        f.on_rls_reply(host, num_headers, body_size);
        return f.call_token.take();
    }
    if body_size > f.vm.config.limits.max_response_bytes {
        f.on_side_call_too_large(host);
        return None;
    }
    let headers = if num_headers > 0 {
        host.call_response_headers()
    } else {
        Vec::new()
    };
    let body = host.call_response_body(body_size).unwrap_or_default();
    let trailers = host.call_response_trailers();
    f.on_side_call_response(host, &headers, &body, &trailers);
    None
}

/// One HTTP stream: its filter, and the scheduler its callbacks report to.
pub struct Stream {
    pub(super) filter: Rc<RefCell<Filter>>,
    pub(super) scheduler: Rc<Scheduler>,
    pub(super) context_id: u32,
}

impl Stream {
    fn follow(&self, step: Step) -> Action {
        self.scheduler.follow(self.context_id, &self.filter, step)
    }

    pub fn filter(&self) -> &Rc<RefCell<Filter>> {
        &self.filter
    }

    pub fn context_id(&self) -> u32 {
        self.context_id
    }

    pub fn on_request_headers(&self, host: &mut dyn Host, eos: bool) -> Action {
        let step = self.filter.borrow_mut().on_request_headers(host, eos);
        self.follow(step)
    }

    pub fn on_request_body(&self, host: &mut dyn Host, size: usize, eos: bool) -> Action {
        let step = self.filter.borrow_mut().on_request_body(host, size, eos);
        self.follow(step)
    }

    pub fn on_response_headers(&self, host: &mut dyn Host, eos: bool) -> Action {
        let step = self.filter.borrow_mut().on_response_headers(host, eos);
        self.follow(step)
    }

    pub fn on_response_body(&self, host: &mut dyn Host, size: usize, eos: bool) -> Action {
        let step = self.filter.borrow_mut().on_response_body(host, size, eos);
        self.follow(step)
    }

    pub fn on_response_trailers(&self, host: &mut dyn Host) -> Action {
        let step = self.filter.borrow_mut().on_response_trailers(host);
        self.follow(step)
    }

    /// The reply of a call this stream made, delivered to the stream itself.
    pub fn on_http_call_response(
        &self,
        host: &mut dyn Host,
        token: u32,
        num_headers: usize,
        body_size: usize,
    ) {
        self.scheduler.forget_call(token);
        // A call made from here replies to this stream's context too.
        let _ = deliver_call_reply(&self.filter, host, num_headers, body_size);
    }

    pub fn on_log(&self, host: &mut dyn Host) {
        self.filter.borrow_mut().on_log(host);
    }
}
