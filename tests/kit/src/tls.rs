//! TLS for end-to-end tests: a throwaway CA and certificates made by `tests/tools/tls-certs.sh`
//! (the script `make run` uses; openssl CLI), and `curl` as the TLS client (HTTP/1.1 and
//! HTTP/2 by ALPN, client certificates), a real client with a real TLS stack.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::error::{KitError, KitResult};
use crate::harness::process::temp_dir;
use crate::harness::repo_root;

/// A CA with a server certificate for `localhost` and `127.0.0.1` (`server.pem`/`server.key`)
/// in a fresh temporary directory.
#[derive(Debug, Clone)]
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn new(tag: &str) -> KitResult<Pki> {
        let dir = temp_dir(&format!("pki-{tag}"))?;
        script(&[dir.as_os_str().to_string_lossy().as_ref()])?;
        Ok(Pki { dir })
    }

    pub fn ca(&self) -> String {
        self.path("ca.pem")
    }

    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    /// `(cert, key)` of a client certificate `CN=name` with `san` (`URI:spiffe://...`).
    pub fn client(&self, name: &str, san: &str) -> KitResult<(String, String)> {
        self.leaf("client", name, san)
    }

    /// `(cert, key)` of a server certificate for `san` (`DNS:payments.internal`).
    pub fn server(&self, name: &str, san: &str) -> KitResult<(String, String)> {
        self.leaf("server", name, san)
    }

    fn leaf(&self, kind: &str, name: &str, san: &str) -> KitResult<(String, String)> {
        let dir = self.dir.display().to_string();
        script(&[&dir, kind, name, san])?;
        Ok((
            self.path(&format!("{name}.pem")),
            self.path(&format!("{name}.key")),
        ))
    }
}

fn script(args: &[&str]) -> KitResult<()> {
    let out = Command::new("bash")
        .arg(repo_root().join("tests/tools/tls-certs.sh"))
        .args(args)
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(KitError::new(format!(
            "tls-certs.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

/// What `curl` saw: status (0 when no HTTP response came), `http_version` (`1.1`, `2`), the
/// response headers (lower-case names), the body, curl's exit code and error text.
#[derive(Debug, Clone)]
pub struct CurlResponse {
    pub status: u16,
    pub http_version: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub exit_code: i32,
    pub error: String,
}

impl CurlResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> KitResult<Value> {
        serde_json::from_str(&self.body)
            .map_err(|e| KitError::new(format!("not JSON ({e}): {}", self.body)))
    }
}

/// Runs `curl -sS --max-time 10 ARGS... URL` and collects the response; a failed TLS
/// handshake is a response with `status` 0 and curl's `exit_code`, not an `Err`.
pub fn curl(args: &[&str], url: &str) -> KitResult<CurlResponse> {
    let dir = temp_dir("curl")?;
    let body_file = dir.join("body");
    let headers_file = dir.join("headers");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "%{json}", "-o"])
        .arg(&body_file)
        .arg("-D")
        .arg(&headers_file)
        .args(args)
        .arg(url)
        .output()?;
    let write_out: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let response = CurlResponse {
        status: write_out
            .get("http_code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(0),
        http_version: write_out
            .get("http_version")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        headers: read_headers(&headers_file),
        body: std::fs::read_to_string(&body_file).unwrap_or_default(),
        exit_code: out.status.code().unwrap_or(-1),
        error: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let _ = std::fs::remove_dir_all(&dir);
    Ok(response)
}

fn read_headers(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect()
}
