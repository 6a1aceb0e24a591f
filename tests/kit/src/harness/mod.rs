//! The end-to-end harness: where things are (repo, Envoy, the kit's binaries), free ports, the
//! test servers as guarded child processes, a real Envoy, and clients.
//!
//! Every process is started through a [`ProcessGuard`] and stopped by PID when its handle is
//! dropped. The kit's binaries are built on first use (see [`bins`]).
pub mod admin;
pub mod bins;
pub mod client;
pub mod config_file;
pub mod envoy;
pub mod flavour;
pub mod gateway;
pub mod process;
pub mod rendered;

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

pub use bins::{kit_bin, meshgate_cli};
pub use client::{
    grpc_channel, grpc_frame, grpc_unframe, http1_client, http2_client, payments_client,
    wallets_client, HttpClient, RawResponse,
};
pub use envoy::{start_envoy, start_envoy_with_args, start_envoy_with_workers, Envoy};
pub use flavour::{native_path, skip_on_native, Flavour};
pub use gateway::{filter_config, wasm_path, Gateway, GatewayBuilder};
pub use process::ProcessGuard;
pub use rendered::{render_demo, RenderedDemo};

use crate::error::{KitError, KitResult};

/// How long a test server may take to print `listening on`.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(20);

/// The repository root (two levels above this crate's manifest).
pub fn repo_root() -> PathBuf {
    let kit = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    kit.parent()
        .and_then(|tests| tests.parent())
        .map(PathBuf::from)
        .unwrap_or(kit)
}

/// The Envoy binary: `$MESHGATE_ENVOY`, else `<repo>/.venv/bin/envoy`, else `envoy` on PATH.
/// An empty `MESHGATE_ENVOY` counts as unset (as in `tests/tools/envoy-path.sh`).
pub fn envoy_bin() -> KitResult<PathBuf> {
    if let Some(path) = std::env::var_os("MESHGATE_ENVOY").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(KitError::new(format!(
                "MESHGATE_ENVOY={} is not a file",
                path.display()
            )))
        };
    }
    let venv = repo_root().join(".venv/bin/envoy");
    if venv.is_file() {
        return Ok(venv);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("envoy"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            KitError::new(format!(
                "no Envoy found: set MESHGATE_ENVOY, run `make setup` (creates {}), or put `envoy` on PATH",
                venv.display()
            ))
        })
}

/// A port on 127.0.0.1 that was free a moment ago and that this process has not handed out
/// before (another process may still take it: bind soon).
pub fn free_port() -> KitResult<u16> {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut given = GIVEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if given.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
    Err(KitError::new("no fresh free port after 100 tries"))
}

/// A demo gRPC backend process.
#[derive(Debug)]
pub struct Backend {
    /// Where it listens (127.0.0.1).
    pub addr: SocketAddr,
    /// Its process; dropping the backend stops it.
    pub guard: ProcessGuard,
}

impl Backend {
    /// `http://127.0.0.1:PORT`, for tonic clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Starts `demo-backend --name NAME --services SERVICES` (e.g. `"payments,wallets"`) on a free
/// port and waits for `listening on`.
pub fn start_backend(name: &str, services: &str) -> KitResult<Backend> {
    start_backend_with_args(name, services, &[])
}

/// Like [`start_backend`], with extra arguments (e.g. `["--misbehave", "reset"]`).
pub fn start_backend_with_args(name: &str, services: &str, extra: &[&str]) -> KitResult<Backend> {
    let mut args = vec!["--services", services];
    args.extend_from_slice(extra);
    start_server("demo-backend", name, &args)
}

/// Starts `rest-backend --name NAME` on a free port and waits for `listening on`.
pub fn start_rest_backend(name: &str) -> KitResult<Backend> {
    start_server("rest-backend", name, &[])
}

/// A port from [`free_port`] can be taken by another process (an Envoy's outbound connection,
/// say) before the server binds it: a server that exits with "Address already in use" is
/// started again on another port, a few times.
fn start_server(bin: &str, name: &str, extra: &[&str]) -> KitResult<Backend> {
    let mut last = KitError::new("not started");
    for _ in 0..3 {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let mut command = Command::new(kit_bin(bin)?);
        command
            .args(["--listen", &addr.to_string(), "--name", name])
            .args(extra);
        let mut guard = ProcessGuard::spawn(&format!("{bin}-{name}"), &mut command, None)?;
        match guard.wait_for_stdout("listening on", SERVER_START_TIMEOUT) {
            Ok(_) => return Ok(Backend { addr, guard }),
            Err(e) if e.to_string().contains("Address already in use") => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_never_repeated() {
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        let unique: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
    }

    /// Lib tests do not get the package's binaries from cargo: this proves `kit_bin` builds
    /// them, as it must for the root crate's end-to-end tests.
    #[test]
    fn start_rest_backend_builds_the_binary_when_needed() {
        let mut backend = start_rest_backend("lib-test").unwrap();
        assert!(backend.guard.stdout().contains(&backend.addr.to_string()));
        assert!(backend.guard.stop().unwrap().success());
    }

    #[test]
    fn repo_root_holds_the_protos() {
        assert!(repo_root()
            .join("proto/meshgate/demo/v1/payments.proto")
            .is_file());
    }
}
