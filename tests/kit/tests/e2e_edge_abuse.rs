//! Issue 16, the abusive-client matrix: real Envoy on the bootstrap `meshgate envoy` renders
//! (edge protections on, a few shortened for the test), the module, the demo gRPC backend, all
//! on 127.0.0.1. Each row runs one abusive client, bounded in count and time, while a
//! well-behaved HTTP/2 client (one connection, opened before the row) sends GETs through the
//! gateway; the abusive client must get its defined answer (or a closed connection) and the
//! good client must keep >= 99 % success. Each row prints the good client's success rate and
//! p99 (docs/operations.md, "Abusive clients").
//!
//! Needs `build/meshgate.wasm` (`make wasm`) and Envoy (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meshgate_kit::harness::{
    http1_client, http2_client, render_demo, start_envoy, Envoy, RenderedDemo,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The flags the matrix renders with: the defaults, except timeouts short enough for a test
/// and a connection limit a test can exceed.
const FLAGS: [&str; 3] = [
    "--request-headers-timeout=2",
    "--request-timeout=4",
    "--max-connections=64",
];
const MAX_CONNECTIONS: usize = 64;

/// The good client's request (a transcoded GET, served by the demo backend).
const GOOD_PATH: &str = "/v1/payments/pay_001";

struct Edge {
    envoy: Envoy,
    _rendered: RenderedDemo,
}

impl Edge {
    fn addr(&self) -> SocketAddr {
        self.envoy.listener_addr()
    }
}

/// `meshgate envoy envoy/gateway.yaml` with the matrix's flags, pointed at a demo backend,
/// started.
fn start_edge(tag: &str, extra: &[&str]) -> Edge {
    let rendered = render_demo(&format!("abuse-{tag}"), extra).unwrap();
    let envoy = start_envoy(&rendered.yaml).unwrap();
    Edge {
        envoy,
        _rendered: rendered,
    }
}

/// What the well-behaved client saw during one row.
struct Good {
    sent: usize,
    ok: usize,
    latencies: Vec<Duration>,
    failures: Vec<String>,
}

impl Good {
    fn rate(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        self.ok as f64 / self.sent as f64 * 100.0
    }

    fn p99(&self) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        if l.is_empty() {
            return Duration::ZERO;
        }
        let i = ((l.len() as f64) * 0.99).ceil() as usize;
        l[i.clamp(1, l.len()) - 1]
    }
}

