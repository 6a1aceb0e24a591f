//! Fuzz support: the entry points live in `entry.rs`, shared with the main crate's regression
//! test.

#[path = "entry.rs"]
mod entry;

pub use entry::*;
