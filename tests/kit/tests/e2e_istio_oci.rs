//! Issue 6: the OCI image Istio pulls. `meshgate oci` writes the compat image as an OCI layout;
//! skopeo pushes it to a real local registry (Debian's `docker-registry` on 127.0.0.1) and
//! pulls it back; the registry serves it under the digest the generated WasmPlugin pins, and
//! the pulled layer's `plugin.wasm` is the module that was built.
//!
//! Needs `build/meshgate.wasm` (`make wasm`), `skopeo` and `docker-registry` (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use meshgate::cli::oci::{LAYER_MEDIA_TYPE, PLUGIN_FILE};
use meshgate_kit::harness::{free_port, repo_root, wasm_path, ProcessGuard};
use serde_json::Value;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshgate-oci-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Debian's registry on 127.0.0.1:`port`, storing under `dir`; waits until it answers.
fn start_registry(dir: &Path, port: u16) -> ProcessGuard {
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: meshgate-test\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let guard = ProcessGuard::spawn(
        "docker-registry",
        Command::new("docker-registry").arg("serve").arg(&config),
        None,
    )
    .expect("docker-registry (make setup installs it)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "registry did not start: {}",
            guard.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    guard
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo (make setup installs it)");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()
}

/// The WasmPlugin `sha256` that `meshgate istio` writes for a layout.
fn pinned_digest(layout: &Path, dir: &Path) -> String {
    let args: Vec<String> = [
        repo_root().join("envoy/gateway.yaml").to_str().unwrap(),
        "-d",
        dir.join("manifests").to_str().unwrap(),
        "--oci-layout",
        layout.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    meshgate::cli::istio::cmd_istio(&args).unwrap();
    let text = std::fs::read_to_string(dir.join("manifests/wasmplugin-gateway.yaml")).unwrap();
    let wp: Value = serde_yaml_ng::from_str(&text).unwrap();
    wp["spec"]["sha256"].as_str().unwrap().to_string()
}

#[test]
fn image_round_trips_through_a_local_registry_with_the_pinned_digest() {
    let dir = temp("registry");
    let module = std::fs::read(wasm_path().unwrap()).unwrap();
    let layout = dir.join("layout");
    let image = meshgate::cli::oci::write_layout(&module, &layout, "0.1.0").unwrap();
    let pinned = pinned_digest(&layout, &dir);
    assert_eq!(format!("sha256:{pinned}"), image.manifest_digest);

    let port = free_port().unwrap();
    let _registry = start_registry(&dir, port);
    let reference = format!("docker://127.0.0.1:{port}/meshgate/meshgate:0.1.0");
    let src = format!("oci:{}:0.1.0", layout.display());
    skopeo(&["copy", "--dest-tls-verify=false", &src, &reference]);

    // The registry serves the image under the pinned digest, by tag and by digest.
    let inspect: Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &reference])).unwrap();
    assert_eq!(inspect["Digest"], image.manifest_digest);
    let by_digest = format!(
        "docker://127.0.0.1:{port}/meshgate/meshgate@{}",
        image.manifest_digest
    );
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &by_digest]);
    let manifest: Value = serde_json::from_str(&raw).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "compat image: one layer");
    assert_eq!(layers[0]["mediaType"], LAYER_MEDIA_TYPE);

    // Pull it back and take plugin.wasm out of the layer.
    let pulled = dir.join("pulled");
    let dest = format!("oci:{}:0.1.0", pulled.display());
    skopeo(&["copy", "--src-tls-verify=false", &by_digest, &dest]);
    let digest = meshgate::cli::oci::layout_digest(&pulled, Some("0.1.0")).unwrap();
    assert_eq!(
        digest, image.manifest_digest,
        "pulled under the pinned digest"
    );
    let manifest: Value = serde_json::from_slice(&blob(&pulled, &digest)).unwrap();
    let layer = blob(&pulled, manifest["layers"][0]["digest"].as_str().unwrap());
    let found =
        meshgate::cli::oci::extract_plugin(&layer).expect("plugin.wasm in the pulled layer");
    assert!(found == module, "the pulled {PLUGIN_FILE} is the build");
}

/// A different module gives a different digest: the pin catches a swapped image.
#[test]
fn another_module_gets_another_digest() {
    let dir = temp("digest");
    let module = std::fs::read(wasm_path().unwrap()).unwrap();
    let a = meshgate::cli::oci::write_layout(&module, &dir.join("a"), "t").unwrap();
    let mut other = module.clone();
    other.extend_from_slice(b"\0");
    let b = meshgate::cli::oci::write_layout(&other, &dir.join("b"), "t").unwrap();
    assert_ne!(a.manifest_digest, b.manifest_digest);
    let again = meshgate::cli::oci::write_layout(&module, &dir.join("c"), "t").unwrap();
    assert_eq!(a.manifest_digest, again.manifest_digest, "reproducible");
}
