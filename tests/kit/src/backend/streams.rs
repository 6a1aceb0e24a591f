//! The demo `Payments` service's streams other than the watch: a CSV export as a server stream
//! of `google.api.HttpBody`, client-streamed payment creation and bidirectional lookup.
use std::time::Duration;

use tokio_stream::Stream;
use tonic::{Code, Status, Streaming};

use crate::proto::google::api::HttpBody;
use crate::proto::meshgate::demo::v1::{CreatePaymentRequest, GetPaymentRequest, Payment};

/// Interval between two export chunks.
pub const EXPORT_INTERVAL: Duration = Duration::from_millis(50);
/// Upper bound on `chunks`.
const MAX_CHUNKS: i32 = 10_000;

/// The export: a header line (`text/csv`), then `chunks` lines cycling over `rows`, each in
/// its own message (labelled `text/plain`: a gateway must keep the first message's type), one
/// per [`EXPORT_INTERVAL`], then the requested failure (if any).
pub fn export_stream(
    rows: Vec<String>,
    chunks: i32,
    fail_with_code: i32,
) -> Result<impl Stream<Item = Result<HttpBody, Status>> + Send, Status> {
    if !(0..=MAX_CHUNKS).contains(&chunks) {
        return Err(super::errors::bad_request(
            "chunks",
            "must be between 0 and 10000",
        ));
    }
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let header = HttpBody {
            content_type: "text/csv; charset=utf-8".to_owned(),
            data: b"id,merchant,amount_minor\n".to_vec(),
            extensions: Vec::new(),
        };
        if tx.send(Ok(header)).await.is_err() {
            return;
        }
        for i in 0..usize::try_from(chunks).unwrap_or(0) {
            tokio::time::sleep(EXPORT_INTERVAL).await;
            let row = rows.get(i % rows.len().max(1)).cloned().unwrap_or_default();
            let chunk = HttpBody {
                content_type: "text/plain".to_owned(),
                data: format!("{row}\n").into_bytes(),
                extensions: Vec::new(),
            };
            if tx.send(Ok(chunk)).await.is_err() {
                return;
            }
        }
        if fail_with_code != 0 {
            let status = Status::new(Code::from_i32(fail_with_code), "export failed as requested");
            let _ = tx.send(Err(status)).await;
        }
    });
    Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// One CSV line of a payment.
pub fn csv_row(p: &Payment) -> String {
    let amount = p.amount.as_ref().map_or(0, |m| m.amount_minor);
    format!("{},{},{amount}", p.id, p.merchant)
}

/// Every request message of a client stream, in order (an error in the stream ends it).
pub async fn collect<T>(mut inbound: Streaming<T>) -> Result<Vec<T>, Status> {
    let mut all = Vec::new();
    while let Some(message) = inbound.message().await? {
        all.push(message);
    }
    Ok(all)
}

/// The bidirectional lookup: one answer per request as it arrives, by `find`.
pub fn lookup_stream<F>(
    mut inbound: Streaming<GetPaymentRequest>,
    find: F,
) -> impl Stream<Item = Result<Payment, Status>> + Send
where
    F: Fn(&str) -> Result<Payment, Status> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let answer = match inbound.message().await {
                Ok(Some(req)) => find(&req.id),
                Ok(None) => return,
                Err(e) => Err(e),
            };
            let failed = answer.is_err();
            if tx.send(answer).await.is_err() || failed {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// The payments a client stream asks to create, validated as `CreatePayment` does.
pub fn check_creation(req: &CreatePaymentRequest) -> Result<(), Status> {
    match req.payment.as_ref().and_then(|p| p.amount.as_ref()) {
        Some(m) if m.amount_minor > 0 => Ok(()),
        Some(_) => Err(super::errors::bad_request(
            "payment.amount.amount_minor",
            "must be positive",
        )),
        None => Err(super::errors::bad_request("payment.amount", "required")),
    }
}
