//! From a matched request path to `(field path, value)` bindings.
//!
//! Decoding follows Envoy's transcoder (and http.proto): a variable that covers exactly one
//! segment (`{id}`, `{id=*}`) is fully percent-decoded, since clients encode everything but
//! `[-_.~0-9a-zA-Z]` in it; a variable that covers several segments or ends in `**` is decoded
//! per the configured [`UrlUnescapeSpec`], and its segments are joined with `/`.

use std::fmt;

use super::template::{PathTemplate, Variable};
use super::unescape::{percent_decode, DecodeError, UrlUnescapeSpec};

/// A successful lookup: the operation's value and its path variables.
#[derive(Debug, PartialEq, Eq)]
pub struct Match<'a, T> {
    pub value: &'a T,
    /// (field path `payment.id`, decoded value), in template order.
    pub bindings: Vec<(String, String)>,
    /// The template that matched (for logs: which binding of the operation was used).
    pub template: &'a PathTemplate,
}

/// A path that matched an operation but whose variable cannot be decoded (bad `%` escape or
/// not UTF-8): the gateway answers 400, and still knows which operation was called.
#[derive(Debug, PartialEq, Eq)]
pub struct BadBinding<'a, T> {
    pub value: &'a T,
    pub field_path: String,
    pub error: DecodeError,
}

impl<T> fmt::Display for BadBinding<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "path variable {:?}: {}", self.field_path, self.error)
    }
}

/// Bind `template`'s variables to the request `parts` it matched.
pub fn bind<'a, T>(
    value: &'a T,
    template: &'a PathTemplate,
    parts: &[&str],
    spec: UrlUnescapeSpec,
) -> Result<Match<'a, T>, BadBinding<'a, T>> {
    let bindings = template
        .variable_ranges()
        .iter()
        .map(|var| {
            let decoded = bind_one(template, var, parts, spec);
            decoded
                .map(|v| (var.field_path.clone(), v))
                .map_err(|error| BadBinding {
                    value,
                    field_path: var.field_path.clone(),
                    error,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Match {
        value,
        bindings,
        template,
    })
}

fn bind_one(
    template: &PathTemplate,
    var: &Variable,
    parts: &[&str],
    spec: UrlUnescapeSpec,
) -> Result<String, DecodeError> {
    // Segments before a `**` consume one request segment each, so template indices are request
    // indices; a variable ending in `**` runs to the end of the request path.
    let ends_in_tail = template.has_tail() && var.end == template.segments().len();
    let end = if ends_in_tail { parts.len() } else { var.end };
    let covered = parts.get(var.start..end).unwrap_or_default();
    let multi_segment = ends_in_tail || var.end - var.start > 1;
    let spec = if multi_segment {
        spec
    } else {
        UrlUnescapeSpec::AllCharacters
    };
    let mut joined = String::new();
    for (index, part) in covered.iter().enumerate() {
        if index > 0 {
            joined.push('/');
        }
        joined.push_str(&percent_decode(part, spec, false)?);
    }
    Ok(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(
        template: &str,
        parts: &[&str],
        spec: UrlUnescapeSpec,
    ) -> Result<Vec<(String, String)>, String> {
        let template = PathTemplate::parse(template)?;
        bind(&(), &template, parts, spec)
            .map(|m| m.bindings)
            .map_err(|e| e.to_string())
    }

    fn pairs(list: &[(&str, &str)]) -> Result<Vec<(String, String)>, String> {
        Ok(list
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    const DEFAULT: UrlUnescapeSpec = UrlUnescapeSpec::AllCharactersExceptReserved;

    #[test]
    fn single_segment_variable_is_fully_decoded_whatever_the_spec() {
        for spec in [
            DEFAULT,
            UrlUnescapeSpec::AllCharactersExceptSlash,
            UrlUnescapeSpec::AllCharacters,
        ] {
            let got = bound("/v1/{id}", &["v1", "a%2Fb%3Ac%20d"], spec);
            assert_eq!(got, pairs(&[("id", "a/b:c d")]), "{spec:?}");
        }
    }

    #[test]
    fn multi_segment_variable_joins_segments_and_follows_the_spec() {
        let parts = ["v1", "shelves", "a%2Fb", "books", "c%3Ad%20e"];
        let template = "/v1/{name=shelves/*/books/*}";
        assert_eq!(
            bound(template, &parts, DEFAULT),
            pairs(&[("name", "shelves/a%2Fb/books/c%3Ad e")])
        );
        assert_eq!(
            bound(template, &parts, UrlUnescapeSpec::AllCharactersExceptSlash),
            pairs(&[("name", "shelves/a%2Fb/books/c:d e")])
        );
        assert_eq!(
            bound(template, &parts, UrlUnescapeSpec::AllCharacters),
            pairs(&[("name", "shelves/a/b/books/c:d e")])
        );
    }

    #[test]
    fn tail_variable_over_one_segment_is_still_multi_segment() {
        let got = bound("/v1/{path=**}", &["v1", "a%2Fb"], DEFAULT);
        assert_eq!(got, pairs(&[("path", "a%2Fb")]));
    }

    #[test]
    fn tail_variable_binds_the_rest_or_nothing() {
        let template = "/v1/{name=files/**}";
        assert_eq!(
            bound(template, &["v1", "files", "a", "b"], DEFAULT),
            pairs(&[("name", "files/a/b")])
        );
        assert_eq!(
            bound(template, &["v1", "files"], DEFAULT),
            pairs(&[("name", "files")])
        );
        assert_eq!(
            bound("/v1/{rest=**}", &["v1"], DEFAULT),
            pairs(&[("rest", "")])
        );
    }

    #[test]
    fn variables_bind_in_template_order() {
        let got = bound("/v1/{a.b}/x/{c}", &["v1", "1", "x", "2"], DEFAULT);
        assert_eq!(got, pairs(&[("a.b", "1"), ("c", "2")]));
    }

    #[test]
    fn bad_escape_names_the_variable() {
        let got = bound("/v1/{payment.id}", &["v1", "p%zz"], DEFAULT);
        assert_eq!(
            got,
            Err("path variable \"payment.id\": invalid percent-encoding \"%zz\"".to_string())
        );
        let got = bound("/v1/{id}", &["v1", "%FF"], DEFAULT);
        assert!(got.is_err_and(|e| e.contains("UTF-8")));
    }
}
