//! Browser clients end to end: the demo page (tests/browser/demo, its gRPC-Web client a real
//! library from npm bundled by esbuild) in Debian's headless Chromium, driven over WebDriver,
//! served from another origin than the gateway's (a real Envoy with meshgate and Envoy's CORS
//! and gRPC-Web filters, the demo gRPC backends). From the allowed origin, with a token: a
//! preflighted JSON POST with an `Authorization` header, the page reading a 404 `Status` body,
//! a gRPC-Web unary and a server-streaming call; without a token, the 401 and its
//! `WWW-Authenticate` readable by the page; from another origin, every call fails in the
//! browser. Then, without a browser, the wire facts behind them (preflight answers, the gRPC-Web
//! trailer frame) and what meshgate recorded and counted (preflights, the gRPC-Web protocol).
//! The screenshot of the demo page is kept at build/browser/demo-page.png.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_browser_support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use base64::Engine;

use e2e_browser_support::{exchange, static_server, Browser};
use meshgate_fixtures::{claims, jwks, token};
use meshgate_kit::harness::{
    meshgate_cli, process::temp_dir, repo_root, Flavour, Gateway, GatewayBuilder,
};
use serde_json::{json, Value};

const ISSUER: &str = "https://idp.browser.test";
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// The demo page, built as `make run` builds it.
fn build_site() -> PathBuf {
    let site = temp_dir("browser-site").unwrap();
    let cli = meshgate_cli().unwrap();
    let status = Command::new(repo_root().join("tests/browser/build.sh"))
        .arg(&site)
        .arg(repo_root().join("envoy/gateway.yaml"))
        .env("MESHGATE_BIN_DIR", cli.parent().unwrap())
        .status()
        .unwrap();
    assert!(status.success(), "tests/browser/build.sh failed");
    site
}

/// The demo gateway with Payments behind a JWT provider and CORS for `origin` only.
fn gateway(origin: &str) -> Gateway {
    let doc = json!({
        "services": {"meshgate.demo.v1.Payments": {
            "upstream": "payments", "auth": {"provider": "web"}, "slo": {"availability": 99.9},
        }},
        "auth": {"providers": [{
            "name": "web", "issuer": ISSUER, "audiences": ["api"],
            "jwks": {"inline": jwks::of(&[jwks::p256(meshgate_fixtures::keys::KID_P256)])},
        }]},
        "cors": {"allow_origins": [origin], "max_age_seconds": 5},
    });
    GatewayBuilder::demo_doc("browser", doc).start().unwrap()
}

fn page_results(browser: &Browser, url: &str) -> Value {
    browser.open(url);
    browser.wait_for(
        "return document.body.dataset.done === 'true' ? window.meshgateResults : null",
        PAGE_TIMEOUT,
    )
}

#[test]
fn a_page_on_another_origin_calls_json_and_grpc_web_and_a_disallowed_origin_cannot() {
    let site = build_site();
    let (_allowed_server, allowed) = static_server("page-allowed", &site);
    let (_other_server, other) = static_server("page-other", &site);
    let origin = format!("http://{allowed}");
    let gw = gateway(&origin);
    let gw_url = format!("http://{}", gw.addr());
    let bearer = token::token("ES256", &claims::valid(ISSUER, claims::now_secs()));

    let browser = Browser::start(&temp_dir("chromium-profile").unwrap());

    // The allowed origin, with a token.
    let with_token = format!("{origin}/?gateway={gw_url}&token={bearer}");
    let r = page_results(&browser, &with_token);
    let shot = browser.screenshot();
    let png = repo_root().join("build/browser/demo-page.png");
    std::fs::create_dir_all(png.parent().unwrap()).unwrap();
    std::fs::write(&png, &shot).unwrap();
    assert!(shot.starts_with(b"\x89PNG"), "a PNG screenshot");

    assert_eq!(r["json-get"]["status"], 200, "{r:#}");
    assert_eq!(r["json-get"]["body"]["id"], "pay_001", "{r:#}");
    // The preflighted POST (JSON content type and an Authorization header).
    assert_eq!(r["json-post"]["status"], 200, "{r:#}");
    assert_eq!(
        r["json-post"]["body"]["merchant"], "merchants/acme",
        "{r:#}"
    );
    // The page reads the 404's google.rpc.Status and the exposed request id.
    assert_eq!(r["json-error"]["status"], 404, "{r:#}");
    assert_eq!(r["json-error"]["body"]["code"], 5, "{r:#}");
    assert!(r["json-error"]["body"]["message"]
        .as_str()
        .unwrap()
        .contains("nope"));
    assert!(r["json-error"]["requestId"].is_string(), "{r:#}");
    // gRPC-Web through a real client library, unary and server streaming.
    assert_eq!(r["grpc-unary"]["ok"], true, "{r:#}");
    assert_eq!(r["grpc-unary"]["message"]["id"], "pay_001", "{r:#}");
    assert_eq!(r["grpc-stream"]["ok"], true, "{r:#}");
    assert_eq!(
        r["grpc-stream"]["events"].as_array().map(Vec::len),
        Some(3),
        "{r:#}"
    );
    // The page shows the demo payment.
    let shown = browser.script("return document.getElementById('json-get').textContent");
    assert!(shown.as_str().unwrap().contains("pay_001"), "{shown}");

    // The allowed origin without a token: the 401 and its challenge are readable.
    let r = page_results(&browser, &format!("{origin}/?gateway={gw_url}"));
    assert_eq!(r["json-get"]["status"], 401, "{r:#}");
    assert_eq!(r["json-get"]["body"]["code"], 16, "{r:#}");
    assert!(
        r["json-get"]["wwwAuthenticate"]
            .as_str()
            .unwrap()
            .starts_with("Bearer"),
        "{r:#}"
    );
    assert_eq!(r["grpc-unary"]["ok"], false, "{r:#}");
    assert_eq!(
        r["grpc-unary"]["code"], 16,
        "unauthenticated, read from grpc-status: {r:#}"
    );

    // Another origin, with a token: every call fails in the browser.
    let r = page_results(
        &browser,
        &format!("http://{other}/?gateway={gw_url}&token={bearer}"),
    );
    for call in [
        "json-get",
        "json-post",
        "json-error",
        "grpc-unary",
        "grpc-stream",
    ] {
        assert_eq!(
            r[call]["ok"], false,
            "{call} from a disallowed origin: {r:#}"
        );
    }
    drop(browser);

    wire_facts(gw.addr(), &origin, &format!("http://{other}"));
    records_and_metrics(&gw);
}

