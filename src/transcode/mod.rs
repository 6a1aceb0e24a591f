//! transcode

mod bad_request;
pub mod descriptors;
pub mod field_path;
mod json_in;
mod text_value;
