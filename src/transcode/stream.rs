//! Server-streaming replies to HTTP clients: each message is forwarded as it arrives, in one of
//! three framings a browser or `curl` can read incrementally.
//!
//! - `json_array` (default, Envoy's transcoder's choice): `[m1,m2]`, one valid JSON document
//!   once complete;
//! - `ndjson`: one JSON document per line;
//! - `sse`: Server-Sent Events, `data:` lines, readable by `EventSource`.
//!
//! A stream that fails after messages were sent cannot change its HTTP status any more, so the
//! error travels in the body: a last `{"error": status}` element or line, or an `error` event.

use std::str::FromStr;

use super::print::PrintOptions;
use crate::status::{GatewayError, StatusPrint};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StreamFormat {
    #[default]
    JsonArray,
    Ndjson,
    Sse,
}

impl FromStr for StreamFormat {
    type Err = String;

    /// `json_array` | `ndjson` | `sse`, as written in `transcoding.stream_format`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json_array" => Ok(StreamFormat::JsonArray),
            "ndjson" => Ok(StreamFormat::Ndjson),
            "sse" => Ok(StreamFormat::Sse),
            other => Err(format!(
                "unknown stream format '{other}': expected json_array, ndjson or sse"
            )),
        }
    }
}

impl StreamFormat {
    /// The format a client's `Accept` names: the first of its media types (in the order
    /// written, parameters and `q` aside) that is `application/json` (JSON array),
    /// `application/x-ndjson` or `text/event-stream`; `None` when it names none of them first
    /// (`*/*`, `application/x-protobuf`, no header).
    pub fn from_accept(accept: &str) -> Option<StreamFormat> {
        for range in accept.split(',') {
            let media = range.split(';').next().unwrap_or_default().trim();
            match media.to_ascii_lowercase().as_str() {
                "application/json" => return Some(StreamFormat::JsonArray),
                "application/x-ndjson" => return Some(StreamFormat::Ndjson),
                "text/event-stream" => return Some(StreamFormat::Sse),
                "" => continue,
                _ => return None,
            }
        }
        None
    }

    pub fn content_type(self) -> &'static str {
        match self {
            StreamFormat::JsonArray => "application/json",
            StreamFormat::Ndjson => "application/x-ndjson",
            StreamFormat::Sse => "text/event-stream",
        }
    }
}

/// Writes one HTTP body from a stream of rendered JSON messages.
#[derive(Debug, Clone)]
pub struct StreamWriter {
    format: StreamFormat,
    /// An element was written (json_array needs `[` before the first and `,` before the rest).
    started: bool,
    /// `finish` was called: later calls write nothing, so a caller that finishes twice cannot
    /// corrupt the body.
    finished: bool,
    /// How a terminal error's Status is printed (its empty fields; always on one line).
    status_print: StatusPrint,
    /// How the terminal error's `details` are printed (field names, enums, defaults).
    details_print: PrintOptions,
    /// A `google.api.HttpBody` stream: the messages' bytes as they are, under the content
    /// type of the first (`Some(None)` until it arrived); `None` for the JSON formats.
    http_body: Option<Option<String>>,
}

impl StreamWriter {
    pub fn new(format: StreamFormat) -> Self {
        StreamWriter {
            format,
            started: false,
            finished: false,
            status_print: StatusPrint::default(),
            details_print: PrintOptions::default(),
            http_body: None,
        }
    }

    /// A server stream of `google.api.HttpBody`: the body is the messages' `data` joined in
    /// order, its content type the first message's `content_type`. A terminal error cannot be
    /// written into such a body: [`StreamWriter::finish`] writes nothing.
    pub fn http_body() -> Self {
        StreamWriter {
            http_body: Some(None),
            ..StreamWriter::new(StreamFormat::JsonArray)
        }
    }

    /// Whether this is a `google.api.HttpBody` stream.
    pub fn is_http_body(&self) -> bool {
        self.http_body.is_some()
    }

    /// Bytes to send for one `HttpBody` message (`data` as is); the first message's
    /// `content_type` is the body's.
    pub fn http_body_chunk(&mut self, data: &[u8], content_type: &str) -> Vec<u8> {
        if self.finished {
            return Vec::new();
        }
        if let Some(first @ None) = &mut self.http_body {
            *first = Some(content_type.to_string());
        }
        self.started = true;
        data.to_vec()
    }

    /// At least one message was written.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Print a terminal error's empty fields as the configured print options say
    /// (`always_print_primitive_fields`); the error stays on one line.
    pub fn with_status_print(mut self, print: StatusPrint) -> Self {
        self.status_print = StatusPrint {
            add_whitespace: false,
            ..print
        };
        self
    }

