//! `google.api.http` path templates, parsed once at configuration time.
//!
//! Grammar (google/api/http.proto):
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! FieldPath = IDENT { "." IDENT } ;
//! Verb     = ":" LITERAL ;
//! ```
//! Choices the grammar leaves open, made strict so a typo fails at configuration time:
//! `/` alone is the root (no segments); empty segments (`//`, a trailing `/`) are refused; a
//! LITERAL may not contain `/ : { } * = ? #`, spaces or control characters (so a `:` inside a
//! path is refused rather than guessed at); `**` may only be the last segment; a field path may
//! appear once per template.

use std::fmt;

/// One segment of a template, as the matcher sees it (variables are ranges over these).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// Matches exactly this text (compared with the raw request segment, not decoded).
    Literal(String),
    /// `*`: exactly one non-empty segment.
    Wildcard,
    /// `**`: zero or more segments, always last.
    Tail,
}

/// A variable: the field path it sets and the template segments it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variable {
    /// Dotted field path in the request message (`payment.id`).
    pub field_path: String,
    /// Index of the first segment covered.
    pub start: usize,
    /// One past the last segment covered (so `{x}` covers `start..start + 1`).
    pub end: usize,
}

/// Parsed google.api.http path template. `{x}` == `{x=*}`; `**` only as the last segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTemplate {
    segments: Vec<Segment>,
    variables: Vec<Variable>,
    verb: Option<String>,
}

impl PathTemplate {
    /// Parse a template; the error quotes the template and says where and why.
    pub fn parse(template: &str) -> Result<PathTemplate, String> {
        Parser::new(template).template().map_err(|(pos, why)| {
            format!("invalid path template {template:?}: {why} at byte {pos}")
        })
    }

    /// Field paths of the variables, in template order.
    pub fn variables(&self) -> Vec<String> {
        self.variables
            .iter()
            .map(|v| v.field_path.clone())
            .collect()
    }

    /// The variables with the segment ranges they cover.
    pub fn variable_ranges(&self) -> &[Variable] {
        &self.variables
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The custom verb (`cancel` for `/v1/payments/{id}:cancel`).
    pub fn verb(&self) -> Option<&str> {
        self.verb.as_deref()
    }

    /// Whether the template ends in `**` (it then matches any number of trailing segments).
    pub fn has_tail(&self) -> bool {
        self.segments.last() == Some(&Segment::Tail)
    }
}

/// Canonical form: `{x}` written `{x=*}`, so two spellings of one template print the same.
impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            write!(f, "/")?;
        }
        for (index, segment) in self.segments.iter().enumerate() {
            write!(f, "/")?;
            if let Some(var) = self.variables.iter().find(|v| v.start == index) {
                write!(f, "{{{}=", var.field_path)?;
            }
            match segment {
                Segment::Literal(text) => write!(f, "{text}")?,
                Segment::Wildcard => write!(f, "*")?,
                Segment::Tail => write!(f, "**")?,
            }
            if self.variables.iter().any(|v| v.end == index + 1) {
                write!(f, "}}")?;
            }
        }
        match &self.verb {
            Some(verb) => write!(f, ":{verb}"),
            None => Ok(()),
        }
    }
}

/// Position in the template and the reason; turned into a message by `PathTemplate::parse`.
type ParseError = (usize, String);

