//! Host-side: what the panic hook has the core do before a trapped VM aborts
//! (`Scheduler::on_trap`): the trapping request and those in flight are counted once as
//! `unavailable` (a bad availability event), named for Envoy's record, and a request that would
//! wait forever for the dead VM (a side call out) is answered 503 now. End to end:
//! `tests/kit/tests/e2e_reliability_traps.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::rc::Rc;

use common::{demo_config, FakeHost};
use meshgate::filter::{Callback, Phase, Scheduler, Vm};
use meshgate::observe::{RequestMetric, SloKind};

const GET_PAYMENT: &str = "meshgate.demo.v1.Payments.GetPayment";

fn counter(s: &Scheduler, h: &FakeHost, metric: RequestMetric) -> i64 {
    let names = &s.vm().config.observe.names;
    h.counter(&names.request_metric_name(GET_PAYMENT, None, metric))
}

#[test]
fn a_trap_counts_the_trapping_request_from_its_headers_and_names_it() {
    let scheduler = Rc::new(Scheduler::new(Rc::new(Vm::new(demo_config()))));
    let stream = scheduler.stream(3);
    let mut h = FakeHost::with_request("GET", "/v1/payments/pay_001", &[]);
    // The trapping callback holds its own filter while the hook runs.
    let held = stream.filter().borrow_mut();
    let report = scheduler.on_trap(&mut h, Some(3), Callback::RequestHeaders);
    drop(held);
    assert_eq!(report.counted, 1);
    assert_eq!(
        report.answered, 0,
        "Envoy answers the trapping request itself"
    );
    assert_eq!(
        counter(&scheduler, &h, RequestMetric::Requests("unavailable")),
        1
    );
    let availability = SloKind::Availability;
    assert_eq!(
        counter(&scheduler, &h, RequestMetric::SloEvents(availability)),
        1
    );
    assert_eq!(
        counter(&scheduler, &h, RequestMetric::SloGoodEvents(availability)),
        0
    );
    assert_eq!(
        h.properties.get("meshgate.operation").map(Vec::as_slice),
        Some(GET_PAYMENT.as_bytes())
    );
    assert!(h.local_reply.is_none());
}

#[test]
fn a_request_waiting_on_a_side_call_is_answered_and_counted_once() {
    let scheduler = Rc::new(Scheduler::new(Rc::new(Vm::new(demo_config()))));
    let waiting = scheduler.stream(5);
    let mut h = FakeHost::with_request("GET", "/v1/payments/pay_001", &[]);
    waiting.on_request_headers(&mut h, true);
    assert!(
        matches!(waiting.filter().borrow().phase(), Phase::SideCall { .. }),
        "a body-less GET is sent as a side call"
    );
    // A root callback traps (a tick, say): no request is the trapping one.
    let report = scheduler.on_trap(&mut h, None, Callback::Tick);
    assert_eq!((report.counted, report.answered), (1, 1));
    let (status, body) = h.reply_json();
    assert_eq!(status, 503);
    assert_eq!(body["code"], 14);
    assert_eq!(
        counter(&scheduler, &h, RequestMetric::Requests("unavailable")),
        1
    );
    // Logged now: a second trap (or a late log callback) does not count it again.
    assert_eq!(*waiting.filter().borrow().phase(), Phase::Logged);
    waiting.on_log(&mut h);
    let again = scheduler.on_trap(&mut h, None, Callback::Tick);
    assert_eq!(again.counted, 0);
    assert_eq!(
        counter(&scheduler, &h, RequestMetric::Requests("unavailable")),
        1
    );
}

#[test]
fn a_request_already_logged_is_not_counted_by_a_trap() {
    let scheduler = Rc::new(Scheduler::new(Rc::new(Vm::new(demo_config()))));
    let done = scheduler.stream(7);
    let mut h = FakeHost::with_request("GET", "/no/such/path", &[]);
    done.on_request_headers(&mut h, true);
    done.on_log(&mut h);
    let report = scheduler.on_trap(&mut h, None, Callback::RootCallReply);
    assert_eq!(report.counted, 0);
}

#[test]
fn every_callback_kind_has_a_test_trigger_name() {
    for c in Callback::ALL {
        assert_eq!(Callback::from_name(c.name()), Some(c));
    }
    assert_eq!(Callback::from_name("nope"), None);
}

/// The memory gauge the soak reads: the VM's linear memory, set on every tick.
#[test]
fn the_tick_publishes_the_vm_memory_gauge() {
    let scheduler = Rc::new(Scheduler::new(Rc::new(Vm::new(demo_config()))));
    let mut h = FakeHost {
        memory_bytes: Some(17 * 65536),
        ..FakeHost::new()
    };
    scheduler.on_tick(&mut h);
    let name = scheduler.vm().config.observe.names.vm_memory();
    assert_eq!(name, "meshgate_vm_memory_bytes");
    assert_eq!(h.counter(&name), 17 * 65536);
    h.memory_bytes = Some(18 * 65536);
    scheduler.on_tick(&mut h);
    assert_eq!(h.counter(&name), 18 * 65536, "a gauge: the last value");
}

