//! meshgate's test kit: the demo gRPC backend, a REST echo backend, a controllable JWKS server,
//! and the harness end-to-end tests use to run real Envoy against them.

pub mod backend;
pub mod cli;
pub mod error;
pub mod harness;
pub mod http_server;
pub mod jwks;
pub mod proto;
pub mod rest;

pub use error::{KitError, KitResult};
