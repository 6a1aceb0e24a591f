//! The edge protections `meshgate envoy` renders, in a real Envoy: the demo bootstrap (with the
//! defaults, and with every edge flag changed) passes `envoy --mode validate`; Envoy started on
//! it no longer warns that no connection limit is set, and runs with the rendered runtime keys
//! and HTTP/2 limits; the fields `meshgate istio` merges into the gateway's connection manager
//! validate too. (The abusive-client matrix and the overload run are separate suites.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use meshgate_kit::harness::{free_port, repo_root, start_envoy, wasm_path};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Envoy 1.40's start-up warning when no global connection limit is configured.
const NO_LIMIT_WARNING: &str =
    "There is no configured limit to the number of allowed active downstream connections";

/// Every edge flag, each away from its default.
const EVERY_EDGE_FLAG: [&str; 14] = [
    "--request-headers-timeout=3",
    "--request-timeout=30",
    "--stream-idle-timeout=40",
    "--connection-idle-timeout=50",
    "--max-headers-count=20",
    "--max-request-headers-kb=16",
    "--max-concurrent-streams=10",
    "--initial-stream-window-size=131072",
    "--initial-connection-window-size=262144",
    "--max-requests-per-io-cycle=4",
    "--premature-reset-total-stream-count=50",
    "--premature-reset-min-stream-lifetime=2",
    "--max-connections=64",
    "--max-heap-bytes=268435456",
];

