//! The edge protections' messages: the connection manager's timeouts and codec limits, the
//! overload manager, the runtime layer and the buffer accounting it needs.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use super::{one_of, NamedFilter};

/// `envoy.config.core.v3.HttpProtocolOptions` (downstream: every codec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommonHttpProtocolOptions {
    /// A proto3 JSON duration: a connection with no active stream for this long is closed.
    pub idle_timeout: String,
    pub max_headers_count: u32,
}

/// `envoy.config.core.v3.Http2ProtocolOptions`: the downstream HTTP/2 limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Http2Limits {
    pub max_concurrent_streams: u32,
    pub initial_stream_window_size: u32,
    pub initial_connection_window_size: u32,
}

/// `envoy.config.overload.v3.OverloadManager`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverloadManager {
    /// A proto3 JSON duration.
    pub refresh_interval: String,
    pub resource_monitors: Vec<NamedFilter>,
    pub actions: Vec<OverloadAction>,
    pub buffer_factory_config: BufferFactoryConfig,
}

/// `envoy.config.bootstrap.v3.MemoryAllocatorManager`: every `memory_release_interval`, up to
/// `bytes_to_release` of the allocator's free pages go back to the system.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryAllocatorManager {
    pub bytes_to_release: u64,
    /// A proto3 JSON duration.
    pub memory_release_interval: String,
}

/// `envoy.config.overload.v3.OverloadAction`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverloadAction {
    pub name: String,
    pub triggers: Vec<Trigger>,
}

/// `envoy.config.overload.v3.Trigger`: a resource monitor's name and when it fires.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trigger {
    pub name: String,
    #[serde(flatten)]
    pub kind: TriggerKind,
}

/// The `trigger_oneof` of a [`Trigger`].
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerKind {
    /// Saturated at or above this fraction of the resource.
    Threshold(ThresholdTrigger),
    /// Scales from 0 at `scaling_threshold` to saturated at `saturation_threshold`.
    Scaled(ScaledTrigger),
}

impl Serialize for TriggerKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            TriggerKind::Threshold(v) => one_of(s, "threshold", v),
            TriggerKind::Scaled(v) => one_of(s, "scaled", v),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdTrigger {
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScaledTrigger {
    pub scaling_threshold: f64,
    pub saturation_threshold: f64,
}

/// `envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FixedHeapConfig {
    pub max_heap_size_bytes: u64,
}

/// `envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DownstreamConnectionsConfig {
    pub max_active_downstream_connections: u64,
}

/// `envoy.config.bootstrap.v3.LayeredRuntime`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayeredRuntime {
    pub layers: Vec<RuntimeLayer>,
}

/// A static runtime layer: runtime keys (dotted names) and their values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuntimeLayer {
    pub name: String,
    pub static_layer: BTreeMap<String, u64>,
}

/// `envoy.config.overload.v3.BufferFactoryConfig`: streams whose buffers reach
/// 2^`minimum_account_to_track_power_of_two` bytes are tracked, so that
/// `reset_high_memory_stream` can find the largest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BufferFactoryConfig {
    pub minimum_account_to_track_power_of_two: u32,
}
