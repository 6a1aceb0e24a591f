//! The HTTP context: translation only, each callback forwarded to the core's [`Stream`].

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action as WasmAction;

use super::host_impl::AbiHost;
use super::trap::enter;
use crate::filter::{Callback, Stream};
use crate::host::Action;

pub struct Http {
    pub stream: Stream,
}

fn map(action: Action) -> WasmAction {
    match action {
        Action::Continue => WasmAction::Continue,
        Action::Pause => WasmAction::Pause,
    }
}

impl Context for Http {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        enter(Some(self.stream.context_id()), Callback::StreamCallReply);
        self.stream
            .on_http_call_response(&mut AbiHost, token, num_headers, body_size);
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, eos: bool) -> WasmAction {
        enter(Some(self.stream.context_id()), Callback::RequestHeaders);
        map(self.stream.on_request_headers(&mut AbiHost, eos))
    }

    fn on_http_request_body(&mut self, size: usize, eos: bool) -> WasmAction {
        enter(Some(self.stream.context_id()), Callback::RequestBody);
        map(self.stream.on_request_body(&mut AbiHost, size, eos))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, eos: bool) -> WasmAction {
        enter(Some(self.stream.context_id()), Callback::ResponseHeaders);
        map(self.stream.on_response_headers(&mut AbiHost, eos))
    }

    fn on_http_response_body(&mut self, size: usize, eos: bool) -> WasmAction {
        enter(Some(self.stream.context_id()), Callback::ResponseBody);
        map(self.stream.on_response_body(&mut AbiHost, size, eos))
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> WasmAction {
        enter(Some(self.stream.context_id()), Callback::ResponseTrailers);
        map(self.stream.on_response_trailers(&mut AbiHost))
    }

    fn on_log(&mut self) {
        enter(Some(self.stream.context_id()), Callback::Log);
        self.stream.on_log(&mut AbiHost);
    }
}
