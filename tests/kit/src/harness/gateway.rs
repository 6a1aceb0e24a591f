//! A whole gateway for end-to-end tests: demo backends, the meshgate module in a real Envoy,
//! configured from a gateway YAML exactly as `meshgate envoy` would.

use std::path::{Path, PathBuf};

use meshgate::cli::envoy::types::Cluster;
use meshgate::cli::envoy::{
    bootstrap, buffer_limit_for, stats_config_for, ClusterSpec, EnvoyOptions, RouteSpec,
};
use serde_json::Value;

use super::flavour::Flavour;
use super::{
    config_file, free_port, repo_root, start_backend, start_envoy_with_workers, Backend, Envoy,
};
use crate::error::{KitError, KitResult};

/// The module under test: `MESHGATE_WASM`, else `<repo>/build/meshgate.wasm` (`make wasm`).
pub fn wasm_path() -> KitResult<PathBuf> {
    let p = std::env::var_os("MESHGATE_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("build/meshgate.wasm"));
    if p.is_file() {
        Ok(p)
    } else {
        Err(KitError::new(format!(
            "{} not found: run `make wasm` (or set MESHGATE_WASM)",
            p.display()
        )))
    }
}

/// The filter JSON for a gateway YAML file (compiled, descriptor set embedded, validated).
pub fn filter_config(yaml: &Path) -> KitResult<String> {
    meshgate::cli::compile_file(yaml).map_err(|e| KitError::new(e.to_string()))
}

/// An upstream to start: a demo gRPC backend serving `services`, or a REST echo backend.
pub enum UpstreamKind {
    Grpc { services: String },
    Rest,
}

pub struct GatewayBuilder {
    /// The gateway file, or why a preset could not write it (reported by `start`).
    yaml: KitResult<PathBuf>,
    upstreams: Vec<(String, UpstreamKind)>,
    routes: Vec<RouteSpec>,
    extra_clusters: Vec<Cluster>,
    /// Access logs added to the connection manager's, after meshgate's.
    access_logs: Vec<Value>,
    failure_policy: String,
    wasm: Option<PathBuf>,
    /// Run the flavour's test build (its test triggers): [`Flavour::test_module_path`].
    test_module: bool,
    route_timeout_s: u32,
    /// The filter JSON to run instead of compiling `yaml` (Istio's `pluginConfig`, say).
    filter_json: Option<String>,
    /// Keep the plugin's `allow_on_headers_stop_iteration` (false: as istiod renders a
    /// WasmPlugin).
    headers_pause: bool,
    /// The connection manager's `generate_request_id` (Envoy's default, true).
    envoy_request_ids: bool,
    /// The HTTP connection manager's `max_request_headers_kb` (Envoy's default, 60, when
    /// unset; at most 8192).
    max_request_headers_kb: Option<u32>,
    /// Envoy's `--file-flush-interval-msec` (how late the access log reaches stdout). `None`
    /// (the default): Envoy's own (10 s), as users run it; the harness reads records through
    /// [`Envoy::flush_access_logs`] instead, so no test needs a faster flush.
    file_flush_interval_ms: Option<u32>,
    /// Envoy's worker threads (`--concurrency`), 1 by default.
    workers: u32,
    /// Changes to the rendered options before the bootstrap is made (TLS, tracing, health).
    envoy_options: Vec<EnvoyOptionsFn>,
    /// The build of meshgate Envoy runs ([`Flavour::from_env`] unless a test names one; a bad
    /// `MESHGATE_FLAVOUR` fails `start`).
    flavour: KitResult<Flavour>,
    /// Changes to the rendered bootstrap (JSON) before Envoy starts: what no option renders
    /// (a route's retry policy, say).
    bootstrap_edits: Vec<BootstrapFn>,
}

/// A change to the rendered bootstrap (see [`GatewayBuilder::edit_bootstrap`]).
pub type BootstrapFn = Box<dyn FnOnce(&mut Value) -> KitResult<()> + Send>;

/// A change to [`EnvoyOptions`] (see [`GatewayBuilder::envoy_options`]).
pub type EnvoyOptionsFn = Box<dyn FnOnce(&mut EnvoyOptions) + Send>;

pub struct Gateway {
    pub envoy: Envoy,
    /// Started upstreams by cluster name.
    pub backends: Vec<(String, Backend)>,
    /// The filter JSON Envoy runs.
    pub filter_json: String,
}

impl Gateway {
    /// `http://127.0.0.1:<listener>` + path.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.envoy.listener_port)
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.envoy.listener_port))
    }

    /// meshgate's access records: the JSON lines Envoy's access log wrote to stdout.
    pub fn access_records(&self) -> Vec<Value> {
        self.envoy.access_records()
    }

    /// The access record of the request sent with `x-request-id: request_id` (see
    /// [`Envoy::record_for`]).
    pub fn record_for(&self, request_id: &str) -> Option<Value> {
        self.envoy.record_for(request_id)
    }
}

