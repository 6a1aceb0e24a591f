//! Host-side auth through the filter and the VM-wide scheduler, as the wasm glue drives them:
//! a valid token is allowed (principal forwarded, token removed), a missing, forged or
//! misaddressed one refused (401/403 with `WWW-Authenticate`), and a request that needs keys of
//! a remote JWKS not fetched yet waits, is woken when they arrive (or refused once its wait is
//! over), and a JWKS reply over `limits.max_jwks_bytes` is never read. End to end:
//! `tests/kit/tests/e2e_auth.rs` and `e2e_auth_remote.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{demo_yaml, gateway_json, hs256, FakeHost};
use meshgate::filter::{Scheduler, Stream};
use meshgate::host::{Action, MapKind};
use meshgate::observe::AuthDecision;
use serde_json::json;

const KEY: &[u8] = b"meshgate-auth-flow-test-key-0123";
const ISSUER: &str = "https://idp.test/";

/// 2027-01-15: the fake host's clock.
fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn jwks() -> String {
    json!({"keys": [hs256::jwk(KEY, "k1")]}).to_string()
}

/// The demo gateway with the Payments service behind provider `corp` (audience `payments`),
/// whose keys are `keys` (a `jwks:` mapping in YAML flow style).
fn gateway(keys: &str) -> String {
    let yaml = demo_yaml()
        .replace(
            "  meshgate.demo.v1.Payments:\n    upstream: payments\n    auth: none",
            "  meshgate.demo.v1.Payments:\n    upstream: payments\n    auth: {provider: corp}",
        )
        // The demo's own provider (a remote JWKS) replaced by `corp`: only its keys are fetched.
        .replace("{auth: {provider: demo}}", "{auth: {provider: corp}}");
    let (head, tail) = yaml
        .split_once("  providers:\n")
        .expect("the demo has providers");
    let (_, rest) = tail
        .split_once("  api_keys:")
        .expect("the demo has api_keys");
    let yaml = format!(
        "{head}  realm: payments-api\n  providers:\n    - name: corp\n      issuer: {ISSUER}\n      audiences: [payments]\n      jwks: {keys}\n      claim_to_headers: [{{claim: sub, header: x-user}}]\n  api_keys:{rest}"
    );
    assert!(yaml.contains("name: corp"), "the demo has an auth section");
    gateway_json(&yaml)
}

fn inline_gateway() -> String {
    let inline = serde_json::to_string(&jwks()).unwrap();
    gateway(&format!("{{inline: {inline}}}"))
}

/// Keys from `https://idp.test/jwks` through cluster `idp`, a request waiting at most 1 s. The
/// fetched key is an HMAC secret, so the provider opts in to symmetric keys from its (here
/// private) endpoint.
fn remote_gateway() -> String {
    gateway("{remote: {uri: 'https://idp.test/jwks', cluster: idp, timeout_ms: 800, initial_fetch_wait_ms: 1000, allow_symmetric_keys: true}}")
}

fn token(claims: serde_json::Value) -> String {
    hs256::token(KEY, "k1", &claims)
}

fn good_token() -> String {
    token(json!({"iss": ISSUER, "aud": "payments", "sub": "alice", "exp": 1_800_003_600u64}))
}

/// Native gRPC GetPayment with `authorization` (when given).
fn grpc_call(bearer: Option<&str>) -> FakeHost {
    let mut h = FakeHost::new()
        .with_header(":method", "POST")
        .with_header(":path", "/meshgate.demo.v1.Payments/GetPayment")
        .with_header(":authority", "gateway.test")
        .with_header(":scheme", "http")
        .with_header("content-type", "application/grpc")
        .with_header("te", "trailers")
        .at(start());
    if let Some(t) = bearer {
        h = h.with_header("authorization", &format!("Bearer {t}"));
    }
    h
}

fn configure(h: &mut FakeHost, json: &str) -> Rc<Scheduler> {
    Scheduler::configure(h, json.as_bytes()).expect("configuration accepted")
}

