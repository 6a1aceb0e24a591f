//! Issue 15, the requests Envoy refuses while it reloads a trapped VM (`FAIL_RELOAD`, what
//! `meshgate envoy` renders). After a trap Envoy waits about a second before it creates the new
//! VM; meanwhile it answers every request 503 itself, before any filter runs (the rendered
//! `local_reply_config` makes that a `google.rpc.Status` UNAVAILABLE), and counts it in
//! `wasm.<plugin>.vm_reload_backoff`. No VM sees those requests, so meshgate cannot record or
//! count them. This test finds that window in a real Envoy (the test build traps on request)
//! and checks what covers it: each refused request has exactly one record, Envoy's
//! (`recordedBy: envoy`, `unavailable`, availability-bad), and Envoy's counter, under the
//! Prometheus name the generated recording rules match (`observe::alerts::ENVOY_RELOAD_REFUSALS`),
//! holds exactly the refused requests, so that meshgate's `meshgate_requests_total` plus it
//! equals Envoy's `downstream_rq_total`: every request counted once (promtool scenarios in
//! `tests/promtool/reload_test.yml`).
//!
//! Needs `build/meshgate-test.wasm` (`make wasm-test`) and Envoy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use meshgate_kit::harness::{http1_client, repo_root, Gateway, GatewayBuilder};
use serde_json::Value;

fn test_wasm() -> std::path::PathBuf {
    let path = repo_root().join("build/meshgate-test.wasm");
    assert!(
        path.is_file(),
        "{} missing: run `make wasm-test`",
        path.display()
    );
    path
}

/// The sum of the Prometheus samples whose metric name satisfies `name`.
fn prom_sum(text: &str, name: impl Fn(&str) -> bool) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (metric, value) = l.rsplit_once(' ')?;
            let bare = metric.split('{').next()?;
            name(bare).then(|| value.parse::<f64>().ok()).flatten()
        })
        .map(|v| v as u64)
        .sum()
}

/// `envoy_wasm_<plugin>_vm_reload_backoff`, as the recording rules match it.
fn is_reload_refusals(name: &str) -> bool {
    name.strip_prefix("envoy_wasm_")
        .and_then(|rest| rest.strip_suffix("_vm_reload_backoff"))
        .is_some_and(|plugin| !plugin.is_empty())
}

fn settled(gw: &Gateway) {
    gw.envoy
        .wait_for_stat(
            "http.gateway.downstream_rq_active",
            |n| n == 0,
            Duration::from_secs(10),
        )
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_refused_while_the_vm_reloads_are_recorded_and_counted() {
    if meshgate_kit::harness::skip_on_native("Envoy reloading a trapped Wasm VM (FAIL_RELOAD)") {
        return;
    }
    assert!(
        meshgate::observe::ENVOY_RELOAD_REFUSALS.contains("envoy_wasm_.+_vm_reload_backoff"),
        "the rules match the name this test checks"
    );
    let gw = GatewayBuilder::demo().wasm(test_wasm()).start().unwrap();
    let url = gw.url("/v1/payments/pay_001");
    let client = http1_client();
    let warm = client.get(&url, &[("x-request-id", "warm")]).await.unwrap();
    assert_eq!(warm.status.as_u16(), 200, "{}", warm.text());
    let trapped = client
        .get(
            &url,
            &[("x-request-id", "trap"), ("x-meshgate-test-trap", "1")],
        )
        .await
        .unwrap();
    assert_eq!(trapped.status.as_u16(), 503, "{}", trapped.text());

    // Requests one after another until one is served again (bounded).
    let started = Instant::now();
    let mut answers: Vec<(String, u16, Value)> = Vec::new();
    loop {
        let id = format!("reload-{}", answers.len());
        let r = client.get(&url, &[("x-request-id", &id)]).await.unwrap();
        let status = r.status.as_u16();
        answers.push((id, status, r.json().unwrap_or(Value::Null)));
        if status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not served again within 20 s: {status} {}",
            r.text()
        );
    }
    let window = started.elapsed();
    let refused: Vec<&(String, u16, Value)> = answers.iter().filter(|a| a.1 != 200).collect();
    println!(
        "reload window: {} requests refused over {window:?}, then served",
        refused.len()
    );
    assert!(
        !refused.is_empty(),
        "Envoy refused requests while reloading"
    );
    for (id, status, body) in &refused {
        assert_eq!(*status, 503, "{id}: {body}");
        assert_eq!(body["code"], 14, "{id}: a google.rpc.Status: {body}");
    }

    settled(&gw);
    // One record each, Envoy's for the refused ones.
    let records = gw.access_records();
    let mut per_id: HashMap<&str, Vec<&Value>> = HashMap::new();
    for r in &records {
        if let Some(id) = r["requestId"].as_str() {
            per_id.entry(id).or_default().push(r);
        }
    }
    let mut wrong = Vec::new();
    for (id, status, _) in &answers {
        match per_id.get(id.as_str()).map(Vec::as_slice) {
            Some([one]) if *status == 200 => {
                if one["recordedBy"] != "meshgate" {
                    wrong.push(format!("{id}: {one}"));
                }
            }
            Some([one]) => {
                let got = (
                    one["recordedBy"].as_str(),
                    one["outcome"].as_str(),
                    one["slo"]["availability"].as_str(),
                    one["httpRequest"]["status"].as_u64(),
                );
                if got != (Some("envoy"), Some("unavailable"), Some("bad"), Some(503)) {
                    wrong.push(format!("{id}: {one}"));
                }
            }
            other => wrong.push(format!("{id}: {} records", other.map_or(0, <[_]>::len))),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} requests without exactly one right record, first: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );

    // Counted once each: meshgate's counter plus Envoy's refusals is Envoy's total.
    let text = gw.envoy.stats_prometheus().unwrap();
    let counted = prom_sum(&text, |n| n == "meshgate_requests_total");
    let refusals = prom_sum(&text, is_reload_refusals);
    let total = gw.envoy.stat("http.gateway.downstream_rq_total").unwrap();
    println!(
        "downstream_rq_total {total} = meshgate_requests_total {counted} + Envoy's reload \
         refusals {refusals}"
    );
    assert_eq!(
        refusals,
        refused.len() as u64,
        "Envoy's counter holds exactly the refused requests"
    );
    assert_eq!(counted + refusals, total, "each request counted once");
    assert_eq!(total as usize, answers.len() + 2, "Envoy saw what was sent");
}
