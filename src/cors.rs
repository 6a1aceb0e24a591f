//! Browser clients: the `cors` section of the gateway file (validated here, enforced by Envoy's
//! `envoy.filters.http.cors`, which `meshgate envoy` and `meshgate istio` render from it), the
//! CORS preflight as meshgate recognises it, and the gRPC-Web marker.
//!
//! Envoy's CORS and gRPC-Web filters sit before meshgate in the chain (docs/browsers.md says
//! why): a preflight is answered by the CORS filter and never reaches meshgate's request
//! callbacks, so meshgate only records and counts it (from its log callback); every reply to an
//! allowed origin, meshgate's own errors included, passes the CORS filter's encoder; and
//! meshgate sees a gRPC-Web call as the native gRPC call the gRPC-Web filter made of it.

use serde::{Deserialize, Serialize};

use crate::config_error::ConfigError;

/// The request header Envoy's `header_mutation` filter (rendered before `grpc_web`) sets to the
/// client's own `content-type`, so that meshgate, which sees the request after `grpc_web`
/// turned it into native gRPC, can tell a gRPC-Web call from a gRPC one. Overwritten on every
/// request (a client cannot forge it) and removed before the upstream.
pub const CLIENT_CONTENT_TYPE_HEADER: &str = "x-meshgate-client-content-type";

/// The request counter's `outcome` label (and the record's `outcome`) of a CORS preflight.
pub const PREFLIGHT_OUTCOME: &str = "preflight";

/// Request headers a browser app needs by default: JSON and gRPC-Web bodies, bearer tokens, and
/// the headers gRPC-Web clients add.
pub const DEFAULT_ALLOW_HEADERS: [&str; 6] = [
    "authorization",
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "x-request-id",
];

pub const DEFAULT_ALLOW_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Response headers always exposed to browser code: gRPC-Web's status (a trailers-only reply
/// carries it in headers), the bearer challenge of a 401, and the request id.
pub const ALWAYS_EXPOSED: [&str; 5] = [
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "www-authenticate",
    "x-request-id",
];

/// `cors:` in the gateway file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CorsInput {
    /// Exact origins (`https://app.example.com`, `http://127.0.0.1:8088`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_origins: Vec<String>,
    /// Origin patterns: `*` stands for one or more letters, digits or `-` (one DNS label, or a
    /// port): `https://*.example.com`, `http://localhost:*`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_origin_patterns: Vec<String>,
    /// Default: GET, POST, PUT, PATCH, DELETE.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_methods: Vec<String>,
    /// Request headers a page may send. Default: [`DEFAULT_ALLOW_HEADERS`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_headers: Vec<String>,
    /// Response headers a page may read, beyond [`ALWAYS_EXPOSED`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    /// How long a browser may cache a preflight's answer. Default: unset (the browser's own,
    /// 5 s in Chromium).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u32>,
    /// Pages may send cookies and read replies to credentialed requests.
    pub allow_credentials: bool,
}

/// `policies.<name>.cors`: a route's policy can only tighten the section (fewer origins,
/// methods or headers, no credentials) or switch CORS off for its routes.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyCorsInput {
    /// `false`: no CORS on the policy's routes (cross-origin pages cannot call them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Each one allowed by the section (an exact origin, or one its patterns match).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_origins: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_methods: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_headers: Option<Vec<String>>,
    /// Only `false` (a policy cannot grant what the section does not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
}

/// An allowed origin: exact, or a pattern as an RE2 (and ECMAScript) regex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Exact(String),
    Regex(String),
}

/// A validated CORS policy, as Envoy's `CorsPolicy` will carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    pub origins: Vec<Origin>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<u32>,
    pub allow_credentials: bool,
}

/// What a route's policy does to CORS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyCors {
    /// No CORS on its routes.
    Off,
    /// This (tighter) policy on its routes.
    On(Cors),
}

