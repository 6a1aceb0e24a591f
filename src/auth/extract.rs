//! Where a provider's token comes from (headers with a prefix, query parameters, cookies), and
//! how it is taken out of the upstream request when it is not forwarded.

use std::borrow::Cow;

use crate::auth::input::ProviderInput;
use crate::config_error::ConfigError;

use super::Request;

/// One configured place a token may be in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// Lower-case header name, and the prefix before the token (`Bearer `; may be empty).
    Header {
        name: String,
        prefix: String,
    },
    Query(String),
    Cookie(String),
}

/// A token found in a request, and the source (index) it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<'a> {
    pub token: Cow<'a, str>,
    pub source: usize,
}

/// The sources of one provider, in the order they are searched: headers, parameters, cookies.
/// Without any, `Authorization: Bearer <token>`.
pub fn compile_sources(p: &ProviderInput) -> Result<Vec<TokenSource>, ConfigError> {
    let mut out = Vec::new();
    for (i, h) in p.from_headers.iter().enumerate() {
        let name = header_name(&h.name).map_err(|e| e.within(&format!("from_headers[{i}]")))?;
        let prefix = h.value_prefix.clone().unwrap_or_default();
        out.push(TokenSource::Header { name, prefix });
    }
    for (i, q) in p.from_params.iter().enumerate() {
        if q.is_empty() {
            return Err(ConfigError::new(
                format!("from_params[{i}]"),
                "must not be empty",
            ));
        }
        out.push(TokenSource::Query(q.clone()));
    }
    for (i, c) in p.from_cookies.iter().enumerate() {
        if c.is_empty() || c.contains(['=', ';', ' ']) {
            return Err(ConfigError::new(
                format!("from_cookies[{i}]"),
                "must be a cookie name",
            ));
        }
        out.push(TokenSource::Cookie(c.clone()));
    }
    if out.is_empty() {
        out.push(TokenSource::Header {
            name: "authorization".into(),
            prefix: "Bearer ".into(),
        });
    }
    Ok(out)
}

/// A header name as Envoy stores it (lower case), checked to be an HTTP token.
pub fn header_name(name: &str) -> Result<String, ConfigError> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if valid {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(ConfigError::new(
            "name",
            format!("{name:?} is not a header name"),
        ))
    }
}

/// The first token in the request from `sources`.
pub fn find_token<'a>(sources: &[TokenSource], req: &Request<'a>) -> Option<Found<'a>> {
    sources.iter().enumerate().find_map(|(source, s)| {
        let token = match s {
            TokenSource::Header { name, prefix } => from_header(req.headers, name, prefix),
            TokenSource::Query(param) => req.query.and_then(|q| from_query(q, param)),
            TokenSource::Cookie(name) => from_cookies(req.headers, name),
        }?;
        Some(Found { token, source })
    })
}

fn from_header<'a>(
    headers: &'a [(String, String)],
    name: &str,
    prefix: &str,
) -> Option<Cow<'a, str>> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .find_map(|(_, v)| {
            let head = v.get(..prefix.len())?;
            // Auth schemes are case-insensitive (RFC 9110 §11.1): `bearer x` is a bearer token.
            if !head.eq_ignore_ascii_case(prefix) {
                return None;
            }
            let token = v.get(prefix.len()..)?.trim();
            (!token.is_empty()).then_some(Cow::Borrowed(token))
        })
}

fn from_query<'a>(query: &'a str, param: &str) -> Option<Cow<'a, str>> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (percent_decode(k) == param && !v.is_empty()).then(|| percent_decode(v))
    })
}

fn cookie_pairs(headers: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|c| {
            let (k, v) = c.split_once('=')?;
            Some((k.trim(), v.trim().trim_matches('"')))
        })
}

fn from_cookies<'a>(headers: &'a [(String, String)], name: &str) -> Option<Cow<'a, str>> {
    cookie_pairs(headers)
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| Cow::Borrowed(v))
}

/// `%XX` decoding (a malformed escape is kept as is). `+` is left alone: a JWT never holds one.
fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    Cow::Owned(crate::status::percent_decode_grpc(s))
}

