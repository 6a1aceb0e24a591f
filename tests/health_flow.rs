//! Host-side health endpoint: `GET /healthz` is answered by meshgate (`200`, the filter is
//! configured and running); `?jwks=1` also waits for every remote JWKS's first keys (`503` with
//! a google.rpc.Status before); other methods and paths are not the endpoint. End to end:
//! `tests/kit/tests/make_run.rs` (the printed health request) and `e2e_health.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{demo_config, demo_yaml, gateway_json, hs256, FakeHost};
use meshgate::auth::FetchKind;
use meshgate::filter::{Filter, Vm};
use serde_json::json;

const KEY: &[u8] = b"meshgate-health-flow-test-key-01";

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// The reply to `METHOD path` (`None`: not answered by the gateway).
fn ask(vm: &Rc<Vm>, method: &str, path: &str) -> Option<(u16, serde_json::Value)> {
    let mut f = Filter::new(vm.clone(), 1);
    let mut h = FakeHost::with_request(method, path, &[]).at(now());
    f.on_request_headers(&mut h, true);
    h.local_reply.as_ref()?;
    Some(h.reply_json())
}

#[test]
fn healthz_is_answered_by_the_gateway() {
    let vm = Rc::new(Vm::new(demo_config()));
    let (status, body) = ask(&vm, "GET", "/healthz").unwrap();
    assert_eq!((status, body), (200, json!({"status": "SERVING"})));
    // The demo issuer's JWKS is remote: `?jwks=1` waits for its first keys (next test).
    assert_eq!(ask(&vm, "GET", "/healthz?jwks=1").unwrap().0, 503);
    assert_eq!(ask(&vm, "HEAD", "/healthz").unwrap().0, 200);
    // Not the endpoint: another method, another path (an unknown path is a 404 Status).
    let (status, _) = ask(&vm, "POST", "/healthz").unwrap();
    assert_eq!(status, 404);
    assert_eq!(ask(&vm, "GET", "/healthzz").unwrap().0, 404);
}

#[test]
fn healthz_with_jwks_waits_for_the_first_keys() {
    // The demo issuer's remote JWKS, with symmetric keys allowed for the test's HS256 key.
    let remote = r#"cluster: "outbound|8090||127.0.0.1"}"#;
    let yaml = demo_yaml().replace(
        remote,
        r#"cluster: "outbound|8090||127.0.0.1", allow_symmetric_keys: true}"#,
    );
    assert!(demo_yaml().contains(remote), "the demo has a remote JWKS");
    let config = meshgate::config::compile_json(gateway_json(&yaml).as_bytes()).unwrap();
    let vm = Rc::new(Vm::new(config));
    assert_eq!(ask(&vm, "GET", "/healthz").unwrap().0, 200);
    let (status, body) = ask(&vm, "GET", "/healthz?jwks=1").unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], 14, "{body}");
    // The first fetch brings keys: ready.
    let jwks = json!({"keys": [hs256::jwk(KEY, "k1")]}).to_string();
    let due = vm.auth.borrow_mut().due_fetches(now());
    assert_eq!(due.len(), 1);
    let outcome = vm.auth.borrow_mut().on_fetch_response(
        &vm.config.auth,
        0,
        FetchKind::Jwks,
        Some(200),
        jwks.as_bytes(),
        now(),
    );
    assert!(outcome.to_string().contains("key"), "{outcome}");
    assert_eq!(ask(&vm, "GET", "/healthz?jwks=1").unwrap().0, 200);
}

/// `openapi.path` (envoy/gateway.yaml: `/openapi.json`): the proxy serves the document there
/// (a direct response), and where meshgate still runs on that route (Istio) it lets `GET` and
/// `HEAD` of it pass instead of refusing a path that is no operation (404, as without the
/// option). End to end: `tests/kit/tests/e2e_openapi.rs`.
#[test]
fn the_served_openapi_path_passes_through_meshgate() {
    let pass = |vm: &Rc<Vm>, method: &str| {
        let mut f = Filter::new(vm.clone(), 1);
        let mut h = FakeHost::with_request(method, "/openapi.json", &[]).at(now());
        let step = f.on_request_headers(&mut h, true);
        (step.action, h.local_reply.is_some())
    };
    let vm = Rc::new(Vm::new(demo_config()));
    let passed = (meshgate::host::Action::Continue, false);
    assert_eq!(pass(&vm, "GET"), passed);
    assert_eq!(pass(&vm, "HEAD"), passed);
    assert_eq!(ask(&vm, "POST", "/openapi.json").unwrap().0, 404);
    let yaml = demo_yaml().replace("openapi:\n  path: /openapi.json\n", "");
    assert_ne!(yaml, demo_yaml(), "the demo serves its document");
    let config = meshgate::config::compile_json(gateway_json(&yaml).as_bytes()).unwrap();
    let without = Rc::new(Vm::new(config));
    assert_eq!(ask(&without, "GET", "/openapi.json").unwrap().0, 404);
}

/// Health answers have their own operation label, outside every objective: a `503` before the
/// first JWKS fetch (or a `200`) counts in the request counter under `_health` only: no SLO
/// counter (the recording and alert rules read only those), nothing under `_unmatched`; the
/// record names the operation `_health` and judges nothing.
#[test]
fn health_answers_are_counted_apart_and_outside_every_objective() {
    let names = demo_config().observe.names;
    let (health, unmatched) = (
        meshgate::observe::HEALTH_OPERATION,
        meshgate::observe::UNMATCHED_OPERATION,
    );
    for (path, status, outcome) in [("/healthz?jwks=1", 503, "5xx"), ("/healthz", 200, "2xx")] {
        // A VM per fake host: the VM caches metric ids, which each fake host numbers anew.
        let vm = Rc::new(Vm::new(demo_config()));
        let mut f = Filter::new(vm, 2);
        let mut h = FakeHost::with_request("GET", path, &[])
            .at(now())
            .with_property("response.code", &i64::from(status).to_le_bytes());
        f.on_request_headers(&mut h, true);
        assert_eq!(h.reply_json().0, status);
        f.on_log(&mut h);
        let record: serde_json::Value =
            serde_json::from_slice(h.properties.get("meshgate.record").unwrap()).unwrap();
        assert_eq!(record["operation"], health, "{record}");
        assert_eq!(record["slo"]["availability"], "n/a", "{record}");
        assert_eq!(h.counter(&names.requests(health, outcome)), 1, "{path}");
        let leaked: Vec<_> = h
            .metrics
            .borrow()
            .iter()
            .filter(|(name, n)| **n != 0 && (name.contains(unmatched) || name.contains("slo_")))
            .map(|(name, n)| format!("{name}={n}"))
            .collect();
        assert!(leaked.is_empty(), "{path}: {leaked:?}");
    }
}

/// `_health` is the label of the health answers: no REST operation may take it.
#[test]
fn the_health_label_is_not_an_operation_name() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let yaml = std::fs::read_to_string(root.join("envoy/gateway-policies.yaml"))
        .unwrap()
        .replace("name: legacy.Documents", "name: _health")
        .replace(
            "include: [../proto]",
            &format!("include: [{}]", root.join("proto").display()),
        );
    assert!(yaml.contains("name: _health"));
    let dir = std::env::temp_dir().join(format!("meshgate-health-name-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, yaml).unwrap();
    let err = meshgate::cli::compile_file(&path).unwrap_err().to_string();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(err.contains("reserved") && err.contains("health"), "{err}");
}
