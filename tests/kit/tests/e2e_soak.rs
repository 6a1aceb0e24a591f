//! The soak (issues 7 and 15): a bounded mixed load through a real Envoy with two workers (two
//! meshgate VMs) running the built module, then a reconciliation per request id: every request
//! answered with its scenario's expected status, every request id exactly once in the access
//! records with that status (499 for a call its client gave up on), every request counted
//! once (`meshgate_requests_total` sums to the number sent; the abandoned ones under
//! `outcome="cancelled"`), and memory: the VMs' linear memory (`meshgate_vm_memory_bytes`)
//! from warm-up (20%) to the end, as pages per 10k requests (target: zero), and Envoy's RSS.
//!
//! Scenarios: successes (unary, list, body, server streaming), backend errors, bad input,
//! unknown routes, clients giving up on slow calls. Not yet in it (issue 15, still owed):
//! JWT-protected operations with more distinct tokens than the token cache holds, and a JWKS
//! rotating during the run.
//!
//! `MESHGATE_SOAK_REQUESTS` (default 3000, `make test`); `make soak` runs 200000 and keeps the
//! figures this test prints (`SOAK ...` lines).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meshgate_kit::harness::{http1_client, http2_client, Gateway, GatewayBuilder};
use serde_json::Value;

/// Concurrent clients (half HTTP/1.1, half HTTP/2).
const CLIENTS: usize = 16;
/// Envoy's workers: one meshgate VM each.
const ENVOY_WORKERS: u32 = 2;
/// How long a client waits before giving up on the slow scenario (the backend waits 1 s).
const IMPATIENT: Duration = Duration::from_millis(200);

struct Scenario {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    header: Option<(&'static str, &'static str)>,
    body: &'static [u8],
    /// The status the client gets and the record carries (499: the client gave up).
    status: u16,
}

const fn s(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    header: Option<(&'static str, &'static str)>,
    body: &'static [u8],
    status: u16,
) -> Scenario {
    Scenario {
        name,
        method,
        path,
        header,
        body,
        status,
    }
}

const SCENARIOS: [Scenario; 9] = [
    s("get ok", "GET", "/v1/payments/pay_001", None, b"", 200),
    s("list ok", "GET", "/v1/payments?page_size=2", None, b"", 200),
    s(
        "topup ok",
        "POST",
        "/v1/wallets/w_001:topUp",
        None,
        b"{\"amount\":{\"currency_code\":\"EUR\",\"amount_minor\":5}}",
        200,
    ),
    s(
        "server stream",
        "GET",
        "/v1/merchants/acme/payments:watch?max_events=3",
        None,
        b"",
        200,
    ),
    s(
        "backend not found",
        "GET",
        "/v1/payments/nope",
        None,
        b"",
        404,
    ),
    s(
        "backend unavailable",
        "GET",
        "/v1/payments/pay_001",
        Some(("x-demo-fail", "UNAVAILABLE")),
        b"",
        503,
    ),
    s(
        "bad json",
        "POST",
        "/v1/payments",
        None,
        b"{\"merchant\":",
        400,
    ),
    s("unknown route", "GET", "/v1/nothing", None, b"", 404),
    s(
        "client gives up",
        "GET",
        "/v1/payments/pay_002",
        Some(("x-demo-delay-ms", "1000")),
        b"",
        499,
    ),
];

fn requests() -> usize {
    std::env::var("MESHGATE_SOAK_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
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

/// The VMs' linear memory, bytes (the gauge a VM sets every tick).
fn vm_memory(gw: &Gateway) -> u64 {
    gw.envoy
        .stat("wasmcustom.meshgate_vm_memory_bytes")
        .unwrap_or(0)
}

/// Sum of every `meshgate_requests_total` series, and of the `cancelled` ones.
fn requests_total(gw: &Gateway) -> (u64, u64) {
    let text = gw.envoy.stats_prometheus().unwrap();
    let mut all = 0.0;
    let mut cancelled = 0.0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("meshgate_requests_total{") else {
            continue;
        };
        let v: f64 = rest
            .rsplit_once(' ')
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0.0);
        all += v;
        if rest.contains("outcome=\"cancelled\"") {
            cancelled += v;
        }
    }
    (all as u64, cancelled as u64)
}

