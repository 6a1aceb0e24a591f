//! Issue 7 soak: a bounded mixed load (successes, backend errors, bad input, unknown routes)
//! through a real Envoy running the built module, then every count reconciled: every request
//! answered (each scenario always with its status), every request logged once (access
//! records) and every request that matched an operation counted once
//! (`meshgate_requests_total`), Envoy's memory flat after warm-up.
//!
//! `MESHGATE_SOAK_REQUESTS` (default 5000, `make test`); `make soak` runs 200000 and keeps the
//! figures this test prints (`SOAK ...` lines).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meshgate_kit::harness::{http1_client, http2_client, Gateway, GatewayBuilder};

const WORKERS: usize = 16;

/// (name, method, path, extra header, body)
type Scenario = (
    &'static str,
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
    &'static [u8],
);

const SCENARIOS: [Scenario; 7] = [
    ("get ok", "GET", "/v1/payments/pay_001", None, b""),
    ("list ok", "GET", "/v1/payments?page_size=2", None, b""),
    (
        "topup ok",
        "POST",
        "/v1/wallets/w_001:topUp",
        None,
        b"{\"amount\":{\"currency_code\":\"EUR\",\"amount_minor\":5}}",
    ),
    ("backend not found", "GET", "/v1/payments/nope", None, b""),
    (
        "backend unavailable",
        "GET",
        "/v1/payments/pay_001",
        Some(("x-demo-fail", "UNAVAILABLE")),
        b"",
    ),
    ("bad json", "POST", "/v1/payments", None, b"{\"merchant\":"),
    ("unknown route", "GET", "/v1/nothing", None, b""),
];

fn requests() -> usize {
    std::env::var("MESHGATE_SOAK_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000)
}

/// Envoy's resident set size, KiB (`/proc/<pid>/status`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Sum of every `meshgate_requests_total` series.
fn requests_total(gw: &Gateway) -> u64 {
    let text = gw.envoy.stats_prometheus().unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("meshgate_requests_total{") || l.starts_with("meshgate_requests_total ")
        })
        .filter_map(|l| l.rsplit(' ').next())
        .filter_map(|v| v.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// One worker: requests `i, i + WORKERS, ...`; returns (scenario, status) per request.
async fn worker(
    gw_url: String,
    first: usize,
    total: usize,
    done: Arc<AtomicUsize>,
) -> Vec<(usize, Result<u16, String>)> {
    let client = if first.is_multiple_of(2) {
        http1_client()
    } else {
        http2_client()
    };
    let mut out = Vec::new();
    let mut i = first;
    while i < total {
        let scenario = i % SCENARIOS.len();
        let (_, method, path, header, body) = SCENARIOS[scenario];
        let mut headers = vec![("content-type", "application/json")];
        headers.extend(header);
        let method = http::Method::from_bytes(method.as_bytes()).unwrap();
        let url = format!("{gw_url}{path}");
        let call = client.request(method, &url, &headers, body.to_vec());
        let got = match tokio::time::timeout(Duration::from_secs(10), call).await {
            Ok(Ok(resp)) => Ok(resp.status.as_u16()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timeout".to_string()),
        };
        out.push((scenario, got));
        done.fetch_add(1, Ordering::Relaxed);
        i += WORKERS;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_every_request_answered_logged_and_counted_once() {
    let total = requests();
    let gw = GatewayBuilder::demo().start().unwrap();
    let pid = gw.envoy.guard.pid();
    let rss_start = rss_kib(pid);
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        tasks.push(tokio::spawn(worker(gw.url(""), w, total, done.clone())));
    }
    // RSS samples every 10% of the run (bounded: the workers' own timeouts bound the run).
    let mut samples = Vec::new();
    let mut next = total / 10;
    while tasks.iter().any(|t| !t.is_finished()) {
        if done.load(Ordering::Relaxed) >= next && next <= total {
            samples.push((next, rss_kib(pid)));
            next += total / 10;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let mut by_scenario: BTreeMap<usize, BTreeMap<u16, usize>> = BTreeMap::new();
    let mut errors = Vec::new();
    for t in tasks {
        for (scenario, got) in t.await.unwrap() {
            match got {
                Ok(status) => {
                    *by_scenario
                        .entry(scenario)
                        .or_default()
                        .entry(status)
                        .or_default() += 1
                }
                Err(e) => errors.push(format!("{}: {e}", SCENARIOS[scenario].0)),
            }
        }
    }
    samples.push((total, rss_kib(pid)));
    println!(
        "SOAK requests={total} workers={WORKERS} seconds={:.1} rps={:.0}",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    for (s, statuses) in &by_scenario {
        println!("SOAK scenario {:<20} {statuses:?}", SCENARIOS[*s].0);
    }
    println!("SOAK envoy_rss_kib start={rss_start} samples={samples:?}");
    assert!(
        errors.is_empty(),
        "{} requests unanswered, first: {:?}",
        errors.len(),
        errors.first()
    );
    for (s, statuses) in &by_scenario {
        assert_eq!(
            statuses.len(),
            1,
            "scenario {} got mixed statuses {statuses:?}",
            SCENARIOS[*s].0
        );
    }

    // Logged once and counted once: wait (bounded) for the last access-log flush.
    let mut logged = 0;
    for _ in 0..100 {
        logged = gw.access_records().len();
        if logged >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // `meshgate_requests_total` is per operation: a request that matches none (the unknown
    // route scenario) is logged but has no series.
    let unmatched = by_scenario
        .iter()
        .filter(|(s, _)| SCENARIOS[**s].0 == "unknown route")
        .map(|(_, statuses)| statuses.values().sum::<usize>())
        .sum::<usize>();
    let counted = requests_total(&gw);
    println!("SOAK answered={total} access_records={logged} meshgate_requests_total={counted} unmatched={unmatched}");
    assert_eq!(logged, total, "access records");
    assert_eq!(
        counted,
        (total - unmatched) as u64,
        "meshgate_requests_total (matched requests)"
    );

    // Flat memory after warm-up: from the 20% sample to the end, growth under max(16 MiB, 10%).
    let warm = samples
        .iter()
        .find(|(n, _)| *n >= total / 5)
        .map_or(rss_start, |s| s.1);
    let end = samples.last().map_or(0, |s| s.1);
    let allowed = (16 * 1024).max(warm / 10);
    println!(
        "SOAK rss_after_warmup_kib={warm} rss_end_kib={end} growth_kib={}",
        end.saturating_sub(warm)
    );
    assert!(
        end <= warm + allowed,
        "Envoy RSS grew from {warm} KiB to {end} KiB after warm-up"
    );
    let log = gw.envoy.log();
    assert!(!log.contains("panicked"), "the VM panicked during the soak");
}
