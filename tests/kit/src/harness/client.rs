//! Clients for tests (async: use them inside `#[tokio::test]`).
//! - gRPC: tonic's generated clients over a plain-text HTTP/2 channel.
//! - HTTP: a hyper client, HTTP/1.1 ([`http1_client`]) or h2c with prior knowledge
//!   ([`http2_client`]), returning the whole response *including trailers*, which gRPC
//!   gateway tests need (reqwest does not expose trailers).
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tonic::transport::{Channel, Endpoint};

use crate::error::{KitError, KitResult};
use crate::proto::meshgate::demo::v1::payments_client::PaymentsClient;
use crate::proto::meshgate::demo::v1::wallets_client::WalletsClient;

/// Longest a test client waits for a whole answer (connect, response, body) unless the test
/// sets its own: no call can hang a test run.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a test client waits for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connected plain-text HTTP/2 channel to `addr` (a backend or an Envoy listener). Every
/// call on it fails after [`CLIENT_TIMEOUT`] (for a stream: until its response headers).
pub async fn grpc_channel(addr: SocketAddr) -> KitResult<Channel> {
    Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| KitError::new(format!("grpc endpoint {addr}: {e}")))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CLIENT_TIMEOUT)
        .connect()
        .await
        .map_err(|e| KitError::new(format!("grpc connect {addr}: {e}")))
}

/// A `Payments` client to `addr`.
pub async fn payments_client(addr: SocketAddr) -> KitResult<PaymentsClient<Channel>> {
    Ok(PaymentsClient::new(grpc_channel(addr).await?))
}

/// A `Wallets` client to `addr`.
pub async fn wallets_client(addr: SocketAddr) -> KitResult<WalletsClient<Channel>> {
    Ok(WalletsClient::new(grpc_channel(addr).await?))
}

/// A hyper HTTP client speaking one protocol version; every call is bounded by its timeout
/// ([`CLIENT_TIMEOUT`] unless [`HttpClient::with_timeout`] says otherwise).
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
    version: Version,
    timeout: Duration,
}

fn connector() -> HttpConnector {
    let mut c = HttpConnector::new();
    c.set_connect_timeout(Some(CONNECT_TIMEOUT));
    c
}

/// An HTTP/1.1 client.
pub fn http1_client() -> HttpClient {
    HttpClient {
        inner: Client::builder(TokioExecutor::new()).build(connector()),
        version: Version::HTTP_11,
        timeout: CLIENT_TIMEOUT,
    }
}

/// An HTTP/2 cleartext client (prior knowledge, no TLS, no upgrade).
pub fn http2_client() -> HttpClient {
    HttpClient {
        inner: Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build(connector()),
        version: Version::HTTP_2,
        timeout: CLIENT_TIMEOUT,
    }
}

/// A whole response: status, headers, body and trailers (if any).
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

impl RawResponse {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A trailer as text.
    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers
            .as_ref()?
            .get(name)
            .and_then(|v| v.to_str().ok())
    }

    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> KitResult<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .map_err(|e| KitError::new(format!("body is not JSON ({e}): {}", self.text())))
    }
}

impl HttpClient {
    /// The protocol version this client speaks.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The same client with another bound on each whole call (a test that expects a slow
    /// answer, or one that gives up early on purpose).
    pub fn with_timeout(mut self, timeout: Duration) -> HttpClient {
        self.timeout = timeout;
        self
    }

    /// The bound on each whole call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends any request and reads the whole response, within the client's timeout.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> KitResult<RawResponse> {
        let what = format!("{} {}", request.method(), request.uri());
        match tokio::time::timeout(self.timeout, self.send_unbounded(request, &what)).await {
            Ok(result) => result,
            Err(_) => Err(KitError::new(format!(
                "{what}: no whole answer within {:?}",
                self.timeout
            ))),
        }
    }

    async fn send_unbounded(
        &self,
        request: Request<Full<Bytes>>,
        what: &str,
    ) -> KitResult<RawResponse> {
        let response = self
            .inner
            .request(request)
            .await
            .map_err(|e| KitError::new(format!("{what}: {e:?}")))?;
        let (parts, body) = response.into_parts();
        let collected = body
            .collect()
            .await
            .map_err(|e| KitError::new(format!("{what}: reading body: {e:?}")))?;
        let trailers = collected.trailers().cloned();
        Ok(RawResponse {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body: collected.to_bytes(),
            trailers,
        })
    }

    /// Sends `method url` with `headers` and `body`.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> KitResult<RawResponse> {
        let mut builder = Request::builder()
            .method(method)
            .uri(url)
            .version(self.version);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(body.into()))
            .map_err(|e| KitError::new(format!("building request to {url}: {e}")))?;
        self.send(request).await
    }

    /// `GET url` with `headers`.
    pub async fn get(&self, url: &str, headers: &[(&str, &str)]) -> KitResult<RawResponse> {
        self.request(Method::GET, url, headers, Bytes::new()).await
    }

    /// `POST url` with `headers` and `body`.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> KitResult<RawResponse> {
        self.request(Method::POST, url, headers, body).await
    }
}

/// Frames one protobuf message as a gRPC message (flag 0, big-endian length), for raw gRPC
/// requests over [`http2_client`].
pub fn grpc_frame(message: &[u8]) -> Bytes {
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    out.into()
}

/// Splits a gRPC response body into its messages: `(compressed flag, bytes)` per frame; None
/// when the body does not end on a frame boundary.
pub fn grpc_unframe(mut body: &[u8]) -> Option<Vec<(bool, Bytes)>> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let (prefix, rest) = body.split_at_checked(5)?;
        let (flag, len) = prefix.split_first()?;
        let len = usize::try_from(u32::from_be_bytes(len.try_into().ok()?)).ok()?;
        let (message, rest) = rest.split_at_checked(len)?;
        out.push((*flag == 1, Bytes::copy_from_slice(message)));
        body = rest;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut body = grpc_frame(b"abc").to_vec();
        body.extend_from_slice(&grpc_frame(b""));
        let frames = grpc_unframe(&body).unwrap();
        assert_eq!(
            frames,
            vec![(false, Bytes::from_static(b"abc")), (false, Bytes::new())]
        );
        assert!(grpc_unframe(&body[..4]).is_none());
    }
}
