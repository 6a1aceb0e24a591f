//! Render an Envoy bootstrap that runs meshgate: one listener, the wasm filter with the
//! compiled configuration, one route per upstream (matched on the routing header the filter
//! sets), and the upstream clusters. `make run` and the end-to-end tests use it; users can start
//! from its output. The bootstrap is built from typed Envoy messages ([`types`]) and written
//! as YAML.

pub mod browser;
#[cfg(test)]
mod browser_tests;
mod cluster;
pub mod edge;
#[cfg(test)]
mod edge_tests;
pub mod envoy_record;
mod health;
mod listener;
mod local_reply;
pub mod native;
pub mod openapi_route;
pub mod ratelimit;
mod streams;
#[cfg(test)]
mod tests;
pub mod tls;
#[cfg(test)]
mod tls_tests;
pub mod tls_upstream;
pub mod tracing;
pub mod types;

use std::path::PathBuf;

pub use cluster::{jwks_clusters, DEFAULT_CA_FILE, HTTP_PROTOCOL_OPTIONS};
pub use listener::{plugin_config, HCM_FILTER_NAME};
pub use local_reply::{envoy_reply_code, local_reply_config};
use types::{
    Address, Admin, Bootstrap, Cluster, HistogramBucketSettings, RegexMatcher, StaticResources,
    StatsConfig, StringMatcher, TagSpecifier,
};

use super::{compile_file, write_output};

/// An upstream cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    pub name: String,
    pub address: String,
    pub port: u16,
    /// gRPC upstreams speak HTTP/2; REST upstreams HTTP/1.1.
    pub http2: bool,
}

/// An extra route, placed before the per-upstream routes (per-route policy examples).
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// `--native`: the dynamic-module filter loading this module instead of the wasm filter.
    pub native_path: Option<String>,
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
    /// Extra Envoy clusters (JWKS servers, for example).
    pub extra_clusters: Vec<Cluster>,
    /// meshgate's `stats_config` (labels via `stats_tags`, latency buckets); see
    /// [`stats_config_for`].
    pub stats_config: StatsConfig,
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
    /// The edge protections (timeouts, header and HTTP/2 limits, rapid-reset mitigation,
    /// connection limit, overload manager).
    pub edge: edge::Edge,
    /// The TLS listener (and mTLS), if any.
    pub tls: Option<tls::Tls>,
    /// TLS to upstream clusters, per cluster.
    pub upstream_tls: Vec<tls_upstream::UpstreamTlsSpec>,
    /// OpenTelemetry traces to a collector, if any.
    pub tracing: Option<tracing::Tracing>,
    /// Active gRPC health checks and outlier detection on the `clusters` ([`health`]).
    pub upstream_health: bool,
    /// The OpenAPI document served at `openapi.path` ([`openapi_route`]).
    pub openapi: Option<openapi_route::ServedOpenapi>,
}

impl EnvoyOptions {
    pub fn new(filter_config_json: String, wasm_path: String) -> EnvoyOptions {
        EnvoyOptions {
            filter_config_json,
            wasm_path,
            native_path: None,
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
            stats_config: StatsConfig::default(),
            access_log_path: Some("/dev/stdout".into()),
            buffer_limit_bytes: None,
            generate_request_id: true,
            edge: edge::Edge::default(),
            tls: None,
            upstream_tls: Vec::new(),
            tracing: None,
            upstream_health: false,
            openapi: None,
        }
    }
}

pub const WASM_FILTER_NAME: &str = "envoy.filters.http.wasm";

/// CEL access log filter: the request has meshgate's record (Istio: `Telemetry`
/// `accessLogging[].filter.expression`).
pub const RECORD_LOG_FILTER: &str = "'wasm.meshgate.record' in filter_state";

/// The bootstrap for `o` (serialize it: Envoy reads JSON and YAML alike).
pub fn bootstrap(o: &EnvoyOptions) -> Bootstrap {
    let mut clusters: Vec<Cluster> = o.clusters.iter().map(Cluster::from).collect();
    tls_upstream::apply(&o.upstream_tls, &mut clusters);
    if o.upstream_health {
        health::apply(&mut clusters);
    }
    clusters.extend(o.tracing.as_ref().map(tracing::otlp_cluster));
    clusters.extend(o.extra_clusters.iter().cloned());
    // The rate limit service's cluster, unless one of that name is given.
    if let Some(rls) = ratelimit::for_options(o).cluster {
        if !clusters.iter().any(|c| c.name == rls.name) {
            clusters.push(Cluster::from(&rls));
        }
    }
    Bootstrap {
        node: tls::node(o),
        admin: Admin {
            address: Address::socket(&o.admin_address, o.admin_port),
        },
        stats_config: o.stats_config.clone(),
        static_resources: StaticResources {
            listeners: listener::listeners(o),
            clusters,
        },
        overload_manager: edge::overload_manager(&o.edge),
        memory_allocator_manager: edge::memory_allocator_manager(&o.edge),
        layered_runtime: edge::layered_runtime(&o.edge),
    }
}

