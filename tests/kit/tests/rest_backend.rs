//! The REST echo backend as a real process over HTTP/1.1 and h2c.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use meshgate_kit::harness::{http1_client, http2_client, start_rest_backend};

#[tokio::test]
async fn echo_describes_method_path_query_headers_and_body() {
    let backend = start_rest_backend("rest-a").unwrap();
    let url = format!("http://{}/api/v2/items/7?expand=true&x=1", backend.addr);
    let response = http1_client()
        .post(
            &url,
            &[("x-tenant", "t1"), ("content-type", "text/plain")],
            "payload",
        )
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-demo-backend"), Some("rest-a"));
    assert_eq!(response.header("content-type"), Some("application/json"));
    let v = response.json().unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/api/v2/items/7");
    assert_eq!(v["query"], "expand=true&x=1");
    assert_eq!(v["headers"]["x-tenant"], "t1");
    assert_eq!(v["body"], "payload");
    assert_eq!(v["backend"], "rest-a");
    assert_eq!(v["version"], "HTTP/1.1");
}

#[tokio::test]
async fn status_hook_sets_the_response_status_and_h2c_works() {
    let backend = start_rest_backend("rest-b").unwrap();
    let url = format!("http://{}/x", backend.addr);
    let response = http2_client()
        .get(&url, &[("x-demo-status", "503")])
        .await
        .unwrap();
    assert_eq!(response.status, 503);
    assert_eq!(response.json().unwrap()["version"], "HTTP/2.0");
}

#[test]
fn rest_backend_exits_cleanly_on_sigterm() {
    let mut backend = start_rest_backend("rest-c").unwrap();
    assert!(backend.guard.stop().unwrap().success());
}
