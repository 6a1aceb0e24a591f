//! The demo `Payments` service over the shared in-memory store. Errors are the realistic ones a
//! gateway must map: NOT_FOUND (with ResourceInfo), INVALID_ARGUMENT (with BadRequest) and
//! FAILED_PRECONDITION (with PreconditionFailure).
use std::pin::Pin;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_stream::Stream;
use tonic::{Code, Request, Response, Status, Streaming};

use super::errors::{bad_request, not_found, precondition};
use super::update::apply_update;
use super::SharedStore;
use crate::proto::google::api::HttpBody;
use crate::proto::meshgate::demo::v1::payments_server::Payments;
use crate::proto::meshgate::demo::v1::*;

/// Interval between two streamed `PaymentEvent`s.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(50);
/// Upper bound on `max_events`, so a typo cannot make a test stream for hours.
const MAX_WATCH_EVENTS: i32 = 10_000;

/// The Payments service.
#[derive(Debug, Clone)]
pub struct PaymentsService {
    store: SharedStore,
}

impl PaymentsService {
    pub fn new(store: SharedStore) -> Self {
        PaymentsService { store }
    }

    /// A copy of one payment, or NOT_FOUND.
    fn find(&self, id: &str) -> Result<Payment, Status> {
        let store = self.store.lock()?;
        store
            .payments
            .get(id)
            .cloned()
            .ok_or_else(|| not_found("payment", id))
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<PaymentEvent, Status>> + Send>>;
type BodyStream = Pin<Box<dyn Stream<Item = Result<HttpBody, Status>> + Send>>;
type PaymentStream = Pin<Box<dyn Stream<Item = Result<Payment, Status>> + Send>>;

#[tonic::async_trait]
impl Payments for PaymentsService {
    async fn get_payment(
        &self,
        req: Request<GetPaymentRequest>,
    ) -> Result<Response<Payment>, Status> {
        let req = req.into_inner();
        let mut payment = self.find(&req.id)?;
        if req.view.is_some_and(|v| !v.include_items) {
            payment.items.clear();
        }
        Ok(Response::new(payment))
    }

    async fn list_payments(
        &self,
        req: Request<ListPaymentsRequest>,
    ) -> Result<Response<ListPaymentsResponse>, Status> {
        let req = req.into_inner();
        let matching: Vec<Payment> = {
            let store = self.store.lock()?;
            store
                .payments
                .values()
                .filter(|p| list_filter(&req, p))
                .cloned()
                .collect()
        };
        let start: usize = if req.page_token.is_empty() {
            0
        } else {
            req.page_token
                .parse()
                .map_err(|_| bad_request("page_token", "not a token this server issued"))?
        };
        let size = usize::try_from(req.page_size).unwrap_or(0);
        let size = if size == 0 { 50 } else { size };
        let page: Vec<Payment> = matching.iter().skip(start).take(size).cloned().collect();
        let next = start + page.len();
        Ok(Response::new(ListPaymentsResponse {
            next_page_token: if next < matching.len() {
                next.to_string()
            } else {
                String::new()
            },
            total_size: i64::try_from(matching.len()).unwrap_or(i64::MAX),
            payments: page,
        }))
    }

    async fn create_payment(
        &self,
        req: Request<CreatePaymentRequest>,
    ) -> Result<Response<Payment>, Status> {
        let req = req.into_inner();
        let mut payment = req
            .payment
            .ok_or_else(|| bad_request("payment", "required"))?;
        match &payment.amount {
            None => return Err(bad_request("payment.amount", "required")),
            Some(m) if m.amount_minor <= 0 => {
                return Err(bad_request(
                    "payment.amount.amount_minor",
                    "must be positive",
                ))
            }
            Some(_) => {}
        }
        let mut store = self.store.lock()?;
        payment.id = store.next_payment_id();
        if payment.merchant.is_empty() {
            payment.merchant = "merchants/acme".to_owned();
        }
        payment.state = PaymentState::Pending as i32;
        payment.create_time = Some(store.next_time());
        if !req.request_id.is_empty() {
            payment
                .labels
                .insert("request_id".to_owned(), req.request_id);
        }
        store.payments.insert(payment.id.clone(), payment.clone());
        Ok(Response::new(payment))
    }

    async fn update_payment(
        &self,
        req: Request<UpdatePaymentRequest>,
    ) -> Result<Response<Payment>, Status> {
        let req = req.into_inner();
        let patch = req
            .payment
            .ok_or_else(|| bad_request("payment", "required"))?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut store = self.store.lock()?;
        let current = store
            .payments
            .get_mut(&patch.id)
            .ok_or_else(|| not_found("payment", &patch.id))?;
        apply_update(current, &patch, &paths)?;
        Ok(Response::new(current.clone()))
    }

    async fn cancel_payment(
        &self,
        req: Request<CancelPaymentRequest>,
    ) -> Result<Response<Payment>, Status> {
        let req = req.into_inner();
        let mut store = self.store.lock()?;
        let payment = store
            .payments
            .get_mut(&req.id)
            .ok_or_else(|| not_found("payment", &req.id))?;
        if payment.state == PaymentState::Cancelled as i32 {
            return Err(precondition(&req.id, "payment is already cancelled"));
        }
        payment.state = PaymentState::Cancelled as i32;
        if !req.reason.is_empty() {
            payment
                .labels
                .insert("cancel_reason".to_owned(), req.reason);
        }
        Ok(Response::new(payment.clone()))
    }

    async fn delete_payment(
        &self,
        req: Request<DeletePaymentRequest>,
    ) -> Result<Response<()>, Status> {
        let id = req.into_inner().id;
        let mut store = self.store.lock()?;
        store
            .payments
            .remove(&id)
            .map(|_| Response::new(()))
            .ok_or_else(|| not_found("payment", &id))
    }

    async fn get_payment_status(
        &self,
        req: Request<GetPaymentRequest>,
    ) -> Result<Response<PaymentStatusReply>, Status> {
        let payment = self.find(&req.into_inner().id)?;
        Ok(Response::new(PaymentStatusReply {
            status: Some(PaymentStatus {
                state: payment.state,
                update_time: payment.create_time,
            }),
            id: payment.id,
        }))
    }

    async fn get_receipt(
        &self,
        req: Request<GetReceiptRequest>,
    ) -> Result<Response<HttpBody>, Status> {
        let req = req.into_inner();
        let payment = self.find(&req.id)?;
        let body = match req.format.as_str() {
            "" | "text" => HttpBody {
                content_type: "text/plain; charset=utf-8".to_owned(),
                data: receipt_text(&payment).into_bytes(),
                extensions: Vec::new(),
            },
            "pdf" => HttpBody {
                content_type: "application/pdf".to_owned(),
                data: receipt_pdf(&payment),
                extensions: Vec::new(),
            },
            _ => return Err(bad_request("format", "must be `text` or `pdf`")),
        };
        Ok(Response::new(body))
    }

    async fn upload_attachment(
        &self,
        req: Request<UploadAttachmentRequest>,
    ) -> Result<Response<Attachment>, Status> {
        let req = req.into_inner();
        self.find(&req.payment_id)?;
        let file = req.file.unwrap_or_default();
        Ok(Response::new(Attachment {
            payment_id: req.payment_id,
            content_type: file.content_type,
            size_bytes: i64::try_from(file.data.len()).unwrap_or(i64::MAX),
            sha256: hex(&Sha256::digest(&file.data)),
        }))
    }

    type WatchPaymentsStream = EventStream;

    async fn watch_payments(
        &self,
        req: Request<WatchPaymentsRequest>,
    ) -> Result<Response<Self::WatchPaymentsStream>, Status> {
        // A failure asked for by `fail_with_code` carries a details Status with this message.
        let details_message = req
            .metadata()
            .get("x-demo-fail-details-message")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let req = req.into_inner();
        if !(0..=MAX_WATCH_EVENTS).contains(&req.max_events) {
            return Err(bad_request("max_events", "must be between 0 and 10000"));
        }
        let ids: Vec<(String, i32)> = {
            let store = self.store.lock()?;
            store
                .payments
                .values()
                .filter(|p| req.parent.is_empty() || p.merchant == req.parent)
                .map(|p| (p.id.clone(), p.state))
                .collect()
        };
        let interval = match req.interval_ms {
            0 => WATCH_INTERVAL,
            ms @ 1..=5000 => Duration::from_millis(u64::try_from(ms).unwrap_or(50)),
            _ => return Err(bad_request("interval_ms", "must be between 0 and 5000")),
        };
        Ok(Response::new(Box::pin(watch_stream(
            ids,
            (req.max_events, interval),
            req.fail_with_code,
            details_message,
        ))))
    }

    type ExportPaymentsStream = BodyStream;

    async fn export_payments(
        &self,
        req: Request<ExportPaymentsRequest>,
    ) -> Result<Response<Self::ExportPaymentsStream>, Status> {
        let req = req.into_inner();
        let rows: Vec<String> = {
            let store = self.store.lock()?;
            store
                .payments
                .values()
                .filter(|p| req.parent.is_empty() || p.merchant == req.parent)
                .map(super::streams::csv_row)
                .collect()
        };
        let stream = super::streams::export_stream(rows, req.chunks, req.fail_with_code)?;
        Ok(Response::new(Box::pin(stream)))
    }

    async fn record_payments(
        &self,
        req: Request<Streaming<CreatePaymentRequest>>,
    ) -> Result<Response<RecordPaymentsResponse>, Status> {
        let all = super::streams::collect(req.into_inner()).await?;
        let mut reply = RecordPaymentsResponse::default();
        for create in all {
            super::streams::check_creation(&create)?;
            let payment = self
                .create_payment(Request::new(create))
                .await?
                .into_inner();
            reply.total_amount_minor += payment.amount.map_or(0, |m| m.amount_minor);
            reply.ids.push(payment.id);
        }
        Ok(Response::new(reply))
    }

    type LookupPaymentsStream = PaymentStream;

    async fn lookup_payments(
        &self,
        req: Request<Streaming<GetPaymentRequest>>,
    ) -> Result<Response<Self::LookupPaymentsStream>, Status> {
        let this = self.clone();
        let stream = super::streams::lookup_stream(req.into_inner(), move |id| this.find(id));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_document(
        &self,
        req: Request<GetDocumentRequest>,
    ) -> Result<Response<Document>, Status> {
        let path = req.into_inner().path;
        if path.is_empty() {
            return Err(bad_request("path", "required"));
        }
        Ok(Response::new(Document {
            content: format!("document at {path}"),
            path,
        }))
    }
}

/// Whether a payment matches a list request's filters.
fn list_filter(req: &ListPaymentsRequest, p: &Payment) -> bool {
    let amount = p.amount.as_ref().map_or(0, |m| m.amount_minor);
    (req.parent.is_empty() || p.merchant == req.parent)
        && (req.states.is_empty() || req.states.contains(&p.state))
        && req.tags.iter().all(|t| p.tags.contains(t))
        && req.min_amount_minor.is_none_or(|min| amount >= min)
        && req.created_after.as_ref().is_none_or(|after| {
            p.create_time
                .as_ref()
                .is_some_and(|t| t.seconds > after.seconds)
        })
}

/// `max_events` events cycling over the payments, one per `interval` ([`WATCH_INTERVAL`] by
/// default), then the
/// requested failure (if any; with a details Status saying `details_message` when given). With
/// no events and no failure the stream is headers + trailers.
fn watch_stream(
    ids: Vec<(String, i32)>,
    (max_events, interval): (i32, Duration),
    fail_with_code: i32,
    details_message: Option<String>,
) -> impl Stream<Item = Result<PaymentEvent, Status>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        for seq in 0..i64::from(max_events) {
            tokio::time::sleep(interval).await;
            let index = usize::try_from(seq).unwrap_or(0) % ids.len().max(1);
            let (payment_id, state) = ids.get(index).cloned().unwrap_or_default();
            let event = PaymentEvent {
                payment_id,
                state,
                time: Some(super::store::at(7_200 + seq)),
                sequence: seq + 1,
            };
            if tx.send(Ok(event)).await.is_err() {
                return;
            }
        }
        if fail_with_code != 0 {
            let code = Code::from_i32(fail_with_code);
            let message = "watch failed as requested";
            let status = match &details_message {
                Some(text) => {
                    let details = super::errors::details_status(code, text, "WATCH_FAILED");
                    Status::with_details(code, message, details.into())
                }
                None => Status::new(code, message),
            };
            let _ = tx.send(Err(status)).await;
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

fn receipt_text(p: &Payment) -> String {
    let (currency, amount) = p
        .amount
        .as_ref()
        .map_or(("", 0), |m| (m.currency_code.as_str(), m.amount_minor));
    format!(
        "RECEIPT\npayment: {}\nmerchant: {}\namount: {}.{:02} {}\n",
        p.id,
        p.merchant,
        amount / 100,
        amount % 100,
        currency
    )
}

/// A tiny byte string that starts like a PDF (and holds a non-UTF-8 byte, as PDFs do).
fn receipt_pdf(p: &Payment) -> Vec<u8> {
    let mut pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    pdf.extend_from_slice(receipt_text(p).as_bytes());
    pdf.extend_from_slice(b"%%EOF\n");
    pdf
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
