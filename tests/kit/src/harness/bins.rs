//! Finding (and building) the kit's binaries for tests of any package in the workspace.
//!
//! Cargo builds a package's binaries only for that package's own tests, so the root crate's
//! end-to-end tests would not get `demo-backend` built. The first lookup in a test process
//! therefore runs `cargo build -p meshgate-kit --bins` (same cargo, same target dir and
//! profile; a no-op when fresh, and safe: cargo does not hold its lock while tests run).
//! `MESHGATE_KIT_BIN_DIR` skips the build and names the directory to use instead (for the kit's
//! programs and the `meshgate` command: `make test` points it at `cargo test --workspace`'s).
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::error::{KitError, KitResult};

/// `name` in `MESHGATE_KIT_BIN_DIR` when that is set (`make test`: the programs its `cargo test
/// --workspace` built), an error if it is not there; `None` when the variable is unset.
fn from_bin_dir(name: &str) -> Option<KitResult<PathBuf>> {
    let path = PathBuf::from(std::env::var_os("MESHGATE_KIT_BIN_DIR")?).join(name);
    Some(if path.is_file() {
        Ok(path)
    } else {
        Err(KitError::new(format!(
            "MESHGATE_KIT_BIN_DIR: {} does not exist",
            path.display()
        )))
    })
}

/// A binary of this kit (`demo-backend`, `rest-backend`, `jwks-server`), built if needed.
pub fn kit_bin(name: &str) -> KitResult<PathBuf> {
    if let Some(given) = from_bin_dir(name) {
        return given;
    }
    let profile_dir = profile_dir()?;
    static BUILT: OnceLock<Result<(), KitError>> = OnceLock::new();
    BUILT.get_or_init(|| build_bins(&profile_dir)).clone()?;
    let path = profile_dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(KitError::new(format!(
            "kit binary {} not found after building",
            path.display()
        )))
    }
}

/// `<target>/<profile>`: the running test executable lives in its `deps/` directory.
fn profile_dir() -> KitResult<PathBuf> {
    let exe = std::env::current_exe()?;
    let deps = exe
        .parent()
        .ok_or_else(|| KitError::new("test executable has no directory"))?;
    let dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().unwrap_or(deps)
    } else {
        deps
    };
    Ok(dir.to_path_buf())
}

/// The root crate's `meshgate` command, built if needed (same cargo, target dir and profile).
pub fn meshgate_cli() -> KitResult<PathBuf> {
    // `make test` names the directory where its `cargo test --workspace` left the programs
    // (this one too): building it here again, for the root crate alone, is another feature set
    // of the same crates, which makes the next `cargo test` compile them again.
    if let Some(given) = from_bin_dir("meshgate") {
        return given;
    }
    let profile_dir = profile_dir()?;
    static BUILT: OnceLock<Result<(), KitError>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
            build(&profile_dir, &root, &["--bin", "meshgate"])
        })
        .clone()?;
    let path = profile_dir.join("meshgate");
    if path.is_file() {
        Ok(path)
    } else {
        Err(KitError::new(format!(
            "{} not found after building",
            path.display()
        )))
    }
}

/// Runs `cargo build -p meshgate-kit --bins` for the profile of `profile_dir`.
fn build_bins(profile_dir: &Path) -> Result<(), KitError> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    build(profile_dir, &manifest, &["--bins"])
}

/// `cargo build --quiet <what> --manifest-path <manifest>` for the profile of `profile_dir`.
fn build(profile_dir: &Path, manifest: &Path, what: &[&str]) -> Result<(), KitError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--quiet"])
        .args(what)
        .arg("--manifest-path")
        .arg(manifest);
    if let Some(target_dir) = profile_dir.parent() {
        command.arg("--target-dir").arg(target_dir);
    }
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(profile) => {
            command.args(["--profile", profile]);
        }
    }
    let output = command
        .output()
        .map_err(|e| KitError::new(format!("running {command:?}: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(KitError::new(format!(
            "building failed ({command:?}):\n{}",
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}
