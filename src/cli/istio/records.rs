//! The record Envoy writes for a request meshgate did not record (its VM trapped, the request
//! was in flight on a VM that failed, a route switched the filter off), under Istio: the same
//! access log entry `meshgate envoy` renders ([`crate::cli::envoy::envoy_record`]), merged into
//! the connection manager of the ingress gateway and of the workload's sidecar (inbound) by an
//! EnvoyFilter. The `meshgate-records` Telemetry writes meshgate's own records; this entry
//! writes, to the same stdout, a line in the same JSON shape (`"recordedBy": "envoy"`) for
//! exactly the requests without one, so every request has one line.
//!
//! An EnvoyFilter rather than a second Telemetry provider: the patch is the very access log
//! entry the local gateway runs (its JSON format with `omit_empty_values` and CEL commands),
//! which a mesh-config provider cannot express.

use super::resources::{envoy_filter, hcm_match};
use super::types::{ConfigPatch, EnvoyFilterSpec, Patch, PatchValue, Resource};
use super::IstioOptions;
use crate::cli::envoy::envoy_record;
use crate::cli::envoy::types::{Any, HttpConnectionManager, NamedFilter};
use crate::cli::envoy::HCM_FILTER_NAME;

/// Where Istio's proxies write access logs (the `meshgate-records` provider's path too).
const STDOUT: &str = "/dev/stdout";

/// The connection manager patch of `context` (`GATEWAY` or `SIDECAR_INBOUND`): one more access
/// log, appended to those Istio renders (a `MERGE` appends to a repeated field).
fn envoy_records_patch(context: &str) -> ConfigPatch {
    let hcm = HttpConnectionManager {
        access_log: Some(vec![envoy_record::access_log(STDOUT)]),
        ..HttpConnectionManager::default()
    };
    ConfigPatch {
        apply_to: "NETWORK_FILTER".into(),
        matcher: hcm_match(context),
        patch: Patch {
            operation: "MERGE".into(),
            value: PatchValue::Filter(NamedFilter {
                name: HCM_FILTER_NAME.into(),
                typed_config: Any::HttpConnectionManager(Box::new(hcm)),
            }),
        },
    }
}

/// The EnvoyFilters of Envoy's records: the ingress gateway's and the sidecar's.
pub fn envoyfilters_envoy_records(o: &IstioOptions) -> Vec<Resource<EnvoyFilterSpec>> {
    let name = format!("{}-envoy-records", o.name);
    [
        (&o.gateway_namespace, &o.gateway_labels, "GATEWAY"),
        (&o.sidecar_namespace, &o.sidecar_labels, "SIDECAR_INBOUND"),
    ]
    .into_iter()
    .map(|(namespace, labels, context)| {
        envoy_filter(
            o,
            &name,
            namespace,
            labels,
            vec![envoy_records_patch(context)],
        )
    })
    .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::cli::envoy::envoy_record::NO_RECORD_FILTER;

    #[test]
    fn the_patch_appends_the_local_gateways_envoy_record_log() {
        let v = serde_json::to_value(envoy_records_patch("GATEWAY")).unwrap();
        assert_eq!(v["applyTo"], "NETWORK_FILTER");
        assert_eq!(v["patch"]["operation"], "MERGE");
        let logs = &v["patch"]["value"]["typed_config"]["access_log"];
        let local = serde_json::to_value(envoy_record::access_log(STDOUT)).unwrap();
        assert_eq!(logs, &serde_json::json!([local]));
        let expression = &logs[0]["filter"]["extension_filter"]["typed_config"]["expression"];
        assert_eq!(expression, NO_RECORD_FILTER);
        // Nothing else of the connection manager is touched.
        let keys: Vec<&String> = v["patch"]["value"]["typed_config"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys, ["@type", "access_log"]);
    }
}
