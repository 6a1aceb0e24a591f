//! The Envoy v3 messages meshgate renders, as serde structs in Envoy's proto3 JSON shape
//! (field names as in the protos; a `google.protobuf.Any` is [`Any`], whose variant names the
//! `@type`). Only the fields meshgate sets are modelled: an unset optional field is left out,
//! as Envoy's own JSON output does.
//!
//! Why not a crate of Envoy's API types: `envoy-types` (crates.io, prost-generated) carries the
//! whole API for gRPC services (ext_authz and friends) but no proto3 JSON mapping for `Any`
//! and `Duration`, which a bootstrap file needs, and would pull the full API and tonic into the
//! host build to render a few dozen fields. These structs are checked where it matters: every
//! rendered bootstrap passes `envoy --mode validate` in the end-to-end tests.

mod access_log;
mod browser;
mod cluster;
mod edge;
mod health;
mod ratelimit;
mod record_format;
mod route;
mod tls;
mod tracing;

pub use access_log::*;
pub use browser::*;
pub use cluster::*;
pub use edge::*;
pub use health::*;
pub use ratelimit::*;
pub use record_format::*;
pub use route::*;
pub use tls::*;
pub use tracing::*;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// `google.protobuf.Any`: the variant decides `@type`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "@type")]
pub enum Any {
    #[serde(
        rename = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    )]
    HttpConnectionManager(Box<HttpConnectionManager>),
    #[serde(rename = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm")]
    Wasm(Box<Wasm>),
    /// `meshgate envoy --native` (`cli::envoy::native`).
    #[serde(
        rename = "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter"
    )]
    DynamicModuleFilter(Box<crate::cli::envoy::native::DynamicModuleFilter>),
    #[serde(rename = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router")]
    Router(Router),
    #[serde(rename = "type.googleapis.com/google.protobuf.StringValue")]
    StringValue(StringValue),
    #[serde(rename = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions")]
    HttpProtocolOptions(HttpProtocolOptions),
    #[serde(
        rename = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
    )]
    UpstreamTlsContext(UpstreamTlsContext),
    #[serde(rename = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog")]
    FileAccessLog(FileAccessLog),
    #[serde(
        rename = "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter"
    )]
    ExpressionFilter(ExpressionFilter),
    #[serde(rename = "type.googleapis.com/envoy.config.route.v3.FilterConfig")]
    FilterConfig(FilterConfig),
    #[serde(
        rename = "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig"
    )]
    FixedHeapConfig(FixedHeapConfig),
    #[serde(
        rename = "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig"
    )]
    DownstreamConnectionsConfig(DownstreamConnectionsConfig),
    #[serde(rename = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors")]
    CorsFilter(CorsFilter),
    #[serde(rename = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy")]
    CorsPolicy(CorsPolicy),
    #[serde(rename = "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb")]
    GrpcWeb(GrpcWeb),
    #[serde(
        rename = "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation"
    )]
    HeaderMutation(HeaderMutation),
    #[serde(
        rename = "type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation"
    )]
    EarlyHeaderMutation(EarlyHeaderMutation),
    #[serde(
        rename = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
    )]
    LocalRateLimit(Box<LocalRateLimit>),
    #[serde(rename = "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit")]
    GlobalRateLimit(Box<GlobalRateLimitFilter>),
    #[serde(
        rename = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
    )]
    DownstreamTlsContext(Box<DownstreamTlsContext>),
    /// A second shape of the HTTP connection manager: the plaintext listener's redirect.
    #[serde(
        rename = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    )]
    RedirectManager(Box<RedirectManager>),
    #[serde(rename = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret")]
    Secret(Box<Secret>),
    /// A second shape of `UpstreamTlsContext`: an upstream's TLS with a client certificate.
    #[serde(
        rename = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
    )]
    UpstreamTls(Box<UpstreamTls>),
    #[serde(rename = "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig")]
    OpenTelemetryConfig(OpenTelemetryConfig),
}

// ---- bootstrap ----------------------------------------------------------------------------

