//! The request's operation and upstream as filter state from the moment they are known (not
//! only when the access record is written): Envoy reads them for the server span's name and
//! attributes (`meshgate envoy --otlp`, `cli::envoy::tracing`), which it formats before the
//! filter's log callback runs.

use super::Filter;
use crate::host::Host;

impl Filter {
    pub(super) fn publish_span_fields(&mut self, host: &mut dyn Host) {
        let Some(op) = self.op.and_then(|i| self.vm.config.operations.get(i)) else {
            return;
        };
        // Written once: the record leaves these two to this (see `log::publish`).
        let _ = host.set_property(&["meshgate.operation"], op.name.as_bytes());
        let _ = host.set_property(&["meshgate.upstream"], op.upstream.name.as_bytes());
        self.span_fields_published = true;
    }
}
