#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use super::cluster::{jwks_cluster, split_authority};
use super::listener::routes;
use super::types::*;
use super::*;

fn options(routes: &[&str]) -> EnvoyOptions {
    let mut o = EnvoyOptions::new("{}".into(), "/m.wasm".into());
    for name in ["payments", "wallets"] {
        o.clusters.push(ClusterSpec {
            name: name.into(),
            address: "127.0.0.1".into(),
            port: 1,
            http2: true,
        });
    }
    o.routes = routes.iter().filter_map(|r| parse_route(r).ok()).collect();
    o
}

fn hcm(b: &Bootstrap) -> &HttpConnectionManager {
    match &b.static_resources.listeners[0].filter_chains[0].filters[0].typed_config {
        Any::HttpConnectionManager(h) => h,
        other => panic!("not a connection manager: {other:?}"),
    }
}

fn address(c: &Cluster) -> &SocketAddress {
    &c.load_assignment.endpoints[0].lb_endpoints[0]
        .endpoint
        .address
        .socket_address
}

fn tls(c: &Cluster) -> &UpstreamTlsContext {
    match c.transport_socket.as_ref().map(|t| &t.typed_config) {
        Some(Any::UpstreamTlsContext(t)) => t,
        other => panic!("no TLS transport socket: {other:?}"),
    }
}

fn header_exact(r: &Route) -> Option<&str> {
    match r.matcher.headers.first().map(|h| &h.string_match) {
        Some(StringMatcher::Exact(v)) => Some(v),
        _ => None,
    }
}

#[test]
fn remote_jwks_get_a_cluster_each_unless_one_is_given() {
    let dir = std::env::temp_dir().join(format!("meshgate-envoy-jwks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let proto = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let provider = |name: &str, uri: &str, cluster: &str| {
        format!("    - {{name: {name}, issuer: {name}, jwks: {{remote: {{uri: \"{uri}\", cluster: {cluster}}}}}}}\n")
    };
    let yaml = format!(
        "descriptors:\n  files: [meshgate/demo/v1/payments.proto]\n  include: [{}]\n\
         upstreams: {{payments: {{}}, wallets: {{}}}}\nservices:\n  meshgate.demo.v1.Payments: {{upstream: payments, auth: none}}\n  meshgate.demo.v1.Wallets: {{upstream: wallets, auth: none}}\n\
         auth:\n  providers:\n{}{}{}{}",
        proto.display(),
        provider("corp", "https://idp.example.com/.well-known/jwks.json", "idp"),
        provider("corp2", "https://idp.example.com/keys", "idp"),
        provider("local", "http://127.0.0.1:9000/jwks.json", "local-idp"),
        provider("v6", "https://[::1]:8443/jwks", "given"),
    );
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, yaml).unwrap();
    let json = compile_file(&path).unwrap();
    let config = crate::config::compile_json(json.as_bytes()).unwrap();
    let clusters = jwks_clusters(&config, &["given".to_string()], "/ca.pem");
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(
        clusters.len(),
        2,
        "one per cluster name, none for a given one"
    );
    let idp = &clusters[0];
    assert_eq!(idp.name, "idp");
    assert_eq!(idp.kind, DiscoveryType::LogicalDns);
    assert_eq!(address(idp).address, "idp.example.com");
    assert_eq!(address(idp).port_value, 443);
    let tls = tls(idp);
    assert_eq!(tls.sni.as_deref(), Some("idp.example.com"));
    let validation = &tls.common_tls_context.validation_context;
    assert_eq!(validation.trusted_ca.filename, "/ca.pem");
    assert_eq!(
        validation.match_typed_subject_alt_names,
        [SubjectAltNameMatcher {
            san_type: SanType::Dns,
            matcher: StringMatcher::Exact("idp.example.com".into()),
        }]
    );

    let local = &clusters[1];
    assert_eq!(local.name, "local-idp");
    assert_eq!(local.kind, DiscoveryType::Static);
    assert_eq!(address(local).port_value, 9000);
    assert!(local.transport_socket.is_none(), "http:// is plain");
}