/// GETs on one HTTP/2 connection (opened by the first request, before the row starts), one
/// every 10 ms, until `stop` (at most 3000 requests or 60 s).
async fn good_client(addr: SocketAddr, stop: Arc<AtomicBool>, started: Arc<AtomicBool>) -> Good {
    let client = http2_client();
    let url = format!("http://{addr}{GOOD_PATH}");
    let mut good = Good {
        sent: 0,
        ok: 0,
        latencies: Vec::new(),
        failures: Vec::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stop.load(Ordering::SeqCst) && good.sent < 3000 && Instant::now() < deadline {
        let t = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(5), client.get(&url, &[])).await;
        good.sent += 1;
        match r {
            Ok(Ok(resp)) if resp.status == 200 => {
                good.ok += 1;
                good.latencies.push(t.elapsed());
            }
            Ok(Ok(resp)) => good
                .failures
                .push(format!("{}: {}", resp.status, resp.text())),
            Ok(Err(e)) => good.failures.push(e.to_string()),
            Err(_) => good.failures.push("timed out after 5 s".into()),
        }
        started.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    good
}

/// Runs `abuse` while the good client runs; checks the good client's figures; returns them
/// with the abuse's own summary.
async fn row<F, Fut>(edge: &Edge, name: &str, abuse: F) -> (Good, String)
where
    F: FnOnce(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let addr = edge.addr();
    // The good client's connection exists before the abuse starts.
    let warm = http2_client()
        .get(&format!("http://{addr}{GOOD_PATH}"), &[])
        .await
        .unwrap();
    assert_eq!(warm.status, 200, "{}", warm.text());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let good = tokio::spawn(good_client(addr, stop.clone(), started.clone()));
    // Once the good client has its first answer, abuse (polled, bounded).
    let polled = Instant::now();
    while !started.load(Ordering::SeqCst) {
        assert!(
            polled.elapsed() < Duration::from_secs(10),
            "{name}: the good client got no answer"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let summary = tokio::time::timeout(Duration::from_secs(30), abuse(addr))
        .await
        .unwrap_or_else(|_| panic!("{name}: the abusive client was not answered in 30 s"));
    let took = started.elapsed();
    // Every row lasts at least 3 s, so that the good client's figures rest on enough requests.
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(took)).await;
    stop.store(true, Ordering::SeqCst);
    let good = good.await.unwrap();
    println!(
        "row {name:<28} abuse: {summary} ({:.1} s) | good client: {}/{} ok = {:.2} %, p99 {} ms",
        took.as_secs_f64(),
        good.ok,
        good.sent,
        good.rate(),
        good.p99().as_millis()
    );
    assert!(
        good.sent >= 20,
        "{name}: the good client sent only {}",
        good.sent
    );
    assert!(
        good.rate() >= 99.0,
        "{name}: good client {:.2} % ({} of {}): {:?}",
        good.rate(),
        good.ok,
        good.sent,
        good.failures.iter().take(5).collect::<Vec<_>>()
    );
    (good, summary)
}

/// Reads from `s` until EOF, an error, `enough` says stop, or `limit`; what was read and
/// whether the peer closed.
async fn read_until(
    s: &mut TcpStream,
    limit: Duration,
    enough: impl Fn(&[u8]) -> bool,
) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                if enough(&out) {
                    return (out, false);
                }
            }
            Err(_) => return (out, false),
        }
    }
}

fn status_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.lines().next().unwrap_or("").to_string()
}

/// Slowloris: 20 connections each trickling request headers (a byte every 200 ms). Envoy's
/// `request_headers_timeout` (2 s here) ends each: 408 or a closed connection, within 2 s +
/// slack.
async fn slowloris(addr: SocketAddr) -> String {
    let mut tasks = Vec::new();
    for i in 0..20 {
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {GOOD_PATH} HTTP/1.1\r\nHost: gw\r\nx-slow-{i}: ").as_bytes())
                .await
                .unwrap();
            let mut reply = Vec::new();
            let mut buf = [0u8; 4096];
            // At most 50 bytes (10 s): the test fails if Envoy waits that long.
            for _ in 0..50 {
                if s.write_all(b"a").await.is_err() {
                    break;
                }
                match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => reply.extend_from_slice(&buf[..n]),
                    Err(_) => {}
                }
            }
            let (rest, _) = read_until(&mut s, Duration::from_secs(1), |_| false).await;
            reply.extend(rest);
            (started.elapsed(), status_line(&reply))
        }));
    }
    let mut worst = Duration::ZERO;
    let mut answers = std::collections::BTreeMap::new();
    for t in tasks {
        let (took, line) = t.await.unwrap();
        worst = worst.max(took);
        *answers.entry(line).or_insert(0) += 1;
    }
    assert!(
        worst < Duration::from_secs(6),
        "a slowloris connection lasted {worst:?} (request_headers_timeout 2 s)"
    );
    for line in answers.keys() {
        assert!(
            line.is_empty() || line.starts_with("HTTP/1.1 408"),
            "slowloris answer {line:?}"
        );
    }
    format!(
        "20 connections ended after <= {:.1} s: {answers:?}",
        worst.as_secs_f64()
    )
}