fn temp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshgate-edge-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `meshgate envoy envoy/gateway.yaml ...` with `extra` flags, written to `out`.
fn render(out: &Path, extra: &[&str]) -> String {
    let mut argv: Vec<String> = vec![
        "meshgate".into(),
        "envoy".into(),
        repo_root().join("envoy/gateway.yaml").display().to_string(),
        "--wasm".into(),
        wasm_path().unwrap().display().to_string(),
        "--cluster".into(),
        "payments=127.0.0.1:50051".into(),
        "--cluster".into(),
        "wallets=127.0.0.1:50052".into(),
        "-o".into(),
        out.display().to_string(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    assert_eq!(meshgate::cli::main(argv.clone()), 0, "{argv:?}");
    std::fs::read_to_string(out).unwrap()
}

/// `envoy --mode validate -c FILE`, bounded; the output on failure.
fn envoy_validate(file: &Path) -> Result<(), String> {
    let envoy = meshgate_kit::harness::envoy_bin().unwrap();
    let out_file = file.with_extension("validate.log");
    let log = std::fs::File::create(&out_file).unwrap();
    let mut child = std::process::Command::new(envoy)
        .args(["--mode", "validate", "--use-dynamic-base-id", "-c"])
        .arg(file)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    for _ in 0..600 {
        if let Some(status) = child.try_wait().unwrap() {
            let text = std::fs::read_to_string(&out_file).unwrap_or_default();
            return if status.success() { Ok(()) } else { Err(text) };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err("envoy --mode validate did not finish in 60 s".into())
}

#[test]
fn the_demo_bootstrap_validates_with_default_and_changed_edge_protections() {
    let dir = temp("validate");
    let defaults = dir.join("defaults.yaml");
    let text = render(&defaults, &[]);
    for needle in [
        "global_downstream_max_connections",
        "reset_high_memory_stream",
        "overload.premature_reset_total_stream_count",
        "request_headers_timeout: 10s",
    ] {
        assert!(text.contains(needle), "{needle}");
    }
    envoy_validate(&defaults).unwrap();

    let changed = dir.join("changed.yaml");
    let text = render(&changed, &EVERY_EDGE_FLAG);
    assert!(text.contains("max_concurrent_streams: 10"), "{text}");
    envoy_validate(&changed).unwrap();

    // Validation is not a rubber stamp: an unknown overload action is refused.
    let broken = dir.join("broken.yaml");
    std::fs::write(
        &broken,
        text.replace(
            "envoy.overload_actions.shrink_heap",
            "envoy.overload_actions.no_such",
        ),
    )
    .unwrap();
    assert!(envoy_validate(&broken).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Envoy caps what the filters may buffer of an HTTP/2 stream at the stream's window: the
/// rendered window is never below the listener's buffer limit (else Envoy answers 413 to a
/// body meshgate accepts; e2e_istio_envoy's large-body request runs it for real).
#[test]
fn the_http2_windows_hold_the_buffer_meshgate_needs() {
    let dir = temp("window");
    let file = dir.join("envoy.yaml");
    for extra in [&[][..], &["--initial-stream-window-size=65535"][..]] {
        let b: Value = serde_yaml_ng::from_str(&render(&file, extra)).unwrap();
        let listener = &b["static_resources"]["listeners"][0];
        let limit = listener["per_connection_buffer_limit_bytes"]
            .as_u64()
            .unwrap();
        let h2 =
            &listener["filter_chains"][0]["filters"][0]["typed_config"]["http2_protocol_options"];
        let stream = h2["initial_stream_window_size"].as_u64().unwrap();
        let connection = h2["initial_connection_window_size"].as_u64().unwrap();
        assert!(limit > 65_536, "{limit}");
        assert!(stream >= limit.min((1 << 31) - 1), "{stream} < {limit}");
        assert!(connection >= stream, "{connection} < {stream}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts Envoy on the rendered demo bootstrap (free ports), after `edit`.
fn start_rendered(dir: &Path, edit: impl FnOnce(&mut Value)) -> meshgate_kit::harness::Envoy {
    let listen = format!("127.0.0.1:{}", free_port().unwrap());
    let admin = format!("127.0.0.1:{}", free_port().unwrap());
    let file = dir.join("envoy.yaml");
    let text = render(&file, &["--listen", &listen, "--admin", &admin]);
    let mut b: Value = serde_yaml_ng::from_str(&text).unwrap();
    edit(&mut b);
    start_envoy(&serde_yaml_ng::to_string(&b).unwrap()).unwrap()
}

#[test]
fn envoy_runs_the_rendered_protections_without_the_connection_limit_warning() {
    let dir = temp("run");
    let envoy = start_rendered(&dir, |_| {});
    let log = envoy.log();
    assert!(!log.contains(NO_LIMIT_WARNING), "{log}");
    let (status, runtime) = envoy.admin_get("/runtime").unwrap();
    assert_eq!(status, 200);
    let runtime: Value = serde_json::from_str(&runtime).unwrap();
    for (key, value) in [
        ("overload.premature_reset_total_stream_count", "500"),
        ("overload.premature_reset_min_stream_lifetime_seconds", "1"),
        ("http.max_requests_per_io_cycle", "1"),
    ] {
        assert_eq!(
            runtime["entries"][key]["final_value"], value,
            "{key}: {runtime}"
        );
    }
    let (_, dump) = envoy.admin_get("/config_dump").unwrap();
    for needle in [
        "\"max_concurrent_streams\": 100",
        "\"request_headers_timeout\": \"10s\"",
        "\"max_headers_count\": 100",
    ] {
        assert!(dump.contains(needle), "{needle} not in the config dump");
    }
    drop(envoy);

    // The check can fail: without the connection monitor, the same Envoy warns.
    let dir2 = temp("run-nolimit");
    let envoy = start_rendered(&dir2, |b| {
        b["overload_manager"]["resource_monitors"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["name"] != "envoy.resource_monitors.global_downstream_max_connections");
    });
    let log = envoy.log();
    assert!(log.contains(NO_LIMIT_WARNING), "{log}");
    drop(envoy);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}

/// Under Istio the gateway's `EnvoyFilter` merges the connection manager's protections: the
/// same fields, merged over a connection manager without them, pass Envoy's validation.
#[test]
fn the_istio_gateway_merge_of_the_edge_protections_validates() {
    let dir = temp("istio");
    let out = dir.join("out");
    let argv: Vec<String> = [
        "meshgate",
        "istio",
        &repo_root().join("istio/gateway.yaml").display().to_string(),
        "-d",
        &out.display().to_string(),
        "--sha256",
        &"a".repeat(64),
        "--max-concurrent-streams=10",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(meshgate::cli::main(argv.clone()), 0, "{argv:?}");
    let text = std::fs::read_to_string(out.join("envoyfilter-local-replies.yaml")).unwrap();
    let gateway: Value = text
        .split("\n---\n")
        .filter_map(|d| serde_yaml_ng::from_str::<Value>(d).ok())
        .find(|d| d["spec"]["configPatches"][0]["match"]["context"] == "GATEWAY")
        .unwrap();
    let merged = gateway["spec"]["configPatches"][0]["patch"]["value"]["typed_config"]
        .as_object()
        .unwrap()
        .clone();
    assert_eq!(
        merged["http2_protocol_options"]["max_concurrent_streams"], 10,
        "{merged:?}"
    );

    let file = dir.join("bootstrap.yaml");
    let rendered = render(&file, &[]);
    let mut b: Value = serde_yaml_ng::from_str(&rendered).unwrap();
    let hcm = b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]
        .as_object_mut()
        .unwrap();
    for (key, value) in merged {
        hcm.insert(key, value);
    }
    std::fs::write(&file, serde_yaml_ng::to_string(&b).unwrap()).unwrap();
    envoy_validate(&file).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
