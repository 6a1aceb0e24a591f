//! Configuration: serde input types -> validated, compiled, immutable [`Config`] (once per VM).

mod compile;
mod compiled;
pub mod input;
pub mod listener;
pub mod openapi_serve;
mod operations;
pub mod tracing;

pub use crate::config_error::ConfigError;
pub use compile::{compile, compile_json};
pub use compiled::*;
pub use input::PathTranslation;
