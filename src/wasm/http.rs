//! The HTTP context: translation only, each callback forwarded to the core's [`Stream`].

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action as WasmAction;

use super::host_impl::AbiHost;
use crate::filter::Stream;
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
        self.stream
            .on_http_call_response(&mut AbiHost, token, num_headers, body_size);
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, eos: bool) -> WasmAction {
        #[cfg(feature = "test-trap")]
        trap_if_asked();
        map(self.stream.on_request_headers(&mut AbiHost, eos))
    }

    fn on_http_request_body(&mut self, size: usize, eos: bool) -> WasmAction {
        map(self.stream.on_request_body(&mut AbiHost, size, eos))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, eos: bool) -> WasmAction {
        map(self.stream.on_response_headers(&mut AbiHost, eos))
    }

    fn on_http_response_body(&mut self, size: usize, eos: bool) -> WasmAction {
        map(self.stream.on_response_body(&mut AbiHost, size, eos))
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> WasmAction {
        map(self.stream.on_response_trailers(&mut AbiHost))
    }

    fn on_log(&mut self) {
        self.stream.on_log(&mut AbiHost);
    }
}

/// Test builds only: a request header that traps the VM, so the failure-policy test can show
/// Envoy recovering. Never compiled into release artifacts.
#[cfg(feature = "test-trap")]
#[allow(clippy::panic)]
fn trap_if_asked() {
    let headers = super::abi::get_map(proxy_wasm::types::MapType::HttpRequestHeaders);
    if crate::host::find_header(&headers, "x-meshgate-test-trap").is_some() {
        panic!("meshgate test trap");
    }
}
