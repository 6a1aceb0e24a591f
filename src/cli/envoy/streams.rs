//! Routes for streaming calls (server, client or bidirectional streaming methods): a stream
//! may last longer than any fixed route timeout (15 s by default), so once meshgate has
//! rewritten such a call to its gRPC path (Envoy then selects the route again) it takes a
//! route of its own with the route timeout off (`0s`) and the connection manager's stream
//! idle timeout (`--stream-idle-timeout`, 300 s by default) as its bound: a stream is cut when
//! nothing moves for that long, never while it flows. Native gRPC streams take it too.

use std::collections::BTreeMap;

use super::listener::header_match;
use super::types::{Route, RouteAction, RouteMatch};
use super::EnvoyOptions;
use crate::config::{compile_json, OpKind};

/// One route per streaming operation whose upstream is one of the bootstrap's clusters,
/// matched on its gRPC path and the routing header meshgate sets for that upstream.
pub(super) fn streaming_routes(o: &EnvoyOptions) -> Vec<Route> {
    let Ok(config) = compile_json(o.filter_config_json.as_bytes()) else {
        return Vec::new();
    };
    let idle = format!("{}s", o.edge.stream_idle_timeout_s);
    config
        .operations
        .iter()
        .filter_map(|op| match &op.kind {
            OpKind::Grpc {
                grpc_path,
                client_streaming,
                server_streaming,
                ..
            } if *client_streaming || *server_streaming => Some((op, grpc_path)),
            _ => None,
        })
        .filter(|(op, _)| o.clusters.iter().any(|c| c.name == op.upstream.name))
        .map(|(op, grpc_path)| Route {
            name: format!("stream-{}", op.name),
            matcher: RouteMatch {
                prefix: String::new(),
                path: Some(grpc_path.clone()),
                headers: header_match(o, op.upstream.header_value.clone()),
            },
            route: RouteAction {
                cluster: op.upstream.name.clone(),
                timeout: "0s".into(),
                idle_timeout: Some(idle.clone()),
            },
            direct_response: None,
            response_headers_to_add: Vec::new(),
            metadata: None,
            typed_per_filter_config: BTreeMap::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::cli::envoy::ClusterSpec;

    #[test]
    fn streaming_operations_get_a_route_without_the_route_timeout_first() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let json = crate::cli::compile_file(&root.join("envoy/gateway.yaml")).unwrap();
        let mut o = EnvoyOptions::new(json, "/m.wasm".into());
        o.clusters.push(ClusterSpec {
            name: "payments".into(),
            address: "127.0.0.1".into(),
            port: 1,
            http2: true,
        });
        let routes = super::super::listener::routes(&o);
        let streams: Vec<&Route> = routes
            .iter()
            .take_while(|r| r.name.starts_with("stream-"))
            .collect();
        let paths: Vec<&str> = streams
            .iter()
            .filter_map(|r| r.matcher.path.as_deref())
            .collect();
        assert_eq!(
            paths,
            [
                "/meshgate.demo.v1.Payments/WatchPayments",
                "/meshgate.demo.v1.Payments/ExportPayments",
                "/meshgate.demo.v1.Payments/RecordPayments",
                "/meshgate.demo.v1.Payments/LookupPayments",
            ]
        );
        for r in &streams {
            assert_eq!(r.route.timeout, "0s");
            assert_eq!(r.route.idle_timeout.as_deref(), Some("300s"));
            assert_eq!(r.route.cluster, "payments");
            assert!(r.matcher.prefix.is_empty());
        }
        // The other routes keep the route timeout.
        assert!(routes[streams.len()..]
            .iter()
            .all(|r| r.route.timeout == "15s"));
    }
}
