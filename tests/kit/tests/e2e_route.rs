//! Issue 4 end to end: one Envoy listener in front of two gRPC services (payments, wallets) and
//! two REST backends, configured from `envoy/gateway-policies.yaml`. Each operation reaches its
//! service (transcoded and native gRPC), spoofed routing headers are stripped, trace context
//! and request ids pass through, routes choose a policy by metadata and by name, one route
//! switches meshgate off, and REST backends get their rewritten paths.
//!
//! Needs `build/meshgate.wasm` (`make wasm`) and Envoy (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meshgate::cli::envoy::{parse_route, RouteSpec};
use meshgate_fixtures::hs256;
use meshgate_kit::harness::{
    grpc_frame, http1_client, http2_client, payments_client, repo_root, wallets_client, Gateway,
    GatewayBuilder, HttpClient, RawResponse,
};
use meshgate_kit::proto::meshgate::demo::v1::{GetPaymentRequest, GetWalletRequest};
use serde_json::{json, Value};

/// The routes of `envoy/gateway-policies.yaml`'s documented `meshgate envoy` invocation.
pub const ROUTES: [&str; 5] = [
    "name=wallets-strict,prefix=/v1/wallets/,cluster=wallets,policy=strict",
    "name=payments-grpc-only,prefix=/v1/payments/pay_002,cluster=payments",
    "name=direct,prefix=/direct/,cluster=legacy-append,disabled",
    "name=grpc-api,prefix=/meshgate.demo.v1.,cluster=payments,policy=gold",
    "name=legacy-private,prefix=/legacy/docs/private/,cluster=legacy-append,policy=strict",
];

fn routes() -> Vec<RouteSpec> {
    ROUTES.iter().map(|r| parse_route(r).unwrap()).collect()
}

fn gateway() -> Gateway {
    builder(repo_root().join("envoy/gateway-policies.yaml"))
        .start()
        .unwrap()
}

/// The gateway of [`gateway`] for any configuration file: the backends and [`ROUTES`], plus
/// two routes outside the documented example.
fn builder(yaml: std::path::PathBuf) -> GatewayBuilder {
    let mut b = GatewayBuilder::new(yaml)
        .grpc_upstream("payments", "payments")
        .grpc_upstream("wallets", "wallets")
        .rest_upstream("legacy-append")
        .rest_upstream("legacy-const");
    for r in routes() {
        b = b.route(r);
    }
    // A route naming a policy the configuration lacks (`meshgate envoy` refuses to render it).
    b = b.route(
        parse_route("name=typo,prefix=/v1/payments/pay_003,cluster=payments,policy=strcit")
            .unwrap(),
    );
    // A route with both: its metadata names `gold`, its name is mapped to `grpc-only` by
    // `routing.route_policies`. Metadata wins.
    b.route(
        parse_route(
            "name=payments-grpc-only,prefix=/v1/payments/pay_004,cluster=payments,policy=gold",
        )
        .unwrap(),
    )
}

/// `envoy/gateway-policies.yaml` changed by `edit` (as YAML), written to a temporary file.
fn policies_yaml_with(
    name: &str,
    edit: impl FnOnce(&mut serde_yaml_ng::Value),
) -> std::path::PathBuf {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("envoy/gateway-policies.yaml")).unwrap();
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    doc["descriptors"]["include"] =
        serde_yaml_ng::to_value([root.join("proto").display().to_string()]).unwrap();
    edit(&mut doc);
    let dir = std::env::temp_dir().join(format!("meshgate-route-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
    path
}

/// The example key of `envoy/gateway-policies.yaml` (HS256).
const KEY: &[u8] = b"meshgate-example-hs256-key-not-a-secret!";

/// A transcoded CreatePayment (a JSON POST through Envoy's router) for `merchant`, with
/// `headers` besides the content type; asserts the 200.
async fn create_payment(
    client: &HttpClient,
    gw: &Gateway,
    headers: &[(&str, &str)],
    merchant: &str,
) -> RawResponse {
    let mut all = headers.to_vec();
    all.push(("content-type", "application/json"));
    let body = format!(
        r#"{{"merchant":"{merchant}","amount":{{"currencyCode":"EUR","amountMinor":"1"}}}}"#
    );
    let r = client
        .post(&gw.url("/v1/payments"), &all, body)
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    r
}

fn token(sub: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"iss": "https://issuer.example", "aud": "meshgate", "sub": sub,
                        "iat": now, "exp": now + 600});
    hs256::token(KEY, "k1", &claims)
}

