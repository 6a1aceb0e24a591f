//! A gRPC reply message -> the HTTP response body (JSON or binary protobuf).
//!
//! What the body is, is decided once per operation at configuration time ([`ResponsePlan`]):
//! the whole reply, or one field of it (`google.api.http` `response_body`), and whether that is
//! a `google.api.HttpBody` whose bytes go out raw. Rendering is then a pure function of one
//! unframed reply message.

use prost::Message;
use prost_reflect::{
    Cardinality, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    ReflectMessage, Value,
};

use super::print::{message_to_json, message_to_value, value_to_json, PrintOptions};
use crate::status::{Code, GatewayError, UpstreamError};

/// `google.api.HttpBody`: a reply whose body is raw bytes with their own content type.
const HTTP_BODY: &str = "google.api.HttpBody";
/// Content type for protobuf clients (the one `crate::status` answers errors with).
pub const PROTOBUF_CONTENT_TYPE: &str = "application/x-protobuf";
pub const JSON_CONTENT_TYPE: &str = "application/json";
/// For an HttpBody reply that names no content type.
pub const DEFAULT_HTTP_BODY_CONTENT_TYPE: &str = "application/octet-stream";

/// What the client asked for (its `content-type`/`accept`): the caller decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    Json,
    Protobuf,
}

/// How one operation's replies become HTTP bodies; compiled once per VM.
#[derive(Debug, Clone)]
pub struct ResponsePlan {
    output: MessageDescriptor,
    /// `response_body` as field descriptors, outermost first; empty for the whole reply.
    body_path: Vec<FieldDescriptor>,
    /// `response_body` as written, for error messages.
    body_name: Option<String>,
    /// The body (whole reply or `response_body` field) is a `google.api.HttpBody`.
    http_body: bool,
}

impl ResponsePlan {
    /// Validate `response_body` (a dotted field path; each step but the last a singular
    /// message field) against the method's output type.
    pub fn compile(
        method: &MethodDescriptor,
        response_body: Option<&str>,
    ) -> Result<ResponsePlan, String> {
        Self::for_output(method.output(), response_body)
    }

    /// [`ResponsePlan::compile`] for a message type rather than a method.
    fn for_output(
        output: MessageDescriptor,
        response_body: Option<&str>,
    ) -> Result<ResponsePlan, String> {
        let name = response_body.map(str::trim).filter(|s| !s.is_empty());
        let body_path = match name {
            Some(path) => resolve_path(&output, path)?,
            None => Vec::new(),
        };
        let http_body = match body_path.last() {
            None => output.full_name() == HTTP_BODY,
            Some(f) => !f.is_list() && !f.is_map() && is_message(f, HTTP_BODY),
        };
        Ok(ResponsePlan {
            output,
            body_path,
            body_name: name.map(str::to_string),
            http_body,
        })
    }

    /// The reply's message type.
    pub fn output(&self) -> &MessageDescriptor {
        &self.output
    }

    /// `response_body` as configured (trimmed), `None` for the whole reply.
    pub fn response_body(&self) -> Option<&str> {
        self.body_name.as_deref()
    }

    /// Replies go out raw (HttpBody), not as JSON or protobuf.
    pub fn is_http_body(&self) -> bool {
        self.http_body
    }
}

fn is_message(field: &FieldDescriptor, full_name: &str) -> bool {
    matches!(field.kind(), Kind::Message(m) if m.full_name() == full_name)
}

/// `a.b.c` -> the fields, checking each step.
fn resolve_path(output: &MessageDescriptor, path: &str) -> Result<Vec<FieldDescriptor>, String> {
    let mut fields = Vec::new();
    let mut current = output.clone();
    let mut segments = path.split('.').peekable();
    while let Some(segment) = segments.next() {
        let field = current.get_field_by_name(segment).ok_or_else(|| {
            format!(
                "response_body '{path}': no field '{segment}' in {}",
                current.full_name()
            )
        })?;
        if segments.peek().is_some() {
            current = match field.kind() {
                Kind::Message(m) if field.cardinality() != Cardinality::Repeated => m,
                _ => {
                    return Err(format!(
                        "response_body '{path}': '{segment}' is not a singular message field"
                    ))
                }
            };
        }
        fields.push(field);
    }
    Ok(fields)
}

