//! Client streaming (and the request half of bidirectional streaming) over HTTP: the body is
//! a JSON array (`application/json`, one request message per element) or NDJSON
//! (`application/x-ndjson`, one per non-blank line); each element becomes one gRPC message,
//! filled like a unary request's body, with the path variables and query parameters applied
//! to every message. A JSON array (or any body sent as a side call) is converted whole once
//! the body is complete ([`build_stream_request`]); NDJSON through the router is converted
//! line by line as it arrives ([`NdjsonStream`]), so a bidirectional call's replies can
//! come back while the client is still sending.

use super::frame::encode_frame;
use super::plan::RequestPlan;
use super::request::{build_request, BodyKind, RequestOptions};
use crate::status::{GatewayError, RequestError};

/// How the body separates the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamBody {
    JsonArray,
    Ndjson,
}

impl StreamBody {
    /// From the request's content type: NDJSON for `application/x-ndjson`, else a JSON array.
    pub fn of(content_type: &str) -> StreamBody {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case("application/x-ndjson") {
            StreamBody::Ndjson
        } else {
            StreamBody::JsonArray
        }
    }
}

/// The gRPC frames of every request message in `body` (empty for `[]` or an empty body: a
/// stream with no message).
pub fn build_stream_request(
    plan: &RequestPlan,
    bindings: &[(String, String)],
    query: &[(String, String)],
    body: &[u8],
    kind: StreamBody,
    opts: &RequestOptions,
) -> Result<Vec<u8>, GatewayError> {
    let elements = match kind {
        StreamBody::JsonArray => array_elements(body)?,
        StreamBody::Ndjson => body
            .split(|b| *b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .map(<[u8]>::to_vec)
            .collect(),
    };
    let mut frames = Vec::with_capacity(body.len() + elements.len() * 5);
    for (i, element) in elements.iter().enumerate() {
        frames.extend(element_frame(plan, bindings, query, element, i, opts)?);
    }
    Ok(frames)
}

/// One element as a framed message; an error names the element's index.
fn element_frame(
    plan: &RequestPlan,
    bindings: &[(String, String)],
    query: &[(String, String)],
    element: &[u8],
    index: usize,
    opts: &RequestOptions,
) -> Result<Vec<u8>, GatewayError> {
    build_request(plan, bindings, query, element, BodyKind::Json, opts)
        .map(|m| encode_frame(&m))
        .map_err(|mut e| {
            e.message = format!("message [{index}]: {}", e.message);
            e
        })
}

/// An NDJSON request body converted as it arrives (client and bidirectional streaming
/// through Envoy's router): each complete line leaves as a gRPC message at once, the start of
/// a line waits for its end (at most `max_line` bytes), and the body's end completes the last.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NdjsonStream {
    /// The start of a line whose newline has not arrived.
    pending: Vec<u8>,
    /// Messages converted so far (the index of the next, for errors).
    sent: usize,
}

/// The request's parts every message of a stream is filled from.
pub struct StreamInputs<'a> {
    pub plan: &'a RequestPlan,
    pub bindings: &'a [(String, String)],
    pub query: &'a [(String, String)],
    pub opts: &'a RequestOptions,
    /// The longest line, in bytes (`limits.max_request_bytes`).
    pub max_line: usize,
}

impl NdjsonStream {
    /// The frames of the lines `chunk` completes (of everything left when `end`).
    pub fn push(
        &mut self,
        inputs: &StreamInputs<'_>,
        chunk: &[u8],
        end: bool,
    ) -> Result<Vec<u8>, GatewayError> {
        self.pending.extend_from_slice(chunk);
        let complete = match (end, self.pending.iter().rposition(|b| *b == b'\n')) {
            (true, _) => self.pending.len(),
            (false, Some(i)) => i + 1,
            (false, None) => 0,
        };
        let lines: Vec<u8> = self.pending.drain(..complete).collect();
        if self.pending.len() > inputs.max_line {
            let limit = inputs.max_line;
            return Err(crate::status::LimitError::RequestBody { limit }.into());
        }
        let mut frames = Vec::new();
        for line in lines.split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if line.len() > inputs.max_line {
                let limit = inputs.max_line;
                return Err(crate::status::LimitError::RequestBody { limit }.into());
            }
            let StreamInputs {
                plan,
                bindings,
                query,
                opts,
                ..
            } = inputs;
            frames.extend(element_frame(plan, bindings, query, line, self.sent, opts)?);
            self.sent += 1;
        }
        Ok(frames)
    }
}

/// The elements of a JSON array body, each as JSON text (an empty body is no element).
fn array_elements(body: &[u8]) -> Result<Vec<Vec<u8>>, GatewayError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let not_array = || -> GatewayError {
        RequestError::Invalid(
            "a client-streaming method takes a JSON array of request messages \
             (or NDJSON with content-type application/x-ndjson)"
                .into(),
        )
        .into()
    };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        GatewayError::from(RequestError::Invalid(format!("invalid JSON body: {e}")))
    })?;
    let serde_json::Value::Array(items) = value else {
        return Err(not_array());
    };
    items
        .iter()
        .map(|item| serde_json::to_vec(item).map_err(|_| not_array()))
        .collect()
}

