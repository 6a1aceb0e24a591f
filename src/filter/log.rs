//! The end of a request: one access record and its metrics.

use std::time::Duration;

use super::Filter;
use crate::host::{Host, Level};

/// Envoy serializes integer and duration properties as 8 little-endian bytes.
fn property_i64(host: &dyn Host, path: &[&str]) -> Option<i64> {
    let b = host.property(path)?;
    let arr: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some(i64::from_le_bytes(arr))
}

impl Filter {
    pub fn on_log(&mut self, host: &mut dyn Host) {
        if self.logged {
            return;
        }
        self.logged = true;
        let latency = property_i64(host, &["request", "duration"])
            .and_then(|n| u64::try_from(n).ok())
            .map(Duration::from_nanos)
            .or_else(|| {
                let start = self.start?;
                host.now().duration_since(start).ok()
            })
            .unwrap_or_default();
        let status = property_i64(host, &["response", "code"])
            .and_then(|s| u16::try_from(s).ok())
            .or(self.resp.status)
            .unwrap_or(0);
        let record = serde_json::json!({
            "operation": self.operation_name(),
            "status": status,
            "grpcStatus": self.resp.grpc_status.map(|c| c.name()),
            "latency": format!("{:.3}s", latency.as_secs_f64()),
        });
        if self.vm.config.observe.access_log {
            host.log(Level::Info, &record.to_string());
        }
    }
}
