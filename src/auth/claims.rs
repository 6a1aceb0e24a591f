//! Claims as the verifier reads them: NumericDates, audiences, nested claim paths, and claim
//! values turned into header values.

use serde_json::{Map, Value};

use crate::auth::input::ClaimToHeaderInput;
use crate::config_error::ConfigError;

use super::extract::header_name;

/// One `claim_to_headers` entry, compiled: the path split once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimHeader {
    pub path: Vec<String>,
    pub header: String,
}

pub fn compile_claim_headers(list: &[ClaimToHeaderInput]) -> Result<Vec<ClaimHeader>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, c)| {
            let at = format!("claim_to_headers[{i}]");
            let path: Vec<String> = c.claim.split('.').map(str::to_string).collect();
            if path.iter().any(String::is_empty) {
                return Err(ConfigError::new("claim", "must be a dotted claim path").within(&at));
            }
            let header = header_name(&c.header)
                .map_err(|e| ConfigError::new("header", e.message).within(&at))?;
            Ok(ClaimHeader { path, header })
        })
        .collect()
}

/// A claim by dotted path (`realm_access.roles`).
pub fn lookup<'a>(claims: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(claims.get(first)?, |v, key| v.as_object()?.get(key))
}

/// A claim value as a header value: strings as they are, numbers and booleans printed, arrays
/// of those joined with `,`, objects as compact JSON. A value with control characters (which
/// would let a token inject headers) gives no header at all.
pub fn header_value(value: &Value) -> Option<String> {
    let text = match value {
        Value::Null => return None,
        Value::Array(items) => items
            .iter()
            .map(scalar_text)
            .collect::<Option<Vec<_>>>()?
            .join(","),
        other => scalar_text(other)?,
    };
    (!text.chars().any(char::is_control)).then_some(text)
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) | Value::Object(_) => Some(v.to_string()),
        Value::Null | Value::Array(_) => None,
    }
}

/// A NumericDate claim (RFC 7519 §2: seconds, possibly fractional): `Ok(None)` when absent,
/// `Err` when present but not a non-negative number.
pub fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, ()> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                Ok(Some(u))
            } else {
                match n.as_f64() {
                    // Truncation is the intent: a fractional second never extends validity
                    // by more than the clock skew already does.
                    Some(f) if (0.0..1.0e15).contains(&f) => Ok(Some(f as u64)),
                    _ => Err(()),
                }
            }
        }
        Some(_) => Err(()),
    }
}

/// `aud` as a list (it may be one string or an array of strings, RFC 7519 §4.1.3).
pub fn audiences(claims: &Map<String, Value>) -> Vec<&str> {
    match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn nested_paths_and_arrays_become_header_values() {
        let c = map(json!({"realm_access": {"roles": ["admin", "ops"]}, "n": 3, "ok": true}));
        let roles = lookup(&c, &["realm_access".into(), "roles".into()]).unwrap();
        assert_eq!(header_value(roles).as_deref(), Some("admin,ops"));
        assert_eq!(
            header_value(lookup(&c, &["n".into()]).unwrap()).as_deref(),
            Some("3")
        );
        assert_eq!(header_value(&json!(true)).as_deref(), Some("true"));
        assert_eq!(lookup(&c, &["realm_access".into(), "missing".into()]), None);
        assert_eq!(lookup(&c, &["n".into(), "deeper".into()]), None);
    }

    #[test]
    fn control_characters_never_reach_a_header() {
        assert_eq!(header_value(&json!("a\r\nx-admin: 1")), None);
        assert_eq!(header_value(&json!(["ok", "b\nc"])), None);
    }

    #[test]
    fn numeric_dates_accept_integers_and_fractions_only() {
        let c = map(json!({"exp": 10, "nbf": 5.9, "iat": "1", "bad": -1}));
        assert_eq!(numeric_date(&c, "exp"), Ok(Some(10)));
        assert_eq!(numeric_date(&c, "nbf"), Ok(Some(5)));
        assert_eq!(numeric_date(&c, "iat"), Err(()));
        assert_eq!(numeric_date(&c, "bad"), Err(()));
        assert_eq!(numeric_date(&c, "none"), Ok(None));
    }

    #[test]
    fn audience_is_a_string_or_a_list() {
        assert_eq!(audiences(&map(json!({"aud": "a"}))), vec!["a"]);
        assert_eq!(audiences(&map(json!({"aud": ["a", "b"]}))), vec!["a", "b"]);
        assert!(audiences(&map(json!({}))).is_empty());
    }

    #[test]
    fn claim_paths_and_header_names_are_checked() {
        let bad = [ClaimToHeaderInput {
            claim: "a..b".into(),
            header: "x-a".into(),
        }];
        assert_eq!(
            compile_claim_headers(&bad).unwrap_err().field,
            "claim_to_headers[0].claim"
        );
        let bad = [ClaimToHeaderInput {
            claim: "a".into(),
            header: "x a".into(),
        }];
        assert_eq!(
            compile_claim_headers(&bad).unwrap_err().field,
            "claim_to_headers[0].header"
        );
    }
}
