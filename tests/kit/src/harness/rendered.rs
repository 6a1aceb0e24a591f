//! The demo bootstrap exactly as a user renders it (`meshgate envoy envoy/gateway.yaml` with
//! command-line flags), pointed at a fresh demo backend, for the tests that exercise what the
//! command renders rather than the harness's own gateway (the edge protections).

use std::path::PathBuf;

use super::{free_port, repo_root, start_backend, wasm_path, Backend};
use crate::error::{KitError, KitResult};

/// A rendered demo bootstrap: its YAML, the backend it points at and its scratch directory
/// (removed on drop).
pub struct RenderedDemo {
    pub yaml: String,
    pub dir: PathBuf,
    pub backend: Backend,
}

impl Drop for RenderedDemo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `meshgate envoy envoy/gateway.yaml --wasm ... --cluster payments=... --cluster wallets=...
/// --listen ... --admin ...` plus `extra`, with a demo backend serving both services; `tag`
/// names the scratch directory.
pub fn render_demo(tag: &str, extra: &[&str]) -> KitResult<RenderedDemo> {
    let backend = start_backend("payments", "payments,wallets")?;
    let dir = std::env::temp_dir().join(format!("meshgate-rendered-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| KitError::new(format!("{}: {e}", dir.display())))?;
    let out = dir.join("envoy.yaml");
    let upstream = backend.addr.to_string();
    let mut argv: Vec<String> = vec![
        "meshgate".into(),
        "envoy".into(),
        repo_root().join("envoy/gateway.yaml").display().to_string(),
        "--wasm".into(),
        wasm_path()?.display().to_string(),
        "--cluster".into(),
        format!("payments={upstream}"),
        "--cluster".into(),
        format!("wallets={upstream}"),
        "--listen".into(),
        format!("127.0.0.1:{}", free_port()?),
        "--admin".into(),
        format!("127.0.0.1:{}", free_port()?),
        "-o".into(),
        out.display().to_string(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    if meshgate::cli::main(argv.clone()) != 0 {
        return Err(KitError::new(format!("meshgate envoy failed: {argv:?}")));
    }
    let yaml = std::fs::read_to_string(&out)
        .map_err(|e| KitError::new(format!("{}: {e}", out.display())))?;
    Ok(RenderedDemo { yaml, dir, backend })
}
