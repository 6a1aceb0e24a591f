//! The tiny command line shared by the kit's binaries: `--flag value` pairs only.

/// Parsed `--flag value` pairs, in order.
#[derive(Debug, Clone, Default)]
pub struct Args(Vec<(String, String)>);

impl Args {
    /// Parses `--flag value` pairs; `allowed` lists the flags the binary knows.
    pub fn parse(args: impl IntoIterator<Item = String>, allowed: &[&str]) -> Result<Self, String> {
        let mut out = Vec::new();
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let name = flag
                .strip_prefix("--")
                .filter(|n| allowed.contains(n))
                .ok_or_else(|| {
                    format!(
                        "unknown argument {flag:?}; flags: --{}",
                        allowed.join(" --")
                    )
                })?;
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            out.push((name.to_owned(), value));
        }
        Ok(Args(out))
    }

    /// The last value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a required flag.
    pub fn required(&self, name: &str) -> Result<&str, String> {
        self.get(name)
            .ok_or_else(|| format!("--{name} is required"))
    }
}

/// Installs the SIGTERM and SIGINT (Ctrl-C) handlers now, and returns a future that resolves
/// when either arrives. Call it before printing `listening on`: a signal sent between the
/// print and the installation would otherwise kill the process by the default disposition.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            // Without signal handlers the default disposition (terminate) still applies.
            _ => std::future::pending::<()>().await,
        }
    }
}

/// Shutdown on SIGTERM/SIGINT with a bounded grace period: the first future resolves on the
/// signal (pass it to the server for a graceful stop), the second `grace` later (race the
/// server against it), so a client that keeps a connection open cannot hold the process. The
/// handlers are installed by this call, so call it before announcing readiness.
pub fn shutdown_with_grace(
    grace: std::time::Duration,
) -> (
    impl std::future::Future<Output = ()> + Send + 'static,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let signalled = shutdown_signal();
    tokio::spawn(async move {
        signalled.await;
        let _ = tx.send(true);
    });
    let mut on_signal = rx.clone();
    let mut after_grace = rx;
    let graceful = async move {
        let _ = on_signal.wait_for(|stop| *stop).await;
    };
    let deadline = async move {
        let _ = after_grace.wait_for(|stop| *stop).await;
        tokio::time::sleep(grace).await;
    };
    (graceful, deadline)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_parse_and_unknown_flags_fail() {
        let a = Args::parse(
            args(&["--listen", "127.0.0.1:1", "--name", "x"]),
            &["listen", "name"],
        )
        .unwrap();
        assert_eq!(a.get("name"), Some("x"));
        assert!(Args::parse(args(&["--bogus", "1"]), &["listen"]).is_err());
        assert!(Args::parse(args(&["--listen"]), &["listen"]).is_err());
    }
}