fn decisions(s: &Scheduler, h: &FakeHost, decision: AuthDecision, reason: &str) -> i64 {
    let names = &s.vm().config.observe.names;
    h.counter(&names.auth_decisions("meshgate.demo.v1.Payments.GetPayment", decision, reason))
}

fn grpc_status(h: &FakeHost) -> Option<String> {
    let (_, headers, _) = h.local_reply.as_ref()?;
    common::find(headers, "grpc-status")
}

#[test]
fn a_valid_token_is_allowed_its_subject_forwarded_and_the_token_removed() {
    let mut h = grpc_call(Some(&good_token()));
    let s = configure(&mut h, &inline_gateway());
    let stream = s.stream(1);
    assert_eq!(stream.on_request_headers(&mut h, false), Action::Continue);
    assert!(h.local_reply.is_none());
    let get = |n: &str| h.get(MapKind::RequestHeaders, n);
    assert_eq!(get("x-meshgate-subject").as_deref(), Some("alice"));
    assert_eq!(get("x-user").as_deref(), Some("alice"));
    assert_eq!(get("authorization"), None, "the token is not forwarded");
    assert_eq!(decisions(&s, &h, AuthDecision::Allowed, "ok"), 1);

    // The same token again: the verified-token cache answers.
    let mut h2 = grpc_call(Some(&good_token()));
    h2.metric_names = h.metric_names.clone();
    h2.metrics = h.metrics.clone();
    assert_eq!(
        s.stream(2).on_request_headers(&mut h2, false),
        Action::Continue
    );
    assert_eq!(decisions(&s, &h2, AuthDecision::Allowed, "cached"), 1);
}

#[test]
fn missing_forged_and_misaddressed_tokens_are_refused_with_a_challenge() {
    let forged = {
        let t = good_token();
        let (head, _) = t.rsplit_once('.').unwrap();
        format!("{head}.{}", hs256::b64url(&[7u8; 32]))
    };
    let other_audience =
        token(json!({"iss": ISSUER, "aud": "wallets", "sub": "bob", "exp": 1_800_003_600u64}));
    let cases: [(Option<&str>, &str, &str, &str); 3] = [
        (None, "16", "missing", "Bearer realm=\"payments-api\""),
        (
            Some(&forged),
            "16",
            "bad_signature",
            "Bearer realm=\"payments-api\", error=\"invalid_token\", error_description=\"Jwt verification fails\"",
        ),
        (
            Some(&other_audience),
            "7",
            "wrong_audience",
            "Bearer realm=\"payments-api\", error=\"insufficient_scope\", error_description=\"Audiences in Jwt are not allowed\"",
        ),
    ];
    for (bearer, code, reason, challenge) in cases {
        let mut h = grpc_call(bearer);
        let s = configure(&mut h, &inline_gateway());
        let stream = s.stream(3);
        assert_eq!(
            stream.on_request_headers(&mut h, false),
            Action::Pause,
            "{reason}"
        );
        assert_eq!(grpc_status(&h).as_deref(), Some(code), "{reason}");
        let (_, headers, _) = h.local_reply.as_ref().unwrap();
        assert_eq!(
            common::find(headers, "www-authenticate").as_deref(),
            Some(challenge),
            "{reason}"
        );
        assert_eq!(
            decisions(&s, &h, AuthDecision::Denied, reason),
            1,
            "{reason}"
        );
        assert!(h.logged(&format!("({reason})")).is_some(), "{reason}");
    }
}

