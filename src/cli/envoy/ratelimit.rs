//! Local rate limits from the gateway file: each API-key client's `quota`, per operation it may
//! call, as Envoy's `local_ratelimit` filter. It runs AFTER meshgate in the filter chain, so its
//! descriptors are made from the headers meshgate set on an allowed request (the client's name,
//! the operation's): a request with no client (refused, or without an API key) is never
//! limited by a client's quota, and a client cannot pick its own bucket (meshgate strips
//! incoming copies of both headers).
//!
//! A limited request gets 429 (gRPC clients: RESOURCE_EXHAUSTED), the draft RateLimit headers
//! (`x-ratelimit-limit`, `-remaining`, `-reset`), and, through the local reply mapper of
//! [`rate_limited_mapper`], a `google.rpc.Status` of code 8 with a `QuotaFailure` detail;
//! meshgate adds `Retry-After` (`src/filter/quota.rs`).
//!
//! Requests meshgate answers itself never reach the filter: body-less transcoded calls (GETs),
//! which meshgate sends as side calls, are limited by meshgate itself with the same bucket
//! (`src/filter/side_quota.rs`; docs/partners.md).

use super::local_reply::cel_filter;
use super::types::{
    AccessLogFilter, Any, DescriptorEntry, EnvoyGrpc, FilterList, FractionalPercent,
    GlobalRateLimitFilter, GrpcService, HttpStatus, JsonBodyFormat, LocalRateLimit,
    LocalRateLimitDescriptor, NamedFilter, QuotaViolation, RateLimit, RateLimitAction,
    RateLimitServiceConfig, RequestHeadersAction, ResponseMapper, RuntimeFractionalPercent,
    StatusDetail, StatusJson, TokenBucket,
};
use super::ClusterSpec;
use crate::config::Config;
use crate::status::Code;

pub const LOCAL_RATELIMIT_FILTER: &str = "envoy.filters.http.local_ratelimit";
pub const GLOBAL_RATELIMIT_FILTER: &str = "envoy.filters.http.ratelimit";
/// Stats: `meshgate_quota.http_local_rate_limit.{enabled,ok,rate_limited,enforced}`.
pub const STAT_PREFIX: &str = "meshgate_quota";
pub const CLIENT_KEY: &str = "client";
pub const OPERATION_KEY: &str = "operation";

/// The filter and the reply mapper for the configuration `o` runs (none without quotas, or
/// for a configuration that does not compile: Envoy then refuses the filter itself).
pub fn for_options(o: &super::EnvoyOptions) -> Quotas {
    for_filter_json(&o.filter_config_json)
}

/// The same for a filter configuration (JSON text): `meshgate istio`'s EnvoyFilter too.
pub fn for_filter_json(json: &str) -> Quotas {
    let Ok(cfg) = crate::config::compile_json(json.as_bytes()) else {
        return Quotas::default();
    };
    let local = local_ratelimit(&cfg);
    let global = global_ratelimit(&cfg);
    let mapper = if local.is_some() || global.is_some() {
        rate_limited_mapper(&cfg)
    } else {
        None
    };
    let (global, cluster) = match global {
        Some((filter, cluster)) => (Some(filter), cluster),
        None => (None, None),
    };
    Quotas {
        filters: local.into_iter().chain(global).collect(),
        mapper,
        cluster,
    }
}

/// What the clients' limits add to a bootstrap.
#[derive(Debug, Default)]
pub struct Quotas {
    /// Right after meshgate's filter, in this order: local, then global.
    pub filters: Vec<NamedFilter>,
    /// First among the local reply mappers.
    pub mapper: Option<ResponseMapper>,
    /// The RLS cluster, when its address is configured (and no cluster has its name).
    pub cluster: Option<ClusterSpec>,
}

/// The actions that make the `(client, operation)` descriptor from meshgate's headers.
fn client_operation(config: &Config, client_header: &str) -> RateLimit {
    let header = |name: &str, key: &str| RateLimitAction {
        request_headers: RequestHeadersAction {
            header_name: name.to_string(),
            descriptor_key: key.to_string(),
        },
    };
    RateLimit {
        actions: vec![
            header(client_header, CLIENT_KEY),
            header(&config.routing.operation_header, OPERATION_KEY),
        ],
    }
}

