//! Routing metadata: which policy a route selects, the routing headers of a matched request
//! and how REST upstream paths are formed. Returns the header changes it wants; the filter
//! applies them.

pub mod config;

use std::time::SystemTime;

use crate::host::{HeaderOp, Host};
use crate::operation::split_path;
pub use config::{PathTranslation, Routing, Upstream};

/// Namespace of meshgate's keys under a route's `metadata.filter_metadata`.
pub const METADATA_NAMESPACE: &str = "meshgate";

/// The policy a route selects: its metadata (`filter_metadata.meshgate.<key>`) first, then its
/// name (Istio VirtualService routes are named, not annotated).
///
/// Envoy 1.40 returns a string metadata value as its raw UTF-8 bytes (verified end to end in
/// `tests/kit/tests/e2e_route_policies.rs`). Any other value (a number, a bool, a struct) still names a
/// policy, one that cannot exist, so the request is refused rather than run without a policy.
pub fn select_policy(host: &dyn Host, routing: &Routing) -> Option<String> {
    let metadata = host.property(&policy_metadata_path(routing));
    policy_from(metadata, host, routing)
}

/// Where a route names its policy: `xds.route_metadata.filter_metadata.meshgate.<key>`.
pub fn policy_metadata_path(routing: &Routing) -> [&str; 5] {
    [
        "xds",
        "route_metadata",
        "filter_metadata",
        METADATA_NAMESPACE,
        routing.policy_metadata_key.as_str(),
    ]
}

/// [`select_policy`] with the route metadata's value already read (the property at
/// [`policy_metadata_path`], batched with others).
pub fn policy_from(
    metadata: Option<Vec<u8>>,
    host: &dyn Host,
    routing: &Routing,
) -> Option<String> {
    let from_metadata = metadata.filter(|b| !b.is_empty()).map(|b| printable(&b));
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

/// The routing headers of a request matched to operation `op_name` on `upstream` (Envoy re-selects the route after a
/// filter changes a request header; no explicit route cache clearing): the upstream, the
/// operation, the verified subject, and `new_request_id` when the client sent none.
pub fn routing_headers(
    r: &Routing,
    upstream: &Upstream,
    op_name: &str,
    subject: Option<&str>,
    new_request_id: Option<&str>,
) -> Vec<HeaderOp> {
    let mut ops = vec![
        HeaderOp::set(&r.upstream_header, &upstream.header_value),
        HeaderOp::set(&r.operation_header, op_name),
    ];
    if let Some(sub) = subject {
        ops.push(HeaderOp::set(&r.subject_header, sub));
    }
    if let Some(id) = new_request_id {
        ops.push(HeaderOp::set("x-request-id", id));
    }
    ops
}

/// A request id for a request without one: time and context make it unique per VM; the VM's
/// address space is private, so no randomness is needed for uniqueness within a proxy.
pub fn new_request_id(now: SystemTime, context_id: u32) -> String {
    let nanos = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:032x}-{context_id:08x}")
}

/// The path REST upstream `up` gets (`path`: the client's, `vars`: the path variables the
/// matcher bound), the original kept in `x-envoy-original-path`. Nothing without a
/// translation.
pub fn rest_rewrite(up: &Upstream, path: &str, vars: &[(String, String)]) -> Vec<HeaderOp> {
    let new_path = match up.path_translation {
        Some(PathTranslation::AppendPathToAddress) => append_path(&up.path_prefix, path),
        Some(PathTranslation::ConstantAddress) => {
            constant_address_path(&up.path_prefix, path, vars)
        }
        None => return Vec::new(),
    };
    vec![
        HeaderOp::set("x-envoy-original-path", path),
        HeaderOp::Set(":path".into(), new_path),
    ]
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
