//! Edge protections: what the bootstrap sets so that Envoy, as the edge itself, bounds what one
//! client can hold (time, headers, streams, window, connections, memory). The defaults are
//! those of Envoy's "Configuring Envoy as an edge proxy" page where it gives one, Envoy's own
//! otherwise; each is a `meshgate envoy` flag (docs/operations.md, "Edge protections").

use std::collections::BTreeMap;

use super::types::{
    Any, BufferFactoryConfig, CommonHttpProtocolOptions, DownstreamConnectionsConfig,
    FixedHeapConfig, Http2Limits, HttpConnectionManager, LayeredRuntime, MemoryAllocatorManager,
    NamedFilter, OverloadAction, OverloadManager, RuntimeLayer, ScaledTrigger, ThresholdTrigger,
    Trigger, TriggerKind,
};

pub const FIXED_HEAP: &str = "envoy.resource_monitors.fixed_heap";
pub const MAX_CONNECTIONS: &str = "envoy.resource_monitors.global_downstream_max_connections";
pub const SHRINK_HEAP: &str = "envoy.overload_actions.shrink_heap";
pub const STOP_ACCEPTING_REQUESTS: &str = "envoy.overload_actions.stop_accepting_requests";
pub const RESET_HIGH_MEMORY_STREAM: &str = "envoy.overload_actions.reset_high_memory_stream";
pub const PREMATURE_RESET_COUNT: &str = "overload.premature_reset_total_stream_count";
pub const PREMATURE_RESET_LIFETIME: &str = "overload.premature_reset_min_stream_lifetime_seconds";
pub const MAX_REQUESTS_PER_IO_CYCLE: &str = "http.max_requests_per_io_cycle";

/// Heap fractions at which the overload actions fire.
const SHRINK_HEAP_AT: f64 = 0.95;
const STOP_ACCEPTING_AT: f64 = 0.98;
const RESET_STREAMS_FROM: f64 = 0.85;
const RESET_STREAMS_ALL_AT: f64 = 0.95;
/// Streams whose buffers reach 2^20 bytes (1 MiB) are candidates for a memory reset.
const TRACK_STREAMS_FROM_POWER_OF_TWO: u32 = 20;

/// The edge protections' values (see [`EdgeArgs`] for each one's meaning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub request_headers_timeout_s: u32,
    pub request_timeout_s: u32,
    pub stream_idle_timeout_s: u32,
    pub connection_idle_timeout_s: u32,
    pub max_headers_count: u32,
    pub max_request_headers_kb: u32,
    pub max_concurrent_streams: u32,
    pub initial_stream_window_size: u32,
    pub initial_connection_window_size: u32,
    pub max_requests_per_io_cycle: u32,
    pub premature_reset_total_stream_count: u32,
    pub premature_reset_min_stream_lifetime_s: u32,
    pub max_connections: u64,
    pub max_heap_bytes: u64,
    /// Free heap pages handed back to the system each second (0: never).
    pub release_free_memory_bytes: u64,
}

impl Default for Edge {
    fn default() -> Edge {
        Edge {
            request_headers_timeout_s: 10,
            request_timeout_s: 300,
            stream_idle_timeout_s: 300,
            connection_idle_timeout_s: 3600,
            max_headers_count: 100,
            max_request_headers_kb: 60,
            max_concurrent_streams: 100,
            initial_stream_window_size: 64 << 10,
            initial_connection_window_size: 1 << 20,
            max_requests_per_io_cycle: 1,
            premature_reset_total_stream_count: 500,
            premature_reset_min_stream_lifetime_s: 1,
            max_connections: 50_000,
            max_heap_bytes: 2 << 30,
            release_free_memory_bytes: 16 << 20,
        }
    }
}

/// HTTP/2's largest flow-control window (RFC 9113, 6.9.1).
const MAX_WINDOW: u32 = (1 << 31) - 1;

impl Edge {
    /// The same protections with HTTP/2 windows large enough for a body of `buffer` bytes.
    /// Envoy bounds what the filters may buffer of one HTTP/2 stream by the stream's window
    /// (`initial_stream_window_size`), so a window below the buffer meshgate needs
    /// ([`super::buffer_limit_for`]) would make Envoy answer 413 to bodies meshgate accepts.
    /// The connection window is at least the stream window, so one such stream can complete.
    pub fn fitted_to_buffer(&self, buffer: u32) -> Edge {
        let stream = self.initial_stream_window_size.max(buffer.min(MAX_WINDOW));
        Edge {
            initial_stream_window_size: stream,
            initial_connection_window_size: self.initial_connection_window_size.max(stream),
            ..self.clone()
        }
    }
}

fn seconds(s: u32) -> String {
    format!("{s}s")
}

/// Envoy's `per_connection_buffer_limit_bytes` when a listener does not set one.
pub const ENVOY_DEFAULT_BUFFER_LIMIT: u32 = 1 << 20;

