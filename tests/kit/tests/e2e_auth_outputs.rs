//! Issue 8 end to end, inline keys (outputs): the claims, the payload header and the subject
//! reach the backend (`x-demo-saw-*`, `x-demo-received-headers`) and the token does not;
//! tokens from the query and cookies are accepted, taken out of the request, and never
//! reach the logs.
//!
//! The gateway: [`e2e_auth_support::inline`] (two providers, `main` with the five test keys
//! inline and `other`; one operation per requirement kind). Split from `e2e_auth.rs` by
//! behaviour: `e2e_auth_providers.rs` (algorithms and requirements), `e2e_auth_security.rs`
//! (hostile tokens), `e2e_auth_outputs.rs` (what reaches the backend and the logs).
//!
//! Needs `build/meshgate.wasm` (`make wasm`) and Envoy (`make setup`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_auth_support;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use e2e_auth_support::inline::*;
use e2e_auth_support::*;
use meshgate_kit::harness::{http1_client, payments_client, wallets_client};
use meshgate_kit::proto::meshgate::demo::v1::{
    GetPaymentRequest, GetWalletRequest, ListPaymentsRequest,
};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn claims_payload_and_subject_reach_the_backend_and_the_token_does_not() {
    let gw = builder(json!({})).start().unwrap();
    let c = claims();
    let t = token("PS256", &c);
    let mut payments = payments_client(gw.addr()).await.unwrap();
    let mut req = tonic::Request::new(GetPaymentRequest {
        id: "pay_001".into(),
        view: None,
    });
    let md = req.metadata_mut();
    md.insert("authorization", bearer(&t).parse().unwrap());
    // Spoofed copies of every header the gateway sets: all replaced or dropped.
    md.insert("x-meshgate-claim-sub", "admin".parse().unwrap());
    md.insert("x-meshgate-claim-team", "root".parse().unwrap());
    md.insert("x-meshgate-jwt-payload", "forged".parse().unwrap());
    md.insert("x-meshgate-other-sub", "forged".parse().unwrap());
    md.insert("x-meshgate-subject", "admin".parse().unwrap());
    let reply = payments.get_payment(req).await.unwrap();
    let saw = |n: &str| {
        reply
            .metadata()
            .get_all(format!("x-demo-saw-{n}").as_str())
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(saw("claim-sub"), ["user-1"]);
    assert_eq!(
        saw("claim-roles"),
        ["reader,payer"],
        "array claims are joined"
    );
    assert_eq!(saw("claim-team"), ["payments"], "nested claim path");
    assert_eq!(saw("subject"), ["user-1"]);
    assert!(
        saw("other-sub").is_empty(),
        "spoofed header of the other provider dropped"
    );
    let payload = saw("jwt-payload");
    assert_eq!(payload.len(), 1);
    let decoded: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&payload[0]).unwrap()).unwrap();
    assert_eq!(decoded, c, "the verified payload, base64url");
    let received = reply
        .metadata()
        .get("x-demo-received-headers")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        !received.split(',').any(|h| h == "authorization"),
        "token removed: {received}"
    );

    // An operation without auth: nothing set, spoofed copies still stripped, token kept.
    let mut wallets = wallets_client(gw.addr()).await.unwrap();
    let mut req = tonic::Request::new(GetWalletRequest {
        wallet_id: "w_001".into(),
    });
    req.metadata_mut()
        .insert("x-meshgate-claim-sub", "admin".parse().unwrap());
    req.metadata_mut()
        .insert("x-meshgate-jwt-payload", "forged".parse().unwrap());
    let reply = wallets.get_wallet(req).await.unwrap();
    assert!(reply.metadata().get("x-demo-saw-claim-sub").is_none());
    assert!(reply.metadata().get("x-demo-saw-jwt-payload").is_none());

    // `forward: true` keeps the other provider's token upstream.
    let mut req = tonic::Request::new(ListPaymentsRequest::default());
    req.metadata_mut().insert(
        "x-other-token",
        other_token(&other_claims("svc-1")).parse().unwrap(),
    );
    let reply = payments.list_payments(req).await.unwrap();
    let received = reply
        .metadata()
        .get("x-demo-received-headers")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        received.split(',').any(|h| h == "x-other-token"),
        "{received}"
    );
    assert_eq!(
        reply.metadata().get("x-demo-saw-other-sub").unwrap(),
        "svc-1"
    );

    // The subject is in the access record; the token is nowhere in it.
    let recs = records(&gw, 3);
    assert_eq!(recs[0]["principal"], "user-1", "{}", recs[0]);
    assert_eq!(recs[2]["principal"], "svc-1", "{}", recs[2]);
    assert!(
        !gw.envoy.stdout().contains(&t[..40]),
        "the token is never logged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_from_query_and_cookie_are_accepted_and_taken_out() {
    let gw = builder(json!({})).start().unwrap();
    let t = token("EdDSA", &claims());
    // Query parameter: accepted, and not mistaken for a field of the request message.
    let (status, body, _) = get(&gw, &format!("{PAYMENT}?access_token={t}"), &[]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body, _) = get(
        &gw,
        &format!("/v1/payments?page_size=1&access_token={t}"),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let recs = records(&gw, 2);
    for r in &recs {
        let url = r["httpRequest"]["requestUrl"].as_str().unwrap_or_default();
        assert!(
            !url.contains("access_token"),
            "token out of the logged URL: {url}"
        );
    }
    // Cookie: accepted; the other cookies go on, the token's does not.
    let mut payments = payments_client(gw.addr()).await.unwrap();
    let mut req = tonic::Request::new(GetPaymentRequest {
        id: "pay_001".into(),
        view: None,
    });
    req.metadata_mut()
        .insert("cookie", format!("session={t}").parse().unwrap());
    let reply = payments.get_payment(req).await.unwrap();
    let received = reply
        .metadata()
        .get("x-demo-received-headers")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(!received.split(',').any(|h| h == "cookie"), "{received}");
    assert_eq!(
        reply.metadata().get("x-demo-saw-claim-sub").unwrap(),
        "user-1"
    );
    // A body-carrying JSON request (through Envoy's router) with a cookie token.
    let resp = http1_client()
        .post(
            &gw.url("/v1/payments"),
            &[
                ("content-type", "application/json"),
                ("cookie", &format!("theme=dark; session={t}")),
            ],
            r#"{"merchant": "m_1", "amount": {"currencyCode": "EUR", "amountMinor": "100"}}"#,
        )
        .await
        .unwrap();
    assert_eq!(resp.status.as_u16(), 200, "{}", resp.text());
    // What the upstream got (the REST echo backend shows it): the other cookies, in order,
    // without the token's; the rest of the query without the token.
    let (status, seen, _) = get(
        &gw,
        "/legacy/docs/a?x=1",
        &[("cookie", &format!("theme=dark; session={t}; lang=en"))],
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["headers"]["cookie"], "theme=dark; lang=en", "{seen}");
    assert_eq!(seen["query"], "x=1", "{seen}");
    assert_eq!(seen["headers"]["x-meshgate-claim-sub"], "user-1", "{seen}");
    assert!(!seen.to_string().contains(&t[t.len() - 40..]), "{seen}");
    let (status, seen, _) = get(
        &gw,
        &format!("/legacy/docs/a?x=1&access_token={t}&y=2"),
        &[("cookie", "theme=dark")],
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["query"], "x=1&y=2", "{seen}");
    assert_eq!(seen["headers"]["cookie"], "theme=dark", "{seen}");
    assert!(!seen.to_string().contains(&t[t.len() - 40..]), "{seen}");
}

/// A token in the query is a secret whatever becomes of the request: refused (expired, wrong
/// audience), failed under `allow_missing_or_failed` (left in the upstream's path), forwarded
/// (`forward: true`, to a REST and to a transcoded operation), or accepted. (Where it stays in
/// the URL, a transcoded operation still does not take it for a field of its message.) The access record's URL and the denial log line show the
/// parameter as `REDACTED`, and neither Envoy's log nor its access log holds the token. A
/// cookie token is never in the record either (the record carries no cookie).
#[tokio::test(flavor = "multi_thread")]
async fn query_and_cookie_tokens_never_reach_the_logs() {
    let gw = builder(json!({})).start().unwrap();
    let now = now_secs();
    let mut expired = claims();
    expired["exp"] = json!(now - 600);
    expired["iat"] = json!(now - 900);
    let expired = token("ES256", &expired);
    let mut other_aud = claims();
    other_aud["aud"] = json!("other-api");
    let other_aud = token("RS256", &other_aud);
    let accepted = token("EdDSA", &claims());
    let forwarded = other_token(&other_claims("svc-1"));
    // (request id, method, path, status, whether the parameter stays in the URL)
    let cases = [
        (
            "query-expired",
            http::Method::GET,
            format!("{PAYMENT}?view=PAYMENT_VIEW_FULL&access_token={expired}"),
            401,
            true,
        ),
        (
            "query-audience",
            http::Method::GET,
            format!("{PAYMENT}?access_token={other_aud}"),
            403,
            true,
        ),
        (
            "query-failed-allowed",
            http::Method::DELETE,
            format!("/v1/payments/pay_002?access_token={expired}"),
            200,
            true,
        ),
        (
            "query-forwarded",
            http::Method::GET,
            format!("/legacy/docs/a?x=1&other_token={forwarded}"),
            200,
            true,
        ),
        (
            "query-forwarded-transcoded",
            http::Method::GET,
            format!("/v1/payments?page_size=1&other_token={forwarded}"),
            200,
            true,
        ),
        (
            "query-accepted",
            http::Method::GET,
            format!("{PAYMENT}?access_token={accepted}"),
            200,
            false,
        ),
    ];
    let client = http1_client();
    for (id, method, path, status, kept) in &cases {
        let resp = client
            .request(method.clone(), &gw.url(path), &[("x-request-id", id)], "")
            .await
            .unwrap();
        assert_eq!(resp.status.as_u16(), *status, "{id}: {}", resp.text());
        if *id == "query-forwarded" {
            // `forward: true`: the upstream still gets the token.
            let seen = resp.json().unwrap();
            assert_eq!(
                seen["query"],
                format!("x=1&other_token={forwarded}"),
                "{seen}"
            );
        }
        let rec = gw
            .record_for(id)
            .unwrap_or_else(|| panic!("no record for {id}"));
        let url = rec["httpRequest"]["requestUrl"].as_str().unwrap();
        let param = if id.starts_with("query-forwarded") {
            "other_token"
        } else {
            "access_token"
        };
        assert_eq!(
            url.contains(&format!("{param}=REDACTED")),
            *kept,
            "{id}: {url}"
        );
        assert!(!url.contains(param) || *kept, "{id}: {url}");
    }
    let line = format!(
        "meshgate: GET {PAYMENT}?view=PAYMENT_VIEW_FULL&access_token=REDACTED denied: {} \
         (expired) request_id=query-expired",
        reason_text("expired")
    );
    gw.envoy
        .wait_for_log(&line, Duration::from_secs(5))
        .unwrap();
    gw.envoy
        .wait_for_log(
            "(wrong_audience) request_id=query-audience",
            Duration::from_secs(5),
        )
        .unwrap();

    // A refused cookie token, next to other cookies.
    let cookie = format!("theme=dark; session={expired}; lang=en");
    let (status, body, _) = get(
        &gw,
        PAYMENT,
        &[("cookie", &cookie), ("x-request-id", "cookie-expired")],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let rec = gw.record_for("cookie-expired").unwrap().to_string();
    assert!(
        !rec.contains("theme=dark") && !rec.contains("session"),
        "{rec}"
    );

    // No part of any token anywhere in Envoy's logs (the signatures differ per token).
    let (log, stdout) = (gw.envoy.log(), gw.envoy.stdout());
    for t in [&expired, &other_aud, &accepted, &forwarded] {
        let signature = t.rsplit('.').next().unwrap();
        assert!(signature.len() > 40);
        assert!(!log.contains(signature), "token in Envoy's log:\n{log}");
        assert!(
            !stdout.contains(signature),
            "token in the access log:\n{stdout}"
        );
    }
}
