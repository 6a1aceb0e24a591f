//! `make run` end to end: `tests/tools/run.sh` (what `make run` starts after building) brings up
//! the demo backends and Envoy with meshgate, prints example requests, and every printed request
//! works against what it started; on SIGTERM (Ctrl-C) it stops everything it started.
//!
//! The script runs on free ports with the test's binaries (`MESHGATE_*` variables), so it does
//! not clash with a developer's own `make run`. Needs `build/meshgate.wasm` and Envoy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use meshgate_kit::harness::flavour::relabel_prometheus;
use meshgate_kit::harness::process::temp_dir;
use meshgate_kit::harness::{
    envoy_bin, free_port, kit_bin, meshgate_cli, native_path, payments_client, repo_root,
    wasm_path, Flavour, ProcessGuard,
};
use meshgate_kit::proto::meshgate::demo::v1::GetPaymentRequest;
use serde_json::Value;

/// The commands under `Try:` in the script's banner, continuation lines joined, comments
/// dropped.
fn printed_commands(banner: &str) -> Vec<String> {
    let block = banner
        .split_once("Try:")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split_once("Ctrl-C stops everything"))
        .map(|(block, _)| block)
        .expect("the banner has a Try: block");
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in block.lines().map(str::trim) {
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                commands.push(std::mem::take(&mut current));
            }
        }
    }
    commands
}