/// Envoy's global `ratelimit` filter and the RLS cluster (when its address is configured) for
/// `auth.api_keys.global_rate_limit`: every request of a configured client asks the service
/// about its `(client, operation)` descriptor. A failed call is allowed (fail open) or
/// answered 503 (fail closed, `failure_mode: deny`).
pub fn global_ratelimit(config: &Config) -> Option<(NamedFilter, Option<ClusterSpec>)> {
    let keys = config.auth.api_keys.as_ref()?;
    let g = keys.global_rate_limit.as_ref()?;
    let filter = NamedFilter {
        name: GLOBAL_RATELIMIT_FILTER.into(),
        typed_config: Any::GlobalRateLimit(Box::new(GlobalRateLimitFilter {
            domain: g.domain.clone(),
            timeout: format!("{}.{:03}s", g.timeout_ms / 1000, g.timeout_ms % 1000),
            failure_mode_deny: g.deny_on_failure,
            status_on_error: HttpStatus { code: 503 },
            enable_x_ratelimit_headers: "DRAFT_VERSION_03".into(),
            rate_limited_as_resource_exhausted: true,
            rate_limit_service: RateLimitServiceConfig {
                grpc_service: GrpcService {
                    envoy_grpc: EnvoyGrpc {
                        cluster_name: g.cluster.clone(),
                    },
                    timeout: None,
                },
                transport_api_version: "V3".into(),
            },
            rate_limits: vec![client_operation(config, &keys.client_header)],
        })),
    };
    let cluster = g.address.as_ref().map(|(host, port)| ClusterSpec {
        name: g.cluster.clone(),
        address: host.clone(),
        port: *port,
        http2: true,
    });
    Some((filter, cluster))
}

/// The `local_ratelimit` filter for `config`'s client quotas; `None` without any.
pub fn local_ratelimit(config: &Config) -> Option<NamedFilter> {
    let keys = config.auth.api_keys.as_ref()?;
    let mut descriptors = Vec::new();
    for client in keys.clients.iter().filter(|c| !c.revoked) {
        let Some(quota) = client.quota else {
            continue;
        };
        let bucket = TokenBucket {
            max_tokens: quota.requests,
            tokens_per_fill: quota.requests,
            fill_interval: format!("{}s", quota.unit.seconds()),
        };
        for op in &config.operations {
            if client.may_call(Some(&op.name)) {
                descriptors.push(LocalRateLimitDescriptor {
                    entries: vec![
                        entry(CLIENT_KEY, &client.name),
                        entry(OPERATION_KEY, &op.name),
                    ],
                    token_bucket: bucket.clone(),
                });
            }
        }
    }
    if descriptors.is_empty() {
        return None;
    }
    let all = |key: &str| RuntimeFractionalPercent {
        default_value: FractionalPercent {
            numerator: 100,
            denominator: "HUNDRED".into(),
        },
        runtime_key: format!("meshgate.quota.{key}"),
    };
    Some(NamedFilter {
        name: LOCAL_RATELIMIT_FILTER.into(),
        typed_config: Any::LocalRateLimit(Box::new(LocalRateLimit {
            stat_prefix: STAT_PREFIX.into(),
            // Requests without a client's descriptor are not limited here: the default bucket
            // is never the one that refuses (1e9 a second), and is not spent by those with one.
            token_bucket: TokenBucket {
                max_tokens: 1_000_000_000,
                tokens_per_fill: 1_000_000_000,
                fill_interval: "1s".into(),
            },
            filter_enabled: all("enabled"),
            filter_enforced: all("enforced"),
            descriptors,
            rate_limits: vec![client_operation(config, &keys.client_header)],
            always_consume_default_token_bucket: false,
            enable_x_ratelimit_headers: "DRAFT_VERSION_03".into(),
            rate_limited_as_resource_exhausted: true,
        })),
    })
}

fn entry(key: &str, value: &str) -> DescriptorEntry {
    DescriptorEntry {
        key: key.into(),
        value: value.into(),
    }
}

/// A rate limit filter's reply, by its details (the response flag `RL` is not yet set when the
/// local reply is mapped): `local_ratelimit`'s and `ratelimit`'s.
const RATE_LIMITED: &str =
    "response.code_details in ['local_rate_limited', 'request_rate_limited']";

