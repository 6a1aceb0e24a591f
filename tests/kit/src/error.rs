//! The kit's one error type: a message meant for a human reading a failed test, usually with
//! the log tail of the process that misbehaved.
use std::fmt;

/// What went wrong while starting or talking to a test process or server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KitError(pub String);

impl KitError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        KitError(message.into())
    }

    /// Prefixes the message with what was being done.
    pub fn context(self, what: &str) -> Self {
        KitError(format!("{what}: {}", self.0))
    }
}

impl fmt::Display for KitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KitError {}

impl From<std::io::Error> for KitError {
    fn from(e: std::io::Error) -> Self {
        KitError(e.to_string())
    }
}

/// Result with [`KitError`].
pub type KitResult<T> = Result<T, KitError>;
