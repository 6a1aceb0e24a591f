//! Configurable header forwarding between HTTP clients and gRPC backends
//! (`transcoding.request_headers_to_metadata`, `transcoding.response_metadata_to_headers`).
//!
//! Request side: a listed client header is sent to the backend as gRPC metadata. Envoy forwards
//! ordinary headers anyway; a header whose name gRPC reserves (`content-type`, `te`, pseudo
//! headers, `grpc-*`...) would be overwritten by the gRPC request, so it travels as
//! `x-meshgate-http-<name>` instead. Response side: listed metadata (headers or trailers of the
//! gRPC reply) is copied onto the HTTP response as headers; `grpc-*` never is.

/// Prefix for request headers whose own name gRPC reserves.
pub const RESERVED_PREFIX: &str = "x-meshgate-http-";

/// Whether a gRPC request sets or forbids this header itself.
pub fn is_reserved(name: &str) -> bool {
    name.starts_with(':')
        || name.starts_with("grpc-")
        || matches!(
            name,
            "content-type"
                | "content-length"
                | "te"
                | "host"
                | "connection"
                | "transfer-encoding"
                | "keep-alive"
                | "upgrade"
        )
}

/// The metadata to set on the gRPC request for each listed header (`None`: remove, so a client
/// cannot fake a forwarded value it did not send). `headers` are the client's, as received.
pub fn request_metadata(
    listed: &[String],
    headers: &[(String, String)],
) -> Vec<(String, Option<String>)> {
    listed
        .iter()
        .filter_map(|name| {
            let value = headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>();
            let value = (!value.is_empty()).then(|| value.join(","));
            if is_reserved(name) {
                let bare = name.trim_start_matches(':');
                Some((format!("{RESERVED_PREFIX}{bare}"), value))
            } else {
                value.map(|v| (name.clone(), Some(v)))
            }
        })
        .collect()
}

/// Listed metadata found in the gRPC reply's `maps` (headers, then trailers), as HTTP headers.
pub fn response_headers(listed: &[String], maps: &[&[(String, String)]]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for name in listed
        .iter()
        .filter(|n| !n.starts_with("grpc-") && !n.starts_with(':'))
    {
        for map in maps {
            for (k, v) in map.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)) {
                if !out.iter().any(|(ok, ov)| ok == k && ov == v) {
                    out.push((k.to_ascii_lowercase(), v.clone()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reserved_names_are_renamed_and_others_kept() {
        let listed = vec!["content-type".to_string(), "x-tag".into(), "te".into()];
        let got = request_metadata(
            &listed,
            &h(&[("content-type", "application/json"), ("x-tag", "a")]),
        );
        assert_eq!(
            got,
            vec![
                (
                    "x-meshgate-http-content-type".to_string(),
                    Some("application/json".to_string())
                ),
                ("x-tag".to_string(), Some("a".to_string())),
                ("x-meshgate-http-te".to_string(), None),
            ]
        );
    }

    #[test]
    fn repeated_headers_are_joined() {
        let listed = vec!["x-tag".to_string()];
        let got = request_metadata(&listed, &h(&[("x-tag", "a"), ("x-tag", "b")]));
        assert_eq!(got, vec![("x-tag".to_string(), Some("a,b".to_string()))]);
    }

    #[test]
    fn response_metadata_from_headers_and_trailers_without_grpc() {
        let listed = vec!["x-a".to_string(), "x-b".into(), "grpc-status".into()];
        let headers = h(&[("x-a", "1"), ("grpc-status", "0")]);
        let trailers = h(&[("x-b", "2"), ("x-a", "1")]);
        let got = response_headers(&listed, &[&headers, &trailers]);
        assert_eq!(got, h(&[("x-a", "1"), ("x-b", "2")]));
    }
}
