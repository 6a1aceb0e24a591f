//! The gateway of the routing end-to-end suites (`e2e_route_*.rs`) and their helpers: the
//! demo backends (payments, wallets, REST `legacy-append` and `legacy-const`), the routes of
//! [`ROUTES`] plus two outside the documented example, `envoy/gateway-policies.yaml` and
//! edited copies of it, the example's HS256 key, and record lookups.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use meshgate::cli::envoy::{parse_route, RouteSpec};
use meshgate_fixtures::hs256;
use meshgate_kit::harness::{repo_root, Gateway, GatewayBuilder, HttpClient, RawResponse};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The routes of `envoy/gateway-policies.yaml`'s documented `meshgate envoy` invocation.
pub const ROUTES: [&str; 5] = [
    "name=wallets-strict,prefix=/v1/wallets/,cluster=wallets,policy=strict",
    "name=payments-grpc-only,prefix=/v1/payments/pay_002,cluster=payments",
    "name=direct,prefix=/direct/,cluster=legacy-append,disabled",
    "name=grpc-api,prefix=/meshgate.demo.v1.,cluster=payments,policy=gold",
    "name=legacy-private,prefix=/legacy/docs/private/,cluster=legacy-append,policy=strict",
];

pub fn routes() -> Vec<RouteSpec> {
    ROUTES.iter().map(|r| parse_route(r).unwrap()).collect()
}

pub fn gateway() -> Gateway {
    builder(repo_root().join("envoy/gateway-policies.yaml"))
        .start()
        .unwrap()
}

/// The gateway of [`gateway`] for any configuration file: the backends and [`ROUTES`], plus
/// two routes outside the documented example.
pub fn builder(yaml: std::path::PathBuf) -> GatewayBuilder {
    let b = GatewayBuilder::new(yaml)
        .demo_upstreams()
        .rest_upstream("legacy-append")
        .rest_upstream("legacy-const")
        .routes(routes());
    // A route naming a policy the configuration lacks (`meshgate envoy` refuses to render it).
    let b = b.route(
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
pub fn policies_yaml_with(
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
pub const KEY: &[u8] = b"meshgate-example-hs256-key-not-a-secret!";

/// A transcoded CreatePayment (a JSON POST through Envoy's router) for `merchant`, with
/// `headers` besides the content type; asserts the 200.
pub async fn create_payment(
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

pub fn token(sub: &str) -> String {
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
pub async fn records(gw: &Gateway, n: usize) -> Vec<Value> {
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

pub fn names(list: &str) -> Vec<&str> {
    list.split(',').map(str::trim).collect()
}
