//! Issue 15's "done when", against `make run` itself (`tests/tools/run.sh` on free ports, as
//! `make_run.rs` starts it): a mix of normal calls, unknown paths, malformed bodies, clients
//! giving up on slow calls (`x-demo-delay-ms`) and requests Envoy's codec refuses before the
//! filter (431, a malformed request line) gives the same number three times: Envoy's
//! `downstream_rq_total` on the gateway listener, the access records (one line each), and the
//! sum of `meshgate_requests_total`; the abandoned calls are `outcome="cancelled"` in both.
//! A request on a route with the filter off (the OpenAPI document) has Envoy's record and is
//! not counted. The same on the native module (`MESHGATE_FLAVOUR=native`): Envoy runs the
//! filter's log hook for the requests its codec refused, and makes no filter where a route
//! switches it off.
//!
//! Needs `build/meshgate.wasm` (or, on native, `build/libmeshgate_native.so`) and Envoy. Envoy keeps its default log flush (10 s): the test
//! asks it to write its logs out (`/reopen_logs`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use meshgate_kit::harness::admin;
use meshgate_kit::harness::envoy::stat_in;
use meshgate_kit::harness::process::temp_dir;
use meshgate_kit::harness::{
    envoy_bin, free_port, http1_client, kit_bin, meshgate_cli, repo_root, wasm_path, ProcessGuard,
};
use serde_json::Value;

const NORMAL: usize = 6;
const UNKNOWN: usize = 3;
const MALFORMED: usize = 3;
const ABORTED: usize = 3;
const TOO_LARGE: usize = 2;
const BAD_REQUEST_LINE: usize = 2;
const TOTAL: usize = NORMAL + UNKNOWN + MALFORMED + ABORTED + TOO_LARGE + BAD_REQUEST_LINE;
/// Requests on a route with the filter switched off (the OpenAPI document, answered by Envoy):
/// Envoy's record, not meshgate's to count, on either flavour (Envoy makes no filter for them).
const FILTER_OFF: usize = 1;

fn admin_get(admin: SocketAddr, path: &str) -> String {
    match admin::get(admin, path, Duration::from_secs(5)) {
        Ok((200, body)) => body,
        other => panic!("admin {path}: {other:?}"),
    }
}

/// Sum of every `meshgate_requests_total` series, and of those with `outcome="cancelled"`.
fn requests_total(prometheus: &str) -> (u64, u64) {
    let mut all = 0.0;
    let mut cancelled = 0.0;
    for line in prometheus.lines() {
        let Some(rest) = line.strip_prefix("meshgate_requests_total{") else {
            continue;
        };
        let value: f64 = rest
            .rsplit_once(' ')
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0.0);
        all += value;
        if rest.contains("outcome=\"cancelled\"") {
            cancelled += value;
        }
    }
    (all as u64, cancelled as u64)
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a record ({e}): {l}")))
        .collect()
}

