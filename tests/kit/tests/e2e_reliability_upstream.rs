//! Issue 7 end to end (bad backends and frames): misbehaving backends get 502, slow ones 504,
//! and (issue 15) each such request is recorded and counted exactly once, availability-bad;
//! compressed client frames a gRPC error; issue 16's upstream faults (a real oversized reply, a
//! frame declaring less than it sends, HTML, no trailers, gzip) their defined Status.
//!
//! Split from `e2e_reliability.rs` by behaviour: `e2e_reliability_input.rs` (bad requests),
//! `e2e_reliability_upstream.rs` (bad backends), `e2e_reliability_resilience.rs` (slow
//! clients and a trapped VM); the request table and its checks in `e2e_reliability_support`.
//!
//! Needs `build/meshgate.wasm` (`make wasm`) and Envoy (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_reliability_support;

use e2e_reliability_support::*;
use meshgate_kit::harness::{grpc_frame, http2_client, GatewayBuilder};
use std::time::{Duration, Instant};

/// A misbehaving backend behind a transcoded call (GET: the filter's own call; POST: Envoy's
/// router): 502 (503 for a reset) with a Status body, never an empty 200.
#[tokio::test(flavor = "multi_thread")]
async fn misbehaving_backends_get_502_status() {
    let gw = GatewayBuilder::demo().start().unwrap();
    let mut rows = Vec::new();
    // A reset is UNAVAILABLE (503, as Envoy's router says); a broken reply is 502.
    for (mode, status) in [
        ("bad-frame", 502),
        ("truncated", 502),
        ("compressed", 502),
        ("no-trailers", 502),
        ("reset", 503),
    ] {
        let get = row("misbehave GET", "GET", "/v1/payments/pay_001", b"", status);
        rows.push(
            Row {
                name: leak(format!("GET {mode}")),
                ..get
            }
            .header("x-demo-misbehave", mode),
        );
        // A POST's reset comes after the backend's headers, which meshgate holds: Envoy
        // answers past the filter, and the rendered `local_reply_config` makes that a Status.
        let code = if mode == "reset" { Some(14) } else { None };
        let post = row(
            "misbehave POST",
            "POST",
            "/v1/wallets/w_001:topUp",
            b"{}",
            status,
        );
        rows.push(
            Row {
                name: leak(format!("POST {mode}")),
                code,
                ..post
            }
            .header("x-demo-misbehave", mode),
        );
    }
    let failures = run_rows_accounted(&gw, &rows).await;
    assert_vm_healthy(&gw).await;
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Issue 16's upstream faults, each with its defined answer on the filter's own call (GET) and
/// on Envoy's router (POST): a real reply above `max_response_bytes` (16 MiB + 1 KiB, all
/// sent), a frame declaring less than it carries followed by OK, a `200 text/html` page, a
/// reply without trailers, and a compressed (`grpc-encoding: gzip`) reply the request never
/// offered to accept. Every answer is a Status with the row's code; none is an empty 200.
#[tokio::test(flavor = "multi_thread")]
async fn upstream_faults_get_their_defined_status() {
    let gw = GatewayBuilder::demo().start().unwrap();
    let mut rows = Vec::new();
    // (mode, GET status and code, POST status and code)
    for (mode, get, post) in [
        ("huge", (500, 13), (500, 13)),
        ("short-frame", (502, 13), (502, 13)),
        ("html", (502, 2), (502, 2)),
        ("no-trailers", (502, 13), (502, 13)),
        ("gzip", (502, 13), (502, 13)),
    ] {
        rows.push(
            row(
                leak(format!("fault GET {mode}")),
                "GET",
                "/v1/payments/pay_001",
                b"",
                get.0,
            )
            .code(get.1)
            .header("x-demo-misbehave", mode),
        );
        rows.push(
            row(
                leak(format!("fault POST {mode}")),
                "POST",
                "/v1/wallets/w_001:topUp",
                b"{}",
                post.0,
            )
            .code(post.1)
            .header("x-demo-misbehave", mode),
        );
    }
    let failures = run_rows(&gw, &rows).await;
    assert_vm_healthy(&gw).await;
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A backend slower than the route timeout (1 s) or than the upstream's `timeout_ms` (1 s, the
/// bound of the filter's own call for a body-less GET): 504 DEADLINE_EXCEEDED, in about 1 s;
/// one that stalls after its headers: 504 too.
#[tokio::test(flavor = "multi_thread")]
async fn backend_timeouts_get_504_status() {
    let gw = GatewayBuilder::demo_with("upstreams:\n  payments: {timeout_ms: 1000}\n")
        .route_timeout_s(1)
        .start()
        .unwrap();
    let rows = vec![
        row(
            "slow backend POST",
            "POST",
            "/v1/wallets/w_001:topUp",
            b"{}",
            504,
        )
        .header("x-demo-delay-ms", "3000"),
        row("slow backend GET", "GET", "/v1/payments/pay_001", b"", 504)
            .header("x-demo-delay-ms", "3000"),
    ];
    let started = Instant::now();
    let failures = run_rows_accounted(&gw, &rows).await;
    // A backend that sends its headers, then stalls past the route timeout: Envoy answers 504
    // past meshgate, which holds those headers; the rendered local_reply_config makes it a
    // Status (as it does every router failure of a transcoded request).
    let stall = row(
        "stall after headers POST",
        "POST",
        "/v1/wallets/w_001:topUp",
        b"{}",
        504,
    )
    .header("x-demo-misbehave", "stall");
    let resp = send(&gw, &stall).await.unwrap();
    println!("row {:<28} -> {}: {}", stall.name, resp.status, resp.text());
    assert_eq!(resp.status.as_u16(), 504, "{}", resp.text());
    if let Some(p) = status_shape_problem(&resp) {
        panic!("{}: {p}", stall.name);
    }
    assert_eq!(
        resp.json().unwrap()["code"],
        4,
        "DEADLINE_EXCEEDED: {}",
        resp.text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "timeouts took {:?}",
        started.elapsed()
    );
    assert_vm_healthy(&gw).await;
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A native gRPC client sending a compressed frame (grpc-encoding gzip, flag 1): a clear gRPC
/// error (non-zero grpc-status), not a hang or a success.
#[tokio::test(flavor = "multi_thread")]
async fn compressed_client_frames_get_a_grpc_error() {
    let gw = GatewayBuilder::demo().start().unwrap();
    let mut frame = grpc_frame(b"\x0a\x07pay_001").to_vec();
    frame[0] = 1;
    let client = http2_client();
    let url = gw.url("/meshgate.demo.v1.Payments/GetPayment");
    let call = client.post(
        &url,
        &[
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-encoding", "gzip"),
        ],
        frame,
    );
    let resp = tokio::time::timeout(CLIENT_TIMEOUT, call)
        .await
        .unwrap()
        .unwrap();
    let status = resp
        .trailer("grpc-status")
        .or(resp.header("grpc-status"))
        .map(str::to_string);
    println!(
        "compressed client frame -> {} grpc-status {status:?}",
        resp.status
    );
    assert!(
        status.as_deref().is_some_and(|s| s != "0"),
        "want a gRPC error, got {} {status:?}",
        resp.status
    );
    assert_vm_healthy(&gw).await;
}
