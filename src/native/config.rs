//! The filter configuration as the glue keeps it: the JSON every worker's root compiles, and
//! the metric families defined with Envoy when the configuration loads.
//!
//! Envoy freezes a dynamic module's stat definitions once `on_http_filter_config_new` returns,
//! while the core names a metric when it first uses it (`meshgate_requests_total.outcome.ok.
//! operation.<op>`). So the glue defines each family once, as a labelled metric whose labels are
//! the name's keys (the layout the core's [`MetricNames`] writes, read here from sample names),
//! and turns each name the core defines into the family and its label values. Prometheus sees
//! the same names and labels as with the wasm module's `stats_tags`.

use std::sync::atomic::{AtomicU64, Ordering};

use super::abi::{self, ConfigEnvoyPtr, ModuleBuffer};
use crate::host::MetricKind;
use crate::observe::{AuthDecision, MetricNames, SloKind};

/// One metric family: its Envoy name (the stat name before the first `.`), its label keys in
/// order (the last one's value is free-form and may hold dots) and Envoy's id for it.
pub struct Family {
    pub base: String,
    pub keys: Vec<String>,
    pub kind: MetricKind,
    pub id: usize,
}

/// A filter configuration. Shared by every worker thread; immutable after creation.
pub struct ModuleConfig {
    /// Unique per configuration of this process (worker roots are keyed by it).
    pub id: u64,
    pub envoy: ConfigEnvoyPtr,
    pub json: Vec<u8>,
    pub families: Vec<Family>,
    /// A provider's keys come from a remote JWKS (the configuration gets a keeper).
    pub remote_jwks: bool,
    /// The keys the configuration's keeper accepted (`keeper.rs`), for every worker.
    pub keys: super::keeper::Published,
}

// SAFETY: `envoy` is Envoy's `DynamicModuleHttpFilterConfig`, which outlives every stream of the
// configuration; the glue only passes it to the config-level metric callbacks, which Envoy
// documents for use outside a stream (their stats are thread-safe). Everything else is
// immutable data.
unsafe impl Send for ModuleConfig {}
// SAFETY: as above.
unsafe impl Sync for ModuleConfig {}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl ModuleConfig {
    /// Compile the configuration (refused whole with the reason) and define its metric families.
    pub fn new(envoy: ConfigEnvoyPtr, json: Vec<u8>) -> Result<ModuleConfig, String> {
        let config = crate::config::compile_json(&json).map_err(|e| e.to_string())?;
        let mut families = Vec::new();
        for (kind, sample) in samples(&config.observe.names) {
            let (base, keys) = layout(&sample);
            if keys.len() > MAX_LABELS {
                return Err(format!("metric {base}: more than {MAX_LABELS} labels"));
            }
            let id = define(envoy, kind, &base, &keys)?;
            families.push(Family {
                base,
                keys,
                kind,
                id,
            });
        }
        let remote_jwks = config
            .auth
            .providers
            .iter()
            .any(|p| matches!(p.keys, crate::auth::KeySource::Remote(_)));
        Ok(ModuleConfig {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            envoy,
            json,
            families,
            remote_jwks,
            keys: super::keeper::Published::default(),
        })
    }

    /// The family of a stat name the core defines, and its label values.
    pub fn resolve(&self, kind: MetricKind, name: &str) -> Option<(usize, Vec<String>)> {
        let (base, mut rest) = match name.split_once('.') {
            Some((b, r)) => (b, Some(r)),
            None => (name, None),
        };
        let index = self
            .families
            .iter()
            .position(|f| f.base == base && f.kind == kind)?;
        let family = self.families.get(index)?;
        let mut values = Vec::with_capacity(family.keys.len());
        for (i, key) in family.keys.iter().enumerate() {
            let r = rest?.strip_prefix(key.as_str())?.strip_prefix('.')?;
            if i + 1 == family.keys.len() {
                values.push(r.to_string());
                rest = None;
            } else {
                let (v, r) = r.split_once('.')?;
                values.push(v.to_string());
                rest = Some(r);
            }
        }
        rest.is_none().then_some((index, values))
    }
}

/// One sample name per family, with placeholder values (no dots), from the core's own naming.
fn samples(names: &MetricNames) -> Vec<(MetricKind, String)> {
    use MetricKind::{Counter, Gauge, Histogram};
    vec![
        (Counter, names.requests("o", "v")),
        (
            Counter,
            names.slo_events("o", SloKind::Availability, Some("p")),
        ),
        (
            Counter,
            names.slo_good_events("o", SloKind::Availability, Some("p")),
        ),
        (Histogram, names.latency_histogram("o")),
        (
            Counter,
            names.auth_decisions("o", AuthDecision::Allowed, "r"),
        ),
        (Counter, names.client_requests("o", "c", "v")),
        (Counter, names.jwks_fetches("p", true)),
        (Gauge, names.vm_memory()),
    ]
}

/// A sample's family name and label keys: `base.k1.v1.k2.v2`.
fn layout(sample: &str) -> (String, Vec<String>) {
    let mut parts = sample.split('.');
    let base = parts.next().unwrap_or_default().to_string();
    let keys = parts.step_by(2).map(str::to_string).collect();
    (base, keys)
}

fn define(
    envoy: ConfigEnvoyPtr,
    kind: MetricKind,
    base: &str,
    keys: &[String],
) -> Result<usize, String> {
    let mut labels: Vec<ModuleBuffer> = keys
        .iter()
        .map(|k| ModuleBuffer::of(k.as_bytes()))
        .collect();
    let mut id = 0usize;
    let name = ModuleBuffer::of(base.as_bytes());
    let define = match kind {
        MetricKind::Counter => abi::envoy_dynamic_module_callback_http_filter_config_define_counter,
        MetricKind::Gauge => abi::envoy_dynamic_module_callback_http_filter_config_define_gauge,
        MetricKind::Histogram => {
            abi::envoy_dynamic_module_callback_http_filter_config_define_histogram
        }
    };
    // SAFETY: called in `on_http_filter_config_new` with Envoy's config; the buffers outlive
    // the call.
    let status = unsafe { define(envoy, name, labels.as_mut_ptr(), labels.len(), &mut id) };
    if status == abi::METRICS_SUCCESS {
        Ok(id)
    } else {
        Err(format!("Envoy refused metric {base} (status {status})"))
    }
}

/// The most labels a family may have (the core's families have at most three).
const MAX_LABELS: usize = 8;

/// Add to a counter, set a gauge or record a histogram value of `family` with `values`.
pub fn apply(config: &ModuleConfig, family: usize, values: &[String], value: u64) {
    let Some(f) = config.families.get(family) else {
        return;
    };
    // The label buffers on the stack (a family has a handful of labels), not a new vector per
    // increment.
    let mut labels = [ModuleBuffer::of(&[]); MAX_LABELS];
    if values.len() > MAX_LABELS {
        return;
    }
    for (slot, v) in labels.iter_mut().zip(values) {
        *slot = ModuleBuffer::of(v.as_bytes());
    }
    let call = match f.kind {
        MetricKind::Counter => {
            abi::envoy_dynamic_module_callback_http_filter_config_increment_counter
        }
        MetricKind::Gauge => abi::envoy_dynamic_module_callback_http_filter_config_set_gauge,
        MetricKind::Histogram => {
            abi::envoy_dynamic_module_callback_http_filter_config_record_histogram_value
        }
    };
    // SAFETY: Envoy's config outlives its streams; the label buffers outlive the call and
    // match the family's label count.
    let _ = unsafe { call(config.envoy, f.id, labels.as_mut_ptr(), values.len(), value) };
}
