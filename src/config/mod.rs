//! Configuration: serde input types -> validated, compiled, immutable [`Config`] (once per VM).

mod compile;
mod compiled;
mod error;
pub mod input;

pub use compile::{compile, compile_json};
pub use compiled::*;
pub use error::ConfigError;
pub use input::PathTranslation;