#[test]
fn an_https_jwks_at_an_ip_is_checked_against_an_ip_san_without_sni() {
    let second = std::time::Duration::from_secs(1);
    let rc = crate::auth::RemoteConfig {
        cluster: "idp".into(),
        tls: true,
        authority: "10.0.0.7:8443".into(),
        path: "/jwks".into(),
        discovery: false,
        timeout: second,
        cache_duration: second,
        initial_wait: second,
        refetch_min_interval: second,
        allow_symmetric_keys: false,
    };
    let c = jwks_cluster(&rc, "/ca.pem");
    assert_eq!(c.kind, DiscoveryType::Static);
    let tls = tls(&c);
    assert!(tls.sni.is_none(), "{tls:?}");
    let san = &tls
        .common_tls_context
        .validation_context
        .match_typed_subject_alt_names[0];
    assert_eq!(san.san_type, SanType::IpAddress);
    assert_eq!(san.matcher, StringMatcher::Exact("10.0.0.7".into()));
    // And in Envoy's JSON: `IP_ADDRESS`, no `sni` key at all.
    let json = serde_json::to_value(&c).unwrap();
    let tls_json = &json["transport_socket"]["typed_config"];
    assert_eq!(
        tls_json["@type"],
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
    );
    assert!(tls_json.get("sni").is_none());
    assert_eq!(
        tls_json["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"][0]
            ["san_type"],
        "IP_ADDRESS"
    );
}

#[test]
fn authorities_split_into_host_and_port() {
    assert_eq!(
        split_authority("idp.example.com", 443),
        ("idp.example.com", 443)
    );
    assert_eq!(split_authority("idp:8443", 443), ("idp", 8443));
    assert_eq!(split_authority("[::1]:8443", 443), ("::1", 8443));
    assert_eq!(split_authority("[::1]", 80), ("::1", 80));
}

#[test]
fn route_flags_parse_and_refuse_mistakes() {
    let r = parse_route("name=a,prefix=/v1/,cluster=wallets,policy=strict").unwrap();
    assert_eq!(r.policy.as_deref(), Some("strict"));
    assert!(!r.disable_filter);
    let d = parse_route("name=d,prefix=/d/,cluster=c,disabled").unwrap();
    assert!(d.disable_filter && d.policy.is_none());
    for bad in [
        "prefix=/v1/,cluster=c",
        "name=a,prefix=v1,cluster=c",
        "name=a,prefix=/v1/",
        "name=a,prefix=/v1/,cluster=c,colour=red",
        "name=a,prefix=/v1/,cluster=c,enabled",
    ] {
        assert!(parse_route(bad).is_err(), "{bad}");
    }
}

#[test]
fn clusters_parse_with_http2_unless_h1() {
    let c = parse_cluster("legacy=127.0.0.1:8081/h1").unwrap();
    assert_eq!((c.name.as_str(), c.port, c.http2), ("legacy", 8081, false));
    let g = Cluster::from(&parse_cluster("payments=127.0.0.1:50051").unwrap());
    assert!(
        g.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS]
            == Any::HttpProtocolOptions(HttpProtocolOptions {
                explicit_http_config: ExplicitHttpConfig {
                    http2_protocol_options: Http2ProtocolOptions {},
                },
            })
    );
    assert!(Cluster::from(&c)
        .typed_extension_protocol_options
        .is_empty());
    assert!(parse_cluster("payments").is_err());
    assert!(parse_cluster("payments=127.0.0.1:http").is_err());
}

#[test]
fn a_policy_route_is_a_group_that_keeps_the_filters_upstream() {
    let o = options(&["name=strict,prefix=/v1/wallets/,cluster=wallets,policy=strict"]);
    let routes = routes(&o);
    // payments + wallets header routes, the fallback, then upstream-* and default.
    let group: Vec<&Route> = routes.iter().filter(|r| r.name == "strict").collect();
    assert_eq!(group.len(), 3);
    for r in &group {
        let policy = r
            .metadata
            .as_ref()
            .map(|m| &m.filter_metadata.meshgate.policy);
        assert_eq!(policy.map(String::as_str), Some("strict"));
        assert_eq!(r.matcher.prefix, "/v1/wallets/");
    }
    assert_eq!(group[0].route.cluster, "payments");
    assert_eq!(header_exact(group[0]), Some("payments"));
    assert_eq!(group[2].route.cluster, "wallets");
    assert!(group[2].matcher.headers.is_empty());
    assert_eq!(routes.len(), 3 + 2 + 1);
}

