//! Host-side flow of a streamed NDJSON request body through the router (fake proxy): each
//! chunk leaves at once as the messages of the lines it completes, the headers go on with the
//! first, rewritten; a JSON array is still held to its end; a bad line is a 400 naming it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::rc::Rc;

use common::FakeHost;
use meshgate::filter::{Filter, Vm};
use meshgate::host::{Action, MapKind};
use meshgate::transcode::FrameDecoder;

fn messages(frames: &[u8]) -> usize {
    let mut d = FrameDecoder::default();
    d.push(frames);
    let mut n = 0;
    while d.next_message().unwrap().is_some() {
        n += 1;
    }
    n
}

fn lookup(content_type: &str) -> (Filter, FakeHost) {
    let f = Filter::new(Rc::new(Vm::new(common::demo_config())), 3);
    let h = FakeHost::with_request(
        "POST",
        "/v1/payments:lookup",
        &[("content-type", content_type)],
    );
    (f, h)
}

/// Feed one chunk as Envoy does (the body buffer holds this chunk only, as the filter let the
/// last one go on).
fn chunk(f: &mut Filter, h: &mut FakeHost, bytes: &[u8], eos: bool) -> Action {
    h.request_body = bytes.to_vec();
    f.on_request_body(h, bytes.len(), eos).action
}

#[test]
fn ndjson_lines_go_upstream_as_they_arrive() {
    let (mut f, mut h) = lookup("application/x-ndjson");
    assert_eq!(f.on_request_headers(&mut h, false).action, Action::Pause);
    let first = chunk(&mut f, &mut h, b"{\"id\":\"pay_001\"}\n{\"id\":", false);
    assert_eq!(first, Action::Continue, "{:?}", h.local_reply);
    assert_eq!(messages(&h.request_body), 1);
    assert_eq!(
        h.get(MapKind::RequestHeaders, ":path").as_deref(),
        Some("/meshgate.demo.v1.Payments/LookupPayments")
    );
    assert_eq!(
        h.get(MapKind::RequestHeaders, "content-type").as_deref(),
        Some("application/grpc")
    );
    assert_eq!(
        chunk(&mut f, &mut h, b"\"pay_002\"}", false),
        Action::Continue
    );
    assert!(h.request_body.is_empty(), "half a line waits for its end");
    assert_eq!(chunk(&mut f, &mut h, b"\n\n", false), Action::Continue);
    assert_eq!(messages(&h.request_body), 1);
    assert_eq!(
        chunk(&mut f, &mut h, b"{\"id\":\"x\"}", true),
        Action::Continue
    );
    assert_eq!(
        messages(&h.request_body),
        1,
        "the body's end completes the last line"
    );
    assert!(h.local_reply.is_none());
}

#[test]
fn a_json_array_is_still_converted_at_its_end() {
    let (mut f, mut h) = lookup("application/json");
    assert_eq!(f.on_request_headers(&mut h, false).action, Action::Pause);
    h.request_body = b"[{\"id\":\"pay_001\"},".to_vec();
    assert_eq!(f.on_request_body(&mut h, 17, false).action, Action::Pause);
    h.request_body = b"[{\"id\":\"pay_001\"},{\"id\":\"pay_002\"}]".to_vec();
    let n = h.request_body.len();
    assert_eq!(f.on_request_body(&mut h, n, true).action, Action::Continue);
    assert_eq!(messages(&h.request_body), 2);
}

#[test]
fn a_bad_line_is_a_400_naming_it() {
    // In the first chunk: before anything went upstream.
    let (mut f, mut h) = lookup("application/x-ndjson");
    f.on_request_headers(&mut h, false);
    assert_eq!(chunk(&mut f, &mut h, b"{\"id\":7}\n", false), Action::Pause);
    let (status, body) = h.reply_json();
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("message [0]: "),
        "{body}"
    );
    // In a later chunk, with no reply stream under way: answered the same way.
    let (mut f, mut h) = lookup("application/x-ndjson");
    f.on_request_headers(&mut h, false);
    assert_eq!(
        chunk(&mut f, &mut h, b"{\"id\":\"a\"}\n", false),
        Action::Continue
    );
    assert_eq!(chunk(&mut f, &mut h, b"{\"id\":7}\n", false), Action::Pause);
    let (status, body) = h.reply_json();
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("message [1]: "),
        "{body}"
    );
}
