//! Upstream failures -> the gateway's one error shape ([`GatewayError`]).
//!
//! Two sources: a gRPC error (`grpc-status`, `grpc-message`, `grpc-status-details-bin`, from the
//! backend) and a plain HTTP error made by Envoy's router or a non-gRPC upstream (503 "no healthy
//! upstream", 504 "upstream request timeout"). Header values come from the network: garbage in
//! any of them degrades to what can still be read, never to a panic.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use serde_json::{json, Map, Value};

use super::print::{message_to_value, PrintOptions};
use crate::status::{percent_decode_grpc, AnyProto, Code, GatewayError, RpcStatus, UpstreamError};

/// Longest piece of an upstream's text quoted in an error message.
const MAX_QUOTED_CHARS: usize = 256;

/// gRPC sends `-bin` headers unpadded; some implementations pad. Accept both.
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Well-known types whose JSON form is not an object: inside an `Any` they go under `value`.
const WKT_WITH_VALUE: [&str; 16] = [
    "google.protobuf.Any",
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.Struct",
    "google.protobuf.Value",
    "google.protobuf.ListValue",
    "google.protobuf.FieldMask",
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
];

/// A gRPC error from its three headers (or trailers).
///
/// - `grpc_status`: a number as text; anything else (`"abc"`) is UNKNOWN, out-of-range numbers
///   (`"99"`) too, as gRPC specifies.
/// - `details_bin`: base64 (padded or not) of a `google.rpc.Status`. When its code is
///   `grpc-status`'s it is the answer, as gRPC's own libraries read it: its message (when not
///   empty) and its details. Its `details` are kept as they are for binary clients
///   (`details_bin`) and rendered as JSON for JSON clients: an `Any` whose type is in `pool`
///   prints as its JSON with `@type`; any other as `{"@type": url, "value": base64}`. A details
///   Status that does not decode, or whose code differs, is ignored whole ([`details_problem`]
///   says why, for the log): the code and `grpc-message` stand.
/// - `grpc_message`: percent-decoded; used when the details give no message; else a message
///   naming the code.
pub fn error_from_grpc(
    pool: &DescriptorPool,
    grpc_status: &str,
    grpc_message: Option<&str>,
    details_bin: Option<&str>,
) -> GatewayError {
    let parsed = grpc_status.trim().parse::<i32>().ok();
    let code = parsed.map(Code::from_i32).unwrap_or(Code::Unknown);
    let status = details_status(grpc_status, details_bin).ok().flatten();
    let grpc_message = grpc_message.filter(|m| !m.trim().is_empty());
    let message = match (grpc_message, &status) {
        (_, Some(s)) if !s.message.is_empty() => s.message.clone(),
        (Some(m), _) => percent_decode_grpc(m),
        (None, _) if parsed.is_none() => format!(
            "the backend sent an invalid grpc-status \"{}\"",
            quote(grpc_status.as_bytes())
        ),
        (None, _) => format!("the backend answered {}", code.name()),
    };
    let mut error = GatewayError::new(code, message);
    if let Some(status) = status {
        error.details = status
            .details
            .iter()
            .map(|d| any_to_json(pool, d))
            .collect();
        error.details_bin = status.details;
    }
    error
}

/// The Status `grpc-status-details-bin` carries, when it is the answer: `Ok(None)` without
/// one, `Ok(Some)` when it decodes and its code is `grpc_status`, `Err(why)` otherwise.
pub fn details_status(
    grpc_status: &str,
    details_bin: Option<&str>,
) -> Result<Option<RpcStatus>, String> {
    let Some(b64) = details_bin else {
        return Ok(None);
    };
    let status = decode_status(b64).ok_or_else(|| "not a base64 google.rpc.Status".to_string())?;
    let code = grpc_status.trim().parse::<i32>().ok();
    if code != Some(status.code) {
        return Err(format!(
            "its code {} is not grpc-status {:?}",
            status.code,
            quote(grpc_status.as_bytes())
        ));
    }
    Ok(Some(status))
}

