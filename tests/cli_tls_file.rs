//! Issue 19: the TLS listener from the gateway file (`listener.tls`), not only from flags:
//! `meshgate envoy` renders it with the file's paths resolved against the file, a flag
//! overrides its field, and the filter's JSON (`meshgate compile`) never carries it.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn meshgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshgate"))
        .args(args)
        .output()
        .unwrap()
}

fn gateway(dir: &Path) -> PathBuf {
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let path = dir.join("gateway.yaml");
    let yaml = format!(
        "descriptors:\n  files: [meshgate/demo/v1/payments.proto]\n  include: [{}]\n\
         upstreams: {{payments: {{}}, wallets: {{}}}}\n\
         services: {{meshgate.demo.v1.Payments: {{upstream: payments, auth: none}},\n\
         \x20 meshgate.demo.v1.Wallets: {{upstream: wallets, auth: none}}}}\n\
         listener:\n  tls: {{listen: '127.0.0.1:8443', cert: tls/server.pem, key: tls/server.key,\n\
         \x20   min_version: '1.3', client_certs: optional, client_ca: tls/ca.pem, redirect: true}}\n",
        proto.display()
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

fn render(dir: &Path, extra: &[&str]) -> serde_json::Value {
    let input = gateway(dir);
    let out_file = dir.join("envoy.yaml");
    let mut argv = vec![
        "envoy",
        input.to_str().unwrap(),
        "--wasm",
        "/m.wasm",
        "--cluster",
        "payments=127.0.0.1:50051",
        "--cluster",
        "wallets=127.0.0.1:50052",
        "-o",
        out_file.to_str().unwrap(),
    ];
    argv.extend(extra);
    let out = meshgate(&argv);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_yaml_ng::from_str(&std::fs::read_to_string(out_file).unwrap()).unwrap()
}

fn tls_context(b: &serde_json::Value) -> &serde_json::Value {
    let listeners = b["static_resources"]["listeners"].as_array().unwrap();
    let tls = listeners
        .iter()
        .find(|l| l["name"] == "gateway_tls")
        .unwrap_or_else(|| panic!("no TLS listener: {listeners:#?}"));
    &tls["filter_chains"][0]["transport_socket"]["typed_config"]
}

#[test]
fn the_tls_listener_comes_from_the_gateway_file_and_flags_override_it() {
    let dir = std::env::temp_dir().join(format!("meshgate-cli-tls-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let b = render(&dir, &[]);
    let ctx = tls_context(&b);
    let common = &ctx["common_tls_context"];
    let cert = &common["tls_certificates"][0];
    assert_eq!(
        cert["certificate_chain"]["filename"],
        dir.join("tls/server.pem").display().to_string()
    );
    assert_eq!(
        common["tls_params"]["tls_minimum_protocol_version"],
        "TLSv1_3"
    );
    assert_eq!(
        common["validation_context"]["trusted_ca"]["filename"],
        dir.join("tls/ca.pem").display().to_string()
    );
    assert!(ctx.get("require_client_certificate").is_none());
    // `redirect: true`: the plaintext listener only redirects.
    let plain = &b["static_resources"]["listeners"][0];
    assert_eq!(plain["name"], "gateway");
    assert!(serde_json::to_string(plain)
        .unwrap()
        .contains("https_redirect"));

    let b = render(
        &dir,
        &[
            "--tls-min-version",
            "1.2",
            "--client-certs",
            "required",
            "--tls-listen",
            "127.0.0.1:9443",
        ],
    );
    let ctx = tls_context(&b);
    assert_eq!(
        ctx["common_tls_context"]["tls_params"]["tls_minimum_protocol_version"],
        "TLSv1_2"
    );
    assert_eq!(ctx["require_client_certificate"], true);
    let text = serde_json::to_string(&b).unwrap();
    assert!(text.contains("9443"), "the flag's port");

    // The filter's configuration has no use for it.
    let input = gateway(&dir);
    let out = meshgate(&["compile", input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(!json.contains("listener"), "{json}");
    assert!(!json.contains("server.pem"), "{json}");

    // A typo in the section is refused by name.
    let bad = dir.join("bad.yaml");
    let text = std::fs::read_to_string(&input)
        .unwrap()
        .replace("min_version", "min_versoin");
    std::fs::write(&bad, text).unwrap();
    let out = meshgate(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listener.tls"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