/// Envoy flushes its access log file periodically: wait for `n` records (at most 30 s; the
/// machine may be busy).
async fn records(gw: &Gateway, n: usize) -> Vec<Value> {
    let mut records = Vec::new();
    for _ in 0..150 {
        records = gw.access_records();
        if records.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    records
}

fn names(list: &str) -> Vec<&str> {
    list.split(',').map(str::trim).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_operation_reaches_its_service() {
    let gw = gateway();
    let auth = format!("Bearer {}", token("alice"));
    for client in [http1_client(), http2_client()] {
        // Transcoded, body-less (side call) to payments.
        let r = client
            .get(&gw.url("/v1/payments/pay_001"), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        assert_eq!(r.json().unwrap()["id"], "pay_001");
        // Transcoded with a body (through Envoy's router) to payments.
        let r = create_payment(&client, &gw, &[], "m_route").await;
        assert_eq!(r.json().unwrap()["merchant"], "m_route");
        // Transcoded to wallets (its route's policy wants a token).
        let r = client
            .get(&gw.url("/v1/wallets/w_001"), &[("authorization", &auth)])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        assert_eq!(r.json().unwrap()["walletId"], "w_001");
        // REST backends.
        for (path, backend) in [
            ("/legacy/docs/a", "legacy-append"),
            ("/legacy/receipts/r1", "legacy-const"),
        ] {
            let r = client.get(&gw.url(path), &[]).await.unwrap();
            assert_eq!(r.status.as_u16(), 200, "{path}: {}", r.text());
            assert_eq!(r.header("x-demo-backend"), Some(backend), "{path}");
        }
    }
    // Native gRPC to both services.
    let mut payments = payments_client(gw.addr()).await.unwrap();
    let reply = payments
        .get_payment(GetPaymentRequest {
            id: "pay_001".into(),
            view: None,
        })
        .await
        .unwrap();
    assert_eq!(reply.metadata().get("x-demo-backend").unwrap(), "payments");
    assert_eq!(
        reply.metadata().get("x-demo-saw-upstream").unwrap(),
        "payments"
    );
    let mut wallets = wallets_client(gw.addr()).await.unwrap();
    let reply = wallets
        .get_wallet(GetWalletRequest {
            wallet_id: "w_001".into(),
        })
        .await
        .unwrap();
    assert_eq!(reply.metadata().get("x-demo-backend").unwrap(), "wallets");
    assert_eq!(
        reply.metadata().get("x-demo-saw-operation").unwrap(),
        "meshgate.demo.v1.Wallets.GetWallet"
    );

    let recs = records(&gw, 12).await;
    let upstreams: Vec<&str> = recs.iter().filter_map(|r| r["upstream"].as_str()).collect();
    for u in ["payments", "wallets", "legacy-append", "legacy-const"] {
        assert!(upstreams.contains(&u), "{u} in access records: {recs:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn spoofed_routing_headers_are_stripped() {
    let gw = gateway();
    let spoof = [
        ("x-meshgate-upstream", "wallets"),
        ("x-meshgate-operation", "evil.Op"),
        ("x-meshgate-subject", "root"),
    ];
    let client = http1_client();
    // REST: the echo shows what arrived.
    let r = client.get(&gw.url("/legacy/docs/a"), &spoof).await.unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let seen = r.json().unwrap();
    assert_eq!(seen["backend"], "legacy-append");
    assert_eq!(seen["headers"]["x-meshgate-upstream"], "legacy-append");
    assert_eq!(seen["headers"]["x-meshgate-operation"], "legacy.Documents");
    assert!(
        seen["headers"].get("x-meshgate-subject").is_none(),
        "{seen}"
    );
    // Transcoded: still reaches payments (wallets' backend does not serve Payments).
    let r = client
        .get(&gw.url("/v1/payments/pay_001"), &spoof)
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    assert_eq!(r.json().unwrap()["id"], "pay_001");
    // Transcoded through Envoy's router: the backend reports what it saw.
    let r = create_payment(&client, &gw, &spoof, "m_spoof").await;
    assert_eq!(r.header("x-demo-backend"), Some("payments"));
    assert_eq!(r.header("x-demo-saw-upstream"), Some("payments"));
    assert_eq!(
        r.header("x-demo-saw-operation"),
        Some("meshgate.demo.v1.Payments.CreatePayment")
    );
    assert_eq!(r.header("x-demo-saw-subject"), None);
    // Native gRPC.
    let mut payments = payments_client(gw.addr()).await.unwrap();
    let mut req = tonic::Request::new(GetPaymentRequest {
        id: "pay_001".into(),
        view: None,
    });
    for (k, v) in spoof {
        req.metadata_mut().insert(k, v.parse().unwrap());
    }
    let reply = payments.get_payment(req).await.unwrap();
    let meta = reply.metadata();
    assert_eq!(meta.get("x-demo-backend").unwrap(), "payments");
    assert_eq!(meta.get("x-demo-saw-upstream").unwrap(), "payments");
    assert_eq!(
        meta.get("x-demo-saw-operation").unwrap(),
        "meshgate.demo.v1.Payments.GetPayment"
    );
    assert!(meta.get("x-demo-saw-subject").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn trace_context_and_request_id_pass_through() {
    let gw = gateway();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let cloud = "4bf92f3577b34da6a3ce929d0e0e4736/1;o=1";
    let trace = [
        ("traceparent", traceparent),
        ("x-cloud-trace-context", cloud),
    ];
    let client = http2_client();
    let mut with_id = trace.to_vec();
    with_id.push(("x-request-id", "req-from-client-1"));
    let r = client
        .get(&gw.url("/legacy/docs/t"), &with_id)
        .await
        .unwrap();
    let seen = r.json().unwrap();
    assert_eq!(seen["headers"]["traceparent"], traceparent);
    assert_eq!(seen["headers"]["x-cloud-trace-context"], cloud);
    assert_eq!(seen["headers"]["x-request-id"], "req-from-client-1");
    // No id from the client: one is generated (by Envoy's connection manager, see
    // `request_ids_are_generated_by_envoy_or_else_by_meshgate`).
    let r = client.get(&gw.url("/legacy/docs/t"), &trace).await.unwrap();
    let seen = r.json().unwrap();
    let generated = seen["headers"]["x-request-id"].as_str().unwrap_or_default();
    assert!(generated.len() >= 16, "generated id: {seen}");
    // Native gRPC carries them too.
    let mut payments = payments_client(gw.addr()).await.unwrap();
    let mut req = tonic::Request::new(GetPaymentRequest {
        id: "pay_001".into(),
        view: None,
    });
    for (k, v) in &with_id {
        req.metadata_mut().insert(*k, v.parse().unwrap());
    }
    let reply = payments.get_payment(req).await.unwrap();
    let received = reply
        .metadata()
        .get("x-demo-received-headers")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    for h in ["traceparent", "x-cloud-trace-context", "x-request-id"] {
        assert!(names(&received).contains(&h), "{h} in {received}");
    }
    // Transcoded through Envoy's router: the backend's report comes back in the headers.
    let r = create_payment(&client, &gw, &with_id, "m_trace").await;
    assert_eq!(r.header("x-demo-backend"), Some("payments"));
    let received = r.header("x-demo-received-headers").unwrap_or_default();
    for h in ["traceparent", "x-cloud-trace-context", "x-request-id"] {
        assert!(names(received).contains(&h), "{h} in {received}");
    }
    // The access records carry the request ids and the trace.
    let recs = records(&gw, 4).await;
    assert_eq!(recs.len(), 4, "{recs:?}");
    assert_eq!(recs[3]["requestId"], "req-from-client-1", "{recs:?}");
    assert_eq!(recs[0]["requestId"], "req-from-client-1", "{recs:?}");
    assert_eq!(recs[1]["requestId"], generated, "{recs:?}");
}

/// A transcoded GET is sent by meshgate itself (a side call, not Envoy's router): the trace
/// context and the request id still reach the backend, and the record carries the trace.
#[tokio::test(flavor = "multi_thread")]
async fn trace_context_reaches_the_backend_of_a_transcoded_get() {
    // A side call's reply is a local reply: the backend's report must be listed to come back.
    let yaml = policies_yaml_with("trace-get", |doc| {
        doc["transcoding"]["response_metadata_to_headers"] =
            serde_yaml_ng::to_value(["x-demo-received-headers", "x-demo-backend"]).unwrap();
    });
    let gw = builder(yaml).start().unwrap();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let cloud = "4bf92f3577b34da6a3ce929d0e0e4736/1;o=1";
    for (i, client) in [http1_client(), http2_client()].into_iter().enumerate() {
        let id = format!("trace-get-{i}");
        let headers = [
            ("traceparent", traceparent),
            ("x-cloud-trace-context", cloud),
            ("x-request-id", id.as_str()),
        ];
        let r = client
            .get(&gw.url("/v1/payments/pay_001"), &headers)
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        assert_eq!(r.json().unwrap()["id"], "pay_001");
        assert_eq!(r.header("x-demo-backend"), Some("payments"));
        let received = r.header("x-demo-received-headers").unwrap_or_default();
        for h in ["traceparent", "x-cloud-trace-context", "x-request-id"] {
            assert!(names(received).contains(&h), "{h} in {received}");
        }
        // Without them, the backend gets no trace context (the report is not a fixed list).
        let r = client
            .get(&gw.url("/v1/payments/pay_001"), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        let received = r.header("x-demo-received-headers").unwrap_or_default();
        for h in ["traceparent", "x-cloud-trace-context"] {
            assert!(!names(received).contains(&h), "{h} in {received}");
        }
        let rec = gw.record_for(&id).unwrap();
        assert_eq!(
            rec["logging.googleapis.com/trace"], "4bf92f3577b34da6a3ce929d0e0e4736",
            "{rec}"
        );
        assert_eq!(
            rec["logging.googleapis.com/spanId"], "00f067aa0ba902b7",
            "{rec}"
        );
        assert_eq!(rec["operation"], "meshgate.demo.v1.Payments.GetPayment");
    }
}

/// Who generates `x-request-id`: Envoy's connection manager by default (a UUID, before the
/// filter runs); with its `generate_request_id: false`, meshgate (`routing.generate_request_id`,
/// default true), and nobody when that is false too. A generated id reaches the backend and is
/// the access record's `requestId`.
#[tokio::test(flavor = "multi_thread")]
async fn request_ids_are_generated_by_envoy_or_else_by_meshgate() {
    let client = http1_client();
    let echo_id = |r: &meshgate_kit::harness::RawResponse| {
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        let seen = r.json().unwrap();
        seen["headers"]["x-request-id"].as_str().map(str::to_string)
    };
    let is_hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());

    // Envoy's default: a UUID (8-4-4-4-12 hex) comes from the connection manager.
    let gw = gateway();
    let r = client.get(&gw.url("/legacy/docs/rid"), &[]).await.unwrap();
    let id = echo_id(&r).unwrap();
    let parts: Vec<&str> = id.split('-').collect();
    let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
    assert_eq!(lens, [8, 4, 4, 4, 12], "Envoy's UUID: {id}");
    assert!(parts.iter().all(|p| is_hex(p)), "{id}");
    drop(gw);

    // Envoy's generation off: meshgate's own id, `<32 hex: time in ns>-<8 hex: context>`.
    let gw = builder(repo_root().join("envoy/gateway-policies.yaml"))
        .envoy_request_ids(false)
        .start()
        .unwrap();
    let meshgate_id = |id: &str| {
        let parts: Vec<&str> = id.split('-').collect();
        parts.len() == 2
            && parts[0].len() == 32
            && parts[1].len() == 8
            && parts.iter().all(|p| is_hex(p))
    };
    let mut ids = Vec::new();
    for client in [http1_client(), http2_client()] {
        let r = client.get(&gw.url("/legacy/docs/rid"), &[]).await.unwrap();
        let id = echo_id(&r).unwrap();
        assert!(meshgate_id(&id), "meshgate's id: {id}");
        let rec = gw.record_for(&id).unwrap();
        assert_eq!(rec["upstream"], "legacy-append", "{rec}");
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1], "each request has its own id");
    // A client's id is kept.
    let r = client
        .get(
            &gw.url("/legacy/docs/rid"),
            &[("x-request-id", "client-id-7")],
        )
        .await
        .unwrap();
    assert_eq!(echo_id(&r).as_deref(), Some("client-id-7"));
    // gRPC paths get it too: native gRPC, and a transcoded POST through the router.
    let mut payments = payments_client(gw.addr()).await.unwrap();
    let reply = payments
        .get_payment(GetPaymentRequest {
            id: "pay_001".into(),
            view: None,
        })
        .await
        .unwrap();
    let received = reply.metadata().get("x-demo-received-headers").unwrap();
    assert!(
        names(received.to_str().unwrap()).contains(&"x-request-id"),
        "{received:?}"
    );
    let r = create_payment(&client, &gw, &[], "m_rid").await;
    let received = r.header("x-demo-received-headers").unwrap_or_default();
    assert!(names(received).contains(&"x-request-id"), "{received}");
    drop(gw);

    // Both off: no id at all, and the record has no `requestId`.
    let yaml = policies_yaml_with("no-rid", |doc| {
        doc["routing"]["generate_request_id"] = serde_yaml_ng::Value::Bool(false);
    });
    let gw = builder(yaml).envoy_request_ids(false).start().unwrap();
    let r = client
        .get(&gw.url("/legacy/docs/no-request-id"), &[])
        .await
        .unwrap();
    assert_eq!(echo_id(&r), None, "{}", r.text());
    let mut rec = None;
    for _ in 0..100 {
        rec = gw.access_records().into_iter().find(|r| {
            r["httpRequest"]["requestUrl"]
                .as_str()
                .is_some_and(|u| u.ends_with("/legacy/docs/no-request-id"))
        });
        if rec.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rec = rec.expect("the request's record");
    assert!(rec.get("requestId").is_none(), "{rec}");
    assert_eq!(rec["upstream"], "legacy-append", "{rec}");
}

/// `x-envoy-original-method` is meshgate's: the rendered `local_reply_config` reads it to tell
/// a transcoded request (whose Envoy errors become a JSON Status) from a native gRPC one
/// (Envoy answers those trailers-only with `grpc-status`). A native gRPC client sending its
/// own copy, whose backend times out, still gets the gRPC answer; no backend sees the copies.
#[tokio::test(flavor = "multi_thread")]
async fn client_copies_of_the_original_path_and_method_are_stripped() {
    let gw = builder(repo_root().join("envoy/gateway-policies.yaml"))
        .route_timeout_s(1)
        .start()
        .unwrap();
    let client = http2_client();
    let url = gw.url("/meshgate.demo.v1.Payments/GetPayment");
    for spoof in [
        None,
        Some(("x-envoy-original-method", "GET")),
        Some(("x-envoy-original-path", "/v1/payments/pay_001")),
    ] {
        let mut headers = vec![
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("x-demo-delay-ms", "3000"),
        ];
        headers.extend(spoof);
        let r = client
            .post(&url, &headers, grpc_frame(b"\x0a\x07pay_001").to_vec())
            .await
            .unwrap();
        assert_eq!(
            r.header("content-type"),
            Some("application/grpc"),
            "{spoof:?}: {} {}",
            r.status,
            r.text()
        );
        // Envoy's own gRPC answer to its route timeout (UNAVAILABLE).
        assert_eq!(r.header("grpc-status"), Some("14"), "{spoof:?}");
        assert_eq!(
            r.header("grpc-message"),
            Some("upstream request timeout"),
            "{spoof:?}"
        );
    }
    // The backends never see a client's copy: native gRPC...
    let r = client
        .post(
            &url,
            &[
                ("content-type", "application/grpc"),
                ("te", "trailers"),
                ("x-envoy-original-method", "GET"),
                ("x-envoy-original-path", "/v1/payments/pay_001"),
            ],
            grpc_frame(b"\x0a\x07pay_001").to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(r.trailer("grpc-status"), Some("0"), "{:?}", r.trailers);
    let received = r.header("x-demo-received-headers").unwrap_or_default();
    assert!(!received.is_empty(), "{:?}", r.headers);
    for h in ["x-envoy-original-method", "x-envoy-original-path"] {
        assert!(!names(received).contains(&h), "{h} in {received}");
    }
    // ...and REST, where meshgate sets the original path itself (and no method).
    let r = http1_client()
        .get(
            &gw.url("/legacy/docs/a"),
            &[
                ("x-envoy-original-method", "DELETE"),
                ("x-envoy-original-path", "/admin"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let seen = r.json().unwrap();
    assert_eq!(seen["headers"]["x-envoy-original-path"], "/legacy/docs/a");
    assert!(
        seen["headers"].get("x-envoy-original-method").is_none(),
        "{seen}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_choose_policies_by_metadata_and_by_name() {
    let gw = gateway();
    let client = http1_client();
    // By metadata: `wallets-strict` selects `strict` (a token is required).
    let r = client.get(&gw.url("/v1/wallets/w_001"), &[]).await.unwrap();
    assert_eq!(r.status.as_u16(), 401, "{}", r.text());
    assert_eq!(r.json().unwrap()["code"], 16, "UNAUTHENTICATED");
    let auth = format!("Bearer {}", token("alice"));
    let r = client
        .get(&gw.url("/v1/wallets/w_001"), &[("authorization", &auth)])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    // Native gRPC to wallets takes `grpc-api` (policy `gold`, no auth of its own), whose
    // fallback cluster is payments: it still reaches wallets.
    let mut wallets = wallets_client(gw.addr()).await.unwrap();
    let reply = wallets
        .get_wallet(GetWalletRequest {
            wallet_id: "w_001".into(),
        })
        .await
        .unwrap();
    assert_eq!(reply.metadata().get("x-demo-backend").unwrap(), "wallets");
    // By name: `payments-grpc-only` -> `grpc-only` (routing.route_policies).
    let r = client
        .get(&gw.url("/v1/payments/pay_002"), &[])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 415, "{}", r.text());
    assert_eq!(r.json().unwrap()["code"], 12, "UNIMPLEMENTED");
    // A spoofed routing header does not move a request onto another route's policy.
    for (path, status) in [("/v1/wallets/w_001", 401), ("/v1/payments/pay_002", 415)] {
        for upstream in ["payments", "wallets", "legacy-append"] {
            let r = client
                .get(&gw.url(path), &[("x-meshgate-upstream", upstream)])
                .await
                .unwrap();
            assert_eq!(r.status.as_u16(), status, "{path} spoofing {upstream}");
        }
    }
    // Other payments are not on that route.
    let r = client
        .get(&gw.url("/v1/payments/pay_001"), &[])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());

    // A policy name the configuration lacks: refused, never run without the policy.
    let r = client
        .get(&gw.url("/v1/payments/pay_003"), &[])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 500, "{}", r.text());
    let body = r.json().unwrap();
    assert_eq!(body["code"], 13, "INTERNAL");
    assert!(
        body["message"].as_str().unwrap().contains("strcit"),
        "{body}"
    );

    let recs = records(&gw, 12).await;
    let policies: Vec<Value> = recs.iter().take(5).map(|r| r["policy"].clone()).collect();
    assert_eq!(
        policies,
        vec![
            json!("strict"),
            json!("strict"),
            json!("gold"),
            json!("grpc-only"),
            json!("strict"),
        ],
        "{recs:?}"
    );
    // After the six spoofed requests: pay_001 (no policy), then the undefined one.
    assert_eq!(recs[10]["policy"], Value::Null, "{recs:?}");
    assert_eq!(recs[10]["httpRequest"]["status"], 200, "{recs:?}");
    assert_eq!(recs[11]["httpRequest"]["status"], 500, "{recs:?}");
    assert_eq!(recs[1]["principal"], "alice", "{recs:?}");

    // A route with both metadata (`gold`) and a name in `route_policies` (`grpc-only`): the
    // metadata wins, so transcoding stays on.
    let r = client
        .get(
            &gw.url("/v1/payments/pay_004"),
            &[("x-request-id", "both-policies-1")],
        )
        .await
        .unwrap();
    assert_ne!(r.status.as_u16(), 415, "{}", r.text());
    assert_eq!(r.json().unwrap()["id"], "pay_004", "{}", r.text());
    let rec = gw.record_for("both-policies-1").unwrap();
    assert_eq!(rec["policy"], "gold", "{rec}");
}

/// A policy on a REST route: the token is checked, then the subject goes to the upstream in
/// place of the client's copy, and the token itself does not.
#[tokio::test(flavor = "multi_thread")]
async fn a_policy_route_authenticates_rest_and_sends_the_subject() {
    let gw = gateway();
    let client = http2_client();
    let r = client
        .get(
            &gw.url("/legacy/docs/private/plan"),
            &[("x-meshgate-subject", "root")],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 401, "{}", r.text());
    assert!(r.header("www-authenticate").is_some());
    let auth = format!("Bearer {}", token("bob"));
    let r = client
        .get(
            &gw.url("/legacy/docs/private/plan"),
            &[("authorization", &auth), ("x-meshgate-subject", "root")],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let seen = r.json().unwrap();
    assert_eq!(seen["path"], "/rest/legacy/docs/private/plan");
    assert_eq!(seen["headers"]["x-meshgate-subject"], "bob", "{seen}");
    assert_eq!(
        seen["headers"]["x-meshgate-claim-aud"], "meshgate",
        "{seen}"
    );
    assert!(seen["headers"].get("authorization").is_none(), "{seen}");
    // A token signed with another key is refused.
    let forged = format!("{}x", token("bob"));
    let r = client
        .get(
            &gw.url("/legacy/docs/private/plan"),
            &[("authorization", &format!("Bearer {forged}"))],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 401, "{}", r.text());
    // The public part of the same operation needs no token, and a client's claim header
    // does not get through.
    let r = client
        .get(
            &gw.url("/legacy/docs/open"),
            &[("x-meshgate-claim-aud", "evil")],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let seen = r.json().unwrap();
    assert!(
        seen["headers"].get("x-meshgate-claim-aud").is_none(),
        "{seen}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_can_switch_meshgate_off() {
    let gw = gateway();
    let client = http1_client();
    // Without meshgate this path would be a 404 (no operation matches it); with it off, the
    // request goes untouched to the route's cluster, spoofed headers and all.
    let r = client
        .get(
            &gw.url("/direct/raw?x=1"),
            &[("x-meshgate-upstream", "spoofed")],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let seen = r.json().unwrap();
    assert_eq!(seen["backend"], "legacy-append");
    assert_eq!(seen["path"], "/direct/raw");
    assert_eq!(seen["headers"]["x-meshgate-upstream"], "spoofed");
    assert!(seen["headers"].get("x-meshgate-operation").is_none());
    // The same path elsewhere is meshgate's.
    let r = client.get(&gw.url("/other/raw"), &[]).await.unwrap();
    assert_eq!(r.status.as_u16(), 404);
    // Only the filtered request left an access record.
    let recs = records(&gw, 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let recs_later = gw.access_records();
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs_later.len(), 1, "{recs_later:?}");
    assert_eq!(recs[0]["httpRequest"]["status"], 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_backends_get_their_rewritten_paths() {
    let gw = gateway();
    for client in [http1_client(), http2_client()] {
        // APPEND_PATH_TO_ADDRESS: prefix + path, query kept, any method, body untouched.
        let r = client
            .post(
                &gw.url("/legacy/docs/a/b?x=1&y=two"),
                &[("content-type", "text/plain")],
                "hello",
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        let seen = r.json().unwrap();
        assert_eq!(seen["backend"], "legacy-append");
        assert_eq!(seen["method"], "POST");
        assert_eq!(seen["path"], "/rest/legacy/docs/a/b");
        assert_eq!(seen["query"], "x=1&y=two");
        assert_eq!(seen["body"], "hello");
        assert_eq!(
            seen["headers"]["x-envoy-original-path"],
            "/legacy/docs/a/b?x=1&y=two"
        );
        // CONSTANT_ADDRESS: the prefix only, path variables as query parameters.
        let r = client
            .get(&gw.url("/legacy/receipts/r%201?fmt=pdf"), &[])
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        let seen = r.json().unwrap();
        assert_eq!(seen["backend"], "legacy-const");
        assert_eq!(seen["path"], "/api/receipt");
        assert_eq!(seen["headers"]["x-meshgate-upstream"], "receipts");
        assert_eq!(seen["query"], "id=r%201&fmt=pdf");
        // The operation's method is enforced: POST is not GetReceipt.
        let r = client
            .post(&gw.url("/legacy/receipts/r1"), &[], "x")
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 404, "{}", r.text());
    }
}

/// `envoy --mode validate -c FILE`, bounded; the output on failure.
fn envoy_validate(file: &std::path::Path) -> Result<(), String> {
    let envoy = meshgate_kit::harness::envoy_bin().unwrap();
    let out_file = file.with_extension("validate.log");
    let log = std::fs::File::create(&out_file).unwrap();
    let mut child = std::process::Command::new(envoy)
        .args(["--mode", "validate", "--use-dynamic-base-id", "-c"])
        .arg(file)
        .current_dir(repo_root())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    for _ in 0..600 {
        if let Some(status) = child.try_wait().unwrap() {
            let text = std::fs::read_to_string(&out_file).unwrap_or_default();
            return if status.success() { Ok(()) } else { Err(text) };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err("envoy --mode validate did not finish in 60 s".into())
}

/// The `meshgate envoy ...` invocation documented at the top of `envoy/gateway-policies.yaml`.
fn documented_invocation() -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("envoy/gateway-policies.yaml")).unwrap();
    let mut joined = String::new();
    let mut inside = false;
    for line in text.lines() {
        let body = line.trim_start_matches('#').trim();
        if body.starts_with("meshgate envoy") {
            inside = true;
        }
        if inside {
            joined.push_str(body.trim_end_matches('\\'));
            joined.push(' ');
            if !body.ends_with('\\') {
                break;
            }
        }
    }
    joined.split_whitespace().map(str::to_string).collect()
}

#[test]
fn documented_envoy_example_renders_and_validates() {
    let args = documented_invocation();
    assert_eq!(args.first().map(String::as_str), Some("meshgate"));
    // Its routes are the ones the end-to-end tests run.
    let routes: Vec<&str> = args
        .windows(2)
        .filter(|w| w[0] == "--route")
        .map(|w| w[1].as_str())
        .collect();
    assert_eq!(routes, ROUTES);
    let dir = std::env::temp_dir().join(format!("meshgate-route-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("gateway-policies.envoy.yaml");
    let wasm = meshgate_kit::harness::wasm_path().unwrap();
    let mut argv: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-o" => {
                it.next();
                argv.extend(["-o".to_string(), out.display().to_string()]);
            }
            "build/meshgate.wasm" => argv.push(wasm.display().to_string()),
            s if s.starts_with("envoy/") => argv.push(repo_root().join(s).display().to_string()),
            s => argv.push(s.to_string()),
        }
    }
    assert_eq!(meshgate::cli::main(argv.clone()), 0, "{argv:?}");
    let rendered = std::fs::read_to_string(&out).unwrap();
    assert!(rendered.contains("FilterConfig"), "the disabled route");
    assert!(rendered.contains("policy: strict"), "the metadata route");
    envoy_validate(&out).unwrap();

    // A route naming an undefined policy is refused by the command.
    let mut bad = argv.clone();
    bad.extend([
        "--route".into(),
        "name=x,prefix=/x/,cluster=payments,policy=nope".into(),
    ]);
    assert_eq!(meshgate::cli::main(bad), 2);
    // And Envoy refuses what it cannot run (validation is not a rubber stamp).
    let broken = rendered.replace(
        "envoy.config.route.v3.FilterConfig",
        "envoy.config.route.v3.NoSuchConfig",
    );
    let broken_file = dir.join("broken.yaml");
    std::fs::write(&broken_file, broken).unwrap();
    assert!(envoy_validate(&broken_file).is_err());
}

#[test]
fn istio_example_routes_select_defined_policies_first() {
    let text =
        std::fs::read_to_string(repo_root().join("istio/examples/virtualservice-policies.yaml"))
            .unwrap();
    let docs: Vec<Value> = text
        .split("\n---\n")
        .map(|d| serde_yaml_ng::from_str::<Value>(d).unwrap())
        .collect();
    let vs = docs.iter().find(|d| d["kind"] == "VirtualService").unwrap();
    let http = vs["spec"]["http"].as_array().unwrap();
    let names: Vec<&str> = http.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names.len(), http.len(), "every route is named");

    // The gateway configuration the example goes with (its WasmPlugin's pluginConfig).
    let filter_json =
        meshgate_kit::harness::filter_config(&repo_root().join("istio/gateway.yaml")).unwrap();
    let config: Value = serde_json::from_str(&filter_json).unwrap();
    let route_policies = config["routing"]["route_policies"].as_object().unwrap();
    assert!(!route_policies.is_empty());
    let first_header_route = http
        .iter()
        .position(|r| r["match"][0].get("headers").is_some())
        .unwrap();
    for (route, policy) in route_policies {
        let at = names.iter().position(|n| n == route);
        let at = at.unwrap_or_else(|| panic!("route {route} in the VirtualService"));
        assert!(at < first_header_route, "{route} before the header routes");
        assert!(http[at]["match"][0].get("headers").is_none());
        assert!(config["policies"].get(policy.as_str().unwrap()).is_some());
    }
    // Each header route matches the value meshgate writes for the upstream named like its
    // destination's Istio cluster.
    let upstreams = config["upstreams"].as_object().unwrap();
    for r in &http[first_header_route..] {
        let Some(value) = r["match"][0]["headers"]["x-meshgate-upstream"]["exact"].as_str() else {
            continue;
        };
        let dest = &r["route"][0]["destination"];
        let cluster = format!(
            "outbound|{}||{}",
            dest["port"]["number"],
            dest["host"].as_str().unwrap()
        );
        let up = upstreams.get(&cluster);
        let up = up.unwrap_or_else(|| panic!("upstream {cluster} for route {}", r["name"]));
        assert_eq!(up["header_value"], value, "{}", r["name"]);
    }
    // The EnvoyFilter switches meshgate off on a route that exists.
    let ef = docs.iter().find(|d| d["kind"] == "EnvoyFilter").unwrap();
    let patch = &ef["spec"]["configPatches"][0];
    let route = patch["match"]["routeConfiguration"]["vhost"]["route"]["name"]
        .as_str()
        .unwrap();
    assert!(names.contains(&route));
    let per_filter = patch["patch"]["value"]["typed_per_filter_config"]
        .as_object()
        .unwrap();
    let (_, cfg) = per_filter.iter().next().unwrap();
    assert_eq!(cfg["disabled"], true);
}