/// A slow body: 10 POSTs declaring 1000 bytes, sending a byte every 200 ms. Envoy's
/// `request_timeout` (4 s here) ends each: Envoy's 408 passes through meshgate's response path
/// for the transcoded call and reaches the client as 408 with a DEADLINE_EXCEEDED Status (the
/// client's slowness, not a gateway timeout: no 504).
async fn slow_body(addr: SocketAddr) -> String {
    let mut tasks = Vec::new();
    for _ in 0..10 {
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(
                b"POST /v1/wallets/w_001:topUp HTTP/1.1\r\nHost: gw\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{",
            )
            .await
            .unwrap();
            let mut reply = Vec::new();
            let mut buf = [0u8; 4096];
            for _ in 0..50 {
                if s.write_all(b" ").await.is_err() {
                    break;
                }
                match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => {
                        reply.extend_from_slice(&buf[..n]);
                        if reply.windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    Err(_) => {}
                }
            }
            let (rest, _) = read_until(&mut s, Duration::from_millis(500), |_| false).await;
            reply.extend(rest);
            (started.elapsed(), reply)
        }));
    }
    let mut worst = Duration::ZERO;
    let mut answers = std::collections::BTreeMap::new();
    for t in tasks {
        let (took, reply) = t.await.unwrap();
        worst = worst.max(took);
        let line = status_line(&reply);
        // Envoy's 408 reaches the filter as the reply of a transcoded call: meshgate keeps the
        // 408 and makes its body a DEADLINE_EXCEEDED Status, as it does any router error.
        if line.starts_with("HTTP/1.1 408") {
            let text = String::from_utf8_lossy(&reply);
            assert!(
                text.contains("\"code\":4") || text.contains("\"code\": 4"),
                "the timeout is not a DEADLINE_EXCEEDED google.rpc.Status: {text}"
            );
        } else {
            assert!(
                line.is_empty(),
                "slow body answer after {took:?}: {}",
                String::from_utf8_lossy(&reply)
            );
        }
        *answers.entry(line).or_insert(0) += 1;
    }
    assert!(
        worst < Duration::from_secs(8),
        "a slow body lasted {worst:?} (request_timeout 4 s)"
    );
    format!(
        "10 requests ended after <= {:.1} s: {answers:?}",
        worst.as_secs_f64()
    )
}

/// One HTTP/1.1 request whose headers are `headers`; the status line Envoy answers (empty when
/// it closed without one). An answer must carry a Status body.
async fn oversized_headers(addr: SocketAddr, headers: String) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {GOOD_PATH} HTTP/1.1\r\nHost: gw\r\n{headers}\r\n");
    // Envoy may answer and close before it has read everything: a failed write is fine.
    let _ = s.write_all(request.as_bytes()).await;
    let (reply, _) = read_until(&mut s, Duration::from_secs(5), |r| {
        r.trim_ascii_end().ends_with(b"}")
    })
    .await;
    let line = status_line(&reply);
    if !line.is_empty() {
        // Envoy's own reply, mapped to a google.rpc.Status by the rendered local_reply_config.
        let text = String::from_utf8_lossy(&reply);
        assert!(text.contains("\"code\""), "not a Status: {text}");
    }
    line
}

async fn ten_thousand_headers(addr: SocketAddr) -> String {
    let headers: String = (0..10_000).map(|i| format!("x-h{i}: v\r\n")).collect();
    let mut lines = Vec::new();
    for _ in 0..5 {
        let line = oversized_headers(addr, headers.clone()).await;
        assert!(
            line.starts_with("HTTP/1.1 431") || line.is_empty(),
            "10,000 headers: {line:?}"
        );
        lines.push(line);
    }
    format!("5 requests: {lines:?}")
}

async fn one_mib_header(addr: SocketAddr) -> String {
    let header = format!("x-big: {}\r\n", "a".repeat(1 << 20));
    let mut lines = Vec::new();
    for _ in 0..3 {
        let line = oversized_headers(addr, header.clone()).await;
        assert!(
            line.starts_with("HTTP/1.1 431") || line.is_empty(),
            "1 MiB header: {line:?}"
        );
        lines.push(line);
    }
    format!("3 requests: {lines:?}")
}

