//! Render an Envoy bootstrap that runs meshgate: one listener, the wasm filter with the
//! compiled configuration, one route per upstream (matched on the routing header the filter
//! sets), and the upstream clusters. `make run` and the end-to-end tests use it; users can start
//! from its output.

use serde_json::{json, Value};

use super::{compile_file, positional_and_output, write_output};
use crate::status::Code;

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
    /// The listener's `per_connection_buffer_limit_bytes`, which also bounds every body a
    /// filter buffers (see [`buffer_limit_for`]). `None`: Envoy's default (1 MiB).
    pub buffer_limit_bytes: Option<u32>,
    /// The connection manager's `generate_request_id` (Envoy's default: true). Envoy then
    /// gives every request without an `x-request-id` a UUID before any filter runs, so
    /// meshgate's own generation (`routing.generate_request_id`) only applies when this is
    /// false. Not a `meshgate envoy` option: Envoy's generator is the better one (random
    /// UUIDs, on every request, not only those meshgate routes).
    pub generate_request_id: bool,
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
            buffer_limit_bytes: None,
            generate_request_id: true,
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
        put(
            &mut v,
            "typed_extension_protocol_options",
            json!({
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}},
                }
            }),
        );
    }
    v
}

/// Debian's (and most distributions') CA bundle: what the JWKS clusters trust by default.
pub const DEFAULT_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A cluster for every remote JWKS (and discovery document) whose cluster is not among
/// `existing`: reached at the URI's host and port (443/80 by default), over TLS for `https://`
/// with the host as SNI and as the certificate's required DNS name, trusting `ca_file`. One
/// cluster per name, even when several providers share it.
pub fn jwks_clusters(
    config: &crate::config::Config,
    existing: &[String],
    ca_file: &str,
) -> Vec<Value> {
    let mut seen: Vec<&str> = existing.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for p in &config.auth.providers {
        let crate::auth::KeySource::Remote(rc) = &p.keys else {
            continue;
        };
        if seen.contains(&rc.cluster.as_str()) {
            continue;
        }
        seen.push(&rc.cluster);
        out.push(jwks_cluster(rc, ca_file));
    }
    out
}

fn jwks_cluster(rc: &crate::auth::RemoteConfig, ca_file: &str) -> Value {
    let (host, port) = split_authority(&rc.authority, if rc.tls { 443 } else { 80 });
    let literal = host.parse::<std::net::IpAddr>().is_ok();
    let mut v = json!({
        "name": rc.cluster,
        "type": if literal { "STATIC" } else { "LOGICAL_DNS" },
        "connect_timeout": "5s",
        "load_assignment": {
            "cluster_name": rc.cluster,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket(host, port)}}]}],
        },
    });
    if rc.tls {
        // A name is sent as SNI and required as a DNS SAN; an IP (never valid SNI) as an IP SAN.
        let san_type = if literal { "IP_ADDRESS" } else { "DNS" };
        let mut tls = json!({
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "common_tls_context": {"validation_context": {
                "trusted_ca": {"filename": ca_file},
                "match_typed_subject_alt_names": [
                    {"san_type": san_type, "matcher": {"exact": host}}
                ],
            }},
        });
        if !literal {
            put(&mut tls, "sni", json!(host));
        }
        put(
            &mut v,
            "transport_socket",
            json!({"name": "envoy.transport_sockets.tls", "typed_config": tls}),
        );
    }
    v
}

/// `host:port`, `[v6]:port` or a bare host -> (host, port or `default`).
fn split_authority(authority: &str, default: u16) -> (&str, u16) {
    if let Some(rest) = authority.strip_prefix('[') {
        if let Some((host, tail)) = rest.split_once(']') {
            let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
            return (host, port.unwrap_or(default));
        }
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, port),
            Err(_) => (authority, default),
        },
        _ => (authority, default),
    }
}

