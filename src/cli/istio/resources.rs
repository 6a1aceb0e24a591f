//! The filter's Istio resources: WasmPlugin (ingress gateway and sidecar), TrafficExtension
//! (Istio 1.30+, which supersedes WasmPlugin) and the EnvoyFilter alternative (module from a
//! file or over HTTP, with `allow_on_headers_stop_iteration`, which WasmPlugin does not set).

use serde_json::{json, Value};

use super::types::{
    ConfigPatch, EnvoyFilterSelector, EnvoyFilterSpec, FilterChainMatch, FilterMatch,
    ListenerMatch, ListenerPatch, ObjectMeta, Patch, PatchMatch, PatchValue, Resource,
    TrafficExtensionSpec, TrafficSelector, WasmFields, WasmPluginSpec, WorkloadSelector,
};
use super::IstioOptions;
use crate::cli::envoy::types::{
    Any, AsyncDataSource, DataSource, HttpConnectionManager, HttpUri, NamedFilter,
    RemoteDataSource, RetryPolicy, Wasm,
};
use crate::cli::envoy::{local_reply_config, plugin_config, HCM_FILTER_NAME};

fn metadata(o: &IstioOptions, name: &str, namespace: &str) -> ObjectMeta {
    ObjectMeta {
        name: name.to_string(),
        namespace: namespace.to_string(),
        labels: [
            ("app.kubernetes.io/name", o.name.as_str()),
            ("app.kubernetes.io/part-of", "meshgate"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    }
}

/// `spec` fields shared by WasmPlugin and TrafficExtension's `wasm`.
fn wasm_fields(o: &IstioOptions) -> WasmFields {
    WasmFields {
        url: o.image.clone(),
        sha256: o.image_sha256.clone(),
        image_pull_policy: "IfNotPresent".into(),
        plugin_name: o.name.clone(),
        fail_strategy: o.fail_strategy.istio_name().into(),
        kind: "HTTP".into(),
        plugin_config: istio_managed_config(&o.plugin_config),
    }
}

/// The filter configuration for a plugin whose Envoy config Istio writes: Istio sets no
/// `allow_on_headers_stop_iteration`, so a filter cannot hold request or response headers and
/// still see the body; transcoded calls go as side calls (`transcoding.upstream_calls`) unless
/// the gateway configuration chose otherwise. (The configuration stays the JSON the filter
/// reads: it is the filter's input, not a resource this command renders.)
fn istio_managed_config(filter_config: &Value) -> Value {
    let mut config = filter_config.clone();
    if let Some(root) = config.as_object_mut() {
        let transcoding = root.entry("transcoding").or_insert_with(|| json!({}));
        if let Some(t) = transcoding.as_object_mut() {
            t.entry("upstream_calls")
                .or_insert_with(|| json!("side_call"));
        }
    }
    config
}

fn selector(labels: &super::types::Labels) -> WorkloadSelector {
    WorkloadSelector {
        match_labels: labels.clone(),
    }
}

/// WasmPlugin on the ingress gateway, in the AUTHN phase (before Istio's own authn filters).
pub fn wasmplugin_gateway(o: &IstioOptions) -> Resource<WasmPluginSpec> {
    let spec = WasmPluginSpec {
        selector: selector(&o.gateway_labels),
        phase: "AUTHN".into(),
        matches: Vec::new(),
        wasm: wasm_fields(o),
    };
    let meta = metadata(o, &o.name, &o.gateway_namespace);
    Resource::new("extensions.istio.io/v1alpha1", "WasmPlugin", meta, spec)
}

/// WasmPlugin for a workload's sidecar: inbound traffic only (`mode: SERVER`), so the
/// workload's own outbound calls are not policed as if they were API calls.
pub fn wasmplugin_sidecar(o: &IstioOptions) -> Resource<WasmPluginSpec> {
    let spec = WasmPluginSpec {
        selector: selector(&o.sidecar_labels),
        phase: "AUTHN".into(),
        matches: vec![TrafficSelector {
            mode: "SERVER".into(),
        }],
        wasm: wasm_fields(o),
    };
    let meta = metadata(o, &o.name, &o.sidecar_namespace);
    Resource::new("extensions.istio.io/v1alpha1", "WasmPlugin", meta, spec)
}

/// TrafficExtension (Istio 1.30+): the same plugin under `spec.wasm`.
pub fn trafficextension_gateway(o: &IstioOptions) -> Resource<TrafficExtensionSpec> {
    let spec = TrafficExtensionSpec {
        selector: selector(&o.gateway_labels),
        phase: "AUTHN".into(),
        wasm: wasm_fields(o),
    };
    let meta = metadata(o, &o.name, &o.gateway_namespace);
    Resource::new(
        "extensions.istio.io/v1alpha1",
        "TrafficExtension",
        meta,
        spec,
    )
}

/// The HTTP filter an EnvoyFilter inserts: the wasm filter with meshgate's plugin config.
pub fn envoy_http_filter(o: &IstioOptions, code: AsyncDataSource) -> NamedFilter {
    let config = plugin_config(
        &o.name,
        code,
        &o.filter_json,
        o.fail_strategy.envoy_policy(),
    );
    NamedFilter {
        name: o.name.clone(),
        typed_config: Any::Wasm(Box::new(Wasm { config })),
    }
}

/// `vm_config.code` for a module file present in the proxy container.
pub fn local_code(path: &str) -> AsyncDataSource {
    AsyncDataSource::Local(DataSource {
        filename: path.to_string(),
    })
}

/// `vm_config.code` for a module fetched by Envoy over HTTP(S) through `cluster`, checked
/// against its SHA-256.
pub fn remote_code(url: &str, cluster: &str, sha256: &str) -> AsyncDataSource {
    AsyncDataSource::Remote(RemoteDataSource {
        http_uri: HttpUri {
            uri: url.to_string(),
            cluster: cluster.to_string(),
            timeout: "30s".into(),
        },
        sha256: sha256.to_string(),
        retry_policy: RetryPolicy { num_retries: 3 },
    })
}

/// Matches the HTTP connection manager of `context`'s listeners.
pub(super) fn hcm_match(context: &str) -> PatchMatch {
    PatchMatch {
        context: context.to_string(),
        listener: Some(ListenerMatch {
            filter_chain: FilterChainMatch {
                filter: FilterMatch {
                    name: HCM_FILTER_NAME.into(),
                    sub_filter: None,
                },
            },
        }),
        route_configuration: None,
    }
}

pub(super) fn envoy_filter(
    o: &IstioOptions,
    name: &str,
    namespace: &str,
    labels: &super::types::Labels,
    config_patches: Vec<ConfigPatch>,
) -> Resource<EnvoyFilterSpec> {
    let spec = EnvoyFilterSpec {
        workload_selector: EnvoyFilterSelector {
            labels: labels.clone(),
        },
        config_patches,
    };
    let meta = metadata(o, name, namespace);
    Resource::new("networking.istio.io/v1alpha3", "EnvoyFilter", meta, spec)
}

/// EnvoyFilter that puts the wasm filter first in the gateway's HTTP filter chain.
pub fn envoyfilter_gateway(
    o: &IstioOptions,
    name: &str,
    code: AsyncDataSource,
) -> Resource<EnvoyFilterSpec> {
    let patch = ConfigPatch {
        apply_to: "HTTP_FILTER".into(),
        matcher: hcm_match("GATEWAY"),
        patch: Patch {
            operation: "INSERT_FIRST".into(),
            value: PatchValue::Filter(envoy_http_filter(o, code)),
        },
    };
    envoy_filter(
        o,
        name,
        &o.gateway_namespace,
        &o.gateway_labels,
        vec![patch],
    )
}

/// EnvoyFilter patch of the HTTP connection manager: meshgate's `local_reply_config` (see
/// [`crate::cli::envoy::local_reply_config`]), so that the errors Envoy answers itself, past
/// the filter, are `google.rpc.Status` JSON too; at the ingress gateway (`context` `GATEWAY`,
/// the edge) also the connection manager's edge protections. `context` is `GATEWAY` or
/// `SIDECAR_INBOUND`.
fn local_replies_patch(o: &IstioOptions, context: &str) -> ConfigPatch {
    let mut replies = local_reply_config();
    // First: the clients' rate limits' 429 as a `Status` (`super::ratelimit`).
    let quotas = crate::cli::envoy::ratelimit::for_filter_json(&o.filter_json);
    replies.mappers.splice(0..0, quotas.mapper);
    let mut hcm = HttpConnectionManager {
        local_reply_config: Some(replies),
        ..HttpConnectionManager::default()
    };
    if context == "GATEWAY" {
        crate::cli::envoy::edge::apply_to_hcm(&o.edge, o.buffer_limit_bytes, &mut hcm);
    }
    ConfigPatch {
        apply_to: "NETWORK_FILTER".into(),
        matcher: hcm_match(context),
        patch: Patch {
            operation: "MERGE".into(),
            value: PatchValue::Filter(NamedFilter {
                name: HCM_FILTER_NAME.into(),
                typed_config: Any::HttpConnectionManager(Box::new(hcm)),
            }),
        },
    }
}

/// EnvoyFilter patch of the listener: the buffer limit meshgate's body limits need (Envoy's
/// 1 MiB default answers larger bodies with its own 413 before `max_request_bytes` applies).
fn buffer_limit_patch(o: &IstioOptions, context: &str) -> ConfigPatch {
    ConfigPatch {
        apply_to: "LISTENER".into(),
        matcher: PatchMatch {
            context: context.to_string(),
            listener: None,
            route_configuration: None,
        },
        patch: Patch {
            operation: "MERGE".into(),
            value: PatchValue::Listener(ListenerPatch {
                per_connection_buffer_limit_bytes: o.buffer_limit_bytes,
            }),
        },
    }
}

/// The local-reply EnvoyFilters: one for the ingress gateway, one for the workload's sidecar
/// (inbound), with the listener buffer limit. They go with any of the ways to install the
/// filter (WasmPlugin, TrafficExtension, EnvoyFilter), which cannot carry connection manager or
/// listener settings themselves.
pub fn envoyfilters_local_replies(o: &IstioOptions) -> Vec<Resource<EnvoyFilterSpec>> {
    let name = format!("{}-local-replies", o.name);
    [
        (&o.gateway_namespace, &o.gateway_labels, "GATEWAY"),
        (&o.sidecar_namespace, &o.sidecar_labels, "SIDECAR_INBOUND"),
    ]
    .into_iter()
    .map(|(namespace, labels, context)| {
        let patches = vec![
            local_replies_patch(o, context),
            buffer_limit_patch(o, context),
        ];
        envoy_filter(o, &name, namespace, labels, patches)
    })
    .collect()
}
