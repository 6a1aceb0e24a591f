//! Render an Envoy bootstrap that runs meshgate: one listener, the wasm filter with the
//! compiled configuration, one route per upstream (matched on the routing header the filter
//! sets), and the upstream clusters. `make run` and the end-to-end tests use it; users can start
//! from its output.

use serde_json::{json, Value};

use super::{compile_file, positional_and_output, write_output};

/// An upstream cluster.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub name: String,
    pub address: String,
    pub port: u16,
    /// gRPC upstreams speak HTTP/2; REST upstreams HTTP/1.1.
    pub http2: bool,
}

/// An extra route, placed before the per-upstream routes (per-route policy examples).
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub name: String,
    /// Path prefix the route matches.
    pub prefix: String,
    /// Route to this cluster (when the upstream header is absent or the route is specific).
    pub cluster: String,
    /// `filter_metadata.meshgate.policy`.
    pub policy: Option<String>,
    /// Switch meshgate off on this route (`FilterConfig{disabled: true}`).
    pub disable_filter: bool,
}

#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    pub filter_config_json: String,
    pub wasm_path: String,
    pub listen_address: String,
    pub listen_port: u16,
    pub admin_address: String,
    pub admin_port: u16,
    pub clusters: Vec<ClusterSpec>,
    pub routes: Vec<RouteSpec>,
    /// Header the filter writes the upstream into (must match the configuration's).
    pub upstream_header: String,
    /// `FAIL_CLOSED`, `FAIL_RELOAD` or `FAIL_OPEN`.
    pub failure_policy: String,
    /// Route timeout, seconds.
    pub route_timeout_s: u32,
    /// Extra Envoy clusters as raw JSON values (JWKS servers, for example).
    pub extra_clusters: Vec<Value>,
    /// meshgate's `stats_config` (labels via `stats_tags`, latency buckets); see
    /// [`stats_config_for`].
    pub stats_config: Value,
    /// Where Envoy writes meshgate's access records, one clean JSON line each (taken from the
    /// filter state the filter sets in its log callback). `None`: no Envoy access log.
    pub access_log_path: Option<String>,
}

impl EnvoyOptions {
    pub fn new(filter_config_json: String, wasm_path: String) -> EnvoyOptions {
        EnvoyOptions {
            filter_config_json,
            wasm_path,
            listen_address: "127.0.0.1".into(),
            listen_port: 8080,
            admin_address: "127.0.0.1".into(),
            admin_port: 9901,
            clusters: Vec::new(),
            routes: Vec::new(),
            upstream_header: "x-meshgate-upstream".into(),
            failure_policy: "FAIL_RELOAD".into(),
            route_timeout_s: 15,
            extra_clusters: Vec::new(),
            stats_config: json!({}),
            access_log_path: Some("/dev/stdout".into()),
        }
    }
}

pub const WASM_FILTER_NAME: &str = "envoy.filters.http.wasm";

/// The bootstrap as a JSON value (Envoy reads JSON and YAML alike).
pub fn bootstrap(o: &EnvoyOptions) -> Value {
    let mut clusters: Vec<Value> = o.clusters.iter().map(cluster).collect();
    clusters.extend(o.extra_clusters.iter().cloned());
    json!({
        "admin": {"address": socket(&o.admin_address, o.admin_port)},
        "stats_config": o.stats_config,
        "static_resources": {
            "listeners": [listener(o)],
            "clusters": clusters,
        },
    })
}

fn socket(address: &str, port: u16) -> Value {
    json!({"socket_address": {"address": address, "port_value": port}})
}

fn cluster(c: &ClusterSpec) -> Value {
    let mut v = json!({
        "name": c.name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {
            "cluster_name": c.name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket(&c.address, c.port)}}]}],
        },
    });
    if c.http2 {
        let options = json!({
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        });
        set(&mut v, "typed_extension_protocol_options", options);
    }
    v
}

/// `object[key] = value` without indexing (which panics on a non-object).
fn set(object: &mut Value, key: &str, value: Value) {
    if let Some(map) = object.as_object_mut() {
        map.insert(key.to_string(), value);
    }
}

fn wasm_filter(o: &EnvoyOptions) -> Value {
    json!({
        "name": WASM_FILTER_NAME,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "meshgate",
                "root_id": "meshgate",
                "vm_config": {
                    "vm_id": "meshgate",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": o.wasm_path}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": o.filter_config_json,
                },
                "failure_policy": o.failure_policy,
                // Without it, pausing request headers stalls the body (ENVOY_NOTES).
                "allow_on_headers_stop_iteration": true,
            },
        },
    })
}

fn route_action(cluster: &str, timeout_s: u32) -> Value {
    json!({"cluster": cluster, "timeout": format!("{timeout_s}s")})
}