/// What to change upstream so the token from `source` is not forwarded: headers to remove and
/// headers to set (a rewritten `:path` or `cookie`).
pub fn removal(
    source: &TokenSource,
    req: &Request<'_>,
    remove: &mut Vec<String>,
    set: &mut Vec<(String, String)>,
) {
    match source {
        TokenSource::Header { name, .. } => push_unique(remove, name),
        TokenSource::Query(param) => {
            if let Some(path) = crate::host::find_header(req.headers, ":path") {
                set.push((":path".into(), path_without_param(path, param)));
            }
        }
        TokenSource::Cookie(name) => {
            let rest: Vec<String> = cookie_pairs(req.headers)
                .filter(|(k, _)| k != name)
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            if rest.is_empty() {
                push_unique(remove, "cookie");
            } else {
                set.push(("cookie".into(), rest.join("; ")));
            }
        }
    }
}

fn push_unique(list: &mut Vec<String>, name: &str) {
    if !list.iter().any(|n| n == name) {
        list.push(name.to_string());
    }
}

/// `/a?x=1&access_token=t&y=2` without `access_token` -> `/a?x=1&y=2`.
fn path_without_param(path: &str, param: &str) -> String {
    let Some((base, query)) = path.split_once('?') else {
        return path.to_string();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
            percent_decode(key) != param
        })
        .collect();
    if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// `query` (without `?`) without the parameters named in `params`. Borrows when none is there.
pub fn query_without_params<'a>(query: &'a str, params: &[String]) -> Cow<'a, str> {
    let named = |pair: &&str| {
        let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
        params.iter().any(|p| percent_decode(key) == *p)
    };
    if params.is_empty() || !query.split('&').any(|pair| named(&pair)) {
        return Cow::Borrowed(query);
    }
    let kept: Vec<&str> = query.split('&').filter(|pair| !named(pair)).collect();
    Cow::Owned(kept.join("&"))
}

/// What stands in a logged URL for the value of a token query parameter.
pub const REDACTED: &str = "REDACTED";

