//! What the mesh around the filter needs: ServiceEntry + DestinationRule for each remote JWKS
//! host (so that the `outbound|443||host` cluster the filter calls exists), the access log
//! provider and Telemetry resource that write meshgate's records, the proxy settings that let
//! `wasmcustom.<prefix>_*` stats through to Prometheus, and the bootstrap override that gives
//! them their labels (Envoy `stats_tags`, which Istio's API has no field for).

use serde::Serialize;

use super::types::{
    AccessLogFilterExpression, AccessLogging, ClientTlsSettings, ConfigMap, DestinationRuleSpec,
    EnvoyFileAccessLog, ExtensionProvider, IstioOperatorSpec, IstioResource, Labels, LogFormat,
    MeshConfig, ObjectMeta, PortSelector, PortTrafficPolicy, ProviderRef, ProxyConfig,
    ProxyStatsMatcher, Resource, ServiceEntrySpec, ServicePort, TelemetrySpec, TrafficPolicy,
    WorkloadSelector,
};
use super::IstioOptions;
use crate::cli::envoy::types::StatsConfig;
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

fn labels() -> Labels {
    [(
        "app.kubernetes.io/part-of".to_string(),
        "meshgate".to_string(),
    )]
    .into()
}

fn meta(name: &str, namespace: &str, labels: Labels) -> ObjectMeta {
    ObjectMeta {
        name: name.to_string(),
        namespace: namespace.to_string(),
        labels,
    }
}

/// ServiceEntry (the host, outside the mesh, TLS on the port) and DestinationRule (originate
/// TLS with the host's SNI) for one host the proxy calls (a JWKS host, or the module's host).
pub fn jwks_resources(o: &IstioOptions, h: &JwksHost) -> Vec<IstioResource> {
    let name = format!("meshgate-egress-{}", h.host.replace('.', "-"));
    let service_entry = ServiceEntrySpec {
        hosts: vec![h.host.clone()],
        location: "MESH_EXTERNAL".into(),
        resolution: "DNS".into(),
        ports: vec![ServicePort {
            number: h.port,
            name: "https".into(),
            protocol: "TLS".into(),
        }],
    };
    let destination_rule = DestinationRuleSpec {
        host: h.host.clone(),
        traffic_policy: TrafficPolicy {
            port_level_settings: vec![PortTrafficPolicy {
                port: PortSelector { number: h.port },
                tls: ClientTlsSettings {
                    mode: "SIMPLE".into(),
                    sni: h.host.clone(),
                },
            }],
        },
    };
    let api = "networking.istio.io/v1beta1";
    let m = || meta(&name, &o.gateway_namespace, labels());
    vec![
        IstioResource::ServiceEntry(Resource::new(api, "ServiceEntry", m(), service_entry)),
        IstioResource::DestinationRule(Resource::new(
            api,
            "DestinationRule",
            m(),
            destination_rule,
        )),
    ]
}

/// Telemetry that turns on the `meshgate-records` access log on the gateway, for the requests
/// meshgate logged only: Envoy would print `-` (not a JSON line) for the others (a route with
/// the filter off, a request refused before the filter chain).
pub fn telemetry(o: &IstioOptions) -> Resource<TelemetrySpec> {
    let spec = TelemetrySpec {
        selector: WorkloadSelector {
            match_labels: o.gateway_labels.clone(),
        },
        access_logging: vec![AccessLogging {
            providers: vec![ProviderRef {
                name: LOG_PROVIDER.into(),
            }],
            filter: AccessLogFilterExpression {
                expression: RECORD_LOG_FILTER.into(),
            },
        }],
    };
    let m = meta("meshgate-records", &o.gateway_namespace, labels());
    Resource::new("telemetry.istio.io/v1alpha1", "Telemetry", m, spec)
}

/// `proxyStatsMatcher` for meshgate's stats (Istio's proxies drop other wasm stats by default),
/// and Envoy's own `wasm.` stats: the recording rules count the requests Envoy refuses while it
/// reloads a trapped VM from `wasm.<plugin>.vm_reload_backoff` (docs/observability.md).
pub fn proxy_stats_matcher(metric_prefix: &str) -> ProxyStatsMatcher {
    ProxyStatsMatcher {
        inclusion_prefixes: vec![format!("wasmcustom.{metric_prefix}_"), "wasm.".into()],
    }
}

/// IstioOperator overlay: the access log provider and the stats matcher for every proxy.
pub fn istio_operator(o: &IstioOptions) -> Resource<IstioOperatorSpec> {
    let spec = IstioOperatorSpec {
        mesh_config: MeshConfig {
            extension_providers: vec![ExtensionProvider {
                name: LOG_PROVIDER.into(),
                envoy_file_access_log: EnvoyFileAccessLog {
                    path: "/dev/stdout".into(),
                    log_format: LogFormat {
                        text: RECORD_FORMAT.into(),
                    },
                },
            }],
            default_config: ProxyConfig {
                proxy_stats_matcher: proxy_stats_matcher(&o.metric_prefix),
            },
        },
    };
    let m = meta("meshgate", "istio-system", Labels::new());
    Resource::new("install.istio.io/v1alpha1", "IstioOperator", m, spec)
}

/// The bootstrap override: meshgate's `stats_config` alone.
#[derive(Serialize)]
struct StatsBootstrap<'a> {
    stats_config: &'a StatsConfig,
}

/// ConfigMap with the bootstrap override that adds meshgate's `stats_tags` (Prometheus labels)
/// and latency buckets; pods opt in with `sidecar.istio.io/bootstrapOverride`.
pub fn bootstrap_configmap(o: &IstioOptions) -> Result<ConfigMap, String> {
    let bootstrap = StatsBootstrap {
        stats_config: &o.stats_config,
    };
    let text = serde_json::to_string_pretty(&bootstrap).map_err(|e| e.to_string())?;
    Ok(ConfigMap {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        metadata: meta(BOOTSTRAP_CONFIGMAP, &o.gateway_namespace, labels()),
        data: [("custom_bootstrap.json".to_string(), text)].into(),
    })
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
