//! Operations: which API operation a request calls, from its method and path.
//!
//! `google.api.http` path templates are parsed once at configuration time ([`PathTemplate`])
//! and compiled into a [`Matcher`], a trie per HTTP method; a lookup returns the operation and
//! its path variables, percent-decoded per Envoy's `url_unescape_spec` ([`UrlUnescapeSpec`]).
//! [`split_path`] and [`parse_query`] turn the query string into field-path/value pairs.
//!
//! Typical use, per request:
//! ```
//! use meshgate::operation::{parse_query, split_path, Matcher, UrlUnescapeSpec};
//!
//! let mut matcher = Matcher::new();
//! matcher.insert("POST", "/v1/payments/{payment_id}:cancel", "CancelPayment").unwrap();
//! let (path, query) = split_path("/v1/payments/p%201:cancel?reason=fraud");
//! let found = matcher.lookup("POST", path, UrlUnescapeSpec::default()).unwrap().unwrap();
//! assert_eq!(*found.value, "CancelPayment");
//! assert_eq!(found.bindings, vec![("payment_id".to_string(), "p 1".to_string())]);
//! assert_eq!(parse_query(query.unwrap_or("")).unwrap(), vec![("reason".into(), "fraud".into())]);
//! ```

mod bind;
mod matcher;
mod query;
mod request_path;
mod template;
mod unescape;

#[cfg(test)]
mod matcher_tests;

pub use bind::{BadBinding, Match};
pub use matcher::{Matcher, ANY_METHOD};
pub use query::{parse_query, parse_query_with, split_path};
pub use template::{PathTemplate, Segment, Variable};
pub use unescape::{percent_decode, DecodeError, UrlUnescapeSpec};
