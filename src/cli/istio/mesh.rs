//! What the mesh around the filter needs: ServiceEntry + DestinationRule for each remote JWKS
//! host (so that the `outbound|443||host` cluster the filter calls exists), the access log
//! provider and Telemetry resource that write meshgate's records, the proxy settings that let
//! `wasmcustom.<prefix>_*` stats through to Prometheus, and the bootstrap override that gives
//! them their labels (Envoy `stats_tags`, which Istio's API has no field for).

use serde_json::{json, Value};

use super::IstioOptions;
use crate::cli::envoy::RECORD_LOG_FILTER;
use crate::config::input::GatewayInput;

/// Name of the mesh's access log provider that writes meshgate's records.
pub const LOG_PROVIDER: &str = "meshgate-records";
/// The record the filter leaves in the filter state (`wasm.` + the key it sets).
pub const RECORD_FORMAT: &str = "%FILTER_STATE(wasm.meshgate.record:PLAIN)%\n";
/// Name of the ConfigMap with the bootstrap override (`sidecar.istio.io/bootstrapOverride`).
pub const BOOTSTRAP_CONFIGMAP: &str = "meshgate-stats-bootstrap";

/// A remote JWKS host as Istio names its cluster: `outbound|<port>||<host>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksHost {
    pub provider: String,
    pub host: String,
    pub port: u16,
}

/// `outbound|443||idp.example.com` -> (443, `idp.example.com`).
pub fn parse_istio_cluster(cluster: &str) -> Option<(u16, String)> {
    let rest = cluster.strip_prefix("outbound|")?;
    let (port, rest) = rest.split_once('|')?;
    let (_subset, host) = rest.split_once('|')?;
    let port = port.parse().ok()?;
    (!host.is_empty()).then(|| (port, host.to_string()))
}

fn url_host(uri: &str) -> Option<String> {
    let rest = uri.split_once("://").map(|(_, r)| r).unwrap_or(uri);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    (!host.is_empty()).then(|| host.to_string())
}

/// The remote JWKS hosts of a configuration; refuses a cluster that is not Istio's name for
/// the URL's host (the call would go nowhere in the mesh).
pub fn jwks_hosts(input: &GatewayInput) -> Result<Vec<JwksHost>, String> {
    let mut out: Vec<JwksHost> = Vec::new();
    for (i, p) in input.auth.providers.iter().enumerate() {
        let Some(remote) = &p.jwks.remote else {
            continue;
        };
        let field = format!("auth.providers[{i}].jwks.remote.cluster");
        let (port, host) = parse_istio_cluster(&remote.cluster).ok_or_else(|| {
            format!(
                "{field}: under Istio the cluster is `outbound|<port>||<host>` (got `{}`)",
                remote.cluster
            )
        })?;
        if url_host(&remote.uri).as_deref() != Some(host.as_str()) {
            return Err(format!(
                "{field}: `{}` does not reach the host of `{}`",
                remote.cluster, remote.uri
            ));
        }
        if !out.iter().any(|h| h.host == host && h.port == port) {
            out.push(JwksHost {
                provider: p.name.clone(),
                host,
                port,
            });
        }
    }
    Ok(out)
}

fn labels() -> Value {
    json!({"app.kubernetes.io/part-of": "meshgate"})
}

/// ServiceEntry (the host, outside the mesh, TLS on the port) and DestinationRule (originate
/// TLS with the host's SNI) for one host the proxy calls (a JWKS host, or the module's host).
pub fn jwks_resources(o: &IstioOptions, h: &JwksHost) -> Vec<Value> {
    let name = format!("meshgate-egress-{}", h.host.replace('.', "-"));
    let meta = json!({"name": name, "namespace": o.gateway_namespace, "labels": labels()});
    let service_entry = json!({
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "ServiceEntry",
        "metadata": meta,
        "spec": {
            "hosts": [h.host],
            "location": "MESH_EXTERNAL",
            "resolution": "DNS",
            "ports": [{"number": h.port, "name": "https", "protocol": "TLS"}],
        },
    });
    let destination_rule = json!({
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "DestinationRule",
        "metadata": meta,
        "spec": {
            "host": h.host,
            "trafficPolicy": {"portLevelSettings": [{
                "port": {"number": h.port},
                "tls": {"mode": "SIMPLE", "sni": h.host},
            }]},
        },
    });
    vec![service_entry, destination_rule]
}

/// Telemetry that turns on the `meshgate-records` access log on the gateway, for the requests
/// meshgate logged only: Envoy would print `-` (not a JSON line) for the others (a route with
/// the filter off, a request refused before the filter chain).
pub fn telemetry(o: &IstioOptions) -> Value {
    json!({
        "apiVersion": "telemetry.istio.io/v1alpha1",
        "kind": "Telemetry",
        "metadata": {"name": "meshgate-records", "namespace": o.gateway_namespace, "labels": labels()},
        "spec": {
            "selector": {"matchLabels": o.gateway_labels},
            "accessLogging": [{
                "providers": [{"name": LOG_PROVIDER}],
                "filter": {"expression": RECORD_LOG_FILTER},
            }],
        },
    })
}

/// `proxyStatsMatcher` for meshgate's stats (Istio's proxies drop other wasm stats by default).
pub fn proxy_stats_matcher(metric_prefix: &str) -> Value {
    json!({"inclusionPrefixes": [format!("wasmcustom.{metric_prefix}_")]})
}

/// IstioOperator overlay: the access log provider and the stats matcher for every proxy.
pub fn istio_operator(o: &IstioOptions) -> Value {
    json!({
        "apiVersion": "install.istio.io/v1alpha1",
        "kind": "IstioOperator",
        "metadata": {"name": "meshgate", "namespace": "istio-system"},
        "spec": {"meshConfig": {
            "extensionProviders": [{
                "name": LOG_PROVIDER,
                "envoyFileAccessLog": {"path": "/dev/stdout", "logFormat": {"text": RECORD_FORMAT}},
            }],
            "defaultConfig": {"proxyStatsMatcher": proxy_stats_matcher(&o.metric_prefix)},
        }},
    })
}

/// ConfigMap with the bootstrap override that adds meshgate's `stats_tags` (Prometheus labels)
/// and latency buckets; pods opt in with `sidecar.istio.io/bootstrapOverride`.
pub fn bootstrap_configmap(o: &IstioOptions) -> Result<Value, String> {
    let bootstrap = json!({"stats_config": o.stats_config});
    let text = serde_json::to_string_pretty(&bootstrap).map_err(|e| e.to_string())?;
    Ok(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": BOOTSTRAP_CONFIGMAP, "namespace": o.gateway_namespace, "labels": labels()},
        "data": {"custom_bootstrap.json": text},
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn istio_cluster_names_parse() {
        assert_eq!(
            parse_istio_cluster("outbound|443||idp.example.com"),
            Some((443, "idp.example.com".into()))
        );
        assert_eq!(parse_istio_cluster("idp"), None);
        assert_eq!(parse_istio_cluster("outbound|x||h"), None);
        assert_eq!(parse_istio_cluster("outbound|443||"), None);
    }

    #[test]
    fn url_host_ignores_port_and_path() {
        assert_eq!(
            url_host("https://idp.example.com:8443/jwks?x").as_deref(),
            Some("idp.example.com")
        );
        assert_eq!(url_host("https:///x"), None);
    }
}
