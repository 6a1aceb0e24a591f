//! The `meshgate` binary as users run it: a bad gateway configuration makes `validate`,
//! `compile` and `envoy` exit with status 2 and a message on stderr that names the field,
//! with nothing on stdout; a good one exits 0.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn meshgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshgate"))
        .args(args)
        .output()
        .unwrap()
}

fn gateway(dir: &Path, body: &str) -> PathBuf {
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let path = dir.join("gateway.yaml");
    let yaml = format!(
        "descriptors:\n  files: [meshgate/demo/v1/payments.proto]\n  include: [{}]\n\
         upstreams: {{payments: {{}}, wallets: {{}}}}\n{body}",
        proto.display()
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn a_bad_configuration_is_refused_with_the_field_and_exit_status_2() {
    let dir = std::env::temp_dir().join(format!("meshgate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "services:\n  meshgate.demo.v1.Payments: {upstream: nowhere, auth: none}\n  meshgate.demo.v1.Wallets: {upstream: wallets, auth: none}\n",
            "services.meshgate.demo.v1.Payments.upstream",
        ),
        (
            "services:\n  meshgate.demo.v1.Payments: {upstream: payments, auth: none}\n  meshgate.demo.v1.Wallets: {upstream: wallets, auth: none}\nobserve: {default_slo: {availability: 150}}\n",
            "observe.default_slo.availability",
        ),
        (
            "services:\n  meshgate.demo.v1.Payments: {upstream: payments, auth: none, colour: red}\n",
            "colour",
        ),
    ];
    for (body, field) in cases {
        let path = gateway(&dir, body);
        let file = path.to_str().unwrap();
        for args in [
            vec!["validate", file],
            vec!["compile", file],
            vec!["envoy", file, "--wasm", "/m.wasm"],
        ] {
            let out = meshgate(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains(field), "{args:?} names {field}: {stderr}");
            assert!(out.stdout.is_empty(), "{args:?} wrote a half result");
        }
    }
    let good = gateway(
        &dir,
        "services:\n  meshgate.demo.v1.Payments: {upstream: payments, auth: none}\n  meshgate.demo.v1.Wallets: {upstream: wallets, auth: none}\n",
    );
    let out = meshgate(&["validate", good.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