#[test]
fn a_json_client_gets_401_and_403_as_status_bodies() {
    for (bearer, status, code) in [
        (None, 401, 16),
        (
            Some(token(
                json!({"iss": ISSUER, "aud": "wallets", "exp": 1_800_003_600u64}),
            )),
            403,
            7,
        ),
    ] {
        let mut h = FakeHost::with_request("GET", "/v1/payments/pay_001", &[]).at(start());
        if let Some(t) = &bearer {
            h = h.with_header("authorization", &format!("Bearer {t}"));
        }
        let s = configure(&mut h, &inline_gateway());
        assert_eq!(s.stream(4).on_request_headers(&mut h, true), Action::Pause);
        let (got, body) = h.reply_json();
        assert_eq!((got, body["code"].as_i64()), (status, Some(code)), "{body}");
        assert!(
            h.http_calls.is_empty(),
            "no side call for a refused request"
        );
    }
}

/// The JWKS fetch `configure` started: (token, cluster, path).
fn first_fetch(h: &FakeHost) -> (u32, String, String) {
    assert_eq!(h.http_calls.len(), 1, "one fetch at configuration");
    let (cluster, headers, _) = &h.http_calls[0];
    (1, cluster.clone(), common::find(headers, ":path").unwrap())
}

fn jwks_reply(h: &mut FakeHost, body: &[u8]) {
    h.call_reply = (
        common::pairs(&[(":status", "200")]),
        body.to_vec(),
        Vec::new(),
    );
}

#[test]
fn a_request_waits_for_the_first_keys_and_is_woken_when_they_arrive() {
    let mut h = grpc_call(Some(&good_token()));
    let s = configure(&mut h, &remote_gateway());
    let (fetch, cluster, path) = first_fetch(&h);
    assert_eq!((cluster.as_str(), path.as_str()), ("idp", "/jwks"));

    let stream: Stream = s.stream(7);
    assert_eq!(stream.on_request_headers(&mut h, false), Action::Pause);
    assert_eq!(s.pending().0, 1, "one request waits for keys");
    // A tick before the bound changes nothing.
    h.now = Some(start() + Duration::from_millis(500));
    s.on_tick(&mut h);
    assert!(h.local_reply.is_none() && h.resumed.is_empty());
    assert_eq!(s.pending().0, 1);

    let body = jwks();
    jwks_reply(&mut h, body.as_bytes());
    s.on_http_call_response(&mut h, fetch, 1, body.len());
    assert_eq!(h.call_body_reads.get(), 1);
    assert_eq!(h.resumed, vec![Some(7)], "resumed in its own context");
    assert!(h.local_reply.is_none(), "{:?}", h.local_reply);
    assert_eq!(
        h.get(MapKind::RequestHeaders, "x-meshgate-subject")
            .as_deref(),
        Some("alice")
    );
    assert_eq!(s.pending().0, 0, "nobody waits any more");
    let names = &s.vm().config.observe.names;
    assert_eq!(h.counter(&names.jwks_fetches("corp", true)), 1);
}

#[test]
fn a_request_whose_keys_do_not_come_in_time_is_refused_as_an_outage() {
    let mut h = grpc_call(Some(&good_token()));
    let s = configure(&mut h, &remote_gateway());
    let stream = s.stream(8);
    assert_eq!(stream.on_request_headers(&mut h, false), Action::Pause);
    h.now = Some(start() + Duration::from_millis(1000));
    s.on_tick(&mut h);
    assert_eq!(grpc_status(&h).as_deref(), Some("14"), "UNAVAILABLE");
    assert!(h.resumed.is_empty(), "a refused request is not resumed");
    assert_eq!(s.pending().0, 0);
    assert_eq!(
        decisions(&s, &h, AuthDecision::Denied, "keys_unavailable"),
        1
    );
    assert!(h.logged("no keys after waiting 1000 ms").is_some());
}

