//! meshgate: the policy half of an API gateway, as a Proxy-Wasm filter for Envoy and Istio.
//!
//! The core (everything but `wasm`) is plain Rust, tested on the host through the [`host::Host`]
//! trait; `wasm` is the only module that talks to the proxy.

pub mod auth;
pub mod config;
pub mod config_error;
pub mod cors;
pub mod filter;
pub mod host;
pub mod observe;
pub mod operation;
pub mod route;
pub mod status;
pub mod transcode;

#[cfg(not(target_arch = "wasm32"))]
pub mod cli;

#[cfg(target_arch = "wasm32")]
mod wasm;

/// The Envoy dynamic-module glue (host `cdylib`, `--features native`): docs/native.md.
#[cfg(all(feature = "native", not(target_arch = "wasm32")))]
mod native;
