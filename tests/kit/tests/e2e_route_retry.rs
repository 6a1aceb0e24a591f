//! Issue 22 end to end: a route's retry policy retries a failed transcoded GET. The native
//! module appends the GET's gRPC frame to the body-less request, so the call goes through
//! Envoy's router and the route's `retry_policy` applies (`retry_on: 5xx,unavailable`,
//! `num_retries: 2`): a backend that answers UNAVAILABLE is asked three times, and the client
//! gets the last answer as a Status. Under Proxy-Wasm the same GET is meshgate's own side
//! call (proxy-wasm/spec#86): the router never sees it, the backend is asked once. A transcoded
//! POST (a body to replace) goes through the router on both flavours and is retried on both.
//! The backend's own request log counts the calls.
//!
//! Needs the flavour's module (`build/meshgate.wasm`, or the native module with
//! `MESHGATE_FLAVOUR=native`) and Envoy (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use meshgate_kit::harness::{http1_client, Flavour, Gateway, GatewayBuilder};
use meshgate_kit::{KitError, KitResult};
use serde_json::{json, Value};

/// Every route to the payments cluster retries UNAVAILABLE (gRPC) and 5xx, twice.
fn retry_payments_routes(b: &mut Value) -> KitResult<()> {
    let hosts = b
        .pointer_mut(
            "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/route_config/virtual_hosts",
        )
        .and_then(Value::as_array_mut)
        .ok_or_else(|| KitError::new("the bootstrap has no virtual hosts"))?;
    let mut changed = 0;
    for route in hosts
        .iter_mut()
        .filter_map(|h| h.get_mut("routes").and_then(Value::as_array_mut))
        .flatten()
    {
        let Some(action) = route.get_mut("route").and_then(Value::as_object_mut) else {
            continue;
        };
        if action.get("cluster").and_then(Value::as_str) == Some("payments") {
            action.insert(
                "retry_policy".into(),
                json!({"retry_on": "5xx,unavailable", "num_retries": 2}),
            );
            changed += 1;
        }
    }
    if changed == 0 {
        return Err(KitError::new("no route to the payments cluster"));
    }
    Ok(())
}

/// The calls the payments backend logged for `grpc_path` (one line per request).
fn backend_calls(gw: &Gateway, grpc_path: &str) -> usize {
    let (_, backend) = gw
        .backends
        .iter()
        .find(|(name, _)| name == "payments")
        .expect("a payments backend");
    backend
        .guard
        .stdout()
        .lines()
        .filter(|l| l.contains(grpc_path))
        .count()
}

/// Waits (bounded) until the backend has logged `want` calls; returns the count seen.
async fn calls_after(gw: &Gateway, grpc_path: &str, want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = backend_calls(gw, grpc_path);
        if n >= want || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_retry_policy_retries_a_failed_transcoded_get() {
    let flavour = Flavour::from_env().unwrap();
    let gw = GatewayBuilder::demo()
        .edit_bootstrap(retry_payments_routes)
        .start()
        .unwrap();
    let client = http1_client();
    let fail = [("x-demo-fail", "UNAVAILABLE")];

    // A GET that succeeds: one call, answered through whichever path the flavour takes.
    let ok = client
        .get(&gw.url("/v1/payments/pay_001"), &[])
        .await
        .unwrap();
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json().unwrap()["id"], "pay_001");
    let get_path = "/meshgate.demo.v1.Payments/GetPayment";
    assert_eq!(calls_after(&gw, get_path, 1).await, 1);

    // A GET the backend fails with UNAVAILABLE.
    let failed = client
        .get(&gw.url("/v1/payments/pay_001"), &fail)
        .await
        .unwrap();
    assert_eq!(failed.status, 503, "{}", failed.text());
    assert_eq!(failed.json().unwrap()["code"], 14, "{}", failed.text());
    let want = match flavour {
        // Through the router: the first try and two retries.
        Flavour::Native => 1 + 3,
        // A side call: the router's retry policy never sees it.
        Flavour::Wasm => 1 + 1,
    };
    let seen = calls_after(&gw, get_path, want).await;
    // No more calls come later (a retry after the answer would be a bug too).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        (seen, backend_calls(&gw, get_path)),
        (want, want),
        "{} flavour: backend calls for GetPayment",
        flavour.name()
    );
    let retries = gw
        .envoy
        .stat("cluster.payments.upstream_rq_retry")
        .unwrap_or(0);
    assert_eq!(
        retries,
        if flavour.is_native() { 2 } else { 0 },
        "Envoy's retry counter"
    );

    // A transcoded POST has a body to replace: the router's call on both flavours, retried.
    let cancel = "/meshgate.demo.v1.Payments/CancelPayment";
    let post = client
        .request(
            http::Method::POST,
            &gw.url("/v1/payments/pay_002:cancel"),
            &[("content-type", "application/json"), fail[0]],
            "{}",
        )
        .await
        .unwrap();
    assert_eq!(post.status, 503, "{}", post.text());
    let seen = calls_after(&gw, cancel, 3).await;
    assert_eq!(seen, 3, "a POST is retried on every flavour");
}
