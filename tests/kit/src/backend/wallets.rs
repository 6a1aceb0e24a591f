//! The demo `Wallets` service: wallets `w_001` (alice, EUR) and `w_002` (bob, USD), and the
//! entries `wallets/w_001/entries/e_001`, `.../e_002`.
use tonic::{Request, Response, Status};

use super::errors::{bad_request, not_found, precondition};
use super::SharedStore;
use crate::proto::meshgate::demo::v1::wallets_server::Wallets;
use crate::proto::meshgate::demo::v1::*;

/// The Wallets service.
#[derive(Debug, Clone)]
pub struct WalletsService {
    store: SharedStore,
}

impl WalletsService {
    pub fn new(store: SharedStore) -> Self {
        WalletsService { store }
    }
}

#[tonic::async_trait]
impl Wallets for WalletsService {
    async fn get_wallet(&self, req: Request<GetWalletRequest>) -> Result<Response<Wallet>, Status> {
        let id = req.into_inner().wallet_id;
        let store = self.store.lock()?;
        store
            .wallets
            .get(&id)
            .cloned()
            .map(Response::new)
            .ok_or_else(|| not_found("wallet", &id))
    }

    async fn get_entry(
        &self,
        req: Request<GetEntryRequest>,
    ) -> Result<Response<WalletEntry>, Status> {
        let name = req.into_inner().name;
        let segments: Vec<&str> = name.split('/').collect();
        if !matches!(segments.as_slice(), ["wallets", w, "entries", e] if !w.is_empty() && !e.is_empty())
        {
            return Err(bad_request("name", "must look like wallets/*/entries/*"));
        }
        let store = self.store.lock()?;
        store
            .entries
            .get(&name)
            .cloned()
            .map(Response::new)
            .ok_or_else(|| not_found("wallet entry", &name))
    }

    async fn top_up(&self, req: Request<TopUpRequest>) -> Result<Response<Wallet>, Status> {
        let req = req.into_inner();
        let amount = req
            .amount
            .ok_or_else(|| bad_request("amount", "required"))?;
        if amount.amount_minor <= 0 {
            return Err(bad_request("amount.amount_minor", "must be positive"));
        }
        let mut store = self.store.lock()?;
        let time = store.next_time();
        let wallet = store
            .wallets
            .get_mut(&req.wallet_id)
            .ok_or_else(|| not_found("wallet", &req.wallet_id))?;
        let balance = wallet.balance.get_or_insert_with(Default::default);
        if balance.currency_code != amount.currency_code {
            return Err(precondition(
                &req.wallet_id,
                &format!("wallet currency is {}", balance.currency_code),
            ));
        }
        balance.amount_minor = balance.amount_minor.saturating_add(amount.amount_minor);
        wallet.update_time = Some(time);
        Ok(Response::new(wallet.clone()))
    }
}