impl GatewayBuilder {
    /// `envoy/gateway.yaml` with the payments and wallets backends.
    pub fn demo() -> GatewayBuilder {
        GatewayBuilder::new(repo_root().join("envoy/gateway.yaml")).demo_upstreams()
    }

    /// `envoy/gateway.yaml` with `extra` (YAML: top-level sections) merged over it, maps key by
    /// key (`"limits:\n  max_json_depth: 8\n"`), and the demo backends: a test sets options
    /// without a file in the repository.
    pub fn demo_with(extra: &str) -> GatewayBuilder {
        GatewayBuilder::with_file(config_file::demo_with("demo", extra)).demo_upstreams()
    }

    /// The gateway document `doc` (the demo protos, upstreams and services, with `doc` merged
    /// over them; see [`config_file::demo_doc`]), written to a fresh temporary file named
    /// after `tag`, and the demo backends.
    pub fn demo_doc(tag: &str, doc: Value) -> GatewayBuilder {
        GatewayBuilder::with_file(config_file::demo_doc(tag, doc)).demo_upstreams()
    }

    /// The demo gRPC backends: `payments` and `wallets`, each serving its service.
    pub fn demo_upstreams(self) -> Self {
        self.grpc_upstream("payments", "payments")
            .grpc_upstream("wallets", "wallets")
    }

    /// Any gateway YAML (paths inside it are relative to it).
    pub fn new(yaml: impl Into<PathBuf>) -> GatewayBuilder {
        GatewayBuilder::with_file(Ok(yaml.into()))
    }

    fn with_file(yaml: KitResult<PathBuf>) -> GatewayBuilder {
        GatewayBuilder {
            yaml,
            upstreams: Vec::new(),
            routes: Vec::new(),
            extra_clusters: Vec::new(),
            access_logs: Vec::new(),
            // What `meshgate envoy` renders and users run.
            failure_policy: "FAIL_RELOAD".into(),
            wasm: None,
            test_module: false,
            route_timeout_s: 15,
            filter_json: None,
            headers_pause: true,
            envoy_request_ids: true,
            max_request_headers_kb: None,
            file_flush_interval_ms: None,
            workers: 1,
            envoy_options: Vec::new(),
            flavour: Flavour::from_env(),
            bootstrap_edits: Vec::new(),
        }
    }

    /// Run this flavour instead of the one `MESHGATE_FLAVOUR` names.
    pub fn flavour(mut self, flavour: Flavour) -> Self {
        self.flavour = Ok(flavour);
        self
    }

    /// Change the rendered bootstrap (as JSON) before Envoy starts, after the builder's own
    /// changes; an error fails `start`.
    pub fn edit_bootstrap(
        mut self,
        f: impl FnOnce(&mut Value) -> KitResult<()> + Send + 'static,
    ) -> Self {
        self.bootstrap_edits.push(Box::new(f));
        self
    }

    /// Change the options `meshgate envoy` renders from, after the builder has set its own
    /// (a TLS listener, tracing, health checks: what the command's flags set).
    pub fn envoy_options(mut self, f: impl FnOnce(&mut EnvoyOptions) + Send + 'static) -> Self {
        self.envoy_options.push(Box::new(f));
        self
    }

