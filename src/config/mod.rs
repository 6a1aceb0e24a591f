//! Configuration: serde input types -> validated, compiled, immutable [`Config`] (once per VM).

mod error;
pub mod input;

pub use error::ConfigError;