/// HTTP/1.1 pipelining: 100 GETs written at once on one connection (the last one closes it);
/// all 100 answered 200, in order.
async fn pipelining(addr: SocketAddr) -> String {
    const N: usize = 100;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut batch = String::new();
    for i in 0..N {
        let close = if i + 1 == N {
            "connection: close\r\n"
        } else {
            ""
        };
        batch.push_str(&format!(
            "GET {GOOD_PATH} HTTP/1.1\r\nHost: gw\r\nx-request-id: pipe-{i}\r\n{close}\r\n"
        ));
    }
    s.write_all(batch.as_bytes()).await.unwrap();
    let count = |r: &[u8]| r.windows(9).filter(|w| *w == b"HTTP/1.1 ").count();
    let (reply, _) = read_until(&mut s, Duration::from_secs(20), |r| {
        count(r) >= N && r.ends_with(b"}")
    })
    .await;
    let ok = reply.windows(13).filter(|w| *w == b"HTTP/1.1 200 ").count();
    assert_eq!(ok, N, "pipelined: {} of {N} answered 200", ok);
    format!("{N} pipelined requests, {ok} answered 200")
}

// --- HTTP/2 by hand: frames as the abusive client writes them -------------------------------

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// HPACK, no Huffman: a literal header without indexing, new name.
fn literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0x00);
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
}

/// A GET's header block (`:method GET`, `:scheme http` from the static table).
fn get_block(path: &str) -> Vec<u8> {
    let mut b = vec![0x82, 0x86];
    literal(&mut b, ":path", path);
    literal(&mut b, ":authority", "gw");
    b
}

/// The client's opening: preface, SETTINGS (a 2 GiB - 1 stream window), and a connection
/// window raised to the same, so that Envoy never waits for our WINDOW_UPDATEs.
fn h2_opening() -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    let mut settings = Vec::new();
    settings.extend_from_slice(&4u16.to_be_bytes());
    settings.extend_from_slice(&0x7fff_ffffu32.to_be_bytes());
    out.extend(frame(4, 0, 0, &settings));
    out.extend(frame(8, 0, 0, &(0x7fff_ffffu32 - 65_535).to_be_bytes()));
    out
}

/// What the server sent on an HTTP/2 connection.
#[derive(Default, Debug)]
struct H2Seen {
    /// Streams ended by the server (END_STREAM on HEADERS or DATA).
    ended: std::collections::BTreeSet<u32>,
    /// Streams whose response headers start with `:status 200` (static index 8).
    ok: std::collections::BTreeSet<u32>,
    /// RST_STREAM error codes, by stream.
    resets: std::collections::BTreeMap<u32, u32>,
    goaway: Option<u32>,
    closed: bool,
}

/// Reads frames until `done`, GOAWAY with EOF, EOF or `limit`; acknowledges SETTINGS.
async fn h2_read(
    s: &mut tokio::net::tcp::OwnedReadHalf,
    w: &tokio::sync::Mutex<tokio::net::tcp::OwnedWriteHalf>,
    limit: Duration,
    done: impl Fn(&H2Seen) -> bool,
) -> H2Seen {
    let mut seen = H2Seen::default();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        while buf.len() >= 9 {
            let len =
                (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
            if buf.len() < 9 + len {
                break;
            }
            let (kind, flags) = (buf[3], buf[4]);
            let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
            let payload = buf[9..9 + len].to_vec();
            buf.drain(..9 + len);
            match kind {
                0 if flags & 1 != 0 => {
                    seen.ended.insert(stream);
                }
                1 => {
                    // Skip padding and priority, then look at the first header.
                    let mut p = &payload[..];
                    if flags & 0x8 != 0 {
                        p = &p[1..];
                    }
                    if flags & 0x20 != 0 {
                        p = &p[5..];
                    }
                    if p.first() == Some(&0x88) {
                        seen.ok.insert(stream);
                    }
                    if flags & 1 != 0 {
                        seen.ended.insert(stream);
                    }
                }
                3 => {
                    let code = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                    seen.resets.insert(stream, code);
                }
                4 if flags & 1 == 0 => {
                    let _ = w.lock().await.write_all(&frame(4, 1, 0, &[])).await;
                }
                6 if flags & 1 == 0 => {
                    let _ = w.lock().await.write_all(&frame(6, 1, 0, &payload)).await;
                }
                7 => {
                    seen.goaway = Some(u32::from_be_bytes([
                        payload[4], payload[5], payload[6], payload[7],
                    ]));
                }
                _ => {}
            }
        }
        if done(&seen) {
            return seen;
        }
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                seen.closed = true;
                return seen;
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return seen,
        }
    }
}