/// The connection manager's timeouts and codec limits, set on `hcm`, with HTTP/2 windows
/// fitted to the listener's `buffer` limit ([`Edge::fitted_to_buffer`]).
pub fn apply_to_hcm(e: &Edge, buffer: u32, hcm: &mut HttpConnectionManager) {
    let e = &e.fitted_to_buffer(buffer);
    hcm.request_headers_timeout = Some(seconds(e.request_headers_timeout_s));
    hcm.request_timeout = Some(seconds(e.request_timeout_s));
    hcm.stream_idle_timeout = Some(seconds(e.stream_idle_timeout_s));
    hcm.max_request_headers_kb = Some(e.max_request_headers_kb);
    hcm.common_http_protocol_options = Some(CommonHttpProtocolOptions {
        idle_timeout: seconds(e.connection_idle_timeout_s),
        max_headers_count: e.max_headers_count,
    });
    hcm.http2_protocol_options = Some(Http2Limits {
        max_concurrent_streams: e.max_concurrent_streams,
        initial_stream_window_size: e.initial_stream_window_size,
        initial_connection_window_size: e.initial_connection_window_size,
    });
}

fn threshold(monitor: &str, value: f64) -> Trigger {
    Trigger {
        name: monitor.into(),
        kind: TriggerKind::Threshold(ThresholdTrigger { value }),
    }
}

/// The overload manager: a heap monitor with its three actions, and the global connection
/// limit (a proactive monitor: Envoy refuses connections past it; without one Envoy warns at
/// start). Its 503 for `stop_accepting_requests` goes through the local reply mappers
/// (response flag `OL`), so clients get a `google.rpc.Status`.
/// The allocator hands free pages back to the system, up to `release_free_memory_bytes` a
/// second. Compiling the Wasm module at load leaves tens of MB of freed heap that tcmalloc
/// otherwise keeps for the life of the process (docs/footprint.md).
pub fn memory_allocator_manager(e: &Edge) -> Option<MemoryAllocatorManager> {
    (e.release_free_memory_bytes > 0).then(|| MemoryAllocatorManager {
        bytes_to_release: e.release_free_memory_bytes,
        memory_release_interval: "1s".into(),
    })
}

pub fn overload_manager(e: &Edge) -> OverloadManager {
    OverloadManager {
        refresh_interval: "0.25s".into(),
        resource_monitors: vec![
            NamedFilter {
                name: FIXED_HEAP.into(),
                typed_config: Any::FixedHeapConfig(FixedHeapConfig {
                    max_heap_size_bytes: e.max_heap_bytes,
                }),
            },
            NamedFilter {
                name: MAX_CONNECTIONS.into(),
                typed_config: Any::DownstreamConnectionsConfig(DownstreamConnectionsConfig {
                    max_active_downstream_connections: e.max_connections,
                }),
            },
        ],
        actions: vec![
            OverloadAction {
                name: SHRINK_HEAP.into(),
                triggers: vec![threshold(FIXED_HEAP, SHRINK_HEAP_AT)],
            },
            OverloadAction {
                name: STOP_ACCEPTING_REQUESTS.into(),
                triggers: vec![threshold(FIXED_HEAP, STOP_ACCEPTING_AT)],
            },
            OverloadAction {
                name: RESET_HIGH_MEMORY_STREAM.into(),
                triggers: vec![Trigger {
                    name: FIXED_HEAP.into(),
                    kind: TriggerKind::Scaled(ScaledTrigger {
                        scaling_threshold: RESET_STREAMS_FROM,
                        saturation_threshold: RESET_STREAMS_ALL_AT,
                    }),
                }],
            },
        ],
        // The buffer accounting `reset_high_memory_stream` needs to rank streams.
        buffer_factory_config: BufferFactoryConfig {
            minimum_account_to_track_power_of_two: TRACK_STREAMS_FROM_POWER_OF_TWO,
        },
    }
}

/// The runtime keys of the rapid-reset mitigations (CVE-2023-44487): a connection whose
/// streams are mostly reset early is closed, and each I/O cycle serves a bounded number of
/// requests per connection.
pub fn layered_runtime(e: &Edge) -> LayeredRuntime {
    let keys = [
        (
            PREMATURE_RESET_COUNT,
            u64::from(e.premature_reset_total_stream_count),
        ),
        (
            PREMATURE_RESET_LIFETIME,
            u64::from(e.premature_reset_min_stream_lifetime_s),
        ),
        (
            MAX_REQUESTS_PER_IO_CYCLE,
            u64::from(e.max_requests_per_io_cycle),
        ),
    ];
    LayeredRuntime {
        layers: vec![RuntimeLayer {
            name: "edge".into(),
            static_layer: keys
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<BTreeMap<_, _>>(),
        }],
    }
}