/// Why a `grpc-status-details-bin` next to `grpc_status` is ignored, if it is (for the log).
pub fn details_problem(grpc_status: &str, details_bin: Option<&str>) -> Option<String> {
    details_status(grpc_status, details_bin).err()
}

/// `grpc-status-details-bin` -> Status; `None` for anything that is not one.
fn decode_status(b64: &str) -> Option<RpcStatus> {
    let b64 = b64.trim();
    let bytes = STANDARD_LENIENT
        .decode(b64)
        .or_else(|_| URL_SAFE_LENIENT.decode(b64))
        .ok()?;
    RpcStatus::decode(bytes.as_slice()).ok()
}

/// One `Any` as JSON: its message with `@type` when the pool knows the type (and the bytes
/// decode), otherwise the raw form.
pub fn any_to_json(pool: &DescriptorPool, any: &AnyProto) -> Value {
    known_any_to_json(pool, any, &SerializeOptions::new()).unwrap_or_else(|| {
        json!({
            "@type": any.type_url,
            "value": base64::engine::general_purpose::STANDARD.encode(&any.value),
        })
    })
}

/// An error's `details` printed with the configured print options (field names, enums,
/// defaults), as the messages of a reply are: each detail whose binary form the pool can read
/// is printed again from it; the others (and errors whose JSON and binary details do not pair
/// up) keep the JSON they have. Nothing changes under proto3 JSON's defaults, which is how the
/// details were first printed.
pub fn print_details(pool: &DescriptorPool, err: &mut GatewayError, opts: &PrintOptions) {
    let defaults = PrintOptions {
        add_whitespace: opts.add_whitespace,
        ..PrintOptions::default()
    };
    if *opts == defaults || err.details.len() != err.details_bin.len() {
        return;
    }
    let options = opts.serialize_options();
    for (json, any) in err.details.iter_mut().zip(&err.details_bin) {
        if let Some(v) = known_any_to_json(pool, any, &options) {
            *json = v;
        }
    }
}

fn known_any_to_json(
    pool: &DescriptorPool,
    any: &AnyProto,
    options: &SerializeOptions,
) -> Option<Value> {
    let name = any.type_url.rsplit('/').next().unwrap_or_default();
    let desc = pool.get_message_by_name(name)?;
    let msg = DynamicMessage::decode(desc, any.value.as_slice()).ok()?;
    let value = message_to_value(&msg, options).ok()?;
    let type_url = Value::String(any.type_url.clone());
    match value {
        Value::Object(fields) if !WKT_WITH_VALUE.contains(&name) => {
            let mut out = Map::new();
            out.insert("@type".to_string(), type_url);
            out.extend(fields);
            Some(Value::Object(out))
        }
        other => Some(json!({"@type": type_url, "value": other})),
    }
}

/// An error made by Envoy's router or a non-gRPC upstream: HTTP `status` and its body.
///
/// The code follows gRPC's HTTP -> gRPC mapping ([`Code::from_http_status`]) and the HTTP
/// status is that code's (503 UNAVAILABLE, 504 DEADLINE_EXCEEDED, 502 -> UNAVAILABLE 503...).
/// One exception: a 2xx that is not gRPC (a plain-HTTP server where a gRPC one was expected) is
/// UNKNOWN, as gRPC specifies, answered 502 rather than 500 because the upstream is at fault.
/// The message quotes the body when it is text (at most 256 characters).
pub fn error_from_http(status: u16, body: &[u8], content_type: Option<&str>) -> GatewayError {
    if let Some(error) = status_json(status, body, content_type) {
        return error;
    }
    let mut message = if status == 408 {
        // Envoy's `request_timeout`: the client did not send the whole request in time.
        "the request did not arrive within the gateway's request timeout (HTTP 408)".to_string()
    } else {
        format!("the proxy or upstream answered HTTP {status} instead of gRPC")
    };
    if let Some(text) = body_text(body, content_type) {
        message.push_str(": ");
        message.push_str(&text);
    } else if !body.is_empty() {
        let of = content_type
            .map(|c| format!(" of {}", quote(c.as_bytes())))
            .unwrap_or_default();
        message.push_str(&format!(" ({} bytes{of})", body.len()));
    }
    // A 2xx that is not gRPC is a broken upstream (502); a 413 is Envoy refusing the request
    // body before the filter saw all of it (the client sees 413, not RESOURCE_EXHAUSTED's 429),
    // a 408 its request timeout while the body was still arriving (408, not 504).
    UpstreamError::Http { status, message }.into()
}