/// Sets `key` on a JSON object (indexing a `Value` may panic; this never does).
fn put(v: &mut Value, key: &str, value: Value) {
    if let Some(map) = v.as_object_mut() {
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

/// A route of `r`'s: its name, prefix, metadata and per-filter config, going to `cluster`,
/// optionally only when the routing header names `header_match`.
fn spec_route(o: &EnvoyOptions, r: &RouteSpec, cluster: &str, header_match: Option<&str>) -> Value {
    let mut matcher = json!({"prefix": r.prefix});
    if let Some(value) = header_match {
        let headers = json!([{"name": o.upstream_header, "string_match": {"exact": value}}]);
        put(&mut matcher, "headers", headers);
    }
    let mut route = json!({
        "name": r.name,
        "match": matcher,
        "route": route_action(cluster, o.route_timeout_s),
    });
    if let Some(p) = &r.policy {
        let metadata = json!({"filter_metadata": {"meshgate": {"policy": p}}});
        put(&mut route, "metadata", metadata);
    }
    if r.disable_filter {
        let per_filter = json!({
            WASM_FILTER_NAME: {
                "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
                "disabled": true,
            }
        });
        put(&mut route, "typed_per_filter_config", per_filter);
    }
    route
}

/// The routes of one [`RouteSpec`]. With meshgate on, one route per upstream (matched on the
/// routing header) then the fallback to `r.cluster`, all with the same name and metadata:
/// Envoy picks the policy before meshgate strips a spoofed routing header, so a client cannot
/// pick another route's policy with one, and after meshgate sets the header the request
/// still goes to its operation's upstream. With meshgate off, one route to `r.cluster`.
fn spec_routes(o: &EnvoyOptions, r: &RouteSpec) -> Vec<Value> {
    let mut out = Vec::new();
    if !r.disable_filter {
        for c in &o.clusters {
            out.push(spec_route(o, r, &c.name, Some(&header_value(o, &c.name))));
        }
    }
    out.push(spec_route(o, r, &r.cluster, None));
    out
}

/// The value meshgate writes into the routing header for the upstream `cluster`: its
/// `header_value` in the filter configuration, else its name.
fn header_value(o: &EnvoyOptions, cluster: &str) -> String {
    serde_json::from_str::<Value>(&o.filter_config_json)
        .ok()
        .as_ref()
        .and_then(|v| {
            v.get("upstreams")?
                .get(cluster)?
                .get("header_value")?
                .as_str()
        })
        .unwrap_or(cluster)
        .to_string()
}

fn routes(o: &EnvoyOptions) -> Vec<Value> {
    let mut out: Vec<Value> = o.routes.iter().flat_map(|r| spec_routes(o, r)).collect();
    for c in &o.clusters {
        out.push(json!({
            "name": format!("upstream-{}", c.name),
            "match": {
                "prefix": "/",
                "headers": [{"name": o.upstream_header,
                             "string_match": {"exact": header_value(o, &c.name)}}],
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
    let mut v = listener_without_limit(o);
    if let Some(limit) = o.buffer_limit_bytes {
        put(&mut v, "per_connection_buffer_limit_bytes", json!(limit));
    }
    v
}

/// Room above `max_request_bytes`: meshgate must see a body cross its limit and answer with
/// its own Status before Envoy's buffer overflows. (Its reply is sent after its callback
/// returns; a client streaming a large body after `100-continue` can push Envoy's buffer past a
/// small margin in between, and then Envoy's plain `413 Payload Too Large` wins: seen once in
/// six 20 MiB uploads with a 1 MiB margin, never with 12 MiB.)
const REQUEST_HEADROOM_BYTES: usize = 4 << 20;

/// Room above `max_response_bytes`: the gRPC framing of the reply.
const RESPONSE_SLACK_BYTES: usize = 64 << 10;

/// The listener buffer limit a configuration needs. Envoy bounds every body a filter buffers
/// by the connection's buffer limit (1 MiB by default) and answers `413`/`500` itself above
/// it, so meshgate's `limits.max_request_bytes` (4 MiB) and `max_response_bytes` (16 MiB) would
/// never be reached without it.
pub fn buffer_limit_for(config: &crate::config::Config) -> u32 {
    let limits = &config.limits;
    let request = limits
        .max_request_bytes
        .saturating_add(REQUEST_HEADROOM_BYTES);
    let response = limits
        .max_response_bytes
        .saturating_add(RESPONSE_SLACK_BYTES);
    u32::try_from(request.max(response)).unwrap_or(u32::MAX)
}

fn listener_without_limit(o: &EnvoyOptions) -> Value {
    let mut hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "gateway",
        "codec_type": "AUTO",
        "access_log": access_log(o),
        "local_reply_config": local_reply_config(),
        "route_config": {
            "name": "gateway",
            "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes(o)}],
        },
        "http_filters": [
            wasm_filter(o),
            {"name": "envoy.filters.http.router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
        ],
    });
    if !o.generate_request_id {
        put(&mut hcm, "generate_request_id", json!(false));
    }
    json!({
        "name": "gateway",
        "address": socket(&o.listen_address, o.listen_port),
        "filter_chains": [{
            "filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": hcm,
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

/// The HCM's `local_reply_config`: replies Envoy makes itself (router and codec errors) that
/// no filter turns into a `google.rpc.Status` get one, as JSON with the gRPC code of their
/// status (`{"code": 14, "message": "upstream connect error ..."}`). Untouched:
/// - meshgate's own replies (no router failure flag; their code details are `meshgate`), and
///   any other filter's;
/// - native gRPC clients (`content-type: application/grpc` and no `x-envoy-original-method`):
///   Envoy already answers them trailers-only with `grpc-status`;
/// - transcoded requests (meshgate sets `x-envoy-original-method` when it rewrites one for
///   the router): meshgate converts Envoy's errors itself while it can, so only the replies
///   Envoy sends past it are mapped here: an upstream reset after the response headers, which
///   meshgate holds, is answered directly, bypassing every filter.
///
/// `meshgate envoy` renders it into the bootstrap; `meshgate istio` into an EnvoyFilter.
pub fn local_reply_config() -> Value {
    // One mapper per gRPC code, matching its statuses.
    let mut groups: Vec<(Code, Vec<Value>)> = Vec::new();
    for status in ENVOY_REPLY_STATUSES {
        let code = envoy_reply_code(status);
        let filter = status_filter("EQ", status);
        match groups.iter_mut().find(|(c, _)| *c == code) {
            Some((_, filters)) => filters.push(filter),
            None => groups.push((code, vec![filter])),
        }
    }
    let mut mappers: Vec<Value> = groups
        .into_iter()
        .map(|(code, filters)| {
            let statuses = match filters.as_slice() {
                [one] => one.clone(),
                _ => json!({ "or_filter": { "filters": filters } }),
            };
            reply_mapper(statuses, code)
        })
        .collect();
    // Any other error status Envoy makes: UNKNOWN, but still a Status.
    mappers.push(reply_mapper(status_filter("GE", 400), Code::Unknown));
    json!({ "mappers": mappers })
}

/// The statuses of Envoy's own error replies that get their own gRPC code.
const ENVOY_REPLY_STATUSES: [u16; 9] = [400, 404, 408, 413, 431, 500, 502, 503, 504];

/// Response flags of the router's failures (`%RESPONSE_FLAGS%` short names): replies Envoy
/// makes itself, never a filter's.
const ROUTER_FAILURE_FLAGS: [&str; 13] = [
    "UH", "UF", "UO", "NR", "NC", "URX", "UT", "UR", "UC", "UPE", "UMSDR", "DF", "OM",
];

/// A codec refused the request (too large or malformed headers): its details name the codec
/// (`http1.headers_too_large`). Its flag (`DPE`) is set only after the reply is made.
const CODEC_ERROR: &str = "response.code_details.startsWith('http1.') || \
     response.code_details.startsWith('http2.') || \
     response.code_details.startsWith('http3.')";

/// A transcoded request: meshgate rewrote it for the router and set this header. (CEL: unlike a
/// header filter, it also sees requests without headers.)
const TRANSCODED: &str = "'x-envoy-original-method' in request.headers";

/// The router reset the stream after the upstream's response headers (which meshgate holds
/// on a transcoded request): Envoy answers past the filters.
const RESET_AFTER_HEADERS: &str =
    "response.code_details.startsWith('upstream_reset_after_response_started')";

/// Not meshgate's own reply, neither transcoded (meshgate converts those) nor native gRPC
/// (Envoy answers those with `grpc-status`). True for a request Envoy refused before reading
/// its headers.
const PLAIN_HTTP: &str = "response.code_details != 'meshgate' && \
     !('x-envoy-original-method' in request.headers) && \
     !('content-type' in request.headers && \
       request.headers['content-type'].startsWith('application/grpc'))";

/// The gRPC code of an Envoy reply's status: the standard mapping, except where the reply
/// says more (a malformed request, no route, a limit, an internal error) -- the codes
/// meshgate itself uses for the same statuses.
pub fn envoy_reply_code(status: u16) -> Code {
    match status {
        400 => Code::InvalidArgument,
        404 => Code::NotFound,
        413 | 431 => Code::ResourceExhausted,
        500 => Code::Internal,
        other => Code::from_http_status(other),
    }
}

/// An access log `status_code_filter` (`op` `EQ` or `GE`); the runtime key is required.
fn status_filter(op: &str, status: u16) -> Value {
    let key = format!("meshgate.local_reply.status_{status}");
    json!({"status_code_filter": {"comparison": {
        "op": op,
        "value": {"default_value": status, "runtime_key": key},
    }}})
}

fn cel_filter(expression: &str) -> Value {
    json!({"extension_filter": {
        "name": "envoy.access_loggers.extension_filters.cel",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
            "expression": expression,
        },
    }})
}

/// Which local replies are mapped (see [`local_reply_config`]).
fn envoy_made_reply() -> Value {
    json!({"or_filter": {"filters": [
        // Every router failure of a transcoded request: those past the filters (a reset or a
        // timeout after the response headers, which meshgate holds) could not be converted
        // otherwise; meshgate adopts the Status of those that reach it.
        {"and_filter": {"filters": [
            cel_filter(TRANSCODED),
            {"or_filter": {"filters": [
                {"response_flag_filter": {"flags": ROUTER_FAILURE_FLAGS}},
                cel_filter(RESET_AFTER_HEADERS),
            ]}},
        ]}},
        {"and_filter": {"filters": [
            {"or_filter": {"filters": [
                {"response_flag_filter": {"flags": ROUTER_FAILURE_FLAGS}},
                cel_filter(CODEC_ERROR),
            ]}},
            cel_filter(PLAIN_HTTP),
        ]}},
    ]}})
}

fn reply_mapper(statuses: Value, code: Code) -> Value {
    json!({
        "filter": {"and_filter": {"filters": [statuses, envoy_made_reply()]}},
        "body_format_override": {
            "json_format": {"code": code.as_i32(), "message": "%LOCAL_REPLY_BODY%"},
            "content_type": "application/json",
        },
    })
}

/// CEL access log filter: the request has meshgate's record (Istio: `Telemetry`
/// `accessLogging[].filter.expression`).
pub const RECORD_LOG_FILTER: &str = "'wasm.meshgate.record' in filter_state";

/// `stats_config` for a compiled configuration: Prometheus labels for every meshgate metric,
/// and latency buckets that include every objective's threshold.
pub fn stats_config_for(config: &crate::config::Config) -> Value {
    // Policies' objectives too: a route's policy may bring its own latency threshold.
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

/// `--route name=N,prefix=/p,cluster=C[,policy=P][,disabled]`: a route placed before the
/// per-upstream routes, selecting a policy by metadata or switching meshgate off.
pub fn parse_route(s: &str) -> Result<RouteSpec, String> {
    let mut r = RouteSpec {
        name: String::new(),
        prefix: String::new(),
        cluster: String::new(),
        policy: None,
        disable_filter: false,
    };
    for part in s.split(',') {
        match part.split_once('=') {
            Some(("name", v)) => r.name = v.to_string(),
            Some(("prefix", v)) => r.prefix = v.to_string(),
            Some(("cluster", v)) => r.cluster = v.to_string(),
            Some(("policy", v)) => r.policy = Some(v.to_string()),
            None if part == "disabled" => r.disable_filter = true,
            _ => return Err(format!("--route `{s}`: unknown part `{part}`")),
        }
    }
    for (field, value) in [
        ("name", &r.name),
        ("prefix", &r.prefix),
        ("cluster", &r.cluster),
    ] {
        if value.is_empty() {
            return Err(format!("--route `{s}`: `{field}=` is required"));
        }
    }
    if !r.prefix.starts_with('/') {
        return Err(format!("--route `{s}`: the prefix must start with `/`"));
    }
    Ok(r)
}

/// Routes and policies must agree: a route naming a policy the configuration lacks would
/// be refused on every request.
fn check_routes(routes: &[RouteSpec], config: &crate::config::Config) -> Result<(), String> {
    for r in routes {
        if let Some(p) = r
            .policy
            .as_ref()
            .filter(|p| !config.policies.contains_key(*p))
        {
            return Err(format!(
                "--route {}: policy `{p}` is not defined under `policies`",
                r.name
            ));
        }
    }
    Ok(())
}

pub fn cmd_envoy(args: &[String]) -> Result<(), String> {
    let mut positional = Vec::new();
    let mut wasm = None;
    let mut listen = None;
    let mut admin = None;
    let mut clusters = Vec::new();
    let mut routes = Vec::new();
    let mut ca_file = DEFAULT_CA_FILE.to_string();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--wasm" => wasm = Some(value()?),
            "--listen" => listen = Some(parse_addr(&value()?)?),
            "--admin" => admin = Some(parse_addr(&value()?)?),
            "--cluster" => clusters.push(parse_cluster(&value()?)?),
            "--route" => routes.push(parse_route(&value()?)?),
            "--ca-file" => ca_file = value()?,
            _ => positional.push(a.clone()),
        }
    }
    let (input, output) = positional_and_output(&positional)?;
    let json = compile_file(&input).map_err(|e| e.to_string())?;
    let config = crate::config::compile_json(json.as_bytes()).map_err(|e| e.to_string())?;
    let mut o = EnvoyOptions::new(json, wasm.ok_or("--wasm is required")?);
    o.stats_config = stats_config_for(&config);
    o.buffer_limit_bytes = Some(buffer_limit_for(&config));
    o.upstream_header = config.routing.upstream_header.clone();
    if let Some((a, p)) = listen {
        o.listen_address = a;
        o.listen_port = p;
    }
    if let Some((a, p)) = admin {
        o.admin_address = a;
        o.admin_port = p;
    }
    check_routes(&routes, &config)?;
    let names: Vec<String> = clusters
        .iter()
        .map(|c: &ClusterSpec| c.name.clone())
        .collect();
    o.extra_clusters = jwks_clusters(&config, &names, &ca_file);
    o.clusters = clusters;
    o.routes = routes;
    write_output(output.as_ref(), &render_yaml(&o)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(routes: &[&str]) -> EnvoyOptions {
        let mut o = EnvoyOptions::new("{}".into(), "/m.wasm".into());
        for name in ["payments", "wallets"] {
            o.clusters.push(ClusterSpec {
                name: name.into(),
                address: "127.0.0.1".into(),
                port: 1,
                http2: true,
            });
        }
        o.routes = routes.iter().filter_map(|r| parse_route(r).ok()).collect();
        o
    }

    #[test]
    fn remote_jwks_get_a_cluster_each_unless_one_is_given() {
        let dir = std::env::temp_dir().join(format!("meshgate-envoy-jwks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let proto = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
        let provider = |name: &str, uri: &str, cluster: &str| {
            format!("    - {{name: {name}, issuer: {name}, jwks: {{remote: {{uri: \"{uri}\", cluster: {cluster}}}}}}}\n")
        };
        let yaml = format!(
            "descriptors:\n  files: [meshgate/demo/v1/payments.proto]\n  include: [{}]\n\
             upstreams: {{payments: {{}}, wallets: {{}}}}\nservices:\n  meshgate.demo.v1.Payments: {{upstream: payments, auth: none}}\n  meshgate.demo.v1.Wallets: {{upstream: wallets, auth: none}}\n\
             auth:\n  providers:\n{}{}{}{}",
            proto.display(),
            provider("corp", "https://idp.example.com/.well-known/jwks.json", "idp"),
            provider("corp2", "https://idp.example.com/keys", "idp"),
            provider("local", "http://127.0.0.1:9000/jwks.json", "local-idp"),
            provider("v6", "https://[::1]:8443/jwks", "given"),
        );
        let path = dir.join("gateway.yaml");
        std::fs::write(&path, yaml).unwrap();
        let json = compile_file(&path).unwrap();
        let config = crate::config::compile_json(json.as_bytes()).unwrap();
        let clusters = jwks_clusters(&config, &["given".to_string()], "/ca.pem");
        let _ = std::fs::remove_dir_all(&dir);

        assert_eq!(
            clusters.len(),
            2,
            "one per cluster name, none for a given one"
        );
        let idp = &clusters[0];
        assert_eq!(idp["name"], "idp");
        assert_eq!(idp["type"], "LOGICAL_DNS");
        let addr =
            &idp["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"];
        assert_eq!(addr["socket_address"]["address"], "idp.example.com");
        assert_eq!(addr["socket_address"]["port_value"], 443);
        let tls = &idp["transport_socket"]["typed_config"];
        assert_eq!(tls["sni"], "idp.example.com");
        let validation = &tls["common_tls_context"]["validation_context"];
        assert_eq!(validation["trusted_ca"]["filename"], "/ca.pem");
        assert_eq!(
            validation["match_typed_subject_alt_names"][0]["matcher"]["exact"],
            "idp.example.com"
        );

        let local = &clusters[1];
        assert_eq!(local["name"], "local-idp");
        assert_eq!(local["type"], "STATIC");
        let addr =
            &local["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"];
        assert_eq!(addr["socket_address"]["port_value"], 9000);
        assert!(local.get("transport_socket").is_none(), "http:// is plain");
    }

    #[test]
    fn an_https_jwks_at_an_ip_is_checked_against_an_ip_san_without_sni() {
        let second = std::time::Duration::from_secs(1);
        let rc = crate::auth::RemoteConfig {
            cluster: "idp".into(),
            tls: true,
            authority: "10.0.0.7:8443".into(),
            path: "/jwks".into(),
            discovery: false,
            timeout: second,
            cache_duration: second,
            initial_wait: second,
            refetch_min_interval: second,
        };
        let c = jwks_cluster(&rc, "/ca.pem");
        assert_eq!(c["type"], "STATIC");
        let tls = &c["transport_socket"]["typed_config"];
        assert!(tls.get("sni").is_none(), "{tls}");
        let san =
            &tls["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"][0];
        assert_eq!(san["san_type"], "IP_ADDRESS");
        assert_eq!(san["matcher"]["exact"], "10.0.0.7");
    }

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(
            split_authority("idp.example.com", 443),
            ("idp.example.com", 443)
        );
        assert_eq!(split_authority("idp:8443", 443), ("idp", 8443));
        assert_eq!(split_authority("[::1]:8443", 443), ("::1", 8443));
        assert_eq!(split_authority("[::1]", 80), ("::1", 80));
    }

    #[test]
    fn route_flags_parse_and_refuse_mistakes() {
        let r = parse_route("name=a,prefix=/v1/,cluster=wallets,policy=strict").ok();
        let r = r.filter(|r| r.policy.as_deref() == Some("strict") && !r.disable_filter);
        assert!(r.is_some());
        let d = parse_route("name=d,prefix=/d/,cluster=c,disabled").ok();
        assert!(d.is_some_and(|d| d.disable_filter && d.policy.is_none()));
        for bad in [
            "prefix=/v1/,cluster=c",
            "name=a,prefix=v1,cluster=c",
            "name=a,prefix=/v1/",
            "name=a,prefix=/v1/,cluster=c,colour=red",
            "name=a,prefix=/v1/,cluster=c,enabled",
        ] {
            assert!(parse_route(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_policy_route_is_a_group_that_keeps_the_filters_upstream() {
        let o = options(&["name=strict,prefix=/v1/wallets/,cluster=wallets,policy=strict"]);
        let routes = routes(&o);
        // payments + wallets header routes, the fallback, then upstream-* and default.
        let group: Vec<&Value> = routes.iter().filter(|r| r["name"] == "strict").collect();
        assert_eq!(group.len(), 3);
        for r in &group {
            assert_eq!(
                r["metadata"]["filter_metadata"]["meshgate"]["policy"],
                "strict"
            );
            assert_eq!(r["match"]["prefix"], "/v1/wallets/");
        }
        assert_eq!(group[0]["route"]["cluster"], "payments");
        assert_eq!(
            group[0]["match"]["headers"][0]["string_match"]["exact"],
            "payments"
        );
        assert_eq!(group[2]["route"]["cluster"], "wallets");
        assert!(group[2]["match"].get("headers").is_none());
        assert_eq!(routes.len(), 3 + 2 + 1);
    }

    #[test]
    fn routes_match_the_upstreams_header_value() {
        let mut o = options(&["name=s,prefix=/s/,cluster=payments,policy=p"]);
        o.filter_config_json = r#"{"upstreams":{"wallets":{"header_value":"w"}}}"#.into();
        let exact = |r: &Value| r["match"]["headers"][0]["string_match"]["exact"].clone();
        let routes = routes(&o);
        let values: Vec<Value> = routes.iter().map(exact).collect();
        assert_eq!(values[0], "payments");
        assert_eq!(values[1], "w");
        assert_eq!(values[3], "payments");
        assert_eq!(values[4], "w");
        assert_eq!(routes[4]["route"]["cluster"], "wallets");
    }

    /// The statuses a mapper's first filter matches: (op, status) pairs.
    fn statuses(m: &Value) -> Vec<(String, u64)> {
        let first = &m["filter"]["and_filter"]["filters"][0];
        let list = match first["or_filter"]["filters"].as_array() {
            Some(l) => l.clone(),
            None => vec![first.clone()],
        };
        list.iter()
            .map(|f| {
                let c = &f["status_code_filter"]["comparison"];
                let op = c["op"].as_str().unwrap_or_default().to_string();
                (op, c["value"]["default_value"].as_u64().unwrap_or_default())
            })
            .collect()
    }

    /// The mapper of an `EQ` status.
    fn mapper_for(status: u16) -> Option<Value> {
        let config = local_reply_config();
        let mappers = config["mappers"].as_array()?.clone();
        let want = ("EQ".to_string(), u64::from(status));
        mappers.into_iter().find(|m| statuses(m).contains(&want))
    }

    #[test]
    fn envoys_own_replies_become_status_json_with_the_grpc_code_of_their_status() {
        for (status, code) in [
            (503, 14),
            (502, 14),
            (504, 4),
            (408, 4),
            (431, 8),
            (413, 8),
            (400, 3),
            (404, 5),
            (500, 13),
        ] {
            let m = mapper_for(status).unwrap_or_default();
            let body = &m["body_format_override"];
            assert_eq!(body["json_format"]["code"], code, "{status}");
            assert_eq!(body["json_format"]["message"], "%LOCAL_REPLY_BODY%");
            assert_eq!(body["content_type"], "application/json");
        }
        // Every other error status: still a Status (UNKNOWN), from the last mapper.
        let config = local_reply_config();
        let mappers = config["mappers"].as_array().cloned().unwrap_or_default();
        let last = mappers.last().cloned().unwrap_or_default();
        assert_eq!(statuses(&last), [("GE".to_string(), 400)]);
        assert_eq!(last["body_format_override"]["json_format"]["code"], 2);
        // One mapper per code (mappers are tried in order; the first match applies).
        assert_eq!(mappers.len(), 7);
    }

    #[test]
    fn only_replies_no_filter_converts_are_mapped() {
        let m = mapper_for(503).unwrap_or_default();
        let scope = &m["filter"]["and_filter"]["filters"][1]["or_filter"]["filters"];
        // A transcoded request: every router failure (meshgate adopts the Status of those that
        // reach it; those past it, a reset or timeout after the headers, need this).
        let transcoded = &scope[0]["and_filter"]["filters"];
        let is_transcoded =
            transcoded[0]["extension_filter"]["typed_config"]["expression"].as_str();
        assert_eq!(
            is_transcoded,
            Some("'x-envoy-original-method' in request.headers")
        );
        let failures = &transcoded[1]["or_filter"]["filters"];
        for flag in ["UH", "UF", "UT", "UR", "UC"] {
            let flags = &failures[0]["response_flag_filter"]["flags"];
            assert!(flags.as_array().is_some_and(|f| f.contains(&json!(flag))));
        }
        let reset = failures[1]["extension_filter"]["typed_config"]["expression"].as_str();
        assert!(reset
            .unwrap_or_default()
            .contains("upstream_reset_after_response_started"));
        // Otherwise: a router or codec failure, not meshgate's reply, not a gRPC client.
        let plain = &scope[1]["and_filter"]["filters"];
        let flags = &plain[0]["or_filter"]["filters"][0]["response_flag_filter"]["flags"];
        for flag in ["UH", "UF", "UT", "UR", "UC"] {
            assert!(flags.as_array().is_some_and(|f| f.contains(&json!(flag))));
        }
        let codec = &plain[0]["or_filter"]["filters"][1]["extension_filter"]["typed_config"];
        assert!(codec["expression"]
            .as_str()
            .unwrap_or_default()
            .contains("'http1.'"));
        let rest = plain[1]["extension_filter"]["typed_config"]["expression"].as_str();
        let rest = rest.unwrap_or_default();
        assert!(rest.contains("response.code_details != 'meshgate'"));
        assert!(rest.contains("!('x-envoy-original-method' in request.headers)"));
        assert!(rest.contains("startsWith('application/grpc')"));
    }

    #[test]
    fn the_listener_buffers_the_largest_body_meshgate_accepts() {
        let gateway = concat!(env!("CARGO_MANIFEST_DIR"), "/envoy/gateway.yaml");
        let json = compile_file(std::path::Path::new(gateway)).unwrap();
        let mut owned = crate::config::compile_json(json.as_bytes()).unwrap();
        let config = &mut owned;
        config.limits.max_request_bytes = 4 << 20;
        config.limits.max_response_bytes = 16 << 20;
        assert_eq!(buffer_limit_for(config), (16 << 20) + (64 << 10));
        config.limits.max_response_bytes = 1 << 20;
        assert_eq!(buffer_limit_for(config), 8 << 20);
        config.limits.max_response_bytes = usize::MAX;
        assert_eq!(buffer_limit_for(config), u32::MAX);
        let mut o = options(&[]);
        let b = bootstrap(&o);
        let listener = &b["static_resources"]["listeners"][0];
        assert!(listener.get("per_connection_buffer_limit_bytes").is_none());
        o.buffer_limit_bytes = Some(buffer_limit_for(config));
        let b = bootstrap(&o);
        let listener = &b["static_resources"]["listeners"][0];
        assert_eq!(listener["per_connection_buffer_limit_bytes"], u32::MAX);
    }

    #[test]
    fn the_bootstrap_carries_the_local_reply_config() {
        let b = bootstrap(&options(&[]));
        let hcm = &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0];
        assert_eq!(
            hcm["typed_config"]["local_reply_config"],
            local_reply_config()
        );
    }

    #[test]
    fn a_disabled_route_is_one_route_with_the_filter_off() {
        let o = options(&["name=d,prefix=/d/,cluster=wallets,disabled"]);
        let routes = routes(&o);
        assert_eq!(routes.len(), 1 + 2 + 1);
        let first = routes.first().cloned().unwrap_or_default();
        assert_eq!(first["name"], "d");
        assert_eq!(
            first["typed_per_filter_config"][WASM_FILTER_NAME]["disabled"],
            true
        );
    }
}
