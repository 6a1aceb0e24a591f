//! Gateway YAML -> validated filter JSON.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;

use crate::config::input::GatewayInput;
use crate::config::{compile, ConfigError};

#[derive(Debug)]
pub enum CompileError {
    Io(PathBuf, std::io::Error),
    Yaml(PathBuf, String),
    Proto(String),
    Config(PathBuf, ConfigError),
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompileError::Io(p, e) => write!(f, "cannot read {}: {e}", p.display()),
            CompileError::Yaml(p, e) => write!(f, "{}: {e}", p.display()),
            CompileError::Proto(e) => write!(f, "descriptors.files: {e}"),
            CompileError::Config(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for CompileError {}

/// Read the YAML and resolve the descriptor set into `descriptors.descriptor_set`.
pub fn load_input(path: &Path) -> Result<GatewayInput, CompileError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| CompileError::Io(path.to_path_buf(), e))?;
    let mut input = parse_yaml(&text).map_err(|e| CompileError::Yaml(path.to_path_buf(), e))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let d = &mut input.descriptors;
    let bytes = if let Some(file) = d.descriptor_set_file.take() {
        let p = base.join(file);
        std::fs::read(&p).map_err(|e| CompileError::Io(p, e))?
    } else if !d.files.is_empty() {
        compile_protos(base, &d.files, &d.include)?
    } else {
        Vec::new()
    };
    if !bytes.is_empty() {
        d.descriptor_set = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    d.files.clear();
    d.include.clear();
    // `meshgate envoy` reads it (`listener_tls`); the filter has no use for it.
    input.listener = None;
    Ok(input)
}

/// The gateway file's `listener.tls`, its paths relative to the file resolved.
pub fn listener_tls(
    path: &Path,
) -> Result<Option<crate::config::listener::ListenerTlsInput>, CompileError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| CompileError::Io(path.to_path_buf(), e))?;
    let input = parse_yaml(&text).map_err(|e| CompileError::Yaml(path.to_path_buf(), e))?;
    let base = path.parent().unwrap_or(Path::new("."));
    Ok(input.listener.and_then(|l| l.tls).map(|t| t.resolved(base)))
}

/// YAML read as the same JSON shape the filter accepts: a requirement is written
/// `{provider: main}` as in JSON (serde_yaml_ng alone wants `!provider main` for enums), and
/// errors still name the field (`operations.X.auth: ...`).
fn parse_yaml(text: &str) -> Result<GatewayInput, String> {
    let value: serde_json::Value = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("{path}: {}", e.into_inner())
        }
    })
}

fn compile_protos(
    base: &Path,
    files: &[String],
    include: &[String],
) -> Result<Vec<u8>, CompileError> {
    let includes: Vec<PathBuf> = if include.is_empty() {
        vec![base.to_path_buf()]
    } else {
        include.iter().map(|i| base.join(i)).collect()
    };
    let mut compiler =
        protox::Compiler::new(&includes).map_err(|e| CompileError::Proto(e.to_string()))?;
    compiler.include_imports(true).include_source_info(false);
    compiler
        .open_files(files)
        .map_err(|e| CompileError::Proto(e.to_string()))?;
    Ok(compiler.encode_file_descriptor_set())
}

/// The filter's JSON configuration for a gateway YAML, validated exactly as the filter will.
pub fn compile_file(path: &Path) -> Result<String, CompileError> {
    let input = load_input(path)?;
    compile(&input).map_err(|e| CompileError::Config(path.to_path_buf(), e))?;
    serde_json::to_string(&input).map_err(|e| CompileError::Yaml(path.to_path_buf(), e.to_string()))
}
