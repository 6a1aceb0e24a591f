//! Generated code for the demo API (`meshgate.demo.v1`), `google.api` and `google.rpc`.
#![allow(
    clippy::all,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

include!(concat!(env!("OUT_DIR"), "/protos.rs"));

/// The encoded `FileDescriptorSet` of the demo API and google.rpc protos (with imports).
pub const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor_set.bin"));
