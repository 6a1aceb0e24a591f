//! `openapi.path`: the proxy serves the OpenAPI document there itself (Envoy: a route with a
//! direct response; Istio: a VirtualService `directResponse`). Where meshgate still runs on
//! that route (Istio cannot switch a WasmPlugin off per route), it lets the request pass
//! instead of refusing a path that is no operation.

use super::{Filter, Mode, Phase};
use crate::host::Action;
use crate::operation::split_path;

impl Filter {
    /// `Some`: a `GET` (or `HEAD`) of the served document, passed on untouched.
    pub(super) fn served_document(&mut self) -> Option<Action> {
        let served = self.vm.config.openapi_path.as_deref()?;
        let (path, _) = split_path(&self.req.path);
        if path != served || !matches!(self.req.method.as_str(), "GET" | "HEAD") {
            return None;
        }
        self.mode = Mode::PassThrough;
        self.phase = Phase::Upstream;
        Some(Action::Continue)
    }
}
