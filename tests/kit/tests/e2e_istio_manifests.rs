//! Issue 6, the Istio delivery (manifests): the resources `meshgate istio` generates (and the
//! committed examples under istio/examples/) validate against Istio's CRD schemas, and the
//! check refuses broken ones; the WasmPlugin pins the image `meshgate oci` builds and carries
//! the filter configuration; the committed examples match the gateway file.
//!
//! Split from `e2e_istio.rs` by behaviour: `e2e_istio_manifests.rs` (what `meshgate istio`
//! generates), `e2e_istio_envoy.rs` (the generated configuration running in a real Envoy),
//! `e2e_istio_routes.rs` (VirtualService routes selecting policies); shared helpers in
//! `e2e_istio_support`.
//!
//! Needs `build/meshgate.wasm` (`make wasm`), Envoy and the schema validator's packages
//! (`make setup`: node + `istio/schema/node_modules`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_istio_support;

use e2e_istio_support::*;
use meshgate_kit::harness::repo_root;
use serde_json::{json, Value};

#[test]
fn generated_and_committed_manifests_validate_against_istio_schemas() {
    let dir = temp("schema");
    generate(&repo_root().join("istio/gateway.yaml"), &dir);
    let mut docs = documents(&dir.join("out"));
    let kinds: Vec<&str> = docs
        .iter()
        .map(|(_, d)| d["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "WasmPlugin",
        "TrafficExtension",
        "EnvoyFilter",
        "ServiceEntry",
        "DestinationRule",
        "Telemetry",
        "IstioOperator",
        "ConfigMap",
    ] {
        assert!(kinds.contains(&kind), "{kind} generated: {kinds:?}");
    }
    assert_eq!(kinds.iter().filter(|k| **k == "WasmPlugin").count(), 2);
    let committed = documents(&repo_root().join("istio/examples"));
    assert!(
        committed.len() >= docs.len(),
        "istio/examples holds every generated resource"
    );
    docs.extend(
        committed
            .into_iter()
            .map(|(f, d)| (format!("examples/{f}"), d)),
    );
    let (ok, report) = validate(&docs, &dir);
    assert!(ok, "every manifest is valid:\n{report}");
    assert!(
        report.contains(&format!("{} valid, 0 invalid", docs.len())),
        "{report}"
    );
}

/// The check can fail: plausible mistakes are refused, each naming the field.
#[test]
fn schema_check_refuses_broken_manifests() {
    let dir = temp("broken");
    generate(&repo_root().join("istio/gateway.yaml"), &dir);
    let docs = documents(&dir.join("out"));
    let wp = doc(&docs, "wasmplugin-gateway.yaml", "WasmPlugin").clone();
    let te = doc(&docs, "trafficextension-gateway.yaml", "TrafficExtension").clone();
    let ef = doc(&docs, "envoyfilter-file.yaml", "EnvoyFilter").clone();
    let set = |name: &str, v: &Value, pointer: &str, value: Value| {
        let mut v = v.clone();
        *v.pointer_mut(pointer).unwrap() = value;
        (name.to_string(), v)
    };
    let mut extra = te.clone();
    extra["spec"]["wasm"]["pluginConf"] = json!({});
    let broken = vec![
        // Envoy's spelling instead of Istio's.
        set(
            "failStrategy",
            &wp,
            "/spec/failStrategy",
            json!("FAIL_CLOSED"),
        ),
        set("phase", &wp, "/spec/phase", json!("AUTHENTICATION")),
        // A digest with its algorithm prefix (Istio wants bare hex).
        set("sha256", &wp, "/spec/sha256", json!("sha256:abc")),
        set("te-phase", &te, "/spec/phase", json!("authn")),
        ("te-unknown-field".to_string(), extra),
        set(
            "applyTo",
            &ef,
            "/spec/configPatches/0/applyTo",
            json!("HTTP_FILTERS"),
        ),
    ];
    let (ok, report) = validate(&broken, &dir);
    assert!(!ok, "broken manifests are refused:\n{report}");
    assert!(
        report.contains(&format!("0 valid, {} invalid", broken.len())),
        "each one is refused:\n{report}"
    );
    assert!(report.contains("failStrategy"), "{report}");
    assert!(report.contains("pluginConf"), "{report}");
}

#[test]
fn wasmplugin_pins_the_image_and_carries_the_filter_configuration() {
    let dir = temp("pin");
    let gateway = repo_root().join("istio/gateway.yaml");
    let digest = generate(&gateway, &dir);
    let docs = documents(&dir.join("out"));
    let mut expected: Value =
        serde_json::from_str(&meshgate::cli::compile_file(&gateway).unwrap()).unwrap();
    // Istio renders the plugin without `allow_on_headers_stop_iteration`: side calls.
    assert!(expected["transcoding"].get("upstream_calls").is_none());
    expected["transcoding"]["upstream_calls"] = json!("side_call");
    for (file, path) in [
        ("wasmplugin-gateway.yaml", "/spec"),
        ("wasmplugin-sidecar.yaml", "/spec"),
        ("trafficextension-gateway.yaml", "/spec/wasm"),
    ] {
        let d = docs.iter().find(|(f, _)| f == file).unwrap();
        let spec = d.1.pointer(path).unwrap();
        assert_eq!(
            format!("sha256:{}", spec["sha256"].as_str().unwrap()),
            digest,
            "{file} pins the image"
        );
        assert_eq!(spec["pluginConfig"], expected, "{file} carries the config");
        assert_eq!(spec["failStrategy"], "FAIL_RELOAD");
    }
    let gw = doc(&docs, "wasmplugin-gateway.yaml", "WasmPlugin");
    assert_eq!(gw["spec"]["phase"], "AUTHN");
    assert_eq!(
        gw["spec"]["selector"]["matchLabels"]["istio"],
        "ingressgateway"
    );
    let sidecar = doc(&docs, "wasmplugin-sidecar.yaml", "WasmPlugin");
    assert_eq!(sidecar["spec"]["match"][0]["mode"], "SERVER");
    // pluginConfig travels as a google.protobuf.Struct: numbers become doubles, so every
    // integer must be exact as a double.
    assert_every_number_is_exact_as_double(&expected);
    // The remote JWKS cluster exists in the mesh under the name the filter calls.
    let se = doc(&docs, "jwks-serviceentries.yaml", "ServiceEntry");
    assert_eq!(se["spec"]["hosts"][0], "idp.example.com");
    assert_eq!(se["spec"]["ports"][0]["number"], 443);
    let remote = &expected["auth"]["providers"][0]["jwks"]["remote"]["cluster"];
    assert_eq!(remote, "outbound|443||idp.example.com");
}

fn assert_every_number_is_exact_as_double(v: &Value) {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_u64() {
                assert!(i < (1 << 53), "{i} is not exact as a double");
            }
        }
        Value::Array(a) => a.iter().for_each(assert_every_number_is_exact_as_double),
        Value::Object(o) => o.values().for_each(assert_every_number_is_exact_as_double),
        _ => {}
    }
}

