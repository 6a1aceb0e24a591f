//! The `meshgate` command (host only): turns the gateway YAML into the filter's JSON
//! configuration (compiling the protos and embedding the descriptor set), validates it, and
//! renders what deploys it (Envoy bootstrap, Prometheus alert rules, Istio resources, the OCI
//! image). Arguments are parsed by clap ([`Cli`]); every renderer builds typed structs and
//! serializes them.

pub mod alerts;
pub mod apikey;
pub mod envoy;
pub mod istio;
mod load;
pub mod oci;
pub mod openapi;
mod validate;

pub use load::{compile_file, listener_tls, load_input, CompileError};
pub use validate::ValidateArgs;

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

/// Exit status of a failed command: a usage error (clap's convention) or a configuration,
/// input or output error (named on stderr).
pub const EXIT_FAILURE: i32 = 2;

/// Configuration tool for the meshgate Proxy-Wasm gateway filter: compiles and validates its
/// configuration, renders what deploys it (Envoy bootstrap, Istio resources, OCI image,
/// Prometheus rules).
#[derive(Debug, Parser)]
#[command(name = "meshgate", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

// Parsed once per run: a large `envoy` variant (its many flags) costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile the protos, embed the descriptor set, validate, and write the filter's JSON
    /// configuration (Envoy's `configuration`, Istio's `pluginConfig`).
    Compile(CompileArgs),
    /// Check a configuration exactly as the filter will (errors name the field).
    Validate(ValidateArgs),
    /// Render an Envoy bootstrap that runs meshgate in front of the given clusters.
    ///
    /// Each --route comes first and selects a policy (route metadata) or switches meshgate
    /// off. Remote JWKS clusters not given with --cluster are rendered from their URIs (TLS
    /// for https://, trusting --ca-file).
    Envoy(envoy::EnvoyArgs),
    /// Prometheus rules for the configuration's objectives.
    ///
    /// SLO error ratios over 5m..3d and multiwindow, multi-burn-rate alerts (page: 1h/5m at
    /// 14.4x, 6h/30m at 6x; ticket: 1d/2h at 3x, 3d/6h at 1x), for availability and latency.
    /// Check with `promtool check rules`.
    Alerts(alerts::AlertsArgs),
    /// Write the Istio resources.
    ///
    /// WasmPlugin (gateway, sidecar), TrafficExtension, EnvoyFilter, JWKS
    /// ServiceEntry/DestinationRule, Telemetry, IstioOperator overlay, stats bootstrap.
    Istio(istio::IstioArgs),
    /// Write the module as an OCI image layout in Istio's compat format (push with skopeo).
    Oci(oci::OciArgs),
    /// Generate an API key for a partner and print its `auth.api_keys.clients` entry.
    ///
    /// The key is shown once (or written to --key-file); the entry holds only its SHA-256.
    Apikey(apikey::ApikeyArgs),
    /// Write an OpenAPI 3 document of the HTTP API from the descriptors and the HTTP rules.
    Openapi(openapi::OpenapiArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// For example `meshgate completions bash > ~/.local/share/bash-completion/completions/meshgate`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct CompileArgs {
    /// The gateway configuration (YAML).
    #[arg(value_name = "GATEWAY.YAML")]
    pub input: PathBuf,
    /// Where to write the filter configuration (default: stdout).
    #[arg(short, long, value_name = "FILTER-CONFIG.JSON")]
    pub output: Option<PathBuf>,
}

/// Entry point of the binary; returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors to stderr with 2.
            let _ = e.print();
            return if e.use_stderr() { EXIT_FAILURE } else { 0 };
        }
    };
    match run(cli) {
        Ok(()) => 0,
        Err(msg) => {
            eprintln!("meshgate: {msg}");
            EXIT_FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let Some(command) = cli.command else {
        // No subcommand: the overview, as `meshgate help` prints it.
        print!("{}", Cli::command().render_help());
        return Ok(());
    };
    match command {
        Command::Compile(a) => cmd_compile(&a),
        Command::Validate(a) => validate::run(&a),
        Command::Envoy(a) => envoy::run(&a),
        Command::Alerts(a) => alerts::run(&a),
        Command::Istio(a) => istio::run(&a),
        Command::Oci(a) => oci::run(&a),
        Command::Apikey(a) => apikey::run(&a),
        Command::Openapi(a) => openapi::run(&a),
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "meshgate", &mut std::io::stdout());
            Ok(())
        }
    }
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

fn cmd_compile(args: &CompileArgs) -> Result<(), String> {
    let json = compile_file(&args.input).map_err(|e| e.to_string())?;
    write_output(args.output.as_ref(), &json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