/// A recursive-descent parser over the template's bytes (the grammar is ASCII; other bytes can
/// only appear inside literals and are copied whole).
struct Parser<'a> {
    text: &'a str,
    pos: usize,
    segments: Vec<Segment>,
    variables: Vec<Variable>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            text,
            pos: 0,
            segments: Vec::new(),
            variables: Vec::new(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    fn fail<T>(&self, why: impl Into<String>) -> Result<T, ParseError> {
        Err((self.pos, why.into()))
    }

    fn template(mut self) -> Result<PathTemplate, ParseError> {
        if !self.eat(b'/') {
            return self.fail("a template must start with '/'");
        }
        if self.peek().is_none() {
            return Ok(PathTemplate {
                segments: Vec::new(),
                variables: Vec::new(),
                verb: None,
            });
        }
        self.segments_until_end(false)?;
        let verb = if self.eat(b':') {
            Some(self.literal()?)
        } else {
            None
        };
        if self.peek().is_some() {
            return self.fail("unexpected character");
        }
        self.check_tail_is_last()?;
        Ok(PathTemplate {
            segments: self.segments,
            variables: self.variables,
            verb,
        })
    }

    /// `Segment { "/" Segment }`; inside a variable, variables are not allowed.
    fn segments_until_end(&mut self, in_variable: bool) -> Result<(), ParseError> {
        loop {
            self.segment(in_variable)?;
            if !self.eat(b'/') {
                return Ok(());
            }
        }
    }

    fn segment(&mut self, in_variable: bool) -> Result<(), ParseError> {
        match self.peek() {
            Some(b'{') if in_variable => self.fail("a variable must not contain another variable"),
            Some(b'{') => self.variable(),
            Some(b'*') => {
                self.pos += 1;
                let segment = if self.eat(b'*') {
                    Segment::Tail
                } else {
                    Segment::Wildcard
                };
                self.segments.push(segment);
                Ok(())
            }
            _ => {
                let literal = self.literal()?;
                self.segments.push(Segment::Literal(literal));
                Ok(())
            }
        }
    }

    fn variable(&mut self) -> Result<(), ParseError> {
        self.pos += 1; // '{'
        let field_path = self.field_path()?;
        if self.variables.iter().any(|v| v.field_path == field_path) {
            return self.fail(format!("variable {field_path:?} appears twice"));
        }
        let start = self.segments.len();
        if self.eat(b'=') {
            self.segments_until_end(true)?;
        } else {
            self.segments.push(Segment::Wildcard);
        }
        if !self.eat(b'}') {
            return self.fail("expected '}'");
        }
        let end = self.segments.len();
        self.variables.push(Variable {
            field_path,
            start,
            end,
        });
        Ok(())
    }

    /// `IDENT { "." IDENT }`, IDENT = `[A-Za-z_][A-Za-z0-9_]*`.
    fn field_path(&mut self) -> Result<String, ParseError> {
        let begin = self.pos;
        loop {
            match self.peek() {
                Some(b) if b.is_ascii_alphabetic() || b == b'_' => self.pos += 1,
                _ => return self.fail("expected a field name"),
            }
            while matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric() || b == b'_') {
                self.pos += 1;
            }
            if !self.eat(b'.') {
                break;
            }
        }
        Ok(self
            .text
            .get(begin..self.pos)
            .unwrap_or_default()
            .to_string())
    }

    fn literal(&mut self) -> Result<String, ParseError> {
        let rest = self.text.get(self.pos..).unwrap_or_default();
        let len = rest
            .find(|c: char| !is_literal_char(c))
            .unwrap_or(rest.len());
        if len == 0 {
            return match self.peek() {
                None | Some(b'/') | Some(b':') | Some(b'}') => self.fail("empty segment"),
                Some(_) => self.fail("unexpected character"),
            };
        }
        let literal = rest.get(..len).unwrap_or_default().to_string();
        self.pos += len;
        Ok(literal)
    }

    fn check_tail_is_last(&self) -> Result<(), ParseError> {
        let tail_index = self.segments.iter().position(|s| *s == Segment::Tail);
        match tail_index {
            Some(index) if index + 1 != self.segments.len() => Err((
                self.text.find("**").unwrap_or(0),
                "'**' must be the last segment".into(),
            )),
            _ => Ok(()),
        }
    }
}

