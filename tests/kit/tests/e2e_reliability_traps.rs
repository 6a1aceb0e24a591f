//! Issue 15, traps: the test build (`build/meshgate-test.wasm`, `make wasm-test`) traps in the
//! callback a request names (`x-meshgate-test-trap`); under the shipped failure policy
//! (`FAIL_RELOAD`) Envoy serves again, the trapped request got a 503 `google.rpc.Status` (or,
//! trapped in its log callback, the answer it already had), it has exactly one record (Envoy's:
//! the VM died before meshgate's log callback) naming its operation, and meshgate counted it once
//! (`unavailable`, availability-bad) before the VM aborted. A request in flight on another
//! stream when the VM trapped (waiting for its side call's reply, which would go to the dead
//! VM) is answered 503 at once and counted too.
//!
//! The JWKS-reply trap (`jwks`, a root callback) is in `e2e_reliability_jwks_trap.rs`.
//! Needs Envoy (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use meshgate_kit::harness::{http1_client, repo_root, Gateway, GatewayBuilder, RawResponse};
use serde_json::Value;

const GET_PAYMENT: &str = "meshgate.demo.v1.Payments.GetPayment";
const CREATE_PAYMENT: &str = "meshgate.demo.v1.Payments.CreatePayment";

fn test_wasm() -> std::path::PathBuf {
    let path = repo_root().join("build/meshgate-test.wasm");
    assert!(
        path.is_file(),
        "{} missing: run `make wasm-test`",
        path.display()
    );
    path
}

fn unavailable(gw: &Gateway, op: &str) -> u64 {
    gw.envoy
        .stat(&format!(
            "wasmcustom.meshgate_requests_total.outcome.unavailable.operation.{op}"
        ))
        .unwrap_or(0)
}

async fn get(gw: &Gateway, id: &str, extra: &[(&str, &str)]) -> RawResponse {
    let mut headers = vec![("x-request-id", id)];
    headers.extend_from_slice(extra);
    http1_client()
        .get(&gw.url("/v1/payments/pay_001"), &headers)
        .await
        .unwrap()
}

async fn create(gw: &Gateway, id: &str, trap: &str) -> RawResponse {
    let body =
        r#"{"merchant":"merchants/acme","amount":{"currency_code":"EUR","amount_minor":"500"}}"#;
    http1_client()
        .post(
            &gw.url("/v1/payments"),
            &[
                ("x-request-id", id),
                ("content-type", "application/json"),
                ("x-meshgate-test-trap", trap),
            ],
            body,
        )
        .await
        .unwrap()
}

