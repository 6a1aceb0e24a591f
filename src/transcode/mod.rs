//! Protocol transform: HTTP+JSON and HTTP+Protobuf <-> gRPC, driven by the protos'
//! `google.api.http` rules. Request side: descriptors, plans, path/query/body -> message.
//! Response side: gRPC framing, message -> JSON/protobuf, gRPC status -> `google.rpc.Status`,
//! server streams.

mod bad_request;
pub mod client_stream;
pub mod descriptors;
pub mod field_path;
pub mod frame;
pub mod grpc_status;
pub mod input;
mod json_error;
mod json_in;
pub mod metadata;
mod params;
mod plan;
pub mod print;
pub mod reply;
mod request;
#[cfg(test)]
mod request_tests;
pub mod response;
#[cfg(test)]
mod response_fixtures;
pub mod stream;
mod text_value;
pub mod upstream;

pub use descriptors::{binding_from_input, http_rules, load_pool, HttpBinding, MethodRules};
pub use field_path::FieldPath;
pub use frame::{encode_frame, FrameDecoder, FrameError};
pub use grpc_status::{error_from_grpc, error_from_http};
pub use plan::{BodySpec, RequestPlan};
pub use print::PrintOptions;
pub use reply::{finish_stream, finish_unary, stream_messages, GrpcEnd};
pub use request::{build_request, BodyKind, RequestOptions};
pub use response::{render_response, ResponseFormat, ResponsePlan};
pub use stream::{StreamFormat, StreamWriter};