#[test]
fn a_jwks_reply_over_the_limit_is_not_read_and_the_waiting_request_is_refused() {
    let mut h = grpc_call(Some(&good_token()));
    let s = configure(&mut h, &remote_gateway());
    let (fetch, _, _) = first_fetch(&h);
    let stream = s.stream(9);
    assert_eq!(stream.on_request_headers(&mut h, false), Action::Pause);
    let limit = s.vm().config.auth.max_jwks_bytes;
    jwks_reply(&mut h, jwks().as_bytes());
    s.on_http_call_response(&mut h, fetch, 1, limit + 1);
    assert_eq!(h.call_body_reads.get(), 0, "the body was never copied");
    assert!(h.logged("larger than limits.max_jwks_bytes").is_some());
    let names = &s.vm().config.observe.names;
    assert_eq!(h.counter(&names.jwks_fetch_result("corp", "refused")), 1);
    assert_eq!(h.counter(&names.jwks_fetches("corp", false)), 0);
    // The waiting request got its answer: the keys are unavailable.
    assert_eq!(grpc_status(&h).as_deref(), Some("14"));
    assert!(h.resumed.is_empty());
}

#[test]
fn a_woken_body_less_call_makes_its_side_call_and_gets_the_reply_through_the_root() {
    let mut h = FakeHost::with_request(
        "GET",
        "/v1/payments/pay_001",
        &[("authorization", &format!("Bearer {}", good_token()))],
    )
    .at(start());
    let s = configure(&mut h, &remote_gateway());
    let (fetch, _, _) = first_fetch(&h);
    let stream = s.stream(10);
    assert_eq!(stream.on_request_headers(&mut h, true), Action::Pause);
    let body = jwks();
    jwks_reply(&mut h, body.as_bytes());
    s.on_http_call_response(&mut h, fetch, 1, body.len());
    assert_eq!(
        h.http_calls.len(),
        2,
        "the side call left once the keys came"
    );
    assert_eq!(h.http_calls[1].0, "payments");
    assert_eq!(s.pending().3, 1, "its reply is routed back to the request");

    // Payment { id: "pay_001" } and grpc-status 0, delivered to the root (token 2).
    let mut msg = vec![0x0a, 7];
    msg.extend(b"pay_001");
    h.call_reply = (
        common::pairs(&[(":status", "200"), ("content-type", "application/grpc")]),
        meshgate::transcode::encode_frame(&msg),
        common::pairs(&[("grpc-status", "0")]),
    );
    let size = h.call_reply.1.len();
    s.on_http_call_response(&mut h, 2, 1, size);
    let (status, json) = h.reply_json();
    assert_eq!((status, &json["id"]), (200, &json!("pay_001")), "{json}");
    assert_eq!(s.pending().3, 0);
    assert_eq!(
        h.effective.last(),
        Some(&10),
        "answered in the request's context"
    );
}

#[test]
fn a_body_over_the_limit_while_waiting_is_refused_once_and_never_woken() {
    let yaml_limit =
        remote_gateway().replace("\"limits\":{}", "\"limits\":{\"max_request_bytes\":64}");
    assert_ne!(
        yaml_limit,
        remote_gateway(),
        "the compiled JSON has a limits object"
    );
    let mut h = FakeHost::with_request(
        "POST",
        "/v1/payments",
        &[
            ("content-type", "application/json"),
            ("authorization", &format!("Bearer {}", good_token())),
        ],
    )
    .at(start());
    let s = configure(&mut h, &yaml_limit);
    let stream = s.stream(11);
    assert_eq!(stream.on_request_headers(&mut h, false), Action::Pause);
    // The whole body arrives during the wait, over the limit. (Before the phases, the refused
    // request kept waiting and was converted and resumed once the keys came.)
    h.request_body = vec![b' '; 100];
    assert_eq!(stream.on_request_body(&mut h, 100, true), Action::Pause);
    let (status, _) = h.reply_json();
    assert_eq!(status, 413);
    let first = h.local_reply.clone();
    let fetch = 1;
    let body = jwks();
    jwks_reply(&mut h, body.as_bytes());
    s.on_http_call_response(&mut h, fetch, 1, body.len());
    assert_eq!(h.local_reply, first, "no second answer");
    assert!(h.resumed.is_empty(), "a refused request is not resumed");
    assert_eq!(s.pending().0, 0);
}
