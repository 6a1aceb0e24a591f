//! Request errors that name a field: INVALID_ARGUMENT with a `google.rpc.BadRequest` detail, in
//! JSON (`details`) and binary (`details_bin`) form, so every client sees which field was wrong.

use serde_json::json;

use crate::status::{AnyProto, Code, GatewayError};

const BAD_REQUEST_TYPE: &str = "type.googleapis.com/google.rpc.BadRequest";

/// `google.rpc.BadRequest.FieldViolation`
#[derive(Clone, PartialEq, prost::Message)]
struct FieldViolation {
    #[prost(string, tag = "1")]
    field: String,
    #[prost(string, tag = "2")]
    description: String,
}

/// `google.rpc.BadRequest`
#[derive(Clone, PartialEq, prost::Message)]
struct BadRequest {
    #[prost(message, repeated, tag = "1")]
    field_violations: Vec<FieldViolation>,
}

/// 400 about one field: the message reads `<field>: <description>`.
pub fn field_error(field: &str, description: &str) -> GatewayError {
    let mut err = GatewayError::new(Code::InvalidArgument, format!("{field}: {description}"));
    err.details.push(json!({
        "@type": BAD_REQUEST_TYPE,
        "fieldViolations": [{"field": field, "description": description}],
    }));
    let bin = BadRequest {
        field_violations: vec![FieldViolation {
            field: field.to_string(),
            description: description.to_string(),
        }],
    };
    err.details_bin.push(AnyProto {
        type_url: BAD_REQUEST_TYPE.to_string(),
        value: prost::Message::encode_to_vec(&bin),
    });
    err
}

/// 400 about the request as a whole (no single field to blame).
pub fn invalid(message: impl Into<String>) -> GatewayError {
    GatewayError::new(Code::InvalidArgument, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_error_names_the_field_in_both_detail_forms() {
        let err = field_error("payment.amount", "expected an integer");
        assert_eq!(err.code, Code::InvalidArgument);
        assert_eq!(err.status(), 400);
        assert_eq!(err.message, "payment.amount: expected an integer");
        let detail = err.details.first().unwrap();
        assert_eq!(detail["@type"], BAD_REQUEST_TYPE);
        assert_eq!(detail["fieldViolations"][0]["field"], "payment.amount");
        let any = err.details_bin.first().unwrap();
        let decoded: BadRequest = prost::Message::decode(any.value.as_slice()).unwrap();
        assert_eq!(
            decoded.field_violations[0].description,
            "expected an integer"
        );
    }
}
