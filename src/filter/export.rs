//! The root's export of meshgate's own spans (`span.rs` makes them): one OTLP/gRPC
//! `TraceService/Export` call per tick to the collector's cluster, at most
//! `span_export::MAX_PER_EXPORT` spans each. The reply is not awaited (the root ignores a
//! reply it does not know); a collector that is down only makes calls fail within
//! [`EXPORT_TIMEOUT`], at most one per tick, while the queue stays bounded.

use std::time::Duration;

use super::Scheduler;
use crate::host::{Level, RootHost};
use crate::observe::span_export::{export_headers, OTLP_CLUSTER};
use crate::transcode::encode_frame;

/// How long an export call may take.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(1);

impl Scheduler {
    pub(super) fn export_spans(&self, host: &mut dyn RootHost) {
        let (body, dropped) = {
            let mut q = self.vm().spans.borrow_mut();
            let Some(body) = q.take_export() else {
                return;
            };
            (body, std::mem::take(&mut q.dropped))
        };
        if dropped > 0 {
            let msg = format!("meshgate: {dropped} spans dropped (the collector is slow or down)");
            host.log(Level::Warn, &msg);
        }
        let frame = encode_frame(&body);
        if let Err(e) = host.http_call(
            OTLP_CLUSTER,
            &export_headers(),
            Some(&frame),
            EXPORT_TIMEOUT,
        ) {
            host.log(Level::Debug, &format!("meshgate: span export: {e}"));
        }
    }
}