    /// Flush Envoy's access log to stdout every `ms` (default: Envoy's own, 10 s). Only for a
    /// test that must see records without asking Envoy to flush (say so where it is used).
    pub fn file_flush_interval_ms(mut self, ms: u32) -> Self {
        self.file_flush_interval_ms = Some(ms);
        self
    }

    /// Run Envoy with `n` worker threads (one meshgate VM each), as production does.
    pub fn workers(mut self, n: u32) -> Self {
        self.workers = n;
        self
    }

    /// Raise (or lower) the listener's limit on request headers: Envoy's codec refuses larger
    /// headers with 431 before any filter runs, 60 KiB by default, 8192 KiB at most.
    pub fn max_request_headers_kb(mut self, kb: u32) -> Self {
        self.max_request_headers_kb = Some(kb);
        self
    }

    /// Run the plugin without `allow_on_headers_stop_iteration`, as istiod renders a WasmPlugin
    /// (Envoy then holds the whole stream when the filter pauses headers). No effect on the
    /// native flavour, whose filter has no such setting.
    pub fn without_headers_pause(mut self) -> Self {
        self.headers_pause = false;
        self
    }

    /// Whether Envoy's connection manager gives requests without an `x-request-id` one
    /// (`generate_request_id`, default true) before the filter runs. `false` leaves it to
    /// meshgate (`routing.generate_request_id`).
    pub fn envoy_request_ids(mut self, on: bool) -> Self {
        self.envoy_request_ids = on;
        self
    }

    /// Run this filter JSON instead of the YAML's compiled configuration.
    pub fn filter_json(mut self, json: impl Into<String>) -> Self {
        self.filter_json = Some(json.into());
        self
    }

    pub fn grpc_upstream(mut self, cluster: &str, services: &str) -> Self {
        let kind = UpstreamKind::Grpc {
            services: services.to_string(),
        };
        self.upstreams.push((cluster.to_string(), kind));
        self
    }

    pub fn rest_upstream(mut self, cluster: &str) -> Self {
        self.upstreams
            .push((cluster.to_string(), UpstreamKind::Rest));
        self
    }

    /// A route placed before the per-upstream routes (per-route policy, filter disabled...).
    pub fn route(mut self, route: RouteSpec) -> Self {
        self.routes.push(route);
        self
    }

    /// Routes placed before the per-upstream routes, in order (see [`GatewayBuilder::route`]).
    pub fn routes(self, routes: impl IntoIterator<Item = RouteSpec>) -> Self {
        routes.into_iter().fold(self, GatewayBuilder::route)
    }

    /// Applies `options` (a suite's set of builder calls) when `on`.
    pub fn when(self, on: bool, options: impl FnOnce(Self) -> Self) -> Self {
        if on {
            options(self)
        } else {
            self
        }
    }

    /// One more Envoy access log on the listener (an `envoy.access_loggers.*` entry), as a
    /// user logging meshgate's filter state with Envoy's own formats would add.
    pub fn access_log(mut self, log: Value) -> Self {
        self.access_logs.push(log);
        self
    }

    /// An extra Envoy cluster (a JWKS server, for example).
    pub fn cluster(mut self, cluster: Cluster) -> Self {
        self.extra_clusters.push(cluster);
        self
    }

    pub fn failure_policy(mut self, policy: &str) -> Self {
        self.failure_policy = policy.to_string();
        self
    }

    pub fn wasm(mut self, path: impl Into<PathBuf>) -> Self {
        self.wasm = Some(path.into());
        self
    }

    /// Run the test build of the flavour's module (`build/meshgate-test.wasm` or
    /// `build/libmeshgate_native-test.so`: `x-meshgate-test-trap` and friends).
    pub fn test_module(mut self) -> Self {
        self.test_module = true;
        self
    }

    pub fn route_timeout_s(mut self, seconds: u32) -> Self {
        self.route_timeout_s = seconds;
        self
    }