/// One unframed gRPC reply message -> (body bytes, content-type).
///
/// - JSON: the reply (or its `response_body` field) printed with `opts`.
/// - Protobuf: the reply bytes unchanged (unknown fields survive), or the `response_body`
///   field's message re-encoded. A non-message `response_body` field has no protobuf form:
///   UNIMPLEMENTED (501), telling the client to ask for JSON.
/// - HttpBody (either format): its `data`, with its own `content_type`
///   ([`DEFAULT_HTTP_BODY_CONTENT_TYPE`] when empty).
///
/// A reply that does not decode as the output type is the backend's fault: INTERNAL with HTTP
/// 502 (Bad Gateway) rather than 500, so dashboards tell it apart from gateway bugs. A reply
/// that decodes but cannot be printed (an `Any` of a type the descriptor set lacks) is a
/// configuration gap: INTERNAL, 500.
pub fn render_response(
    plan: &ResponsePlan,
    message: &[u8],
    format: ResponseFormat,
    opts: &PrintOptions,
) -> Result<(Vec<u8>, String), GatewayError> {
    let reply = DynamicMessage::decode(plan.output.clone(), message).map_err(|e| {
        GatewayError::from(UpstreamError::Broken(format!(
            "the backend sent an invalid {} message: {e}",
            plan.output.full_name()
        )))
    })?;
    let Some((parent, field)) = select_parent(plan, &reply) else {
        return render_whole(plan, &reply, message, format, opts);
    };
    render_field(plan, &parent, field, format, opts)
}

/// The whole reply.
fn render_whole(
    plan: &ResponsePlan,
    reply: &DynamicMessage,
    raw: &[u8],
    format: ResponseFormat,
    opts: &PrintOptions,
) -> Result<(Vec<u8>, String), GatewayError> {
    if plan.http_body {
        return Ok(http_body(reply));
    }
    match format {
        ResponseFormat::Protobuf => Ok((raw.to_vec(), PROTOBUF_CONTENT_TYPE.to_string())),
        ResponseFormat::Json => {
            let json = message_to_json(reply, opts).map_err(print_error)?;
            Ok((json, JSON_CONTENT_TYPE.to_string()))
        }
    }
}

/// For a `response_body` plan: the message holding the last field (unset intermediate
/// messages read as empty ones) and that field; `None` for a whole-reply plan.
fn select_parent<'p>(
    plan: &'p ResponsePlan,
    reply: &DynamicMessage,
) -> Option<(DynamicMessage, &'p FieldDescriptor)> {
    let (last, steps) = plan.body_path.split_last()?;
    let mut parent = reply.clone();
    for step in steps {
        // An unset message field reads as its default (empty) message.
        let next = parent.get_field(step).as_message().cloned();
        parent = match (next, step.kind()) {
            (Some(m), _) => m,
            (None, Kind::Message(m)) => DynamicMessage::new(m),
            (None, _) => return None,
        };
    }
    Some((parent, last))
}

/// The `response_body` field of `parent`.
fn render_field(
    plan: &ResponsePlan,
    parent: &DynamicMessage,
    field: &FieldDescriptor,
    format: ResponseFormat,
    opts: &PrintOptions,
) -> Result<(Vec<u8>, String), GatewayError> {
    let value = parent.get_field(field);
    let singular_message = if field.is_list() || field.is_map() {
        None
    } else {
        value.as_message()
    };
    if let Some(msg) = singular_message {
        if plan.http_body {
            return Ok(http_body(msg));
        }
        return match format {
            ResponseFormat::Protobuf => Ok((msg.encode_to_vec(), PROTOBUF_CONTENT_TYPE.into())),
            ResponseFormat::Json => {
                let json = message_to_json(msg, opts).map_err(print_error)?;
                Ok((json, JSON_CONTENT_TYPE.to_string()))
            }
        };
    }
    match format {
        ResponseFormat::Protobuf => Err(GatewayError::new(
            Code::Unimplemented,
            format!(
                "response_body '{}' is not a message and has no protobuf form; ask for JSON",
                plan.body_name.as_deref().unwrap_or_default()
            ),
        )),
        ResponseFormat::Json => {
            let json = field_to_json(parent, field, &value, opts)?;
            Ok((json, JSON_CONTENT_TYPE.to_string()))
        }
    }
}

