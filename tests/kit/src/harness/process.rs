//! A guard for every process a test starts: output goes to files in a per-process temp dir,
//! and on drop the process is stopped by its PID (SIGTERM, up to 2 s grace, then SIGKILL),
//! also when the test panics. A panicking test gets the process's log tail on stderr and keeps
//! its log dir for inspection; a passing one removes it.
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{KitError, KitResult};

/// Grace period between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A running child process, stopped on drop.
#[derive(Debug)]
pub struct ProcessGuard {
    name: String,
    child: Child,
    dir: PathBuf,
    exit: Option<ExitStatus>,
}

/// A fresh directory for one process's files: `$MESHGATE_KIT_TMP` or the system temp dir,
/// then `meshgate-kit/<name>-<pid>-<n>`.
pub fn temp_dir(name: &str) -> KitResult<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = std::env::var_os("MESHGATE_KIT_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join("meshgate-kit");
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = base.join(format!("{name}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| KitError::new(format!("create {}: {e}", dir.display())))?;
    Ok(dir)
}

impl ProcessGuard {
    /// Spawns `command` with stdin closed and stdout/stderr in `<dir>/stdout.log` and
    /// `<dir>/stderr.log`; `dir` is a fresh [`temp_dir`] unless given.
    pub fn spawn(name: &str, command: &mut Command, dir: Option<PathBuf>) -> KitResult<Self> {
        let dir = match dir {
            Some(dir) => dir,
            None => temp_dir(name)?,
        };
        let stdout = File::create(dir.join("stdout.log"))?;
        let stderr = File::create(dir.join("stderr.log"))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| KitError::new(format!("spawn {name} ({command:?}): {e}")))?;
        Ok(ProcessGuard {
            name: name.to_owned(),
            child,
            dir,
            exit: None,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The directory holding the process's logs (and any files written for it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Everything the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        read_lossy(&self.dir.join("stdout.log"))
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        read_lossy(&self.dir.join("stderr.log"))
    }

    /// The last `lines` lines of stdout and stderr, labelled, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        format!(
            "--- {} (pid {}) stdout tail ---\n{}\n--- stderr tail ---\n{}",
            self.name,
            self.pid(),
            tail(&self.stdout(), lines),
            tail(&self.stderr(), lines)
        )
    }

    /// The exit status if the process has ended.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// Waits until stdout contains `needle`; fails if the process exits or `timeout` passes.
    pub fn wait_for_stdout(&mut self, needle: &str, timeout: Duration) -> KitResult<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.stdout();
            if out.contains(needle) {
                return Ok(out);
            }
            if let Some(status) = self.exit_status() {
                return Err(self.failure(&format!("exited ({status}) before printing {needle:?}")));
            }
            if Instant::now() >= deadline {
                return Err(self.failure(&format!("did not print {needle:?} within {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// An error naming this process, with its log tail.
    pub fn failure(&self, what: &str) -> KitError {
        KitError::new(format!("{} {what}\n{}", self.name, self.log_tail(40)))
    }

    /// Stops the process: SIGTERM, up to 2 s to exit, then SIGKILL. Idempotent.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if let Some(status) = self.exit_status() {
            return Some(status);
        }
        signal(self.pid(), libc::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Some(status) = self.exit_status() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        signal(self.pid(), libc::SIGKILL);
        self.exit = self.child.wait().ok();
        self.exit
    }

    /// Sends a signal (e.g. `libc::SIGTERM`, `libc::SIGHUP`) to the process.
    pub fn signal(&self, sig: i32) {
        signal(self.pid(), sig);
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "{}\n(logs kept in {})",
                self.log_tail(60),
                self.dir.display()
            );
        } else if std::env::var_os("MESHGATE_KIT_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// kill(2) by PID. Errors (e.g. the process is already gone) are deliberately ignored.
fn signal(pid: u32, sig: i32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(pid, sig);
    }
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all.iter()
        .skip(all.len().saturating_sub(lines))
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_stops_a_process_that_ignores_nothing_and_captures_output() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo ready; exec sleep 30"]);
        let mut guard = ProcessGuard::spawn("sleeper", &mut cmd, None).unwrap();
        guard
            .wait_for_stdout("ready", Duration::from_secs(5))
            .unwrap();
        assert!(guard.exit_status().is_none());
        let started = Instant::now();
        let status = guard.stop().unwrap();
        assert!(!status.success());
        assert!(started.elapsed() < STOP_GRACE);
    }

    #[test]
    fn guard_escalates_to_sigkill_when_sigterm_is_ignored() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "trap '' TERM; echo ready; while true; do sleep 0.05; done",
        ]);
        let mut guard = ProcessGuard::spawn("stubborn", &mut cmd, None).unwrap();
        guard
            .wait_for_stdout("ready", Duration::from_secs(5))
            .unwrap();
        let started = Instant::now();
        assert!(guard.stop().is_some());
        assert!(started.elapsed() >= STOP_GRACE);
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