/// Polls until a plain request is served again (FAIL_RELOAD); how long it took.
async fn served_again(gw: &Gateway) -> Duration {
    let start = Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        let r = get(
            gw,
            &format!("probe-{}-{n}", start.elapsed().as_micros()),
            &[],
        )
        .await;
        if r.status.as_u16() == 200 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not served again 20 s after a trap"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The one record of `id`, written by Envoy (the VM died first).
fn envoys_record(gw: &Gateway, id: &str) -> Value {
    let r = gw
        .record_for(id)
        .unwrap_or_else(|| panic!("no record for {id}: {:?}", gw.access_records()));
    let n = gw
        .access_records()
        .iter()
        .filter(|x| x["requestId"] == id)
        .count();
    assert_eq!(n, 1, "one record for {id}");
    r
}

fn assert_status_json(r: &RawResponse, what: &str) {
    assert_eq!(r.status.as_u16(), 503, "{what}: {}", r.text());
    let body = r.json().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(body["code"], 14, "{what}: {body}");
    assert!(body["message"].is_string(), "{what}: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trap_in_any_request_callback_is_answered_recorded_and_counted_once() {
    if meshgate_kit::harness::skip_on_native(
        "a trapped Wasm VM and Envoy's failure policy (the native module's panics: e2e_native)",
    ) {
        return;
    }
    let gw = GatewayBuilder::demo().wasm(test_wasm()).start().unwrap();
    assert_eq!(get(&gw, "warm-up", &[]).await.status.as_u16(), 200);
    // (callback, the request that reaches it, its operation)
    let cases = [
        ("request_headers", false, GET_PAYMENT),
        ("call_reply", false, GET_PAYMENT),
        ("request_body", true, CREATE_PAYMENT),
        ("response_headers", true, CREATE_PAYMENT),
        ("response_body", true, CREATE_PAYMENT),
        ("response_trailers", true, CREATE_PAYMENT),
    ];
    let mut failures = Vec::new();
    for (callback, post, op) in cases {
        let id = format!("trap-{callback}");
        let before = unavailable(&gw, op);
        let r = if post {
            create(&gw, &id, callback).await
        } else {
            get(&gw, &id, &[("x-meshgate-test-trap", callback)]).await
        };
        let took = served_again(&gw).await;
        println!("{callback}: {} ; served again after {took:?}", r.status);
        if r.status.as_u16() != 503 || r.json().map(|b| b["code"] != 14).unwrap_or(true) {
            failures.push(format!("{callback}: answered {} {}", r.status, r.text()));
        }
        let rec = envoys_record(&gw, &id);
        let want = ("envoy", op, "unavailable", "bad", 503);
        let got = (
            rec["recordedBy"].as_str().unwrap_or_default(),
            rec["operation"].as_str().unwrap_or_default(),
            rec["outcome"].as_str().unwrap_or_default(),
            rec["slo"]["availability"].as_str().unwrap_or_default(),
            rec["httpRequest"]["status"].as_u64().unwrap_or_default(),
        );
        if got != want {
            failures.push(format!("{callback}: record {rec}"));
        }
        let after = unavailable(&gw, op);
        if after != before + 1 {
            failures.push(format!("{callback}: counted {} times", after - before));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(gw.envoy.log().contains("meshgate: the VM trapped in"));
}

/// Trapped in its log callback: the client already had its answer; Envoy writes the record
/// with that status, and meshgate counted it with it (not as a failure).
#[tokio::test(flavor = "multi_thread")]
async fn a_trap_in_the_log_callback_keeps_the_answer_and_counts_it_once() {
    if meshgate_kit::harness::skip_on_native(
        "a trapped Wasm VM and Envoy's failure policy (the native module's panics: e2e_native)",
    ) {
        return;
    }
    let gw = GatewayBuilder::demo().wasm(test_wasm()).start().unwrap();
    let r = get(&gw, "trap-log", &[("x-meshgate-test-trap", "log")]).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    served_again(&gw).await;
    let rec = envoys_record(&gw, "trap-log");
    assert_eq!(rec["recordedBy"], "envoy", "{rec}");
    assert_eq!(rec["httpRequest"]["status"], 200, "{rec}");
    assert_eq!(rec["operation"], GET_PAYMENT, "{rec}");
    let counted = gw.envoy.stat(&format!(
        "wasmcustom.meshgate_requests_total.outcome.2xx.operation.{GET_PAYMENT}"
    ));
    assert_eq!(counted, Some(1));
    assert_eq!(unavailable(&gw, GET_PAYMENT), 0);
}

/// A root callback traps (the tick) while a request waits for its side call (the backend
/// delays it 3 s): that request is answered 503 at once, recorded and counted once.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_in_flight_when_the_vm_traps_is_answered_and_counted() {
    if meshgate_kit::harness::skip_on_native(
        "a trapped Wasm VM and Envoy's failure policy (the native module's panics: e2e_native)",
    ) {
        return;
    }
    let gw = GatewayBuilder::demo().wasm(test_wasm()).start().unwrap();
    let url = gw.url("/v1/payments/pay_001");
    let slow = tokio::spawn(async move {
        let started = Instant::now();
        let r = http1_client()
            .get(
                &url,
                &[("x-request-id", "in-flight"), ("x-demo-delay-ms", "3000")],
            )
            .await
            .unwrap();
        (r, started.elapsed())
    });
    // Once the slow request's side call is out, arm the tick trap.
    gw.envoy
        .wait_for_stat(
            "cluster.payments.upstream_rq_active",
            |n| n >= 1,
            Duration::from_secs(10),
        )
        .unwrap();
    let armer = get(&gw, "arm-tick", &[("x-meshgate-test-trap", "tick")]).await;
    assert_eq!(armer.status.as_u16(), 200);
    let (r, took) = slow.await.unwrap();
    println!("in-flight request: {} after {took:?}", r.status);
    assert_status_json(&r, "in flight");
    assert!(
        took < Duration::from_millis(2500),
        "answered when the VM trapped, not when the backend replied: {took:?}"
    );
    served_again(&gw).await;
    let rec = envoys_record(&gw, "in-flight");
    assert_eq!(rec["outcome"], "unavailable", "{rec}");
    assert_eq!(rec["slo"]["availability"], "bad", "{rec}");
    assert_eq!(unavailable(&gw, GET_PAYMENT), 1);
    assert!(gw.envoy.log().contains("meshgate: the VM trapped in tick"));
}
