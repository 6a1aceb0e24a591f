//! The HTTP context: a thin shell over the core's [`Filter`].

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action as WasmAction, MapType};

use super::abi;
use super::host_impl::AbiHost;
use super::root::{read_call_body, register_flusher, register_waiter};
use crate::filter::{Filter, Vm, Waiting};
use crate::host::Action;

pub struct Http {
    filter: Rc<RefCell<Filter>>,
}

impl Http {
    pub fn new(vm: Rc<Vm>, context_id: u32) -> Http {
        Http {
            filter: Rc::new(RefCell::new(Filter::new(vm, context_id))),
        }
    }

    /// A streamed reply holds rendered bytes: the root context's next tick releases them.
    fn flush_later(&self) {
        let (wants, id) = {
            let f = self.filter.borrow();
            (f.wants_flush(), f.context_id)
        };
        if wants {
            register_flusher(id, &self.filter);
        }
    }

    fn map(action: Action) -> WasmAction {
        match action {
            Action::Continue => WasmAction::Continue,
            Action::Pause => WasmAction::Pause,
        }
    }
}

impl Context for Http {
    fn on_http_call_response(
        &mut self,
        _token: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let headers = if num_headers > 0 {
            abi::get_map(MapType::HttpCallResponseHeaders)
        } else {
            Vec::new()
        };
        let trailers = abi::get_map(MapType::HttpCallResponseTrailers);
        self.filter.borrow_mut().on_side_call_reply(
            &mut AbiHost,
            &headers,
            body_size,
            read_call_body,
            &trailers,
        );
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, eos: bool) -> WasmAction {
        #[cfg(feature = "test-trap")]
        trap_if_asked();
        let (action, context_id, waiting) = {
            let mut f = self.filter.borrow_mut();
            let a = f.on_request_headers(&mut AbiHost, eos);
            (a, f.context_id, f.waiting())
        };
        if waiting != Waiting::Nothing {
            register_waiter(context_id, &self.filter);
        }
        Self::map(action)
    }

    fn on_http_request_body(&mut self, size: usize, eos: bool) -> WasmAction {
        Self::map(
            self.filter
                .borrow_mut()
                .on_request_body(&mut AbiHost, size, eos),
        )
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, eos: bool) -> WasmAction {
        Self::map(
            self.filter
                .borrow_mut()
                .on_response_headers(&mut AbiHost, eos),
        )
    }

    fn on_http_response_body(&mut self, size: usize, eos: bool) -> WasmAction {
        let action = self
            .filter
            .borrow_mut()
            .on_response_body(&mut AbiHost, size, eos);
        self.flush_later();
        Self::map(action)
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> WasmAction {
        let action = self.filter.borrow_mut().on_response_trailers(&mut AbiHost);
        self.flush_later();
        Self::map(action)
    }

    fn on_log(&mut self) {
        self.filter.borrow_mut().on_log(&mut AbiHost);
    }
}

/// Test builds only: a request header that traps the VM, so the failure-policy test can show
/// Envoy recovering. Never compiled into release artifacts.
#[cfg(feature = "test-trap")]
#[allow(clippy::panic)]
fn trap_if_asked() {
    let headers = abi::get_map(MapType::HttpRequestHeaders);
    if crate::host::find_header(&headers, "x-meshgate-test-trap").is_some() {
        panic!("meshgate test trap");
    }
}
