//! Host-side proof that each `transcoding` option the loader accepts changes what the filter
//! does (fake proxy): the gRPC request a side call carries, and the error bodies the client
//! gets. One test per option, each with the option off and on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::rc::Rc;

use common::{compile_yaml, demo_yaml, FakeHost};
use meshgate::filter::{Filter, Vm};

/// The demo gateway with `lines` added under `transcoding:`.
fn with_transcoding(lines: &str) -> meshgate::config::Config {
    let yaml = demo_yaml().replace("transcoding:\n", &format!("transcoding:\n{lines}"));
    compile_yaml(&yaml)
}

/// The gRPC frame of the side call a body-less request makes (or the local reply's JSON).
fn side_call_frame(cfg: meshgate::config::Config, path: &str) -> Result<Vec<u8>, String> {
    let mut f = Filter::new(Rc::new(Vm::new(cfg)), 1);
    let mut h = FakeHost::with_request("GET", path, &[]);
    f.on_request_headers(&mut h, true);
    match h.http_calls.first() {
        Some((_, _, frame)) => Ok(frame.clone()),
        None => Err(h.reply_json().1.to_string()),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn plus_in_the_query_stays_a_plus_unless_query_param_unescape_plus() {
    let path = "/v1/payments/pay_001/receipt?format=a+b%2Bc";
    let frame = side_call_frame(with_transcoding(""), path).unwrap();
    assert!(contains(&frame, b"a+b+c"), "{frame:?}");
    let frame = side_call_frame(
        with_transcoding("  query_param_unescape_plus: true\n"),
        path,
    )
    .unwrap();
    assert!(contains(&frame, b"a b+c"), "{frame:?}");
    assert!(!contains(&frame, b"a+b"), "{frame:?}");
}

/// The local reply's JSON body, as bytes.
fn error_body(cfg: meshgate::config::Config, path: &str) -> String {
    let mut f = Filter::new(Rc::new(Vm::new(cfg)), 1);
    let mut h = FakeHost::with_request("GET", path, &[]);
    f.on_request_headers(&mut h, true);
    let (_, _, body) = h.local_reply.clone().expect("a local reply");
    String::from_utf8(body).unwrap()
}

#[test]
fn empty_details_are_printed_only_with_always_print_primitive_fields() {
    let body = error_body(with_transcoding(""), "/no/such/path");
    assert!(body.starts_with(r#"{"code":5,"message":"#), "{body}");
    assert!(!body.contains("details"), "{body}");
    let always =
        "  print_options:\n    always_print_primitive_fields: true\n    add_whitespace: true\n";
    let yaml = demo_yaml().replace(
        "  print_options:\n    always_print_primitive_fields: false\n",
        always,
    );
    let body = error_body(compile_yaml(&yaml), "/no/such/path");
    assert!(
        body.starts_with("{\n \"code\": 5,\n \"details\": [],\n"),
        "{body}"
    );
}
