//! `meshgate envoy --native PATH`: the dynamic-modules HTTP filter loading meshgate's native
//! module (docs/native.md) in place of the wasm filter, with the same filter configuration.
//! Everything else in the bootstrap is the same. The filter keeps the wasm filter's name, so
//! the routes' `typed_per_filter_config` entries (`FilterConfig{disabled: true}`) switch it off
//! unchanged; a policy is still chosen by route metadata. There is no per-route
//! configuration message for meshgate (the module refuses one).

use serde::Serialize;

use super::types::{
    Any, AsyncDataSource, DataSource, NamedFilter, StatsConfig, StringMatcher, StringValue,
};
use super::{EnvoyOptions, WASM_FILTER_NAME};

/// `envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DynamicModuleFilter {
    pub dynamic_module_config: DynamicModuleConfig,
    pub filter_name: String,
    /// The filter's JSON configuration, as a `StringValue` (passed to the module unwrapped).
    pub filter_config: Any,
}

/// `envoy.extensions.dynamic_modules.v3.DynamicModuleConfig`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DynamicModuleConfig {
    pub module: AsyncDataSource,
    /// The module keeps process-wide state (the tick thread, shared data): never unloaded.
    pub do_not_close: bool,
}

/// The namespace Envoy puts in front of a dynamic module's stats (the default
/// `metrics_namespace`). Prometheus shows them as `envoy_dynamicmodulescustom_<name>`: Envoy
/// strips only registered namespaces (Wasm's) from the exposition (docs/native.md).
pub const NATIVE_NAMESPACE: &str = "dynamicmodulescustom";

/// The latency buckets of the wasm flavour's stats, for the same histogram under the native
/// module's namespace (the module's labelled stats need no `stats_tags`).
pub fn adapt_stats(stats: &mut StatsConfig) {
    let wasm = format!(r"{}\.", crate::observe::WASM_NAMESPACE);
    let native: Vec<_> = stats
        .histogram_bucket_settings
        .iter()
        .filter_map(|b| match &b.matcher {
            StringMatcher::SafeRegex(r) if r.regex.starts_with(&wasm) => {
                let mut copy = b.clone();
                let regex = format!(r"{NATIVE_NAMESPACE}\.{}", &r.regex[wasm.len()..]);
                copy.matcher = StringMatcher::SafeRegex(super::types::RegexMatcher { regex });
                Some(copy)
            }
            _ => None,
        })
        .collect();
    stats.histogram_bucket_settings.extend(native);
}

/// The meshgate filter with the native module at `path`.
pub fn filter(o: &EnvoyOptions, path: &str) -> NamedFilter {
    NamedFilter {
        name: WASM_FILTER_NAME.into(),
        typed_config: Any::DynamicModuleFilter(Box::new(DynamicModuleFilter {
            dynamic_module_config: DynamicModuleConfig {
                module: AsyncDataSource::Local(DataSource {
                    filename: path.to_string(),
                }),
                do_not_close: true,
            },
            filter_name: "meshgate".into(),
            filter_config: Any::StringValue(StringValue {
                value: o.filter_config_json.clone(),
            }),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_filter_replaces_the_wasm_filter_with_the_same_configuration() {
        let mut o = EnvoyOptions::new("{\"a\":1}".into(), "/m.wasm".into());
        o.native_path = Some("/lib/libmeshgate_native.so".into());
        let yaml = super::super::render_yaml(&o).unwrap_or_default();
        assert!(
            !yaml.contains("envoy.extensions.filters.http.wasm.v3.Wasm"),
            "{yaml}"
        );
        let v: serde_json::Value = serde_yaml_ng::from_str(&yaml).unwrap_or_default();
        let hcm = &v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0];
        let filters = hcm["typed_config"]["http_filters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let meshgate = filters
            .iter()
            .find(|f| f["name"] == WASM_FILTER_NAME)
            .cloned()
            .unwrap_or_default();
        let t = &meshgate["typed_config"];
        assert_eq!(
            t["@type"],
            "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter"
        );
        assert_eq!(
            t["dynamic_module_config"]["module"]["local"]["filename"],
            "/lib/libmeshgate_native.so"
        );
        assert_eq!(t["filter_config"]["value"], "{\"a\":1}");
    }
}
