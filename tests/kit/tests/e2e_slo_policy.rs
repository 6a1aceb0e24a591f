//! Issue 5 end to end (policies and filter state): a route's policy objective applies and its
//! good counter exists from the first failure; Envoy's own access log sees meshgate's
//! per-field filter state, and requests with the filter off have none.
//!
//! The gateway: [`e2e_slo_support`] (Payments needs a token of provider `test`, availability
//! 99.9 and latency 95% under 300 ms; Wallets is public with `observe.default_slo`; the
//! `partner` policy on `/meshgate.demo.v1.Wallets/` has latency 90% under 100 ms; a second
//! Envoy access log prints meshgate's per-field filter state). Every request carries its own
//! trace id, so each record is found by its trace. Split from `e2e_slo.rs` by behaviour:
//! `e2e_slo_grpc.rs`, `e2e_slo_transcoded.rs`, `e2e_slo_policy.rs`.
//!
//! Needs `build/meshgate.wasm` (`make wasm`) and Envoy (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_slo_support;

use e2e_slo_support::*;
use meshgate_kit::harness::{http1_client, payments_client, wallets_client};
use meshgate_kit::proto::meshgate::demo::v1::GetWalletRequest;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn policy_objective_good_counter_from_first_failure_and_filter_state_log() {
    let f = start("state");
    let gw = &f.gw;
    let mut wallets = wallets_client(gw.addr()).await.unwrap();
    let wallet = || GetWalletRequest {
        wallet_id: "w_001".into(),
    };
    // 21: the very first request of the operation fails: the good counter must exist (at 0),
    // or the error ratio would have no series.
    wallets
        .get_wallet(grpc_request(
            wallet(),
            &[
                ("traceparent", traceparent(21, true)),
                ("x-demo-fail", "UNAVAILABLE".into()),
            ],
        ))
        .await
        .unwrap_err();
    let op = ("operation", GET_WALLET);
    let av = ("slo", "availability");
    let lat = ("slo", "latency");
    wait_for_metrics(
        gw,
        &[
            ("meshgate_slo_events_total", vec![op, av, PARTNER], 1.0),
            ("meshgate_slo_good_events_total", vec![op, av, PARTNER], 0.0),
        ],
    );
    // 22: slower than the partner policy's 100 ms (the service itself has no latency
    // objective, so only the policy makes this a latency event).
    wallets
        .get_wallet(grpc_request(
            wallet(),
            &[
                ("traceparent", traceparent(22, true)),
                ("x-demo-delay-ms", "400".into()),
            ],
        ))
        .await
        .unwrap();
    // 23: fast.
    wallets
        .get_wallet(grpc_request(
            wallet(),
            &[("traceparent", traceparent(23, true))],
        ))
        .await
        .unwrap();

    let first = record(gw, 21);
    assert_eq!(first["policy"], "partner", "{first}");
    assert_eq!(first["upstream"], "wallets");
    assert!(first.get("principal").is_none(), "public operation");
    assert_slo(&first, "bad", "n/a");
    let slow = record(gw, 22);
    assert_slo(&slow, "good", "bad");
    let fast = record(gw, 23);
    assert_slo(&fast, "good", "good");

    let text = wait_for_metrics(
        gw,
        &[
            ("meshgate_slo_events_total", vec![op, av, PARTNER], 3.0),
            ("meshgate_slo_good_events_total", vec![op, av, PARTNER], 2.0),
            ("meshgate_slo_events_total", vec![op, lat, PARTNER], 2.0),
            (
                "meshgate_slo_good_events_total",
                vec![op, lat, PARTNER],
                1.0,
            ),
            ("meshgate_request_duration_ms_count", vec![op], 3.0),
        ],
    );
    assert!(
        prom(
            &text,
            "meshgate_request_duration_ms_bucket",
            &[op, ("le", "100")]
        )
        .is_some(),
        "the policy's threshold is a bucket"
    );

    // A token-carrying request for the principal field, then an unknown path (no operation).
    let mut payments = payments_client(gw.addr()).await.unwrap();
    payments
        .get_payment(grpc_request(
            get_payment("pay_001"),
            &[bearer(), ("traceparent", traceparent(24, true))],
        ))
        .await
        .unwrap();
    let r = http1_client()
        .get(&gw.url("/no/such/path"), &[])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 404);

    // A route where meshgate is off: no meshgate record, so no line in the fields log (a `-`
    // there would be a line no JSON parser accepts); Envoy writes its record in the records
    // log instead.
    http1_client()
        .get(&gw.url("/plain/anything"), &[])
        .await
        .unwrap();

    let lines = field_lines(&f, 6);
    assert_eq!(lines.len(), 6, "one line per request: {lines:?}");
    assert_eq!(
        lines[5],
        "operation=- upstream=- principal=- policy=- grpc_status=- outcome=- \
         slo.availability=- slo.latency=- path=/plain/anything"
    );
    assert_eq!(
        lines[0],
        format!(
            "operation={GET_WALLET} upstream=wallets principal=- policy=partner \
             grpc_status=UNAVAILABLE outcome=unavailable slo.availability=bad \
             slo.latency=n/a path=/meshgate.demo.v1.Wallets/GetWallet"
        )
    );
    assert!(
        lines[1].contains("slo.availability=good slo.latency=bad"),
        "{}",
        lines[1]
    );
    assert_eq!(
        lines[3],
        format!(
            "operation={GET_PAYMENT} upstream=payments principal={SUBJECT} policy=- \
             grpc_status=OK outcome=ok slo.availability=good slo.latency=good \
             path=/meshgate.demo.v1.Payments/GetPayment"
        )
    );
    assert!(
        lines[4].starts_with("operation=- upstream=- principal=- policy=- grpc_status=NOT_FOUND"),
        "{}",
        lines[4]
    );
    // No operation: judged by the default objective's availability (a 404 is the client's).
    assert!(lines[4].contains("slo.availability=good slo.latency=n/a"));
    // Envoy's stdout holds meshgate's records and nothing else: clean JSON lines (`stdout()`
    // has Envoy write out everything its access logs hold first).
    let stdout = gw.envoy.stdout();
    assert!(!stdout.is_empty());
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
        assert!(v["severity"].is_string() && v["httpRequest"].is_object());
    }
    // One line per request: five meshgate wrote, and Envoy's for the request meshgate never saw.
    let by = |who: &str| {
        stdout
            .lines()
            .filter(|l| l.contains(&format!("\"recordedBy\":\"{who}\"")))
            .count()
    };
    assert_eq!((by("meshgate"), by("envoy")), (5, 1), "{stdout}");
    assert_eq!(stdout.lines().count(), 6);
}
