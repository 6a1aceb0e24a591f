//! Which of the record's fields are also written as filter state of their own
//! (`observe.filter_state`): each is one host call per request, and nothing meshgate renders
//! reads them from the access log callback (the whole record is `wasm.meshgate.record`; the
//! operation and upstream are written when the operation matches, for the trace and Envoy's
//! own records; the outcome and verdicts when the response ends, where Envoy traces). They
//! are for formats of the user's own (`%FILTER_STATE(wasm.meshgate.outcome:PLAIN)%`).

use crate::config_error::ConfigError;

/// The per-field keys, as `observe.filter_state` names them (the filter state is
/// `wasm.meshgate.<name>`).
pub const FILTER_STATE_FIELDS: [&str; 11] = [
    "operation",
    "upstream",
    "principal",
    "client",
    "client_principal",
    "policy",
    "grpc_status",
    "client_protocol",
    "outcome",
    "slo.availability",
    "slo.latency",
];

/// `observe.filter_state`: every name one of [`FILTER_STATE_FIELDS`] (or `all`) -> the
/// property keys to write (`meshgate.<name>`).
pub fn compile_filter_state(names: &[String]) -> Result<Vec<String>, ConfigError> {
    let mut keys = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let wanted: Vec<&str> = match name.as_str() {
            "all" => FILTER_STATE_FIELDS.to_vec(),
            n if FILTER_STATE_FIELDS.contains(&n) => vec![n],
            n => {
                let msg = format!(
                    "unknown field '{n}' (one of {}, or all)",
                    FILTER_STATE_FIELDS.join(", ")
                );
                return Err(ConfigError::new(format!("observe.filter_state[{i}]"), msg));
            }
        };
        for n in wanted {
            let key = format!("meshgate.{n}");
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn listed_fields_become_their_keys_once() {
        let keys = compile_filter_state(&names(&["outcome", "slo.latency", "outcome"])).unwrap();
        assert_eq!(keys, ["meshgate.outcome", "meshgate.slo.latency"]);
        assert!(compile_filter_state(&[]).unwrap().is_empty());
        assert_eq!(compile_filter_state(&names(&["all"])).unwrap().len(), 11);
    }

    #[test]
    fn an_unknown_field_is_refused_by_its_place() {
        let e = compile_filter_state(&names(&["outcome", "record"])).unwrap_err();
        assert_eq!(e.field, "observe.filter_state[1]");
        assert!(e.message.contains("unknown field 'record'"), "{e}");
    }
}
