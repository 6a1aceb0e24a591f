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

/// Usage mistakes are clap's: status 2, the argument named on stderr, nothing on stdout.
#[test]
fn usage_errors_exit_2_and_name_the_argument() {
    for (args, named) in [
        (vec!["frobnicate"], "frobnicate"),
        (vec!["envoy", "envoy/gateway.yaml"], "--wasm"),
        (
            vec![
                "envoy",
                "envoy/gateway.yaml",
                "--wasm",
                "m.wasm",
                "--cluster",
                "payments",
            ],
            "--cluster",
        ),
        (
            vec![
                "envoy",
                "envoy/gateway.yaml",
                "--wasm",
                "m.wasm",
                "--route",
                "name=a",
            ],
            "--route",
        ),
        (
            vec!["istio", "istio/gateway.yaml", "-d", "/nonexistent"],
            "--sha256",
        ),
        (
            vec!["istio", "istio/gateway.yaml", "-d", "/x", "--sha256", "abc"],
            "64 hex digits",
        ),
        (
            vec![
                "istio",
                "istio/gateway.yaml",
                "-d",
                "/x",
                "--sha256",
                &HEX,
                "--fail-strategy",
                "FAIL_CLOSED",
            ],
            "FAIL_CLOSE",
        ),
        (vec!["compile"], "GATEWAY.YAML"),
        (vec!["alerts", "a.yaml", "b.yaml"], "b.yaml"),
        (vec!["completions", "tcsh"], "tcsh"),
    ] {
        let out = meshgate_in_repo(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?} names {named}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} wrote to stdout");
    }
}

const HEX: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn meshgate_in_repo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshgate"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

/// `--help` works for the command and every subcommand (on stdout, status 0), and names the
/// subcommand's options; so do `help` and a bare `meshgate`.
#[test]
fn every_subcommand_has_help() {
    let subcommands = [
        ("compile", "--output"),
        ("validate", "GATEWAY.YAML"),
        ("envoy", "--cluster"),
        ("alerts", "--output"),
        ("istio", "--oci-layout"),
        ("oci", "--tag"),
        ("completions", "bash"),
    ];
    for (sub, option) in subcommands {
        for args in [vec![sub, "--help"], vec!["help", sub]] {
            let out = meshgate_in_repo(&args);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "{args:?}");
            assert!(stdout.contains("Usage: meshgate"), "{args:?}: {stdout}");
            assert!(stdout.contains(option), "{args:?} names {option}: {stdout}");
        }
    }
    for args in [vec![], vec!["--help"], vec!["help"], vec!["-h"]] {
        let out = meshgate_in_repo(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        for (sub, _) in subcommands {
            assert!(stdout.contains(sub), "{args:?} lists {sub}: {stdout}");
        }
    }
}