fn routes(o: &EnvoyOptions) -> Vec<Value> {
    let mut out = Vec::new();
    for r in &o.routes {
        let mut route = json!({
            "name": r.name,
            "match": {"prefix": r.prefix},
            "route": route_action(&r.cluster, o.route_timeout_s),
        });
        if let Some(p) = &r.policy {
            let metadata = json!({"filter_metadata": {"meshgate": {"policy": p}}});
            set(&mut route, "metadata", metadata);
        }
        if r.disable_filter {
            let off = json!({
                WASM_FILTER_NAME: {
                    "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
                    "disabled": true,
                }
            });
            set(&mut route, "typed_per_filter_config", off);
        }
        out.push(route);
    }
    for c in &o.clusters {
        out.push(json!({
            "name": format!("upstream-{}", c.name),
            "match": {
                "prefix": "/",
                "headers": [{"name": o.upstream_header, "string_match": {"exact": c.name}}],
            },
            "route": route_action(&c.name, o.route_timeout_s),
        }));
    }
    // Requests the filter did not route (answered locally, or passed through) still need a
    // route for the filter chain to run; the first cluster is the fallback.
    if let Some(c) = o.clusters.first() {
        out.push(json!({
            "name": "default",
            "match": {"prefix": "/"},
            "route": route_action(&c.name, o.route_timeout_s),
        }));
    }
    out
}

fn listener(o: &EnvoyOptions) -> Value {
    json!({
        "name": "gateway",
        "address": socket(&o.listen_address, o.listen_port),
        "filter_chains": [{
            "filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "gateway",
                    "codec_type": "AUTO",
                    "access_log": access_log(o),
                    "route_config": {
                        "name": "gateway",
                        "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes(o)}],
                    },
                    "http_filters": [
                        wasm_filter(o),
                        {"name": "envoy.filters.http.router", "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
                    ],
                },
            }],
        }],
    })
}

/// Envoy's file access log writing meshgate's record (filter state `wasm.meshgate.record`)
/// as one JSON line per request, nothing else: what a log agent ships as structured logs.
fn access_log(o: &EnvoyOptions) -> Value {
    let Some(path) = &o.access_log_path else {
        return json!([]);
    };
    json!([{
        "name": "envoy.access_loggers.file",
        // Only requests meshgate logged (a route with the filter off, or a request Envoy
        // refused before the filter ran, would print `-`: not a JSON line).
        "filter": {"extension_filter": {
            "name": "envoy.access_loggers.extension_filters.cel",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
                "expression": RECORD_LOG_FILTER,
            },
        }},
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": path,
            "log_format": {"text_format_source": {
                "inline_string": "%FILTER_STATE(wasm.meshgate.record:PLAIN)%\n"
            }},
        },
    }])
}

/// CEL access log filter: the request has meshgate's record (Istio: `Telemetry`
/// `accessLogging[].filter.expression`).
pub const RECORD_LOG_FILTER: &str = "'wasm.meshgate.record' in filter_state";

/// `stats_config` for a compiled configuration: Prometheus labels for every meshgate metric,
/// and latency buckets that include every objective's threshold (operations' and policies').
pub fn stats_config_for(config: &crate::config::Config) -> Value {
    let policies = config.policies.values().filter_map(|p| p.slo.as_ref());
    let slos: Vec<&crate::observe::Slo> = config
        .operations
        .iter()
        .map(|o| &o.slo)
        .chain(policies)
        .collect();
    let buckets = crate::observe::histogram_buckets(&slos, &config.observe.latency_buckets_ms);
    config.observe.names.stats_config(&buckets)
}

pub fn render_yaml(o: &EnvoyOptions) -> Result<String, String> {
    serde_yaml_ng::to_string(&bootstrap(o)).map_err(|e| e.to_string())
}

fn parse_addr(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("`{s}` is not HOST:PORT"))?;
    let port = port.parse().map_err(|_| format!("`{s}`: bad port"))?;
    Ok((host.to_string(), port))
}

fn parse_cluster(s: &str) -> Result<ClusterSpec, String> {
    let (name, rest) = s
        .split_once('=')
        .ok_or_else(|| format!("--cluster `{s}` is not NAME=HOST:PORT"))?;
    let (addr, http2) = match rest.strip_suffix("/h1") {
        Some(a) => (a, false),
        None => (rest, true),
    };
    let (address, port) = parse_addr(addr)?;
    Ok(ClusterSpec {
        name: name.to_string(),
        address,
        port,
        http2,
    })
}

pub fn cmd_envoy(args: &[String]) -> Result<(), String> {
    let mut positional = Vec::new();
    let mut wasm = None;
    let mut listen = None;
    let mut admin = None;
    let mut clusters = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--wasm" => wasm = Some(value()?),
            "--listen" => listen = Some(parse_addr(&value()?)?),
            "--admin" => admin = Some(parse_addr(&value()?)?),
            "--cluster" => clusters.push(parse_cluster(&value()?)?),
            _ => positional.push(a.clone()),
        }
    }
    let (input, output) = positional_and_output(&positional)?;
    let json = compile_file(&input).map_err(|e| e.to_string())?;
    let config = crate::config::compile_json(json.as_bytes()).map_err(|e| e.to_string())?;
    let mut o = EnvoyOptions::new(json, wasm.ok_or("--wasm is required")?);
    o.stats_config = stats_config_for(&config);
    o.upstream_header = config.routing.upstream_header.clone();
    if let Some((a, p)) = listen {
        o.listen_address = a;
        o.listen_port = p;
    }
    if let Some((a, p)) = admin {
        o.admin_address = a;
        o.admin_port = p;
    }
    o.clusters = clusters;
    write_output(output.as_ref(), &render_yaml(&o)?)
}