/// An error reply that is already a `google.rpc.Status` in JSON (`{"code": N, "message": ..}`,
/// as Envoy's local replies are rendered by `meshgate envoy`'s `local_reply_config`): kept as
/// it is, with its HTTP status, rather than quoted inside another Status.
fn status_json(status: u16, body: &[u8], content_type: Option<&str>) -> Option<GatewayError> {
    if status < 400 || !content_type.is_some_and(|ct| ct.contains("json")) {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object()?;
    let code = obj.get("code")?.as_i64().filter(|c| (1..=16).contains(c))?;
    let message = obj.get("message")?.as_str()?;
    let code = Code::from_i32(i32::try_from(code).ok()?);
    Some(
        UpstreamError::Relayed {
            status,
            code,
            message: message.to_string(),
        }
        .into(),
    )
}

/// The body as one line of text, when it is text: no content type or a textual one, valid
/// UTF-8, not empty after trimming.
fn body_text(body: &[u8], content_type: Option<&str>) -> Option<String> {
    let textual = content_type.is_none_or(|ct| {
        let ct = ct.trim().to_ascii_lowercase();
        ct.starts_with("text/") || ct.contains("json") || ct.contains("xml")
    });
    if !textual {
        return None;
    }
    let head = body.get(..MAX_QUOTED_CHARS * 4).unwrap_or(body);
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        // A cut through a multi-byte character at the end is fine; other errors mean binary.
        Err(e) if e.error_len().is_none() => head
            .get(..e.valid_up_to())
            .and_then(|h| std::str::from_utf8(h).ok())
            .unwrap_or_default(),
        Err(_) => return None,
    };
    let text = quote(text.trim().as_bytes());
    (!text.is_empty()).then_some(text)
}

