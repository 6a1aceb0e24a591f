//! The bootstrap's listener: the HTTP connection manager with meshgate's wasm filter, the
//! routes (per-route policies, one route per upstream on the routing header), the access log
//! of meshgate's records and the local reply mappers.

use std::collections::BTreeMap;

use super::local_reply::{cel_filter, local_reply_config};
use super::types::{
    AccessLog, Address, Any, AsyncDataSource, CodecType, DataSource, FileAccessLog, FilterChain,
    FilterConfig, FilterMetadata, HeaderMatcher, HttpConnectionManager, InlineString, Listener,
    MeshgateMetadata, Metadata, NamedFilter, PluginConfig, Route, RouteAction, RouteConfiguration,
    RouteMatch, Router, StringMatcher, StringValue, SubstitutionFormatString, VirtualHost,
    VmConfig, Wasm,
};
use super::{EnvoyOptions, RouteSpec, RECORD_LOG_FILTER, WASM_FILTER_NAME};

/// The HTTP connection manager's network filter name.
pub const HCM_FILTER_NAME: &str = "envoy.filters.network.http_connection_manager";

/// The gateway's listeners: the plaintext one (meshgate's, or a redirect to HTTPS) and, with
/// TLS, the TLS one with the same connection manager ([`super::tls`]).
pub(super) fn listeners(o: &EnvoyOptions) -> Vec<Listener> {
    let Some(t) = &o.tls else {
        return vec![listener(o)];
    };
    let plaintext = if t.redirect_plaintext {
        super::tls::redirect_listener(o, t)
    } else {
        listener(o)
    };
    vec![
        plaintext,
        super::tls::tls_listener(o, t, connection_manager(o)),
    ]
}

pub(super) fn listener(o: &EnvoyOptions) -> Listener {
    Listener {
        name: "gateway".into(),
        address: Address::socket(&o.listen_address, o.listen_port),
        filter_chains: vec![FilterChain {
            filters: vec![NamedFilter {
                name: HCM_FILTER_NAME.into(),
                typed_config: Any::HttpConnectionManager(Box::new(connection_manager(o))),
            }],
            transport_socket: None,
        }],
        per_connection_buffer_limit_bytes: o.buffer_limit_bytes,
    }
}

fn connection_manager(o: &EnvoyOptions) -> HttpConnectionManager {
    let browser = super::browser::Browser::from_filter_json(&o.filter_config_json);
    // Client quotas: Envoy's local rate limit after meshgate (it reads meshgate's headers).
    let quotas = super::ratelimit::for_options(o);
    let mut local_reply = local_reply_config();
    local_reply.mappers.splice(0..0, quotas.mapper);
    // Browser filters first (their CORS headers land on meshgate's own replies too), then
    // meshgate, then the quotas, then the router.
    let mut http_filters = match &browser {
        Some(_) => super::browser::browser_filters(),
        None => Vec::new(),
    };
    // Tracing: the gateway span's context for meshgate's own calls, before everything.
    if let Some(t) = &o.tracing {
        http_filters.insert(0, super::tracing::span_context_filter(t));
    }
    http_filters.push(wasm_filter(o));
    http_filters.extend(quotas.filters);
    http_filters.push(NamedFilter {
        name: "envoy.filters.http.router".into(),
        typed_config: Any::Router(Router {}),
    });
    let mut hcm = HttpConnectionManager {
        stat_prefix: Some("gateway".into()),
        codec_type: Some(CodecType::Auto),
        access_log: Some(access_log(o)),
        local_reply_config: Some(local_reply),
        route_config: Some(RouteConfiguration {
            name: "gateway".into(),
            virtual_hosts: vec![VirtualHost {
                name: "all".into(),
                domains: vec!["*".into()],
                routes: routes(o),
                typed_per_filter_config: browser
                    .as_ref()
                    .map(super::browser::Browser::virtual_host_config)
                    .unwrap_or_default(),
            }],
            max_direct_response_body_size_bytes: super::openapi_route::max_body(o.openapi.as_ref()),
        }),
        http_filters: Some(http_filters),
        generate_request_id: (!o.generate_request_id).then_some(false),
        always_set_request_id_in_response: browser.is_some().then_some(true),
        tracing: o.tracing.as_ref().map(super::tracing::hcm_tracing),
        early_header_mutation_extensions: o.tracing.as_ref().map(|_| super::tracing::b3_in()),
        ..HttpConnectionManager::default()
    };
    let buffer = o
        .buffer_limit_bytes
        .unwrap_or(super::edge::ENVOY_DEFAULT_BUFFER_LIMIT);
    super::edge::apply_to_hcm(&o.edge, buffer, &mut hcm);
    hcm
}

/// Envoy's `PluginConfig` for meshgate with the module at `code` (the same for `meshgate envoy`
/// and the Istio EnvoyFilter).
pub fn plugin_config(
    name: &str,
    code: AsyncDataSource,
    filter_config_json: &str,
    failure_policy: &str,
) -> PluginConfig {
    PluginConfig {
        name: name.into(),
        root_id: name.into(),
        vm_config: VmConfig {
            vm_id: name.into(),
            runtime: "envoy.wasm.runtime.v8".into(),
            code,
        },
        configuration: Any::StringValue(StringValue {
            value: filter_config_json.to_string(),
        }),
        failure_policy: failure_policy.to_string(),
        // Without it, pausing request headers stalls the body (ENVOY_NOTES).
        allow_on_headers_stop_iteration: true,
    }
}

