//! Issue 8 end to end, remote keys: the module fetches its JWKS through an Envoy cluster from a
//! real JWKS server on 127.0.0.1 (the kit's [`JwksServer`], or a slow one defined here), with
//! requests that wait for the first fetch (bounded), key rotation with a rate-limited refetch
//! for an unknown `kid`, key rotation by the background refresh, refresh failures that keep the
//! cached keys, outages (500, garbage, timeout) told apart from bad tokens, and OIDC discovery.
//!
//! The provider `main` ([`remote_gateway`]) takes the test keys of `e2e_auth_support` from the
//! server; GetPayment and CreatePayment require it.
//!
//! Needs `build/meshgate.wasm` (`make wasm`) and Envoy (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_auth_support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e_auth_support::*;
use meshgate_kit::harness::{http1_client, Gateway, GatewayBuilder};
use meshgate_kit::jwks::{JwksMode, JwksServer};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PAYMENT: &str = "/v1/payments/pay_001";

/// A gateway whose provider `main` fetches keys from `addr` through cluster `jwks`.
/// `remote` is merged into `jwks.remote`, `auth` into `auth`.
fn remote_gateway(addr: SocketAddr, issuer: &str, remote: Value, auth: Value) -> Gateway {
    remote_gateway_in(Host::Envoy, addr, issuer, remote, auth)
}

/// Where the filter runs: Envoy as `meshgate envoy` configures it, or as istiod renders a
/// WasmPlugin (no `allow_on_headers_stop_iteration`; the pluginConfig asks for side calls).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Host {
    Envoy,
    /// Envoy as `meshgate envoy` configures it, with two worker threads.
    EnvoyTwoWorkers,
    IstioWasmPlugin,
}

fn remote_gateway_in(
    host: Host,
    addr: SocketAddr,
    issuer: &str,
    remote: Value,
    auth: Value,
) -> Gateway {
    let mut r = json!({"uri": format!("http://{addr}/jwks.json"), "cluster": "jwks"});
    for (k, v) in remote.as_object().unwrap() {
        r[k] = v.clone();
    }
    let mut a = json!({
        "providers": [{
            "name": "main",
            "issuer": issuer,
            "audiences": ["api"],
            "jwks": {"remote": r},
        }],
    });
    for (k, v) in auth.as_object().unwrap() {
        a[k] = v.clone();
    }
    let mut extra = json!({
        "operations": {
            "meshgate.demo.v1.Payments.GetPayment": {"auth": {"provider": "main"}},
            "meshgate.demo.v1.Payments.CreatePayment": {"auth": {"provider": "main"}},
        },
        "auth": a,
    });
    if host == Host::IstioWasmPlugin {
        extra["transcoding"] = json!({"upstream_calls": "side_call"});
    }
    GatewayBuilder::demo_doc("auth-remote", extra)
        .cluster(jwks_cluster("jwks", addr))
        .workers(if host == Host::EnvoyTwoWorkers { 2 } else { 1 })
        .when(
            host == Host::IstioWasmPlugin,
            GatewayBuilder::without_headers_pause,
        )
        .start()
        .unwrap()
}

async fn get(gw: &Gateway, token: &str) -> (u16, Value) {
    let resp = http1_client()
        .get(&gw.url(PAYMENT), &[("authorization", &bearer(token))])
        .await
        .unwrap();
    (resp.status.as_u16(), resp.json().unwrap_or(Value::Null))
}

fn fetches(gw: &Gateway, result: &str) -> u64 {
    let text = gw.envoy.stats_prometheus().unwrap_or_default();
    prom_sum(&text, "jwks_fetches_total", &[("result", result)])
}

/// A JWKS endpoint that answers every request after `delay_ms` (read when the request
/// arrives; plain HTTP/1.1, one request per connection), counting requests. Stops with the
/// test's runtime.
async fn slow_jwks(body: String, delay_ms: Arc<AtomicU64>) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let body = body.clone();
            let counted = counted.clone();
            let delay = Duration::from_millis(delay_ms.load(Ordering::SeqCst));
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65536 {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    (addr, count)
}

/// Requests that arrive before the first keys wait for them, with the filter configured by
/// `meshgate envoy` (headers held, body through the router) and as istiod renders a WasmPlugin
/// (Envoy holds the whole stream while the filter waits; side calls).
#[tokio::test(flavor = "multi_thread")]
async fn requests_wait_for_the_first_fetch_and_then_pass() {
    requests_wait_for_the_first_fetch_in(Host::Envoy).await;
    requests_wait_for_the_first_fetch_in(Host::IstioWasmPlugin).await;
}

