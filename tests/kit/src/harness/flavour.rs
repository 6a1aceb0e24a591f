//! Which build of meshgate the end-to-end suites run: the Proxy-Wasm module in Envoy's wasm
//! filter, or the native module (a shared library) in Envoy's dynamic-modules filter. Both run
//! the same core; every suite takes the flavour from the environment, so it runs on either
//! without edits:
//!
//! ```text
//! cargo test -p meshgate-kit --test e2e_foundation                          # wasm
//! MESHGATE_FLAVOUR=native cargo test -p meshgate-kit --test e2e_foundation  # native
//! ```
//!
//! A test that only makes sense on one flavour (VM traps and reloads, Istio's WasmPlugin) says
//! so at its start with [`skip_on_native`], which prints the reason.

use std::path::{Path, PathBuf};

use meshgate::cli::envoy::EnvoyOptions;

use super::repo_root;
use super::wasm_path;
use crate::error::{KitError, KitResult};

/// The environment variable that picks the flavour: `wasm` (or unset, or empty) or `native`.
pub const FLAVOUR_ENV: &str = "MESHGATE_FLAVOUR";
/// The environment variable that names the native module (default [`DEFAULT_NATIVE`]).
pub const NATIVE_ENV: &str = "MESHGATE_NATIVE";
/// Where `make build` / `make host` put the native module, relative to the repository.
pub const DEFAULT_NATIVE: &str = "build/libmeshgate_native.so";
/// The environment variable that names the native test module (default
/// [`DEFAULT_NATIVE_TEST`]).
pub const NATIVE_TEST_ENV: &str = "MESHGATE_NATIVE_TEST";
/// The native module's test build (`make native-test`: the `test-trap` feature).
pub const DEFAULT_NATIVE_TEST: &str = "build/libmeshgate_native-test.so";
/// The wasm module's test build (`make wasm-test`).
pub const DEFAULT_WASM_TEST: &str = "build/meshgate-test.wasm";

/// The build of meshgate under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// `build/meshgate.wasm` in `envoy.filters.http.wasm` (the product's first artifact).
    Wasm,
    /// The native module in `envoy.filters.http.dynamic_modules` (`meshgate envoy --native`).
    Native,
}

impl Flavour {
    /// The flavour `MESHGATE_FLAVOUR` names; an unknown value is an error (a typo must not
    /// quietly run the other flavour).
    pub fn from_env() -> KitResult<Flavour> {
        let value = std::env::var(FLAVOUR_ENV).unwrap_or_default();
        Flavour::parse(&value).ok_or_else(|| {
            KitError::new(format!(
                "{FLAVOUR_ENV}={value:?}: expected `wasm` or `native`"
            ))
        })
    }

    /// `wasm`, `native`, or empty (wasm).
    pub fn parse(value: &str) -> Option<Flavour> {
        match value.trim() {
            "" | "wasm" => Some(Flavour::Wasm),
            "native" => Some(Flavour::Native),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Flavour::Wasm => "wasm",
            Flavour::Native => "native",
        }
    }

    pub fn is_native(self) -> bool {
        self == Flavour::Native
    }

    /// The module Envoy loads for this flavour.
    pub fn module_path(self) -> KitResult<PathBuf> {
        match self {
            Flavour::Wasm => wasm_path(),
            Flavour::Native => native_path(),
        }
    }

    /// The test build of the module (its test triggers, `x-meshgate-test-trap`):
    /// `build/meshgate-test.wasm` (`make wasm-test`), or `MESHGATE_NATIVE_TEST`, else
    /// `build/libmeshgate_native-test.so` (`make native-test`).
    pub fn test_module_path(self) -> KitResult<PathBuf> {
        let (p, how) = match self {
            Flavour::Wasm => (repo_root().join(DEFAULT_WASM_TEST), "make wasm-test"),
            Flavour::Native => (
                std::env::var_os(NATIVE_TEST_ENV)
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
                    .unwrap_or_else(|| repo_root().join(DEFAULT_NATIVE_TEST)),
                "make native-test",
            ),
        };
        if p.is_file() {
            Ok(p)
        } else {
            Err(KitError::new(format!(
                "{} not found: run `{how}`",
                p.display()
            )))
        }
    }