pub fn render_yaml(o: &EnvoyOptions) -> Result<String, String> {
    serde_yaml_ng::to_string(&bootstrap(o)).map_err(|e| e.to_string())
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

/// `stats_config` for a compiled configuration: Prometheus labels for every meshgate metric,
/// and latency buckets that include every objective's threshold.
pub fn stats_config_for(config: &crate::config::Config) -> StatsConfig {
    // Policies' objectives too: a route's policy may bring its own latency threshold.
    let policies = config.policies.values().filter_map(|p| p.slo.as_ref());
    let slos: Vec<&crate::observe::Slo> = config
        .operations
        .iter()
        .map(|o| &o.slo)
        .chain(policies)
        .collect();
    let buckets = crate::observe::histogram_buckets(&slos, &config.observe.latency_buckets_ms);
    let names = &config.observe.names;
    StatsConfig {
        stats_tags: names
            .stats_tags()
            .into_iter()
            .map(|(tag_name, regex)| TagSpecifier { tag_name, regex })
            .collect(),
        histogram_bucket_settings: vec![HistogramBucketSettings {
            matcher: StringMatcher::SafeRegex(RegexMatcher {
                regex: names.latency_histogram_regex(),
            }),
            buckets,
        }],
    }
}

/// `HOST:PORT`.
pub fn parse_addr(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("`{s}` is not HOST:PORT"))?;
    let port = port.parse().map_err(|_| format!("`{s}`: bad port"))?;
    Ok((host.to_string(), port))
}

/// `--cluster NAME=HOST:PORT[/h1]`.
pub fn parse_cluster(s: &str) -> Result<ClusterSpec, String> {
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

/// `meshgate envoy`.
#[derive(Debug, Clone, clap::Args)]
pub struct EnvoyArgs {
    /// The gateway configuration (YAML).
    #[arg(value_name = "GATEWAY.YAML")]
    pub input: PathBuf,
    /// The module Envoy loads (`vm_config.code.local.filename`).
    #[arg(long, value_name = "PATH", required_unless_present = "native")]
    pub wasm: Option<String>,
    /// Load meshgate's native module (an Envoy dynamic module, build/libmeshgate_native.so)
    /// instead of the wasm module: docs/native.md.
    #[arg(long, value_name = "PATH")]
    pub native: Option<String>,
    /// The listener's address [default: 127.0.0.1:8080].
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_addr)]
    pub listen: Option<(String, u16)>,
    /// Envoy's admin address [default: 127.0.0.1:9901].
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_addr)]
    pub admin: Option<(String, u16)>,
    /// An upstream cluster, HTTP/2 unless `/h1` follows. Repeatable.
    #[arg(long = "cluster", value_name = "NAME=HOST:PORT[/h1]", value_parser = parse_cluster)]
    pub clusters: Vec<ClusterSpec>,
    /// A route placed before the per-upstream routes: it selects a policy (route metadata) or
    /// switches meshgate off. Repeatable.
    #[arg(
        long = "route",
        value_name = "name=N,prefix=/P,cluster=C[,policy=POLICY][,disabled]",
        value_parser = parse_route
    )]
    pub routes: Vec<RouteSpec>,
    /// The CA bundle the rendered `https://` JWKS clusters trust.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CA_FILE)]
    pub ca_file: String,
    /// Where to write the bootstrap (default: stdout).
    #[arg(short, long, value_name = "ENVOY.YAML")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub edge: edge::EdgeArgs,
    #[command(flatten)]
    pub tls: tls::TlsArgs,
    /// TLS to an upstream: the CA that verifies it, SNI, the DNS SAN required (default: the
    /// SNI), a client certificate. Repeatable, one per --cluster.
    #[arg(
        long = "upstream-tls",
        value_name = "NAME,ca=PATH[,sni=HOST][,san=NAME][,cert=PATH,key=PATH]",
        value_parser = tls_upstream::parse_upstream_tls
    )]
    pub upstream_tls: Vec<tls_upstream::UpstreamTlsSpec>,
    #[command(flatten)]
    pub tracing: tracing::TracingArgs,
    /// Render no active gRPC health checks and no outlier detection on the --cluster upstreams.
    #[arg(long)]
    pub no_upstream_health: bool,
}

pub fn run(args: &EnvoyArgs) -> Result<(), String> {
    let json = compile_file(&args.input).map_err(|e| e.to_string())?;
    let config = crate::config::compile_json(json.as_bytes()).map_err(|e| e.to_string())?;
    let mut o = EnvoyOptions::new(json, args.wasm.clone().unwrap_or_default());
    o.native_path = args.native.clone();
    o.stats_config = stats_config_for(&config);
    if o.native_path.is_some() {
        native::adapt_stats(&mut o.stats_config);
    }
    o.buffer_limit_bytes = Some(buffer_limit_for(&config));
    o.upstream_header = config.routing.upstream_header.clone();
    o.edge = args.edge.edge();
    let file_tls = crate::cli::listener_tls(&args.input).map_err(|e| e.to_string())?;
    o.tls = args.tls.tls_with(file_tls.as_ref())?;
    o.tracing = args.tracing.tracing()?;
    o.upstream_health = !args.no_upstream_health;
    if let Some((a, p)) = &args.listen {
        o.listen_address = a.clone();
        o.listen_port = *p;
    }
    if let Some((a, p)) = &args.admin {
        o.admin_address = a.clone();
        o.admin_port = *p;
    }
    check_routes(&args.routes, &config)?;
    let names: Vec<String> = args.clusters.iter().map(|c| c.name.clone()).collect();
    o.extra_clusters = jwks_clusters(&config, &names, &args.ca_file);
    tls_upstream::check(&args.upstream_tls, &args.clusters)?;
    o.upstream_tls = args.upstream_tls.clone();
    o.clusters = args.clusters.clone();
    o.routes = args.routes.clone();
    o.openapi = openapi_route::for_input(&args.input, &o.filter_config_json)?;
    write_output(args.output.as_ref(), &render_yaml(&o)?)
}
