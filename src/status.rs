//! gRPC status codes, the standard gRPC <-> HTTP mapping, and the one place where an error
//! becomes a response: a `google.rpc.Status` body, JSON for JSON clients and binary protobuf for
//! protobuf clients.

mod errors;

use base64::Engine;
use serde_json::{json, Value};

pub use errors::{AuthError, LimitError, RequestError, UpstreamError};

/// The canonical gRPC codes (`google.rpc.Code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

const ALL_CODES: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

impl Code {
    /// Any number outside the canonical range is UNKNOWN, as gRPC specifies.
    pub fn from_i32(n: i32) -> Code {
        usize::try_from(n)
            .ok()
            .and_then(|i| ALL_CODES.get(i).copied())
            .unwrap_or(Code::Unknown)
    }

    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// `UNAVAILABLE`, as in `google.rpc.Code` and the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    pub fn from_name(name: &str) -> Option<Code> {
        ALL_CODES
            .iter()
            .copied()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// The standard gRPC -> HTTP mapping (google.rpc.Code's documentation, as grpc-gateway and
    /// Envoy's transcoder use it).
    pub fn http_status(self) -> u16 {
        match self {
            Code::Ok => 200,
            Code::Cancelled => 499,
            Code::Unknown => 500,
            Code::InvalidArgument => 400,
            Code::DeadlineExceeded => 504,
            Code::NotFound => 404,
            Code::AlreadyExists => 409,
            Code::PermissionDenied => 403,
            Code::ResourceExhausted => 429,
            Code::FailedPrecondition => 400,
            Code::Aborted => 409,
            Code::OutOfRange => 400,
            Code::Unimplemented => 501,
            Code::Internal => 500,
            Code::Unavailable => 503,
            Code::DataLoss => 500,
            Code::Unauthenticated => 401,
        }
    }

    /// HTTP status -> gRPC code, for errors made by Envoy's router or a plain-HTTP upstream
    /// (the gRPC spec's "HTTP to gRPC status code mapping", extended for common statuses).
    pub fn from_http_status(status: u16) -> Code {
        match status {
            200..=299 => Code::Ok,
            400 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            408 | 504 => Code::DeadlineExceeded,
            413 => Code::ResourceExhausted,
            429 | 502 | 503 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }
}

/// `google.protobuf.Any`, as carried in `google.rpc.Status.details`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyProto {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.Status` in binary form.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<AnyProto>,
}

/// How the client wants the error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Protobuf,
    /// Native gRPC clients: the error travels in `grpc-status`/`grpc-message` headers.
    Grpc,
}

/// The parts of the configured print options (`transcoding.print_options`, or the route's
/// policy's) that apply to a JSON `google.rpc.Status`, as Envoy's transcoder prints one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusPrint {
    /// Print empty fields too (`"details": []`); proto3 JSON omits them by default.
    pub always_print_primitive_fields: bool,
    /// Indent and break lines (one space per level).
    pub add_whitespace: bool,
}

impl StatusPrint {
    /// `value` as bytes, indented when asked.
    pub fn bytes(&self, value: &Value) -> Vec<u8> {
        if !self.add_whitespace {
            return serde_json::to_vec(value).unwrap_or_default();
        }
        let mut out = Vec::with_capacity(64);
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
        match serde::Serialize::serialize(value, &mut ser) {
            Ok(()) => out,
            Err(_) => Vec::new(),
        }
    }
}

/// An error the gateway answers itself (or an upstream error it converts).
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayError {
    pub code: Code,
    pub message: String,
    /// HTTP status when it differs from the code's standard mapping (413 for body limits, for
    /// example; set only by the domain errors' conversions in `status::errors`); `None` uses
    /// [`Code::http_status`].
    pub http_status: Option<u16>,
    /// Details as JSON objects with `@type` (what JSON clients see).
    pub details: Vec<Value>,
    /// Details as binary `Any` (what protobuf and gRPC clients see); kept apart so an upstream
    /// `grpc-status-details-bin` reaches binary clients unchanged.
    pub details_bin: Vec<AnyProto>,
    /// Extra response headers (`www-authenticate`, for example).
    pub headers: Vec<(String, String)>,
}

impl GatewayError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        GatewayError {
            code,
            message: message.into(),
            http_status: None,
            details: Vec::new(),
            details_bin: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Private to `status`: the domain errors' conversions decide every non-standard status.
    fn with_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn status(&self) -> u16 {
        self.http_status.unwrap_or_else(|| self.code.http_status())
    }

    /// The JSON `google.rpc.Status` as proto3 JSON prints it by default: an empty `details`
    /// (or `message`) is omitted.
    pub fn to_json(&self) -> Value {
        self.to_json_with(StatusPrint::default())
    }

    /// The JSON `google.rpc.Status`, with the configured print options' say on empty fields.
    pub fn to_json_with(&self, print: StatusPrint) -> Value {
        let mut out = serde_json::Map::new();
        out.insert("code".into(), json!(self.code.as_i32()));
        if print.always_print_primitive_fields || !self.message.is_empty() {
            out.insert("message".into(), json!(self.message));
        }
        if print.always_print_primitive_fields || !self.details.is_empty() {
            out.insert("details".into(), json!(self.details));
        }
        Value::Object(out)
    }

