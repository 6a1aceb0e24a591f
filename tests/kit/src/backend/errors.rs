//! gRPC errors with google.rpc rich details (`grpc-status-details-bin`), the way real services
//! send them: the trailer carries an encoded `google.rpc.Status` whose `details` are `Any`s.
use prost::Message;
use tonic::{Code, Status};

use crate::proto::google::rpc;

/// `type.googleapis.com/` prefix of every `Any` type URL.
const TYPE_URL_PREFIX: &str = "type.googleapis.com/";

/// Wraps one detail message into an `Any` with its canonical type URL.
pub fn any_of<M: Message>(full_name: &str, msg: &M) -> prost_types::Any {
    prost_types::Any {
        type_url: format!("{TYPE_URL_PREFIX}{full_name}"),
        value: msg.encode_to_vec(),
    }
}

/// A status whose `grpc-status-details-bin` holds a google.rpc.Status with `details`.
pub fn with_details(code: Code, message: &str, details: Vec<prost_types::Any>) -> Status {
    let status = rpc::Status {
        code: code as i32,
        message: message.to_owned(),
        details,
    };
    Status::with_details(code, message.to_owned(), status.encode_to_vec().into())
}

/// The bytes of a `google.rpc.Status { code, message, details: [ErrorInfo(reason)] }`, to
/// send in `grpc-status-details-bin` beside a status that may say something else.
pub fn details_status(code: Code, message: &str, reason: &str) -> Vec<u8> {
    rpc::Status {
        code: code as i32,
        message: message.to_owned(),
        details: vec![error_info(reason)],
    }
    .encode_to_vec()
}

/// INVALID_ARGUMENT with a google.rpc.BadRequest naming the offending field.
pub fn bad_request(field: &str, description: &str) -> Status {
    let detail = rpc::BadRequest {
        field_violations: vec![rpc::bad_request::FieldViolation {
            field: field.to_owned(),
            description: description.to_owned(),
            ..Default::default()
        }],
    };
    with_details(
        Code::InvalidArgument,
        &format!("{field}: {description}"),
        vec![any_of("google.rpc.BadRequest", &detail)],
    )
}

/// NOT_FOUND with a google.rpc.ResourceInfo for the missing resource.
pub fn not_found(resource_type: &str, name: &str) -> Status {
    let detail = rpc::ResourceInfo {
        resource_type: resource_type.to_owned(),
        resource_name: name.to_owned(),
        owner: String::new(),
        description: format!("{resource_type} {name} does not exist"),
    };
    with_details(
        Code::NotFound,
        &format!("{resource_type} {name} not found"),
        vec![any_of("google.rpc.ResourceInfo", &detail)],
    )
}

/// FAILED_PRECONDITION with a google.rpc.PreconditionFailure.
pub fn precondition(subject: &str, description: &str) -> Status {
    let detail = rpc::PreconditionFailure {
        violations: vec![rpc::precondition_failure::Violation {
            r#type: "STATE".to_owned(),
            subject: subject.to_owned(),
            description: description.to_owned(),
        }],
    };
    with_details(
        Code::FailedPrecondition,
        &format!("{subject}: {description}"),
        vec![any_of("google.rpc.PreconditionFailure", &detail)],
    )
}

/// ErrorInfo detail used by the `x-demo-fail-details: errorinfo` hook.
pub fn error_info(reason: &str) -> prost_types::Any {
    let detail = rpc::ErrorInfo {
        reason: reason.to_owned(),
        domain: "demo.meshgate.dev".to_owned(),
        metadata: Default::default(),
    };
    any_of("google.rpc.ErrorInfo", &detail)
}

/// Parses a gRPC code from its name (`NOT_FOUND`, `not_found`, `NotFound`) or number (`5`).
pub fn parse_code(text: &str) -> Option<Code> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i32>() {
        return (0..=16).contains(&n).then(|| Code::from_i32(n));
    }
    let key: String = text
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .collect::<String>()
        .to_ascii_lowercase();
    (0..=16)
        .map(Code::from_i32)
        .find(|code| code_key(*code) == key)
}

/// Lower-case name of a code without separators (`notfound`), for lenient matching.
fn code_key(code: Code) -> String {
    format!("{code:?}").to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names_and_numbers_parse() {
        assert_eq!(parse_code("NOT_FOUND"), Some(Code::NotFound));
        assert_eq!(parse_code("unavailable"), Some(Code::Unavailable));
        assert_eq!(parse_code("DeadlineExceeded"), Some(Code::DeadlineExceeded));
        assert_eq!(parse_code("14"), Some(Code::Unavailable));
        assert_eq!(parse_code("17"), None);
        assert_eq!(parse_code("nonsense"), None);
    }

    #[test]
    fn bad_request_details_decode_back() {
        let status = bad_request("payment.amount", "required");
        let decoded = rpc::Status::decode(status.details()).unwrap();
        assert_eq!(decoded.code, Code::InvalidArgument as i32);
        let any = decoded.details.first().unwrap();
        assert_eq!(any.type_url, "type.googleapis.com/google.rpc.BadRequest");
        let br = rpc::BadRequest::decode(any.value.as_slice()).unwrap();
        assert_eq!(br.field_violations[0].field, "payment.amount");
    }
}
