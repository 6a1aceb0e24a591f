//! meshgate's test kit: the demo gRPC backend, a REST echo backend, a controllable JWKS server,
//! and the harness end-to-end tests use to run real Envoy against them.

pub mod backend;
pub mod cli;
pub mod proto;
