//! HTTP request (JSON, protobuf or raw body, path variables, query) to the gRPC request message,
//! following `google.api.http` and the proto3 JSON mapping as grpc-gateway and Envoy's
//! `grpc_json_transcoder` do.
//!
//! Order: the body fills the message, path variables overwrite their fields, query parameters
//! fill unbound fields. A body sent to a binding without `body` is ignored (as Envoy does), so
//! a GET with a stray body still works.

use prost::Message;
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, Value};

use super::bad_request::invalid;
use super::field_path::set_value;
use super::json_in::parse_json;
use super::params::{apply_path, apply_query};
use super::plan::{BodySpec, RequestPlan};
use crate::status::{Code, GatewayError, RequestError};

/// Limits and leniency for building requests (from the configuration's `transcoding` and
/// `limits`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOptions {
    /// Skip query parameters that name no field instead of answering 400.
    pub ignore_unknown_query_parameters: bool,
    /// JSON nesting limit (`[` and `{`); default 64.
    pub max_depth: usize,
}

impl Default for RequestOptions {
    fn default() -> Self {
        RequestOptions {
            ignore_unknown_query_parameters: false,
            max_depth: 64,
        }
    }
}

/// What the request body is, from its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind<'a> {
    /// `application/json` (and `+json` types).
    Json,
    /// `application/x-protobuf`: the binary message named by the body spec.
    Protobuf,
    /// Anything else; accepted only when the body target is `google.api.HttpBody`.
    Raw { content_type: &'a str },
}

/// Build the gRPC request message (unframed protobuf bytes) for one matched binding.
///
/// `bindings` are the template's `(variable, value)` pairs and `query` the decoded query
/// parameters; both are text, converted to each field's type. Query parameters the gateway
/// consumes itself (a token in `access_token`, say) must be removed by the caller.
pub fn build_request(
    plan: &RequestPlan,
    bindings: &[(String, String)],
    query: &[(String, String)],
    body: &[u8],
    kind: BodyKind<'_>,
    opts: &RequestOptions,
) -> Result<Vec<u8>, GatewayError> {
    let mut message = body_message(plan, body, kind, opts)?;
    apply_path(plan, &mut message, bindings)?;
    apply_query(
        plan,
        &mut message,
        query,
        opts.ignore_unknown_query_parameters,
    )?;
    Ok(message.encode_to_vec())
}

/// The request message as the body alone makes it.
fn body_message(
    plan: &RequestPlan,
    body: &[u8],
    kind: BodyKind<'_>,
    opts: &RequestOptions,
) -> Result<DynamicMessage, GatewayError> {
    let input = plan.input();
    let target = match plan.body() {
        BodySpec::None => return Ok(DynamicMessage::new(input.clone())),
        BodySpec::All => None,
        BodySpec::Field(path) => Some(path),
    };
    if plan.is_http_body() {
        return raw_body(plan, body, kind);
    }
    match kind {
        BodyKind::Json if body.iter().all(u8::is_ascii_whitespace) => {
            // An empty body is an empty message, as grpc-gateway treats EOF.
            Ok(DynamicMessage::new(input.clone()))
        }
        BodyKind::Json => parse_json(input, target, body, opts.max_depth),
        BodyKind::Protobuf => protobuf_body(input, target.map(|p| p.fields.as_slice()), body),
        BodyKind::Raw { content_type } => Err(RequestError::UnsupportedMediaType {
            content_type: content_type.to_string(),
        }
        .into()),
    }
}

/// Decode the binary body as the target message and place it.
fn protobuf_body(
    input: &MessageDescriptor,
    target: Option<&[prost_reflect::FieldDescriptor]>,
    body: &[u8],
) -> Result<DynamicMessage, GatewayError> {
    let Some(fields) = target else {
        return DynamicMessage::decode(input.clone(), body)
            .map_err(|e| invalid(format!("invalid protobuf body: {e}")));
    };
    let leaf = fields
        .last()
        .filter(|f| !f.is_list())
        .and_then(|f| match f.kind() {
            Kind::Message(m) => Some(m),
            _ => None,
        })
        .ok_or_else(|| invalid("a protobuf body needs a message body field; send JSON"))?;
    let inner = DynamicMessage::decode(leaf, body)
        .map_err(|e| invalid(format!("invalid protobuf body: {e}")))?;
    let mut message = DynamicMessage::new(input.clone());
    set_value(&mut message, fields, Value::Message(inner))
        .map_err(|e| GatewayError::new(Code::Internal, e))?;
    Ok(message)
}

/// `google.api.HttpBody` target: `content_type` from the request, `data` the raw bytes.
fn raw_body(
    plan: &RequestPlan,
    body: &[u8],
    kind: BodyKind<'_>,
) -> Result<DynamicMessage, GatewayError> {
    let content_type = match kind {
        BodyKind::Json => "application/json",
        BodyKind::Protobuf => "application/x-protobuf",
        BodyKind::Raw { content_type } => content_type,
    };
    let input = plan.input();
    let internal = |e: String| GatewayError::new(Code::Internal, e);
    let http_body_desc = match plan.body() {
        BodySpec::Field(path) => match path.leaf().map(|f| f.kind()) {
            Some(Kind::Message(m)) => m,
            _ => return Err(internal("HttpBody body field is not a message".into())),
        },
        _ => input.clone(),
    };
    let mut http_body = DynamicMessage::new(http_body_desc);
    http_body
        .try_set_field_by_name("content_type", Value::String(content_type.to_string()))
        .map_err(|e| internal(e.to_string()))?;
    http_body
        .try_set_field_by_name("data", Value::Bytes(body.to_vec().into()))
        .map_err(|e| internal(e.to_string()))?;
    match plan.body() {
        BodySpec::Field(path) => {
            let mut message = DynamicMessage::new(input.clone());
            set_value(&mut message, &path.fields, Value::Message(http_body)).map_err(internal)?;
            Ok(message)
        }
        _ => Ok(http_body),
    }
}
