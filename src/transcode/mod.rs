//! transcode

pub mod frame;
pub mod grpc_status;
pub mod print;
pub mod response;
pub mod stream;

#[cfg(test)]
mod response_fixtures;

pub use frame::{encode_frame, FrameDecoder, FrameError};
pub use grpc_status::{error_from_grpc, error_from_http};
pub use print::PrintOptions;
pub use response::{render_response, ResponseFormat, ResponsePlan};
pub use stream::{StreamFormat, StreamWriter};