async fn requests_wait_for_the_first_fetch_in(host: Host) {
    let (addr, count) = slow_jwks(main_jwks(), Arc::new(AtomicU64::new(4000))).await;
    let gw = tokio::task::spawn_blocking(move || {
        remote_gateway_in(host, addr, ISSUER, json!({"timeout_ms": 10000}), json!({}))
    })
    .await
    .unwrap();
    let t = token("ES384", &claims());
    let started = Instant::now();
    let auth = bearer(&t);
    // A body-less request (answered by a side call) and one with a body (through the router)
    // arrive together while the first fetch is still on its way.
    let client = http1_client();
    let (get_url, post_url) = (gw.url(PAYMENT), gw.url("/v1/payments"));
    let get_headers = [("authorization", auth.as_str())];
    let post_headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let get = client.get(&get_url, &get_headers);
    let post = client.post(
        &post_url,
        &post_headers,
        r#"{"merchant": "m_1", "amount": {"currencyCode": "EUR", "amountMinor": "100"}}"#,
    );
    let (got, posted) = tokio::join!(get, post);
    let waited = started.elapsed();
    eprintln!("requests waited {waited:?} for the first keys");
    let (got, posted) = (got.unwrap(), posted.unwrap());
    assert_eq!(
        got.status.as_u16(),
        200,
        "{host:?}: GET after waiting: {}",
        got.text()
    );
    assert_eq!(
        posted.status.as_u16(),
        200,
        "{host:?}: POST after waiting: {}",
        posted.text()
    );
    assert!(
        waited >= Duration::from_millis(500),
        "the requests did wait for the keys ({waited:?})"
    );
    assert!(waited < Duration::from_secs(9), "bounded: {waited:?}");
    assert!(count.load(Ordering::SeqCst) >= 1);
    assert!(wait_prom(&gw, "jwks_fetches_total", &[("result", "success")], 1) >= 1);
    gw.envoy
        .wait_for_log("provider `main`: 4 keys", Duration::from_secs(5))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_waits_no_longer_than_the_bound() {
    // The first fetch hangs past its timeout (3 s); requests wait at most 1 s.
    let delay = Arc::new(AtomicU64::new(20_000));
    let (addr, _) = slow_jwks(main_jwks(), delay.clone()).await;
    let gw = tokio::task::spawn_blocking(move || {
        remote_gateway(
            addr,
            ISSUER,
            json!({"timeout_ms": 3000, "initial_fetch_wait_ms": 1000}),
            json!({"jwks_unavailable_status": 503}),
        )
    })
    .await
    .unwrap();
    let t = token("EdDSA", &claims());
    let started = Instant::now();
    let (status, body) = get(&gw, &t).await;
    let waited = started.elapsed();
    assert_eq!(status, 503, "outage status after the bound: {body}");
    assert_eq!(body["code"], 14, "UNAVAILABLE: {body}");
    assert!(
        waited < Duration::from_millis(2500),
        "bounded wait: {waited:?}"
    );
    eprintln!("refused after {waited:?}");
    assert!(
        waited >= Duration::from_millis(900),
        "it did wait: {waited:?}"
    );
    assert_eq!(
        body["message"], "the token issuer's keys are not available yet; try again",
        "answered by the bound, not by the fetch's failure"
    );
    gw.envoy
        .wait_for_log(
            "no keys after waiting 1000 ms (keys_unavailable)",
            Duration::from_secs(5),
        )
        .unwrap();
    assert!(
        wait_prom(
            &gw,
            "auth_decisions_total",
            &[("decision", "denied"), ("reason", "keys_unavailable")],
            1
        ) >= 1
    );
    // The server recovers; after the failed fetch's backoff the keys arrive and the same
    // token passes.
    delay.store(0, Ordering::SeqCst);
    let mut last = (0, Value::Null);
    for _ in 0..100 {
        last = get(&gw, &t).await;
        if last.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last.0, 200, "after the keys arrived: {}", last.1);
}

#[tokio::test(flavor = "multi_thread")]
async fn outages_are_told_apart_from_bad_tokens() {
    for mode in [JwksMode::Error500, JwksMode::Garbage, JwksMode::Hang] {
        let server = JwksServer::start(&main_jwks()).unwrap();
        server.set_mode(mode);
        let gw = remote_gateway(
            server.addr(),
            ISSUER,
            json!({"timeout_ms": 1000}),
            json!({"jwks_unavailable_status": 502}),
        );
        let t = token("RS256", &claims());
        let started = Instant::now();
        let (status, body) = get(&gw, &t).await;
        assert_eq!(status, 502, "{mode:?}: configured outage status: {body}");
        assert_eq!(body["code"], 14, "{mode:?}: UNAVAILABLE: {body}");
        assert_eq!(body["message"], "Jwt verification keys are unavailable");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{mode:?}: bounded"
        );
        // A bad token is still a bad token: 401, not the outage status.
        let resp = http1_client()
            .get(&gw.url(PAYMENT), &[("authorization", "Bearer not.a-token")])
            .await
            .unwrap();
        assert_eq!(resp.status.as_u16(), 401, "{mode:?}: {}", resp.text());
        assert!(
            wait_prom(&gw, "jwks_fetches_total", &[("result", "failure")], 1) >= 1,
            "{mode:?}: failure counted"
        );
        let denied = wait_prom(
            &gw,
            "auth_decisions_total",
            &[("decision", "denied"), ("reason", "keys_unavailable")],
            1,
        );
        assert!(denied >= 1, "{mode:?}: keys_unavailable counted");
        gw.envoy
            .wait_for_log("JWKS fetch failed", Duration::from_secs(5))
            .unwrap();
        gw.envoy
            .wait_for_log("(keys_unavailable)", Duration::from_secs(5))
            .unwrap();
        assert!(server.jwks_requests() >= 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_refresh_keeps_the_cached_keys() {
    let server = JwksServer::start(&main_jwks()).unwrap();
    let gw = remote_gateway(
        server.addr(),
        ISSUER,
        json!({"cache_duration_seconds": 1, "timeout_ms": 1000}),
        json!({}),
    );
    let (status, body) = get(&gw, &token("PS384", &claims())).await;
    assert_eq!(status, 200, "{body}");
    server.set_mode(JwksMode::Error500);
    let before = server.jwks_requests();
    assert!(
        wait_prom(&gw, "jwks_fetches_total", &[("result", "failure")], 1) >= 1,
        "the refresh failed"
    );
    assert!(
        server.jwks_requests() > before,
        "refreshed in the background"
    );
    gw.envoy
        .wait_for_log("the cached keys stay in use", Duration::from_secs(5))
        .unwrap();
    // A token never seen before (not in the verified-token cache) still verifies.
    let mut c = claims();
    c["jti"] = json!("fresh");
    let (status, body) = get(&gw, &token("ES256", &c)).await;
    assert_eq!(status, 200, "cached keys still used: {body}");
    // Refreshes resume when the server recovers.
    server.set_mode(JwksMode::Serve);
    let ok = fetches(&gw, "success");
    let mut now = ok;
    for _ in 0..100 {
        now = fetches(&gw, "success");
        if now > ok {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(now > ok, "a later refresh succeeds");
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_is_picked_up_by_a_rate_limited_unknown_kid_refetch() {
    let server = JwksServer::start(&main_jwks()).unwrap();
    let gw = remote_gateway(
        server.addr(),
        ISSUER,
        json!({"refetch_min_interval_seconds": 30}),
        json!({}),
    );
    // (Not an HMAC token: the `oct` key of a fetched JWKS is skipped, see
    // e2e_auth_jwks_attacks.rs.)
    let (status, body) = get(&gw, &token("PS384", &claims())).await;
    assert_eq!(status, 200, "{body}");
    // Rotate right after the first fetch (the refetch limit counts from refetches only, not
    // from the first fetch): the server now also publishes `rotated`.
    let mut keys: Value = serde_json::from_str(&main_jwks()).unwrap();
    keys["keys"]
        .as_array_mut()
        .unwrap()
        .push(rotated_jwk("rotated"));
    server.set_jwks(&keys.to_string());
    let before = server.jwks_requests();
    let (status, body) = get(&gw, &rotated_token(&claims())).await;
    assert_eq!(
        status, 200,
        "new kid fetched while the request waited: {body}"
    );
    let after_rotation = server.jwks_requests();
    assert_eq!(after_rotation, before + 1, "one refetch");
    // More unknown kids within the interval: refused at once, no more fetches.
    for i in 0..5 {
        let t = sign_raw(
            &json!({"alg": "ES256", "kid": format!("ghost-{i}")}),
            &claims(),
            &signer_for("ES256").1,
        );
        let (status, body) = get(&gw, &t).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["message"], "Jwt key id is not known");
    }
    // An absence cannot be polled: a refetch would go out on the root's next tick (50 ms);
    // six ticks pass without one.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.jwks_requests(), after_rotation, "rate limited");
    assert_eq!(
        wait_prom(
            &gw,
            "auth_decisions_total",
            &[("decision", "denied"), ("reason", "unknown_kid")],
            5
        ),
        5
    );
}

/// Rotation by the background refresh alone: every `cache_duration_seconds` the JWKS is fetched
/// again without any request asking. After the server drops `p256` and adds `rotated`, the
/// refresh brings the new key in (logged before any request names it), and the dropped key is
/// refused, even for a token verified and cached before the refresh; the kept key still works.
#[tokio::test(flavor = "multi_thread")]
async fn a_background_refresh_rotates_the_keys() {
    let server = JwksServer::start(&main_jwks()).unwrap();
    let gw = remote_gateway(
        server.addr(),
        ISSUER,
        json!({"cache_duration_seconds": 2, "refetch_min_interval_seconds": 300}),
        json!({}),
    );
    let old = token("ES256", &claims());
    for _ in 0..2 {
        let (status, body) = get(&gw, &old).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        wait_prom(
            &gw,
            "auth_decisions_total",
            &[("decision", "allowed"), ("reason", "cached")],
            1
        ),
        1,
        "the old key's token is in the verified-token cache"
    );
    gw.envoy
        .wait_for_log("provider `main`: 4 keys", Duration::from_secs(5))
        .unwrap();
    let rotated = json!({"keys": [rsa_jwk("rsa"), rotated_jwk("rotated")]});
    server.set_jwks(&rotated.to_string());
    // Only a refresh can bring the two-key set: no request has named `rotated` yet.
    gw.envoy
        .wait_for_log("provider `main`: 2 keys", Duration::from_secs(10))
        .unwrap();
    let (status, body) = get(&gw, &rotated_token(&claims())).await;
    assert_eq!(status, 200, "the new key: {body}");
    let (status, body) = get(&gw, &old).await;
    assert_eq!(
        status, 401,
        "the dropped key, although its token was cached: {body}"
    );
    assert_eq!(body["message"], "Jwt key id is not known");
    let (status, body) = get(&gw, &token("RS256", &claims())).await;
    assert_eq!(status, 200, "the kept key: {body}");
    assert_eq!(
        wait_prom(
            &gw,
            "auth_decisions_total",
            &[("decision", "denied"), ("reason", "unknown_kid")],
            1
        ),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oidc_discovery_finds_the_jwks() {
    let server = JwksServer::start(&main_jwks()).unwrap();
    let issuer = server.base_url();
    let gw = remote_gateway(
        server.addr(),
        &issuer,
        json!({"uri": issuer.clone(), "discovery": true}),
        json!({}),
    );
    let mut c = claims();
    c["iss"] = json!(issuer);
    let (status, body) = get(&gw, &token("RS384", &c)).await;
    assert_eq!(status, 200, "{body}");
    assert!(server.discovery_requests() >= 1);
    assert!(server.jwks_requests() >= 1);
    gw.envoy
        .wait_for_log(
            &format!("jwks_uri {}", server.jwks_url()),
            Duration::from_secs(5),
        )
        .unwrap();
    // A token from another issuer is refused as such.
    let (status, body) = get(&gw, &token("RS384", &claims())).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["message"], "Jwt issuer is not configured");
}

/// The clock's refreshes, with traffic on two workers: each fetch the server sees is counted
/// once (`jwks_fetches_total`), there are refreshes every `cache_duration_seconds` whether or
/// not requests come, and their number per period is bounded by the roots that refresh: each
/// VM under wasm (at most three here), one keeper for the configuration on native, where the
/// workers adopt its keys rather than fetch them again.
#[tokio::test(flavor = "multi_thread")]
async fn refreshes_are_counted_once_and_not_repeated_per_worker() {
    let server = JwksServer::start(&main_jwks()).unwrap();
    let addr = server.addr();
    let gw = tokio::task::spawn_blocking(move || {
        remote_gateway_in(
            Host::EnvoyTwoWorkers,
            addr,
            ISSUER,
            json!({"cache_duration_seconds": 1}),
            json!({}),
        )
    })
    .await
    .unwrap();
    let t = token("ES256", &claims());
    let (status, body) = get(&gw, &t).await;
    assert_eq!(status, 200, "{body}");
    let counted = |gw: &Gateway| fetches(gw, "success") + fetches(gw, "failure");
    let before = server.jwks_requests();
    // Four seconds of traffic, a new connection each time (both workers serve some).
    let window = Instant::now();
    for _ in 0..200 {
        if window.elapsed() >= Duration::from_secs(4) {
            break;
        }
        let (status, body) = get(&gw, &t).await;
        assert_eq!(status, 200, "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refreshes = server.jwks_requests() - before;
    let elapsed = window.elapsed();
    // Every fetch counted once: the counters catch up with the server (bounded wait).
    let settle = Instant::now();
    while counted(&gw) != server.jwks_requests() && settle.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        counted(&gw),
        server.jwks_requests(),
        "each fetch counted once"
    );
    let native = meshgate_kit::harness::Flavour::from_env().unwrap()
        == meshgate_kit::harness::Flavour::Native;
    let per_period = if native { 1 } else { 3 };
    eprintln!("{refreshes} refreshes in {elapsed:?} (at most {per_period} per second)");
    assert!(
        refreshes >= 2,
        "refreshed by the clock: {refreshes} in {elapsed:?}"
    );
    let secs = elapsed.as_secs() + 2;
    assert!(
        refreshes <= per_period * secs,
        "{refreshes} refreshes in {elapsed:?}: more than {per_period} per second"
    );
}
