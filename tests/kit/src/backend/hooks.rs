//! Test hooks in front of the gRPC services, driven by request metadata:
//! - `x-demo-delay-ms: N` sleeps N ms (at most 60 s) before answering;
//! - `x-demo-fail: CODE` (name or number) answers with that status, with
//!   `x-demo-fail-message` as message and `x-demo-fail-details: badrequest|errorinfo` as
//!   google.rpc details in `grpc-status-details-bin`; `x-demo-fail-details: status` sends a
//!   details Status of its own (an ErrorInfo detail) with `x-demo-fail-details-code` and
//!   `x-demo-fail-details-message` (each defaults to the status's), and
//!   `x-demo-fail-details: garbage` bytes that are no Status;
//! - `x-demo-misbehave: MODE` answers with a broken gRPC response (see [`Misbehave`]); a
//!   backend started with `--misbehave MODE` does so for every request without the metadata
//!   (`x-demo-misbehave: none` asks for a normal answer from such a backend).
//!
//! Every response also says who answered and what arrived: `x-demo-backend: NAME` (header and,
//! when the response has trailers, trailer), `x-demo-echo-<n>` for each request `x-echo-<n>`,
//! `x-demo-saw-<n>` for each request `x-meshgate-<n>`, and `x-demo-received-headers` listing
//! every request header name (sorted, comma-separated) so tests can prove one was removed,
//! and `x-demo-traceparent`: the request's `traceparent` (the span a trace test expects).
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body::Frame;
use tonic::body::Body;
use tonic::{Code, Status};
use tower::{Layer, Service};

use super::errors::{bad_request, details_status, error_info, parse_code, with_details};
use super::misbehave::Misbehave;

/// Longest delay a request may ask for.
const MAX_DELAY: Duration = Duration::from_secs(60);

/// The layer that adds [`Hooks`] around the tonic router.
#[derive(Debug, Clone)]
pub struct HooksLayer {
    name: HeaderValue,
    default_misbehave: Option<Misbehave>,
}

impl HooksLayer {
    /// `name` is reported in `x-demo-backend`; a name that is not a valid header value becomes
    /// `invalid-name`.
    pub fn new(name: &str) -> Self {
        let name = HeaderValue::from_str(name).unwrap_or(HeaderValue::from_static("invalid-name"));
        HooksLayer {
            name,
            default_misbehave: None,
        }
    }

    /// Misbehave this way on every request that does not say otherwise.
    pub fn misbehave_by_default(mut self, mode: Option<Misbehave>) -> Self {
        self.default_misbehave = mode;
        self
    }
}

impl<S> Layer<S> for HooksLayer {
    type Service = Hooks<S>;

    fn layer(&self, inner: S) -> Hooks<S> {
        Hooks {
            inner,
            name: Arc::new(self.name.clone()),
            default_misbehave: self.default_misbehave,
        }
    }
}

/// The hooks service (see the module docs).
#[derive(Debug, Clone)]
pub struct Hooks<S> {
    inner: S,
    name: Arc<HeaderValue>,
    default_misbehave: Option<Misbehave>,
}

/// What a request asked the hooks to do.
struct Plan {
    delay: Option<Duration>,
    /// A status to answer with instead of calling the service.
    fail: Option<Status>,
    misbehave: Option<Misbehave>,
    /// Headers added to whatever the response is.
    decorations: HeaderMap,
}

impl<S> Service<Request<Body>> for Hooks<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let plan = plan(req.headers(), &self.name, self.default_misbehave);
        // One line per request on stdout: the harness shows it when a test fails.
        println!("{} {}{}", req.method(), req.uri().path(), plan.summary());
        // The clone is the fresh service; the ready one (self.inner) serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let name = Arc::clone(&self.name);
        Box::pin(async move {
            if let Some(delay) = plan.delay {
                tokio::time::sleep(delay).await;
            }
            let mut response = if let Some(mode) = plan.misbehave {
                misbehaving_response(mode)
            } else if let Some(status) = plan.fail {
                status.into_http()
            } else {
                let response = inner.call(req).await?;
                response.map(|body| Body::new(WithTrailer { inner: body, name }))
            };
            response.headers_mut().extend(plan.decorations);
            Ok(response)
        })
    }
}

impl Plan {
    /// The hooks this request triggers, for the request log line.
    fn summary(&self) -> String {
        let mut out = String::new();
        if let Some(delay) = self.delay {
            out.push_str(&format!(" delay={delay:?}"));
        }
        if let Some(mode) = self.misbehave {
            out.push_str(&format!(" misbehave={mode:?}"));
        }
        if let Some(status) = &self.fail {
            out.push_str(&format!(" fail={:?}", status.code()));
        }
        out
    }
}

/// Reads the hook metadata of one request.
fn plan(headers: &HeaderMap, name: &HeaderValue, default_misbehave: Option<Misbehave>) -> Plan {
    let text = |key: &str| headers.get(key).and_then(|v| v.to_str().ok());
    let delay = text("x-demo-delay-ms")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|ms| Duration::from_millis(ms).min(MAX_DELAY));
    let misbehave = text("x-demo-misbehave").map(|v| match v.trim() {
        "none" => Ok(None),
        mode => mode.parse::<Misbehave>().map(Some),
    });
    let (misbehave, misbehave_error) = match misbehave {
        Some(Ok(mode)) => (mode, None),
        Some(Err(message)) => (None, Some(Status::invalid_argument(message))),
        None => (default_misbehave, None),
    };
    let fail = misbehave_error.or_else(|| text("x-demo-fail").map(|code| fail_status(code, &text)));
    Plan {
        delay,
        fail,
        misbehave,
        decorations: decorations(headers, name),
    }
}