/// A non-message field (scalar, enum, repeated, map) as JSON: print a copy of the parent that
/// holds only this field and take its entry, so every JSON rule (int64 as string, enum names,
/// nested WKTs) is prost-reflect's. A field at its default is not printed by default, so its
/// default form comes from printing with defaults on (scalars, `[]`, `{}`: nothing nested whose
/// printing the option would change).
fn field_to_json(
    parent: &DynamicMessage,
    field: &FieldDescriptor,
    value: &Value,
    opts: &PrintOptions,
) -> Result<Vec<u8>, GatewayError> {
    let mut only = DynamicMessage::new(parent.descriptor());
    only.try_set_field(field, value.clone())
        .map_err(|e| GatewayError::new(Code::Internal, format!("response_body: {e}")))?;
    let key = if opts.preserve_proto_field_names {
        field.name()
    } else {
        field.json_name()
    };
    let options = opts.serialize_options();
    let mut tree = message_to_value(&only, &options).map_err(print_error)?;
    let mut entry = tree.get_mut(key).map(serde_json::Value::take);
    if entry.is_none() {
        let with_defaults = options.skip_default_fields(false);
        tree = message_to_value(&only, &with_defaults).map_err(print_error)?;
        entry = tree.get_mut(key).map(serde_json::Value::take);
    }
    Ok(value_to_json(&entry.unwrap_or_default(), opts))
}

/// `google.api.HttpBody` -> (data, content_type). Read by field number so a pool whose
/// HttpBody differs in names still works.
fn http_body(msg: &DynamicMessage) -> (Vec<u8>, String) {
    let content_type = msg
        .get_field_by_number(1)
        .and_then(|v| v.as_str().map(str::to_string))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_HTTP_BODY_CONTENT_TYPE.to_string());
    let data = msg
        .get_field_by_number(2)
        .and_then(|v| v.as_bytes().map(|b| b.to_vec()))
        .unwrap_or_default();
    (data, content_type)
}