/// The committed examples are what the command makes from istio/gateway.yaml (regenerate
/// with `make istio`).
#[test]
fn committed_examples_match_the_gateway_file() {
    let dir = temp("examples");
    generate(&repo_root().join("istio/gateway.yaml"), &dir);
    let fresh = documents(&dir.join("out"));
    let committed = documents(&repo_root().join("istio/examples"));
    for (file, d) in &fresh {
        let c = committed
            .iter()
            .find(|(f, c)| f == file && c["kind"] == d["kind"] && c["metadata"] == d["metadata"])
            .unwrap_or_else(|| panic!("istio/examples/{file} is missing {}", d["kind"]));
        let mut a = d.clone();
        let mut b = c.1.clone();
        // The digests depend on the module build; everything else must be the same.
        for v in [&mut a, &mut b] {
            for p in ["/spec/sha256", "/spec/wasm/sha256"] {
                if let Some(x) = v.pointer_mut(p) {
                    *x = json!("");
                }
            }
            if let Some(patches) = v.pointer_mut("/spec/configPatches") {
                for patch in patches.as_array_mut().unwrap() {
                    let code = "/patch/value/typed_config/config/vm_config/code/remote/sha256";
                    if let Some(x) = patch.pointer_mut(code) {
                        *x = json!("");
                    }
                }
            }
        }
        assert_eq!(a, b, "istio/examples/{file} is stale: run `make istio`");
    }
}
