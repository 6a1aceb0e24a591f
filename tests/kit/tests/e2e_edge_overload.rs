//! Issue 16, overload: real Envoy on the bootstrap `meshgate envoy` renders, with a heap limit
//! a little above what the idle Envoy uses (`--max-heap-bytes`). A burst of large request bodies
//! (held open, so Envoy keeps them buffered) pushes the heap past the overload manager's
//! thresholds: new requests get `503` with a `google.rpc.Status` body (code 14) made by the
//! rendered local reply mapper for response code details `overload`, nothing crashes, and once
//! the burst is gone the gateway serves again.
//!
//! Needs `build/meshgate.wasm` (`make wasm`) and Envoy (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use meshgate_kit::harness::{
    http1_client, render_demo, start_envoy_with_args, Envoy, RenderedDemo,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GOOD_PATH: &str = "/v1/payments/pay_001";
/// Each burst request's body (under the demo's 4 MiB `max_request_bytes`).
const BODY: usize = 3 << 20;
const BURST: usize = 40;

struct Edge {
    envoy: Envoy,
    _rendered: RenderedDemo,
    access_log: PathBuf,
}

/// The rendered demo bootstrap with `extra` flags, plus a file access log of each reply's
/// status, code details and flags.
fn start_edge(tag: &str, extra: &[&str]) -> Edge {
    let rendered = render_demo(&format!("overload-{tag}"), extra).unwrap();
    let mut b: Value = serde_yaml_ng::from_str(&rendered.yaml).unwrap();
    let access_log = rendered.dir.join("replies.log");
    b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["access_log"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": access_log.display().to_string(),
                "log_format": {"text_format_source": {"inline_string":
                    "%RESPONSE_CODE% %RESPONSE_CODE_DETAILS% %RESPONSE_FLAGS% %REQ(:PATH)%\n"}}
            }
        }));
    // The access log reaches its file within 100 ms (Envoy's default flush is 10 s).
    let envoy = start_envoy_with_args(
        &serde_yaml_ng::to_string(&b).unwrap(),
        &["--file-flush-interval-msec", "100"],
    )
    .unwrap();
    Edge {
        envoy,
        _rendered: rendered,
        access_log,
    }
}

/// What the heap monitor measures (`envoy.resource_monitors.fixed_heap`): heap size less the
/// free and unmapped page heap.
fn heap_in_use(envoy: &Envoy) -> u64 {
    let (status, body) = envoy.admin_get("/memory").unwrap();
    assert_eq!(status, 200, "{body}");
    let m: Value = serde_json::from_str(&body).unwrap();
    let n = |k: &str| -> u64 {
        m[k].as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| m[k].as_u64())
            .unwrap_or(0)
    };
    n("heap_size") - n("pageheap_unmapped") - n("pageheap_free")
}

