//! transcode

mod bad_request;
pub mod descriptors;
pub mod field_path;
mod json_error;
mod json_in;
mod params;
mod plan;
mod request;
#[cfg(test)]
mod request_tests;
mod text_value;

pub use descriptors::{binding_from_input, http_rules, load_pool, HttpBinding, MethodRules};
pub use field_path::FieldPath;
pub use plan::{BodySpec, RequestPlan};
pub use request::{build_request, BodyKind, RequestOptions};
