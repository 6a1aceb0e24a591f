//! Issue 7 end to end (resilience): slow clients are served and abandoned requests do no harm,
//! slow readers get the whole reply; a trapped VM recovers under `FAIL_RELOAD` and stays 503
//! under `FAIL_CLOSED` (needs `build/meshgate-test.wasm`, `make wasm-test`).
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
use meshgate_kit::harness::{http1_client, repo_root, Gateway, GatewayBuilder};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A client trickling its body (one byte per 20 ms, ~1.5 s) still gets a correct answer, and a
/// client that stops mid-body and closes leaves the gateway healthy.
#[tokio::test(flavor = "multi_thread")]
async fn slow_clients_are_served_and_abandoned_requests_do_no_harm() {
    let gw = GatewayBuilder::demo().start().unwrap();
    let addr = gw.addr();
    let answer = tokio::task::spawn_blocking(move || {
        let body = br#"{"amount":{"currency_code":"EUR","amount_minor":500}}"#;
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        let head = format!(
            "POST /v1/wallets/w_001:topUp HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        for b in body.iter() {
            s.write_all(&[*b]).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        // An abandoned request: half a body, then close.
        let mut s2 = TcpStream::connect(addr).unwrap();
        s2.write_all(b"POST /v1/payments HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"merch")
            .unwrap();
        drop(s2);
        out
    })
    .await
    .unwrap();
    let status_line = answer.lines().next().unwrap_or_default().to_string();
    println!("slow client -> {status_line}");
    assert!(status_line.contains(" 200 "), "slow client got: {answer}");
    // The abandoned request is over once Envoy has no request in flight.
    gw.envoy
        .wait_for_stat(
            "http.gateway.downstream_rq_active",
            |n| n == 0,
            Duration::from_secs(10),
        )
        .unwrap();
    assert_vm_healthy(&gw).await;
}

/// A client that reads a large reply slowly (4 KiB every 10 ms, so Envoy's buffers fill and it
/// must hold the rest back) gets all of it, intact; the gateway serves others meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn slow_readers_get_the_whole_reply() {
    let gw = GatewayBuilder::demo().start().unwrap();
    let addr = gw.addr();
    let merchant = format!("merchants/{}", "m".repeat(512 << 10));
    let body = serde_json::json!({
        "merchant": merchant,
        "amount": {"currency_code": "EUR", "amount_minor": "500"},
    })
    .to_string();
    let reading = Arc::new(AtomicBool::new(false));
    let started_reading = reading.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        let head = format!(
            "POST /v1/payments HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body.as_bytes()).unwrap();
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    out.extend_from_slice(&chunk[..n]);
                    started_reading.store(true, Ordering::SeqCst);
                }
                Err(e) => panic!("slow reader: {e} after {} bytes", out.len()),
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        out
    });
    // Meanwhile (once the slow reader has its first bytes), another client is served.
    let polled = Instant::now();
    while !reading.load(Ordering::SeqCst) {
        assert!(
            polled.elapsed() < CLIENT_TIMEOUT,
            "the slow reader got no reply bytes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let other = http1_client()
        .get(&gw.url("/v1/payments/pay_001"), &[])
        .await
        .unwrap();
    assert_eq!(other.status.as_u16(), 200, "served while a reader is slow");
    let raw = reader.await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, reply) = text.split_once("\r\n\r\n").unwrap_or_default();
    println!(
        "slow reader -> {} ({} bytes of body)",
        head.lines().next().unwrap_or_default(),
        reply.len()
    );
    assert!(head.starts_with("HTTP/1.1 200 "), "slow reader got: {head}");
    let payment: serde_json::Value = serde_json::from_str(reply).unwrap();
    assert_eq!(
        payment["merchant"].as_str().map(str::len),
        Some(merchant.len())
    );
    assert_vm_healthy(&gw).await;
}

fn test_wasm() -> std::path::PathBuf {
    let path = repo_root().join("build/meshgate-test.wasm");
    assert!(
        path.is_file(),
        "{} missing: run `make wasm-test`",
        path.display()
    );
    path
}

/// Sends `x-meshgate-test-trap` (the test build panics on it) and returns the status.
async fn trap(gw: &Gateway) -> u16 {
    let resp = http1_client()
        .get(
            &gw.url("/v1/payments/pay_001"),
            &[("x-meshgate-test-trap", "1")],
        )
        .await
        .unwrap();
    resp.status.as_u16()
}

/// FAIL_RELOAD (the rendered configs' default): after a trap, Envoy creates a fresh VM and the
/// next requests are served again. Prints how long recovery took.
#[tokio::test(flavor = "multi_thread")]
async fn vm_trap_with_fail_reload_recovers() {
    if meshgate_kit::harness::skip_on_native(
        "a trapped Wasm VM and Envoy's failure policy (the native module's panics: e2e_native)",
    ) {
        return;
    }
    let gw = GatewayBuilder::demo()
        .wasm(test_wasm())
        .failure_policy("FAIL_RELOAD")
        .start()
        .unwrap();
    let ok = http1_client()
        .get(&gw.url("/v1/payments/pay_001"), &[])
        .await
        .unwrap();
    assert_eq!(ok.status.as_u16(), 200);
    let trapped_at = Instant::now();
    let status = trap(&gw).await;
    println!("trap request -> {status}");
    assert_ne!(status, 200, "the trap request cannot succeed");
    let mut recovered = None;
    for _ in 0..100 {
        let resp = http1_client()
            .get(&gw.url("/v1/payments/pay_001"), &[])
            .await
            .unwrap();
        if resp.status.as_u16() == 200 {
            recovered = Some(trapped_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = recovered.expect("no request was served within 5 s of the trap");
    println!("FAIL_RELOAD: served again {took:?} after the trap");
    assert!(
        gw.envoy.log().contains("panicked"),
        "the trap did not happen"
    );
    // And again: a second trap is recovered from too.
    assert_ne!(trap(&gw).await, 200);
    let mut again = false;
    for _ in 0..100 {
        let resp = http1_client()
            .get(&gw.url("/v1/payments/pay_001"), &[])
            .await
            .unwrap();
        if resp.status.as_u16() == 200 {
            again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(again, "not served again after a second trap");
}

/// FAIL_CLOSED, for contrast: after a trap the filter stays failed and every request gets 503
/// until Envoy restarts (why the rendered configs use FAIL_RELOAD).
#[tokio::test(flavor = "multi_thread")]
async fn vm_trap_with_fail_closed_stays_503() {
    if meshgate_kit::harness::skip_on_native(
        "a trapped Wasm VM and Envoy's failure policy (the native module's panics: e2e_native)",
    ) {
        return;
    }
    let gw = GatewayBuilder::demo()
        .wasm(test_wasm())
        .failure_policy("FAIL_CLOSED")
        .start()
        .unwrap();
    assert_ne!(trap(&gw).await, 200);
    for _ in 0..5 {
        let resp = http1_client()
            .get(&gw.url("/v1/payments/pay_001"), &[])
            .await
            .unwrap();
        println!("FAIL_CLOSED after trap -> {}", resp.status);
        assert_eq!(resp.status.as_u16(), 503, "a failed VM must fail closed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
