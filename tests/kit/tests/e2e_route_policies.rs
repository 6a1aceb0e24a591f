//! Issue 4 end to end (per-route policies): routes choose a policy by metadata and by name; a
//! policy route authenticates REST and sends the subject; one route switches meshgate off;
//! the documented `meshgate envoy` example renders and validates; the Istio example's routes
//! select defined policies.
//!
//! The gateway: [`e2e_route_support`] (one Envoy listener in front of two gRPC services,
//! payments and wallets, and two REST backends, configured from
//! `envoy/gateway-policies.yaml`). Split from `e2e_route.rs` by behaviour:
//! `e2e_route_upstreams.rs`, `e2e_route_tracing.rs`, `e2e_route_policies.rs`.
//!
//! Needs `build/meshgate.wasm` (`make wasm`) and Envoy (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_route_support;

use e2e_route_support::*;
use meshgate_kit::harness::{http1_client, http2_client, repo_root, wallets_client};
use meshgate_kit::proto::meshgate::demo::v1::GetWalletRequest;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn routes_choose_policies_by_metadata_and_by_name() {
    let gw = gateway();
    let client = http1_client();
    // By metadata: `wallets-strict` selects `strict` (a token is required).
    let r = client.get(&gw.url("/v1/wallets/w_001"), &[]).await.unwrap();
    assert_eq!(r.status.as_u16(), 401, "{}", r.text());
    assert_eq!(r.json().unwrap()["code"], 16, "UNAUTHENTICATED");
    let auth = format!("Bearer {}", token("alice"));
    let r = client
        .get(&gw.url("/v1/wallets/w_001"), &[("authorization", &auth)])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    // Native gRPC to wallets takes `grpc-api` (policy `gold`, no auth of its own), whose
    // fallback cluster is payments: it still reaches wallets.
    let mut wallets = wallets_client(gw.addr()).await.unwrap();
    let reply = wallets
        .get_wallet(GetWalletRequest {
            wallet_id: "w_001".into(),
        })
        .await
        .unwrap();
    assert_eq!(reply.metadata().get("x-demo-backend").unwrap(), "wallets");
    // By name: `payments-grpc-only` -> `grpc-only` (routing.route_policies).
    let r = client
        .get(&gw.url("/v1/payments/pay_002"), &[])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 415, "{}", r.text());
    assert_eq!(r.json().unwrap()["code"], 12, "UNIMPLEMENTED");
    // A spoofed routing header does not move a request onto another route's policy.
    for (path, status) in [("/v1/wallets/w_001", 401), ("/v1/payments/pay_002", 415)] {
        for upstream in ["payments", "wallets", "legacy-append"] {
            let r = client
                .get(&gw.url(path), &[("x-meshgate-upstream", upstream)])
                .await
                .unwrap();
            assert_eq!(r.status.as_u16(), status, "{path} spoofing {upstream}");
        }
    }
    // Other payments are not on that route.
    let r = client
        .get(&gw.url("/v1/payments/pay_001"), &[])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());

    // A policy name the configuration lacks: refused, never run without the policy.
    let r = client
        .get(&gw.url("/v1/payments/pay_003"), &[])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 500, "{}", r.text());
    let body = r.json().unwrap();
    assert_eq!(body["code"], 13, "INTERNAL");
    assert!(
        body["message"].as_str().unwrap().contains("strcit"),
        "{body}"
    );

    let recs = records(&gw, 12).await;
    let policies: Vec<Value> = recs.iter().take(5).map(|r| r["policy"].clone()).collect();
    assert_eq!(
        policies,
        vec![
            json!("strict"),
            json!("strict"),
            json!("gold"),
            json!("grpc-only"),
            json!("strict"),
        ],
        "{recs:?}"
    );
    // After the six spoofed requests: pay_001 (no policy), then the undefined one.
    assert_eq!(recs[10]["policy"], Value::Null, "{recs:?}");
    assert_eq!(recs[10]["httpRequest"]["status"], 200, "{recs:?}");
    assert_eq!(recs[11]["httpRequest"]["status"], 500, "{recs:?}");
    assert_eq!(recs[1]["principal"], "alice", "{recs:?}");

    // A route with both metadata (`gold`) and a name in `route_policies` (`grpc-only`): the
    // metadata wins, so transcoding stays on.
    let r = client
        .get(
            &gw.url("/v1/payments/pay_004"),
            &[("x-request-id", "both-policies-1")],
        )
        .await
        .unwrap();
    assert_ne!(r.status.as_u16(), 415, "{}", r.text());
    assert_eq!(r.json().unwrap()["id"], "pay_004", "{}", r.text());
    let rec = gw.record_for("both-policies-1").unwrap();
    assert_eq!(rec["policy"], "gold", "{rec}");
}

