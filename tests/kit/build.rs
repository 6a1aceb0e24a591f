//! Generates the demo API's Rust code from the repository's protos without protoc:
//! `protox` compiles them to a FileDescriptorSet, `tonic-prost-build` turns that into prost
//! messages and tonic clients/servers. The encoded descriptor set is also written to OUT_DIR
//! so tests can hand the exact same descriptors to the gateway.
use std::path::PathBuf;

use prost::Message;

/// Protos compiled into the kit, relative to `<repo>/proto`.
const PROTOS: &[&str] = &[
    "meshgate/demo/v1/payments.proto",
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
    "google/rpc/code.proto",
];

/// The kit's own protos, relative to `tests/kit/proto`: the OTLP trace receiver's subset and
/// gRPC health checking.
const KIT_PROTOS: &[&str] = &[
    "opentelemetry/proto/collector/trace/v1/trace_service.proto",
    "grpc/health/v1/health.proto",
];

/// Google's proto comments hold code samples that rustdoc would run as doctests: drop them
/// (tonic-prost-build's own `disable_comments` does not reach prost in `compile_fds`).
fn prost_config() -> prost_build::Config {
    let mut config = prost_build::Config::new();
    config.disable_comments([".google.api", ".google.rpc"]);
    config
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest.join("../../proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed={}", proto_root.display());

    let kit_root = manifest.join("proto");
    println!("cargo:rerun-if-changed={}", kit_root.display());
    let files = PROTOS.iter().chain(KIT_PROTOS);
    let fds = protox::compile(files, [&proto_root, &kit_root])?;
    std::fs::write(out_dir.join("descriptor_set.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .include_file("protos.rs")
        .compile_fds_with_config(fds, prost_config())?;

    // The rate limit service's protocol (a subset of Envoy's API, tests/kit/proto): the kit's
    // RLS server (src/rls.rs).
    let rls_root = manifest.join("proto");
    println!("cargo:rerun-if-changed={}", rls_root.display());
    let rls = protox::compile(["envoy/service/ratelimit/v3/rls.proto"], [&rls_root])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .include_file("rls.rs")
        .compile_fds(rls)?;
    Ok(())
}
