//! Compiled requirements: who must have signed a request's token (Envoy's `JwtRequirement`).

use crate::auth::input::RequirementInput;
use crate::config_error::ConfigError;

/// A requirement with provider names resolved to indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// A valid token of this provider.
    Provider(usize),
    /// At least one of these is met.
    Any(Vec<Requirement>),
    /// All of these are met.
    All(Vec<Requirement>),
    /// A token found in any provider's places must be valid; no token at all is allowed.
    AllowMissing,
    /// Any token is verified (its principal kept when valid), but nothing is ever refused.
    AllowMissingOrFailed,
    /// No authentication: tokens are not even looked at.
    None,
    /// Nobody may call (the default for operations without a rule).
    Deny,
    /// A configured client's API key, allowed on the operation (`auth.api_keys`).
    ApiKey,
    /// A verified client certificate (mTLS), see [`super::client_cert`].
    ClientCert(super::client_cert::ClientCertRule),
}

impl Requirement {
    pub fn compile(
        r: &RequirementInput,
        provider: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<Requirement, ConfigError> {
        Ok(match r {
            RequirementInput::Provider(name) => {
                Requirement::Provider(provider(name).ok_or_else(|| {
                    ConfigError::new("provider", format!("no provider named {name:?}"))
                })?)
            }
            RequirementInput::Any(list) => Requirement::Any(compile_list(list, "any", provider)?),
            RequirementInput::All(list) => Requirement::All(compile_list(list, "all", provider)?),
            RequirementInput::AllowMissing => Requirement::AllowMissing,
            RequirementInput::AllowMissingOrFailed => Requirement::AllowMissingOrFailed,
            RequirementInput::None => Requirement::None,
            RequirementInput::ApiKey => Requirement::ApiKey,
            RequirementInput::ClientCert(c) => {
                Requirement::ClientCert(super::client_cert::ClientCertRule::compile(c)?)
            }
        })
    }
}

impl Requirement {
    /// Whether an API key takes part anywhere in the requirement.
    pub fn uses_api_key(&self) -> bool {
        match self {
            Requirement::ApiKey => true,
            Requirement::Any(list) | Requirement::All(list) => {
                list.iter().any(Requirement::uses_api_key)
            }
            _ => false,
        }
    }
}

fn compile_list(
    list: &[RequirementInput],
    field: &str,
    provider: &dyn Fn(&str) -> Option<usize>,
) -> Result<Vec<Requirement>, ConfigError> {
    if list.is_empty() {
        return Err(ConfigError::new(
            field,
            "must list at least one requirement",
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, r)| {
            Requirement::compile(r, provider).map_err(|e| e.within(&format!("[{i}]")).within(field))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<usize> {
        ["a", "b"].iter().position(|n| *n == name)
    }

    #[test]
    fn names_resolve_to_indexes_and_unknown_names_are_errors() {
        let input = RequirementInput::Any(vec![
            RequirementInput::Provider("b".into()),
            RequirementInput::All(vec![RequirementInput::Provider("a".into())]),
            RequirementInput::AllowMissing,
        ]);
        assert_eq!(
            Requirement::compile(&input, &lookup).unwrap(),
            Requirement::Any(vec![
                Requirement::Provider(1),
                Requirement::All(vec![Requirement::Provider(0)]),
                Requirement::AllowMissing,
            ])
        );
        let bad = RequirementInput::Any(vec![RequirementInput::Provider("zz".into())]);
        let err = Requirement::compile(&bad, &lookup).unwrap_err();
        assert_eq!(err.field, "any[0].provider");
        assert!(Requirement::compile(&RequirementInput::All(vec![]), &lookup).is_err());
    }
}