/// Text safe to put in a message: control characters become spaces, at most
/// [`MAX_QUOTED_CHARS`] characters (an ellipsis marks a cut).
fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text
        .chars()
        .take(MAX_QUOTED_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(MAX_QUOTED_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::BodyFormat;
    use crate::transcode::response_fixtures::{demo_pool, encoded};
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

    fn bad_request_any() -> AnyProto {
        AnyProto {
            type_url: "type.googleapis.com/google.rpc.BadRequest".into(),
            value: encoded(
                &demo_pool(),
                "google.rpc.BadRequest",
                r#"{"fieldViolations": [{"field": "amount", "description": "must be > 0"}]}"#,
            ),
        }
    }

    fn status_b64(details: Vec<AnyProto>, padded: bool) -> String {
        status_b64_with(3, "status message", details, padded)
    }

    fn status_b64_with(code: i32, message: &str, details: Vec<AnyProto>, padded: bool) -> String {
        let status = RpcStatus {
            code,
            message: message.into(),
            details,
        };
        let bytes = status.encode_to_vec();
        if padded {
            STANDARD.encode(bytes)
        } else {
            STANDARD_NO_PAD.encode(bytes)
        }
    }

    #[test]
    fn details_follow_the_print_options() {
        let pool = demo_pool();
        let b64 = status_b64(vec![bad_request_any()], false);
        let from_backend = error_from_grpc(&pool, "3", None, Some(&b64));
        let own = crate::transcode::bad_request::field_error("payment.amount", "");
        for (err, field) in [(from_backend, "amount"), (own, "payment.amount")] {
            // Proto3 JSON's defaults: printed as they were (lowerCamelCase, defaults omitted).
            let mut same = err.clone();
            print_details(&pool, &mut same, &PrintOptions::default());
            assert_eq!(same.details, err.details);
            assert!(err.details[0].get("fieldViolations").is_some(), "{err:?}");
            let mut snake = err.clone();
            let opts = PrintOptions {
                preserve_proto_field_names: true,
                always_print_primitive_fields: true,
                ..PrintOptions::default()
            };
            print_details(&pool, &mut snake, &opts);
            let d = &snake.details[0];
            assert_eq!(
                d["@type"], "type.googleapis.com/google.rpc.BadRequest",
                "{d}"
            );
            assert!(d.get("fieldViolations").is_none(), "{d}");
            assert_eq!(d["field_violations"][0]["field"], field, "{d}");
            assert!(d["field_violations"][0].get("description").is_some(), "{d}");
            assert_eq!(snake.details_bin, err.details_bin);
        }
    }

    #[test]
    fn details_the_pool_cannot_read_keep_their_json() {
        let pool = demo_pool();
        let mut err = crate::transcode::bad_request::field_error("id", "missing");
        err.details_bin[0].type_url = "type.googleapis.com/x.Unknown".into();
        let before = err.details.clone();
        let opts = PrintOptions {
            preserve_proto_field_names: true,
            ..PrintOptions::default()
        };
        print_details(&pool, &mut err, &opts);
        assert_eq!(err.details, before);
    }

    #[test]
    fn status_and_percent_encoded_message_are_read() {
        let e = error_from_grpc(&demo_pool(), "5", Some("payment%20pay_9%20not found"), None);
        assert_eq!(e.code, Code::NotFound);
        assert_eq!(e.message, "payment pay_9 not found");
        assert_eq!(e.status(), 404);
        assert!(e.details.is_empty() && e.details_bin.is_empty());
    }

    #[test]
    fn known_detail_types_render_as_json_with_type() {
        let any = bad_request_any();
        for padded in [true, false] {
            let b64 = status_b64(vec![any.clone()], padded);
            let e = error_from_grpc(&demo_pool(), "3", Some("invalid"), Some(&b64));
            assert_eq!(e.code, Code::InvalidArgument);
            assert_eq!(
                e.details,
                vec![json!({
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [{"field": "amount", "description": "must be > 0"}]
                })]
            );
            assert_eq!(e.details_bin, vec![any.clone()]);
        }
    }

    #[test]
    fn binary_details_reach_protobuf_clients_unchanged() {
        let b64 = status_b64(vec![bad_request_any()], false);
        let e = error_from_grpc(&demo_pool(), "3", Some("invalid"), Some(&b64));
        let (_, _, body) = e.to_response(BodyFormat::Protobuf);
        let s = RpcStatus::decode(body.as_slice()).unwrap();
        assert_eq!(s.details, vec![bad_request_any()]);
    }

    #[test]
    fn error_info_and_wkt_details_render() {
        let pool = demo_pool();
        let info = AnyProto {
            type_url: "type.googleapis.com/google.rpc.ErrorInfo".into(),
            value: encoded(
                &pool,
                "google.rpc.ErrorInfo",
                r#"{"reason": "QUOTA", "domain": "pay.example", "metadata": {"k": "v"}}"#,
            ),
        };
        let duration = AnyProto {
            type_url: "type.googleapis.com/google.protobuf.Duration".into(),
            value: encoded(&pool, "google.protobuf.Duration", r#""3s""#),
        };
        let structure = AnyProto {
            type_url: "type.googleapis.com/google.protobuf.Struct".into(),
            value: encoded(&pool, "google.protobuf.Struct", r#"{"retry": true}"#),
        };
        let b64 = status_b64_with(8, "status message", vec![info, duration, structure], false);
        let e = error_from_grpc(&pool, "8", None, Some(&b64));
        assert_eq!(e.message, "status message");
        assert_eq!(e.details[0]["reason"], "QUOTA");
        assert_eq!(e.details[0]["metadata"]["k"], "v");
        assert_eq!(
            e.details[1],
            json!({"@type": "type.googleapis.com/google.protobuf.Duration", "value": "3s"})
        );
        assert_eq!(
            e.details[2],
            json!({"@type": "type.googleapis.com/google.protobuf.Struct", "value": {"retry": true}})
        );
    }

    #[test]
    fn unknown_detail_type_keeps_url_and_base64_value() {
        let any = AnyProto {
            type_url: "type.googleapis.com/acme.v1.Secret".into(),
            value: vec![0x08, 0x01],
        };
        let b64 = status_b64_with(7, "no", vec![any], true);
        let e = error_from_grpc(&demo_pool(), "7", Some("no"), Some(&b64));
        assert_eq!(
            e.details,
            vec![json!({"@type": "type.googleapis.com/acme.v1.Secret", "value": "CAE="})]
        );
        assert_eq!(e.details_bin.len(), 1);
    }

    #[test]
    fn known_type_with_undecodable_bytes_falls_back_to_raw() {
        let any = AnyProto {
            type_url: "type.googleapis.com/google.rpc.BadRequest".into(),
            value: vec![0x0a, 0x09],
        };
        let e = error_from_grpc(&demo_pool(), "3", None, Some(&status_b64(vec![any], false)));
        assert_eq!(e.details[0]["value"], "Cgk=");
    }

    #[test]
    fn details_status_with_the_same_code_is_the_answer() {
        let b64 = status_b64_with(3, "amount: must be > 0", vec![bad_request_any()], false);
        let e = error_from_grpc(&demo_pool(), "3", Some("bad%20request"), Some(&b64));
        assert_eq!(e.code, Code::InvalidArgument);
        assert_eq!(
            e.message, "amount: must be > 0",
            "the details' message wins"
        );
        assert_eq!(e.details_bin, vec![bad_request_any()]);
        assert!(details_problem("3", Some(&b64)).is_none());
        // An empty message in the details leaves grpc-message's.
        let b64 = status_b64_with(3, "", vec![bad_request_any()], false);
        let e = error_from_grpc(&demo_pool(), "3", Some("bad%20request"), Some(&b64));
        assert_eq!(e.message, "bad request");
        assert_eq!(e.details.len(), 1);
    }

    #[test]
    fn details_status_with_another_code_is_ignored_and_named() {
        let b64 = status_b64_with(5, "not found", vec![bad_request_any()], false);
        let e = error_from_grpc(&demo_pool(), "14", Some("down"), Some(&b64));
        assert_eq!((e.code, e.message.as_str()), (Code::Unavailable, "down"));
        assert!(e.details.is_empty() && e.details_bin.is_empty());
        let why = details_problem("14", Some(&b64)).unwrap();
        assert_eq!(why, "its code 5 is not grpc-status \"14\"");
        let why = details_problem("14", Some("!!")).unwrap();
        assert!(why.contains("not a base64"), "{why}");
        assert!(details_problem("14", None).is_none());
    }

    #[test]
    fn garbage_details_fall_back_to_code_and_message() {
        for garbage in ["!!!not base64!!!", "AAAA", "/w==", "", "ç"] {
            let e = error_from_grpc(&demo_pool(), "14", Some("down"), Some(garbage));
            assert_eq!(e.code, Code::Unavailable, "{garbage}");
            assert_eq!(e.message, "down");
            assert!(
                e.details.is_empty() && e.details_bin.is_empty(),
                "{garbage}"
            );
        }
    }

    #[test]
    fn non_numeric_status_is_unknown() {
        let e = error_from_grpc(&demo_pool(), "abc", None, None);
        assert_eq!(e.code, Code::Unknown);
        assert!(
            e.message.contains("invalid grpc-status \"abc\""),
            "{}",
            e.message
        );
        let e = error_from_grpc(&demo_pool(), "abc", Some("boom"), None);
        assert_eq!((e.code, e.message.as_str()), (Code::Unknown, "boom"));
        let e = error_from_grpc(&demo_pool(), "13", Some(""), None);
        assert_eq!(e.message, "the backend answered INTERNAL");
    }

    #[test]
    fn out_of_range_status_is_unknown() {
        let e = error_from_grpc(&demo_pool(), "99", None, None);
        assert_eq!(e.code, Code::Unknown);
        assert_eq!(e.status(), 500);
        assert_eq!(e.message, "the backend answered UNKNOWN");
        assert_eq!(
            error_from_grpc(&demo_pool(), " 16 ", None, None).code,
            Code::Unauthenticated
        );
    }

    #[test]
    fn envoy_no_healthy_upstream_is_unavailable() {
        let e = error_from_http(503, b"no healthy upstream", Some("text/plain"));
        assert_eq!((e.code, e.status()), (Code::Unavailable, 503));
        assert!(e.message.contains("HTTP 503"), "{}", e.message);
        assert!(
            e.message.ends_with(": no healthy upstream"),
            "{}",
            e.message
        );
    }

    #[test]
    fn upstream_timeout_is_deadline_exceeded() {
        let e = error_from_http(504, b"upstream request timeout", None);
        assert_eq!((e.code, e.status()), (Code::DeadlineExceeded, 504));
    }

    #[test]
    fn a_request_timeout_stays_408_and_blames_the_request() {
        let e = error_from_http(408, b"request timeout", Some("text/plain"));
        assert_eq!((e.code, e.status()), (Code::DeadlineExceeded, 408));
        assert!(e.message.contains("did not arrive"), "{}", e.message);
        assert!(!e.message.contains("upstream"), "{}", e.message);
    }

    #[test]
    fn other_statuses_follow_the_grpc_mapping() {
        assert_eq!(error_from_http(502, b"", None).status(), 503);
        assert_eq!(error_from_http(404, b"", None).code, Code::Unimplemented);
        assert_eq!(error_from_http(418, b"", None).code, Code::Unknown);
        let e = error_from_http(200, b"<html>hi</html>", Some("text/html"));
        assert_eq!((e.code, e.status()), (Code::Unknown, 502));
    }

    #[test]
    fn long_or_binary_bodies_are_not_quoted_whole() {
        let long = "x".repeat(10_000);
        let e = error_from_http(503, long.as_bytes(), Some("text/plain"));
        assert!(e.message.chars().count() < 400, "{}", e.message.len());
        assert!(e.message.ends_with('…'));
        let e = error_from_http(503, &[0xff, 0x00, 0x12], Some("application/octet-stream"));
        assert!(
            e.message.ends_with("(3 bytes of application/octet-stream)"),
            "{}",
            e.message
        );
        let e = error_from_http(503, &[0xff, 0xfe], None);
        assert!(e.message.ends_with("gRPC (2 bytes)"), "{}", e.message);
        let e = error_from_http(503, "line1\nline2\u{7}".as_bytes(), None);
        assert!(e.message.ends_with("line1 line2 "), "{:?}", e.message);
    }

    #[test]
    fn a_status_json_error_reply_is_kept_as_it_is() {
        let json = Some("application/json");
        let body = br#"{"code":4,"message":"upstream request timeout"}"#;
        let e = error_from_http(504, body, json);
        assert_eq!((e.code, e.status()), (Code::DeadlineExceeded, 504));
        assert_eq!(e.message, "upstream request timeout");
        // Not a Status: quoted as before.
        for (status, body, ct) in [
            (504, &br#"{"code":"x","message":"m"}"#[..], json),
            (504, &br#"{"code":99,"message":"m"}"#[..], json),
            (504, &br#"{"code":4}"#[..], json),
            (504, &br#"{"code":4,"message":"m"}"#[..], Some("text/plain")),
            (200, &br#"{"code":4,"message":"m"}"#[..], json),
        ] {
            let e = error_from_http(status, body, ct);
            assert!(e.message.contains("instead of gRPC"), "{:?}", e.message);
        }
    }
}
