//! A real Envoy for end-to-end tests: started from a YAML bootstrap in a temp dir, with
//! `--concurrency 1` (or more: [`start_envoy_with_workers`]), a dynamic base id and hot restart off (so parallel Envoys never clash),
//! ready once the admin `/ready` says LIVE and every static listener accepts connections.
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_yaml_ng::Value;

use super::admin;
use super::process::{temp_dir, ProcessGuard};
use crate::error::{KitError, KitResult};

/// Default bound on Envoy's start; `$MESHGATE_ENVOY_START_TIMEOUT_S` overrides it.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of one admin request.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`Envoy::flush_access_logs`] waits for lines that may not come.
const FLUSH_SETTLE: Duration = Duration::from_millis(250);

/// A running Envoy; stopped by PID on drop.
#[derive(Debug)]
pub struct Envoy {
    /// The admin port (from `admin.address.socket_address.port_value`).
    pub admin_port: u16,
    /// The first static listener's port.
    pub listener_port: u16,
    /// Every static listener's port, in config order.
    pub listener_ports: Vec<u16>,
    /// The bootstrap file Envoy runs.
    pub config_path: PathBuf,
    /// The Envoy process.
    pub guard: ProcessGuard,
}

/// Starts Envoy on `config_yaml` (which must name its admin and listener ports on 127.0.0.1).
pub fn start_envoy(config_yaml: &str) -> KitResult<Envoy> {
    start_envoy_with_args(config_yaml, &[])
}

/// Like [`start_envoy`], with extra command-line arguments (e.g. `["--component-log-level",
/// "wasm:debug"]`); a later `--log-level` overrides the default `info`.
pub fn start_envoy_with_args(config_yaml: &str, extra: &[&str]) -> KitResult<Envoy> {
    start_envoy_with_workers(config_yaml, extra, 1)
}

/// Like [`start_envoy_with_args`], with `workers` worker threads (`--concurrency`): one VM of
/// each wasm plugin per worker.
pub fn start_envoy_with_workers(
    config_yaml: &str,
    extra: &[&str],
    workers: u32,
) -> KitResult<Envoy> {
    let (admin_port, listener_ports) = ports_of(config_yaml)?;
    let listener_port = listener_ports.first().copied().unwrap_or(0);
    let dir = temp_dir("envoy")?;
    let config_path = dir.join("envoy.yaml");
    std::fs::write(&config_path, config_yaml)?;
    let mut command = Command::new(super::envoy_bin()?);
    command
        .arg("-c")
        .arg(&config_path)
        .args(["--concurrency", &workers.to_string()])
        .args(["--use-dynamic-base-id", "--disable-hot-restart"])
        .args(["--log-level", "info"])
        .args(extra);
    let guard = ProcessGuard::spawn("envoy", &mut command, Some(dir))?;
    let mut envoy = Envoy {
        admin_port,
        listener_port,
        listener_ports,
        config_path,
        guard,
    };
    envoy.wait_ready(start_timeout())?;
    Ok(envoy)
}

