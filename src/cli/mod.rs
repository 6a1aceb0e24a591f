//! The `meshgate` command (host only): turns the gateway YAML into the filter's JSON
//! configuration (compiling the protos and embedding the descriptor set), validates it, and
//! renders what deploys it (Envoy bootstrap, Prometheus alert rules; later Istio manifests).

pub mod alerts;
pub mod envoy;
pub mod istio;
mod load;
pub mod oci;

pub use load::{compile_file, load_input, CompileError};

use std::path::PathBuf;

const USAGE: &str = "\
meshgate: configuration tool for the meshgate Proxy-Wasm gateway filter

USAGE:
  meshgate compile  <gateway.yaml> [-o <filter-config.json>]
      Compile the protos, embed the descriptor set, validate, and write the filter's JSON
      configuration (Envoy's `configuration`, Istio's `pluginConfig`). Default output: stdout.
  meshgate validate <gateway.yaml | filter-config.json>
      Check a configuration exactly as the filter will (errors name the field).
  meshgate envoy    <gateway.yaml> --wasm <path> [--listen ADDR] [--admin ADDR]
                    [--cluster NAME=HOST:PORT[/h1]]... [-o <envoy.yaml>]
                    [--route name=N,prefix=/P,cluster=C[,policy=POLICY][,disabled]]...
                    [--ca-file PATH]
      Render an Envoy bootstrap that runs meshgate in front of the given clusters; each
      --route comes first and selects a policy (route metadata) or switches meshgate off.
      Remote JWKS clusters not given with --cluster are rendered from their URIs (TLS for
      https://, trusting --ca-file, default /etc/ssl/certs/ca-certificates.crt).
  meshgate alerts   <gateway.yaml | filter-config.json> [-o <rules.yml>]
      Prometheus rules for the configuration's objectives: SLO error ratios over 5m..3d and
      multiwindow, multi-burn-rate alerts (page: 1h/5m at 14.4x, 6h/30m at 6x; ticket:
      1d/2h at 3x, 3d/6h at 1x), for availability and latency. Check with `promtool check rules`.
  meshgate istio    <gateway.yaml> -d <dir> (--oci-layout <dir> | --sha256 <hex>)
                    [--image oci://REG/REPO:TAG] [--namespace NS] [--gateway-label K=V]
                    [--sidecar-namespace NS] [--sidecar-label K=V] [--fail-strategy S]
                    [--module-file PATH] [--module-url URL --wasm <plugin.wasm>]
      Write the Istio resources: WasmPlugin (gateway, sidecar), TrafficExtension, EnvoyFilter,
      JWKS ServiceEntry/DestinationRule, Telemetry, IstioOperator overlay, stats bootstrap.
  meshgate oci      <plugin.wasm> <out-dir> [--tag TAG]
      Write the module as an OCI image layout in Istio's compat format (push with skopeo).
";

/// Entry point of the binary; returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    match run(args) {
        Ok(()) => 0,
        Err(msg) => {
            eprintln!("meshgate: {msg}");
            2
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let mut it = args.into_iter().skip(1);
    let cmd = it.next().unwrap_or_default();
    let rest: Vec<String> = it.collect();
    match cmd.as_str() {
        "compile" => cmd_compile(&rest),
        "validate" => cmd_validate(&rest),
        "envoy" => envoy::cmd_envoy(&rest),
        "alerts" => alerts::cmd_alerts(&rest),
        "istio" => istio::cmd_istio(&rest),
        "oci" => oci::cmd_oci(&rest),
        "help" | "--help" | "-h" | "" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    }
}

/// `-o FILE` and one positional argument.
pub(crate) fn positional_and_output(args: &[String]) -> Result<(PathBuf, Option<PathBuf>), String> {
    let mut input = None;
    let mut output = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-o" | "--output" => {
                output = Some(PathBuf::from(it.next().ok_or("-o needs a file")?));
            }
            s if s.starts_with('-') => return Err(format!("unknown option `{s}`")),
            s if input.is_none() => input = Some(PathBuf::from(s)),
            s => return Err(format!("unexpected argument `{s}`")),
        }
    }
    Ok((input.ok_or("missing the configuration file")?, output))
}

pub(crate) fn write_output(output: Option<&PathBuf>, text: &str) -> Result<(), String> {
    match output {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

fn cmd_compile(args: &[String]) -> Result<(), String> {
    let (input, output) = positional_and_output(args)?;
    let json = compile_file(&input).map_err(|e| e.to_string())?;
    write_output(output.as_ref(), &json)
}

fn cmd_validate(args: &[String]) -> Result<(), String> {
    let (input, _) = positional_and_output(args)?;
    let is_json = input.extension().is_some_and(|e| e == "json");
    let ops = if is_json {
        let bytes =
            std::fs::read(&input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
        crate::config::compile_json(&bytes)
            .map_err(|e| format!("{}: {e}", input.display()))?
            .operations
            .len()
    } else {
        let json = compile_file(&input).map_err(|e| e.to_string())?;
        crate::config::compile_json(json.as_bytes())
            .map_err(|e| format!("{}: {e}", input.display()))?
            .operations
            .len()
    };
    println!("{}: valid ({ops} operations)", input.display());
    Ok(())
}
