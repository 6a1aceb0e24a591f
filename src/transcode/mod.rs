//! transcode

pub mod frame;
pub mod grpc_status;
pub mod print;
pub mod reply;
pub mod response;
pub mod stream;

#[cfg(test)]
mod response_fixtures;

pub use frame::{encode_frame, FrameDecoder, FrameError};
pub use grpc_status::{error_from_grpc, error_from_http};
pub use print::PrintOptions;
pub use reply::{finish_stream, finish_unary, stream_messages, GrpcEnd};
pub use response::{render_response, ResponseFormat, ResponsePlan};
pub use stream::{StreamFormat, StreamWriter};