/// What the client saw of one request: its status, 499 when it gave up as planned.
type Seen = Result<u16, String>;

/// One client: requests `i, i + CLIENTS, ...`; returns (request number, seen) per request.
async fn client(
    gw_url: String,
    first: usize,
    total: usize,
    done: Arc<AtomicUsize>,
) -> Vec<(usize, Seen)> {
    let client = if first.is_multiple_of(2) {
        http1_client()
    } else {
        http2_client()
    };
    let impatient = client.clone().with_timeout(IMPATIENT);
    let mut out = Vec::new();
    let mut i = first;
    while i < total {
        let sc = &SCENARIOS[i % SCENARIOS.len()];
        let id = format!("soak-{i}");
        let mut headers = vec![
            ("content-type", "application/json"),
            ("x-request-id", id.as_str()),
        ];
        headers.extend(sc.header);
        let method = http::Method::from_bytes(sc.method.as_bytes()).unwrap();
        let url = format!("{gw_url}{}", sc.path);
        let seen = if sc.status == 499 {
            match impatient
                .request(method, &url, &headers, sc.body.to_vec())
                .await
            {
                Ok(r) => Err(format!("answered {} before the client gave up", r.status)),
                Err(e) if e.to_string().contains("no whole answer") => Ok(499),
                Err(e) => Err(e.to_string()),
            }
        } else {
            match client
                .request(method, &url, &headers, sc.body.to_vec())
                .await
            {
                Ok(r) if sc.name == "server stream" && r.body.is_empty() => {
                    Err("an empty stream".to_string())
                }
                Ok(r) => Ok(r.status.as_u16()),
                Err(e) => Err(e.to_string()),
            }
        };
        out.push((i, seen));
        done.fetch_add(1, Ordering::Relaxed);
        i += CLIENTS;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_every_request_answered_recorded_and_counted_once() {
    let total = requests();
    let gw = GatewayBuilder::demo()
        .workers(ENVOY_WORKERS)
        .start()
        .unwrap();
    let pid = gw.envoy.guard.pid();
    let rss_start = rss_kib(pid);
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        tasks.push(tokio::spawn(client(gw.url(""), c, total, done.clone())));
    }
    // Memory samples every 10% of the run (the clients' own timeouts bound the run).
    let mut samples: Vec<(usize, u64, u64)> = Vec::new();
    let mut next = total / 10;
    while tasks.iter().any(|t| !t.is_finished()) {
        if done.load(Ordering::Relaxed) >= next && next <= total {
            samples.push((next, rss_kib(pid), vm_memory(&gw)));
            next += total / 10;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let mut seen: HashMap<usize, Seen> = HashMap::new();
    for t in tasks {
        seen.extend(t.await.unwrap());
    }
    samples.push((total, rss_kib(pid), vm_memory(&gw)));
    println!(
        "SOAK requests={total} clients={CLIENTS} envoy_workers={ENVOY_WORKERS} seconds={:.1} rps={:.0}",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );

    // Answered with the expected status.
    let mut by_scenario: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
    let mut wrong = Vec::new();
    for (i, got) in &seen {
        let sc = &SCENARIOS[i % SCENARIOS.len()];
        let key = match got {
            Ok(s) => s.to_string(),
            Err(e) => format!("error: {}", e.chars().take(80).collect::<String>()),
        };
        *by_scenario
            .entry(sc.name)
            .or_default()
            .entry(key)
            .or_default() += 1;
        if got.as_ref().ok() != Some(&sc.status) {
            wrong.push(format!("soak-{i} ({}): {got:?}", sc.name));
        }
    }
    for (name, statuses) in &by_scenario {
        println!("SOAK scenario {name:<20} {statuses:?}");
    }

    // Recorded once each, with the expected status; counted once each.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (records, counted) = loop {
        let active = gw.envoy.stat("http.gateway.downstream_rq_active");
        let records = gw.access_records();
        let counted = requests_total(&gw);
        if (active == Some(0) && records.len() >= total && counted.0 as usize >= total)
            || Instant::now() > deadline
        {
            break (records, counted);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut per_id: HashMap<&str, Vec<&Value>> = HashMap::new();
    for r in &records {
        if let Some(id) = r["requestId"].as_str() {
            per_id.entry(id).or_default().push(r);
        }
    }
    let mut unrecorded = Vec::new();
    let mut twice = Vec::new();
    let mut record_status = Vec::new();
    for i in 0..total {
        let sc = &SCENARIOS[i % SCENARIOS.len()];
        let id = format!("soak-{i}");
        match per_id.get(id.as_str()).map(Vec::as_slice) {
            None | Some([]) => unrecorded.push(id),
            Some([one]) => {
                if one["httpRequest"]["status"] != sc.status {
                    record_status.push(format!("{id} ({}): {}", sc.name, one["httpRequest"]));
                }
            }
            Some(more) => twice.push(format!("{id}: {}", more.len())),
        }
    }
    let gave_up = (0..total)
        .filter(|i| SCENARIOS[i % SCENARIOS.len()].status == 499)
        .count();
    println!(
        "SOAK reconciliation: sent={total} answered_as_expected={} records={} ids_recorded_once={} \
         unrecorded={} recorded_twice={} record_status_wrong={} meshgate_requests_total={} \
         cancelled={} (expected {gave_up})",
        total - wrong.len(),
        records.len(),
        total - unrecorded.len() - twice.len(),
        unrecorded.len(),
        twice.len(),
        record_status.len(),
        counted.0,
        counted.1
    );

    // Memory: from the 20% sample (warm) to the end.
    let warm = samples
        .iter()
        .find(|(n, _, _)| *n >= total / 5)
        .copied()
        .unwrap_or((0, rss_start, 0));
    let end = samples.last().copied().unwrap_or_default();
    let after_warm = end.0.saturating_sub(warm.0).max(1);
    let pages = end.2.saturating_sub(warm.2) / 65536;
    println!(
        "SOAK vm_memory_bytes warm={} end={} growth_pages={pages} pages_per_10k_requests={:.2}",
        warm.2,
        end.2,
        pages as f64 * 10_000.0 / after_warm as f64
    );
    println!(
        "SOAK envoy_rss_kib start={rss_start} warm={} end={} growth_kib={} samples={:?}",
        warm.1,
        end.1,
        end.1.saturating_sub(warm.1),
        samples
    );

    assert!(
        wrong.is_empty(),
        "{} unexpected answers, first: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert!(
        unrecorded.is_empty(),
        "{} ids without a record, first: {:?}",
        unrecorded.len(),
        &unrecorded[..unrecorded.len().min(5)]
    );
    assert!(
        twice.is_empty(),
        "ids recorded more than once: {:?}",
        &twice[..twice.len().min(5)]
    );
    assert!(
        record_status.is_empty(),
        "records with another status: {:?}",
        &record_status[..record_status.len().min(5)]
    );
    assert_eq!(records.len(), total, "one record per request");
    assert_eq!(
        counted.0 as usize, total,
        "meshgate_requests_total: each request once"
    );
    assert_eq!(
        counted.1 as usize, gave_up,
        "abandoned calls counted as cancelled"
    );
    assert!(end.2 > 0, "the VM memory gauge is published");
    let allowed = (16 * 1024).max(warm.1 / 10);
    assert!(
        end.1 <= warm.1 + allowed,
        "Envoy RSS grew from {} KiB to {} KiB after warm-up",
        warm.1,
        end.1
    );
    assert!(
        !gw.envoy.log().contains("panicked"),
        "the VM panicked during the soak"
    );
}