#[test]
fn routes_match_the_upstreams_header_value() {
    let mut o = options(&["name=s,prefix=/s/,cluster=payments,policy=p"]);
    o.filter_config_json = r#"{"upstreams":{"wallets":{"header_value":"w"}}}"#.into();
    let routes = routes(&o);
    let values: Vec<Option<&str>> = routes.iter().map(header_exact).collect();
    assert_eq!(values[0], Some("payments"));
    assert_eq!(values[1], Some("w"));
    assert_eq!(values[3], Some("payments"));
    assert_eq!(values[4], Some("w"));
    assert_eq!(routes[4].route.cluster, "wallets");
}

/// The statuses a mapper's first filter matches: (op, status) pairs.
fn statuses(m: &ResponseMapper) -> Vec<(ComparisonOp, u16)> {
    let AccessLogFilter::AndFilter(FilterList { filters }) = &m.filter else {
        panic!("not an and_filter: {m:?}");
    };
    let list = match &filters[0] {
        AccessLogFilter::OrFilter(FilterList { filters }) => filters.iter().collect(),
        one => vec![one],
    };
    list.into_iter()
        .map(|f| match f {
            AccessLogFilter::StatusCodeFilter(StatusCodeFilter { comparison }) => {
                (comparison.op, comparison.value.default_value)
            }
            other => panic!("not a status filter: {other:?}"),
        })
        .collect()
}

/// The mapper of an `EQ` status.
fn mapper_for(status: u16) -> ResponseMapper {
    let config = local_reply_config();
    let want = (ComparisonOp::Eq, status);
    let m = config
        .mappers
        .into_iter()
        .filter(|m| matches!(m.filter, AccessLogFilter::AndFilter(_)))
        .find(|m| statuses(m).contains(&want));
    m.unwrap()
}

#[test]
fn envoys_own_replies_become_status_json_with_the_grpc_code_of_their_status() {
    for (status, code) in [
        (503, 14),
        (502, 14),
        (504, 4),
        (408, 4),
        (431, 8),
        (413, 8),
        (400, 3),
        (404, 5),
        (500, 13),
    ] {
        let body = mapper_for(status).body_format_override;
        assert_eq!(body.json_format.code, code, "{status}");
        assert_eq!(body.json_format.message, "%LOCAL_REPLY_BODY%");
        assert_eq!(body.content_type, "application/json");
    }
    // Every other error status: still a Status (UNKNOWN), from the last mapper.
    let mappers = local_reply_config().mappers;
    let last = mappers.last().unwrap();
    assert_eq!(statuses(last), [(ComparisonOp::Ge, 400)]);
    assert_eq!(last.body_format_override.json_format.code, 2);
    // One mapper per code (mappers are tried in order; the first match applies), after the
    // one for a failed VM.
    assert_eq!(mappers.len(), 8);
}

#[test]
fn a_failed_vm_reply_becomes_unavailable_status_json_except_for_native_grpc() {
    let mappers = local_reply_config().mappers;
    let first = &mappers[0];
    let expr = expression(&first.filter);
    assert!(expr.contains("'wasm_fail_stream'"), "{expr}");
    assert!(expr.contains("application/grpc"), "{expr}");
    // A transcoded request's rewritten headers say gRPC; its client does not.
    assert!(
        expr.contains("'x-envoy-original-method' in request.headers"),
        "{expr}"
    );
    assert_eq!(first.body_format_override.json_format.code, 14);
    assert!(!first.body_format_override.json_format.message.is_empty());
}

fn filters(f: &AccessLogFilter) -> &[AccessLogFilter] {
    match f {
        AccessLogFilter::AndFilter(l) | AccessLogFilter::OrFilter(l) => &l.filters,
        other => panic!("not a list: {other:?}"),
    }
}

fn expression(f: &AccessLogFilter) -> &str {
    match f {
        AccessLogFilter::ExtensionFilter(NamedFilter {
            typed_config: Any::ExpressionFilter(e),
            ..
        }) => &e.expression,
        other => panic!("not a CEL filter: {other:?}"),
    }
}

fn flags(f: &AccessLogFilter) -> &[String] {
    match f {
        AccessLogFilter::ResponseFlagFilter(f) => &f.flags,
        other => panic!("not a flag filter: {other:?}"),
    }
}

