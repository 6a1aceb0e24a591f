//! The gateway of the inline-key auth suites (`e2e_auth_providers.rs`,
//! `e2e_auth_security.rs`, `e2e_auth_outputs.rs`) and their request and record helpers.
//!
//! The gateway ([`builder`], [`gateway_doc`]) has two providers:
//! - `main`: issuer [`ISSUER`], audience `api`, `require_expiration`, `max_lifetime_seconds`
//!   3600, `clock_skew_seconds` 60, the five test keys inline; tokens from `Authorization:
//!   Bearer`, the `access_token` query parameter and the `session` cookie; claims to headers
//!   (`sub`, the array `realm_access.roles`, the nested `org.team.name`) and the payload header;
//! - `other`: issuer [`OTHER_ISSUER`], audience `api`, subjects `[svc-1]`, one P-256 key,
//!   tokens from `x-other-token` (no prefix) and the `other_token` query parameter,
//!   `forward: true`.
//!
//! Operations: GetPayment `main`; ListPayments any of both; GetPaymentStatus all of both;
//! GetReceipt `allow_missing`; DeletePayment `allow_missing_or_failed`; CreatePayment `main`;
//! Wallets `none`; GetDocument no rule (default: deny). Two REST operations on the echo backend
//! `legacy` (which answers with what it received): `GET /legacy/docs/**` any of both, and
//! `GET /legacy/open/**` no rule.

use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use meshgate_kit::harness::{
    http1_client, http2_client, payments_client, wallets_client, Gateway, GatewayBuilder,
};
use meshgate_kit::proto::meshgate::demo::v1::{
    GetPaymentRequest, GetWalletRequest, ListPaymentsRequest,
};
use serde_json::{json, Value};
use std::time::Duration;
use tonic::metadata::MetadataValue;

pub const PAYMENT: &str = "/v1/payments/pay_001";

/// The suite's gateway: [`gateway_doc`] with `auth_extra` merged into `auth` (e.g.
/// `{"cache": {"enabled": false}}`), the demo backends and the REST echo backend `legacy`.
pub fn builder(auth_extra: Value) -> GatewayBuilder {
    GatewayBuilder::demo_doc("auth-inline", gateway_doc(auth_extra)).rest_upstream("legacy")
}

/// The gateway's configuration, with `auth_extra` merged into `auth`.
pub fn gateway_doc(auth_extra: Value) -> Value {
    let other_jwks = json!({"keys": [other_jwk("other")]}).to_string();
    let mut doc = json!({
            "operations": {
                "meshgate.demo.v1.Payments.GetPayment": {"auth": {"provider": "main"}},
                "meshgate.demo.v1.Payments.CreatePayment": {"auth": {"provider": "main"}},
                "meshgate.demo.v1.Payments.ListPayments":
                    {"auth": {"any": [{"provider": "main"}, {"provider": "other"}]}},
                "meshgate.demo.v1.Payments.GetPaymentStatus":
                    {"auth": {"all": [{"provider": "main"}, {"provider": "other"}]}},
                "meshgate.demo.v1.Payments.GetReceipt": {"auth": "allow_missing"},
                "meshgate.demo.v1.Payments.DeletePayment": {"auth": "allow_missing_or_failed"},
            },
            "services": {"meshgate.demo.v1.Wallets": {"upstream": "wallets", "auth": "none"}},
            "upstreams": {"legacy": {"path_translation": "APPEND_PATH_TO_ADDRESS", "path_prefix": "/rest"}},
            "http_operations": [
                {"name": "legacy.Docs", "method": "GET", "path": "/legacy/docs/**",
                 "upstream": "legacy",
                 "auth": {"any": [{"provider": "main"}, {"provider": "other"}]}},
                {"name": "legacy.Open", "method": "GET", "path": "/legacy/open/**",
                 "upstream": "legacy"},
            ],
            "auth": {
                "realm": "payments-api",
                "providers": [
                    {
                        "name": "main",
                        "issuer": ISSUER,
                        "audiences": ["api"],
                        "require_expiration": true,
                        "max_lifetime_seconds": 3600,
                        "clock_skew_seconds": 60,
                        "jwks": {"inline": main_jwks()},
                        "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
                        "from_params": ["access_token"],
                        "from_cookies": ["session"],
                        "claim_to_headers": [
                            {"claim": "sub", "header": "x-meshgate-claim-sub"},
                            {"claim": "realm_access.roles", "header": "x-meshgate-claim-roles"},
                            {"claim": "org.team.name", "header": "x-meshgate-claim-team"},
                        ],
                        "forward_payload_header": "x-meshgate-jwt-payload",
                    },
                    {
                        "name": "other",
                        "issuer": OTHER_ISSUER,
                        "audiences": ["api"],
                        "subjects": ["svc-1"],
                        "jwks": {"inline": other_jwks},
                        "from_headers": [{"name": "x-other-token"}],
                        "from_params": ["other_token"],
                        "forward": true,
                        "claim_to_headers": [{"claim": "sub", "header": "x-meshgate-other-sub"}],
                    },
                ],
            },
    });
    for (k, v) in auth_extra.as_object().unwrap() {
        doc["auth"][k] = v.clone();
    }
    doc
}

