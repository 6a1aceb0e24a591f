//! The harness runs a real Envoy: gRPC over HTTP/2 through Envoy to the demo backend, an
//! HTTP/1.1 route to the REST backend, stats from the admin port, start-up failures reported
//! with Envoy's log, and every Envoy stopped on drop.
//!
//! Needs Envoy: `$MESHGATE_ENVOY`, `<repo>/.venv/bin/envoy` or `envoy` on PATH.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use meshgate_kit::harness::{
    free_port, grpc_frame, grpc_unframe, http1_client, http2_client, payments_client,
    start_backend, start_envoy, start_rest_backend,
};
use meshgate_kit::proto::meshgate::demo::v1::{GetPaymentRequest, WatchPaymentsRequest};
use prost::Message;
use tonic::Code;

/// A plain Envoy bootstrap: one listener, gRPC to `grpc` over explicit HTTP/2, and `/rest/`
/// rewritten to `/` on `rest` over HTTP/1.1.
fn passthrough_config(admin: u16, listener: u16, grpc: SocketAddr, rest: SocketAddr) -> String {
    format!(
        r#"
admin:
  address:
    socket_address: {{ address: 127.0.0.1, port_value: {admin} }}
static_resources:
  listeners:
  - name: ingress
    address:
      socket_address: {{ address: 127.0.0.1, port_value: {listener} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          codec_type: AUTO
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{ prefix: "/rest/" }}
                route: {{ cluster: rest, prefix_rewrite: "/", timeout: 5s }}
              - match: {{ prefix: "/" }}
                route: {{ cluster: grpc, timeout: 5s }}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: grpc
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: grpc
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{ address: {grpc_ip}, port_value: {grpc_port} }}
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {{}}
  - name: rest
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: rest
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{ address: {rest_ip}, port_value: {rest_port} }}
"#,
        grpc_ip = grpc.ip(),
        grpc_port = grpc.port(),
        rest_ip = rest.ip(),
        rest_port = rest.port(),
    )
}

