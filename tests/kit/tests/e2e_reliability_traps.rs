//! Issue 15, traps: the test build (`build/meshgate-test.wasm`, `make wasm-test`) traps in the
//! callback a request names (`x-meshgate-test-trap`); under the shipped failure policy
//! (`FAIL_RELOAD`) Envoy serves again, the trapped request got a 503 `google.rpc.Status` (or,
//! trapped in its log callback, the answer it already had), it has exactly one record (Envoy's:
//! the VM died before meshgate's log callback) naming its operation, and meshgate counted it once
//! (`unavailable`, availability-bad) before the VM aborted. A request in flight on another
//! stream when the VM trapped (waiting for its side call's reply, which would go to the dead
//! VM) is answered 503 at once and counted too.
//!
//! On the native module (`MESHGATE_FLAVOUR=native`, its test build
//! `build/libmeshgate_native-test.so`, `make native-test`) the same trigger panics in that hook:
//! nothing is replaced, the request is answered 500 INTERNAL, and its log hook still writes
//! meshgate's record (status 500, its operation, availability-bad) and counts it once; a panic
//! in the log hook keeps the answer and counts it once, as a trap there does under wasm. A trap
//! in a root callback (the tick) replaces a Wasm VM: that test is wasm-only.
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

use meshgate_kit::harness::{http1_client, Flavour, Gateway, GatewayBuilder, RawResponse};
use serde_json::Value;

const GET_PAYMENT: &str = "meshgate.demo.v1.Payments.GetPayment";
const CREATE_PAYMENT: &str = "meshgate.demo.v1.Payments.CreatePayment";

fn native() -> bool {
    Flavour::from_env().unwrap().is_native()
}

/// The demo on the flavour's test build (`make wasm-test`, `make native-test`).
fn start_test_gateway() -> Gateway {
    GatewayBuilder::demo().test_module().start().unwrap()
}

/// `meshgate_requests_total` of `op` (one `outcome`, or all), from `/stats/prometheus` (the
/// same names on both flavours: `Envoy::stats_prometheus`).
fn requests(gw: &Gateway, op: &str, outcome: Option<&str>) -> u64 {
    let text = gw.envoy.stats_prometheus().unwrap();
    let op = format!("operation=\"{op}\"");
    let outcome = outcome.map(|o| format!("outcome=\"{o}\""));
    text.lines()
        .filter_map(|l| l.strip_prefix("meshgate_requests_total{"))
        .filter(|l| l.contains(&op) && outcome.as_ref().is_none_or(|o| l.contains(o)))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Those of `op` not `ok` (the probes of [`served_again`] are `ok`).
fn not_ok(gw: &Gateway, op: &str) -> u64 {
    requests(gw, op, None) - requests(gw, op, Some("ok"))
}

fn unavailable(gw: &Gateway, op: &str) -> u64 {
    requests(gw, op, Some("unavailable"))
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

/// The one record of `id` (Envoy's when the VM died first; meshgate's for a native panic).
fn one_record(gw: &Gateway, id: &str) -> Value {
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
    let native = native();
    let gw = start_test_gateway();
    assert_eq!(get(&gw, "warm-up", &[]).await.status.as_u16(), 200);
    // (callback, the request that reaches it, its operation)
    let mut cases = vec![
        ("request_headers", false, GET_PAYMENT),
        ("request_body", true, CREATE_PAYMENT),
        ("response_headers", true, CREATE_PAYMENT),
        ("response_body", true, CREATE_PAYMENT),
        ("response_trailers", true, CREATE_PAYMENT),
    ];
    if !native {
        // A side call's reply (the native module sends a transcoded GET through the router).
        cases.insert(1, ("call_reply", false, GET_PAYMENT));
    }
    // wasm: Envoy answers the trapped stream 503 UNAVAILABLE and writes its record (the VM
    // died first); native: the glue answers 500 INTERNAL and the log hook writes meshgate's.
    let (status, code, recorded_by, outcome) = if native {
        (500, 13, "meshgate", "5xx")
    } else {
        (503, 14, "envoy", "unavailable")
    };
    let mut failures = Vec::new();
    for (callback, post, op) in cases {
        let id = format!("trap-{callback}");
        let before = (requests(&gw, op, Some(outcome)), not_ok(&gw, op));
        let r = if post {
            create(&gw, &id, callback).await
        } else {
            get(&gw, &id, &[("x-meshgate-test-trap", callback)]).await
        };
        let took = served_again(&gw).await;
        println!("{callback}: {} ; served again after {took:?}", r.status);
        if r.status.as_u16() != status || r.json().map(|b| b["code"] != code).unwrap_or(true) {
            failures.push(format!("{callback}: answered {} {}", r.status, r.text()));
        }
        let rec = one_record(&gw, &id);
        let want = (recorded_by, op, outcome, "bad", u64::from(status));
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
        let after = (requests(&gw, op, Some(outcome)), not_ok(&gw, op));
        if after != (before.0 + 1, before.1 + 1) {
            failures.push(format!(
                "{callback}: counted {} times ({} as {outcome})",
                after.1 - before.1,
                after.0 - before.0
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let said = if native {
        "meshgate: the native filter panicked in"
    } else {
        "meshgate: the VM trapped in"
    };
    assert!(gw.envoy.log().contains(said), "{}", gw.envoy.log());
}

/// Trapped in its log callback: the client already had its answer; Envoy writes the record
/// with that status, and meshgate counted it with it (not as a failure). The same on both
/// flavours (native: nothing is answered again).
#[tokio::test(flavor = "multi_thread")]
async fn a_trap_in_the_log_callback_keeps_the_answer_and_counts_it_once() {
    let gw = start_test_gateway();
    let r = get(&gw, "trap-log", &[("x-meshgate-test-trap", "log")]).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    served_again(&gw).await;
    let rec = one_record(&gw, "trap-log");
    assert_eq!(rec["recordedBy"], "envoy", "{rec}");
    assert_eq!(rec["httpRequest"]["status"], 200, "{rec}");
    assert_eq!(rec["operation"], GET_PAYMENT, "{rec}");
    assert_eq!(requests(&gw, GET_PAYMENT, Some("2xx")), 1);
    assert_eq!(not_ok(&gw, GET_PAYMENT), 1, "counted once");
    assert_eq!(unavailable(&gw, GET_PAYMENT), 0);
}

/// A root callback traps (the tick) while a request waits for its side call (the backend
/// delays it 3 s): that request is answered 503 at once, recorded and counted once.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_in_flight_when_the_vm_traps_is_answered_and_counted() {
    if meshgate_kit::harness::skip_on_native(
        "a trap in a root callback (the tick) replaces the Wasm VM; the native module has no VM to replace, and its test build panics only in a stream's hooks",
    ) {
        return;
    }
    let gw = start_test_gateway();
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
    let rec = one_record(&gw, "in-flight");
    assert_eq!(rec["outcome"], "unavailable", "{rec}");
    assert_eq!(rec["slo"]["availability"], "bad", "{rec}");
    assert_eq!(unavailable(&gw, GET_PAYMENT), 1);
    assert!(gw.envoy.log().contains("meshgate: the VM trapped in tick"));
}