/// 1,000 concurrent streams on one connection, all opened at once (ignoring the server's
/// `max_concurrent_streams`, 100): every stream is answered or refused (RST_STREAM), or the
/// connection is ended with GOAWAY; none hangs.
async fn thousand_streams(addr: SocketAddr) -> String {
    const N: u32 = 1000;
    let (mut r, w) = TcpStream::connect(addr).await.unwrap().into_split();
    let w = tokio::sync::Mutex::new(w);
    let mut out = h2_opening();
    let block = get_block(GOOD_PATH);
    for i in 0..N {
        out.extend(frame(1, 0x5, 1 + 2 * i, &block));
    }
    w.lock().await.write_all(&out).await.unwrap();
    let seen = h2_read(&mut r, &w, Duration::from_secs(25), |s| {
        (0..N).all(|i| s.ended.contains(&(1 + 2 * i)) || s.resets.contains_key(&(1 + 2 * i)))
    })
    .await;
    let answered = (0..N)
        .filter(|i| seen.ended.contains(&(1 + 2 * i)) || seen.resets.contains_key(&(1 + 2 * i)))
        .count();
    let mut codes = std::collections::BTreeMap::new();
    for c in seen.resets.values() {
        *codes.entry(*c).or_insert(0) += 1;
    }
    assert!(
        answered == N as usize || seen.goaway.is_some() || seen.closed,
        "1,000 streams: {answered} answered, no GOAWAY, not closed"
    );
    assert!(!seen.ok.is_empty(), "1,000 streams: none served");
    format!(
        "{answered} of {N} streams ended: {} answered 200, RST_STREAM codes {codes:?}, GOAWAY {:?}",
        seen.ok.len(),
        seen.goaway
    )
}

/// Rapid reset (CVE-2023-44487): HEADERS then RST_STREAM(CANCEL) at once, for up to 5,000
/// streams. Envoy closes the connection once most of its streams were reset early (judged
/// after `overload.premature_reset_total_stream_count`, 500).
async fn rapid_reset(addr: SocketAddr) -> String {
    const N: u32 = 5000;
    let (mut r, w) = TcpStream::connect(addr).await.unwrap().into_split();
    let w = Arc::new(tokio::sync::Mutex::new(w));
    w.lock().await.write_all(&h2_opening()).await.unwrap();
    let writer = {
        let w = w.clone();
        tokio::spawn(async move {
            let block = get_block(GOOD_PATH);
            let mut written = 0u32;
            for batch in 0..(N / 100) {
                let mut out = Vec::new();
                for i in 0..100 {
                    let id = 1 + 2 * (batch * 100 + i);
                    out.extend(frame(1, 0x5, id, &block));
                    out.extend(frame(3, 0, id, &8u32.to_be_bytes()));
                }
                if w.lock().await.write_all(&out).await.is_err() {
                    break;
                }
                written += 100;
                tokio::task::yield_now().await;
            }
            written
        })
    };
    let seen = h2_read(&mut r, &w, Duration::from_secs(20), |s| s.closed).await;
    let written = writer.await.unwrap_or(0);
    assert!(
        seen.closed || seen.goaway.is_some(),
        "rapid reset: the connection stayed open after {written} reset streams"
    );
    format!(
        "connection closed (GOAWAY {:?}, EOF {}) with {written} of {N} streams written",
        seen.goaway, seen.closed
    )
}

