//! Gateway files written for one test: a base (the demo YAML or the demo protos and
//! upstreams) with the test's changes merged over it, in a fresh temporary directory, so a
//! test sets options without a file in the repository.
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

use super::repo_root;
use crate::error::{KitError, KitResult};

/// `envoy/gateway.yaml` with `extra` (YAML, top-level sections) merged over it and the
/// descriptors' `include` made absolute; the path of the written copy.
pub fn demo_with(tag: &str, extra: &str) -> KitResult<PathBuf> {
    let root = repo_root();
    let base = std::fs::read_to_string(root.join("envoy/gateway.yaml"))
        .map_err(|e| KitError::new(format!("envoy/gateway.yaml: {e}")))?;
    let mut doc: Value = serde_yaml_ng::from_str(&base)
        .map_err(|e| KitError::new(format!("envoy/gateway.yaml is not YAML: {e}")))?;
    let extra: Value = if extra.trim().is_empty() {
        json!({})
    } else {
        serde_yaml_ng::from_str(extra)
            .map_err(|e| KitError::new(format!("extra is not YAML ({e}): {extra}")))?
    };
    merge(&mut doc, extra);
    merge(
        &mut doc,
        json!({"descriptors": {"include": [root.join("proto").display().to_string()]}}),
    );
    write(tag, &doc)
}

/// The demo document: the payments proto (and `google.rpc` error details), upstreams
/// `payments` and `wallets` with their services, and the access log on; `extra` merged over
/// it. Written to a fresh temporary file named after `tag`; its path.
pub fn demo_doc(tag: &str, extra: Value) -> KitResult<PathBuf> {
    let proto = repo_root().join("proto");
    let mut doc = json!({
        "descriptors": {
            "files": ["meshgate/demo/v1/payments.proto", "google/rpc/error_details.proto"],
            "include": [proto.display().to_string()],
        },
        "upstreams": {"payments": {}, "wallets": {}},
        "services": {
            "meshgate.demo.v1.Payments": {"upstream": "payments"},
            "meshgate.demo.v1.Wallets": {"upstream": "wallets"},
        },
        "observe": {"access_log": true},
    });
    merge(&mut doc, extra);
    write(tag, &doc)
}

/// Writes `doc` as YAML to `<tmp>/meshgate-e2e-<pid>-<tag>-<n>/gateway.yaml`.
pub fn write(tag: &str, doc: &Value) -> KitResult<PathBuf> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("meshgate-e2e-{}-{tag}-{n}", std::process::id()));
    let path = dir.join("gateway.yaml");
    let text = serde_yaml_ng::to_string(doc).map_err(|e| KitError::new(e.to_string()))?;
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, text))
        .map_err(|e| KitError::new(format!("{}: {e}", path.display())))?;
    Ok(path)
}

/// Merges `from` into `into`: maps key by key, anything else replaced.
pub fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_options_replace_leaves_and_keep_the_rest() {
        let path = demo_with(
            "unit",
            "limits:\n  max_json_depth: 8\nupstreams:\n  payments: {timeout_ms: 1000}\n",
        )
        .unwrap();
        let doc: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(doc["limits"]["max_json_depth"], 8);
        assert_eq!(doc["upstreams"]["payments"]["timeout_ms"], 1000);
        assert!(
            doc["upstreams"]["wallets"].is_object(),
            "untouched upstream kept"
        );
        let include = doc["descriptors"]["include"][0].as_str().unwrap();
        assert!(std::path::Path::new(include).is_absolute());
    }
}