/// meshgate's errors made once the response has started (a backend's trailers-only reply, the
/// router's own error converted) carry the CORS headers an allowed origin needs, as a success
/// does: Envoy sends such a local reply past every encoder filter, its CORS filter included.
/// Another origin gets none. On both flavours; no browser needed.
#[test]
fn errors_made_while_the_response_is_under_way_carry_cors_headers_for_an_allowed_origin() {
    let origin = "http://127.0.0.1:8088";
    let other = "http://127.0.0.1:8099";
    let gw = gateway(origin);
    let t = Duration::from_secs(10);
    let bearer = format!(
        "Bearer {}",
        token::token("ES256", &claims::valid(ISSUER, claims::now_secs()))
    );
    let call = |method: &str, path: &str, from: &str, body: &str, extra: &[(&str, &str)]| {
        let mut headers = vec![("authorization", bearer.as_str()), ("origin", from)];
        headers.extend_from_slice(extra);
        if !body.is_empty() {
            headers.push(("content-type", "application/json"));
        }
        exchange(gw.addr(), method, path, &headers, body.as_bytes(), t)
    };
    let cors = |r: &e2e_browser_support::Raw| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(k, _)| k.starts_with("access-control-"))
            .cloned()
            .collect();
        v.sort();
        v
    };
    let ok = call("GET", "/v1/payments/pay_001", origin, "", &[]);
    assert_eq!(ok.status, 200);
    let expected = cors(&ok);
    assert_eq!(ok.header("access-control-allow-origin"), Some(origin));
    let native = matches!(Flavour::from_env(), Ok(Flavour::Native));
    let negative =
        r#"{"merchant":"merchants/acme","amount":{"currencyCode":"EUR","amountMinor":"-5"}}"#;
    let cancel = r#"{"reason":"x"}"#;
    let none: &[(&str, &str)] = &[];
    let cases = [
        // Trailers-only NOT_FOUND on a transcoded POST through the router.
        ("POST", "/v1/payments/pay_nope:cancel", cancel, none, 404, 5),
        // Trailers-only INVALID_ARGUMENT from the backend.
        ("POST", "/v1/payments", negative, none, 400, 3),
        // Headers and trailers without data (the backend's `no-data`: NOT_FOUND).
        (
            "POST",
            "/v1/payments/pay_001:cancel",
            cancel,
            &[("x-demo-misbehave", "no-data")],
            404,
            5,
        ),
        // A transcoded GET (a side call on wasm, the router on native).
        ("GET", "/v1/payments/nope", "", none, 404, 5),
    ];
    for (method, path, body, extra, status, code) in cases {
        let call = |from: &str| call(method, path, from, body, extra);
        let r = call(origin);
        let text = String::from_utf8_lossy(&r.body).to_string();
        assert_eq!(r.status, status, "{method} {path}: {text}");
        let status_body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(status_body["code"], code, "{method} {path}: {text}");
        assert!(status_body["message"].is_string(), "{text}");
        assert_eq!(cors(&r), expected, "{method} {path}");
        if native {
            // Rendered in place (`Host::can_add_response_body`): the backend's reply went on
            // through every encoder filter, its own headers kept, no local reply.
            assert_eq!(
                r.header("x-demo-backend"),
                Some("payments"),
                "{method} {path}"
            );
        }
        let r = call(other);
        assert_eq!(r.status, status, "{method} {path} from {other}");
        let status_body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(status_body["code"], code);
        assert_eq!(cors(&r), vec![], "{method} {path} from {other}");
    }
}

