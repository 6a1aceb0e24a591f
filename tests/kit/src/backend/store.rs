//! The demo backend's in-memory data: a few payments of `merchants/acme` (and one of
//! `merchants/globex`) and two wallets, seeded identically on every start so tests can rely on
//! exact values. Timestamps come from a fixed epoch plus a counter, never from the clock.
use std::collections::BTreeMap;

use prost_types::{Duration, Struct, Timestamp, Value};

use crate::proto::meshgate::demo::v1::{
    LineItem, Money, Payment, PaymentState, Wallet, WalletEntry,
};

/// 2026-01-01T00:00:00Z: the demo's fixed "now"; each mutation advances it by one second.
pub const EPOCH_SECONDS: i64 = 1_767_225_600;

/// Everything the demo services hold.
#[derive(Debug, Clone)]
pub struct Store {
    pub payments: BTreeMap<String, Payment>,
    pub wallets: BTreeMap<String, Wallet>,
    pub entries: BTreeMap<String, WalletEntry>,
    /// The logical clock: seconds after the seeded data.
    pub tick: i64,
    /// How many payments were created: ids are `pay_101`, `pay_102`...
    pub created: u32,
}

impl Store {
    /// The seeded data set.
    pub fn seeded() -> Self {
        let payments = [
            seed_payment("pay_001", "merchants/acme", 1250, PaymentState::Captured, 0),
            seed_payment("pay_002", "merchants/acme", 990, PaymentState::Pending, 60),
            seed_payment(
                "pay_003",
                "merchants/acme",
                45_000,
                PaymentState::Cancelled,
                120,
            ),
            seed_payment(
                "pay_004",
                "merchants/globex",
                7_500,
                PaymentState::Captured,
                180,
            ),
        ]
        .into_iter()
        .map(|p| (p.id.clone(), p))
        .collect();
        let wallets = [
            seed_wallet("w_001", "users/alice", "EUR", 5_000),
            seed_wallet("w_002", "users/bob", "USD", 0),
        ]
        .into_iter()
        .map(|w| (w.wallet_id.clone(), w))
        .collect();
        let entries = [
            seed_entry(
                "wallets/w_001/entries/e_001",
                "EUR",
                5_000,
                "initial top-up",
            ),
            seed_entry("wallets/w_001/entries/e_002", "EUR", -250, "coffee"),
        ]
        .into_iter()
        .map(|e| (e.name.clone(), e))
        .collect();
        Store {
            payments,
            wallets,
            entries,
            tick: 0,
            created: 0,
        }
    }

    /// Advances the logical clock and returns the new time.
    pub fn next_time(&mut self) -> Timestamp {
        self.tick += 1;
        at(3_600 + self.tick)
    }

    /// The next id for a created payment: `pay_101`, `pay_102`...
    pub fn next_payment_id(&mut self) -> String {
        self.created += 1;
        format!("pay_{}", 100 + self.created)
    }
}

/// A timestamp `offset` seconds after the demo epoch.
pub fn at(offset: i64) -> Timestamp {
    Timestamp {
        seconds: EPOCH_SECONDS + offset,
        nanos: 0,
    }
}

/// Money in minor units.
pub fn money(currency: &str, amount_minor: i64) -> Money {
    Money {
        currency_code: currency.to_owned(),
        amount_minor,
    }
}

fn seed_payment(
    id: &str,
    merchant: &str,
    amount: i64,
    state: PaymentState,
    offset: i64,
) -> Payment {
    let mut metadata = Struct::default();
    metadata.fields.insert(
        "channel".to_owned(),
        Value {
            kind: Some(prost_types::value::Kind::StringValue("web".to_owned())),
        },
    );
    metadata.fields.insert(
        "attempt".to_owned(),
        Value {
            kind: Some(prost_types::value::Kind::NumberValue(1.0)),
        },
    );
    Payment {
        id: id.to_owned(),
        merchant: merchant.to_owned(),
        amount: Some(money("USD", amount)),
        state: state as i32,
        items: vec![LineItem {
            sku: "sku-coffee".to_owned(),
            quantity: 2,
            unit_price: Some(money("USD", amount / 2)),
        }],
        create_time: Some(at(offset)),
        capture_delay: Some(Duration {
            seconds: 1,
            nanos: 500_000_000,
        }),
        labels: [("region".to_owned(), "eu".to_owned())]
            .into_iter()
            .collect(),
        metadata: Some(metadata),
        note: Some(format!("seeded {id}")),
        idempotency_key: id.as_bytes().to_vec(),
        tags: vec!["seed".to_owned()],
        test_mode: true,
        fx_rate: 1.0,
    }
}

fn seed_wallet(id: &str, owner: &str, currency: &str, balance: i64) -> Wallet {
    Wallet {
        wallet_id: id.to_owned(),
        owner: owner.to_owned(),
        balance: Some(money(currency, balance)),
        update_time: Some(at(0)),
    }
}

fn seed_entry(name: &str, currency: &str, amount: i64, memo: &str) -> WalletEntry {
    WalletEntry {
        name: name.to_owned(),
        amount: Some(money(currency, amount)),
        memo: memo.to_owned(),
    }
}