/// `meshgate completions <shell>` prints a script that completes the subcommands and their
/// options; bash accepts the bash one.
#[test]
fn shell_completions_cover_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = meshgate_in_repo(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        // (fish writes options without their dashes: `-l oci-layout`.)
        for word in [
            "envoy",
            "istio",
            "oci-layout",
            "cluster",
            "fail-strategy",
            "FAIL_RELOAD",
        ] {
            assert!(script.contains(word), "{shell} completes {word}");
        }
    }
    let out = meshgate_in_repo(&["completions", "bash"]);
    let dir = std::env::temp_dir().join(format!("meshgate-completions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("meshgate.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// Where the compiled filter configuration sits in the demo's bootstrap (compared on its own):
/// meshgate's filter comes after Envoy's three browser filters (the demo has a `cors` section).
const CONFIGURATION: &str = "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/http_filters/3/typed_config/config/configuration/value";
const HCM: &str = "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config";

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// `value` equals the committed `tests/golden/<name>` as a JSON value (key order aside);
/// `MESHGATE_UPDATE_GOLDEN=1` rewrites it.
fn assert_golden(name: &str, value: &serde_json::Value) {
    if std::env::var_os("MESHGATE_UPDATE_GOLDEN").is_some() {
        let text = serde_json::to_string_pretty(value).unwrap();
        std::fs::write(golden(name), text + "\n").unwrap();
    }
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(golden(name)).unwrap()).unwrap();
    assert!(
        &committed == value,
        "the rendering differs from tests/golden/{name} (regenerate with \
         MESHGATE_UPDATE_GOLDEN=1 cargo test --test cli, if the change is meant)"
    );
}

fn render_envoy(args: &[&str]) -> serde_json::Value {
    let dir = std::env::temp_dir().join(format!(
        "meshgate-cli-golden-{}-{}",
        std::process::id(),
        args.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("envoy.yaml");
    // The golden files predate upstream health checks (issue 19), which the unit tests of
    // `cli::envoy::health` and e2e_health_upstream.rs cover.
    let mut argv = vec!["envoy", "--no-upstream-health"];
    argv.extend(args);
    let file_arg = file.to_str().unwrap().to_string();
    argv.extend(["-o", &file_arg]);
    let out = meshgate_in_repo(&argv);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    serde_yaml_ng::from_str(&text).unwrap()
}

/// The bootstraps `meshgate envoy` renders are the ones the untyped renderer made (the golden
/// files were made by it): the demo's whole bootstrap, the routes and clusters of the
/// per-route policy example, the clusters of remote JWKS.
#[test]
fn rendered_bootstraps_match_the_golden_files() {
    let mut demo = render_envoy(&[
        "envoy/gateway.yaml",
        "--wasm",
        "build/meshgate.wasm",
        "--cluster",
        "payments=127.0.0.1:50051",
        "--cluster",
        "wallets=127.0.0.1:50052",
    ]);
    // The filter configuration is `meshgate compile`'s output, as it is.
    let compiled = meshgate_in_repo(&["compile", "envoy/gateway.yaml"]);
    let configuration = demo.pointer_mut(CONFIGURATION).unwrap();
    assert_eq!(
        configuration.as_str().unwrap().as_bytes(),
        compiled.stdout.as_slice()
    );
    *configuration = "<the filter configuration: meshgate compile's output>".into();
    assert_golden("gateway.envoy.json", &demo);

    let policies = render_envoy(&[
        "envoy/gateway-policies.yaml",
        "--wasm",
        "build/meshgate.wasm",
        "--cluster",
        "payments=127.0.0.1:50051",
        "--cluster",
        "wallets=127.0.0.1:50052",
        "--cluster",
        "legacy-append=127.0.0.1:8081/h1",
        "--cluster",
        "legacy-const=127.0.0.1:8082/h1",
        "--route",
        "name=wallets-strict,prefix=/v1/wallets/,cluster=wallets,policy=strict",
        "--route",
        "name=payments-grpc-only,prefix=/v1/payments/pay_002,cluster=payments",
        "--route",
        "name=direct,prefix=/direct/,cluster=legacy-append,disabled",
        "--route",
        "name=grpc-api,prefix=/meshgate.demo.v1.,cluster=payments,policy=gold",
        "--route",
        "name=legacy-private,prefix=/legacy/docs/private/,cluster=legacy-append,policy=strict",
    ]);
    let part = serde_json::json!({
        "routes": policies.pointer(&format!("{HCM}/route_config")).unwrap(),
        "clusters": policies.pointer("/static_resources/clusters").unwrap(),
    });
    assert_golden("gateway-policies.routes-clusters.json", &part);

    let dir = std::env::temp_dir().join(format!("meshgate-cli-jwks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let gateway = gateway(
        &dir,
        "services:\n  meshgate.demo.v1.Payments: {upstream: payments, auth: none}\n  \
         meshgate.demo.v1.Wallets: {upstream: wallets, auth: none}\n\
         auth:\n  providers:\n    \
         - {name: main, issuer: main, jwks: {remote: {uri: \"http://127.0.0.1:9000/jwks.json\", cluster: main-idp}}}\n    \
         - {name: corp, issuer: \"https://idp.example.com/\", jwks: {remote: {uri: \"https://idp.example.com/.well-known/jwks.json\", cluster: corp-idp}}}\n    \
         - {name: corp2, issuer: corp2, jwks: {remote: {uri: \"https://idp.example.com/keys\", cluster: corp-idp}}}\n    \
         - {name: ip, issuer: ip, jwks: {remote: {uri: \"https://10.0.0.7:8443/jwks\", cluster: ip-idp}}}\n    \
         - {name: v6, issuer: v6, jwks: {remote: {uri: \"https://[::1]:8443/jwks\", cluster: v6-idp}}}\n",
    );
    let jwks = render_envoy(&[
        gateway.to_str().unwrap(),
        "--wasm",
        "/m.wasm",
        "--cluster",
        "payments=127.0.0.1:1",
        "--cluster",
        "wallets=127.0.0.1:2/h1",
        "--ca-file",
        "/ca.pem",
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_golden(
        "jwks.clusters.json",
        jwks.pointer("/static_resources/clusters").unwrap(),
    );
}

/// A proto binding meshgate cannot serve (`legacy.proto`'s `{$api_version}`): `validate`
/// lists it and passes; `validate --strict` refuses it, as `transcoding.strict_bindings` does.
#[test]
fn validate_lists_unservable_bindings_and_strict_refuses_them() {
    let dir = std::env::temp_dir().join(format!("meshgate-cli-strict-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let path = dir.join("gateway.yaml");
    let yaml = format!(
        "descriptors:\n  files: [meshgate/demo/v1/legacy.proto]\n  include: [{}]\n\
         \x20 services: [meshgate.demo.v1.LegacyPayments]\n\
         upstreams: {{payments: {{}}}}\n\
         services:\n  meshgate.demo.v1.LegacyPayments: {{upstream: payments, auth: none}}\n",
        proto.display()
    );
    std::fs::write(&path, yaml).unwrap();
    let file = path.to_str().unwrap();
    let out = meshgate(&["validate", file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("binding skipped: meshgate.demo.v1.LegacyPayments.GetLegacyPayment binding GET /{$api_version}/old/payments/{id}"),
        "{stderr}"
    );
    assert!(stdout.contains("1 binding(s) skipped"), "{stdout}");
    let out = meshgate(&["validate", "--strict", file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot be served (--strict)"), "{stderr}");
    assert!(out.stdout.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
