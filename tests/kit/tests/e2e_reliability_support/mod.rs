//! The request table of the reliability end-to-end suites (`e2e_reliability_*.rs`): rows of
//! hostile or broken requests, how they are sent, and the checks every answer must pass
//! (a `google.rpc.Status`-shaped JSON body, `code` number and `message` string, of the
//! row's status within a bounded client timeout; a healthy VM afterwards: no panic or trap in
//! Envoy's log). Each family collects every failing row before asserting, so one run names
//! them all.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use meshgate_kit::harness::{http1_client, Gateway, RawResponse};
use std::time::{Duration, Instant};

/// Longest any single matrix request may take (nothing may hang).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One row: what is sent and the status it must get.
pub struct Row {
    pub name: &'static str,
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    pub status: u16,
    /// The `code` the Status body must carry, when the row pins it.
    pub code: Option<u64>,
}

impl Row {
    pub fn header(mut self, name: &'static str, value: &str) -> Row {
        self.headers.push((name, value.to_string()));
        self
    }

    pub fn code(mut self, code: u64) -> Row {
        self.code = Some(code);
        self
    }
}

pub fn row(name: &'static str, method: &'static str, path: &str, body: &[u8], status: u16) -> Row {
    Row {
        name,
        method,
        path: path.to_string(),
        headers: vec![("content-type", "application/json".to_string())],
        body: body.to_vec(),
        status,
        code: None,
    }
}

pub async fn send(gw: &Gateway, r: &Row) -> Result<RawResponse, String> {
    let headers: Vec<(&str, &str)> = r.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let method = http::Method::from_bytes(r.method.as_bytes()).unwrap();
    let client = http1_client();
    let url = gw.url(&r.path);
    let call = client.request(method, &url, &headers, r.body.clone());
    match tokio::time::timeout(CLIENT_TIMEOUT, call).await {
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(e)) => Err(format!("client error: {e}")),
        Err(_) => Err(format!("no answer within {CLIENT_TIMEOUT:?} (hang)")),
    }
}

/// `None` when the body is a `google.rpc.Status` JSON object; otherwise why not.
pub fn status_shape_problem(resp: &RawResponse) -> Option<String> {
    let Ok(v) = resp.json() else {
        return Some(format!("body is not JSON: {:?}", resp.text()));
    };
    let ok = v["code"].is_u64() && v["message"].is_string();
    (!ok).then(|| format!("body is not a google.rpc.Status: {v}"))
}

/// Sends every row; returns the failures (empty = all good) and prints what each row got.
pub async fn run_rows(gw: &Gateway, rows: &[Row]) -> Vec<String> {
    let mut failures = Vec::new();
    for r in rows {
        let started = Instant::now();
        match send(gw, r).await {
            Err(e) => failures.push(format!("{}: {e}", r.name)),
            Ok(resp) => {
                let got = resp.status.as_u16();
                println!(
                    "row {:<28} -> {got} in {:?}: {}",
                    r.name,
                    started.elapsed(),
                    resp.text().chars().take(160).collect::<String>()
                );
                if got != r.status {
                    failures.push(format!(
                        "{}: status {got}, want {} (body {:?})",
                        r.name,
                        r.status,
                        resp.text()
                    ));
                } else if let Some(p) = status_shape_problem(&resp) {
                    failures.push(format!("{}: {p}", r.name));
                } else if let Some(code) = r
                    .code
                    .filter(|c| resp.json().ok().map(|v| v["code"].clone()) != Some((*c).into()))
                {
                    failures.push(format!("{}: code is not {code}: {}", r.name, resp.text()));
                }
            }
        }
    }
    failures
}

/// Sum of every `meshgate_requests_total` series.
pub fn requests_counted(gw: &Gateway) -> u64 {
    let text = gw.envoy.stats_prometheus().unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("meshgate_requests_total{"))
        .filter_map(|rest| rest.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Like [`run_rows`], and each answered row's request must also be recorded and counted
/// exactly once: one access record (meshgate's) under its request id with the status the
/// client got and, for a 5xx, `slo.availability: bad`; `meshgate_requests_total` one higher.
pub async fn run_rows_accounted(gw: &Gateway, rows: &[Row]) -> Vec<String> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let mut failures = Vec::new();
    for r in rows {
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("row-{n}");
        let before = requests_counted(gw);
        let tagged = Row {
            headers: r
                .headers
                .iter()
                .cloned()
                .chain([("x-request-id", id.clone())])
                .collect(),
            body: r.body.clone(),
            path: r.path.clone(),
            ..*r
        };
        failures.extend(run_rows(gw, std::slice::from_ref(&tagged)).await);
        // Counted once (counters are immediate, but the log callback may run a moment after
        // the client has its answer).
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut after = requests_counted(gw);
        while after < before + 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            after = requests_counted(gw);
        }
        if after != before + 1 {
            failures.push(format!("{}: counted {} times", r.name, after - before));
        }
        let records: Vec<_> = match gw.record_for(&id) {
            Some(_) => gw
                .access_records()
                .into_iter()
                .filter(|rec| rec["requestId"] == id.as_str())
                .collect(),
            None => Vec::new(),
        };
        match records.as_slice() {
            [rec] => {
                let bad = rec["slo"]["availability"] == "bad";
                let ok = rec["recordedBy"] == "meshgate"
                    && rec["httpRequest"]["status"] == r.status
                    && (r.status < 500 || bad);
                if !ok {
                    failures.push(format!("{}: record {rec}", r.name));
                }
            }
            other => failures.push(format!("{}: {} records", r.name, other.len())),
        }
    }
    failures
}

