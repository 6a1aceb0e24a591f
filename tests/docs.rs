//! The documentation cannot drift from the code:
//! - the reference tables of `docs/configuration.md` against the configuration the filter
//!   accepts: every documented key is accepted, and every accepted key is documented;
//! - every relative link in `README.md` and `docs/*.md` reaches a file (and heading);
//! - every gateway-file example (a `yaml` block whose keys are the configuration's) is accepted
//!   field for field; the README's example is `envoy/gateway.yaml`, the file `make run` serves,
//!   and its request is one `make run` prints (which `tests/kit/tests/make_run.rs` sends).
//!
//! One file per check under `tests/docs/`; `cargo test -p meshgate --test docs` runs them all.
//!
//! How the accepted keys are found without a list kept by hand: the loader refuses unknown fields
//! (`deny_unknown_fields`), and serde's refusal names the fields it expected ("unknown field `x`,
//! expected one of `a`, `b`"). The test feeds an unknown key at every object it can reach and reads
//! that list. A new option therefore fails this test until it has its row.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use serde_json::Value;

#[path = "docs/examples.rs"]
mod examples;
#[path = "docs/links.rs"]
mod links;
#[path = "docs/probe.rs"]
mod probe;
#[path = "docs/reference.rs"]
mod reference;

pub const REFERENCE: &str = "docs/configuration.md";
/// A key no configuration type has.
pub const PROBE: &str = "meshgate_docs_probe";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The filter's own loader; `Err` is its message.
pub fn load(doc: &Value) -> Result<(), String> {
    meshgate::config::compile_json(doc.to_string().as_bytes())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

pub fn pages() -> Vec<String> {
    let mut out = vec!["README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    out.extend(docs);
    out
}

/// The page without fenced code blocks (links and headings in them are not links or headings).
pub fn prose(page: &str) -> Vec<&str> {
    let mut fenced = false;
    page.lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}