/// A raw HTTP/1.1 exchange; the status line's code (0 when none came).
fn raw(addr: SocketAddr, bytes: &[u8]) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn make_run_records_and_counts_every_request_exactly_once() {
    let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let (listen, admin, payments, wallets) = (
        addr(free_port().unwrap()),
        addr(free_port().unwrap()),
        addr(free_port().unwrap()),
        addr(free_port().unwrap()),
    );
    let bin_dir = meshgate_cli().unwrap().parent().unwrap().to_path_buf();
    // run.sh starts the demo backends from the same directory (built on first use).
    assert_eq!(
        kit_bin("demo-backend").unwrap().parent(),
        Some(bin_dir.as_path())
    );
    let out_dir = temp_dir("make-run-count").unwrap();
    let mut command = Command::new("bash");
    command
        .arg(repo_root().join("tests/tools/run.sh"))
        .current_dir(repo_root())
        .env("MESHGATE_LISTEN", listen.to_string())
        .env("MESHGATE_ADMIN", admin.to_string())
        .env("MESHGATE_PAYMENTS", payments.to_string())
        .env("MESHGATE_WALLETS", wallets.to_string())
        // The demo's other servers on free ports too (helpers and suites run side by side).
        .env(
            "MESHGATE_TLS_LISTEN",
            addr(free_port().unwrap()).to_string(),
        )
        .env("MESHGATE_DEMO_PAGE", addr(free_port().unwrap()).to_string())
        .env("MESHGATE_ISSUER", addr(free_port().unwrap()).to_string())
        .env("MESHGATE_BIN_DIR", &bin_dir)
        .env("MESHGATE_RUN_DIR", &out_dir)
        .env("MESHGATE_WASM", wasm_path().unwrap())
        .env("MESHGATE_ENVOY", envoy_bin().unwrap());
    let mut run = ProcessGuard::spawn("make-run", &mut command, None).unwrap();
    run.wait_for_stdout("Ctrl-C stops everything", Duration::from_secs(60))
        .unwrap();
    let url = |path: &str| format!("http://{listen}{path}");
    let client = http1_client();

    for _ in 0..NORMAL {
        let r = client.get(&url("/v1/payments/pay_001"), &[]).await.unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    }
    for i in 0..UNKNOWN {
        let r = client
            .get(&url(&format!("/no/such/{i}")), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 404);
    }
    for _ in 0..MALFORMED {
        let r = client
            .post(
                &url("/v1/payments"),
                &[("content-type", "application/json")],
                "{not json",
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 400, "{}", r.text());
    }
    // Clients giving up on slow calls (the backend waits 2 s; the client 500 ms).
    let impatient = http1_client().with_timeout(Duration::from_millis(500));
    for _ in 0..ABORTED {
        let r = impatient
            .get(&url("/v1/payments/pay_001"), &[("x-demo-delay-ms", "2000")])
            .await;
        assert!(r.is_err(), "the client gave up: {r:?}");
    }
    // Refused by Envoy's codec before the filter runs.
    let big = "a".repeat(70 * 1024);
    for _ in 0..TOO_LARGE {
        let r = client
            .get(&url("/v1/payments/pay_001"), &[("x-big", big.as_str())])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 431);
    }
    for _ in 0..BAD_REQUEST_LINE {
        let status = tokio::task::spawn_blocking(move || {
            raw(listen, b"GET / HTTP/1.1\r\nhost: x\r\nBad Header\r\n\r\n")
        })
        .await
        .unwrap();
        assert_eq!(status, 400);
    }

    for _ in 0..FILTER_OFF {
        let r = client.get(&url("/openapi.json"), &[]).await.unwrap();
        assert_eq!(r.status.as_u16(), 200);
    }

    // Every request is over once Envoy has none active; then its logs are written out.
    let deadline = Instant::now() + Duration::from_secs(20);
    let access_log = out_dir.join("access.log");
    let (rq_total, recs, (counted, cancelled)) = loop {
        let stats = admin_get(admin, "/stats");
        let active = stat_in(&stats, "http.gateway.downstream_rq_active");
        let _ = admin::request(admin, "POST", "/reopen_logs", Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(100));
        let rq_total = stat_in(&stats, "http.gateway.downstream_rq_total").unwrap_or(0);
        let recs = records(&access_log);
        let scrape = admin_get(admin, "/stats/prometheus");
        let counts = requests_total(&meshgate_kit::harness::flavour::relabel_prometheus(scrape));
        let settled = active == Some(0)
            && rq_total as usize == TOTAL + FILTER_OFF
            && recs.len() == TOTAL + FILTER_OFF
            && counts.0 as usize == TOTAL;
        if settled || Instant::now() > deadline {
            break (rq_total, recs, counts);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    println!(
        "downstream_rq_total {rq_total}, access records {}, sum of meshgate_requests_total \
         {counted} ({cancelled} cancelled); sent {TOTAL} and {FILTER_OFF} with the filter off",
        recs.len()
    );
    assert_eq!(
        rq_total as usize,
        TOTAL + FILTER_OFF,
        "Envoy counted what was sent"
    );
    assert_eq!(
        recs.len(),
        TOTAL + FILTER_OFF,
        "one record per request: {recs:#?}"
    );
    assert_eq!(
        counted as usize, TOTAL,
        "each counted once (the filter-off ones not)"
    );
    let off: Vec<&Value> = recs
        .iter()
        .filter(|r| {
            r["httpRequest"]["requestUrl"]
                .as_str()
                .is_some_and(|u| u.ends_with("/openapi.json"))
        })
        .collect();
    assert_eq!(off.len(), FILTER_OFF, "{recs:#?}");
    assert!(off.iter().all(|r| r["recordedBy"] == "envoy"), "{off:#?}");
    assert_eq!(
        cancelled as usize, ABORTED,
        "the abandoned calls are cancelled"
    );
    let cancelled_records: Vec<&Value> = recs
        .iter()
        .filter(|r| r["outcome"] == "cancelled")
        .collect();
    assert_eq!(cancelled_records.len(), ABORTED, "{recs:#?}");
    for r in cancelled_records {
        assert_eq!(r["httpRequest"]["status"], 499, "{r}");
        assert_eq!(r["grpcStatus"], "CANCELLED", "{r}");
        // Given up after 500 ms, over the 300 ms threshold of Payments: slow.
        assert_eq!(r["slo"]["latency"], "bad", "{r}");
    }
    let refused = recs
        .iter()
        .filter(|r| {
            r["httpRequest"]["status"] == 431
                || (r["httpRequest"]["status"] == 400 && r.get("operation").is_none())
        })
        .count();
    assert_eq!(refused, TOO_LARGE + BAD_REQUEST_LINE, "{recs:#?}");
    // Written by meshgate's log callback (on both flavours Envoy runs the filter's log hook
    // for a request its codec refused), not by Envoy's fallback record.
    for r in recs.iter().filter(|r| r["httpRequest"]["status"] == 431) {
        assert_eq!(r["recordedBy"], "meshgate", "{r}");
    }
    // The sizes Envoy counted (headers and bodies), on either flavour.
    let size = |r: &Value, key: &str| -> u64 {
        r["httpRequest"][key]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    let ok: Vec<&Value> = recs
        .iter()
        .filter(|r| r["httpRequest"]["status"] == 200)
        .collect();
    println!("a served call's record: {}", ok[0]);
    for r in ok {
        assert!(size(r, "requestSize") > 0, "{r}");
        assert!(size(r, "responseSize") > 0, "{r}");
    }

    run.signal(libc::SIGINT);
    let deadline = Instant::now() + Duration::from_secs(10);
    while run.exit_status().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(run.exit_status().is_some(), "run.sh exits on Ctrl-C");
    let _ = std::fs::remove_dir_all(&out_dir);
}
