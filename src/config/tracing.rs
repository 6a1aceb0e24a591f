//! `tracing`: whether meshgate makes spans of its own. The gateway's server span is the
//! proxy's; a call meshgate makes itself (a side call) gets no span from Envoy, so meshgate
//! makes one, child of the server span it learns from a header Envoy sets in front of it
//! (`x-meshgate-span`), and exports it to the collector's cluster (`meshgate_otlp`).
//! `meshgate envoy --otlp` renders both and turns this on; without it a client's copy of the
//! header is removed and nothing else happens (no span queued, no export tried).
//! docs/tracing.md.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TracingInput {
    /// Make and export spans for meshgate's own calls. Needs the span header and the
    /// `meshgate_otlp` cluster in the proxy's configuration (`meshgate envoy --otlp` renders
    /// both and sets this).
    pub spans: bool,
}

impl TracingInput {
    pub fn is_off(&self) -> bool {
        !self.spans
    }
}