/// A trap in a side call's reply: Envoy does not fail the stream (the reply is no stream
/// event), so the hook answers it, though its callback holds its filter.
#[test]
fn a_trap_in_a_call_reply_answers_its_own_request() {
    let scheduler = Rc::new(Scheduler::new(Rc::new(Vm::new(demo_config()))));
    let stream = scheduler.stream(9);
    let mut h = FakeHost::with_request("GET", "/v1/payments/pay_001", &[]);
    stream.on_request_headers(&mut h, true);
    let held = stream.filter().borrow_mut();
    let report = scheduler.on_trap(&mut h, Some(9), Callback::StreamCallReply);
    drop(held);
    assert_eq!((report.counted, report.answered), (1, 1));
    assert_eq!(h.reply_json().0, 503);
    assert_eq!(
        counter(&scheduler, &h, RequestMetric::Requests("unavailable")),
        1
    );
}

/// The same when the trap comes before the callback took its filter (the glue's trap point):
/// the request waiting for that reply is answered, not left to the dead VM.
#[test]
fn a_trap_at_the_start_of_a_call_reply_answers_its_request() {
    let scheduler = Rc::new(Scheduler::new(Rc::new(Vm::new(demo_config()))));
    let stream = scheduler.stream(11);
    let mut h = FakeHost::with_request("GET", "/v1/payments/pay_001", &[]);
    stream.on_request_headers(&mut h, true);
    let report = scheduler.on_trap(&mut h, Some(11), Callback::StreamCallReply);
    assert_eq!((report.counted, report.answered), (1, 1));
    assert_eq!(h.reply_json().0, 503);
    // Trapped in its own request-headers callback instead: Envoy answers it.
    let other = scheduler.stream(12);
    let mut h2 = FakeHost::with_request("GET", "/v1/payments/pay_001", &[]);
    other.on_request_headers(&mut h2, true);
    let report = scheduler.on_trap(&mut h2, Some(12), Callback::RequestHeaders);
    assert_eq!(report.answered, 0);
}

/// Envoy's integer properties: 8 little-endian bytes.
fn int(n: i64) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}

/// The native glue (`src/native/hooks.rs`): a hook panicked before the core read the request
/// headers, the glue answered 500; at the log hook the request is recorded and counted once,
/// under the operation its headers name, as the 5xx it was answered.
#[test]
fn a_request_panicked_before_its_headers_were_read_is_recorded_and_counted_once() {
    let scheduler = Rc::new(Scheduler::new(Rc::new(Vm::new(demo_config()))));
    let stream = scheduler.stream(11);
    let mut h =
        FakeHost::with_request("GET", "/v1/payments/pay_001", &[("x-request-id", "boom-1")])
            .with_property("response.code", &int(500));
    stream.on_log_after_panic(&mut h);
    let line = h.properties.get("meshgate.record").expect("a record");
    let record: serde_json::Value = serde_json::from_slice(line).unwrap();
    assert_eq!(record["httpRequest"]["status"], 500, "{record}");
    assert_eq!(record["requestId"], "boom-1", "{record}");
    assert_eq!(record["operation"], GET_PAYMENT, "{record}");
    assert_eq!(record["slo"]["availability"], "bad", "{record}");
    assert_eq!(counter(&scheduler, &h, RequestMetric::Requests("5xx")), 1);
    // Logged: neither a second log hook nor a panic accounting counts it again.
    stream.on_log_after_panic(&mut h);
    assert!(!stream.on_log_panicked(&mut h));
    assert_eq!(counter(&scheduler, &h, RequestMetric::Requests("5xx")), 1);
    assert!(
        h.local_reply.is_none(),
        "the glue answered it, not the core"
    );
}

/// A panic after the core had read the request: its record keeps what the core knew.
#[test]
fn a_request_panicked_later_keeps_what_the_core_had_read() {
    let scheduler = Rc::new(Scheduler::new(Rc::new(Vm::new(demo_config()))));
    let stream = scheduler.stream(12);
    let mut h = FakeHost::with_request("GET", "/v1/payments/pay_001", &[("x-request-id", "r-2")]);
    stream.on_request_headers(&mut h, true);
    // The request headers change after the core read them (they are not read again).
    h.maps.insert("request_headers", Vec::new());
    h.properties.insert("response.code".into(), int(500));
    stream.on_log_after_panic(&mut h);
    let line = h.properties.get("meshgate.record").expect("a record");
    let record: serde_json::Value = serde_json::from_slice(line).unwrap();
    assert_eq!(record["requestId"], "r-2", "{record}");
    assert_eq!(record["httpRequest"]["status"], 500, "{record}");
    assert_eq!(counter(&scheduler, &h, RequestMetric::Requests("5xx")), 1);
}

/// A panic in the log hook itself: the answer was out (200); counted once with it, named
/// for Envoy's record, never answered again.
#[test]
fn a_panic_in_the_log_hook_counts_the_answer_it_had_once() {
    let scheduler = Rc::new(Scheduler::new(Rc::new(Vm::new(demo_config()))));
    let stream = scheduler.stream(13);
    let mut h = FakeHost::with_request("GET", "/v1/payments/pay_001", &[])
        .with_property("response.code", &int(200));
    stream.on_request_headers(&mut h, true);
    h.local_reply = None;
    assert!(stream.on_log_panicked(&mut h));
    assert!(!stream.on_log_panicked(&mut h), "once");
    stream.on_log(&mut h);
    assert_eq!(counter(&scheduler, &h, RequestMetric::Requests("2xx")), 1);
    assert_eq!(
        counter(&scheduler, &h, RequestMetric::Requests("unavailable")),
        0
    );
    assert!(h.local_reply.is_none());
    assert_eq!(
        h.properties.get("meshgate.operation").map(Vec::as_slice),
        Some(GET_PAYMENT.as_bytes())
    );
}
