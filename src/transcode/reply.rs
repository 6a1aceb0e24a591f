//! The protocol rules of a whole gRPC reply, on top of framing, rendering and status mapping:
//! what a unary reply must contain to be a success, and how a server stream is forwarded and
//! ended. The filter feeds body chunks and the final `grpc-*` values; these functions say what
//! bytes the client gets. Every failure is a [`GatewayError`], so no client ever receives an
//! empty body with a success status.

use prost_reflect::DescriptorPool;

use super::frame::FrameDecoder;
use super::grpc_status::{error_from_grpc, print_details};
use super::print::PrintOptions;
use super::response::{render_response, ResponseFormat, ResponsePlan};
use super::stream::StreamWriter;
use crate::status::{GatewayError, UpstreamError};

/// The `grpc-*` values that end a reply, from the trailers (or from the headers of a
/// trailers-only reply).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GrpcEnd<'a> {
    pub status: Option<&'a str>,
    pub message: Option<&'a str>,
    pub details_bin: Option<&'a str>,
}

impl GrpcEnd<'_> {
    /// The error this end reports, `None` for OK. A missing grpc-status is the backend breaking
    /// the protocol: INTERNAL, 502.
    pub fn error(&self, pool: &DescriptorPool) -> Option<GatewayError> {
        match self.status.map(str::trim) {
            None => Some(upstream_fault(
                "the backend ended the reply without grpc-status",
            )),
            Some("0") => None,
            Some(status) => Some(error_from_grpc(
                pool,
                status,
                self.message,
                self.details_bin,
            )),
        }
    }
}

fn upstream_fault(message: &str) -> GatewayError {
    UpstreamError::Broken(message.to_string()).into()
}

/// A unary reply at its end (all body chunks pushed into `decoder`): the body and
/// content-type for the client, or the error to answer with. OK needs exactly one complete
/// message; zero, several or a truncated frame are INTERNAL (502).
pub fn finish_unary(
    pool: &DescriptorPool,
    plan: &ResponsePlan,
    decoder: &mut FrameDecoder,
    end: &GrpcEnd<'_>,
    format: ResponseFormat,
    opts: &PrintOptions,
) -> Result<(Vec<u8>, String), GatewayError> {
    if let Some(error) = end.error(pool) {
        return Err(error);
    }
    let first = decoder.next_message().map_err(|e| e.to_upstream_error())?;
    let Some(message) = first else {
        decoder.finish().map_err(|e| e.to_upstream_error())?;
        return Err(upstream_fault(
            "the backend answered OK without a reply message",
        ));
    };
    match decoder.next_message() {
        Ok(None) => {}
        Ok(Some(_)) => {
            return Err(upstream_fault(
                "the backend sent more than one message for a unary method",
            ))
        }
        Err(e) => return Err(e.to_upstream_error()),
    }
    decoder.finish().map_err(|e| e.to_upstream_error())?;
    render_response(plan, &message, format, opts)
}

