//! The demo gRPC backend: both services of `payments.proto` over one in-memory store, behind
//! the test hooks. Used by `make run` (through the `demo-backend` binary) and by every
//! end-to-end test.
pub mod errors;
pub mod health;
pub mod hooks;
pub mod misbehave;
pub mod payments;
pub mod store;
pub mod streams;
pub mod update;
pub mod wallets;

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::TcpListener;
use tonic::Status;

use crate::proto::meshgate::demo::v1::payments_server::PaymentsServer;
use crate::proto::meshgate::demo::v1::wallets_server::WalletsServer;

/// The store shared by both services of one backend.
#[derive(Debug, Clone)]
pub struct SharedStore(Arc<Mutex<store::Store>>);

impl SharedStore {
    /// A fresh seeded store.
    pub fn seeded() -> Self {
        SharedStore(Arc::new(Mutex::new(store::Store::seeded())))
    }

    /// Locks the store; a poisoned lock is an INTERNAL error, not a panic.
    pub fn lock(&self) -> Result<MutexGuard<'_, store::Store>, Status> {
        self.0
            .lock()
            .map_err(|_| Status::internal("demo store lock poisoned"))
    }
}

/// Which services one backend serves, and the name it reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendOptions {
    /// Reported in `x-demo-backend` (header and trailer).
    pub name: String,
    pub payments: bool,
    pub wallets: bool,
    /// `--misbehave MODE`: every request without `x-demo-misbehave` misbehaves this way.
    pub misbehave: Option<misbehave::Misbehave>,
}

impl BackendOptions {
    /// Both services under `name`.
    pub fn new(name: &str) -> Self {
        BackendOptions {
            name: name.to_owned(),
            payments: true,
            wallets: true,
            misbehave: None,
        }
    }

    /// Parses a `--services` list such as `payments,wallets`.
    pub fn with_services(mut self, list: &str) -> Result<Self, String> {
        self.payments = false;
        self.wallets = false;
        for service in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match service {
                "payments" => self.payments = true,
                "wallets" => self.wallets = true,
                other => {
                    return Err(format!(
                        "--services: unknown service {other:?} (payments, wallets)"
                    ))
                }
            }
        }
        Ok(self)
    }
}

/// Serves the demo backend on `listener` (HTTP/2 cleartext) until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    options: BackendOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let store = SharedStore::seeded();
    let payments = options
        .payments
        .then(|| PaymentsServer::new(payments::PaymentsService::new(store.clone())));
    let wallets = options
        .wallets
        .then(|| WalletsServer::new(wallets::WalletsService::new(store)));
    let mut served = Vec::new();
    if options.payments {
        served.push("meshgate.demo.v1.Payments".to_string());
    }
    if options.wallets {
        served.push("meshgate.demo.v1.Wallets".to_string());
    }
    let health =
        crate::proto::grpc::health::v1::health_server::HealthServer::new(health::HealthService {
            services: served,
        });
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tonic::transport::Server::builder()
        .layer(hooks::HooksLayer::new(&options.name).misbehave_by_default(options.misbehave))
        .add_optional_service(payments)
        .add_optional_service(wallets)
        .add_service(health)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_list_selects_services() {
        let o = BackendOptions::new("b").with_services("wallets").unwrap();
        assert!(!o.payments && o.wallets);
        assert!(BackendOptions::new("b").with_services("ledger").is_err());
    }
}
