//! Browser clients in an Istio mesh: one EnvoyFilter for the ingress gateway, made from the
//! same `cors` section as `meshgate envoy`'s bootstrap.
//!
//! Istio's gateways already run Envoy's `grpc_web` and `cors` filters, before the filters of a
//! WasmPlugin's `AUTHN` phase, so the chain is the one `meshgate envoy` renders (see
//! `crate::cli::envoy::browser`). The EnvoyFilter adds what the gateway file says:
//! - the `header_mutation` filter before `grpc_web` (the client's content type, for the
//!   record's `clientProtocol`);
//! - the `cors` section's `CorsPolicy` on the gateway's virtual hosts (`VIRTUAL_HOST` `MERGE`);
//! - for each route that `routing.route_policies` maps to a policy with its own `cors`, that
//!   policy on the route (`HTTP_ROUTE` `MERGE`, matched by the route's name, which is the
//!   VirtualService's `http[].name`).
//!
//! Why not the VirtualService's `corsPolicy`: the VirtualService is the user's routing, which
//! `meshgate istio` does not write; its `corsPolicy` would have to be repeated on every `http`
//! route and kept in step with the gateway file by hand. The EnvoyFilter carries the very
//! `CorsPolicy` message that the local tests run, with `forward_not_matching_preflights: false`.
//! A route's own `corsPolicy` in a VirtualService still wins over the virtual host's.

use std::collections::BTreeMap;

use serde_json::Value;

use super::resources::envoy_filter;
use super::types::{
    ConfigPatch, EnvoyFilterSpec, FilterChainMatch, FilterMatch, ListenerMatch, Patch, PatchMatch,
    PatchValue, PerFilterPatch, Resource, RouteConfigurationMatch, RouteMatchByName,
    SubFilterMatch, VirtualHostMatch,
};
use super::IstioOptions;
use crate::cli::envoy::browser::{client_content_type_filter, Browser, GRPC_WEB_FILTER_NAME};
use crate::cli::envoy::HCM_FILTER_NAME;

/// The gateway's CORS EnvoyFilter, if the gateway file has a `cors` section.
pub fn envoyfilter_cors(o: &IstioOptions) -> Option<Resource<EnvoyFilterSpec>> {
    let browser = Browser::from_filter_json(&o.filter_json)?;
    let mut patches = vec![
        ConfigPatch {
            apply_to: "HTTP_FILTER".into(),
            matcher: PatchMatch {
                context: "GATEWAY".into(),
                listener: Some(ListenerMatch {
                    filter_chain: FilterChainMatch {
                        filter: FilterMatch {
                            name: HCM_FILTER_NAME.into(),
                            sub_filter: Some(SubFilterMatch {
                                name: GRPC_WEB_FILTER_NAME.into(),
                            }),
                        },
                    },
                }),
                route_configuration: None,
            },
            patch: Patch {
                operation: "INSERT_BEFORE".into(),
                value: PatchValue::Filter(client_content_type_filter()),
            },
        },
        ConfigPatch {
            apply_to: "VIRTUAL_HOST".into(),
            matcher: PatchMatch {
                context: "GATEWAY".into(),
                listener: None,
                route_configuration: None,
            },
            patch: Patch {
                operation: "MERGE".into(),
                value: PatchValue::PerFilter(PerFilterPatch {
                    typed_per_filter_config: browser.virtual_host_config(),
                }),
            },
        },
    ];
    for (route, policy) in route_policies(&o.filter_json) {
        let Some((name, any)) = browser.route_config(Some(&policy)) else {
            continue;
        };
        patches.push(ConfigPatch {
            apply_to: "HTTP_ROUTE".into(),
            matcher: PatchMatch {
                context: "GATEWAY".into(),
                listener: None,
                route_configuration: Some(RouteConfigurationMatch {
                    vhost: VirtualHostMatch {
                        route: RouteMatchByName { name: route },
                    },
                }),
            },
            patch: Patch {
                operation: "MERGE".into(),
                value: PatchValue::PerFilter(PerFilterPatch {
                    typed_per_filter_config: BTreeMap::from([(name, any)]),
                }),
            },
        });
    }
    let name = format!("{}-cors", o.name);
    Some(envoy_filter(
        o,
        &name,
        &o.gateway_namespace,
        &o.gateway_labels,
        patches,
    ))
}

/// `routing.route_policies`: route name -> policy name.
fn route_policies(filter_json: &str) -> BTreeMap<String, String> {
    let v: Value = serde_json::from_str(filter_json).unwrap_or_default();
    v.pointer("/routing/route_policies")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(route, p)| Some((route.clone(), p.as_str()?.to_string())))
        .collect()
}