fn wasm_filter(o: &EnvoyOptions) -> NamedFilter {
    if let Some(path) = &o.native_path {
        return super::native::filter(o, path);
    }
    let code = AsyncDataSource::Local(DataSource {
        filename: o.wasm_path.clone(),
    });
    NamedFilter {
        name: WASM_FILTER_NAME.into(),
        typed_config: Any::Wasm(Box::new(Wasm {
            config: plugin_config("meshgate", code, &o.filter_config_json, &o.failure_policy),
        })),
    }
}

fn route_action(cluster: &str, timeout_s: u32) -> RouteAction {
    RouteAction {
        cluster: cluster.to_string(),
        timeout: format!("{timeout_s}s"),
        idle_timeout: None,
    }
}

pub(super) fn header_match(o: &EnvoyOptions, value: String) -> Vec<HeaderMatcher> {
    vec![HeaderMatcher {
        name: o.upstream_header.clone(),
        string_match: StringMatcher::Exact(value),
    }]
}

/// A route of `r`'s: its name, prefix, metadata and per-filter config, going to `cluster`,
/// optionally only when the routing header names `header_value`.
fn spec_route(o: &EnvoyOptions, r: &RouteSpec, cluster: &str, value: Option<String>) -> Route {
    let mut per_filter = BTreeMap::new();
    if r.disable_filter {
        let off = Any::FilterConfig(FilterConfig { disabled: true });
        per_filter.insert(WASM_FILTER_NAME.to_string(), off);
    }
    // A policy that tightens the `cors` section: its routes carry their own CORS policy.
    let browser = super::browser::Browser::from_filter_json(&o.filter_config_json);
    if let Some((name, cors)) = browser.and_then(|b| b.route_config(r.policy.as_deref())) {
        per_filter.insert(name, cors);
    }
    Route {
        name: r.name.clone(),
        matcher: RouteMatch {
            prefix: r.prefix.clone(),
            path: None,
            headers: value.map(|v| header_match(o, v)).unwrap_or_default(),
        },
        route: route_action(cluster, o.route_timeout_s),
        direct_response: None,
        response_headers_to_add: Vec::new(),
        metadata: r.policy.as_ref().map(|p| Metadata {
            filter_metadata: FilterMetadata {
                meshgate: MeshgateMetadata { policy: p.clone() },
            },
        }),
        typed_per_filter_config: per_filter,
    }
}

/// The routes of one [`RouteSpec`]. With meshgate on, one route per upstream (matched on the
/// routing header) then the fallback to `r.cluster`, all with the same name and metadata:
/// Envoy picks the policy before meshgate strips a spoofed routing header, so a client cannot
/// pick another route's policy with one, and after meshgate sets the header the request
/// still goes to its operation's upstream. With meshgate off, one route to `r.cluster`.
fn spec_routes(o: &EnvoyOptions, r: &RouteSpec) -> Vec<Route> {
    let mut out = Vec::new();
    if !r.disable_filter {
        for c in &o.clusters {
            out.push(spec_route(o, r, &c.name, Some(header_value(o, &c.name))));
        }
    }
    out.push(spec_route(o, r, &r.cluster, None));
    out
}

/// The value meshgate writes into the routing header for the upstream `cluster`: its
/// `header_value` in the filter configuration, else its name.
fn header_value(o: &EnvoyOptions, cluster: &str) -> String {
    serde_json::from_str::<serde_json::Value>(&o.filter_config_json)
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

pub(super) fn routes(o: &EnvoyOptions) -> Vec<Route> {
    // First: streaming calls, once meshgate rewrote them, without the route timeout.
    let mut out: Vec<Route> = o.openapi.iter().map(super::openapi_route::route).collect();
    out.extend(super::streams::streaming_routes(o));
    out.extend(o.routes.iter().flat_map(|r| spec_routes(o, r)));
    for c in &o.clusters {
        out.push(Route {
            name: format!("upstream-{}", c.name),
            matcher: RouteMatch {
                prefix: "/".into(),
                path: None,
                headers: header_match(o, header_value(o, &c.name)),
            },
            route: route_action(&c.name, o.route_timeout_s),
            direct_response: None,
            response_headers_to_add: Vec::new(),
            metadata: None,
            typed_per_filter_config: BTreeMap::new(),
        });
    }
    // Requests the filter did not route (answered locally, or passed through) still need a
    // route for the filter chain to run; the first cluster is the fallback.
    if let Some(c) = o.clusters.first() {
        out.push(Route {
            name: "default".into(),
            matcher: RouteMatch {
                prefix: "/".into(),
                path: None,
                headers: Vec::new(),
            },
            route: route_action(&c.name, o.route_timeout_s),
            direct_response: None,
            response_headers_to_add: Vec::new(),
            metadata: None,
            typed_per_filter_config: BTreeMap::new(),
        });
    }
    out
}

/// Envoy's file access log writing meshgate's record (filter state `wasm.meshgate.record`)
/// as one JSON line per request, nothing else: what a log agent ships as structured logs;
/// and for the requests without one, the record Envoy writes in the same shape
/// ([`super::envoy_record`]).
fn access_log(o: &EnvoyOptions) -> Vec<AccessLog> {
    let Some(path) = &o.access_log_path else {
        return Vec::new();
    };
    vec![
        AccessLog {
            name: "envoy.access_loggers.file".into(),
            // Only requests meshgate logged (a route with the filter off, or a request Envoy
            // refused before the filter ran, would print `-`: not a JSON line).
            filter: cel_filter(RECORD_LOG_FILTER),
            typed_config: Any::FileAccessLog(FileAccessLog {
                path: path.clone(),
                log_format: SubstitutionFormatString {
                    text_format_source: Some(InlineString {
                        inline_string: "%FILTER_STATE(wasm.meshgate.record:PLAIN)%\n".into(),
                    }),
                    json_format: None,
                    omit_empty_values: false,
                },
            }),
        },
        super::envoy_record::access_log(path),
    ]
}
