//! `meshgate validate`: check a configuration exactly as the filter will, and list what the
//! filter would leave out (proto bindings it cannot serve), refused with `--strict`.

use std::path::PathBuf;

use super::compile_file;
use crate::config::{compile_json, Config};

#[derive(Debug, Clone, clap::Args)]
pub struct ValidateArgs {
    /// A gateway configuration (YAML) or a compiled filter configuration (`.json`).
    #[arg(value_name = "GATEWAY.YAML|FILTER-CONFIG.JSON")]
    pub input: PathBuf,
    /// Refuse proto bindings meshgate cannot serve (an ESP-style `{$api_version}`, say), as
    /// `transcoding.strict_bindings: true` makes the filter do; by default they are listed and
    /// the filter skips them.
    #[arg(long)]
    pub strict: bool,
    /// Accepted and ignored (validation writes nothing).
    #[arg(short, long, value_name = "FILE", hide = true)]
    pub output: Option<PathBuf>,
}

pub fn run(args: &ValidateArgs) -> Result<(), String> {
    let input = &args.input;
    let config = load(input)?;
    for skipped in &config.skipped_bindings {
        eprintln!("meshgate: {}: binding skipped: {skipped}", input.display());
    }
    let skipped = config.skipped_bindings.len();
    if args.strict && skipped > 0 {
        return Err(format!(
            "{}: {skipped} binding(s) cannot be served (--strict)",
            input.display()
        ));
    }
    let ops = config.operations.len();
    let note = match skipped {
        0 => String::new(),
        n => format!(", {n} binding(s) skipped"),
    };
    println!("{}: valid ({ops} operations{note})", input.display());
    Ok(())
}

/// The configuration as the filter compiles it, from YAML or from the filter's JSON.
fn load(input: &PathBuf) -> Result<Config, String> {
    let is_json = input.extension().is_some_and(|e| e == "json");
    let json = if is_json {
        std::fs::read(input).map_err(|e| format!("cannot read {}: {e}", input.display()))?
    } else {
        compile_file(input).map_err(|e| e.to_string())?.into_bytes()
    };
    compile_json(&json).map_err(|e| format!("{}: {e}", input.display()))
}
