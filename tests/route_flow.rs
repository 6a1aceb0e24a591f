//! Host-side routing: which policy a route selects (metadata before name), the request id
//! meshgate generates when the proxy gave the request none, and the headers it owns (client
//! copies removed). End to end: `tests/kit/tests/e2e_route_*.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::rc::Rc;
use std::time::{Duration, SystemTime};

use common::{demo_config, FakeHost};
use meshgate::config::Routing;
use meshgate::filter::{Filter, Vm};
use meshgate::host::MapKind;
use meshgate::route::select_policy;

const METADATA: &str = "xds.route_metadata.filter_metadata.meshgate.policy";
const NAME: &str = "xds.route_name";

fn routing() -> Routing {
    Routing {
        upstream_header: "x-meshgate-upstream".into(),
        operation_header: "x-meshgate-operation".into(),
        subject_header: "x-meshgate-subject".into(),
        generate_request_id: true,
        policy_metadata_key: "policy".into(),
        route_policies: [("payments-grpc-only".to_string(), "grpc-only".to_string())]
            .into_iter()
            .collect(),
    }
}

fn host(metadata: Option<&[u8]>, name: Option<&str>) -> FakeHost {
    let mut h = FakeHost::default();
    if let Some(m) = metadata {
        h.properties.insert(METADATA.into(), m.to_vec());
    }
    if let Some(n) = name {
        h.properties.insert(NAME.into(), n.as_bytes().to_vec());
    }
    h
}

#[test]
fn route_metadata_wins_over_the_route_name() {
    let r = routing();
    let pick =
        |metadata: Option<&[u8]>, name: Option<&str>| select_policy(&host(metadata, name), &r);
    // Both: the metadata's policy, not the one the name maps to.
    assert_eq!(
        pick(Some(b"gold"), Some("payments-grpc-only")).as_deref(),
        Some("gold")
    );
    // Only one of them.
    assert_eq!(
        pick(None, Some("payments-grpc-only")).as_deref(),
        Some("grpc-only")
    );
    assert_eq!(pick(Some(b"gold"), None).as_deref(), Some("gold"));
    // An empty metadata value names nothing: the name decides.
    assert_eq!(
        pick(Some(b""), Some("payments-grpc-only")).as_deref(),
        Some("grpc-only")
    );
    // A name that is not mapped, or nothing at all: no policy.
    assert_eq!(pick(None, Some("other")), None);
    assert_eq!(pick(None, None), None);
    // Another metadata key: `policy` is not read.
    let mut r2 = routing();
    r2.policy_metadata_key = "tier".into();
    let h = host(Some(b"gold"), Some("payments-grpc-only"));
    assert_eq!(select_policy(&h, &r2).as_deref(), Some("grpc-only"));
    let mut h = h;
    h.properties.insert(
        "xds.route_metadata.filter_metadata.meshgate.tier".into(),
        b"silver".to_vec(),
    );
    assert_eq!(select_policy(&h, &r2).as_deref(), Some("silver"));
}

fn native_get_payment(extra: &[(&str, &str)]) -> FakeHost {
    let mut headers = vec![("content-type", "application/grpc"), ("te", "trailers")];
    headers.extend_from_slice(extra);
    FakeHost::with_request("POST", "/meshgate.demo.v1.Payments/GetPayment", &headers)
}

/// `<32 hex digits: the time in ns>-<8 hex digits: the filter's context id>`.
fn is_meshgate_id(id: &str, context_id: u32) -> bool {
    let Some((time, context)) = id.split_once('-') else {
        return false;
    };
    time.len() == 32
        && time.bytes().all(|b| b.is_ascii_hexdigit())
        && context == format!("{context_id:08x}")
}

#[test]
fn a_request_without_an_id_gets_one_from_meshgate() {
    let vm = Rc::new(Vm::new(demo_config()));
    // Native gRPC: the id goes to the upstream in the request headers, and into the record.
    let mut f = Filter::new(vm.clone(), 0x2a);
    let mut h = native_get_payment(&[]);
    let now = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_800_000_000_123_456_789);
    h.now = Some(now);
    f.on_request_headers(&mut h, false);
    let id = h.get(MapKind::RequestHeaders, "x-request-id").unwrap();
    assert!(is_meshgate_id(&id, 0x2a), "{id}");
    assert_eq!(
        id,
        format!("{:032x}-0000002a", 1_800_000_000_123_456_789u128)
    );
    f.on_log(&mut h);
    let record: serde_json::Value =
        serde_json::from_slice(&h.properties["meshgate.record"]).unwrap();
    assert_eq!(record["requestId"], id.as_str(), "{record}");

    // A transcoded GET (a side call): the call carries the id.
    let mut f = Filter::new(vm.clone(), 7);
    let mut h = FakeHost::with_request("GET", "/v1/payments/pay_001", &[]);
    f.on_request_headers(&mut h, true);
    let (_, headers, _) = h.http_calls.first().expect("a side call");
    let sent = headers
        .iter()
        .find(|(k, _)| k == "x-request-id")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(is_meshgate_id(&sent, 7), "{sent}");

    // The client's id (or the proxy's) is kept.
    let mut f = Filter::new(vm, 8);
    let mut h = native_get_payment(&[("x-request-id", "from-client")]);
    f.on_request_headers(&mut h, false);
    assert_eq!(
        h.get(MapKind::RequestHeaders, "x-request-id").as_deref(),
        Some("from-client")
    );
}

#[test]
fn no_id_is_generated_when_the_configuration_says_so() {
    let mut config = demo_config();
    config.routing.generate_request_id = false;
    let vm = Rc::new(Vm::new(config));
    let mut f = Filter::new(vm, 3);
    let mut h = native_get_payment(&[]);
    f.on_request_headers(&mut h, false);
    assert_eq!(h.get(MapKind::RequestHeaders, "x-request-id"), None);
    // The request was routed all the same.
    assert_eq!(
        h.get(MapKind::RequestHeaders, "x-meshgate-upstream")
            .as_deref(),
        Some("payments")
    );
    f.on_log(&mut h);
    let record: serde_json::Value =
        serde_json::from_slice(&h.properties["meshgate.record"]).unwrap();
    assert!(record.get("requestId").is_none(), "{record}");
}

/// The headers meshgate sets on transcoded (and REST) requests are its own: a native gRPC
/// client's copies are removed, so `local_reply_config` cannot take the call for a
/// transcoded one.
#[test]
fn client_copies_of_the_original_path_and_method_are_removed() {
    let config = demo_config();
    for h in ["x-envoy-original-path", "x-envoy-original-method"] {
        assert!(config.owned_headers.iter().any(|o| o == h), "{h} is owned");
    }
    let vm = Rc::new(Vm::new(config));
    let mut f = Filter::new(vm, 4);
    let mut h = native_get_payment(&[
        ("x-envoy-original-method", "GET"),
        ("x-envoy-original-path", "/v1/payments/pay_001"),
    ]);
    f.on_request_headers(&mut h, false);
    assert_eq!(
        h.get(MapKind::RequestHeaders, "x-envoy-original-method"),
        None
    );
    assert_eq!(
        h.get(MapKind::RequestHeaders, "x-envoy-original-path"),
        None
    );
    assert_eq!(
        h.get(MapKind::RequestHeaders, ":path").as_deref(),
        Some("/meshgate.demo.v1.Payments/GetPayment")
    );
}