fn print_error(e: serde_json::Error) -> GatewayError {
    GatewayError::new(
        Code::Internal,
        format!("the backend's reply cannot be printed as JSON: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcode::response_fixtures::{
        demo_pool, encoded, message as demo_message, payment,
    };
    use prost_reflect::DescriptorPool;
    use serde_json::{json, Value as Json};

    fn method(pool: &DescriptorPool, service: &str, name: &str) -> MethodDescriptor {
        pool.get_service_by_name(&format!("meshgate.demo.v1.{service}"))
            .unwrap()
            .methods()
            .find(|m| m.name() == name)
            .unwrap()
    }

    fn plan(name: &str, response_body: Option<&str>) -> ResponsePlan {
        ResponsePlan::compile(&method(&demo_pool(), "Payments", name), response_body).unwrap()
    }

    fn json_of(plan: &ResponsePlan, msg: &[u8], opts: &PrintOptions) -> Json {
        let (body, ct) = render_response(plan, msg, ResponseFormat::Json, opts).unwrap();
        assert_eq!(ct, "application/json");
        serde_json::from_slice(&body).unwrap()
    }

    const STATUS_REPLY: &str = r#"{"id": "pay_1",
        "status": {"state": "CAPTURED", "updateTime": "2024-05-01T12:00:00Z"}}"#;

    #[test]
    fn whole_reply_is_printed_as_json() {
        let pool = demo_pool();
        let bytes = payment(&pool).encode_to_vec();
        let v = json_of(&plan("GetPayment", None), &bytes, &PrintOptions::default());
        assert_eq!(v["id"], "pay_1");
        assert_eq!(v["amount"]["amountMinor"], "1250");
        assert_eq!(v["items"][0]["quantity"], 2);
    }

    #[test]
    fn print_options_reach_the_rendered_body() {
        let bytes = payment(&demo_pool()).encode_to_vec();
        let opts = PrintOptions {
            always_print_enums_as_ints: true,
            preserve_proto_field_names: true,
            ..PrintOptions::default()
        };
        let v = json_of(&plan("GetPayment", None), &bytes, &opts);
        assert_eq!(v["state"], 2);
        assert_eq!(v["amount"]["amount_minor"], "1250");
    }

    #[test]
    fn protobuf_client_gets_the_reply_bytes_unchanged() {
        let bytes = payment(&demo_pool()).encode_to_vec();
        let mut with_unknown = bytes.clone();
        with_unknown.extend_from_slice(&[0xf8, 0x06, 0x01]); // field 111, varint 1
        let (body, ct) = render_response(
            &plan("GetPayment", None),
            &with_unknown,
            ResponseFormat::Protobuf,
            &PrintOptions::default(),
        )
        .unwrap();
        assert_eq!(ct, "application/x-protobuf");
        assert_eq!(body, with_unknown);
    }

    #[test]
    fn empty_reply_prints_as_empty_object() {
        let v = json_of(&plan("DeletePayment", None), b"", &PrintOptions::default());
        assert_eq!(v, json!({}));
    }

    #[test]
    fn response_body_selects_one_message_field() {
        let pool = demo_pool();
        let p = plan("GetPaymentStatus", Some("status"));
        let bytes = encoded(&pool, "meshgate.demo.v1.PaymentStatusReply", STATUS_REPLY);
        let v = json_of(&p, &bytes, &PrintOptions::default());
        assert_eq!(
            v,
            json!({"state": "CAPTURED", "updateTime": "2024-05-01T12:00:00Z"})
        );
        let (body, ct) = render_response(
            &p,
            &bytes,
            ResponseFormat::Protobuf,
            &PrintOptions::default(),
        )
        .unwrap();
        assert_eq!(ct, "application/x-protobuf");
        let status = DynamicMessage::decode(
            pool.get_message_by_name("meshgate.demo.v1.PaymentStatus")
                .unwrap(),
            body.as_slice(),
        )
        .unwrap();
        assert_eq!(
            status.get_field_by_name("state").unwrap().as_enum_number(),
            Some(2)
        );
    }

    #[test]
    fn response_body_nested_path_and_scalar_field() {
        let pool = demo_pool();
        let bytes = encoded(&pool, "meshgate.demo.v1.PaymentStatusReply", STATUS_REPLY);
        let p = plan("GetPaymentStatus", Some("status.update_time"));
        let v = json_of(&p, &bytes, &PrintOptions::default());
        assert_eq!(v, json!("2024-05-01T12:00:00Z"));
        let p = plan("GetPaymentStatus", Some("status.state"));
        assert_eq!(
            json_of(&p, &bytes, &PrintOptions::default()),
            json!("CAPTURED")
        );
        let p = plan("GetPaymentStatus", Some("id"));
        assert_eq!(
            json_of(&p, &bytes, &PrintOptions::default()),
            json!("pay_1")
        );
        let err = render_response(
            &p,
            &bytes,
            ResponseFormat::Protobuf,
            &PrintOptions::default(),
        )
        .unwrap_err();
        assert_eq!(err.code, Code::Unimplemented);
    }

    #[test]
    fn response_body_at_default_prints_the_default() {
        let p = plan("GetPaymentStatus", Some("id"));
        assert_eq!(json_of(&p, b"", &PrintOptions::default()), json!(""));
        let p = plan("GetPaymentStatus", Some("status.state"));
        assert_eq!(
            json_of(&p, b"", &PrintOptions::default()),
            json!("PAYMENT_STATE_UNSPECIFIED")
        );
        let p = plan("GetPaymentStatus", Some("status"));
        assert_eq!(json_of(&p, b"", &PrintOptions::default()), json!({}));
    }

    #[test]
    fn response_body_repeated_field_prints_an_array() {
        let pool = demo_pool();
        let p = plan("ListPayments", Some("payments"));
        let bytes = encoded(
            &pool,
            "meshgate.demo.v1.ListPaymentsResponse",
            r#"{"payments": [{"id": "a", "amount": {"amountMinor": "5"}}, {"id": "b"}]}"#,
        );
        let v = json_of(&p, &bytes, &PrintOptions::default());
        assert_eq!(
            v,
            json!([{"id": "a", "amount": {"amountMinor": "5"}}, {"id": "b"}])
        );
        assert_eq!(json_of(&p, b"", &PrintOptions::default()), json!([]));
    }

    #[test]
    fn response_body_is_validated_at_compile_time() {
        let pool = demo_pool();
        let m = method(&pool, "Payments", "GetPaymentStatus");
        let err = ResponsePlan::compile(&m, Some("nope")).unwrap_err();
        assert!(err.contains("no field 'nope'"), "{err}");
        let err = ResponsePlan::compile(&m, Some("id.x")).unwrap_err();
        assert!(err.contains("not a singular message"), "{err}");
        let m = method(&pool, "Payments", "ListPayments");
        assert!(ResponsePlan::compile(&m, Some("payments.id")).is_err());
        let plan = ResponsePlan::compile(&m, Some(" ")).unwrap();
        assert_eq!(plan.response_body(), None);
    }

    #[test]
    fn http_body_reply_goes_out_raw_with_its_content_type() {
        let pool = demo_pool();
        let p = plan("GetReceipt", None);
        assert!(p.is_http_body());
        let bytes = encoded(
            &pool,
            "google.api.HttpBody",
            r#"{"contentType": "text/plain", "data": "UmVjZWlwdCAjMQ=="}"#,
        );
        for format in [ResponseFormat::Json, ResponseFormat::Protobuf] {
            let (body, ct) = render_response(&p, &bytes, format, &PrintOptions::default()).unwrap();
            assert_eq!(
                (body.as_slice(), ct.as_str()),
                (&b"Receipt #1"[..], "text/plain")
            );
        }
        let (body, ct) =
            render_response(&p, b"", ResponseFormat::Json, &PrintOptions::default()).unwrap();
        assert!(body.is_empty());
        assert_eq!(ct, "application/octet-stream");
    }

    #[test]
    fn http_body_field_as_response_body_goes_out_raw() {
        let pool = demo_pool();
        // An input message as a stand-in: any message with an HttpBody field will do.
        let input = demo_message(&pool, "meshgate.demo.v1.UploadAttachmentRequest");
        let p = ResponsePlan::for_output(input, Some("file")).unwrap();
        assert!(p.is_http_body());
        let bytes = encoded(
            &pool,
            "meshgate.demo.v1.UploadAttachmentRequest",
            r#"{"paymentId": "p", "file": {"contentType": "image/png", "data": "iVBO"}}"#,
        );
        let (body, ct) =
            render_response(&p, &bytes, ResponseFormat::Json, &PrintOptions::default()).unwrap();
        assert_eq!(ct, "image/png");
        assert_eq!(body, vec![0x89, 0x50, 0x4e]);
    }

    #[test]
    fn invalid_reply_is_a_bad_gateway() {
        let p = plan("GetPayment", None);
        // Field 1 (string) declared 10 bytes long, 1 present.
        let err = render_response(
            &p,
            &[0x0a, 0x0a, b'x'],
            ResponseFormat::Json,
            &PrintOptions::default(),
        )
        .unwrap_err();
        assert_eq!((err.code, err.status()), (Code::Internal, 502));
        assert!(
            err.message.contains("invalid meshgate.demo.v1.Payment"),
            "{}",
            err.message
        );
        // Protobuf clients are protected the same way.
        assert!(render_response(
            &p,
            &[0xff],
            ResponseFormat::Protobuf,
            &PrintOptions::default()
        )
        .is_err());
    }

    #[test]
    fn any_of_a_type_missing_from_the_pool_is_a_gateway_error() {
        let pool = demo_pool();
        let p = ResponsePlan::for_output(demo_message(&pool, "google.rpc.Status"), None).unwrap();
        let status = crate::status::RpcStatus {
            code: 3,
            message: String::new(),
            details: vec![crate::status::AnyProto {
                type_url: "type.googleapis.com/acme.Unknown".into(),
                value: vec![],
            }],
        };
        let err = render_response(
            &p,
            &status.encode_to_vec(),
            ResponseFormat::Json,
            &PrintOptions::default(),
        )
        .unwrap_err();
        assert_eq!((err.code, err.status()), (Code::Internal, 500));
        assert!(err.message.contains("acme.Unknown"), "{}", err.message);
    }
}