#[tokio::test]
async fn grpc_passes_through_envoy_over_http2() {
    let backend = start_backend("through-envoy", "payments,wallets").unwrap();
    let rest = start_rest_backend("rest").unwrap();
    let envoy = start_envoy(&passthrough_config(
        free_port().unwrap(),
        free_port().unwrap(),
        backend.addr,
        rest.addr,
    ))
    .unwrap();
    let mut client = payments_client(envoy.listener_addr()).await.unwrap();

    let ok = client
        .get_payment(GetPaymentRequest {
            id: "pay_001".into(),
            view: None,
        })
        .await
        .unwrap();
    assert_eq!(
        ok.metadata().get("x-demo-backend").unwrap(),
        "through-envoy"
    );
    assert_eq!(ok.into_inner().id, "pay_001");

    let not_found = client
        .get_payment(GetPaymentRequest {
            id: "nope".into(),
            view: None,
        })
        .await
        .unwrap_err();
    assert_eq!(not_found.code(), Code::NotFound);
    assert!(
        !not_found.details().is_empty(),
        "grpc-status-details-bin survives Envoy"
    );

    let mut stream = client
        .watch_payments(WatchPaymentsRequest {
            parent: "merchants/acme".into(),
            max_events: 2,
            fail_with_code: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut events = 0;
    while stream.message().await.unwrap().is_some() {
        events += 1;
    }
    assert_eq!(events, 2);

    let total = envoy
        .wait_for_stat(
            "cluster.grpc.upstream_rq_total",
            |n| n >= 3,
            Duration::from_secs(5),
        )
        .unwrap();
    assert!(total >= 3);
    assert!(envoy
        .stats_prometheus()
        .unwrap()
        .contains("envoy_cluster_upstream_rq_total"));
    assert!(
        envoy.log().contains("starting main dispatch loop"),
        "{}",
        envoy.log()
    );
}

#[tokio::test]
async fn http1_route_reaches_the_rest_backend_with_rewritten_path() {
    let backend = start_backend("unused", "payments").unwrap();
    let rest = start_rest_backend("rest-1").unwrap();
    let envoy = start_envoy(&passthrough_config(
        free_port().unwrap(),
        free_port().unwrap(),
        backend.addr,
        rest.addr,
    ))
    .unwrap();
    let response = http1_client()
        .get(&envoy.url("/rest/items?page=2"), &[("x-k", "v")])
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    let v = response.json().unwrap();
    assert_eq!(v["path"], "/items");
    assert_eq!(v["query"], "page=2");
    assert_eq!(v["headers"]["x-k"], "v");
    assert_eq!(v["backend"], "rest-1");
    assert_eq!(envoy.stat("cluster.rest.upstream_rq_200"), Some(1));
}

#[test]
fn two_envoys_run_side_by_side_and_stop_on_drop() {
    let backend = start_backend("b", "payments").unwrap();
    let rest = start_rest_backend("r").unwrap();
    let first = start_envoy(&passthrough_config(
        free_port().unwrap(),
        free_port().unwrap(),
        backend.addr,
        rest.addr,
    ))
    .unwrap();
    let second = start_envoy(&passthrough_config(
        free_port().unwrap(),
        free_port().unwrap(),
        backend.addr,
        rest.addr,
    ))
    .unwrap();
    assert_ne!(first.guard.pid(), second.guard.pid());
    let admin = first.admin_addr();
    assert_eq!(first.admin_get("/ready").unwrap().0, 200);
    drop(first);
    assert!(
        TcpStream::connect_timeout(&admin, Duration::from_millis(200)).is_err(),
        "envoy stopped"
    );
    assert_eq!(second.admin_get("/ready").unwrap().0, 200);
}

#[test]
fn a_bad_config_fails_fast_with_envoys_log() {
    let admin = free_port().unwrap();
    let yaml = format!(
        "admin:\n  address:\n    socket_address: {{ address: 127.0.0.1, port_value: {admin} }}\nstatic_resources:\n  clusters:\n  - name: broken\n    type: NOT_A_TYPE\n"
    );
    let err = start_envoy(&yaml).unwrap_err();
    assert!(err.0.contains("exited"), "{err}");
    assert!(
        err.0.contains("NOT_A_TYPE"),
        "error carries Envoy's log: {err}"
    );
}

/// Plain Envoy relays the backend's broken gRPC as is (a reset becomes a reset): what the
/// gateway sees on these hooks is exactly what the backend sent.
#[tokio::test]
async fn misbehaviour_reaches_the_client_unchanged_through_plain_envoy() {
    let backend = start_backend("b", "payments").unwrap();
    let rest = start_rest_backend("r").unwrap();
    let envoy = start_envoy(&passthrough_config(
        free_port().unwrap(),
        free_port().unwrap(),
        backend.addr,
        rest.addr,
    ))
    .unwrap();
    let msg = GetPaymentRequest {
        id: "pay_001".into(),
        view: None,
    }
    .encode_to_vec();
    let url = envoy.url("/meshgate.demo.v1.Payments/GetPayment");
    let call = |mode: &'static str| {
        let (url, msg) = (url.clone(), msg.clone());
        async move {
            let headers = [
                ("content-type", "application/grpc"),
                ("te", "trailers"),
                ("x-demo-misbehave", mode),
            ];
            http2_client().post(&url, &headers, grpc_frame(&msg)).await
        }
    };
    // `huge` is a whole frame above meshgate's response limit: Envoy alone passes it through.
    let huge = call("huge").await.unwrap();
    assert_eq!(huge.body.len(), 5 + meshgate_kit::backend::misbehave::HUGE);
    assert!(grpc_unframe(&huge.body).is_some());
    assert_eq!(huge.trailer("grpc-status"), Some("0"));
    let no_trailers = call("no-trailers").await.unwrap();
    assert!(no_trailers.trailers.is_none());
    let reset = call("reset").await.unwrap_err();
    assert!(reset.0.contains("INTERNAL_ERROR"), "{reset}");
}