pub fn other_claims(sub: &str) -> Value {
    let now = now_secs();
    json!({"iss": OTHER_ISSUER, "aud": "api", "sub": sub, "iat": now - 10, "exp": now + 300})
}

pub async fn get(
    gw: &Gateway,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Value, Option<String>) {
    let resp = http1_client().get(&gw.url(path), headers).await.unwrap();
    let www = resp.header("www-authenticate").map(str::to_string);
    let body = resp.json().unwrap_or(Value::Null);
    (resp.status.as_u16(), body, www)
}

/// The access record of request `id` and its denial log line: refused by the auth check with
/// `status` and `reason`, without calling the backend.
pub fn assert_denial_recorded(gw: &Gateway, id: &str, status: u16, reason: &str, name: &str) {
    let rec = gw
        .record_for(id)
        .unwrap_or_else(|| panic!("{name}: no access record for {id}"));
    assert_eq!(rec["httpRequest"]["status"], status, "{name}: {rec}");
    let grpc = if status == 403 {
        "PERMISSION_DENIED"
    } else {
        "UNAUTHENTICATED"
    };
    assert_eq!(rec["grpcStatus"], grpc, "{name}: {rec}");
    assert_eq!(
        rec["operation"], "meshgate.demo.v1.Payments.GetPayment",
        "{name}: {rec}"
    );
    assert!(rec.get("principal").is_none(), "{name}: {rec}");
    let line = format!(
        "meshgate: GET {PAYMENT} denied: {} ({reason}) request_id={id}",
        reason_text(reason)
    );
    gw.envoy
        .wait_for_log(&line, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{name}: denial not logged: {e}"));
}

pub fn reason_text(reason: &str) -> &'static str {
    match reason {
        "unsupported_algorithm" => "Jwt algorithm is not supported",
        "algorithm_mismatch" => "Jwt algorithm is not allowed for its key",
        "unknown_kid" => "Jwt key id is not known",
        "unsupported_critical" => "Jwt has unsupported critical header parameters",
        "bad_signature" => "Jwt verification fails",
        "malformed" => "Jwt is not in the form of Header.Payload.Signature",
        "too_large" => "Jwt is too large",
        "expired" => "Jwt is expired",
        "not_yet_valid" => "Jwt not yet valid",
        "wrong_issuer" => "Jwt issuer is not configured",
        "wrong_audience" => "Audiences in Jwt are not allowed",
        "missing_expiration" => "Jwt has no expiration",
        "lifetime_too_long" => "Jwt lifetime is longer than allowed",
        "wrong_subject" => "Jwt subject is not allowed",
        "missing" => "Jwt is missing",
        "no_rule" => "No authentication rule allows this operation",
        other => panic!("no text for {other}"),
    }
}
