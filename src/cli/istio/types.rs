//! The Kubernetes resources `meshgate istio` writes, as serde structs in their YAML shape
//! (camelCase, as the CRDs spell them). Envoy messages inside EnvoyFilter patches are the typed
//! ones of [`crate::cli::envoy::types`].

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cli::envoy::types::NamedFilter;

pub type Labels = BTreeMap<String, String>;

/// One resource: `apiVersion`, `kind`, `metadata` and the kind's `spec`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource<S> {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: S,
}

impl<S> Resource<S> {
    pub fn new(api_version: &str, kind: &str, metadata: ObjectMeta, spec: S) -> Resource<S> {
        Resource {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            metadata,
            spec,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectMeta {
    pub name: String,
    pub namespace: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: Labels,
}

/// Every kind of document `meshgate istio` writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum IstioResource {
    WasmPlugin(Resource<WasmPluginSpec>),
    TrafficExtension(Resource<TrafficExtensionSpec>),
    EnvoyFilter(Resource<EnvoyFilterSpec>),
    ServiceEntry(Resource<ServiceEntrySpec>),
    DestinationRule(Resource<DestinationRuleSpec>),
    Telemetry(Resource<TelemetrySpec>),
    IstioOperator(Resource<IstioOperatorSpec>),
    ConfigMap(ConfigMap),
    VirtualService(Resource<super::openapi::VirtualServiceSpec>),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSelector {
    pub match_labels: Labels,
}

/// The plugin fields shared by WasmPlugin's `spec` and TrafficExtension's `spec.wasm`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmFields {
    pub url: String,
    pub sha256: String,
    pub image_pull_policy: String,
    pub plugin_name: String,
    pub fail_strategy: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The filter's JSON configuration, as the filter reads it.
    pub plugin_config: serde_json::Value,
}

/// `extensions.istio.io/v1alpha1` WasmPlugin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WasmPluginSpec {
    pub selector: WorkloadSelector,
    pub phase: String,
    #[serde(rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<TrafficSelector>,
    #[serde(flatten)]
    pub wasm: WasmFields,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficSelector {
    pub mode: String,
}

/// `extensions.istio.io/v1alpha1` TrafficExtension (Istio 1.30+).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficExtensionSpec {
    pub selector: WorkloadSelector,
    pub phase: String,
    pub wasm: WasmFields,
}

/// `networking.istio.io/v1alpha3` EnvoyFilter.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvoyFilterSpec {
    pub workload_selector: EnvoyFilterSelector,
    pub config_patches: Vec<ConfigPatch>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvoyFilterSelector {
    pub labels: Labels,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigPatch {
    pub apply_to: String,
    #[serde(rename = "match")]
    pub matcher: PatchMatch,
    pub patch: Patch,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchMatch {
    pub context: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener: Option<ListenerMatch>,
    /// `routeConfiguration.vhost.route.name` (HTTP_ROUTE patches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_configuration: Option<RouteConfigurationMatch>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteConfigurationMatch {
    pub vhost: VirtualHostMatch,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualHostMatch {
    pub route: RouteMatchByName,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteMatchByName {
    pub name: String,
}

/// `listener.filterChain.filter.name`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerMatch {
    pub filter_chain: FilterChainMatch,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterChainMatch {
    pub filter: FilterMatch,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterMatch {
    pub name: String,
    /// An HTTP filter of the connection manager (`INSERT_BEFORE` it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_filter: Option<SubFilterMatch>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubFilterMatch {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Patch {
    pub operation: String,
    pub value: PatchValue,
}

/// What a patch inserts or merges.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PatchValue {
    /// An HTTP filter (`INSERT_FIRST`), or the connection manager with only the fields it
    /// merges (`MERGE`).
    Filter(NamedFilter),
    /// Listener fields (`MERGE`).
    Listener(ListenerPatch),
    /// A virtual host's or a route's per-filter configuration (`MERGE`): the CORS policy.
    PerFilter(PerFilterPatch),
    /// A cluster (`ADD`): the Rate Limit Service's, when given by address.
    Cluster(Box<crate::cli::envoy::types::Cluster>),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PerFilterPatch {
    pub typed_per_filter_config: std::collections::BTreeMap<String, crate::cli::envoy::types::Any>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListenerPatch {
    pub per_connection_buffer_limit_bytes: u32,
}

/// `networking.istio.io/v1beta1` ServiceEntry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceEntrySpec {
    pub hosts: Vec<String>,
    pub location: String,
    pub resolution: String,
    pub ports: Vec<ServicePort>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServicePort {
    pub number: u16,
    pub name: String,
    pub protocol: String,
}

/// `networking.istio.io/v1beta1` DestinationRule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRuleSpec {
    pub host: String,
    pub traffic_policy: TrafficPolicy,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficPolicy {
    pub port_level_settings: Vec<PortTrafficPolicy>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortTrafficPolicy {
    pub port: PortSelector,
    pub tls: ClientTlsSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortSelector {
    pub number: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientTlsSettings {
    pub mode: String,
    pub sni: String,
}

/// `telemetry.istio.io/v1alpha1` Telemetry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TelemetrySpec {
    pub selector: WorkloadSelector,
    pub access_logging: Vec<AccessLogging>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessLogging {
    pub providers: Vec<ProviderRef>,
    pub filter: AccessLogFilterExpression,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderRef {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessLogFilterExpression {
    pub expression: String,
}

/// `install.istio.io/v1alpha1` IstioOperator (an overlay).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioOperatorSpec {
    pub mesh_config: MeshConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshConfig {
    pub extension_providers: Vec<ExtensionProvider>,
    pub default_config: ProxyConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionProvider {
    pub name: String,
    pub envoy_file_access_log: EnvoyFileAccessLog,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvoyFileAccessLog {
    pub path: String,
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogFormat {
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyConfig {
    pub proxy_stats_matcher: ProxyStatsMatcher,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyStatsMatcher {
    pub inclusion_prefixes: Vec<String>,
}

/// `v1` ConfigMap.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMap {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub data: BTreeMap<String, String>,
}