/// The refusal for a body that cannot carry a stream of messages (binary protobuf).
pub fn unsupported(content_type: &str) -> GatewayError {
    RequestError::StreamBody {
        content_type: content_type.to_string(),
    }
    .into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::transcode::descriptors::http_rules;
    use crate::transcode::descriptors::testing::{demo_method, demo_pool};
    use crate::transcode::frame::FrameDecoder;

    fn record_plan() -> RequestPlan {
        let pool = demo_pool();
        let rules = http_rules(&pool)
            .into_iter()
            .find(|r| r.full_name == "meshgate.demo.v1.Payments.RecordPayments")
            .unwrap();
        let method = demo_method(&pool, "Payments.RecordPayments");
        RequestPlan::compile(&method, &rules.bindings[0]).unwrap()
    }

    fn messages(frames: &[u8]) -> Vec<Vec<u8>> {
        let mut d = FrameDecoder::default();
        d.push(frames);
        let mut out = Vec::new();
        while let Some(m) = d.next_message().unwrap() {
            out.push(m);
        }
        out
    }

    fn build(body: &str, kind: StreamBody) -> Result<Vec<u8>, GatewayError> {
        let query = [("request_id".to_string(), "q".to_string())];
        let opts = RequestOptions::default();
        build_stream_request(&record_plan(), &[], &query, body.as_bytes(), kind, &opts)
    }

    #[test]
    fn a_json_array_is_one_message_per_element() {
        let body = r#"[{"payment":{"merchant":"a"}},{"payment":{"merchant":"bb"}}]"#;
        let all = messages(&build(body, StreamBody::JsonArray).unwrap());
        assert_eq!(all.len(), 2);
        // CreatePaymentRequest { payment { merchant } } for each.
        assert!(all[0].windows(1).any(|w| w == b"a"));
        assert!(all[1].windows(2).any(|w| w == b"bb"));
        // With `body: "*"` the body binds every field: a query parameter sets none.
        assert_eq!(all[0], b"\x0a\x03\x12\x01a", "{all:?}");
    }

    #[test]
    fn ndjson_is_one_message_per_line_and_empty_bodies_no_message() {
        let body = "{\"payment\":{\"merchant\":\"a\"}}\n\n  \n{\"requestId\":\"x\"}\n";
        assert_eq!(messages(&build(body, StreamBody::Ndjson).unwrap()).len(), 2);
        assert!(build("", StreamBody::JsonArray).unwrap().is_empty());
        assert!(build("[]", StreamBody::JsonArray).unwrap().is_empty());
        assert!(build("", StreamBody::Ndjson).unwrap().is_empty());
    }

    #[test]
    fn ndjson_lines_leave_as_they_complete() {
        let plan = record_plan();
        let opts = RequestOptions::default();
        let inputs = StreamInputs {
            plan: &plan,
            bindings: &[],
            query: &[],
            opts: &opts,
            max_line: 64,
        };
        let mut s = NdjsonStream::default();
        let first = s.push(
            &inputs,
            b"{\"payment\":{\"merchant\":\"a\"}}\n{\"pay",
            false,
        );
        assert_eq!(messages(&first.unwrap()).len(), 1);
        let none = s.push(&inputs, b"ment\":{}}", false).unwrap();
        assert!(none.is_empty(), "a line without its newline waits");
        let last = s.push(&inputs, b"", true).unwrap();
        assert_eq!(messages(&last).len(), 1);
        // The index of a bad line counts the lines before it, across chunks.
        let e = s.push(&inputs, b"{\"payment\":7}\n", false).unwrap_err();
        assert!(e.message.starts_with("message [2]: "), "{}", e.message);
        // A line longer than the limit is refused before its end arrives.
        let mut s = NdjsonStream::default();
        let e = s.push(&inputs, &[b' '; 65], false).unwrap_err();
        assert_eq!(e.status(), 413, "{e}");
    }

    #[test]
    fn a_bad_element_names_its_index_and_a_non_array_is_refused() {
        let e = build(r#"[{}, {"payment": 7}]"#, StreamBody::JsonArray).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.message.starts_with("message [1]: "), "{}", e.message);
        let e = build(r#"{"payment":{}}"#, StreamBody::JsonArray).unwrap_err();
        assert!(e.message.contains("JSON array"), "{}", e.message);
        let e = unsupported("application/x-protobuf");
        assert_eq!(e.status(), 415);
        assert!(e.message.contains("NDJSON"), "{}", e.message);
        assert_eq!(
            StreamBody::of("application/x-ndjson; charset=utf-8"),
            StreamBody::Ndjson
        );
        assert_eq!(StreamBody::of("application/json"), StreamBody::JsonArray);
    }
}