/// The connection manager's edge flags (`meshgate envoy` and, for the ingress gateway's
/// connection manager, `meshgate istio`); an absent flag keeps [`Edge::default`]'s value.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HcmEdgeArgs {
    /// Time a client has to send the request headers, seconds [default: 10].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..))]
    pub request_headers_timeout: Option<u32>,
    /// Time a client has to send the whole request, seconds [default: 300].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..))]
    pub request_timeout: Option<u32>,
    /// A stream with no activity for this long is reset, seconds [default: 300].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..))]
    pub stream_idle_timeout: Option<u32>,
    /// A connection with no stream for this long is closed, seconds [default: 3600].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..))]
    pub connection_idle_timeout: Option<u32>,
    /// Most request headers per request (HTTP/1.1 and HTTP/2) [default: 100].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_headers_count: Option<u32>,
    /// Most bytes of request headers, KiB (Envoy allows 1..=8192) [default: 60].
    #[arg(long, value_name = "KIB", value_parser = clap::value_parser!(u32).range(1..=8192))]
    pub max_request_headers_kb: Option<u32>,
    /// Most concurrent streams per HTTP/2 connection [default: 100].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=2_147_483_647))]
    pub max_concurrent_streams: Option<u32>,
    /// HTTP/2 stream flow-control window, bytes [default: 65536].
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(65_535..=2_147_483_647))]
    pub initial_stream_window_size: Option<u32>,
    /// HTTP/2 connection flow-control window, bytes [default: 1048576].
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(65_535..=2_147_483_647))]
    pub initial_connection_window_size: Option<u32>,
}

/// The bootstrap's edge flags (`meshgate envoy` only: under Istio the runtime and the overload
/// manager belong to the proxy's bootstrap); an absent flag keeps [`Edge::default`]'s value.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BootstrapEdgeArgs {
    /// Requests served per connection per I/O cycle (runtime `http.max_requests_per_io_cycle`)
    /// [default: 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_requests_per_io_cycle: Option<u32>,
    /// Streams a connection opens before its early resets are judged (runtime
    /// `overload.premature_reset_total_stream_count`) [default: 500].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub premature_reset_total_stream_count: Option<u32>,
    /// A stream reset younger than this is premature, seconds (runtime
    /// `overload.premature_reset_min_stream_lifetime_seconds`) [default: 1].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..))]
    pub premature_reset_min_stream_lifetime: Option<u32>,
    /// Most open downstream connections, all listeners together [default: 50000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,
    /// The heap size the overload manager measures against, bytes [default: 2147483648].
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_heap_bytes: Option<u64>,
    /// Free heap pages handed back to the system each second, bytes; 0 keeps them (Envoy's
    /// default) [default: 16777216].
    #[arg(long, value_name = "BYTES")]
    pub release_free_memory_bytes: Option<u64>,
}

fn set<T: Copy>(field: &mut T, flag: Option<T>) {
    if let Some(v) = flag {
        *field = v;
    }
}

impl HcmEdgeArgs {
    /// `e` with each given flag's value.
    pub fn apply(&self, e: &mut Edge) {
        set(
            &mut e.request_headers_timeout_s,
            self.request_headers_timeout,
        );
        set(&mut e.request_timeout_s, self.request_timeout);
        set(&mut e.stream_idle_timeout_s, self.stream_idle_timeout);
        set(
            &mut e.connection_idle_timeout_s,
            self.connection_idle_timeout,
        );
        set(&mut e.max_headers_count, self.max_headers_count);
        set(&mut e.max_request_headers_kb, self.max_request_headers_kb);
        set(&mut e.max_concurrent_streams, self.max_concurrent_streams);
        set(
            &mut e.initial_stream_window_size,
            self.initial_stream_window_size,
        );
        set(
            &mut e.initial_connection_window_size,
            self.initial_connection_window_size,
        );
    }
}

impl BootstrapEdgeArgs {
    /// `e` with each given flag's value.
    pub fn apply(&self, e: &mut Edge) {
        set(
            &mut e.max_requests_per_io_cycle,
            self.max_requests_per_io_cycle,
        );
        set(
            &mut e.premature_reset_total_stream_count,
            self.premature_reset_total_stream_count,
        );
        set(
            &mut e.premature_reset_min_stream_lifetime_s,
            self.premature_reset_min_stream_lifetime,
        );
        set(&mut e.max_connections, self.max_connections);
        set(&mut e.max_heap_bytes, self.max_heap_bytes);
        set(
            &mut e.release_free_memory_bytes,
            self.release_free_memory_bytes,
        );
    }
}

/// `meshgate envoy`'s edge flags: both groups.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EdgeArgs {
    #[command(flatten)]
    pub hcm: HcmEdgeArgs,
    #[command(flatten)]
    pub bootstrap: BootstrapEdgeArgs,
}

impl EdgeArgs {
    /// The defaults, with each given flag's value.
    pub fn edge(&self) -> Edge {
        let mut e = Edge::default();
        self.hcm.apply(&mut e);
        self.bootstrap.apply(&mut e);
        e
    }
}
