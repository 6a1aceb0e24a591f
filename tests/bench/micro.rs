//! Criterion micro-benchmarks of meshgate's core (`cargo bench --bench micro`), run on the host
//! against the fake proxy of the host-side tests. Fixtures (gateway with inline RS256/ES256
//! keys, tokens, Payment bodies) are written by `tests/bench/fixtures.py`.
//!
//! - `request/*`: one whole request through the filter (headers, body, gRPC reply, trailers,
//!   log): JSON->protobuf and protobuf->JSON per message size, HTTP+Protobuf, gRPC pass-through;
//! - `jwt/*`: the same small JSON request with a token, cache on and off, per algorithm;
//! - `match/1k`: operation matching among 1,000 operations.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

// The fake host belongs to the host-side tests (not formatted from here).
#[rustfmt::skip]
#[path = "../common/mod.rs"]
mod common;

use std::hint::black_box;
use std::path::Path;
use std::rc::Rc;

use common::FakeHost;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use meshgate::filter::{Filter, Vm};
use meshgate::operation::{Matcher, UrlUnescapeSpec};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bench/fixtures");
const UPDATE: &str = "/v1/payments/pay_001";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(name)).expect("fixture (tests/bench/fixtures.py)")
}

fn vm(gateway: &str) -> Rc<Vm> {
    let json = meshgate::cli::compile_file(&Path::new(FIXTURES).join(gateway)).expect("compile");
    let config = meshgate::config::compile_json(json.as_bytes()).expect("config");
    Rc::new(Vm::new(config))
}

fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// One request and its gRPC reply through the whole filter; returns the client's body size.
fn exchange(
    vm: &Rc<Vm>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    reply: &[u8],
) -> usize {
    let mut host = FakeHost::with_request(method, path, headers);
    host.request_body = body.to_vec();
    let mut f = Filter::new(vm.clone(), 1);
    f.on_request_headers(&mut host, body.is_empty());
    if !body.is_empty() {
        f.on_request_body(&mut host, body.len(), true);
    }
    assert!(
        host.local_reply.is_none(),
        "refused: {:?}",
        host.local_reply
    );
    let grpc = vec![
        (":status".to_string(), "200".to_string()),
        ("content-type".to_string(), "application/grpc".to_string()),
    ];
    host.maps.insert("response_headers", grpc);
    host.response_body = reply.to_vec();
    f.on_response_headers(&mut host, false);
    f.on_response_body(&mut host, reply.len(), false);
    host.maps.insert(
        "response_trailers",
        vec![("grpc-status".to_string(), "0".to_string())],
    );
    f.on_response_trailers(&mut host);
    f.on_log(&mut host);
    host.response_body.len()
}

fn requests(c: &mut Criterion) {
    let vm = vm("gateway-cache.yaml");
    let json_ct = [("content-type", "application/json")];
    let mut g = c.benchmark_group("request");
    for size in ["small", "big"] {
        let json = fixture(&format!("{size}.json"));
        let pb = fixture(&format!("{size}.pb"));
        let reply = frame(&pb);
        g.throughput(Throughput::Bytes(json.len() as u64));
        g.bench_function(format!("json_{size}"), |b| {
            b.iter(|| exchange(&vm, "PATCH", UPDATE, &json_ct, black_box(&json), &reply))
        });
        let mut update = vec![0x0a];
        update.extend(varint(pb.len()));
        update.extend_from_slice(&pb);
        let grpc_ct = [("content-type", "application/grpc"), ("te", "trailers")];
        let grpc_body = frame(&update);
        g.bench_function(format!("grpc_passthrough_{size}"), |b| {
            b.iter(|| {
                let path = "/meshgate.demo.v1.Payments/UpdatePayment";
                exchange(&vm, "POST", path, &grpc_ct, black_box(&grpc_body), &reply)
            })
        });
    }
    let pb = fixture("small.pb");
    let reply = frame(&pb);
    let pb_ct = [("content-type", "application/x-protobuf")];
    g.bench_function("protobuf_small", |b| {
        b.iter(|| exchange(&vm, "PATCH", UPDATE, &pb_ct, black_box(&pb), &reply))
    });
    g.finish();
}

fn varint(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

fn jwt(c: &mut Criterion) {
    let json = fixture("small.json");
    let reply = frame(&fixture("small.pb"));
    let mut g = c.benchmark_group("jwt");
    for (cache, gateway) in [
        ("cached", "gateway-cache.yaml"),
        ("uncached", "gateway-nocache.yaml"),
    ] {
        let vm = vm(gateway);
        for alg in ["rs256", "es256"] {
            let token = String::from_utf8(fixture(&format!("{alg}.jwt"))).unwrap();
            let bearer = format!("Bearer {token}");
            let headers = [
                ("content-type", "application/json"),
                ("authorization", bearer.as_str()),
            ];
            g.bench_function(format!("{alg}_{cache}"), |b| {
                b.iter(|| exchange(&vm, "PATCH", UPDATE, &headers, black_box(&json), &reply))
            });
        }
    }
    g.finish();
}

fn matching(c: &mut Criterion) {
    let mut m = Matcher::new();
    for i in 0..1000 {
        let template = match i % 4 {
            0 => format!("/v1/svc{i}/items/{{id}}"),
            1 => format!("/v1/{{parent=projects/*}}/svc{i}/items"),
            2 => format!("/v1/svc{i}/items/{{id}}:cancel"),
            _ => format!("/v2/svc{i}/{{name=**}}"),
        };
        m.insert(if i % 2 == 0 { "GET" } else { "POST" }, &template, i)
            .unwrap();
    }
    assert_eq!(m.len(), 1000);
    let spec = UrlUnescapeSpec::default();
    let mut g = c.benchmark_group("match");
    g.bench_function("1k_first", |b| {
        b.iter(|| {
            m.lookup("GET", black_box("/v1/svc0/items/abc"), spec)
                .is_some()
        })
    });
    g.bench_function("1k_last", |b| {
        b.iter(|| {
            m.lookup("POST", black_box("/v2/svc999/a/b/c"), spec)
                .is_some()
        })
    });
    g.bench_function("1k_verb", |b| {
        b.iter(|| {
            m.lookup("GET", black_box("/v1/svc502/items/x:cancel"), spec)
                .is_some()
        })
    });
    g.bench_function("1k_miss", |b| {
        b.iter(|| {
            m.lookup("GET", black_box("/v9/nothing/here"), spec)
                .is_none()
        })
    });
    g.finish();
}

criterion_group!(benches, requests, jwt, matching);
criterion_main!(benches);
