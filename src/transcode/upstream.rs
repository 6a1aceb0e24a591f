//! The upstream request a transcoded HTTP request becomes: the header changes that turn the
//! client's request into the gRPC call through Envoy's router, or the whole header list of a
//! side call. The filter applies (or sends) them.

use super::metadata::request_metadata;
use crate::host::HeaderOp;

/// The client's request as the upstream request is built from it.
pub struct Original<'a> {
    /// `pkg.Service/Method` path of the gRPC call.
    pub grpc_path: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub authority: &'a str,
    /// The client's headers as received (for `transcoding.request_headers_to_metadata`).
    pub headers: &'a [(String, String)],
    /// `transcoding.request_headers_to_metadata`.
    pub metadata: &'a [String],
}

/// The changes that make the client's request headers the gRPC call's.
pub fn grpc_request_headers(o: &Original<'_>) -> Vec<HeaderOp> {
    let mut ops = vec![
        HeaderOp::set("x-envoy-original-path", o.path),
        HeaderOp::set("x-envoy-original-method", o.method),
        HeaderOp::set(":path", o.grpc_path),
        HeaderOp::set(":method", "POST"),
        HeaderOp::set("content-type", "application/grpc"),
        HeaderOp::set("te", "trailers"),
        HeaderOp::Remove("content-length".into()),
    ];
    for (name, value) in request_metadata(o.metadata, o.headers) {
        ops.push(match value {
            Some(v) => HeaderOp::Set(name, v),
            None => HeaderOp::Remove(name),
        });
    }
    ops
}

/// A side call's headers: the gRPC call's own, then the client's (as the router would forward
/// them) from `current`, the request map as it is now (it also holds the headers the gateway
/// set), minus what a gRPC request must not carry; the listed metadata last.
pub fn side_call_headers(
    o: &Original<'_>,
    current: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = vec![
        (":method".into(), "POST".into()),
        (":path".into(), o.grpc_path.to_string()),
        (":authority".into(), o.authority.to_string()),
        ("content-type".into(), "application/grpc".into()),
        ("te".into(), "trailers".into()),
        ("x-envoy-original-path".into(), o.path.to_string()),
        ("x-envoy-original-method".into(), o.method.to_string()),
    ];
    let metadata = request_metadata(o.metadata, o.headers);
    for (k, v) in current {
        let listed = metadata.iter().any(|(m, _)| *m == k);
        if forwardable(&k) && !listed && !headers.iter().any(|(h, _)| *h == k) {
            headers.push((k, v));
        }
    }
    headers.extend(metadata.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    headers
}

fn forwardable(name: &str) -> bool {
    !name.starts_with(':')
        && !matches!(
            name,
            "content-type"
                | "content-length"
                | "te"
                | "connection"
                | "transfer-encoding"
                | "keep-alive"
                | "upgrade"
                | "host"
                | "accept-encoding"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn original<'a>(headers: &'a [(String, String)], metadata: &'a [String]) -> Original<'a> {
        Original {
            grpc_path: "/p.S/M",
            method: "GET",
            path: "/v1/x?y=1",
            authority: "gw",
            headers,
            metadata,
        }
    }

    #[test]
    fn the_router_request_is_rewritten_with_the_listed_metadata() {
        let headers = pairs(&[("x-tenant", "t1")]);
        let listed = vec!["x-tenant".to_string(), "x-absent".to_string()];
        let ops = grpc_request_headers(&original(&headers, &listed));
        assert!(ops.contains(&HeaderOp::set(":path", "/p.S/M")));
        assert!(ops.contains(&HeaderOp::set("x-envoy-original-path", "/v1/x?y=1")));
        assert!(ops.contains(&HeaderOp::Remove("content-length".into())));
        assert!(ops.contains(&HeaderOp::set("x-tenant", "t1")), "{ops:?}");
    }

    #[test]
    fn a_side_call_carries_the_clients_headers_but_no_hop_or_pseudo_headers() {
        let current = pairs(&[
            (":path", "/v1/x?y=1"),
            ("content-type", "application/json"),
            ("connection", "keep-alive"),
            ("x-client", "acme"),
            ("x-meshgate-operation", "p.S.M"),
        ]);
        let got = side_call_headers(&original(&[], &[]), current);
        let find = |n: &str| got.iter().filter(|(k, _)| k == n).collect::<Vec<_>>();
        assert_eq!(
            find(":path"),
            [&(":path".to_string(), "/p.S/M".to_string())]
        );
        assert_eq!(find("content-type").len(), 1);
        assert!(find("connection").is_empty());
        assert_eq!(find("x-client").len(), 1);
        assert_eq!(find("x-meshgate-operation").len(), 1);
    }
}