/// A connection flood: 300 idle connections against a limit of 64. Those past the limit are
/// closed at once; the good client's connection (opened before) keeps working; once the flood
/// is gone, new connections are accepted again.
async fn connection_flood(addr: SocketAddr) -> String {
    let mut conns = Vec::new();
    for _ in 0..300 {
        match TcpStream::connect(addr).await {
            Ok(s) => conns.push(s),
            Err(_) => break,
        }
    }
    // Envoy closes those over its limit (polled, bounded: a closed one reads 0 or an error).
    let polled = Instant::now();
    let mut closed;
    loop {
        closed = 0;
        let mut buf = [0u8; 16];
        for s in &mut conns {
            if let Ok(Ok(0) | Err(_)) =
                tokio::time::timeout(Duration::from_millis(5), s.read(&mut buf)).await
            {
                closed += 1;
            }
        }
        if conns.len() - closed <= MAX_CONNECTIONS || polled.elapsed() > Duration::from_secs(10) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let open = conns.len() - closed;
    assert!(
        open <= MAX_CONNECTIONS,
        "{open} flood connections stayed open, limit {MAX_CONNECTIONS}"
    );
    assert!(
        closed >= 300 - MAX_CONNECTIONS,
        "only {closed} of 300 closed"
    );
    drop(conns);
    // Recovery: a new connection is served once Envoy has seen the closes (polled, bounded).
    let polled = Instant::now();
    let fresh = loop {
        let r = http1_client()
            .get(&format!("http://{addr}{GOOD_PATH}"), &[])
            .await;
        match r {
            Ok(r) if r.status == 200 => break r,
            other => assert!(
                polled.elapsed() < Duration::from_secs(10),
                "after the flood: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(fresh.status, 200, "after the flood: {}", fresh.text());
    format!("300 connections: {open} held, {closed} closed by Envoy; a new one served after")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abusive_clients_get_defined_answers_and_good_clients_keep_being_served() {
    let edge = start_edge("matrix", &FLAGS);
    let started = Instant::now();
    let mut figures = Vec::new();
    macro_rules! run {
        ($name:expr, $f:expr) => {
            let (good, summary) = row(&edge, $name, $f).await;
            figures.push(($name, good.rate(), good.p99(), good.sent, summary));
        };
    }
    run!("slowloris headers", slowloris);
    run!("slow body", slow_body);
    run!("10,000 headers", ten_thousand_headers);
    run!("1 MiB header", one_mib_header);
    run!("HTTP/1.1 pipelining", pipelining);
    run!("1,000 HTTP/2 streams", thousand_streams);
    run!("HTTP/2 rapid reset", rapid_reset);
    run!("connection flood", connection_flood);

    let stats = edge.envoy.stats_text().unwrap();
    let stat = |needle: &str| -> u64 {
        stats
            .lines()
            .filter(|l| l.contains(needle))
            .filter_map(|l| l.rsplit(": ").next()?.trim().parse::<u64>().ok())
            .sum()
    };
    let premature = stat("downstream_rq_too_many_premature_resets");
    let overflow = stat("downstream_global_cx_overflow");
    let headers_timeout = stat("downstream_rq_header_timeout");
    println!(
        "envoy stats: too_many_premature_resets {premature}, global_cx_overflow {overflow}, rq_header_timeout {headers_timeout}"
    );
    println!("| row | good client success | good client p99 | good requests | abusive client |");
    for (name, rate, p99, sent, summary) in &figures {
        println!(
            "| {name} | {rate:.2} % | {} ms | {sent} | {summary} |",
            p99.as_millis()
        );
    }
    assert!(
        premature >= 1,
        "Envoy did not count the rapid reset: {premature}"
    );
    assert!(
        overflow >= 1,
        "Envoy did not count the connection flood: {overflow}"
    );
    let log = edge.envoy.log();
    assert!(!log.contains("panicked"), "the module trapped");
    println!("matrix took {:.1} s", started.elapsed().as_secs_f64());
}