/// `envoy.config.bootstrap.v3.Bootstrap`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bootstrap {
    /// Set where Envoy needs one (SDS from a file, tracing): see [`Node`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<Node>,
    pub admin: Admin,
    pub stats_config: StatsConfig,
    pub static_resources: StaticResources,
    pub overload_manager: OverloadManager,
    /// Off when `--release-free-memory-bytes 0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_allocator_manager: Option<MemoryAllocatorManager>,
    pub layered_runtime: LayeredRuntime,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Admin {
    pub address: Address,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StaticResources {
    pub listeners: Vec<Listener>,
    pub clusters: Vec<Cluster>,
}

/// `envoy.config.core.v3.Address` (a socket address).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Address {
    pub socket_address: SocketAddress,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SocketAddress {
    pub address: String,
    pub port_value: u16,
}

impl Address {
    pub fn socket(address: &str, port: u16) -> Address {
        Address {
            socket_address: SocketAddress {
                address: address.to_string(),
                port_value: port,
            },
        }
    }
}

/// `envoy.config.metrics.v3.StatsConfig`: meshgate's labels (`stats_tags`) and latency buckets.
/// Its fields (and those of
/// its parts) are in alphabetical order: the override is JSON text in a ConfigMap, written in
/// the order it always had.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatsConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub histogram_bucket_settings: Vec<HistogramBucketSettings>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stats_tags: Vec<TagSpecifier>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagSpecifier {
    pub regex: String,
    pub tag_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistogramBucketSettings {
    pub buckets: Vec<f64>,
    #[serde(rename = "match")]
    pub matcher: StringMatcher,
}

/// A proto `oneof` is written as a map with one entry: `{"exact": "..."}`. (serde's derive
/// does the same in JSON, but YAML serializers write an enum as a tag, `!exact ...`, which
/// Envoy does not read; so the `oneof`s below serialize by hand.)
fn one_of<S: Serializer, V: Serialize + ?Sized>(
    s: S,
    key: &str,
    value: &V,
) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(1))?;
    map.serialize_entry(key, value)?;
    map.end()
}

/// `envoy.type.matcher.v3.StringMatcher`: the kinds meshgate uses.
#[derive(Debug, Clone, PartialEq)]
pub enum StringMatcher {
    Exact(String),
    SafeRegex(RegexMatcher),
}

impl Serialize for StringMatcher {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StringMatcher::Exact(v) => one_of(s, "exact", v),
            StringMatcher::SafeRegex(v) => one_of(s, "safe_regex", v),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegexMatcher {
    pub regex: String,
}

// ---- listener -----------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listener {
    pub name: String,
    pub address: Address,
    pub filter_chains: Vec<FilterChain>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_connection_buffer_limit_bytes: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterChain {
    pub filters: Vec<NamedFilter>,
    /// TLS (`envoy.transport_sockets.tls`); plaintext when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport_socket: Option<NamedFilter>,
}

/// A named, typed extension: a network filter, an HTTP filter, a transport socket, an access
/// log filter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamedFilter {
    pub name: String,
    pub typed_config: Any,
}

/// `envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`. Every
/// field is optional so that a patch (Istio's EnvoyFilter `MERGE`) can carry a few.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HttpConnectionManager {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stat_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codec_type: Option<CodecType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_log: Option<Vec<AccessLog>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_reply_config: Option<LocalReplyConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_config: Option<RouteConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_filters: Option<Vec<NamedFilter>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generate_request_id: Option<bool>,
    /// Every response carries `x-request-id` (browser apps read it: the CORS policy exposes it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub always_set_request_id_in_response: Option<bool>,
    /// Proto3 JSON durations (`10s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_headers_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_idle_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_request_headers_kb: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub common_http_protocol_options: Option<CommonHttpProtocolOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http2_protocol_options: Option<Http2Limits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracing: Option<HcmTracing>,
    /// Header changes before routing and tracing (`tracing.rs`: B3 in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_header_mutation_extensions: Option<Vec<NamedFilter>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CodecType {
    Auto,
}

/// `envoy.extensions.filters.http.router.v3.Router` (no settings).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Router {}

/// `google.protobuf.StringValue`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StringValue {
    pub value: String,
}

// ---- wasm ---------------------------------------------------------------------------------

/// `envoy.extensions.filters.http.wasm.v3.Wasm`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Wasm {
    pub config: PluginConfig,
}

/// `envoy.extensions.wasm.v3.PluginConfig`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginConfig {
    pub name: String,
    pub root_id: String,
    pub vm_config: VmConfig,
    /// The filter's JSON configuration, as a `StringValue`.
    pub configuration: Any,
    /// `FAIL_CLOSED`, `FAIL_RELOAD` or `FAIL_OPEN`.
    pub failure_policy: String,
    /// Without it, pausing request headers stalls the body (ENVOY_NOTES).
    pub allow_on_headers_stop_iteration: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VmConfig {
    pub vm_id: String,
    pub runtime: String,
    pub code: AsyncDataSource,
}

/// `envoy.config.core.v3.AsyncDataSource`.
#[derive(Debug, Clone, PartialEq)]
pub enum AsyncDataSource {
    Local(DataSource),
    Remote(RemoteDataSource),
}

impl Serialize for AsyncDataSource {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AsyncDataSource::Local(v) => one_of(s, "local", v),
            AsyncDataSource::Remote(v) => one_of(s, "remote", v),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemoteDataSource {
    pub http_uri: HttpUri,
    pub sha256: String,
    pub retry_policy: RetryPolicy,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpUri {
    pub uri: String,
    pub cluster: String,
    /// A proto3 JSON duration (`30s`).
    pub timeout: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryPolicy {
    pub num_retries: u32,
}