/// `path` as logs and access records may show it: the value of every query parameter named in
/// `params` (the providers' `from_params`) replaced by [`REDACTED`], whatever became of the
/// request (a refused, failed or forwarded token is still a secret). Parameters are matched as
/// [`find_token`] matches them (percent-decoded name); everything else is kept byte for byte.
/// Borrows when there is nothing to hide.
pub fn redact_params<'a>(path: &'a str, params: &[String]) -> Cow<'a, str> {
    if params.is_empty() {
        return Cow::Borrowed(path);
    }
    let Some((base, query)) = path.split_once('?') else {
        return Cow::Borrowed(path);
    };
    let mut changed = false;
    let pairs: Vec<Cow<'_, str>> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !v.is_empty() && params.iter().any(|p| percent_decode(k) == *p) => {
                changed = true;
                Cow::Owned(format!("{k}={REDACTED}"))
            }
            _ => Cow::Borrowed(pair),
        })
        .collect();
    if changed {
        Cow::Owned(format!("{base}?{}", pairs.join("&")))
    } else {
        Cow::Borrowed(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::input::HeaderSourceInput;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn default_source_is_authorization_bearer() {
        let sources = compile_sources(&ProviderInput::default()).unwrap();
        let headers = h(&[("authorization", "bearer abc.def.ghi")]);
        let req = Request {
            headers: &headers,
            query: None,
            client_cert: None,
        };
        let found = find_token(&sources, &req).unwrap();
        assert_eq!(found.token, "abc.def.ghi");
        let basic = h(&[("authorization", "Basic dXNlcjpwdw==")]);
        let req = Request {
            headers: &basic,
            query: None,
            client_cert: None,
        };
        assert_eq!(find_token(&sources, &req), None);
    }

    #[test]
    fn tokens_come_from_custom_headers_params_and_cookies_in_order() {
        let input = ProviderInput {
            from_headers: vec![HeaderSourceInput {
                name: "X-Jwt".into(),
                value_prefix: None,
            }],
            from_params: vec!["access_token".into()],
            from_cookies: vec!["session".into()],
            ..Default::default()
        };
        let sources = compile_sources(&input).unwrap();
        let headers = h(&[
            ("cookie", "a=1; session=c.c.c"),
            (":path", "/x?access_token=q.q.q"),
        ]);
        let req = Request {
            headers: &headers,
            query: Some("access_token=q.q.q"),
            client_cert: None,
        };
        let found = find_token(&sources, &req).unwrap();
        assert_eq!((found.token.as_ref(), found.source), ("q.q.q", 1));
        let req = Request {
            headers: &headers,
            query: None,
            client_cert: None,
        };
        let found = find_token(&sources, &req).unwrap();
        assert_eq!((found.token.as_ref(), found.source), ("c.c.c", 2));
        let mut with_header = headers.clone();
        with_header.push(("x-jwt".into(), "h.h.h".into()));
        let req = Request {
            headers: &with_header,
            query: Some("access_token=q.q.q"),
            client_cert: None,
        };
        assert_eq!(find_token(&sources, &req).unwrap().token, "h.h.h");
    }

    #[test]
    fn removal_rewrites_path_and_cookie_and_drops_header() {
        let headers = h(&[
            (":path", "/v1/x?a=1&access_token=t&b=2"),
            ("cookie", "s=t; keep=1"),
        ]);
        let req = Request {
            headers: &headers,
            query: Some("a=1&access_token=t&b=2"),
            client_cert: None,
        };
        let (mut remove, mut set) = (Vec::new(), Vec::new());
        removal(
            &TokenSource::Query("access_token".into()),
            &req,
            &mut remove,
            &mut set,
        );
        removal(
            &TokenSource::Cookie("s".into()),
            &req,
            &mut remove,
            &mut set,
        );
        removal(
            &TokenSource::Header {
                name: "authorization".into(),
                prefix: "Bearer ".into(),
            },
            &req,
            &mut remove,
            &mut set,
        );
        assert_eq!(remove, vec!["authorization".to_string()]);
        assert!(set.contains(&(":path".into(), "/v1/x?a=1&b=2".into())));
        assert!(set.contains(&("cookie".into(), "keep=1".into())));
        assert_eq!(
            path_without_param("/p?access_token=t", "access_token"),
            "/p"
        );
    }

    #[test]
    fn bad_header_and_cookie_names_are_refused() {
        let input = ProviderInput {
            from_headers: vec![HeaderSourceInput {
                name: "bad header".into(),
                value_prefix: None,
            }],
            ..Default::default()
        };
        assert_eq!(
            compile_sources(&input).unwrap_err().field,
            "from_headers[0].name"
        );
        let input = ProviderInput {
            from_cookies: vec!["a=b".into()],
            ..Default::default()
        };
        assert_eq!(
            compile_sources(&input).unwrap_err().field,
            "from_cookies[0]"
        );
    }

    #[test]
    fn token_params_are_redacted_for_logs_and_nothing_else_changes() {
        let params = vec!["access_token".to_string(), "jwt".to_string()];
        assert_eq!(
            redact_params("/v1/x?a=1&access_token=e30.e30.sig&b=2&jwt=t.t.t", &params),
            "/v1/x?a=1&access_token=REDACTED&b=2&jwt=REDACTED"
        );
        // Matched on the decoded name, as tokens are found; every copy is hidden.
        assert_eq!(
            redact_params("/p?access%5Ftoken=s3cr3t&access_token=again", &params),
            "/p?access%5Ftoken=REDACTED&access_token=REDACTED"
        );
        // Nothing to hide: the very same string, not a copy.
        for path in ["/p", "/p?a=1&access_token=&tokens=x", "/p?access_tokenx=1"] {
            assert!(matches!(redact_params(path, &params), Cow::Borrowed(p) if p == path));
        }
        assert!(matches!(
            redact_params("/p?access_token=t", &[]),
            Cow::Borrowed("/p?access_token=t")
        ));
    }

    #[test]
    fn token_params_leave_a_query_and_the_rest_stays() {
        let params = vec!["access_token".to_string()];
        assert_eq!(
            query_without_params("a=1&access_token=t.t.t&b=2&access%5Ftoken=x", &params),
            "a=1&b=2"
        );
        assert_eq!(query_without_params("access_token=t", &params), "");
        assert!(matches!(
            query_without_params("a=1&tokens=2", &params),
            Cow::Borrowed("a=1&tokens=2")
        ));
    }
}
