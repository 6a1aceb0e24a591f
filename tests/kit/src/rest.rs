//! The REST echo backend for routing and path-rewrite tests: every request is answered with
//! JSON `{"method", "path", "query", "headers", "body", "backend"}` describing what arrived.
//! Hooks: `x-demo-status: NNN` answers with that status, `x-demo-delay-ms: N` waits first.
//! The response carries `x-demo-backend: NAME`.
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;

use crate::http_server;

/// Serves the echo backend on `listener` (HTTP/1.1 and h2c) until `shutdown` resolves.
pub async fn serve(listener: TcpListener, name: &str, shutdown: impl Future<Output = ()>) {
    let name: Arc<str> = Arc::from(name);
    let handler = move |req: Request<Incoming>| {
        let name = Arc::clone(&name);
        async move { echo(req, &name).await }
    };
    http_server::serve(listener, handler, shutdown).await;
}

async fn echo(req: Request<Incoming>, name: &str) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let header = |key: &str| parts.headers.get(key).and_then(|v| v.to_str().ok());
    if let Some(ms) = header("x-demo-delay-ms").and_then(|v| v.trim().parse::<u64>().ok()) {
        tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
    }
    let status = header("x-demo-status")
        .and_then(|v| v.trim().parse::<u16>().ok())
        .unwrap_or(200);
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let document = describe(&parts, &body, name);
    let mut response = http_server::response(status, "application/json", document.to_string());
    if let Ok(value) = http::HeaderValue::from_str(name) {
        response.headers_mut().insert("x-demo-backend", value);
    }
    response
}

/// The JSON description of one request. Repeated headers are joined with `, `.
pub fn describe(parts: &http::request::Parts, body: &[u8], name: &str) -> Value {
    let mut headers = Map::new();
    for key in parts.headers.keys() {
        let values: Vec<String> = parts
            .headers
            .get_all(key)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        headers.insert(key.as_str().to_owned(), Value::String(values.join(", ")));
    }
    json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "body": String::from_utf8_lossy(body),
        "backend": name,
        "version": format!("{:?}", parts.version),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_has_method_path_query_and_joined_headers() {
        let req = Request::builder()
            .method("PATCH")
            .uri("/v1/x?a=1&b=2")
            .header("x-k", "1")
            .header("x-k", "2")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let v = describe(&parts, b"hi", "r1");
        assert_eq!(v["method"], "PATCH");
        assert_eq!(v["path"], "/v1/x");
        assert_eq!(v["query"], "a=1&b=2");
        assert_eq!(v["headers"]["x-k"], "1, 2");
        assert_eq!(v["body"], "hi");
        assert_eq!(v["backend"], "r1");
    }
}
