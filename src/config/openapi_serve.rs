//! `openapi`: the gateway serves the OpenAPI document of its HTTP API (`meshgate openapi`) at a
//! path of its own. The filter does nothing with it: `meshgate envoy` renders a route with a
//! direct response (meshgate off on it), and `meshgate istio` a VirtualService
//! `directResponse` (docs/partners.md).

use serde::{Deserialize, Serialize};

use crate::config_error::ConfigError;

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OpenapiServeInput {
    /// The exact path the document is served at (`/openapi.json`).
    pub path: String,
    /// The document's `info.title`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// The title when none is given (as `meshgate openapi`'s `--title`).
pub const DEFAULT_TITLE: &str = "meshgate API";

impl OpenapiServeInput {
    pub fn title(&self) -> &str {
        self.title.as_deref().unwrap_or(DEFAULT_TITLE)
    }

    /// A path Envoy can match exactly: absolute, no query or fragment, no spaces.
    pub fn check(&self) -> Result<(), ConfigError> {
        let p = &self.path;
        let bad = !p.starts_with('/') || p.bytes().any(|b| b"?# \t".contains(&b) || b < 0x20);
        if bad {
            return Err(ConfigError::new(
                "openapi.path",
                format!(
                    "`{p}` is not an absolute path without query or fragment (`/openapi.json`)"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_absolute_plain_path_is_accepted() {
        let at = |p: &str| OpenapiServeInput {
            path: p.into(),
            title: None,
        };
        assert!(at("/openapi.json").check().is_ok());
        for bad in ["", "openapi.json", "/a?b", "/a#b", "/a b"] {
            let err = at(bad).check().unwrap_err();
            assert_eq!(err.field, "openapi.path", "{bad}");
        }
    }
}
