//! Shared helpers of the transcoding end-to-end tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use meshgate_kit::harness::{http1_client, http2_client, HttpClient, RawResponse};

pub const PB: &str = "application/x-protobuf";

/// An HTTP/1.1 and an HTTP/2 client: every test runs with both.
pub fn both() -> Vec<HttpClient> {
    vec![http1_client(), http2_client()]
}

/// No `grpc-*` header or trailer reaches an HTTP client.
pub fn assert_no_grpc_leak(r: &RawResponse) {
    for (name, _) in r.headers.iter() {
        assert!(
            !name.as_str().starts_with("grpc-"),
            "header {name} leaked: {:?}",
            r.headers
        );
    }
    if let Some(t) = &r.trailers {
        for (name, _) in t.iter() {
            assert!(
                !name.as_str().starts_with("grpc-"),
                "trailer {name} leaked: {t:?}"
            );
        }
    }
}

pub fn json_of(r: &RawResponse) -> serde_json::Value {
    r.json().unwrap()
}

/// A response read frame by frame: each body chunk with the time it arrived.
pub struct Timed {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub chunks: Vec<(std::time::Duration, bytes::Bytes)>,
    pub trailers: Option<http::HeaderMap>,
    pub total: std::time::Duration,
}

impl Timed {
    pub fn body(&self) -> String {
        let all: Vec<u8> = self.chunks.iter().flat_map(|(_, b)| b.to_vec()).collect();
        String::from_utf8(all).unwrap()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// When the first byte of `needle` had arrived.
    pub fn time_of(&self, needle: &str) -> Option<std::time::Duration> {
        let mut seen = String::new();
        for (t, b) in &self.chunks {
            seen.push_str(&String::from_utf8_lossy(b));
            if seen.contains(needle) {
                return Some(*t);
            }
        }
        None
    }
}

/// Send one request with HTTP/1.1 (`http2` false) or HTTP/2 and read the body as it comes.
pub async fn timed_request(
    http2: bool,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Timed {
    use http_body_util::BodyExt;
    let mut b = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new());
    if http2 {
        b.http2_only(true);
    }
    let client = b.build_http::<http_body_util::Full<bytes::Bytes>>();
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .unwrap();
    let start = std::time::Instant::now();
    let resp = tokio::time::timeout(std::time::Duration::from_secs(20), client.request(req))
        .await
        .expect("response headers within 20 s")
        .unwrap();
    let (parts, mut body) = resp.into_parts();
    let mut chunks = Vec::new();
    let mut trailers = None;
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(20), body.frame())
            .await
            .expect("body frame within 20 s");
        let Some(frame) = next else { break };
        let frame = frame.unwrap();
        match frame.into_data() {
            Ok(data) => chunks.push((start.elapsed(), data)),
            Err(frame) => trailers = frame.into_trailers().ok(),
        }
    }
    Timed {
        status: parts.status.as_u16(),
        headers: parts.headers,
        chunks,
        trailers,
        total: start.elapsed(),
    }
}

/// A request whose body the test writes piece by piece while it reads the response: what
/// proves that replies come back before the request body ends.
pub struct Duplex {
    /// The request body's sender; dropping it ends the body.
    pub body: Option<tokio::sync::mpsc::Sender<bytes::Bytes>>,
    response: Option<PendingResponse>,
    incoming: Option<hyper::body::Incoming>,
    pub status: u16,
    pub content_type: Option<String>,
    /// The response body read so far.
    pub seen: String,
}

type PendingResponse = tokio::task::JoinHandle<
    Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error>,
>;

type DuplexBody = http_body_util::StreamBody<
    tokio_stream::wrappers::ReceiverStream<
        Result<hyper::body::Frame<bytes::Bytes>, std::convert::Infallible>,
    >,
>;

impl Duplex {
    /// Start a POST to `url` with an open body (nothing sent yet).
    pub fn start(http2: bool, url: &str, headers: &[(&str, &str)]) -> Duplex {
        let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(8);
        let (ftx, frx) = tokio::sync::mpsc::channel(8);
        tokio::spawn(async move {
            let mut rx = rx;
            while let Some(b) = rx.recv().await {
                if ftx.send(Ok(hyper::body::Frame::data(b))).await.is_err() {
                    return;
                }
            }
        });
        let body: DuplexBody =
            http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(frx));
        let mut b =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new());
        if http2 {
            b.http2_only(true);
        }
        let client = b.build_http::<DuplexBody>();
        let mut req = http::Request::builder().method("POST").uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body).unwrap();
        Duplex {
            body: Some(tx),
            response: Some(tokio::spawn(client.request(req))),
            incoming: None,
            status: 0,
            content_type: None,
            seen: String::new(),
        }
    }

    pub async fn send(&mut self, text: &str) {
        let tx = self.body.as_ref().expect("the body is still open");
        tx.send(bytes::Bytes::from(text.to_string())).await.unwrap();
    }

    /// End the request body.
    pub fn close(&mut self) {
        self.body = None;
    }

    /// Read the response until its body holds `needle` (within 10 s); false at its end.
    pub async fn read_until(&mut self, needle: &str) -> bool {
        use http_body_util::BodyExt;
        let deadline = std::time::Duration::from_secs(10);
        if let Some(pending) = self.response.take() {
            let resp = tokio::time::timeout(deadline, pending)
                .await
                .expect("response headers within 10 s")
                .unwrap()
                .unwrap();
            self.status = resp.status().as_u16();
            self.content_type = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            self.incoming = Some(resp.into_body());
        }
        while !self.seen.contains(needle) {
            let Some(body) = self.incoming.as_mut() else {
                return false;
            };
            let next = tokio::time::timeout(deadline, body.frame())
                .await
                .unwrap_or_else(|_| panic!("{needle:?} within 10 s; seen: {}", self.seen));
            match next {
                None => {
                    self.incoming = None;
                    return false;
                }
                Some(frame) => {
                    if let Ok(data) = frame.unwrap().into_data() {
                        self.seen.push_str(&String::from_utf8_lossy(&data));
                    }
                }
            }
        }
        true
    }

    /// Read the rest of the response.
    pub async fn read_to_end(&mut self) -> String {
        while self.read_until("\u{0}never\u{0}").await {}
        self.seen.clone()
    }
}