    pub fn to_proto(&self) -> RpcStatus {
        RpcStatus {
            code: self.code.as_i32(),
            message: self.message.clone(),
            details: self.details_bin.clone(),
        }
    }

    /// The full local reply: HTTP status, headers, body (JSON printed by proto3's defaults).
    pub fn to_response(&self, format: BodyFormat) -> (u16, Vec<(String, String)>, Vec<u8>) {
        self.to_response_with(format, StatusPrint::default())
    }

    /// The full local reply, a JSON body printed with `print`.
    pub fn to_response_with(
        &self,
        format: BodyFormat,
        print: StatusPrint,
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut headers = self.headers.clone();
        match format {
            BodyFormat::Json => {
                headers.push(("content-type".into(), "application/json".into()));
                let body = print.bytes(&self.to_json_with(print));
                (self.status(), headers, body)
            }
            BodyFormat::Protobuf => {
                headers.push(("content-type".into(), "application/x-protobuf".into()));
                let body = prost::Message::encode_to_vec(&self.to_proto());
                (self.status(), headers, body)
            }
            BodyFormat::Grpc => {
                headers.push(("content-type".into(), "application/grpc".into()));
                headers.push(("grpc-status".into(), self.code.as_i32().to_string()));
                headers.push(("grpc-message".into(), percent_encode_grpc(&self.message)));
                if !self.details_bin.is_empty() {
                    let bin = prost::Message::encode_to_vec(&self.to_proto());
                    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(bin);
                    headers.push(("grpc-status-details-bin".into(), b64));
                }
                // gRPC errors are "trailers-only": HTTP 200 with grpc-status in the headers.
                (200, headers, Vec::new())
            }
        }
    }
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

/// `grpc-message` is percent-encoded (gRPC over HTTP/2 spec): bytes outside 0x20..=0x7E and '%'.
pub fn percent_encode_grpc(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Inverse of [`percent_encode_grpc`]; malformed escapes are kept as they are.
pub fn percent_decode_grpc(message: &str) -> String {
    let bytes = message.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_numbers_map_to_unknown() {
        assert_eq!(Code::from_i32(42), Code::Unknown);
        assert_eq!(Code::from_i32(-1), Code::Unknown);
        assert_eq!(Code::from_i32(14), Code::Unavailable);
    }

    #[test]
    fn names_round_trip() {
        for c in ALL_CODES {
            assert_eq!(Code::from_name(c.name()), Some(c));
            assert_eq!(Code::from_i32(c.as_i32()), c);
        }
    }

    #[test]
    fn json_error_has_status_shape() {
        let e = GatewayError::new(Code::NotFound, "no operation for GET /x");
        let (status, headers, body) = e.to_response(BodyFormat::Json);
        assert_eq!(status, 404);
        assert!(headers.contains(&("content-type".into(), "application/json".into())));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], 5);
        assert_eq!(v["message"], "no operation for GET /x");
        assert!(
            v.get("details").is_none(),
            "proto3 JSON omits empty details: {v}"
        );
    }

    #[test]
    fn empty_details_print_only_when_defaults_are_asked_for() {
        let e = GatewayError::new(Code::NotFound, "gone");
        let always = StatusPrint {
            always_print_primitive_fields: true,
            add_whitespace: false,
        };
        let (_, _, body) = e.to_response_with(BodyFormat::Json, always);
        assert_eq!(body, br#"{"code":5,"details":[],"message":"gone"}"#);
        let (_, _, body) = e.to_response_with(BodyFormat::Json, StatusPrint::default());
        assert_eq!(body, br#"{"code":5,"message":"gone"}"#);
        let blank = GatewayError::new(Code::Unknown, "");
        assert_eq!(blank.to_json(), json!({"code": 2}));
        let pretty = StatusPrint {
            always_print_primitive_fields: false,
            add_whitespace: true,
        };
        let (_, _, body) = e.to_response_with(BodyFormat::Json, pretty);
        assert_eq!(body, b"{\n \"code\": 5,\n \"message\": \"gone\"\n}");
    }

    #[test]
    fn protobuf_error_decodes_as_rpc_status() {
        let e = GatewayError::new(Code::Unauthenticated, "missing token");
        let (status, _, body) = e.to_response(BodyFormat::Protobuf);
        assert_eq!(status, 401);
        let s: RpcStatus = prost::Message::decode(body.as_slice()).unwrap();
        assert_eq!(s.code, 16);
        assert_eq!(s.message, "missing token");
    }

    #[test]
    fn grpc_message_percent_encoding_round_trips() {
        let m = "bad 100% ünïcode\nline";
        let enc = percent_encode_grpc(m);
        assert!(enc.is_ascii() && !enc.contains('\n'));
        assert_eq!(percent_decode_grpc(&enc), m);
    }
}
