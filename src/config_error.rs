//! A configuration error names the field it is about (`auth.providers[1].issuer: ...`), so a
//! user can fix it without reading meshgate's source.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the field (`auth.providers[1].issuer`); empty for the whole document.
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Prefix the field path with its parent (`providers[1]` under `auth`).
    pub fn within(mut self, parent: &str) -> Self {
        self.field = match (parent.is_empty(), self.field.is_empty()) {
            (true, _) => self.field,
            (false, true) => parent.to_string(),
            (false, false) if self.field.starts_with('[') => format!("{parent}{}", self.field),
            (false, false) => format!("{parent}.{}", self.field),
        };
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_fields_are_joined_with_dots_and_brackets() {
        let e = ConfigError::new("issuer", "must not be empty")
            .within("providers[1]")
            .within("auth");
        assert_eq!(e.to_string(), "auth.providers[1].issuer: must not be empty");
        let e = ConfigError::new("[2]", "bad").within("files");
        assert_eq!(e.field, "files[2]");
    }
}
