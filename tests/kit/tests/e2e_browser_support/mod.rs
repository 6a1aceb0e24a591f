//! What the browser test needs besides the harness: a raw HTTP/1.1 exchange over std's
//! TcpStream (custom headers and a binary body, read to the end), a W3C WebDriver client on top
//! of it (plain HTTP+JSON to Debian's chromedriver; no Selenium), and the demo page's static
//! servers (Python's, on 127.0.0.1).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use meshgate_kit::harness::{free_port, ProcessGuard};
use serde_json::{json, Value};

/// A response: status, headers (names lowercased), body bytes (de-chunked).
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request with `Connection: close`, read to the end.
pub fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Raw {
    let mut stream = TcpStream::connect_timeout(&addr, timeout).unwrap();
    stream.set_read_timeout(Some(timeout)).unwrap();
    stream.set_write_timeout(Some(timeout)).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    // Read until the response is complete: some servers (chromedriver) keep the connection
    // open whatever `Connection: close` says.
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if complete(&raw) {
            break;
        }
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    parse(&raw).unwrap_or_else(|| panic!("{method} {path}: malformed response"))
}

/// Whether `raw` holds a whole response (by its Content-Length, or a chunked body's last
/// chunk); without either, only the end of the connection tells.
fn complete(raw: &[u8]) -> bool {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let body = &raw[split + 4..];
    if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return body.len() >= len;
    }
    head.contains("transfer-encoding: chunked") && body.ends_with(b"0\r\n\r\n")
}

fn parse(raw: &[u8]) -> Option<Raw> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(raw.get(..split)?).to_string();
    let mut body = raw.get(split + 4..)?.to_vec();
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body)?;
    }
    Some(Raw {
        status,
        headers,
        body,
    })
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_line = String::from_utf8_lossy(body.get(..line_end)?).to_string();
        let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
        body = body.get(line_end + 2..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

/// Waits until something accepts connections on `addr`.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A static file server for `dir` on 127.0.0.1 (Python's, as `make run` uses).
pub fn static_server(name: &str, dir: &Path) -> (ProcessGuard, SocketAddr) {
    let port = free_port().unwrap();
    let guard = ProcessGuard::spawn(
        name,
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(dir),
        None,
    )
    .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_for_port(addr, Duration::from_secs(20));
    (guard, addr)
}

/// A binary from `$VAR`, else the first of `candidates` that exists.
pub fn tool(var: &str, candidates: &[&str]) -> PathBuf {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no {} ({var} unset): install Debian's chromium and chromium-driver \
                 (tests/tools/setup.sh browser)",
                candidates.join(" or ")
            )
        })
}

/// A chromedriver and one headless Chromium session.
pub struct Browser {
    _driver: ProcessGuard,
    addr: SocketAddr,
    session: String,
}

const WD_TIMEOUT: Duration = Duration::from_secs(60);

impl Browser {
    pub fn start(profile_dir: &Path) -> Browser {
        let chromium = tool(
            "MESHGATE_CHROMIUM",
            &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
        );
        let chromedriver = tool("MESHGATE_CHROMEDRIVER", &["/usr/bin/chromedriver"]);
        let port = free_port().unwrap();
        let driver = ProcessGuard::spawn(
            "chromedriver",
            Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1"),
            None,
        )
        .unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        wait_for_port(addr, Duration::from_secs(30));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--window-size=1000,1500",
                    format!("--user-data-dir={}", profile_dir.display()),
                ],
            },
        }}});
        let reply = wd(addr, "POST", "/session", Some(&caps));
        let session = reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {reply}"))
            .to_string();
        Browser {
            _driver: driver,
            addr,
            session,
        }
    }

    fn call(&self, method: &str, what: &str, body: Option<&Value>) -> Value {
        let path = format!("/session/{}{what}", self.session);
        let reply = wd(self.addr, method, &path, body);
        assert!(
            reply["value"].get("error").is_none(),
            "WebDriver {method} {what}: {reply}"
        );
        reply["value"].clone()
    }

    pub fn open(&self, url: &str) {
        self.call("POST", "/url", Some(&json!({ "url": url })));
    }

    pub fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(&json!({"script": script, "args": []})),
        )
    }

    /// Polls `script` until it returns something other than `null`.
    pub fn wait_for(&self, script: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.script(script);
            if !v.is_null() {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for `{script}`"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A PNG screenshot of the page.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let b64 = self.call("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends Chromium; the driver itself is stopped by its guard.
        let path = format!("/session/{}", self.session);
        let _ = std::panic::catch_unwind(|| wd(self.addr, "DELETE", &path, None));
    }
}

fn wd(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Value {
    let body = body.map(Value::to_string).unwrap_or_default();
    let raw = exchange(
        addr,
        method,
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
        WD_TIMEOUT,
    );
    serde_json::from_slice(&raw.body).unwrap_or_else(|e| {
        panic!(
            "WebDriver {method} {path}: {} ({e}): {}",
            raw.status,
            String::from_utf8_lossy(&raw.body)
        )
    })
}
