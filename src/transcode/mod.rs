//! transcode

pub mod descriptors;