fn start_timeout() -> Duration {
    std::env::var("MESHGATE_ENVOY_START_TIMEOUT_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(START_TIMEOUT, Duration::from_secs)
}

/// The admin port and the static listeners' ports named by a bootstrap.
pub fn ports_of(config_yaml: &str) -> KitResult<(u16, Vec<u16>)> {
    let doc: Value = serde_yaml_ng::from_str(config_yaml)
        .map_err(|e| KitError::new(format!("envoy config is not YAML: {e}")))?;
    let port = |v: &Value| {
        v.get("address")
            .and_then(|a| a.get("socket_address"))
            .and_then(|s| s.get("port_value"))
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
    };
    let admin = doc.get("admin").and_then(port).ok_or_else(|| {
        KitError::new("envoy config: admin.address.socket_address.port_value is required")
    })?;
    let listeners = doc
        .get("static_resources")
        .and_then(|s| s.get("listeners"))
        .and_then(Value::as_sequence)
        .map(|ls| ls.iter().filter_map(port).collect())
        .unwrap_or_default();
    Ok((admin, listeners))
}

impl Envoy {
    /// Waits for `/ready` = LIVE and open listeners, or fails with Envoy's log tail.
    fn wait_ready(&mut self, timeout: Duration) -> KitResult<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.guard.exit_status() {
                return Err(self
                    .guard
                    .failure(&format!("exited ({status}) while starting")));
            }
            if self.is_live() && self.listeners_accept() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.guard.failure(&format!("not ready within {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn is_live(&self) -> bool {
        matches!(self.admin_get("/ready"), Ok((200, body)) if body.trim() == "LIVE")
    }

    fn listeners_accept(&self) -> bool {
        self.listener_ports.iter().all(|port| {
            TcpStream::connect_timeout(
                &SocketAddr::from(([127, 0, 0, 1], *port)),
                Duration::from_millis(200),
            )
            .is_ok()
        })
    }

    /// `127.0.0.1:<listener_port>`.
    pub fn listener_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.listener_port))
    }

    /// `http://127.0.0.1:<listener_port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.listener_addr())
    }

    /// `127.0.0.1:<admin_port>`.
    pub fn admin_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.admin_port))
    }

    /// GET on the admin port: status code and body.
    pub fn admin_get(&self, path: &str) -> KitResult<(u16, String)> {
        admin::get(self.admin_addr(), path, ADMIN_TIMEOUT)
    }

    /// POST on the admin port (e.g. `/reset_counters`, `/logging?level=debug`).
    pub fn admin_post(&self, path: &str) -> KitResult<(u16, String)> {
        admin::request(self.admin_addr(), "POST", path, ADMIN_TIMEOUT)
    }

    /// Envoy's own log so far (it logs to stderr).
    pub fn log(&self) -> String {
        self.guard.stderr()
    }

    /// Envoy's stdout so far (where a stdout access logger writes), after asking Envoy to
    /// write out what its access logs hold ([`Envoy::flush_access_logs`]).
    pub fn stdout(&self) -> String {
        self.flush_access_logs();
        self.guard.stdout()
    }

    /// Envoy buffers access log lines and writes them every `--file-flush-interval-msec`
    /// (10 s by default, as users run it). The admin's `/reopen_logs` makes its flush thread
    /// write the buffers at once (checked in a real Envoy 1.40: a record appears within
    /// milliseconds); this asks for that and waits until stdout has taken what came (bounded:
    /// [`FLUSH_SETTLE`] when nothing was buffered). Tests keep Envoy's default flush this way.
    pub fn flush_access_logs(&self) {
        let size = || {
            std::fs::metadata(self.guard.dir().join("stdout.log"))
                .map(|m| m.len())
                .unwrap_or(0)
        };
        let before = size();
        if !matches!(self.admin_post("/reopen_logs"), Ok((200, _))) {
            return;
        }
        let deadline = Instant::now() + FLUSH_SETTLE;
        let mut last = before;
        let mut stable = 0;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            let now = size();
            if now != last {
                (last, stable) = (now, 0);
            } else if now != before {
                stable += 1;
                if stable >= 3 {
                    return;
                }
            }
        }
    }

    /// The JSON lines of Envoy's stdout (meshgate's access records, with the rendered access
    /// log).
    pub fn access_records(&self) -> Vec<serde_json::Value> {
        self.stdout()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .collect()
    }

    /// The access record of the request sent with `x-request-id: request_id`, waiting (bounded,
    /// 10 s) for Envoy to write it: records of earlier requests may still be in flight, so
    /// counting lines is not enough to know which one is whose.
    pub fn record_for(&self, request_id: &str) -> Option<serde_json::Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let found = self
                .access_records()
                .into_iter()
                .find(|r| r["requestId"] == request_id);
            if found.is_some() || std::time::Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// `/stats/prometheus`, meshgate's families under their wasm names on either flavour
    /// ([`super::flavour::relabel_prometheus`]).
    pub fn stats_prometheus(&self) -> KitResult<String> {
        self.admin_body("/stats/prometheus")
            .map(super::flavour::relabel_prometheus)
    }

    /// `/stats` (text: `name: value` per line).
    pub fn stats_text(&self) -> KitResult<String> {
        self.admin_body("/stats")
    }

    /// The value of one counter or gauge by its full `/stats` name (e.g.
    /// `cluster.backend.upstream_rq_total`, `wasmcustom.gw.requests`); None when absent.
    pub fn stat(&self, name: &str) -> Option<u64> {
        let text = self.stats_text().ok()?;
        stat_in(&text, name)
    }

    /// Waits until `stat(name)` satisfies `ok` (stats are flushed asynchronously); returns
    /// the last value seen.
    pub fn wait_for_stat(
        &self,
        name: &str,
        ok: impl Fn(u64) -> bool,
        timeout: Duration,
    ) -> KitResult<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.stat(name);
            if let Some(v) = value.filter(|v| ok(*v)) {
                return Ok(v);
            }
            if Instant::now() >= deadline {
                return Err(KitError::new(format!(
                    "stat {name} = {value:?}: condition not met within {timeout:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until Envoy's stdout or stderr contains `needle` (access logs are flushed
    /// asynchronously); returns the matching stream's text.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> KitResult<String> {
        let deadline = Instant::now() + timeout;
        loop {
            for text in [self.stdout(), self.log()] {
                if text.contains(needle) {
                    return Ok(text);
                }
            }
            if Instant::now() >= deadline {
                return Err(self
                    .guard
                    .failure(&format!("never logged {needle:?} within {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn admin_body(&self, path: &str) -> KitResult<String> {
        match self.admin_get(path)? {
            (200, body) => Ok(body),
            (status, body) => Err(KitError::new(format!("admin {path}: {status} {body}"))),
        }
    }
}

/// Finds `name: <integer>` in `/stats` text.
pub fn stat_in(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .filter_map(|line| line.split_once(": "))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| value.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_admin_and_listeners() {
        let yaml = "admin:\n  address:\n    socket_address: {address: 127.0.0.1, port_value: 9901}\nstatic_resources:\n  listeners:\n  - name: a\n    address:\n      socket_address: {address: 127.0.0.1, port_value: 10000}\n  - name: b\n    address:\n      socket_address: {address: 127.0.0.1, port_value: 10001}\n";
        assert_eq!(ports_of(yaml).unwrap(), (9901, vec![10000, 10001]));
        assert!(ports_of("static_resources: {}").is_err());
    }

    #[test]
    fn stat_lookup_is_exact() {
        let text =
            "cluster.a.upstream_rq_total: 3\ncluster.a.upstream_rq_total_x: 9\nh: P0(nan,1)\n";
        assert_eq!(stat_in(text, "cluster.a.upstream_rq_total"), Some(3));
        assert_eq!(stat_in(text, "missing"), None);
        assert_eq!(stat_in(text, "h"), None);
    }
}
