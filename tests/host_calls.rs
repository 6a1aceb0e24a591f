//! Host calls per request, by scenario: every call the core makes through [`Host`] is counted
//! by a wrapper around the fake proxy, on a second request (the first one defines the metrics,
//! once per VM), with the benchmark's gateway (`tests/bench/fixtures/gateway-cache.yaml`: two
//! JWT providers, token cache on, metrics and the access record on). BENCHMARKS.md's table
//! "host calls per request by scenario" comes from `cargo test --test host_calls -- --nocapture`.
//!
//! The gRPC pass-through count is a budget: a change that adds host calls to that path fails
//! here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use common::FakeHost;
use meshgate::filter::{Scheduler, Vm};
use meshgate::host::{BodyKind, Headers, Host, HostResult, Level, MapKind, MetricId, MetricKind};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bench/fixtures");
const UPDATE: &str = "/v1/payments/pay_001";
const GRPC_UPDATE: &str = "/meshgate.demo.v1.Payments/UpdatePayment";

/// The fake proxy, with a count of the calls made through it by kind.
struct Counting {
    inner: FakeHost,
    calls: RefCell<BTreeMap<&'static str, usize>>,
}

impl Counting {
    fn new(inner: FakeHost) -> Counting {
        Counting {
            inner,
            calls: RefCell::new(BTreeMap::new()),
        }
    }

    fn note(&self, kind: &'static str) {
        *self.calls.borrow_mut().entry(kind).or_default() += 1;
    }

    fn total(&self) -> usize {
        self.calls.borrow().values().sum()
    }

    fn reset(&self) {
        self.calls.borrow_mut().clear();
    }

    fn summary(&self) -> String {
        let calls = self.calls.borrow();
        let parts: Vec<String> = calls.iter().map(|(k, n)| format!("{k} {n}")).collect();
        format!("{} ({})", self.total(), parts.join(", "))
    }
}

impl Host for Counting {
    fn now(&self) -> SystemTime {
        self.note("clock");
        self.inner.now()
    }
    fn headers(&self, map: MapKind) -> Headers {
        self.note("header map read");
        self.inner.headers(map)
    }
    fn header(&self, map: MapKind, name: &str) -> Option<String> {
        self.note("header read");
        self.inner.header(map, name)
    }
    fn set_header(&mut self, map: MapKind, name: &str, value: Option<&str>) -> HostResult<()> {
        self.note("header write");
        self.inner.set_header(map, name, value)
    }
    fn add_header(&mut self, map: MapKind, name: &str, value: &str) -> HostResult<()> {
        self.note("header write");
        self.inner.add_header(map, name, value)
    }
    fn set_headers(&mut self, map: MapKind, headers: &[(String, String)]) -> HostResult<()> {
        self.note("header map write");
        self.inner.set_headers(map, headers)
    }
    fn body(&self, kind: BodyKind, start: usize, size: usize) -> Option<Vec<u8>> {
        self.note("body read");
        self.inner.body(kind, start, size)
    }
    fn set_body(&mut self, kind: BodyKind, bytes: &[u8]) -> HostResult<()> {
        self.note("body write");
        self.inner.set_body(kind, bytes)
    }
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.note("property read");
        self.inner.property(path)
    }
    /// As the wasm host reads them where Envoy has CEL: one `expr_evaluate` call.
    fn properties(&self, paths: &[&[&str]]) -> Vec<Option<Vec<u8>>> {
        self.note("property batch read");
        paths.iter().map(|p| self.inner.property(p)).collect()
    }
    fn set_property(&mut self, path: &[&str], value: &[u8]) -> HostResult<()> {
        self.note("filter state write");
        self.inner.set_property(path, value)
    }
    fn send_response(
        &mut self,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> HostResult<()> {
        self.note("local reply");
        self.inner.send_response(status, headers, body)
    }
    fn resume_request(&mut self) {
        self.note("resume");
        self.inner.resume_request()
    }
    fn resume_response(&mut self) {
        self.note("resume");
        self.inner.resume_response()
    }
    fn log(&self, level: Level, message: &str) {
        self.note("log");
        self.inner.log(level, message)
    }
    fn increment_metric(&self, id: MetricId, delta: i64) {
        self.note("metric");
        self.inner.increment_metric(id, delta)
    }
    fn record_metric(&self, id: MetricId, value: u64) {
        self.note("metric");
        self.inner.record_metric(id, value)
    }
    fn define_metric(&self, kind: MetricKind, name: &str) -> HostResult<MetricId> {
        self.note("metric definition");
        self.inner.define_metric(kind, name)
    }
    fn http_call(
        &mut self,
        cluster: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> HostResult<u32> {
        self.note("http call");
        self.inner.http_call(cluster, headers, body, timeout)
    }
    fn call_response_headers(&self) -> Headers {
        self.note("call reply read");
        self.inner.call_response_headers()
    }
    fn call_response_body(&self, size: usize) -> Option<Vec<u8>> {
        self.note("call reply read");
        self.inner.call_response_body(size)
    }
    fn call_response_trailers(&self) -> Headers {
        self.note("call reply read");
        self.inner.call_response_trailers()
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(name)).expect("fixture (tests/bench/fixtures.py)")
}

fn scheduler() -> Rc<Scheduler> {
    scheduler_with(|_| {})
}

/// The benchmark's gateway, its filter configuration changed by `edit` first.
fn scheduler_with(edit: impl FnOnce(&mut serde_json::Value)) -> Rc<Scheduler> {
    let json = meshgate::cli::compile_file(&Path::new(FIXTURES).join("gateway-cache.yaml"))
        .expect("compile");
    let mut value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    edit(&mut value);
    let config = meshgate::config::compile_json(value.to_string().as_bytes()).expect("config");
    Rc::new(Scheduler::new(Rc::new(Vm::new(config))))
}

fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

fn int(n: i64) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}

