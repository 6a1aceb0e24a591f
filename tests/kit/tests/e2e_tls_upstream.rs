//! Issue 19, TLS to upstreams end to end: the payments upstream is reached over TLS through a
//! TLS-terminating Envoy in front of the demo backend (a real TLS server: BoringSSL, ALPN h2)
//! that serves only the SNI `payments.internal` and requires a client certificate. The
//! gateway's `--upstream-tls payments,ca=...,sni=payments.internal,cert=...,key=...` gets
//! through, on Envoy's router (a transcoded POST) and on meshgate's own side call (a transcoded
//! GET); a wrong CA, a wrong SNI or no client certificate does not (503, a google.rpc.Status).
//!
//! Needs `build/meshgate.wasm`, Envoy, `openssl` and `curl`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use meshgate::cli::envoy::tls_upstream::UpstreamTlsSpec;
use meshgate::cli::envoy::ClusterSpec;
use meshgate_kit::harness::config_file;
use meshgate_kit::harness::{
    free_port, start_backend, start_envoy, Backend, Envoy, Gateway, GatewayBuilder,
};
use meshgate_kit::tls::{curl, Pki};

const GATEWAY_ID: &str = "spiffe://gateway/meshgate";

/// The TLS server in front of the payments backend: SNI `payments.internal` only, client
/// certificates of the CA required; it reports the client's URI SAN in `x-tls-peer`.
struct TlsFront {
    pki: Pki,
    gateway_cert: (String, String),
    envoy: Envoy,
    _backend: Backend,
}

fn tls_front(tag: &str) -> TlsFront {
    let pki = Pki::new(tag).unwrap();
    let (cert, key) = pki.server("payments", "DNS:payments.internal").unwrap();
    let gateway_cert = pki.client("gateway", &format!("URI:{GATEWAY_ID}")).unwrap();
    let backend = start_backend(&format!("{tag}-payments"), "payments").unwrap();
    let (admin, port) = (free_port().unwrap(), free_port().unwrap());
    let ca = pki.ca();
    let upstream = backend.addr.port();
    let yaml = format!(
        r#"
admin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}}}
static_resources:
  listeners:
  - name: front
    address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}}
    filter_chains:
    - filter_chain_match: {{server_names: [payments.internal]}}
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true
          common_tls_context:
            alpn_protocols: [h2]
            tls_certificates: [{{certificate_chain: {{filename: "{cert}"}}, private_key: {{filename: "{key}"}}}}]
            validation_context: {{trusted_ca: {{filename: "{ca}"}}}}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: front
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: /}}
                route: {{cluster: backend, timeout: 10s}}
                response_headers_to_add:
                - header: {{key: x-tls-peer, value: "%DOWNSTREAM_PEER_URI_SAN%"}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  clusters:
  - name: backend
    type: STATIC
    connect_timeout: 2s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{http2_protocol_options: {{}}}}
    load_assignment:
      cluster_name: backend
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {upstream}}}}}}}}}]}}]
"#
    );
    let envoy = start_envoy(&yaml).unwrap();
    TlsFront {
        pki,
        gateway_cert,
        envoy,
        _backend: backend,
    }
}

/// The demo gateway with only wallets started by the builder; payments is the TLS front,
/// reached with `spec`. A side call's reply brings `x-tls-peer` back.
fn gateway(tag: &str, front: &TlsFront, spec: UpstreamTlsSpec) -> Gateway {
    let extra = "transcoding:\n  response_metadata_to_headers: [x-tls-peer]\n";
    let port = front.envoy.listener_port;
    GatewayBuilder::new(config_file::demo_with(tag, extra).unwrap())
        .grpc_upstream("wallets", "wallets")
        .envoy_options(move |o| {
            o.clusters.push(ClusterSpec {
                name: "payments".into(),
                address: "127.0.0.1".into(),
                port,
                http2: true,
            });
            o.upstream_tls.push(spec);
        })
        .start()
        .unwrap()
}

fn spec(front: &TlsFront) -> UpstreamTlsSpec {
    UpstreamTlsSpec {
        cluster: "payments".into(),
        ca: front.pki.ca(),
        sni: Some("payments.internal".into()),
        san: None,
        client_cert: Some(front.gateway_cert.clone()),
    }
}

const CREATE: &str =
    r#"{"merchant":"merchants/acme","amount":{"currency_code":"EUR","amount_minor":"1"}}"#;

#[test]
fn upstream_over_tls_with_sni_and_a_client_certificate() {
    let front = tls_front("up-tls");
    let gw = gateway("up-tls", &front, spec(&front));
    // Router path: a transcoded POST.
    let r = curl(
        &["-H", "content-type: application/json", "-d", CREATE],
        &gw.url("/v1/payments"),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json().unwrap()["merchant"], "merchants/acme", "{r:?}");
    assert_eq!(r.header("x-tls-peer"), Some(GATEWAY_ID), "{r:?}");
    // meshgate's own side call: a transcoded GET.
    let r = curl(&[], &gw.url("/v1/payments/pay_001")).unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json().unwrap()["id"], "pay_001", "{r:?}");
    assert_eq!(r.header("x-tls-peer"), Some(GATEWAY_ID), "{r:?}");
}

#[test]
fn wrong_ca_wrong_sni_or_no_client_certificate_do_not_reach_the_upstream() {
    let front = tls_front("up-tls-bad");
    let other = Pki::new("up-tls-other").unwrap();
    let mut wrong_ca = spec(&front);
    wrong_ca.ca = other.ca();
    let mut wrong_sni = spec(&front);
    wrong_sni.sni = Some("wallets.internal".into());
    wrong_sni.san = Some("payments.internal".into());
    let mut no_cert = spec(&front);
    no_cert.client_cert = None;
    let mut wrong_name = spec(&front);
    wrong_name.san = Some("ledger.internal".into());
    for (i, s) in [wrong_ca, wrong_sni, no_cert, wrong_name]
        .into_iter()
        .enumerate()
    {
        let gw = gateway(&format!("up-tls-bad-{i}"), &front, s.clone());
        let r = curl(&[], &gw.url("/v1/payments/pay_001")).unwrap();
        assert_eq!(r.status, 503, "{s:?}: {r:?}");
        assert_eq!(r.json().unwrap()["code"], 14, "{s:?}: {r:?}");
        // The plaintext wallets upstream is unaffected.
        assert_eq!(curl(&[], &gw.url("/v1/wallets/w_001")).unwrap().status, 200);
    }
}
