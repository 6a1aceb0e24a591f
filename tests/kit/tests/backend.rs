//! The demo gRPC backend as a real process, over real tonic and raw HTTP/2 clients.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use meshgate_kit::harness::{
    grpc_frame, grpc_unframe, http2_client, payments_client, start_backend,
    start_backend_with_args, wallets_client,
};
use meshgate_kit::proto::google::rpc;
use meshgate_kit::proto::meshgate::demo::v1::*;
use prost::Message;
use sha2::Digest;
use tonic::{Code, Request};

fn with_meta<T>(msg: T, meta: &[(&'static str, &str)]) -> Request<T> {
    let mut req = Request::new(msg);
    for (k, v) in meta {
        req.metadata_mut().insert(*k, v.parse().unwrap());
    }
    req
}

fn get(id: &str) -> GetPaymentRequest {
    GetPaymentRequest {
        id: id.into(),
        view: None,
    }
}

fn details_of(status: &tonic::Status) -> rpc::Status {
    rpc::Status::decode(status.details()).unwrap()
}

/// POSTs one framed message to `path` over raw h2c and returns the whole response.
async fn raw_call(
    addr: std::net::SocketAddr,
    path: &str,
    msg: &[u8],
    meta: &[(&str, &str)],
) -> meshgate_kit::KitResult<meshgate_kit::harness::RawResponse> {
    let mut headers = vec![("content-type", "application/grpc"), ("te", "trailers")];
    headers.extend_from_slice(meta);
    http2_client()
        .post(&format!("http://{addr}{path}"), &headers, grpc_frame(msg))
        .await
}

const GET_PAYMENT: &str = "/meshgate.demo.v1.Payments/GetPayment";

#[tokio::test]
async fn get_payment_returns_seeded_payment_and_names_the_backend() {
    let backend = start_backend("alpha", "payments,wallets").unwrap();
    let mut client = payments_client(backend.addr).await.unwrap();
    let response = client.get_payment(get("pay_001")).await.unwrap();
    assert_eq!(response.metadata().get("x-demo-backend").unwrap(), "alpha");
    let payment = response.into_inner();
    assert_eq!(payment.merchant, "merchants/acme");
    assert_eq!(payment.amount.unwrap().amount_minor, 1250);
    assert_eq!(payment.state, PaymentState::Captured as i32);
}

#[tokio::test]
async fn backend_name_is_also_a_trailer() {
    let backend = start_backend("beta", "payments").unwrap();
    let response = raw_call(
        backend.addr,
        GET_PAYMENT,
        &get("pay_002").encode_to_vec(),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(response.trailer("grpc-status"), Some("0"));
    assert_eq!(response.trailer("x-demo-backend"), Some("beta"));
    let frames = grpc_unframe(&response.body).unwrap();
    assert_eq!(Payment::decode(frames[0].1.clone()).unwrap().id, "pay_002");
}

#[tokio::test]
async fn unknown_payment_is_not_found_with_resource_info() {
    let backend = start_backend("b", "payments").unwrap();
    let mut client = payments_client(backend.addr).await.unwrap();
    let status = client.get_payment(get("pay_missing")).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let details = details_of(&status);
    assert_eq!(
        details.details[0].type_url,
        "type.googleapis.com/google.rpc.ResourceInfo"
    );
}

#[tokio::test]
async fn create_without_amount_is_invalid_argument_with_bad_request() {
    let backend = start_backend("b", "payments").unwrap();
    let mut client = payments_client(backend.addr).await.unwrap();
    let req = CreatePaymentRequest {
        payment: Some(Payment::default()),
        request_id: String::new(),
    };
    let status = client.create_payment(req).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let any = &details_of(&status).details[0];
    assert_eq!(any.type_url, "type.googleapis.com/google.rpc.BadRequest");
    let bad = rpc::BadRequest::decode(any.value.as_slice()).unwrap();
    assert_eq!(bad.field_violations[0].field, "payment.amount");
}

#[tokio::test]
async fn created_payment_gets_deterministic_id_and_request_id_label() {
    let backend = start_backend("b", "payments").unwrap();
    let mut client = payments_client(backend.addr).await.unwrap();
    let req = CreatePaymentRequest {
        payment: Some(Payment {
            amount: Some(Money {
                currency_code: "USD".into(),
                amount_minor: 500,
            }),
            ..Default::default()
        }),
        request_id: "req-1".into(),
    };
    let created = client.create_payment(req).await.unwrap().into_inner();
    assert_eq!(created.id, "pay_101");
    assert_eq!(created.state, PaymentState::Pending as i32);
    assert_eq!(created.labels["request_id"], "req-1");
    let fetched = client
        .get_payment(get("pay_101"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, created);
}

#[tokio::test]
async fn cancelling_twice_is_failed_precondition() {
    let backend = start_backend("b", "payments").unwrap();
    let mut client = payments_client(backend.addr).await.unwrap();
    let cancel = || CancelPaymentRequest {
        id: "pay_002".into(),
        reason: "test".into(),
    };
    let first = client.cancel_payment(cancel()).await.unwrap().into_inner();
    assert_eq!(first.state, PaymentState::Cancelled as i32);
    let second = client.cancel_payment(cancel()).await.unwrap_err();
    assert_eq!(second.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn list_filters_by_merchant_and_pages() {
    let backend = start_backend("b", "payments").unwrap();
    let mut client = payments_client(backend.addr).await.unwrap();
    let req = ListPaymentsRequest {
        parent: "merchants/acme".into(),
        page_size: 2,
        ..Default::default()
    };
    let page = client
        .list_payments(req.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.total_size, 3);
    assert_eq!(page.payments.len(), 2);
    let next = ListPaymentsRequest {
        page_token: page.next_page_token,
        ..req
    };
    let rest = client.list_payments(next).await.unwrap().into_inner();
    assert_eq!(rest.payments.len(), 1);
    assert!(rest.next_page_token.is_empty());
}

#[tokio::test]
async fn receipt_comes_as_text_or_pdf() {
    let backend = start_backend("b", "payments").unwrap();
    let mut client = payments_client(backend.addr).await.unwrap();
    let text = client
        .get_receipt(GetReceiptRequest {
            id: "pay_001".into(),
            format: "text".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(text.content_type.starts_with("text/plain"));
    assert!(String::from_utf8(text.data).unwrap().contains("12.50 USD"));
    let pdf = client
        .get_receipt(GetReceiptRequest {
            id: "pay_001".into(),
            format: "pdf".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pdf.content_type, "application/pdf");
    assert!(pdf.data.starts_with(b"%PDF-"));
}

#[tokio::test]
async fn upload_echoes_size_and_sha256() {
    let backend = start_backend("b", "payments").unwrap();
    let mut client = payments_client(backend.addr).await.unwrap();
    let data = b"hello attachment".to_vec();
    let expected = sha2::Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let req = UploadAttachmentRequest {
        payment_id: "pay_001".into(),
        file: Some(meshgate_kit::proto::google::api::HttpBody {
            content_type: "text/plain".into(),
            data: data.clone(),
            extensions: vec![],
        }),
    };
    let attachment = client.upload_attachment(req).await.unwrap().into_inner();
    assert_eq!(attachment.size_bytes, data.len() as i64);
    assert_eq!(attachment.sha256, expected);
    assert_eq!(attachment.content_type, "text/plain");
}

#[tokio::test]
async fn watch_streams_events_then_fails_as_asked() {
    let backend = start_backend("b", "payments").unwrap();
    let mut client = payments_client(backend.addr).await.unwrap();
    let req = WatchPaymentsRequest {
        parent: "merchants/acme".into(),
        max_events: 3,
        fail_with_code: Code::Unavailable as i32,
        ..Default::default()
    };
    let started = Instant::now();
    let mut stream = client.watch_payments(req).await.unwrap().into_inner();
    let mut sequences = Vec::new();
    let end = loop {
        match stream.message().await {
            Ok(Some(event)) => sequences.push(event.sequence),
            Ok(None) => break None,
            Err(status) => break Some(status.code()),
        }
    };
    assert_eq!(sequences, vec![1, 2, 3]);
    assert_eq!(end, Some(Code::Unavailable));
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn watch_with_no_events_is_headers_then_trailers_without_data() {
    let backend = start_backend("b", "payments").unwrap();
    let req = WatchPaymentsRequest {
        parent: String::new(),
        max_events: 0,
        fail_with_code: 0,
        ..Default::default()
    };
    let response = raw_call(
        backend.addr,
        "/meshgate.demo.v1.Payments/WatchPayments",
        &req.encode_to_vec(),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(response.status, 200);
    assert!(
        response.headers.get("grpc-status").is_none(),
        "not trailers-only"
    );
    assert!(response.body.is_empty());
    assert_eq!(response.trailer("grpc-status"), Some("0"));
}

#[tokio::test]
async fn fail_hook_answers_with_requested_code_message_and_details() {
    let backend = start_backend("b", "payments").unwrap();
    let mut client = payments_client(backend.addr).await.unwrap();
    let by_name = client
        .get_payment(with_meta(
            get("pay_001"),
            &[
                ("x-demo-fail", "RESOURCE_EXHAUSTED"),
                ("x-demo-fail-message", "slow down"),
            ],
        ))
        .await
        .unwrap_err();
    assert_eq!(by_name.code(), Code::ResourceExhausted);
    assert_eq!(by_name.message(), "slow down");
    assert_eq!(by_name.metadata().get("x-demo-backend").unwrap(), "b");
    let by_number = client
        .get_payment(with_meta(
            get("pay_001"),
            &[("x-demo-fail", "14"), ("x-demo-fail-details", "badrequest")],
        ))
        .await
        .unwrap_err();
    assert_eq!(by_number.code(), Code::Unavailable);
    let details = details_of(&by_number);
    assert_eq!(details.code, Code::Unavailable as i32);
    assert_eq!(
        details.details[0].type_url,
        "type.googleapis.com/google.rpc.BadRequest"
    );
}

#[tokio::test]
async fn delay_hook_delays_the_answer() {
    let backend = start_backend("b", "payments").unwrap();
    let mut client = payments_client(backend.addr).await.unwrap();
    let started = Instant::now();
    client
        .get_payment(with_meta(get("pay_001"), &[("x-demo-delay-ms", "300")]))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn echo_and_saw_headers_report_received_metadata() {
    let backend = start_backend("b", "payments").unwrap();
    let mut client = payments_client(backend.addr).await.unwrap();
    let response = client
        .get_payment(with_meta(
            get("pay_001"),
            &[
                ("x-echo-color", "blue"),
                (
                    "x-meshgate-operation",
                    "meshgate.demo.v1.Payments.GetPayment",
                ),
            ],
        ))
        .await
        .unwrap();
    let meta = response.metadata();
    assert_eq!(meta.get("x-demo-echo-color").unwrap(), "blue");
    assert_eq!(
        meta.get("x-demo-saw-operation").unwrap(),
        "meshgate.demo.v1.Payments.GetPayment"
    );
    let received = meta
        .get("x-demo-received-headers")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(received.split(',').any(|h| h == "x-echo-color"));
    assert!(!received.split(',').any(|h| h == "authorization"));
}

#[tokio::test]
async fn misbehave_bad_frame_sends_undecodable_message() {
    let backend = start_backend("b", "payments").unwrap();
    let r = raw_call(
        backend.addr,
        GET_PAYMENT,
        &get("pay_001").encode_to_vec(),
        &[("x-demo-misbehave", "bad-frame")],
    )
    .await
    .unwrap();
    let frames = grpc_unframe(&r.body).unwrap();
    assert!(Payment::decode(frames[0].1.clone()).is_err());
    assert_eq!(r.trailer("grpc-status"), Some("0"));
    let mut client = payments_client(backend.addr).await.unwrap();
    let err = client
        .get_payment(with_meta(
            get("pay_001"),
            &[("x-demo-misbehave", "bad-frame")],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal);
}

#[tokio::test]
async fn misbehave_truncated_and_short_frame_do_not_end_on_a_frame_boundary() {
    let backend = start_backend("b", "payments").unwrap();
    for mode in ["truncated", "short-frame"] {
        let r = raw_call(
            backend.addr,
            GET_PAYMENT,
            &get("pay_001").encode_to_vec(),
            &[("x-demo-misbehave", mode)],
        )
        .await
        .unwrap();
        assert!(grpc_unframe(&r.body).is_none(), "{mode}");
        assert_eq!(r.trailer("grpc-status"), Some("0"), "{mode}");
    }
}

#[tokio::test]
async fn misbehave_compressed_sets_the_flag_without_encoding() {
    let backend = start_backend("b", "payments").unwrap();
    let r = raw_call(
        backend.addr,
        GET_PAYMENT,
        &get("pay_001").encode_to_vec(),
        &[("x-demo-misbehave", "compressed")],
    )
    .await
    .unwrap();
    let frames = grpc_unframe(&r.body).unwrap();
    assert!(frames[0].0, "compressed flag");
    assert!(r.headers.get("grpc-encoding").is_none());
}

#[tokio::test]
async fn misbehave_reset_resets_the_stream() {
    let backend = start_backend("b", "payments").unwrap();
    let r = raw_call(
        backend.addr,
        GET_PAYMENT,
        &get("pay_001").encode_to_vec(),
        &[("x-demo-misbehave", "reset")],
    )
    .await;
    let err = r.unwrap_err();
    assert!(
        err.0.to_lowercase().contains("reset") || err.0.contains("INTERNAL_ERROR"),
        "{err}"
    );
}

#[tokio::test]
async fn misbehave_no_trailers_ends_without_grpc_status() {
    let backend = start_backend("b", "payments").unwrap();
    let r = raw_call(
        backend.addr,
        GET_PAYMENT,
        &get("pay_001").encode_to_vec(),
        &[("x-demo-misbehave", "no-trailers")],
    )
    .await
    .unwrap();
    assert_eq!(grpc_unframe(&r.body).unwrap().len(), 1);
    assert!(r.trailer("grpc-status").is_none());
    assert!(r.header("grpc-status").is_none());
}

#[tokio::test]
async fn services_flag_limits_what_is_served() {
    let backend = start_backend("w-only", "wallets").unwrap();
    let mut payments = payments_client(backend.addr).await.unwrap();
    assert_eq!(
        payments
            .get_payment(get("pay_001"))
            .await
            .unwrap_err()
            .code(),
        Code::Unimplemented
    );
    let mut wallets = wallets_client(backend.addr).await.unwrap();
    let wallet = wallets
        .get_wallet(GetWalletRequest {
            wallet_id: "w_001".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(wallet.owner, "users/alice");
}

#[tokio::test]
async fn wallets_entries_and_top_up() {
    let backend = start_backend("b", "wallets").unwrap();
    let mut wallets = wallets_client(backend.addr).await.unwrap();
    let entry = wallets
        .get_entry(GetEntryRequest {
            name: "wallets/w_001/entries/e_002".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(entry.memo, "coffee");
    let bad = wallets
        .get_entry(GetEntryRequest {
            name: "w_001/e_002".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let topped = wallets
        .top_up(TopUpRequest {
            wallet_id: "w_001".into(),
            amount: Some(Money {
                currency_code: "EUR".into(),
                amount_minor: 100,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(topped.balance.unwrap().amount_minor, 5_100);
    let wrong_currency = wallets
        .top_up(TopUpRequest {
            wallet_id: "w_001".into(),
            amount: Some(Money {
                currency_code: "USD".into(),
                amount_minor: 100,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(wrong_currency.code(), Code::FailedPrecondition);
}

#[test]
fn backend_exits_cleanly_on_sigterm() {
    let mut backend = start_backend("b", "payments,wallets").unwrap();
    let status = backend.guard.stop().unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn backend_with_an_open_client_connection_still_exits_promptly() {
    let mut backend = start_backend("b", "payments").unwrap();
    let mut client = payments_client(backend.addr).await.unwrap();
    client.get_payment(get("pay_001")).await.unwrap();
    let started = Instant::now();
    let status = backend.guard.stop().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn misbehave_flag_applies_to_every_request_unless_metadata_says_none() {
    let backend =
        start_backend_with_args("bad", "payments", &["--misbehave", "compressed"]).unwrap();
    let msg = get("pay_001").encode_to_vec();
    let broken = raw_call(backend.addr, GET_PAYMENT, &msg, &[])
        .await
        .unwrap();
    assert!(grpc_unframe(&broken.body).unwrap()[0].0, "compressed flag");
    let normal = raw_call(
        backend.addr,
        GET_PAYMENT,
        &msg,
        &[("x-demo-misbehave", "none")],
    )
    .await
    .unwrap();
    let frames = grpc_unframe(&normal.body).unwrap();
    assert!(!frames[0].0);
    assert_eq!(Payment::decode(frames[0].1.clone()).unwrap().id, "pay_001");
}