/// What Envoy knows at the end of a request (the record's properties).
fn finished(mut h: FakeHost) -> FakeHost {
    for (path, value) in [
        ("response.code", int(200)),
        ("response.grpc_status", int(0)),
        ("request.duration", int(3_000_000)),
        ("request.total_size", int(400)),
        ("response.total_size", int(300)),
    ] {
        h.properties.insert(path.to_string(), value);
    }
    h.properties
        .insert("source.address".into(), b"127.0.0.1:40000".to_vec());
    h.properties
        .insert("request.protocol".into(), b"HTTP/2".to_vec());
    h.properties
        .insert("response.code_details".into(), b"via_upstream".to_vec());
    h
}

/// One request through Envoy's router (headers, body, gRPC reply, trailers, log); returns the
/// host with its counts and the record.
fn routed(
    sched: &Rc<Scheduler>,
    context: u32,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Counting {
    let mut extra = vec![("x-request-id", "bench-1"), ("user-agent", "h2load")];
    extra.extend_from_slice(headers);
    let mut inner = finished(FakeHost::with_request(method, path, &extra));
    inner.request_body = body.to_vec();
    let reply = frame(&fixture("small.pb"));
    inner.response_body = reply.clone();
    inner.maps.insert(
        "response_headers",
        vec![
            (":status".into(), "200".into()),
            ("content-type".into(), "application/grpc".into()),
        ],
    );
    inner.maps.insert(
        "response_trailers",
        vec![("grpc-status".into(), "0".into())],
    );
    let mut h = Counting::new(inner);
    let stream = sched.stream(context);
    stream.on_request_headers(&mut h, body.is_empty());
    if !body.is_empty() {
        stream.on_request_body(&mut h, body.len(), true);
    }
    assert!(h.inner.local_reply.is_none(), "{:?}", h.inner.local_reply);
    stream.on_response_headers(&mut h, false);
    stream.on_response_body(&mut h, reply.len(), false);
    stream.on_response_trailers(&mut h);
    stream.on_log(&mut h);
    h
}

/// A body-less transcoded GET: meshgate sends it as a side call and answers with its reply.
fn side_call(sched: &Rc<Scheduler>, context: u32) -> Counting {
    let inner = finished(FakeHost::with_request(
        "GET",
        UPDATE,
        &[("x-request-id", "bench-1"), ("user-agent", "h2load")],
    ))
    .with_call_reply(
        &[(":status", "200"), ("content-type", "application/grpc")],
        &frame(&fixture("small.pb")),
    );
    let mut h = Counting::new(inner);
    h.inner.call_reply.2 = vec![("grpc-status".into(), "0".into())];
    let stream = sched.stream(context);
    stream.on_request_headers(&mut h, true);
    assert_eq!(h.inner.http_calls.len(), 1, "a side call left");
    let body = h.inner.call_reply.1.len();
    stream.on_http_call_response(&mut h, 1, 2, body);
    assert_eq!(h.inner.local_reply.as_ref().map(|r| r.0), Some(200));
    // The local reply passes through the response callbacks like any other.
    h.inner.maps.insert(
        "response_headers",
        vec![
            (":status".into(), "200".into()),
            ("content-type".into(), "application/json".into()),
        ],
    );
    stream.on_response_headers(&mut h, false);
    stream.on_response_body(&mut h, 10, true);
    stream.on_log(&mut h);
    h
}

fn record(h: &Counting) -> serde_json::Value {
    let line = h.inner.properties.get("meshgate.record").expect("record");
    serde_json::from_slice(line).expect("record is JSON")
}

type Scenario = fn(&Rc<Scheduler>, u32) -> Counting;

fn grpc(sched: &Rc<Scheduler>, context: u32) -> Counting {
    let mut update = vec![0x0a, fixture("small.pb").len() as u8];
    update.extend(fixture("small.pb"));
    let headers = [("content-type", "application/grpc"), ("te", "trailers")];
    routed(
        sched,
        context,
        "POST",
        GRPC_UPDATE,
        &headers,
        &frame(&update),
    )
}

fn json(sched: &Rc<Scheduler>, context: u32) -> Counting {
    let headers = [("content-type", "application/json")];
    routed(
        sched,
        context,
        "PATCH",
        UPDATE,
        &headers,
        &fixture("small.json"),
    )
}

fn jwt(sched: &Rc<Scheduler>, context: u32) -> Counting {
    let token = String::from_utf8(fixture("rs256.jwt")).unwrap();
    let bearer = format!("Bearer {}", token.trim());
    let headers = [
        ("content-type", "application/json"),
        ("authorization", bearer.as_str()),
    ];
    routed(
        sched,
        context,
        "PATCH",
        UPDATE,
        &headers,
        &fixture("small.json"),
    )
}

const SCENARIOS: [(&str, Scenario); 4] = [
    ("grpc (native gRPC pass-through)", grpc),
    ("json (JSON unary through the router)", json),
    ("json-get (JSON GET, side call)", side_call),
    ("jwt-rs256 (JSON unary + RS256 token, cached)", jwt),
];

/// The second request of a fresh VM (the first defines the metrics and fills the caches).
fn steady(scenario: Scenario) -> Counting {
    let sched = scheduler();
    let first = scenario(&sched, 1);
    first.reset();
    scenario(&sched, 2)
}

#[test]
fn host_calls_per_request_by_scenario() {
    for (name, scenario) in SCENARIOS {
        let h = steady(scenario);
        let r = record(&h);
        assert_eq!(r["httpRequest"]["status"], 200, "{name}: {r}");
        println!("{name}: {}", h.summary());
    }
}

/// The budget of the gRPC pass-through path (with the record and metrics on). Before the
/// host-call work of issue 20 it made 28 calls: 9 property reads (7 of them in `on_log`), 3
/// header map reads (request, response, trailers), 2 clock reads in one callback, 8 filter
/// state writes. Now 13: two batched property reads (the route's policy with
/// `connection.mtls`; the record's facts), one filter state write (the record: the per-field
/// keys only where `observe.filter_state` lists them, the operation and upstream early only
/// where Envoy traces).
#[test]
fn grpc_pass_through_stays_within_its_host_call_budget() {
    let h = steady(grpc);
    let r = record(&h);
    assert_eq!(r["operation"], "meshgate.demo.v1.Payments.UpdatePayment");
    assert_eq!(r["grpcStatus"], "OK");
    assert_eq!(r["httpRequest"]["latency"], "0.003s");
    let calls = h.calls.borrow().clone();
    println!("grpc pass-through: {}", h.summary());
    assert!(h.total() <= 13, "{}", h.summary());
    let count = |kind: &str| calls.get(kind).copied().unwrap_or(0);
    assert_eq!(count("header map read"), 1, "{calls:?}");
    assert_eq!(count("property read"), 0, "{calls:?}");
    assert_eq!(count("property batch read"), 2, "{calls:?}");
    assert_eq!(count("filter state write"), 1, "{calls:?}");
}

/// Fewer calls, same record: native gRPC's status is read from its trailers in meshgate's own
/// callback, not only from Envoy's `response.grpc_status`, which a later filter (gRPC-Web's,
/// turning the trailers into body bytes) leaves at UNKNOWN for an HTTP 200.
#[test]
fn native_grpc_status_comes_from_the_trailers_meshgate_saw() {
    let sched = scheduler();
    let mut update = vec![0x0a, fixture("small.pb").len() as u8];
    update.extend(fixture("small.pb"));
    let mut inner = finished(FakeHost::with_request(
        "POST",
        GRPC_UPDATE,
        &[("content-type", "application/grpc")],
    ));
    inner
        .properties
        .insert("response.grpc_status".into(), int(2));
    inner.maps.insert(
        "response_headers",
        vec![
            (":status".into(), "200".into()),
            ("content-type".into(), "application/grpc".into()),
        ],
    );
    inner.maps.insert(
        "response_trailers",
        vec![("grpc-status".into(), "5".into())],
    );
    let mut h = Counting::new(inner);
    let stream = sched.stream(1);
    stream.on_request_headers(&mut h, false);
    stream.on_request_body(&mut h, frame(&update).len(), true);
    stream.on_response_headers(&mut h, false);
    stream.on_response_trailers(&mut h);
    stream.on_log(&mut h);
    let r = record(&h);
    assert_eq!(r["grpcStatus"], "NOT_FOUND", "{r}");
    assert_eq!(r["outcome"], "not_found", "{r}");

    // A trailers-only reply: the status is in the headers.
    let mut inner = finished(FakeHost::with_request(
        "POST",
        GRPC_UPDATE,
        &[("content-type", "application/grpc")],
    ));
    inner
        .properties
        .insert("response.grpc_status".into(), int(2));
    inner.maps.insert(
        "response_headers",
        vec![
            (":status".into(), "200".into()),
            ("content-type".into(), "application/grpc".into()),
            ("grpc-status".into(), "7".into()),
        ],
    );
    let mut h = Counting::new(inner);
    let stream = sched.stream(2);
    stream.on_request_headers(&mut h, false);
    stream.on_response_headers(&mut h, true);
    stream.on_log(&mut h);
    assert_eq!(record(&h)["grpcStatus"], "PERMISSION_DENIED");
}

/// The record's fields are filter state of their own only where `observe.filter_state` lists
/// them: by default the whole record alone (the operation and upstream are written when the
/// operation matches only where Envoy traces: `span_flow.rs`).
#[test]
fn per_field_filter_state_is_written_only_where_listed() {
    let keys = |h: &Counting| -> Vec<String> {
        let mut k: Vec<String> = h.inner.properties.keys().cloned().collect();
        k.retain(|k| k.starts_with("meshgate."));
        k.sort();
        k
    };
    let h = steady(grpc);
    assert_eq!(keys(&h), ["meshgate.record"]);

    let sched = scheduler_with(|c| {
        c["observe"]["filter_state"] = serde_json::json!(["outcome", "operation"])
    });
    grpc(&sched, 1);
    let h = grpc(&sched, 2);
    assert_eq!(
        keys(&h),
        ["meshgate.operation", "meshgate.outcome", "meshgate.record"]
    );
    assert_eq!(h.inner.properties["meshgate.outcome"], b"ok");

    let sched = scheduler_with(|c| c["observe"]["filter_state"] = serde_json::json!(["all"]));
    let h = grpc(&sched, 1);
    for key in [
        "meshgate.grpc_status",
        "meshgate.client_protocol",
        "meshgate.slo.availability",
        "meshgate.slo.latency",
    ] {
        assert!(
            h.inner.properties.contains_key(key),
            "{key}: {:?}",
            keys(&h)
        );
    }
}