#[test]
fn only_replies_no_filter_converts_are_mapped() {
    let m = mapper_for(503);
    let scope = filters(&filters(&m.filter)[1]);
    // A transcoded request: every router failure (meshgate adopts the Status of those that
    // reach it; those past it, a reset or timeout after the headers, need this).
    let transcoded = filters(&scope[0]);
    assert_eq!(
        expression(&transcoded[0]),
        "'x-envoy-original-method' in request.headers"
    );
    let failures = filters(&transcoded[1]);
    for flag in ["UH", "UF", "UT", "UR", "UC"] {
        assert!(flags(&failures[0]).iter().any(|f| f == flag), "{flag}");
    }
    assert!(expression(&failures[1]).contains("upstream_reset_after_response_started"));
    // Otherwise: a router or codec failure, not meshgate's reply, not a gRPC client.
    let plain = filters(&scope[1]);
    let either = filters(&plain[0]);
    for flag in ["UH", "UF", "UT", "UR", "UC"] {
        assert!(flags(&either[0]).iter().any(|f| f == flag), "{flag}");
    }
    assert_eq!(
        expression(&either[1]),
        "response.code_details == 'overload'",
        "the overload manager's 503"
    );
    assert!(expression(&either[2]).contains("'http1.'"));
    let rest = expression(&plain[1]);
    assert!(rest.contains("response.code_details != 'meshgate'"));
    assert!(rest.contains("!('x-envoy-original-method' in request.headers)"));
    assert!(rest.contains("startsWith('application/grpc')"));
}

#[test]
fn the_listener_buffers_the_largest_body_meshgate_accepts() {
    let gateway = concat!(env!("CARGO_MANIFEST_DIR"), "/envoy/gateway.yaml");
    let json = compile_file(std::path::Path::new(gateway)).unwrap();
    let mut owned = crate::config::compile_json(json.as_bytes()).unwrap();
    let config = &mut owned;
    config.limits.max_request_bytes = 4 << 20;
    config.limits.max_response_bytes = 16 << 20;
    assert_eq!(buffer_limit_for(config), (16 << 20) + (64 << 10));
    config.limits.max_response_bytes = 1 << 20;
    assert_eq!(buffer_limit_for(config), 8 << 20);
    config.limits.max_response_bytes = usize::MAX;
    assert_eq!(buffer_limit_for(config), u32::MAX);
    let mut o = options(&[]);
    let b = bootstrap(&o);
    let listener = &b.static_resources.listeners[0];
    assert!(listener.per_connection_buffer_limit_bytes.is_none());
    let json = serde_json::to_value(&b).unwrap();
    assert!(json["static_resources"]["listeners"][0]
        .get("per_connection_buffer_limit_bytes")
        .is_none());
    o.buffer_limit_bytes = Some(buffer_limit_for(config));
    let b = bootstrap(&o);
    let listener = &b.static_resources.listeners[0];
    assert_eq!(listener.per_connection_buffer_limit_bytes, Some(u32::MAX));
}

#[test]
fn the_bootstrap_carries_the_local_reply_config() {
    let b = bootstrap(&options(&[]));
    assert_eq!(hcm(&b).local_reply_config, Some(local_reply_config()));
}

#[test]
fn a_disabled_route_is_one_route_with_the_filter_off() {
    let o = options(&["name=d,prefix=/d/,cluster=wallets,disabled"]);
    let routes = routes(&o);
    assert_eq!(routes.len(), 1 + 2 + 1);
    let first = &routes[0];
    assert_eq!(first.name, "d");
    assert_eq!(
        first.typed_per_filter_config.get(WASM_FILTER_NAME),
        Some(&Any::FilterConfig(FilterConfig { disabled: true }))
    );
}

#[test]
fn envoy_request_ids_are_left_on_unless_switched_off() {
    let mut o = options(&[]);
    assert_eq!(hcm(&bootstrap(&o)).generate_request_id, None);
    o.generate_request_id = false;
    assert_eq!(hcm(&bootstrap(&o)).generate_request_id, Some(false));
}

#[test]
fn typed_anys_carry_their_type_url() {
    let b = serde_json::to_value(bootstrap(&options(&[]))).unwrap();
    let hcm =
        &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    assert_eq!(
        hcm["@type"],
        "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    );
    let wasm = &hcm["http_filters"][0]["typed_config"];
    assert_eq!(
        wasm["@type"],
        "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
    );
    assert_eq!(
        wasm["config"]["configuration"],
        serde_json::json!({"@type": "type.googleapis.com/google.protobuf.StringValue", "value": "{}"})
    );
    assert_eq!(
        hcm["http_filters"][1]["typed_config"],
        serde_json::json!({"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"})
    );
}
