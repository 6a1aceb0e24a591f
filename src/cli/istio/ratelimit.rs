//! The clients' rate limits in an Istio mesh: one EnvoyFilter for the ingress gateway with the
//! same filters `meshgate envoy` renders (`crate::cli::envoy::ratelimit`): Envoy's
//! `local_ratelimit` (each client's quota, a descriptor per client and operation) and, with
//! `auth.api_keys.global_rate_limit`, the `ratelimit` filter asking the Rate Limit Service.
//!
//! Both must run after meshgate, whose headers (client, operation) make their descriptors:
//! they are inserted right before the router, which every connection manager ends with, so
//! they follow meshgate however it is installed (WasmPlugin in the `AUTHN` phase,
//! TrafficExtension, or the EnvoyFilter). The reply mapper that makes their 429 a
//! `google.rpc.Status` goes with the local replies (`envoyfilter-local-replies.yaml`); the
//! Rate Limit Service's cluster is Istio's (`cluster: outbound|8081||ratelimit...`, from its
//! Service), or, with an `address`, a cluster this EnvoyFilter adds.
//! Body-less transcoded calls, which meshgate sends as side calls (every transcoded call under
//! a WasmPlugin), never reach these filters: meshgate keeps those quotas itself.

use super::resources::envoy_filter;
use super::types::{
    ConfigPatch, EnvoyFilterSpec, FilterChainMatch, FilterMatch, ListenerMatch, Patch, PatchMatch,
    PatchValue, Resource, SubFilterMatch,
};
use super::IstioOptions;
use crate::cli::envoy::ratelimit::{for_filter_json, Quotas};
use crate::cli::envoy::types::Cluster;
use crate::cli::envoy::HCM_FILTER_NAME;

const ROUTER_FILTER: &str = "envoy.filters.http.router";

/// The gateway's rate limit EnvoyFilter, if any client has a quota or a global limit is set.
pub fn envoyfilter_ratelimit(o: &IstioOptions) -> Option<Resource<EnvoyFilterSpec>> {
    let Quotas {
        filters, cluster, ..
    } = for_filter_json(&o.filter_json);
    if filters.is_empty() {
        return None;
    }
    let mut patches: Vec<ConfigPatch> = filters
        .into_iter()
        .map(|f| ConfigPatch {
            apply_to: "HTTP_FILTER".into(),
            matcher: PatchMatch {
                context: "GATEWAY".into(),
                listener: Some(ListenerMatch {
                    filter_chain: FilterChainMatch {
                        filter: FilterMatch {
                            name: HCM_FILTER_NAME.into(),
                            sub_filter: Some(SubFilterMatch {
                                name: ROUTER_FILTER.into(),
                            }),
                        },
                    },
                }),
                route_configuration: None,
            },
            patch: Patch {
                operation: "INSERT_BEFORE".into(),
                value: PatchValue::Filter(f),
            },
        })
        .collect();
    patches.extend(cluster.map(|c| ConfigPatch {
        apply_to: "CLUSTER".into(),
        matcher: PatchMatch {
            context: "GATEWAY".into(),
            listener: None,
            route_configuration: None,
        },
        patch: Patch {
            operation: "ADD".into(),
            value: PatchValue::Cluster(Box::new(Cluster::from(&c))),
        },
    }));
    let name = format!("{}-ratelimit", o.name);
    Some(envoy_filter(
        o,
        &name,
        &o.gateway_namespace,
        &o.gateway_labels,
        patches,
    ))
}