impl Cors {
    /// The `cors` section, checked (`field` prefixes error paths).
    pub fn compile(input: &CorsInput) -> Result<Cors, ConfigError> {
        let mut origins = Vec::new();
        for (i, o) in input.allow_origins.iter().enumerate() {
            check_origin(o, false)
                .map_err(|m| ConfigError::new(format!("cors.allow_origins[{i}]"), m))?;
            origins.push(Origin::Exact(o.clone()));
        }
        for (i, p) in input.allow_origin_patterns.iter().enumerate() {
            check_origin(p, true)
                .map_err(|m| ConfigError::new(format!("cors.allow_origin_patterns[{i}]"), m))?;
            origins.push(Origin::Regex(pattern_regex(p)));
        }
        let allow_methods = methods("cors.allow_methods", &input.allow_methods)?;
        let allow_headers = header_names("cors.allow_headers", &input.allow_headers)?;
        let mut expose_headers: Vec<String> =
            ALWAYS_EXPOSED.iter().map(|s| s.to_string()).collect();
        for h in header_names("cors.expose_headers", &input.expose_headers)? {
            if !expose_headers.contains(&h) {
                expose_headers.push(h);
            }
        }
        Ok(Cors {
            origins,
            allow_methods: or_default(allow_methods, &DEFAULT_ALLOW_METHODS),
            allow_headers: or_default(allow_headers, &DEFAULT_ALLOW_HEADERS),
            expose_headers,
            max_age_seconds: input.max_age_seconds,
            allow_credentials: input.allow_credentials,
        })
    }

    /// A policy's override of this policy: narrower, never wider. `field` is
    /// `policies.<name>.cors`.
    pub fn tighten(&self, p: &PolicyCorsInput, field: &str) -> Result<PolicyCors, ConfigError> {
        if p.enabled == Some(false) {
            return Ok(PolicyCors::Off);
        }
        let mut out = self.clone();
        if let Some(list) = &p.allow_origins {
            out.origins.clear();
            for (i, o) in list.iter().enumerate() {
                let at = format!("{field}.allow_origins[{i}]");
                check_origin(o, false).map_err(|m| ConfigError::new(&at, m))?;
                if !self.allows_origin(o) {
                    return Err(ConfigError::new(
                        at,
                        format!("`{o}` is not allowed by the `cors` section (a policy can only narrow it)"),
                    ));
                }
                out.origins.push(Origin::Exact(o.clone()));
            }
        }
        if let Some(list) = &p.allow_methods {
            let at = format!("{field}.allow_methods");
            out.allow_methods = subset(&at, methods(&at, list)?, &self.allow_methods)?;
        }
        if let Some(list) = &p.allow_headers {
            let at = format!("{field}.allow_headers");
            out.allow_headers = subset(&at, header_names(&at, list)?, &self.allow_headers)?;
        }
        match p.allow_credentials {
            Some(true) if !self.allow_credentials => {
                return Err(ConfigError::new(
                    format!("{field}.allow_credentials"),
                    "the `cors` section does not allow credentials (a policy can only narrow it)",
                ))
            }
            Some(c) => out.allow_credentials = c,
            None => {}
        }
        Ok(PolicyCors::On(out))
    }

    /// Whether `origin` (exact text) is allowed: an exact entry, or a pattern that matches it.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| match o {
            Origin::Exact(e) => e == origin,
            Origin::Regex(_) => false,
        }) || self.patterns_match(origin)
    }

    /// The headers Envoy's CORS filter adds to an actual (not preflight) request's answer from
    /// an allowed `origin` (its `encodeHeaders`): none for an origin this policy does not allow.
    pub fn response_headers(&self, origin: &str) -> Vec<(String, String)> {
        if !self.allows_origin(origin) {
            return Vec::new();
        }
        let mut out = vec![(
            "access-control-allow-origin".to_string(),
            origin.to_string(),
        )];
        if self.allow_credentials {
            out.push((
                "access-control-allow-credentials".to_string(),
                "true".to_string(),
            ));
        }
        if !self.expose_headers.is_empty() {
            out.push((
                "access-control-expose-headers".to_string(),
                self.expose_headers.join(","),
            ));
        }
        out
    }

    fn patterns_match(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| match o {
            Origin::Regex(re) => simple_regex_match(re, origin),
            Origin::Exact(_) => false,
        })
    }
}

fn or_default(list: Vec<String>, default: &[&str]) -> Vec<String> {
    if list.is_empty() {
        default.iter().map(|s| s.to_string()).collect()
    } else {
        list
    }
}

fn subset(field: &str, list: Vec<String>, of: &[String]) -> Result<Vec<String>, ConfigError> {
    match list.iter().find(|x| !of.contains(x)) {
        Some(x) => Err(ConfigError::new(
            field,
            format!("`{x}` is not allowed by the `cors` section (a policy can only narrow it)"),
        )),
        None => Ok(list),
    }
}

fn methods(field: &str, list: &[String]) -> Result<Vec<String>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, m)| {
            if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) {
                Ok(m.clone())
            } else {
                Err(ConfigError::new(
                    format!("{field}[{i}]"),
                    format!("`{m}` is not an HTTP method in capitals (GET, POST...)"),
                ))
            }
        })
        .collect()
}

