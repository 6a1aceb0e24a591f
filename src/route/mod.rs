//! Routing metadata: which policy a route selects, and how REST upstream paths are formed.

pub mod config;

use crate::host::Host;
use crate::operation::split_path;
pub use config::Routing;

/// Namespace of meshgate's keys under a route's `metadata.filter_metadata`.
pub const METADATA_NAMESPACE: &str = "meshgate";

/// The policy a route selects: its metadata (`filter_metadata.meshgate.<key>`) first, then its
/// name (Istio VirtualService routes are named, not annotated).
///
/// Envoy 1.40 returns a string metadata value as its raw UTF-8 bytes (verified end to end in
/// `tests/kit/tests/e2e_route_policies.rs`). Any other value (a number, a bool, a struct) still names a
/// policy, one that cannot exist, so the request is refused rather than run without a policy.
pub fn select_policy(host: &dyn Host, routing: &Routing) -> Option<String> {
    let key = routing.policy_metadata_key.as_str();
    let from_metadata = host
        .property(&[
            "xds",
            "route_metadata",
            "filter_metadata",
            METADATA_NAMESPACE,
            key,
        ])
        .filter(|b| !b.is_empty())
        .map(|b| printable(&b));
    if from_metadata.is_some() {
        return from_metadata;
    }
    if routing.route_policies.is_empty() {
        return None;
    }
    let name = host
        .property(&["xds", "route_name"])
        .and_then(|b| String::from_utf8(b).ok())?;
    routing.route_policies.get(&name).cloned()
}

/// The bytes as text fit for an error message: invalid UTF-8 and control characters become `?`.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| {
            if c.is_control() || c == '\u{fffd}' {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// ESPv2's CONSTANT_ADDRESS: the path is the prefix; path variables become query parameters,
/// followed by the original query.
pub fn constant_address_path(prefix: &str, original: &str, vars: &[(String, String)]) -> String {
    let (_, query) = split_path(original);
    let mut params: Vec<String> = vars
        .iter()
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect();
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        params.push(q.to_string());
    }
    let base = if prefix.is_empty() { "/" } else { prefix };
    if params.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", params.join("&"))
    }
}

/// ESPv2's APPEND_PATH_TO_ADDRESS: the request path (with its query) follows the prefix.
pub fn append_path(prefix: &str, original: &str) -> String {
    format!("{}{original}", prefix.trim_end_matches('/'))
}

/// Percent-encode everything but RFC 3986 unreserved characters.
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_address_moves_variables_to_query() {
        let vars = vec![("id".to_string(), "r 1/2".to_string())];
        assert_eq!(
            constant_address_path("/api/receipt", "/legacy/receipts/x?fmt=pdf", &vars),
            "/api/receipt?id=r%201%2F2&fmt=pdf"
        );
        assert_eq!(constant_address_path("", "/a", &[]), "/");
    }

    #[test]
    fn non_text_metadata_becomes_a_printable_name() {
        assert_eq!(printable(b"strict"), "strict");
        assert_eq!(printable(&[0, 0, 0xf0, 0x41]), "???A");
        assert_eq!(printable(&[1]), "?");
    }

    #[test]
    fn append_path_keeps_query_and_avoids_double_slash() {
        assert_eq!(append_path("/rest/", "/v1/x?a=1"), "/rest/v1/x?a=1");
    }
}