    /// Start the upstreams, then Envoy; waits until Envoy is ready.
    pub fn start(self) -> KitResult<Gateway> {
        let yaml = self.yaml.as_ref().ok().cloned();
        let filter_json = match self.filter_json {
            Some(j) => j,
            None => filter_config(&self.yaml?)?,
        };
        let config = meshgate::config::compile_json(filter_json.as_bytes())
            .map_err(|e| KitError::new(e.to_string()))?;
        let mut backends = Vec::new();
        let mut clusters = Vec::new();
        for (name, kind) in &self.upstreams {
            let (backend, http2) = match kind {
                UpstreamKind::Grpc { services } => (start_backend(name, services)?, true),
                UpstreamKind::Rest => (super::start_rest_backend(name)?, false),
            };
            clusters.push(ClusterSpec {
                name: name.clone(),
                address: "127.0.0.1".into(),
                port: backend.addr.port(),
                http2,
            });
            backends.push((name.clone(), backend));
        }
        let flavour = self.flavour?;
        let module = match (flavour, self.wasm) {
            _ if self.test_module => flavour.test_module_path()?,
            (Flavour::Wasm, Some(p)) => p,
            (flavour, _) => flavour.module_path()?,
        };
        let mut o = EnvoyOptions::new(filter_json.clone(), module.display().to_string());
        o.listen_port = free_port()?;
        o.admin_port = free_port()?;
        o.clusters = clusters;
        o.routes = self.routes;
        o.extra_clusters = self.extra_clusters;
        o.failure_policy = self.failure_policy;
        o.route_timeout_s = self.route_timeout_s;
        o.stats_config = stats_config_for(&config);
        super::flavour::configure(flavour, &mut o, &module)?;
        o.buffer_limit_bytes = Some(buffer_limit_for(&config));
        o.upstream_header = config.routing.upstream_header.clone();
        o.generate_request_id = self.envoy_request_ids;
        // `openapi.path`: the document's route, as `meshgate envoy` renders it.
        if let Some(yaml) = &yaml {
            o.openapi = meshgate::cli::envoy::openapi_route::for_input(yaml, &filter_json)
                .map_err(KitError::new)?;
        }
        for f in self.envoy_options {
            f(&mut o);
        }
        let mut b =
            serde_json::to_value(bootstrap(&o)).map_err(|e| KitError::new(e.to_string()))?;
        // The dynamic-modules filter has no such flag: it always holds what the module pauses.
        if !self.headers_pause && flavour == Flavour::Wasm {
            // meshgate's filter by name (Envoy's browser filters come first where rendered).
            let filter = b
                .pointer_mut("/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/http_filters")
                .and_then(Value::as_array_mut)
                .and_then(|filters| {
                    filters
                        .iter_mut()
                        .find(|f| f["name"] == meshgate::cli::envoy::WASM_FILTER_NAME)
                })
                .and_then(|f| f.pointer_mut("/typed_config/config"))
                .and_then(Value::as_object_mut)
                .ok_or_else(|| KitError::new("the bootstrap has no wasm filter config"))?;
            filter
                .remove("allow_on_headers_stop_iteration")
                .ok_or_else(|| {
                    KitError::new("the wasm filter had no allow_on_headers_stop_iteration")
                })?;
        }
        if !self.access_logs.is_empty() {
            b.pointer_mut(
                "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/access_log",
            )
            .and_then(Value::as_array_mut)
            .ok_or_else(|| KitError::new("the bootstrap's connection manager has no access_log"))?
            .extend(self.access_logs);
        }
        for edit in self.bootstrap_edits {
            edit(&mut b)?;
        }
        if let Some(kb) = self.max_request_headers_kb {
            let hcm = b
                .pointer_mut("/static_resources/listeners/0/filter_chains/0/filters/0/typed_config")
                .and_then(Value::as_object_mut)
                .ok_or_else(|| KitError::new("the bootstrap has no HTTP connection manager"))?;
            hcm.insert("max_request_headers_kb".into(), Value::from(kb));
        }
        let yaml = serde_yaml_ng::to_string(&b).map_err(|e| KitError::new(e.to_string()))?;
        let mut args = vec!["--component-log-level".to_string(), "wasm:info".to_string()];
        if let Some(ms) = self.file_flush_interval_ms {
            args.extend(["--file-flush-interval-msec".to_string(), ms.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let envoy = start_envoy_with_workers(&yaml, &args, self.workers)?;
        Ok(Gateway {
            envoy,
            backends,
            filter_json,
        })
    }
}