fn is_literal_char(c: char) -> bool {
    !(c.is_control() || c.is_whitespace() || "/:{}*=?#".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Segment {
        Segment::Literal(s.to_string())
    }

    fn parse(template: &str) -> PathTemplate {
        match PathTemplate::parse(template) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn literal_segments_parse() {
        let t = parse("/v1/payments");
        assert_eq!(t.segments(), &[lit("v1"), lit("payments")]);
        assert!(t.variables().is_empty());
        assert_eq!(t.verb(), None);
    }

    #[test]
    fn bare_variable_is_a_single_wildcard() {
        let short = parse("/v1/payments/{id}");
        let long = parse("/v1/payments/{id=*}");
        assert_eq!(short, long);
        assert_eq!(short.segments().get(2), Some(&Segment::Wildcard));
        assert_eq!(
            short.variable_ranges(),
            &[Variable {
                field_path: "id".into(),
                start: 2,
                end: 3
            }]
        );
    }

    #[test]
    fn multi_segment_variable_covers_its_segments() {
        let t = parse("/v1/{name=shelves/*/books/*}");
        assert_eq!(
            t.segments(),
            &[
                lit("v1"),
                lit("shelves"),
                Segment::Wildcard,
                lit("books"),
                Segment::Wildcard
            ]
        );
        assert_eq!(
            t.variable_ranges(),
            &[Variable {
                field_path: "name".into(),
                start: 1,
                end: 5
            }]
        );
    }

    #[test]
    fn nested_field_paths_and_several_variables() {
        let t = parse("/v1/wallets/{wallet.owner_id}/payments/{payment.id}");
        assert_eq!(t.variables(), vec!["wallet.owner_id", "payment.id"]);
    }

    #[test]
    fn double_star_tail_and_verb() {
        let t = parse("/v1/{name=files/**}:download");
        assert_eq!(t.segments(), &[lit("v1"), lit("files"), Segment::Tail]);
        assert!(t.has_tail());
        assert_eq!(t.verb(), Some("download"));
        let bare = parse("/static/**");
        assert!(bare.has_tail());
        assert!(bare.variables().is_empty());
    }

    #[test]
    fn custom_verb_after_variable_or_literal() {
        assert_eq!(parse("/v1/payments/{id}:cancel").verb(), Some("cancel"));
        assert_eq!(parse("/v1/payments:batchGet").verb(), Some("batchGet"));
    }

    #[test]
    fn root_template_has_no_segments() {
        let t = parse("/");
        assert!(t.segments().is_empty());
        assert_eq!(t.to_string(), "/");
    }

    #[test]
    fn display_is_canonical() {
        assert_eq!(parse("/v1/{id}:cancel").to_string(), "/v1/{id=*}:cancel");
        let t = "/v1/{name=shelves/*/books/*}/x/**";
        assert_eq!(parse(t).to_string(), t);
    }

    #[test]
    fn malformed_templates_are_refused_with_a_reason() {
        let cases = [
            ("", "must start with '/'"),
            ("v1/x", "must start with '/'"),
            ("/v1//x", "empty segment"),
            ("/v1/", "empty segment"),
            ("/v1/{id", "expected '}'"),
            ("/v1/{}", "expected a field name"),
            ("/v1/{1d}", "expected a field name"),
            ("/v1/{a.}", "expected a field name"),
            ("/v1/{a={b}}", "must not contain another variable"),
            ("/v1/**/x", "'**' must be the last segment"),
            ("/v1/{a=**}/x", "'**' must be the last segment"),
            ("/v1/{id}/{id}", "appears twice"),
            ("/v1/x:", "empty segment"),
            ("/v1/x:a:b", "unexpected character"),
            ("/v1/a:b/c", "unexpected character"),
            ("/v1/a b", "unexpected character"),
            ("/v1/x?y=1", "unexpected character"),
            ("/v1/***", "unexpected character"),
        ];
        for (template, reason) in cases {
            match PathTemplate::parse(template) {
                Ok(t) => panic!("{template:?} parsed as {t:?}"),
                Err(e) => assert!(e.contains(reason), "{template:?}: {e}"),
            }
        }
    }

    #[test]
    fn error_quotes_the_template() {
        let e = PathTemplate::parse("/v1/{id").err().unwrap_or_default();
        assert!(e.starts_with("invalid path template \"/v1/{id\""), "{e}");
    }

    #[test]
    fn non_ascii_literal_is_kept_whole() {
        let t = parse("/v1/café:ünïcode");
        assert_eq!(t.segments(), &[lit("v1"), lit("café")]);
        assert_eq!(t.verb(), Some("ünïcode"));
    }
}