/// Header names, lowercased (HTTP/2 and Envoy compare them so).
fn header_names(field: &str, list: &[String]) -> Result<Vec<String>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, h)| {
            let ok = !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if ok {
                Ok(h.to_ascii_lowercase())
            } else {
                Err(ConfigError::new(
                    format!("{field}[{i}]"),
                    format!("`{h}` is not a header name"),
                ))
            }
        })
        .collect()
}

/// An origin is `scheme://host[:port]`, nothing more (what browsers send in `Origin`).
fn check_origin(o: &str, pattern: bool) -> Result<(), String> {
    let rest = o
        .strip_prefix("http://")
        .or_else(|| o.strip_prefix("https://"))
        .ok_or_else(|| format!("`{o}`: an origin starts with http:// or https://"))?;
    if rest.is_empty() {
        return Err(format!("`{o}`: no host"));
    }
    let allowed = |b: u8| {
        b.is_ascii_alphanumeric()
            || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
            || (pattern && b == b'*')
    };
    if let Some(bad) = rest.bytes().find(|b| !allowed(*b)) {
        return Err(format!(
            "`{o}`: `{}` cannot be in an origin (scheme://host[:port], no path{})",
            char::from(bad),
            if pattern {
                ""
            } else {
                "; patterns go in allow_origin_patterns"
            }
        ));
    }
    if pattern && !rest.contains('*') {
        return Err(format!("`{o}` has no `*`: list it in allow_origins"));
    }
    if o.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("`{o}`: browsers send origins in lowercase"));
    }
    Ok(())
}

/// The regex a pattern stands for: `*` is `[a-z0-9-]+`, everything else literal.
pub fn pattern_regex(p: &str) -> String {
    let mut out = String::from("^");
    for c in p.chars() {
        match c {
            '*' => out.push_str("[a-z0-9-]+"),
            '.' | '[' | ']' | '\\' | '^' | '$' | '|' | '?' | '+' | '(' | ')' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('$');
    out
}

/// Matches `text` against a regex made by [`pattern_regex`] (literal characters, escaped
/// ones, and `[a-z0-9-]+`), without a regex engine in the module.
fn simple_regex_match(re: &str, text: &str) -> bool {
    let body = re.trim_start_matches('^').trim_end_matches('$');
    let mut parts: Vec<Part> = Vec::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    parts.push(Part::Lit(n));
                }
            }
            '[' => {
                // `[a-z0-9-]+`
                for n in chars.by_ref() {
                    if n == ']' {
                        break;
                    }
                }
                chars.next_if_eq(&'+');
                parts.push(Part::Label);
            }
            c => parts.push(Part::Lit(c)),
        }
    }
    matches_parts(&parts, text.as_bytes())
}

#[derive(Debug, Clone, Copy)]
enum Part {
    Lit(char),
    Label,
}

fn matches_parts(parts: &[Part], text: &[u8]) -> bool {
    let Some((first, rest)) = parts.split_first() else {
        return text.is_empty();
    };
    match first {
        Part::Lit(c) => {
            let mut buf = [0u8; 4];
            let lit = c.encode_utf8(&mut buf).as_bytes();
            text.starts_with(lit) && matches_parts(rest, text.get(lit.len()..).unwrap_or(&[]))
        }
        Part::Label => {
            let label = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
            let run = text.iter().take_while(|b| label(b)).count();
            (1..=run).any(|n| matches_parts(rest, text.get(n..).unwrap_or(&[])))
        }
    }
}

/// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
pub fn is_preflight(method: &str, headers: &[(String, String)]) -> bool {
    method.eq_ignore_ascii_case("OPTIONS")
        && crate::host::find_header(headers, "origin").is_some()
        && crate::host::find_header(headers, "access-control-request-method").is_some()
}

/// Whether a request meshgate sees as native gRPC came from a gRPC-Web client: Envoy's
/// `grpc_web` filter rewrote its content type; the client's own is in
/// [`CLIENT_CONTENT_TYPE_HEADER`] (where `meshgate envoy` rendered it), and gRPC-Web
/// libraries send `x-grpc-web: 1` (the only sign left where nothing else records it).
pub fn is_grpc_web(headers: &[(String, String)]) -> bool {
    let find = |n| crate::host::find_header(headers, n);
    match find(CLIENT_CONTENT_TYPE_HEADER) {
        Some(ct) => ct.to_ascii_lowercase().starts_with("application/grpc-web"),
        None => find("x-grpc-web").is_some(),
    }
}

#[cfg(test)]
mod tests;