/// The VM never panicked or trapped, and the gateway still answers a good request.
pub async fn assert_vm_healthy(gw: &Gateway) {
    let log = gw.envoy.log();
    for needle in ["panicked", "Uncaught", "wasm trap", "Function: proxy_on"] {
        assert!(
            !log.contains(needle),
            "Envoy log shows a VM failure ({needle}):\n{log}"
        );
    }
    let resp = http1_client()
        .get(&gw.url("/v1/payments/pay_001"), &[])
        .await
        .unwrap();
    assert_eq!(resp.status.as_u16(), 200, "the gateway stopped answering");
}

pub fn nested(depth: usize) -> Vec<u8> {
    let mut s = String::from("{\"payment\":{\"metadata\":");
    for _ in 0..depth {
        s.push_str("{\"a\":");
    }
    s.push('1');
    for _ in 0..depth {
        s.push('}');
    }
    s.push_str("}}");
    s.into_bytes()
}

/// Malformed and ill-typed JSON bodies: 400 INVALID_ARGUMENT.
pub fn json_rows() -> Vec<Row> {
    let create = "/v1/payments";
    let topup = "/v1/wallets/w_001:topUp";
    vec![
        row("malformed json", "POST", create, b"{\"merchant\":", 400),
        row(
            "truncated json",
            "POST",
            create,
            b"{\"merchant\":\"m\"",
            400,
        ),
        row("not an object", "POST", topup, b"[1,2,3]", 400),
        row("trailing garbage", "POST", topup, b"{} x", 400),
        row(
            "wrong type string",
            "POST",
            create,
            b"{\"merchant\":5}",
            400,
        ),
        row(
            "wrong type object",
            "POST",
            create,
            b"{\"amount\":\"12\"}",
            400,
        ),
        row(
            "wrong type bool",
            "POST",
            create,
            b"{\"test_mode\":\"yes\"}",
            400,
        ),
        row(
            "huge int64",
            "POST",
            create,
            b"{\"amount\":{\"amount_minor\":\"99999999999999999999999\"}}",
            400,
        ),
        row("huge double", "POST", create, b"{\"fx_rate\":1e999}", 400),
        row(
            "fractional int",
            "POST",
            create,
            b"{\"amount\":{\"amount_minor\":1.5}}",
            400,
        ),
        row("deep nesting", "POST", create, &nested(200), 400),
        row(
            "invalid utf-8",
            "POST",
            create,
            b"{\"merchant\":\"\xff\xfe\"}",
            400,
        ),
        row(
            "invalid base64 bytes",
            "POST",
            create,
            b"{\"idempotency_key\":\"@@not base64@@\"}",
            400,
        ),
        row(
            "unknown enum name",
            "POST",
            create,
            b"{\"state\":\"NO_SUCH_STATE\"}",
            400,
        ),
        row(
            "unknown field",
            "POST",
            create,
            b"{\"no_such_field\":1}",
            400,
        ),
        row(
            "bad timestamp",
            "POST",
            create,
            b"{\"create_time\":\"yesterday\"}",
            400,
        ),
    ]
}

/// Bad paths and query strings: 400 (unknown route: 404).
pub fn url_rows() -> Vec<Row> {
    vec![
        row("bad percent in path", "GET", "/v1/payments/%zz", b"", 400),
        row("truncated percent", "GET", "/v1/payments/ab%2", b"", 400),
        row(
            "percent to invalid utf-8",
            "GET",
            "/v1/payments/%ff%fe",
            b"",
            400,
        ),
        row(
            "bad percent in query",
            "GET",
            "/v1/payments?page_token=%zz",
            b"",
            400,
        ),
        row(
            "wrong query type",
            "GET",
            "/v1/payments?page_size=lots",
            b"",
            400,
        ),
        row(
            "unknown query param",
            "GET",
            "/v1/payments?no_such=1",
            b"",
            400,
        ),
        row("unknown route", "GET", "/v1/nothing/here", b"", 404),
    ]
}
