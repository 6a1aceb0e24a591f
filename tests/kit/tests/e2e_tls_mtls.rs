//! Issue 19, mTLS end to end: client certificates required or optional on the TLS listener
//! (verified by a real Envoy), the verified identity as a principal an operation can require
//! (`{client_cert: {principals: [...]}}`), forwarded to the backend in
//! `x-meshgate-client-principal` (a client's own copy removed) and written to the record.
//! Clients: `curl` with and without a certificate; certificates from `tests/tools/tls-certs.sh`.
//!
//! Needs `build/meshgate.wasm`, Envoy, `openssl` and `curl`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use meshgate::cli::envoy::tls::{Certificate, ClientCerts, Tls};
use meshgate_kit::harness::{free_port, Gateway, GatewayBuilder};
use meshgate_kit::tls::{curl, CurlResponse, Pki};

const ACME: &str = "spiffe://partners/acme";

/// GetPayment and CreatePayment need the certificate of `spiffe://partners/acme`; ListPayments
/// any certificate; the other operations nothing. A side call's reply (GetPayment) brings the
/// backend's report of the header back.
const RULES: &str = r#"
operations:
  meshgate.demo.v1.Payments.GetPayment:
    auth: {client_cert: {principals: ["spiffe://partners/acme"]}}
  meshgate.demo.v1.Payments.CreatePayment:
    auth: {client_cert: {principals: ["spiffe://partners/acme"]}}
  meshgate.demo.v1.Payments.ListPayments:
    auth: {client_cert: {}}
transcoding:
  response_metadata_to_headers: [x-demo-saw-client-principal]
"#;

struct Partners {
    pki: Pki,
    acme: (String, String),
    /// A DNS SAN only: its identity is the DNS name.
    globex: (String, String),
    /// A client certificate from a CA the gateway does not trust.
    stranger: (String, String),
}

fn partners(tag: &str) -> Partners {
    let pki = Pki::new(tag).unwrap();
    let acme = pki.client("acme", &format!("URI:{ACME}")).unwrap();
    let globex = pki.client("globex", "DNS:globex.example").unwrap();
    let other = Pki::new(&format!("{tag}-other")).unwrap();
    let stranger = other.client("stranger", &format!("URI:{ACME}")).unwrap();
    Partners {
        pki,
        acme,
        globex,
        stranger,
    }
}

fn start(p: &Partners, mode: ClientCerts) -> (Gateway, u16) {
    let port = free_port().unwrap();
    let tls = Tls {
        address: "127.0.0.1".into(),
        port,
        certificate: Certificate::Files {
            cert: p.pki.path("server.pem"),
            key: p.pki.path("server.key"),
        },
        min_version: "TLSv1_2".into(),
        redirect_plaintext: false,
        client_certs: mode,
        client_ca: Some(p.pki.ca()),
    };
    let gw = GatewayBuilder::demo_with(RULES)
        .envoy_options(move |o| o.tls = Some(tls))
        .start()
        .unwrap();
    (gw, port)
}