    /// Print a terminal error as the configured print options say: its empty fields (see
    /// [`StreamWriter::with_status_print`]) and its `details` (field names, enums, defaults).
    pub fn with_print_options(mut self, opts: &PrintOptions) -> Self {
        self.details_print = *opts;
        self.with_status_print(opts.status_print())
    }

    /// The print options a terminal error's `details` follow.
    pub fn details_print(&self) -> &PrintOptions {
        &self.details_print
    }

    /// The body's content type: the format's, or an `HttpBody` stream's first message's
    /// (`application/octet-stream` before it arrived).
    pub fn content_type(&self) -> &str {
        match &self.http_body {
            Some(Some(first)) => first,
            Some(None) => "application/octet-stream",
            None => self.format.content_type(),
        }
    }

    /// Bytes to send for one rendered JSON message (nothing after `finish`).
    pub fn message(&mut self, json: &[u8]) -> Vec<u8> {
        if self.finished {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(json.len() + 8);
        match self.format {
            StreamFormat::JsonArray => {
                out.push(if self.started { b',' } else { b'[' });
                out.extend_from_slice(json);
            }
            StreamFormat::Ndjson => {
                push_one_line(&mut out, json);
                out.push(b'\n');
            }
            StreamFormat::Sse => push_event(&mut out, None, json),
        }
        self.started = true;
        out
    }

    /// Bytes that end the stream. `error` reports a terminal error in the body: json_array a
    /// last element `{"error": {code, message, details}}` then `]`; ndjson a last line
    /// `{"error": {...}}`; SSE an `event: error` whose data is the status JSON. Without an error
    /// json_array closes with `]` (`[]` when nothing was sent); ndjson and SSE need nothing.
    pub fn finish(&mut self, error: Option<&GatewayError>) -> Vec<u8> {
        if self.finished {
            return Vec::new();
        }
        self.finished = true;
        let mut out = Vec::new();
        if self.http_body.is_some() {
            return out;
        }
        match (self.format, error) {
            (StreamFormat::JsonArray, e) => {
                if !self.started {
                    out.push(b'[');
                }
                if let Some(e) = e {
                    if self.started {
                        out.push(b',');
                    }
                    out.extend_from_slice(&wrapped(e, self.status_print));
                }
                out.push(b']');
            }
            (StreamFormat::Ndjson, Some(e)) => {
                out.extend_from_slice(&wrapped(e, self.status_print));
                out.push(b'\n');
            }
            (StreamFormat::Sse, Some(e)) => {
                let status = self.status_print.bytes(&e.to_json_with(self.status_print));
                push_event(&mut out, Some("error"), &status);
            }
            (StreamFormat::Ndjson | StreamFormat::Sse, None) => {}
        }
        out
    }
}

/// `{"error": {code, message, details}}`.
fn wrapped(e: &GatewayError, print: StatusPrint) -> Vec<u8> {
    print.bytes(&serde_json::json!({ "error": e.to_json_with(print) }))
}

/// JSON printed with whitespace spans lines; NDJSON needs one. Raw line breaks only occur
/// between tokens (JSON strings escape them), so dropping them keeps the same document.
fn push_one_line(out: &mut Vec<u8>, json: &[u8]) {
    out.extend(json.iter().copied().filter(|b| *b != b'\n' && *b != b'\r'));
}

/// One SSE event: optional `event:` line, one `data:` line per line of `data`, blank line.
fn push_event(out: &mut Vec<u8>, event: Option<&str>, data: &[u8]) {
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    for line in data.split(|b| *b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend(line.iter().copied().filter(|b| *b != b'\r'));
        out.push(b'\n');
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Code;
    use serde_json::{json, Value};

    fn run(format: StreamFormat, msgs: &[&str], error: Option<&GatewayError>) -> String {
        let mut w = StreamWriter::new(format);
        let mut out = Vec::new();
        for m in msgs {
            out.extend(w.message(m.as_bytes()));
        }
        out.extend(w.finish(error));
        String::from_utf8(out).unwrap()
    }

    fn failure() -> GatewayError {
        GatewayError::new(Code::Unavailable, "backend went away")
    }

    #[test]
    fn accept_picks_the_first_stream_type_it_names() {
        let of = StreamFormat::from_accept;
        assert_eq!(of("application/x-ndjson"), Some(StreamFormat::Ndjson));
        assert_eq!(of("text/event-stream"), Some(StreamFormat::Sse));
        assert_eq!(
            of("Application/JSON; charset=utf-8"),
            Some(StreamFormat::JsonArray)
        );
        assert_eq!(
            of("text/event-stream;q=0.9, application/json"),
            Some(StreamFormat::Sse)
        );
        assert_eq!(of("*/*"), None);
        assert_eq!(of("application/x-protobuf, text/event-stream"), None);
        assert_eq!(of(""), None);
    }

    #[test]
    fn http_body_stream_is_the_raw_bytes_under_the_first_content_type() {
        let mut w = StreamWriter::http_body();
        assert!(w.is_http_body());
        assert_eq!(w.content_type(), "application/octet-stream");
        let mut out = w.http_body_chunk(b"<h1>Hello!</h1>", "text/html");
        out.extend(w.http_body_chunk(b"Hello!", "text/plain"));
        assert_eq!(w.content_type(), "text/html");
        out.extend(w.finish(Some(&failure())));
        assert_eq!(out, b"<h1>Hello!</h1>Hello!");
    }

    #[test]
    fn formats_parse_from_configuration_names() {
        assert_eq!("json_array".parse(), Ok(StreamFormat::JsonArray));
        assert_eq!("ndjson".parse(), Ok(StreamFormat::Ndjson));
        assert_eq!("sse".parse(), Ok(StreamFormat::Sse));
        assert!("jsonl"
            .parse::<StreamFormat>()
            .unwrap_err()
            .contains("jsonl"));
        assert_eq!(StreamFormat::default(), StreamFormat::JsonArray);
    }

    #[test]
    fn content_types_match_formats() {
        assert_eq!(
            StreamWriter::new(StreamFormat::JsonArray).content_type(),
            "application/json"
        );
        assert_eq!(
            StreamWriter::new(StreamFormat::Ndjson).content_type(),
            "application/x-ndjson"
        );
        assert_eq!(
            StreamWriter::new(StreamFormat::Sse).content_type(),
            "text/event-stream"
        );
    }

    #[test]
    fn json_array_is_one_valid_document() {
        let body = run(StreamFormat::JsonArray, &[r#"{"a":1}"#, r#"{"a":2}"#], None);
        assert_eq!(body, r#"[{"a":1},{"a":2}]"#);
    }

    #[test]
    fn json_array_with_no_messages_is_empty_array() {
        assert_eq!(run(StreamFormat::JsonArray, &[], None), "[]");
    }

    #[test]
    fn json_array_error_is_the_last_element() {
        let body = run(StreamFormat::JsonArray, &[r#"{"a":1}"#], Some(&failure()));
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v[0], json!({"a": 1}));
        assert_eq!(
            v[1],
            json!({"error": {"code": 14, "message": "backend went away"}})
        );
        let mut w = StreamWriter::new(StreamFormat::Ndjson).with_status_print(StatusPrint {
            always_print_primitive_fields: true,
            add_whitespace: true,
        });
        let line = String::from_utf8(w.finish(Some(&failure()))).unwrap();
        assert_eq!(
            line,
            "{\"error\":{\"code\":14,\"details\":[],\"message\":\"backend went away\"}}\n"
        );
        let body = run(StreamFormat::JsonArray, &[], Some(&failure()));
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v[0]["error"]["code"], 14);
    }

    #[test]
    fn ndjson_is_one_line_per_message_even_when_pretty_printed() {
        let body = run(
            StreamFormat::Ndjson,
            &["{\n \"a\": 1\n}", r#"{"a":"x\ny"}"#],
            None,
        );
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines.len(), 2, "{body:?}");
        assert_eq!(
            serde_json::from_str::<Value>(lines[0]).unwrap(),
            json!({"a": 1})
        );
        assert_eq!(
            serde_json::from_str::<Value>(lines[1]).unwrap(),
            json!({"a": "x\ny"})
        );
        assert!(body.ends_with('\n'));
    }

    #[test]
    fn ndjson_error_is_a_last_line() {
        let body = run(StreamFormat::Ndjson, &["{}"], Some(&failure()));
        let last = body.lines().last().unwrap();
        let v: Value = serde_json::from_str(last).unwrap();
        assert_eq!(v["error"]["message"], "backend went away");
        assert_eq!(run(StreamFormat::Ndjson, &[], None), "");
    }

    #[test]
    fn sse_sends_data_events_and_an_error_event() {
        let body = run(
            StreamFormat::Sse,
            &[r#"{"a":1}"#, "{\n \"b\": 2\n}"],
            Some(&failure()),
        );
        let events: Vec<&str> = body.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 3, "{body:?}");
        assert_eq!(events[0], r#"data: {"a":1}"#);
        assert_eq!(events[1], "data: {\ndata:  \"b\": 2\ndata: }");
        let (head, data) = events[2].split_once('\n').unwrap();
        assert_eq!(head, "event: error");
        let v: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(v["code"], 14);
        assert!(body.ends_with("\n\n"));
    }

    #[test]
    fn nothing_is_written_after_finish() {
        let mut w = StreamWriter::new(StreamFormat::JsonArray);
        assert_eq!(w.finish(None), b"[]");
        assert!(w.finish(Some(&failure())).is_empty());
        assert!(w.message(b"{}").is_empty());
    }
}
