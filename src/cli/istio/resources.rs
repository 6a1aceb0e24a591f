//! The filter's Istio resources: WasmPlugin (ingress gateway and sidecar), TrafficExtension
//! (Istio 1.30+, which supersedes WasmPlugin) and the EnvoyFilter alternative (module from a
//! file or over HTTP, with `allow_on_headers_stop_iteration`, which WasmPlugin does not set).

use serde_json::{json, Value};

use super::IstioOptions;

/// Envoy's `PluginConfig` as meshgate needs it (the same as `meshgate envoy` renders).
fn plugin_config(o: &IstioOptions, code: Value) -> Value {
    json!({
        "name": o.name,
        "root_id": o.name,
        "vm_config": {"vm_id": o.name, "runtime": "envoy.wasm.runtime.v8", "code": code},
        "configuration": {
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": o.filter_json,
        },
        "failure_policy": o.fail_strategy.envoy_policy(),
        // Without it, pausing request headers stalls the body (ENVOY_NOTES).
        "allow_on_headers_stop_iteration": true,
    })
}

fn metadata(o: &IstioOptions, name: &str, namespace: &str) -> Value {
    json!({
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/name": o.name, "app.kubernetes.io/part-of": "meshgate"},
    })
}

/// `spec` fields shared by WasmPlugin and TrafficExtension's `wasm`.
fn wasm_fields(o: &IstioOptions) -> Value {
    json!({
        "url": o.image,
        "sha256": o.image_sha256,
        "imagePullPolicy": "IfNotPresent",
        "pluginName": o.name,
        "failStrategy": o.fail_strategy.istio_name(),
        "type": "HTTP",
        "pluginConfig": istio_managed_config(&o.plugin_config),
    })
}

/// The filter configuration for a plugin whose Envoy config Istio writes: Istio sets no
/// `allow_on_headers_stop_iteration`, so a filter cannot hold request or response headers and
/// still see the body; transcoded calls go as side calls (`transcoding.upstream_calls`) unless
/// the gateway configuration chose otherwise.
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

/// WasmPlugin on the ingress gateway, in the AUTHN phase (before Istio's own authn filters).
pub fn wasmplugin_gateway(o: &IstioOptions) -> Value {
    let mut spec = json!({
        "selector": {"matchLabels": o.gateway_labels},
        "phase": "AUTHN",
    });
    merge(&mut spec, wasm_fields(o));
    json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": metadata(o, &o.name, &o.gateway_namespace),
        "spec": spec,
    })
}

/// WasmPlugin for a workload's sidecar: inbound traffic only (`mode: SERVER`), so the
/// workload's own outbound calls are not policed as if they were API calls.
pub fn wasmplugin_sidecar(o: &IstioOptions) -> Value {
    let mut spec = json!({
        "selector": {"matchLabels": o.sidecar_labels},
        "phase": "AUTHN",
        "match": [{"mode": "SERVER"}],
    });
    merge(&mut spec, wasm_fields(o));
    json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": metadata(o, &o.name, &o.sidecar_namespace),
        "spec": spec,
    })
}

/// TrafficExtension (Istio 1.30+): the same plugin under `spec.wasm`.
pub fn trafficextension_gateway(o: &IstioOptions) -> Value {
    json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "TrafficExtension",
        "metadata": metadata(o, &o.name, &o.gateway_namespace),
        "spec": {
            "selector": {"matchLabels": o.gateway_labels},
            "phase": "AUTHN",
            "wasm": wasm_fields(o),
        },
    })
}

/// The HTTP filter an EnvoyFilter inserts: the wasm filter with meshgate's plugin config.
pub fn envoy_http_filter(o: &IstioOptions, code: Value) -> Value {
    json!({
        "name": o.name,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": plugin_config(o, code),
        },
    })
}

/// `vm_config.code` for a module file present in the proxy container.
pub fn local_code(path: &str) -> Value {
    json!({"local": {"filename": path}})
}

/// `vm_config.code` for a module fetched by Envoy over HTTP(S) through `cluster`, checked
/// against its SHA-256.
pub fn remote_code(url: &str, cluster: &str, sha256: &str) -> Value {
    json!({"remote": {
        "http_uri": {"uri": url, "cluster": cluster, "timeout": "30s"},
        "sha256": sha256,
        "retry_policy": {"num_retries": 3},
    }})
}

/// EnvoyFilter that puts the wasm filter first in the gateway's HTTP filter chain.
pub fn envoyfilter_gateway(o: &IstioOptions, name: &str, code: Value) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": metadata(o, name, &o.gateway_namespace),
        "spec": {
            "workloadSelector": {"labels": o.gateway_labels},
            "configPatches": [{
                "applyTo": "HTTP_FILTER",
                "match": {
                    "context": "GATEWAY",
                    "listener": {"filterChain": {"filter": {
                        "name": "envoy.filters.network.http_connection_manager",
                    }}},
                },
                "patch": {"operation": "INSERT_FIRST", "value": envoy_http_filter(o, code)},
            }],
        },
    })
}

/// EnvoyFilter patch of the HTTP connection manager: meshgate's `local_reply_config` (see
/// [`crate::cli::envoy::local_reply_config`]), so that the errors Envoy answers itself, past
/// the filter, are `google.rpc.Status` JSON too. `context` is `GATEWAY` or `SIDECAR_INBOUND`.
fn local_replies_patch(context: &str) -> Value {
    json!({
        "applyTo": "NETWORK_FILTER",
        "match": {
            "context": context,
            "listener": {"filterChain": {"filter": {
                "name": "envoy.filters.network.http_connection_manager",
            }}},
        },
        "patch": {
            "operation": "MERGE",
            "value": {
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "local_reply_config": crate::cli::envoy::local_reply_config(),
                },
            },
        },
    })
}

/// EnvoyFilter patch of the listener: the buffer limit meshgate's body limits need (Envoy's
/// 1 MiB default answers larger bodies with its own 413 before `max_request_bytes` applies).
fn buffer_limit_patch(o: &IstioOptions, context: &str) -> Value {
    json!({
        "applyTo": "LISTENER",
        "match": {"context": context},
        "patch": {
            "operation": "MERGE",
            "value": {"per_connection_buffer_limit_bytes": o.buffer_limit_bytes},
        },
    })
}

/// The local-reply EnvoyFilters: one for the ingress gateway, one for the workload's sidecar
/// (inbound), with the listener buffer limit. They go with any of the ways to install the
/// filter (WasmPlugin, TrafficExtension, EnvoyFilter), which cannot carry connection manager or
/// listener settings themselves.
pub fn envoyfilters_local_replies(o: &IstioOptions) -> Vec<Value> {
    let name = format!("{}-local-replies", o.name);
    [
        (&o.gateway_namespace, &o.gateway_labels, "GATEWAY"),
        (&o.sidecar_namespace, &o.sidecar_labels, "SIDECAR_INBOUND"),
    ]
    .into_iter()
    .map(|(namespace, labels, context)| {
        json!({
            "apiVersion": "networking.istio.io/v1alpha3",
            "kind": "EnvoyFilter",
            "metadata": metadata(o, &name, namespace),
            "spec": {
                "workloadSelector": {"labels": labels},
                "configPatches": [local_replies_patch(context), buffer_limit_patch(o, context)],
            },
        })
    })
    .collect()
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}