/// Every complete message of a server stream now buffered in `decoder`, rendered as JSON and
/// framed by `writer`: the bytes to forward for this chunk, and the error that stopped it if
/// one did (a bad frame or message). Bytes rendered before the error are still returned: the
/// writer already counted them, so they must reach the client. After an error the caller
/// forwards the bytes, then ends the stream with [`finish_stream`] passing the error.
pub fn stream_messages(
    plan: &ResponsePlan,
    decoder: &mut FrameDecoder,
    writer: &mut StreamWriter,
    opts: &PrintOptions,
) -> (Vec<u8>, Option<GatewayError>) {
    let mut out = Vec::new();
    loop {
        let message = match decoder.next_message() {
            Ok(Some(m)) => m,
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e.to_upstream_error())),
        };
        match render_response(plan, &message, ResponseFormat::Json, opts) {
            Ok((data, content_type)) if writer.is_http_body() => {
                out.extend(writer.http_body_chunk(&data, &content_type));
            }
            Ok((json, _)) => out.extend(writer.message(&json)),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// The bytes that end a server stream: the writer's closing, with the stream's error in-band
/// when the backend failed (`end`), the frames were cut (`decoder`), or the caller already
/// hit an error (`failure`, e.g. from [`stream_messages`]).
pub fn finish_stream(
    pool: &DescriptorPool,
    decoder: &FrameDecoder,
    writer: &mut StreamWriter,
    end: &GrpcEnd<'_>,
    failure: Option<&GatewayError>,
) -> Vec<u8> {
    let mut error = stream_error(pool, decoder, end, failure);
    if let Some(e) = &mut error {
        print_details(pool, e, writer.details_print());
    }
    writer.finish(error.as_ref())
}

/// The error that ends a server stream, if any: the caller's `failure`, frames cut short, or
/// the backend's status (see [`finish_stream`]).
pub fn stream_error(
    pool: &DescriptorPool,
    decoder: &FrameDecoder,
    end: &GrpcEnd<'_>,
    failure: Option<&GatewayError>,
) -> Option<GatewayError> {
    failure
        .cloned()
        .or_else(|| decoder.finish().err().map(|e| e.to_upstream_error()))
        .or_else(|| end.error(pool))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Code;
    use crate::transcode::frame::encode_frame;
    use crate::transcode::response_fixtures::{demo_pool, encoded};
    use crate::transcode::stream::StreamFormat;
    use serde_json::Value;

    const OK: GrpcEnd<'static> = GrpcEnd {
        status: Some("0"),
        message: None,
        details_bin: None,
    };

    fn plan(method: &str) -> ResponsePlan {
        let pool = demo_pool();
        let m = pool
            .get_service_by_name("meshgate.demo.v1.Payments")
            .unwrap()
            .methods()
            .find(|m| m.name() == method)
            .unwrap();
        ResponsePlan::compile(&m, None).unwrap()
    }

    fn document(id: &str) -> Vec<u8> {
        let json = format!(r#"{{"path": "{id}", "content": "c"}}"#);
        encode_frame(&encoded(&demo_pool(), "meshgate.demo.v1.Document", &json))
    }

    fn unary(body: &[u8], end: &GrpcEnd<'_>) -> Result<(Vec<u8>, String), GatewayError> {
        let mut d = FrameDecoder::default();
        d.push(body);
        let opts = PrintOptions::default();
        finish_unary(
            &demo_pool(),
            &plan("GetDocument"),
            &mut d,
            end,
            ResponseFormat::Json,
            &opts,
        )
    }

    #[test]
    fn ok_with_one_message_renders_it() {
        let (body, ct) = unary(&document("a/b"), &OK).unwrap();
        assert_eq!(ct, "application/json");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["path"], "a/b");
    }

    #[test]
    fn ok_without_a_message_is_a_bad_gateway() {
        let e = unary(b"", &OK).unwrap_err();
        assert_eq!((e.code, e.status()), (Code::Internal, 502));
        assert!(e.message.contains("without a reply message"));
    }

    #[test]
    fn two_messages_on_a_unary_method_are_refused() {
        let mut body = document("a");
        body.extend(document("b"));
        let e = unary(&body, &OK).unwrap_err();
        assert!(e.message.contains("more than one message"), "{}", e.message);
    }

    #[test]
    fn truncated_reply_is_refused() {
        let mut body = document("a");
        body.extend_from_slice(&[0, 0, 0]);
        assert_eq!(unary(&body, &OK).unwrap_err().status(), 502);
        let whole = document("a");
        let e = unary(&whole[..whole.len() - 1], &OK).unwrap_err();
        assert!(e.message.contains("ended inside a frame"), "{}", e.message);
    }

    #[test]
    fn grpc_error_wins_over_the_body() {
        let end = GrpcEnd {
            status: Some("5"),
            message: Some("no such document"),
            details_bin: None,
        };
        let e = unary(&document("a"), &end).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (Code::NotFound, "no such document")
        );
    }

    #[test]
    fn missing_grpc_status_is_a_bad_gateway() {
        let e = unary(&document("a"), &GrpcEnd::default()).unwrap_err();
        assert_eq!((e.code, e.status()), (Code::Internal, 502));
    }

    #[test]
    fn stream_forwards_messages_as_they_complete() {
        let p = plan("GetDocument");
        let opts = PrintOptions::default();
        let mut d = FrameDecoder::default();
        let mut w = StreamWriter::new(StreamFormat::Ndjson);
        let mut stream = document("one");
        stream.extend(document("two"));
        let (first, second) = stream.split_at(stream.len() - 3);
        d.push(first);
        let (out, err) = stream_messages(&p, &mut d, &mut w, &opts);
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 1);
        assert!(err.is_none());
        d.push(second);
        let (out, _) = stream_messages(&p, &mut d, &mut w, &opts);
        assert!(String::from_utf8(out).unwrap().contains("\"two\""));
        assert!(finish_stream(&demo_pool(), &d, &mut w, &OK, None).is_empty());
    }

    #[test]
    fn stream_error_from_trailers_is_reported_in_band() {
        let mut d = FrameDecoder::default();
        let mut w = StreamWriter::new(StreamFormat::JsonArray);
        d.push(&document("one"));
        let p = plan("GetDocument");
        let (mut body, _) = stream_messages(&p, &mut d, &mut w, &PrintOptions::default());
        let end = GrpcEnd {
            status: Some("14"),
            message: Some("backend%20restarting"),
            details_bin: None,
        };
        body.extend(finish_stream(&demo_pool(), &d, &mut w, &end, None));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v[0]["path"], "one");
        assert_eq!(v[1]["error"]["code"], 14);
        assert_eq!(v[1]["error"]["message"], "backend restarting");
    }

    #[test]
    fn stream_cut_inside_a_frame_ends_with_an_error() {
        let mut d = FrameDecoder::default();
        let mut w = StreamWriter::new(StreamFormat::JsonArray);
        d.push(&[0, 0, 0, 0, 9, 1]);
        let p = plan("GetDocument");
        let (out, err) = stream_messages(&p, &mut d, &mut w, &PrintOptions::default());
        assert!(out.is_empty() && err.is_none());
        let body = finish_stream(&demo_pool(), &d, &mut w, &OK, None);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v[0]["error"]["code"], 13);
    }

    #[test]
    fn stream_message_error_keeps_what_was_rendered_before_it() {
        let mut d = FrameDecoder::default();
        let mut w = StreamWriter::new(StreamFormat::JsonArray);
        d.push(&document("one"));
        d.push(&encode_frame(&[0xff]));
        let p = plan("GetDocument");
        let (mut body, err) = stream_messages(&p, &mut d, &mut w, &PrintOptions::default());
        let err = err.unwrap();
        assert_eq!(err.status(), 502);
        body.extend(finish_stream(&demo_pool(), &d, &mut w, &OK, Some(&err)));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v[0]["path"], "one");
        assert_eq!(v[1]["error"]["code"], 13);
    }

    #[test]
    fn sse_stream_error_is_an_error_event() {
        let mut d = FrameDecoder::default();
        let mut w = StreamWriter::new(StreamFormat::Sse);
        d.push(&[2, 0, 0, 0, 0]);
        let p = plan("GetDocument");
        let (out, err) = stream_messages(&p, &mut d, &mut w, &PrintOptions::default());
        assert!(out.is_empty());
        let body = finish_stream(&demo_pool(), &d, &mut w, &OK, err.as_ref());
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with("event: error\ndata: "), "{text}");
        assert!(text.contains("flags byte 0x02"), "{text}");
    }
}
