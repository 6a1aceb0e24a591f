//! Issue 19, TLS termination end to end: the TLS listener `meshgate envoy` renders, in a real
//! Envoy, in front of the demo backends, reached by `curl` (OpenSSL): HTTP/2 and HTTP/1.1 by
//! ALPN, TLS 1.2+ with forward-secret AEAD suites only, the certificate from files or from an
//! SDS file (rotated by moving a new file over it), and the plaintext listener's redirect.
//!
//! Needs `build/meshgate.wasm`, Envoy, `openssl` and `curl`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use meshgate::cli::envoy::tls::{sds_file, Certificate, ClientCerts, Tls};
use meshgate_kit::harness::{free_port, Gateway, GatewayBuilder};
use meshgate_kit::tls::{curl, Pki};

fn tls_options(port: u16, certificate: Certificate) -> Tls {
    Tls {
        address: "127.0.0.1".into(),
        port,
        certificate,
        min_version: "TLSv1_2".into(),
        redirect_plaintext: false,
        client_certs: ClientCerts::Off,
        client_ca: None,
    }
}

fn files(pki: &Pki) -> Certificate {
    Certificate::Files {
        cert: pki.path("server.pem"),
        key: pki.path("server.key"),
    }
}

fn start(tls: Tls) -> Gateway {
    GatewayBuilder::demo()
        .envoy_options(move |o| o.tls = Some(tls))
        .start()
        .unwrap()
}

fn https(port: u16, path: &str) -> String {
    format!("https://localhost:{port}{path}")
}

#[test]
fn tls_listener_speaks_http2_and_http11_by_alpn() {
    let pki = Pki::new("alpn").unwrap();
    let port = free_port().unwrap();
    let _gw = start(tls_options(port, files(&pki)));
    let ca = pki.ca();
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let r = curl(
            &["--cacert", &ca, flag],
            &https(port, "/v1/payments/pay_001"),
        )
        .unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.http_version, version, "{r:?}");
        assert_eq!(r.json().unwrap()["id"], "pay_001", "{r:?}");
    }
    // A transcoded POST (Envoy's router path) over TLS too.
    let body =
        r#"{"merchant":"merchants/acme","amount":{"currency_code":"JPY","amount_minor":"1200"}}"#;
    let r = curl(
        &[
            "--cacert",
            &ca,
            "--http2",
            "-H",
            "content-type: application/json",
            "-d",
            body,
        ],
        &https(port, "/v1/payments"),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json().unwrap()["merchant"], "merchants/acme", "{r:?}");
    // The certificate is checked: another CA does not trust it.
    let other = Pki::new("alpn-other").unwrap();
    let r = curl(
        &["--cacert", &other.ca()],
        &https(port, "/v1/payments/pay_001"),
    )
    .unwrap();
    assert_eq!((r.status, r.exit_code), (0, 60), "{r:?}");
}

#[test]
fn old_protocol_versions_and_weak_suites_are_refused() {
    let pki = Pki::new("versions").unwrap();
    let port = free_port().unwrap();
    let _gw = start(tls_options(port, files(&pki)));
    let ca = pki.ca();
    let url = https(port, "/v1/payments/pay_001");
    // TLS 1.1 (OpenSSL's security level 0 lets curl offer it): no handshake.
    let r = curl(
        &[
            "--cacert",
            &ca,
            "--tlsv1.1",
            "--tls-max",
            "1.1",
            "--ciphers",
            "DEFAULT@SECLEVEL=0",
        ],
        &url,
    )
    .unwrap();
    assert_eq!((r.status, r.exit_code), (0, 35), "{r:?}");
    // TLS 1.2 with a CBC/SHA-1 suite: no handshake. (Envoy 1.40's own defaults refuse these
    // two as well, checked by hand: the rendered minimum and suites keep that explicit.)
    let weak = [
        "--cacert",
        &ca,
        "--tls-max",
        "1.2",
        "--ciphers",
        "ECDHE-ECDSA-AES128-SHA",
    ];
    let r = curl(&weak, &url).unwrap();
    assert_eq!((r.status, r.exit_code), (0, 35), "{r:?}");
    // TLS 1.2 with an ECDHE + AEAD suite, and TLS 1.3: served.
    let good = [
        "--cacert",
        &ca,
        "--tls-max",
        "1.2",
        "--ciphers",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
    ];
    assert_eq!(curl(&good, &url).unwrap().status, 200);
    let r = curl(&["--cacert", &ca, "--tlsv1.3"], &url).unwrap();
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn plaintext_listener_can_redirect_to_https() {
    let pki = Pki::new("redirect").unwrap();
    let port = free_port().unwrap();
    let mut tls = tls_options(port, files(&pki));
    tls.redirect_plaintext = true;
    let gw = start(tls);
    let r = curl(&[], &gw.url("/v1/payments/pay_001?view=FULL")).unwrap();
    assert_eq!(r.status, 301, "{r:?}");
    let location = format!("https://127.0.0.1:{port}/v1/payments/pay_001?view=FULL");
    assert_eq!(r.header("location"), Some(location.as_str()), "{r:?}");
    // Followed, it is served (the certificate names 127.0.0.1 too).
    let r = curl(
        &["-L", "--cacert", &pki.ca()],
        &gw.url("/v1/payments/pay_001"),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json().unwrap()["id"], "pay_001");
}

#[test]
fn certificate_from_an_sds_file_rotates_when_the_file_is_replaced() {
    let first = Pki::new("sds-a").unwrap();
    let second = Pki::new("sds-b").unwrap();
    let sds = first.dir.join("sds.yaml");
    let write = |pki: &Pki, to: &std::path::Path| {
        let file = sds_file(
            "gateway-cert",
            &pki.path("server.pem"),
            &pki.path("server.key"),
        );
        std::fs::write(to, serde_yaml_ng::to_string(&file).unwrap()).unwrap();
    };
    write(&first, &sds);
    let port = free_port().unwrap();
    let certificate = Certificate::Sds {
        path: sds.display().to_string(),
        secret: "gateway-cert".into(),
    };
    let _gw = start(tls_options(port, certificate));
    let url = https(port, "/v1/payments/pay_001");
    let r = curl(&["--cacert", &first.ca()], &url).unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_ne!(curl(&["--cacert", &second.ca()], &url).unwrap().status, 200);
    // Rotation: a new file moved over the watched one; new connections get the new certificate.
    let next = first.dir.join("sds.next.yaml");
    write(&second, &next);
    std::fs::rename(&next, &sds).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut r = curl(&["--cacert", &second.ca()], &url).unwrap();
    while r.status != 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        r = curl(&["--cacert", &second.ca()], &url).unwrap();
    }
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        curl(&["--cacert", &first.ca()], &url).unwrap().exit_code,
        60
    );
}
