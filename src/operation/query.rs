//! The query string: split from the path, then into `(field path, value)` pairs.
//!
//! Rules: pairs are separated by `&`; empty pairs (`a=1&&b=2`, a trailing `&`) are skipped; a
//! pair with no `=` (`?a&b`) has the empty value (as in HTML forms; Envoy drops such pairs,
//! but then `?validate_only` would be silently ignored rather than refused by the field's
//! type); a pair with an empty name (`?=x`) is skipped, as in Envoy. Names and values are fully
//! percent-decoded; a malformed escape or a non-UTF-8 result is an error naming the parameter
//! (the gateway answers 400). Order and repetition are kept: `?x=1&x=2` is two pairs, for
//! repeated fields.

use super::unescape::{percent_decode, UrlUnescapeSpec};

/// Split `:path` into (path, query); the query is what follows the first `?`.
pub fn split_path(path: &str) -> (&str, Option<&str>) {
    match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    }
}

/// Parse a query string with `+` meaning a space in names and values (HTML form rules).
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>, String> {
    parse_query_with(query, true)
}

/// Parse a query string; `plus_as_space` is Envoy's `query_param_unescape_plus` (whose
/// default is `false`: `+` stays `+`).
pub fn parse_query_with(query: &str, plus_as_space: bool) -> Result<Vec<(String, String)>, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, value)| {
            let decode = |text| percent_decode(text, UrlUnescapeSpec::AllCharacters, plus_as_space);
            let error = |e| format!("query parameter {name:?}: {e}");
            Ok((decode(name).map_err(error)?, decode(value).map_err(error)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Result<Vec<(String, String)>, String> {
        Ok(list
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    #[test]
    fn path_and_query_split_at_the_first_question_mark() {
        assert_eq!(split_path("/v1/x?a=1&b=2"), ("/v1/x", Some("a=1&b=2")));
        assert_eq!(split_path("/v1/x?a=?b"), ("/v1/x", Some("a=?b")));
        assert_eq!(split_path("/v1/x?"), ("/v1/x", Some("")));
        assert_eq!(split_path("/v1/x"), ("/v1/x", None));
    }

    #[test]
    fn repeated_parameters_keep_their_order() {
        assert_eq!(
            parse_query("x=1&y=a&x=2"),
            pairs(&[("x", "1"), ("y", "a"), ("x", "2")])
        );
    }

    #[test]
    fn nested_names_are_returned_as_field_paths() {
        assert_eq!(
            parse_query("view.version=2&payment.amount.units=10"),
            pairs(&[("view.version", "2"), ("payment.amount.units", "10")])
        );
    }

    #[test]
    fn plus_is_space_in_form_mode_and_literal_otherwise() {
        assert_eq!(parse_query("q=a+b%2Bc"), pairs(&[("q", "a b+c")]));
        assert_eq!(
            parse_query_with("q=a+b%2Bc", false),
            pairs(&[("q", "a+b+c")])
        );
    }

    #[test]
    fn escapes_are_decoded_in_names_and_values() {
        assert_eq!(
            parse_query("na%6De=caf%C3%A9&s=%26%3D%25"),
            pairs(&[("name", "café"), ("s", "&=%")])
        );
    }

    #[test]
    fn empty_values_and_valueless_names_are_empty_strings() {
        assert_eq!(parse_query("a=&b"), pairs(&[("a", ""), ("b", "")]));
        assert_eq!(parse_query("a&b"), pairs(&[("a", ""), ("b", "")]));
        assert_eq!(parse_query("a==1"), pairs(&[("a", "=1")]));
    }

    #[test]
    fn empty_pairs_and_empty_names_are_skipped() {
        assert_eq!(parse_query(""), pairs(&[]));
        assert_eq!(parse_query("&&a=1&&"), pairs(&[("a", "1")]));
        assert_eq!(parse_query("=x&b=2"), pairs(&[("b", "2")]));
    }

    #[test]
    fn malformed_escape_names_the_parameter() {
        let e = parse_query("ok=1&page_token=ab%zz")
            .err()
            .unwrap_or_default();
        assert_eq!(
            e,
            "query parameter \"page_token\": invalid percent-encoding \"%zz\""
        );
        let e = parse_query("bad%=1").err().unwrap_or_default();
        assert!(e.starts_with("query parameter \"bad%\""), "{e}");
        let e = parse_query("x=%FF").err().unwrap_or_default();
        assert!(e.contains("UTF-8"), "{e}");
    }
}