/// The status `x-demo-fail` asks for.
fn fail_status<'a>(code: &str, text: &impl Fn(&str) -> Option<&'a str>) -> Status {
    let Some(code) = parse_code(code).filter(|c| *c != Code::Ok) else {
        return bad_request("x-demo-fail", "not a gRPC error code name or number");
    };
    let message = text("x-demo-fail-message").unwrap_or("demo failure requested by x-demo-fail");
    match text("x-demo-fail-details") {
        Some("badrequest") => {
            let detail = bad_request("demo.field", "rejected by x-demo-fail-details");
            with_details(code, message, bad_request_any(&detail))
        }
        Some("errorinfo") => with_details(code, message, vec![error_info("DEMO_FAILURE")]),
        Some("status") => {
            let details_code = text("x-demo-fail-details-code")
                .and_then(parse_code)
                .unwrap_or(code);
            let details_message = text("x-demo-fail-details-message").unwrap_or(message);
            let details = details_status(details_code, details_message, "DEMO_DETAILS");
            Status::with_details(code, message, details.into())
        }
        Some("garbage") => Status::with_details(code, message, vec![0xff, 0xff, 0xff].into()),
        _ => Status::new(code, message),
    }
}

/// The `Any` details inside a status made by [`bad_request`].
fn bad_request_any(status: &Status) -> Vec<prost_types::Any> {
    use prost::Message;
    crate::proto::google::rpc::Status::decode(status.details())
        .map(|s| s.details)
        .unwrap_or_default()
}

/// Headers that report who answered and what the request carried.
fn decorations(headers: &HeaderMap, name: &HeaderValue) -> HeaderMap {
    let mut out = HeaderMap::new();
    out.insert("x-demo-backend", name.clone());
    for (key, value) in headers {
        let key = key.as_str();
        let renamed = key
            .strip_prefix("x-echo-")
            .map(|rest| format!("x-demo-echo-{rest}"))
            .or_else(|| {
                key.strip_prefix("x-meshgate-")
                    .map(|rest| format!("x-demo-saw-{rest}"))
            });
        if let Some(Ok(new_name)) = renamed.map(|n| HeaderName::from_bytes(n.as_bytes())) {
            out.append(new_name, value.clone());
        }
    }
    if let Some(tp) = headers.get("traceparent") {
        out.insert("x-demo-traceparent", tp.clone());
    }
    let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
    names.sort_unstable();
    names.dedup();
    if let Ok(list) = HeaderValue::from_str(&names.join(",")) {
        out.insert("x-demo-received-headers", list);
    }
    out
}

fn misbehaving_response(mode: Misbehave) -> Response<Body> {
    let mut response = Response::new(Body::new(mode.body()));
    for (name, value) in mode.headers() {
        response
            .headers_mut()
            .insert(*name, HeaderValue::from_static(value));
    }
    response
}

/// Adds `x-demo-backend` to the trailers of a response body, when it has trailers.
struct WithTrailer {
    inner: Body,
    name: Arc<HeaderValue>,
}

impl http_body::Body for WithTrailer {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, Status>>> {
        let name = HeaderValue::clone(&self.name);
        Pin::new(&mut self.inner).poll_frame(cx).map(|frame| {
            frame.map(|result| {
                result.map(|mut frame| {
                    if let Some(trailers) = frame.trailers_mut() {
                        trailers.insert("x-demo-backend", name);
                    }
                    frame
                })
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn echo_and_saw_headers_are_renamed() {
        let h = headers(&[
            ("x-echo-color", "blue"),
            ("x-meshgate-operation", "GetPayment"),
            ("te", "trailers"),
        ]);
        let out = decorations(&h, &HeaderValue::from_static("b1"));
        assert_eq!(out.get("x-demo-echo-color").unwrap(), "blue");
        assert_eq!(out.get("x-demo-saw-operation").unwrap(), "GetPayment");
        assert_eq!(out.get("x-demo-backend").unwrap(), "b1");
        assert_eq!(
            out.get("x-demo-received-headers").unwrap(),
            "te,x-echo-color,x-meshgate-operation"
        );
        assert!(out.get("te").is_none());
    }

    #[test]
    fn fail_hook_parses_code_and_details() {
        let h = headers(&[
            ("x-demo-fail", "unavailable"),
            ("x-demo-fail-details", "badrequest"),
        ]);
        let p = plan(&h, &HeaderValue::from_static("b"), None);
        let status = p.fail.unwrap();
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.details().is_empty());
    }

    #[test]
    fn unknown_misbehave_mode_is_invalid_argument() {
        let p = plan(
            &headers(&[("x-demo-misbehave", "explode")]),
            &HeaderValue::from_static("b"),
            None,
        );
        assert_eq!(p.fail.unwrap().code(), Code::InvalidArgument);
        assert!(p.misbehave.is_none());
    }

    #[test]
    fn default_misbehaviour_applies_unless_the_request_says_none() {
        let default = Some(Misbehave::Reset);
        let b = HeaderValue::from_static("b");
        assert_eq!(plan(&HeaderMap::new(), &b, default).misbehave, default);
        let none = headers(&[("x-demo-misbehave", "none")]);
        assert_eq!(plan(&none, &b, default).misbehave, None);
        let huge = headers(&[("x-demo-misbehave", "huge")]);
        assert_eq!(plan(&huge, &b, default).misbehave, Some(Misbehave::Huge));
    }

    #[test]
    fn delay_is_capped() {
        let p = plan(
            &headers(&[("x-demo-delay-ms", "999999999")]),
            &HeaderValue::from_static("b"),
            None,
        );
        assert_eq!(p.delay, Some(MAX_DELAY));
    }
}