    /// The options `meshgate envoy` renders from, for `filter_json` in this flavour's filter
    /// (the module at [`Flavour::module_path`]); the rest as [`EnvoyOptions::new`] sets it.
    pub fn envoy_options(self, filter_json: String) -> KitResult<EnvoyOptions> {
        let module = self.module_path()?;
        let mut o = EnvoyOptions::new(filter_json, module.display().to_string());
        configure(self, &mut o, &module)?;
        Ok(o)
    }

    /// The `meshgate envoy` flag that names the module (`--wasm PATH` or `--native PATH`).
    pub fn cli_args(self) -> KitResult<[String; 2]> {
        let path = self.module_path()?.display().to_string();
        let flag = match self {
            Flavour::Wasm => "--wasm",
            Flavour::Native => "--native",
        };
        Ok([flag.to_string(), path])
    }
}

/// Point the options `meshgate envoy` renders from at `module` in this flavour's filter (the
/// native flavour: the dynamic-modules filter, as `meshgate envoy --native` renders it). Call
/// it once the stats config is set.
pub(super) fn configure(flavour: Flavour, o: &mut EnvoyOptions, module: &Path) -> KitResult<()> {
    match flavour {
        Flavour::Wasm => o.native_path = None,
        Flavour::Native => {
            o.native_path = Some(module.display().to_string());
            // As `meshgate envoy --native` renders them: the latency buckets for the native
            // module's namespace too.
            meshgate::cli::envoy::native::adapt_stats(&mut o.stats_config);
        }
    }
    Ok(())
}

/// The native module: `MESHGATE_NATIVE`, else `<repo>/build/libmeshgate_native.so`
/// (`make build`).
pub fn native_path() -> KitResult<PathBuf> {
    let p = std::env::var_os(NATIVE_ENV)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(DEFAULT_NATIVE));
    if p.is_file() {
        Ok(p)
    } else {
        Err(KitError::new(format!(
            "{} not found: run `make native` (or set {NATIVE_ENV})",
            p.display()
        )))
    }
}

/// The prefix Envoy keeps on a dynamic module's stats in `/stats/prometheus` (it strips only
/// Wasm's `wasmcustom` namespace): `envoy_dynamicmodulescustom_meshgate_requests_total`.
pub const NATIVE_PROMETHEUS_PREFIX: &str = "envoy_dynamicmodulescustom_";

/// A `/stats/prometheus` scrape as Prometheus stores it with docs/native.md's relabel rule
/// (`envoy_dynamicmodulescustom_(meshgate_.*)` -> `$1`): on the native flavour meshgate's
/// families get their wasm names back, so a suite reads the same names on both flavours.
pub fn relabel_prometheus(text: String) -> String {
    if matches!(Flavour::from_env(), Ok(Flavour::Native)) {
        text.replace(&format!("{NATIVE_PROMETHEUS_PREFIX}meshgate_"), "meshgate_")
    } else {
        text
    }
}

/// True on the native flavour, after printing why the calling test does not apply there:
/// `if skip_on_native("VM traps are Proxy-Wasm's") { return; }`.
pub fn skip_on_native(reason: &str) -> bool {
    // A bad value does not skip: the test's gateway then fails with the message.
    let native = matches!(Flavour::from_env(), Ok(Flavour::Native));
    if native {
        println!("skipped on the native flavour: {reason}");
    }
    native
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flavour_is_wasm_unless_native_is_named() {
        assert_eq!(Flavour::parse(""), Some(Flavour::Wasm));
        assert_eq!(Flavour::parse("wasm"), Some(Flavour::Wasm));
        assert_eq!(Flavour::parse(" native\n"), Some(Flavour::Native));
        assert_eq!(Flavour::parse("Native"), None, "a typo is refused");
        assert_eq!(Flavour::parse("dynamic"), None);
    }
}