/// The local reply mapper of rate-limited requests of HTTP clients: a
/// `google.rpc.Status` of code 8 (RESOURCE_EXHAUSTED) with a `QuotaFailure` naming the client
/// and the operation (meshgate adds `Retry-After` from the draft `x-ratelimit-reset`: a
/// mapper's headers are evaluated before the rate limit filter adds its own). Native gRPC
/// clients keep Envoy's trailers-only RESOURCE_EXHAUSTED.
pub fn rate_limited_mapper(config: &Config) -> Option<ResponseMapper> {
    let keys = config.auth.api_keys.as_ref()?;
    let op_header = &config.routing.operation_header;
    // Transcoded requests' content-type is gRPC's by now; meshgate lets their reply through.
    let not_grpc = "'x-envoy-original-method' in request.headers || \
         !('content-type' in request.headers && \
           request.headers['content-type'].startsWith('application/grpc'))";
    Some(ResponseMapper {
        filter: AccessLogFilter::AndFilter(FilterList {
            filters: vec![cel_filter(RATE_LIMITED), cel_filter(not_grpc)],
        }),
        body_format_override: JsonBodyFormat {
            json_format: StatusJson {
                code: Code::ResourceExhausted.as_i32(),
                message: "quota exhausted: try again later".into(),
                details: vec![StatusDetail {
                    type_url: "type.googleapis.com/google.rpc.QuotaFailure".into(),
                    violations: vec![QuotaViolation {
                        subject: format!("client:%REQ({})%", keys.client_header),
                        description: format!(
                            "the client's quota of operation %REQ({op_header})% is exhausted"
                        ),
                    }],
                }],
            },
            content_type: "application/json".into(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = std::env::temp_dir().join(format!(
            "meshgate-ratelimit-unit-{}-{}",
            std::process::id(),
            extra.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gateway.yaml");
        let text = format!(
            "descriptors:\n  files: [meshgate/demo/v1/payments.proto]\n  include: [{}]\n\
             upstreams: {{payments: {{}}, wallets: {{}}}}\n\
             services:\n  meshgate.demo.v1.Payments: {{upstream: payments, auth: api_key}}\n\
             \x20 meshgate.demo.v1.Wallets: {{upstream: wallets, auth: none}}\n\
             {extra}",
            root.join("proto").display()
        );
        std::fs::write(&path, text).unwrap();
        let json = crate::cli::compile_file(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        crate::config::compile_json(json.as_bytes()).unwrap()
    }

    /// `auth.api_keys.clients` of these flow-style entries.
    fn clients(entries: &[&str]) -> String {
        let mut out = "auth:\n  api_keys:\n    clients:\n".to_string();
        for (i, e) in entries.iter().enumerate() {
            out.push_str(&format!("      - {{key_sha256: '{:064x}', {e}}}\n", i + 1));
        }
        out
    }

    fn three() -> String {
        clients(&[
            "name: a, operations: [meshgate.demo.v1.Payments.GetPayment, meshgate.demo.v1.Wallets.*], quota: {requests: 5, unit: minute}",
            "name: b, operations: ['*']",
            "name: c, operations: ['*'], quota: {requests: 1, unit: second}, revoked: true",
        ])
    }

    #[test]
    fn each_quota_is_a_descriptor_per_operation_its_client_may_call() {
        let cfg = config(&three());
        let filter = local_ratelimit(&cfg).unwrap();
        let Any::LocalRateLimit(rl) = filter.typed_config else {
            panic!("not a local rate limit")
        };
        let names: Vec<String> = rl
            .descriptors
            .iter()
            .map(|d| {
                let e: Vec<&str> = d.entries.iter().map(|e| e.value.as_str()).collect();
                format!("{} {}", e.join(" "), d.token_bucket.fill_interval)
            })
            .collect();
        // `a` only: `b` has no quota, `c` is revoked; each operation `a` may call.
        assert_eq!(
            names,
            [
                "a meshgate.demo.v1.Payments.GetPayment 60s",
                "a meshgate.demo.v1.Wallets.GetWallet 60s",
                "a meshgate.demo.v1.Wallets.GetEntry 60s",
                "a meshgate.demo.v1.Wallets.TopUp 60s",
            ]
        );
        assert_eq!(rl.descriptors[0].token_bucket.max_tokens, 5);
        assert!(!rl.always_consume_default_token_bucket);
        assert_eq!(
            rl.rate_limits[0].actions,
            [
                ("x-meshgate-client", "client"),
                ("x-meshgate-operation", "operation")
            ]
            .map(|(h, k)| RateLimitAction {
                request_headers: RequestHeadersAction {
                    header_name: h.into(),
                    descriptor_key: k.into()
                }
            })
        );
        let mapper = rate_limited_mapper(&cfg).unwrap();
        assert_eq!(mapper.body_format_override.json_format.code, 8);
        let json = serde_json::to_value(&mapper).unwrap();
        assert_eq!(
            json["body_format_override"]["json_format"]["details"][0]["@type"],
            "type.googleapis.com/google.rpc.QuotaFailure"
        );
    }

    #[test]
    fn a_global_limit_is_the_ratelimit_filter_and_its_cluster() {
        let mut text = clients(&["name: b, operations: ['*']"]);
        text = text.replace(
            "    clients:\n",
            "    global_rate_limit: {address: '127.0.0.1:8081', failure_mode: deny}\n    clients:\n",
        );
        let cfg = config(&text);
        let (filter, cluster) = global_ratelimit(&cfg).unwrap();
        let Any::GlobalRateLimit(g) = filter.typed_config else {
            panic!("not the global filter")
        };
        assert!(g.failure_mode_deny);
        assert_eq!(
            (g.domain.as_str(), g.timeout.as_str()),
            ("meshgate", "0.200s")
        );
        assert_eq!(
            g.rate_limit_service.grpc_service.envoy_grpc.cluster_name,
            "meshgate_rls"
        );
        let cluster = cluster.unwrap();
        assert_eq!(
            (cluster.address.as_str(), cluster.port, cluster.http2),
            ("127.0.0.1", 8081, true)
        );
        // No quota: no local filter, but the reply mapper for the global filter's 429.
        assert!(local_ratelimit(&cfg).is_none());
        assert!(rate_limited_mapper(&cfg).is_some());
    }

    #[test]
    fn no_quota_no_filter() {
        let cfg = config(&clients(&["name: b, operations: ['*']"]));
        assert!(local_ratelimit(&cfg).is_none());
    }
}
