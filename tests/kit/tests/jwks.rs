//! The in-process JWKS server: every mode, rotation and request counts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use meshgate_kit::harness::http1_client;
use meshgate_kit::jwks::{JwksMode, JwksServer};

const KEYS_A: &str = r#"{"keys":[{"kty":"RSA","kid":"a","n":"AQAB","e":"AQAB"}]}"#;
const KEYS_B: &str = r#"{"keys":[{"kty":"RSA","kid":"b","n":"AQAB","e":"AQAB"}]}"#;

#[tokio::test]
async fn serves_keys_and_rotates_and_counts() {
    let server = JwksServer::start(KEYS_A).unwrap();
    let client = http1_client();
    let first = client.get(&server.jwks_url(), &[]).await.unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(first.json().unwrap()["keys"][0]["kid"], "a");
    server.set_jwks(KEYS_B);
    let second = client.get(&server.jwks_url(), &[]).await.unwrap();
    assert_eq!(second.json().unwrap()["keys"][0]["kid"], "b");
    assert_eq!(server.jwks_requests(), 2);
    assert_eq!(server.discovery_requests(), 0);
}

#[tokio::test]
async fn discovery_names_issuer_and_jwks_uri() {
    let server = JwksServer::start(KEYS_A).unwrap();
    let url = format!("{}/.well-known/openid-configuration", server.base_url());
    let doc = http1_client().get(&url, &[]).await.unwrap().json().unwrap();
    assert_eq!(doc["issuer"], server.base_url());
    assert_eq!(doc["jwks_uri"], server.jwks_url());
    server.set_issuer("https://issuer.example");
    let doc = http1_client().get(&url, &[]).await.unwrap().json().unwrap();
    assert_eq!(doc["issuer"], "https://issuer.example");
    assert_eq!(doc["jwks_uri"], server.jwks_url());
    assert_eq!(server.discovery_requests(), 2);
}

#[tokio::test]
async fn error_and_garbage_modes() {
    let server = JwksServer::start(KEYS_A).unwrap();
    let client = http1_client();
    server.set_mode(JwksMode::Error500);
    assert_eq!(
        client.get(&server.jwks_url(), &[]).await.unwrap().status,
        500
    );
    server.set_mode(JwksMode::Garbage);
    let garbage = client.get(&server.jwks_url(), &[]).await.unwrap();
    assert_eq!(garbage.status, 200);
    assert!(garbage.json().is_err());
    server.set_mode(JwksMode::Serve);
    assert!(client
        .get(&server.jwks_url(), &[])
        .await
        .unwrap()
        .json()
        .is_ok());
    assert_eq!(server.jwks_requests(), 3);
}

#[tokio::test]
async fn hang_mode_never_answers_and_the_server_still_stops() {
    let server = JwksServer::start(KEYS_A).unwrap();
    server.set_mode(JwksMode::Hang);
    let client = http1_client();
    let url = server.jwks_url();
    let fetch = client.get(&url, &[]);
    let outcome = tokio::time::timeout(Duration::from_millis(500), fetch).await;
    assert!(outcome.is_err(), "a hanging JWKS must time out");
    assert_eq!(server.jwks_requests(), 1);
    drop(server);
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let server = JwksServer::start(KEYS_A).unwrap();
    let r = http1_client()
        .get(&format!("{}/keys", server.base_url()), &[])
        .await
        .unwrap();
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn jwks_server_binary_serves_a_file() {
    use meshgate_kit::harness::{free_port, kit_bin, process::temp_dir, ProcessGuard};
    let dir = temp_dir("jwks-bin").unwrap();
    let file = dir.join("jwks.json");
    std::fs::write(&file, KEYS_B).unwrap();
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let mut command = std::process::Command::new(kit_bin("jwks-server").unwrap());
    command.args(["--listen", &addr, "--jwks"]).arg(&file);
    let mut guard = ProcessGuard::spawn("jwks-server", &mut command, Some(dir)).unwrap();
    guard
        .wait_for_stdout("listening on", Duration::from_secs(10))
        .unwrap();
    let keys = http1_client()
        .get(&format!("http://{addr}/jwks.json"), &[])
        .await
        .unwrap();
    assert_eq!(keys.json().unwrap()["keys"][0]["kid"], "b");
    assert!(guard.stop().unwrap().success());
}