/// A policy on a REST route: the token is checked, then the subject goes to the upstream in
/// place of the client's copy, and the token itself does not.
#[tokio::test(flavor = "multi_thread")]
async fn a_policy_route_authenticates_rest_and_sends_the_subject() {
    let gw = gateway();
    let client = http2_client();
    let r = client
        .get(
            &gw.url("/legacy/docs/private/plan"),
            &[("x-meshgate-subject", "root")],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 401, "{}", r.text());
    assert!(r.header("www-authenticate").is_some());
    let auth = format!("Bearer {}", token("bob"));
    let r = client
        .get(
            &gw.url("/legacy/docs/private/plan"),
            &[("authorization", &auth), ("x-meshgate-subject", "root")],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let seen = r.json().unwrap();
    assert_eq!(seen["path"], "/rest/legacy/docs/private/plan");
    assert_eq!(seen["headers"]["x-meshgate-subject"], "bob", "{seen}");
    assert_eq!(
        seen["headers"]["x-meshgate-claim-aud"], "meshgate",
        "{seen}"
    );
    assert!(seen["headers"].get("authorization").is_none(), "{seen}");
    // A token signed with another key is refused.
    let forged = format!("{}x", token("bob"));
    let r = client
        .get(
            &gw.url("/legacy/docs/private/plan"),
            &[("authorization", &format!("Bearer {forged}"))],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 401, "{}", r.text());
    // The public part of the same operation needs no token, and a client's claim header
    // does not get through.
    let r = client
        .get(
            &gw.url("/legacy/docs/open"),
            &[("x-meshgate-claim-aud", "evil")],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let seen = r.json().unwrap();
    assert!(
        seen["headers"].get("x-meshgate-claim-aud").is_none(),
        "{seen}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_can_switch_meshgate_off() {
    let gw = gateway();
    let client = http1_client();
    // Without meshgate this path would be a 404 (no operation matches it); with it off, the
    // request goes untouched to the route's cluster, spoofed headers and all.
    let r = client
        .get(
            &gw.url("/direct/raw?x=1"),
            &[("x-meshgate-upstream", "spoofed")],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let seen = r.json().unwrap();
    assert_eq!(seen["backend"], "legacy-append");
    assert_eq!(seen["path"], "/direct/raw");
    assert_eq!(seen["headers"]["x-meshgate-upstream"], "spoofed");
    assert!(seen["headers"].get("x-meshgate-operation").is_none());
    // The same path elsewhere is meshgate's.
    let r = client.get(&gw.url("/other/raw"), &[]).await.unwrap();
    assert_eq!(r.status.as_u16(), 404);
    // One record each: meshgate's for the filtered request, and for the request meshgate never
    // saw, the one Envoy writes in the same shape (no query in its URL).
    let recs = records(&gw, 2).await;
    // `access_records` has Envoy write out everything it holds: nothing more is coming.
    let recs_later = gw.access_records();
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!(recs_later.len(), 2, "{recs_later:?}");
    let by = |who: &str| {
        recs.iter()
            .find(|r| r["recordedBy"] == who)
            .unwrap_or_else(|| panic!("no record by {who}: {recs:?}"))
    };
    assert_eq!(by("meshgate")["httpRequest"]["status"], 404);
    let envoys = by("envoy");
    assert_eq!(envoys["httpRequest"]["status"], 200);
    assert_eq!(envoys["outcome"], "2xx");
    assert!(envoys["httpRequest"]["requestUrl"]
        .as_str()
        .unwrap()
        .ends_with("/direct/raw"));
    assert!(envoys.get("operation").is_none(), "{envoys}");
}

/// `envoy --mode validate -c FILE`, bounded; the output on failure.
fn envoy_validate(file: &std::path::Path) -> Result<(), String> {
    let envoy = meshgate_kit::harness::envoy_bin().unwrap();
    let out_file = file.with_extension("validate.log");
    let log = std::fs::File::create(&out_file).unwrap();
    let mut child = std::process::Command::new(envoy)
        .args(["--mode", "validate", "--use-dynamic-base-id", "-c"])
        .arg(file)
        .current_dir(repo_root())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    for _ in 0..600 {
        if let Some(status) = child.try_wait().unwrap() {
            let text = std::fs::read_to_string(&out_file).unwrap_or_default();
            return if status.success() { Ok(()) } else { Err(text) };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err("envoy --mode validate did not finish in 60 s".into())
}

/// The `meshgate envoy ...` invocation documented at the top of `envoy/gateway-policies.yaml`.
fn documented_invocation() -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("envoy/gateway-policies.yaml")).unwrap();
    let mut joined = String::new();
    let mut inside = false;
    for line in text.lines() {
        let body = line.trim_start_matches('#').trim();
        if body.starts_with("meshgate envoy") {
            inside = true;
        }
        if inside {
            joined.push_str(body.trim_end_matches('\\'));
            joined.push(' ');
            if !body.ends_with('\\') {
                break;
            }
        }
    }
    joined.split_whitespace().map(str::to_string).collect()
}

#[test]
fn documented_envoy_example_renders_and_validates() {
    let args = documented_invocation();
    assert_eq!(args.first().map(String::as_str), Some("meshgate"));
    // Its routes are the ones the end-to-end tests run.
    let routes: Vec<&str> = args
        .windows(2)
        .filter(|w| w[0] == "--route")
        .map(|w| w[1].as_str())
        .collect();
    assert_eq!(routes, ROUTES);
    let dir = std::env::temp_dir().join(format!("meshgate-route-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("gateway-policies.envoy.yaml");
    // The flavour's module: `--wasm PATH`, or `--native PATH`.
    let module = meshgate_kit::harness::Flavour::from_env()
        .unwrap()
        .cli_args()
        .unwrap();
    let mut argv: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-o" => {
                it.next();
                argv.extend(["-o".to_string(), out.display().to_string()]);
            }
            "--wasm" => {
                it.next();
                argv.extend(module.iter().cloned());
            }
            s if s.starts_with("envoy/") => argv.push(repo_root().join(s).display().to_string()),
            s => argv.push(s.to_string()),
        }
    }
    assert_eq!(meshgate::cli::main(argv.clone()), 0, "{argv:?}");
    let rendered = std::fs::read_to_string(&out).unwrap();
    assert!(rendered.contains("FilterConfig"), "the disabled route");
    assert!(rendered.contains("policy: strict"), "the metadata route");
    envoy_validate(&out).unwrap();

    // A route naming an undefined policy is refused by the command.
    let mut bad = argv.clone();
    bad.extend([
        "--route".into(),
        "name=x,prefix=/x/,cluster=payments,policy=nope".into(),
    ]);
    assert_eq!(meshgate::cli::main(bad), 2);
    // And Envoy refuses what it cannot run (validation is not a rubber stamp).
    let broken = rendered.replace(
        "envoy.config.route.v3.FilterConfig",
        "envoy.config.route.v3.NoSuchConfig",
    );
    let broken_file = dir.join("broken.yaml");
    std::fs::write(&broken_file, broken).unwrap();
    assert!(envoy_validate(&broken_file).is_err());
}

#[test]
fn istio_example_routes_select_defined_policies_first() {
    let text =
        std::fs::read_to_string(repo_root().join("istio/examples/virtualservice-policies.yaml"))
            .unwrap();
    let docs: Vec<Value> = text
        .split("\n---\n")
        .map(|d| serde_yaml_ng::from_str::<Value>(d).unwrap())
        .collect();
    let vs = docs.iter().find(|d| d["kind"] == "VirtualService").unwrap();
    let http = vs["spec"]["http"].as_array().unwrap();
    let names: Vec<&str> = http.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names.len(), http.len(), "every route is named");

    // The gateway configuration the example goes with (its WasmPlugin's pluginConfig).
    let filter_json =
        meshgate_kit::harness::filter_config(&repo_root().join("istio/gateway.yaml")).unwrap();
    let config: Value = serde_json::from_str(&filter_json).unwrap();
    let route_policies = config["routing"]["route_policies"].as_object().unwrap();
    assert!(!route_policies.is_empty());
    let first_header_route = http
        .iter()
        .position(|r| r["match"][0].get("headers").is_some())
        .unwrap();
    for (route, policy) in route_policies {
        let at = names.iter().position(|n| n == route);
        let at = at.unwrap_or_else(|| panic!("route {route} in the VirtualService"));
        assert!(at < first_header_route, "{route} before the header routes");
        assert!(http[at]["match"][0].get("headers").is_none());
        assert!(config["policies"].get(policy.as_str().unwrap()).is_some());
    }
    // Each header route matches the value meshgate writes for the upstream named like its
    // destination's Istio cluster.
    let upstreams = config["upstreams"].as_object().unwrap();
    for r in &http[first_header_route..] {
        let Some(value) = r["match"][0]["headers"]["x-meshgate-upstream"]["exact"].as_str() else {
            continue;
        };
        let dest = &r["route"][0]["destination"];
        let cluster = format!(
            "outbound|{}||{}",
            dest["port"]["number"],
            dest["host"].as_str().unwrap()
        );
        let up = upstreams.get(&cluster);
        let up = up.unwrap_or_else(|| panic!("upstream {cluster} for route {}", r["name"]));
        assert_eq!(up["header_value"], value, "{}", r["name"]);
    }
    // The EnvoyFilter switches meshgate off on a route that exists.
    let ef = docs.iter().find(|d| d["kind"] == "EnvoyFilter").unwrap();
    let patch = &ef["spec"]["configPatches"][0];
    let route = patch["match"]["routeConfiguration"]["vhost"]["route"]["name"]
        .as_str()
        .unwrap();
    assert!(names.contains(&route));
    let per_filter = patch["patch"]["value"]["typed_per_filter_config"]
        .as_object()
        .unwrap();
    let (_, cfg) = per_filter.iter().next().unwrap();
    assert_eq!(cfg["disabled"], true);
}
