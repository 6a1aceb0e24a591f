//! meshgate as an Envoy dynamic module (`--features native`, built as a host `cdylib`): the
//! event hooks Envoy calls, forwarded to the same core the wasm module runs. Translation only:
//! every decision is the core's (`crate::filter`), the same rule as `crate::wasm`.
//!
//! Threads: each worker thread has its own roots (`worker`), as each worker had its own VM;
//! remote JWKS are refreshed by the clock on the main thread and handed over (`keeper`).
//! Panics: the module is built with `panic = "unwind"`; every hook runs inside
//! `catch_unwind`, and a panic in a stream's hook answers that stream 500 with a
//! `google.rpc.Status` (INTERNAL) and one log line, while later streams are served.

mod abi;
mod callouts;
mod config;
mod hooks;
mod host_impl;
mod keeper;
mod properties;
mod shared;
mod ticker;
mod unused;
mod worker;