async fn get(addr: SocketAddr) -> Result<(u16, String), String> {
    let client = http1_client();
    match tokio::time::timeout(
        Duration::from_secs(5),
        client.get(&format!("http://{addr}{GOOD_PATH}"), &[]),
    )
    .await
    {
        Ok(Ok(r)) => Ok((r.status.as_u16(), r.text())),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// One burst request: headers and all but the last byte of a large JSON body, held open.
async fn hold_large_body(addr: SocketAddr) -> Option<TcpStream> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    let head = format!(
        "POST /v1/wallets/w_001:topUp HTTP/1.1\r\nHost: gw\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        BODY + 1
    );
    s.write_all(head.as_bytes()).await.ok()?;
    let mut body = vec![b' '; BODY];
    body[0] = b'{';
    s.write_all(&body).await.ok()?;
    Some(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_large_bodies_gets_503_status_and_the_gateway_recovers() {
    // The idle heap of this Envoy with the module loaded and one request served.
    let probe = start_edge("probe", &[]);
    let (status, body) = get(probe.envoy.listener_addr()).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let idle = heap_in_use(&probe.envoy);
    drop(probe);

    // A limit 64 MiB above it: idle pressure well under the first threshold (85 %), a burst of
    // 40 x 3 MiB bodies far above the last (98 %).
    let limit = idle + (64 << 20);
    let edge = start_edge("burst", &[&format!("--max-heap-bytes={limit}")]);
    let addr = edge.envoy.listener_addr();
    let (status, body) = get(addr).await.unwrap();
    assert_eq!(status, 200, "before the burst: {body}");
    println!(
        "idle heap {} MiB, limit {} MiB",
        heap_in_use(&edge.envoy) >> 20,
        limit >> 20
    );

    let started = Instant::now();
    let mut held = Vec::new();
    for _ in 0..BURST {
        held.extend(hold_large_body(addr).await);
    }
    // New requests while the bodies are held: 503 Status from the overload manager.
    let mut answers = std::collections::BTreeMap::new();
    let mut overload_reply = None;
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        peak = peak.max(heap_in_use(&edge.envoy));
        let r = get(addr).await;
        let key = match &r {
            Ok((s, _)) => s.to_string(),
            Err(e) => format!("error {e}"),
        };
        *answers.entry(key).or_insert(0) += 1;
        if let Ok((503, body)) = r {
            overload_reply = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "burst of {} x {} MiB held; heap peak {} MiB; answers while held: {answers:?} ({:.1} s)",
        held.len(),
        BODY >> 20,
        peak >> 20,
        started.elapsed().as_secs_f64()
    );
    let body = overload_reply.unwrap_or_else(|| {
        panic!(
            "no 503 while {} large bodies were held (heap peak {} MiB of {} MiB): {answers:?}",
            held.len(),
            peak >> 20,
            limit >> 20
        )
    });
    let status: Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("the overload 503 is not a Status ({e}): {body}"));
    assert_eq!(status["code"], 14, "UNAVAILABLE: {status}");
    assert!(status["message"].is_string(), "{status}");

    // The burst's own requests: those past the threshold were refused with the same Status
    // (the others are still held, unanswered).
    let mut refused = 0;
    let mut other = Vec::new();
    let mut buf = vec![0u8; 8192];
    for s in &mut held {
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with("HTTP/1.1 503") && text.contains("\"code\":14") {
                refused += 1;
            } else if n > 0 {
                other.push(text);
            }
        }
    }
    println!(
        "burst requests refused with 503 Status: {refused} of {}",
        held.len()
    );
    assert!(
        other.is_empty(),
        "burst answers other than 503 Status: {other:?}"
    );

    // Release the burst; the gateway serves again.
    drop(held);
    let released = Instant::now();
    let mut recovered = None;
    while released.elapsed() < Duration::from_secs(20) {
        if let Ok((200, _)) = get(addr).await {
            recovered = Some(released.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered = recovered.unwrap_or_else(|| {
        panic!(
            "not serving 20 s after the burst (heap {} MiB of {} MiB)",
            heap_in_use(&edge.envoy) >> 20,
            limit >> 20
        )
    });
    println!(
        "served again {} ms after the burst was released (heap {} MiB)",
        recovered.as_millis(),
        heap_in_use(&edge.envoy) >> 20
    );
    for _ in 0..10 {
        let (status, body) = get(addr).await.unwrap();
        assert_eq!(status, 200, "after recovery: {body}");
    }

    // The 503 was the overload manager's, mapped by the local reply mapper for its details
    // (polled, bounded: Envoy writes its access logs out when asked).
    let polled = Instant::now();
    let log = loop {
        edge.envoy.flush_access_logs();
        let log = std::fs::read_to_string(&edge.access_log).unwrap_or_default();
        let found = log.lines().any(|l| l.starts_with("503 overload"));
        if found || polled.elapsed() > Duration::from_secs(10) {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stats = edge.envoy.stats_text().unwrap();
    let overload_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("503 overload"))
        .collect();
    println!(
        "access log: {} replies '503 overload'; e.g. {:?}",
        overload_lines.len(),
        overload_lines.first()
    );
    assert!(
        !overload_lines.is_empty(),
        "no 503 with response code details 'overload' in the access log:\n{log}"
    );
    let scaled = stats
        .lines()
        .find(|l| l.contains("overload.envoy.overload_actions.stop_accepting_requests"))
        .unwrap_or("");
    println!("{scaled}");
    let elog = edge.envoy.log();
    assert!(!elog.contains("panicked"), "the module trapped");
}
