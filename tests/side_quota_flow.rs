//! Host-side flow of the clients' quotas on side calls (`src/filter/side_quota.rs`): a body-less
//! transcoded call from an API-key client with a quota reads the clock once in its callback
//! (the callback's time, not a second read), and finds its client through the configuration's
//! index. End to end: `tests/kit/tests/e2e_ratelimit_local.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::rc::Rc;

use common::{demo_config, FakeHost};
use meshgate::filter::{Filter, Vm};

/// The demo partner's public key (envoy/gateway.yaml: quota 20 a minute).
const PARTNER_KEY: &str = "mgk_demo_partner";

/// Clock reads of the second request (the first defines the VM's metrics) of a body-less call
/// by the demo partner, whose quota is kept by meshgate (`quota`) or not.
fn clock_reads(quota: bool) -> usize {
    let mut config = demo_config();
    let keys = config.auth.api_keys.as_mut().unwrap();
    assert!(keys.client_named("demo-partner").unwrap().quota.is_some());
    if !quota {
        for c in &mut keys.clients {
            c.quota = None;
        }
    }
    let vm = Rc::new(Vm::new(config));
    let mut reads = 0;
    for id in [1, 2] {
        let mut f = Filter::new(vm.clone(), id);
        let mut h = FakeHost::with_request(
            "GET",
            "/v1/payments/pay_001/status",
            &[("x-api-key", PARTNER_KEY)],
        );
        f.on_request_headers(&mut h, true);
        assert_eq!(h.local_reply, None, "{:?}", h.local_reply);
        assert_eq!(h.http_calls.len(), 1, "a GET is a side call");
        reads = h.clock_reads.get();
    }
    reads
}

/// The quota takes the callback's time: keeping it costs no clock read of its own.
#[test]
fn a_side_call_quota_reads_no_clock_of_its_own() {
    let (with, without) = (clock_reads(true), clock_reads(false));
    assert!(without >= 1);
    assert_eq!(with, without);
}