/// curl's arguments: trust the gateway's CA, present `cert` if any, then `extra`.
fn args(p: &Partners, cert: Option<&(String, String)>, extra: &[&str]) -> Vec<String> {
    let mut a = vec!["--cacert".to_string(), p.pki.ca()];
    if let Some((c, k)) = cert {
        a.extend(["--cert".into(), c.clone(), "--key".into(), k.clone()]);
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn call(args: &[String], url: &str) -> CurlResponse {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    curl(&refs, url).unwrap()
}

fn url(port: u16, path: &str) -> String {
    format!("https://localhost:{port}{path}")
}

const CREATE: &str =
    r#"{"merchant":"merchants/acme","amount":{"currency_code":"EUR","amount_minor":"1"}}"#;

#[test]
fn required_client_certificate_is_refused_when_absent_and_its_identity_reaches_the_backend() {
    let p = partners("mtls-required");
    let (gw, port) = start(&p, ClientCerts::Required);
    // No certificate, or one from an untrusted CA: no TLS session at all.
    for cert in [None, Some(&p.stranger)] {
        let r = call(&args(&p, cert, &[]), &url(port, "/v1/wallets/w_001"));
        assert_eq!(r.status, 0, "{r:?}");
        assert_ne!(r.exit_code, 0, "{r:?}");
    }
    // acme's certificate: its URI SAN reaches the backend, on the router path (POST) and on a
    // side call (GET); the client's own copy of the header is replaced.
    let post = args(
        &p,
        Some(&p.acme),
        &[
            "-H",
            "content-type: application/json",
            "-d",
            CREATE,
            "-H",
            "x-meshgate-client-principal: spiffe://partners/evil",
            "-H",
            "x-request-id: mtls-post",
        ],
    );
    let r = call(&post, &url(port, "/v1/payments"));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-demo-saw-client-principal"), Some(ACME), "{r:?}");
    let get = args(&p, Some(&p.acme), &["-H", "x-request-id: mtls-get"]);
    let r = call(&get, &url(port, "/v1/payments/pay_001"));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json().unwrap()["id"], "pay_001");
    assert_eq!(r.header("x-demo-saw-client-principal"), Some(ACME), "{r:?}");
    // globex (a DNS SAN) is a verified client, but not the principal GetPayment names.
    let get = args(&p, Some(&p.globex), &["-H", "x-request-id: mtls-globex"]);
    let r = call(&get, &url(port, "/v1/payments/pay_001"));
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json().unwrap()["code"], 7, "{r:?}");
    // ...and meets `client_cert: {}`.
    let r = call(
        &args(&p, Some(&p.globex), &[]),
        &url(port, "/v1/merchants/acme/payments"),
    );
    assert_eq!(r.status, 200, "{r:?}");
    // The records carry the identity.
    for (id, principal) in [
        ("mtls-post", ACME),
        ("mtls-get", ACME),
        ("mtls-globex", "globex.example"),
    ] {
        let rec = gw
            .record_for(id)
            .unwrap_or_else(|| panic!("no record for {id}"));
        assert_eq!(rec["clientPrincipal"], principal, "{rec}");
    }
}

#[test]
fn optional_client_certificates_let_operations_decide() {
    let p = partners("mtls-optional");
    let (gw, port) = start(&p, ClientCerts::Optional);
    // No certificate: the connection is accepted; an operation that needs none is served,
    // one that needs a certificate is refused with a google.rpc.Status.
    let r = call(&args(&p, None, &[]), &url(port, "/v1/wallets/w_001"));
    assert_eq!(r.status, 200, "{r:?}");
    let r = call(&args(&p, None, &[]), &url(port, "/v1/payments/pay_001"));
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.json().unwrap()["code"], 16, "{r:?}");
    // A certificate from an untrusted CA is still refused at the handshake.
    let r = call(
        &args(&p, Some(&p.stranger), &[]),
        &url(port, "/v1/wallets/w_001"),
    );
    assert_eq!(r.status, 0, "{r:?}");
    // With acme's certificate: served, identity forwarded.
    let r = call(
        &args(&p, Some(&p.acme), &[]),
        &url(port, "/v1/payments/pay_001"),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-demo-saw-client-principal"), Some(ACME), "{r:?}");
    // Plaintext: no certificate, and a client's claim to be acme is stripped, not believed.
    let r = curl(
        &["-H", "x-meshgate-client-principal: spiffe://partners/acme"],
        &gw.url("/v1/payments/pay_001"),
    )
    .unwrap();
    assert_eq!(r.status, 401, "{r:?}");
    let r = curl(
        &[
            "-H",
            "x-meshgate-client-principal: spiffe://partners/acme",
            "-H",
            "content-type: application/json",
            "-d",
            r#"{"reason":"x"}"#,
        ],
        &gw.url("/v1/payments/pay_001:cancel"),
    )
    .unwrap();
    assert_ne!(r.header("x-demo-backend"), None, "{r:?}");
    assert_eq!(r.header("x-demo-saw-client-principal"), None, "{r:?}");
}