/// What `make run`'s banner shows, on the wire.
fn wire_facts(gw: SocketAddr, origin: &str, other: &str) {
    let t = Duration::from_secs(10);
    let preflight = |from: &str| {
        exchange(
            gw,
            "OPTIONS",
            "/v1/payments",
            &[
                ("Origin", from),
                ("Access-Control-Request-Method", "POST"),
                (
                    "Access-Control-Request-Headers",
                    "authorization, content-type",
                ),
            ],
            b"",
            t,
        )
    };
    let ok = preflight(origin);
    assert!((200..300).contains(&ok.status), "{}", ok.status);
    assert_eq!(ok.header("access-control-allow-origin"), Some(origin));
    assert!(ok
        .header("access-control-allow-headers")
        .unwrap()
        .contains("authorization"));
    let refused = preflight(other);
    assert_eq!(refused.header("access-control-allow-origin"), None);

    // gRPC-Web on the wire: the message, then a trailer frame with grpc-status:0 (the
    // Payments service needs a token here).
    let bearer = format!(
        "Bearer {}",
        token::token("ES256", &claims::valid(ISSUER, claims::now_secs()))
    );
    let mut frame = vec![0u8, 0, 0, 0, 9, 0x0a, 7];
    frame.extend_from_slice(b"pay_001");
    let b64 = base64::engine::general_purpose::STANDARD;
    for content_type in [
        "application/grpc-web+proto",
        "application/grpc-web",
        "application/grpc-web-text",
    ] {
        let text_mode = content_type.ends_with("-text");
        let body = if text_mode {
            b64.encode(&frame).into_bytes()
        } else {
            frame.clone()
        };
        let reply = exchange(
            gw,
            "POST",
            "/meshgate.demo.v1.Payments/GetPayment",
            &[
                ("content-type", content_type),
                ("accept", content_type),
                ("authorization", &bearer),
                ("origin", origin),
            ],
            &body,
            t,
        );
        assert_eq!(reply.status, 200, "{content_type}");
        assert_eq!(reply.header("access-control-allow-origin"), Some(origin));
        let bytes: Vec<u8> = if text_mode {
            // Each base64 chunk decodes on its own (the message, then the trailer frame).
            let text = String::from_utf8_lossy(&reply.body).to_string();
            text.split_inclusive('=')
                .flat_map(|chunk| b64.decode(chunk.trim()).unwrap_or_default())
                .collect()
        } else {
            reply.body.clone()
        };
        assert!(
            String::from_utf8_lossy(&bytes).contains("pay_001"),
            "{content_type}"
        );
        let trailer = bytes
            .iter()
            .rposition(|b| *b == 0x80)
            .expect("a trailer frame");
        let trailers = String::from_utf8_lossy(&bytes[trailer + 5..]);
        assert!(
            trailers.contains("grpc-status:0"),
            "{content_type}: {trailers}"
        );
    }
}

/// Preflights are recorded and counted as such, outside the objectives; gRPC-Web calls say so.
fn records_and_metrics(gw: &Gateway) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let records = loop {
        let records = gw.access_records();
        let has = |f: &dyn Fn(&Value) -> bool| records.iter().any(f);
        if has(&|r| r["outcome"] == "preflight") && has(&|r| r["clientProtocol"] == "grpc-web") {
            break records;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "records: {records:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let preflight = records
        .iter()
        .find(|r| {
            r["outcome"] == "preflight"
                && r["operation"] == "meshgate.demo.v1.Payments.CreatePayment"
        })
        .unwrap_or_else(|| panic!("a preflight record: {records:#?}"));
    assert_eq!(preflight["httpRequest"]["requestMethod"], "OPTIONS");
    assert_eq!(preflight["slo"]["availability"], "n/a");
    let web = records
        .iter()
        .find(|r| r["clientProtocol"] == "grpc-web" && r["outcome"] == "ok")
        .unwrap_or_else(|| panic!("a gRPC-Web record: {records:#?}"));
    assert_eq!(web["operation"], "meshgate.demo.v1.Payments.GetPayment");

    let prom = gw.envoy.stats_prometheus().unwrap();
    let line = prom
        .lines()
        .find(|l| {
            l.starts_with("meshgate_requests_total{")
                && l.contains("outcome=\"preflight\"")
                && l.contains("CreatePayment")
        })
        .unwrap_or_else(|| panic!("a preflight counter: {prom}"));
    let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 2.0, "{line}");
    // Preflights are in no objective: the SLO events of CreatePayment count only the POSTs.
    let slo_total: f64 = prom
        .lines()
        .filter(|l| {
            l.starts_with("meshgate_slo_events_total{")
                && l.contains("CreatePayment")
                && l.contains("slo=\"availability\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    let posts = records
        .iter()
        .filter(|r| {
            r["operation"] == "meshgate.demo.v1.Payments.CreatePayment"
                && r["httpRequest"]["requestMethod"] == "POST"
        })
        .count();
    assert_eq!(slo_total as usize, posts, "{prom}");
}