fn run_shell(command: &str) -> String {
    let out = Command::new("bash")
        .args(["-c", command])
        .current_dir(repo_root())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "`{command}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `curl -si` output: the status line's code and the body after the blank line.
fn status_and_body(output: &str) -> (u16, &str) {
    let (head, body) = output
        .split_once("\r\n\r\n")
        .expect("curl -i prints headers, a blank line, the body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, body)
}

fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn make_run_serves_the_printed_examples_and_stops_what_it_started() {
    let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let (listen, admin, payments, wallets, issuer, tls) = (
        addr(free_port().unwrap()),
        addr(free_port().unwrap()),
        addr(free_port().unwrap()),
        addr(free_port().unwrap()),
        addr(free_port().unwrap()),
        addr(free_port().unwrap()),
    );
    let cli = meshgate_cli().unwrap();
    let bin_dir = cli.parent().unwrap().to_path_buf();
    assert_eq!(
        kit_bin("demo-backend").unwrap().parent(),
        Some(bin_dir.as_path()),
        "the demo backend and the command are built in the same directory"
    );
    let out_dir = temp_dir("make-run-files").unwrap();
    // The demo page on a free port too (its origin is then not the one envoy/gateway.yaml
    // allows: e2e_browser.rs tests CORS; here the page is only served).
    let page = addr(free_port().unwrap());
    let mut command = Command::new("bash");
    command
        .arg(repo_root().join("tests/tools/run.sh"))
        .current_dir(repo_root())
        .env("MESHGATE_LISTEN", listen.to_string())
        .env("MESHGATE_ADMIN", admin.to_string())
        .env("MESHGATE_TLS_LISTEN", tls.to_string())
        .env("MESHGATE_PAYMENTS", payments.to_string())
        .env("MESHGATE_WALLETS", wallets.to_string())
        .env("MESHGATE_DEMO_PAGE", page.to_string())
        .env("MESHGATE_ISSUER", issuer.to_string())
        .env("MESHGATE_BIN_DIR", &bin_dir)
        .env("MESHGATE_RUN_DIR", &out_dir)
        .env("MESHGATE_WASM", wasm_path().unwrap())
        .env("MESHGATE_ENVOY", envoy_bin().unwrap());
    // `make run-native` under MESHGATE_FLAVOUR=native: the same demo, banner and examples.
    if Flavour::from_env().unwrap() == Flavour::Native {
        command
            .arg("native")
            .env("MESHGATE_NATIVE", native_path().unwrap());
    }
    let mut run = ProcessGuard::spawn("make-run", &mut command, None).unwrap();
    let banner = run
        .wait_for_stdout("Ctrl-C stops everything", Duration::from_secs(60))
        .unwrap();
    assert!(banner.contains(&format!("gateway http://{listen}")));
    // The demo page: its URL in the banner, and served (with its bundled client).
    assert!(
        banner.contains(&format!("http://{page}/?gateway=http://{listen}")),
        "{banner}"
    );
    let page_html = run_shell(&format!("curl -s http://{page}/"));
    assert!(page_html.contains("app.js"), "{page_html}");
    let bundle = run_shell(&format!("curl -s http://{page}/app.js"));
    assert!(bundle.contains("grpc-web"), "the bundled gRPC-Web client");

    let commands = printed_commands(&banner);
    let curls: Vec<&String> = commands.iter().filter(|c| c.starts_with("curl")).collect();
    assert!(
        curls.len() >= 9,
        "the banner prints the curl examples: {commands:#?}"
    );
    for c in &curls {
        let output = run_shell(c);
        if c.contains("/stats/prometheus") {
            // (On native, as Prometheus stores it with docs/native.md's relabel rule.)
            let output = relabel_prometheus(output);
            assert!(
                output
                    .lines()
                    .any(|l| l.starts_with("meshgate_requests_total")),
                "`{c}` shows meshgate's metrics: {output}"
            );
        } else if c.starts_with("curl -si") {
            // The error examples: a google.rpc.Status with the mapped HTTP status.
            let (status, body) = status_and_body(&output);
            let status_body: Value = serde_json::from_str(body).expect("a JSON body");
            assert!(status >= 400, "`{c}` is an error example: {output}");
            assert!(
                status_body["code"].as_i64().is_some_and(|code| code > 0)
                    && status_body["message"].is_string(),
                "`{c}` answers a google.rpc.Status: {body}"
            );
        } else {
            // A successful JSON answer from a backend, not an error Status.
            let answer: Value = serde_json::from_str(&output)
                .unwrap_or_else(|e| panic!("`{c}` answers JSON ({e}): {output}"));
            assert!(
                answer.is_object() && answer.get("code").is_none(),
                "`{c}` succeeds: {output}"
            );
            if c.contains("/openapi.json") {
                assert_eq!(answer["openapi"], "3.0.3", "`{c}` serves the document");
            }
        }
    }

    // The TLS example: the local CA made at first run, HTTP/2 by ALPN.
    let https = curls
        .iter()
        .find(|c| c.contains("https://localhost:"))
        .expect("the banner prints a TLS example");
    let ca = out_dir.join("tls/ca.pem");
    assert!(
        https.contains(&format!("--cacert {}", ca.display())),
        "{https}"
    );
    assert!(https.contains(&format!(
        "https://localhost:{}/v1/payments/pay_001",
        tls.port()
    )));
    let version = run_shell(&format!("{https} -o /dev/null -w '%{{http_version}}'"));
    assert_eq!(version, "2", "`{https}` is served over HTTP/2");

    check_identity(&banner, &curls);
    check_partner_quota(listen, &curls).await;

    // The native gRPC example (grpcurl is optional on a user's machine; the same call with
    // the kit's tonic client).
    let grpc = commands
        .iter()
        .find(|c| c.starts_with("grpcurl"))
        .expect("the banner prints a native gRPC example");
    assert!(grpc.contains("meshgate.demo.v1.Payments/GetPayment") && grpc.contains("pay_001"));
    let protoset = out_dir.join("payments.pb");
    assert!(
        std::fs::metadata(&protoset).is_ok_and(|m| m.len() > 1000),
        "the descriptor set the gRPC example names is written"
    );
    let reply = payments_client(listen)
        .await
        .unwrap()
        .get_payment(GetPaymentRequest {
            id: "pay_001".into(),
            view: None,
        })
        .await
        .unwrap();
    assert_eq!(reply.into_inner().id, "pay_001");

    // The access records of those requests went to the printed access log.
    let log = std::fs::read_to_string(out_dir.join("access.log")).unwrap();
    assert!(
        log.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|r| r["operation"] == "meshgate.demo.v1.Payments.GetPayment"),
        "access records in {}: {log}",
        out_dir.display()
    );

    // Ctrl-C: the script stops every process it started.
    assert!([listen, admin, payments, wallets, page, issuer, tls]
        .into_iter()
        .all(accepts));
    run.signal(libc::SIGINT);
    let deadline = Instant::now() + Duration::from_secs(10);
    while run.exit_status().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(run.exit_status().is_some(), "run.sh exits on Ctrl-C");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut still = vec![listen, admin, payments, wallets, page, issuer, tls];
    while !still.is_empty() && Instant::now() < deadline {
        still.retain(|a| accepts(*a));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(still.is_empty(), "still listening after Ctrl-C: {still:?}");
    let _ = std::fs::remove_dir_all(&out_dir);
}

/// The identity examples (issue 18): without a token DeletePayment is 401 with a Bearer
/// challenge and a Status of code 16, with the printed token it succeeds; without the demo
/// partner's key GetPaymentStatus is 401 (code 16), with it 200. The token's key was generated
/// into the run's directory, never taken from the repository.
fn check_identity(banner: &str, curls: &[&String]) {
    let find = |what: &str, pred: &dyn Fn(&str) -> bool| -> String {
        curls
            .iter()
            .find(|c| pred(c))
            .map(|c| c.to_string())
            .unwrap_or_else(|| panic!("the banner prints {what}: {curls:#?}"))
    };
    let no_token = find("a DELETE without a token", &|c| {
        c.starts_with("curl -si -X DELETE") && !c.contains("authorization")
    });
    let out = run_shell(&no_token);
    let (status, body) = status_and_body(&out);
    assert_eq!(status, 401, "{out}");
    assert!(
        out.lines().any(|l| l
            .to_ascii_lowercase()
            .starts_with("www-authenticate: bearer")),
        "{out}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(body).unwrap()["code"],
        16,
        "{out}"
    );
    let with_token = find("the DELETE with the token", &|c| {
        c.contains("authorization: Bearer ey")
    });
    let token = banner
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("ey") && l.matches('.').count() == 2)
        .expect("the banner prints the token");
    assert!(
        with_token.contains(token),
        "the curl line uses the printed token"
    );
    let repo_text = std::fs::read_to_string(repo_root().join("envoy/gateway.yaml")).unwrap();
    assert!(!repo_text.contains(token), "the token is made per run");
    let no_key = find("the status call without a key", &|c| {
        c.starts_with("curl -si") && c.contains("/status")
    });
    let out = run_shell(&no_key);
    let (status, body) = status_and_body(&out);
    assert_eq!(status, 401, "{out}");
    assert_eq!(
        serde_json::from_str::<Value>(body).unwrap()["code"],
        16,
        "{out}"
    );
    let with_key = find("the status call with the key", &|c| {
        c.contains("x-api-key: mgk_demo_partner")
    });
    let out = run_shell(&with_key.replace("curl -s ", "curl -s -o /dev/null -w %{http_code} "));
    assert_eq!(out, "200", "`{with_key}`");
}

/// The demo partner's quota (issue 18): a burst of 200 quick uploads with its key gets some
/// 429 with a `Status` of code 8 and a `QuotaFailure` (Envoy's local rate limit, rendered by
/// `meshgate envoy` from the partner's quota).
async fn check_partner_quota(listen: SocketAddr, curls: &[&String]) {
    let upload = curls
        .iter()
        .find(|c| c.contains("/attachments") && c.contains("x-api-key: mgk_demo_partner"))
        .expect("the banner prints an upload with the partner's key");
    assert!(upload.contains(&listen.to_string()), "{upload}");
    let client = meshgate_kit::harness::http1_client();
    let url = format!("http://{listen}/v1/payments/pay_001/attachments");
    let headers = [
        ("x-api-key", "mgk_demo_partner"),
        ("content-type", "text/plain"),
    ];
    let (mut ok, mut limited) = (0, 0);
    for _ in 0..200 {
        let r = client.post(&url, &headers, "receipt scan").await.unwrap();
        match r.status.as_u16() {
            200 => ok += 1,
            429 => {
                let body = r.json().unwrap();
                assert_eq!(body["code"], 8, "{body}");
                assert_eq!(
                    body["details"][0]["@type"], "type.googleapis.com/google.rpc.QuotaFailure",
                    "{body}"
                );
                limited += 1;
            }
            other => panic!("an upload answered {other}: {}", r.text()),
        }
    }
    assert!(limited > 0 && ok <= 20, "{ok} passed, {limited} limited");
}
