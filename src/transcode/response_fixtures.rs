//! Test fixtures for the response half: the demo descriptor pool compiled from `proto/` (the
//! demo API plus google.rpc's status and error details, as a gateway configuration would list
//! them) and a `Payment` that sets most of the well-known types.

use std::sync::OnceLock;

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

/// Compiled once per test binary; clones share the same pool.
pub fn demo_pool() -> DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let proto = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");
        let set = protox::compile(
            [
                "meshgate/demo/v1/payments.proto",
                "google/rpc/status.proto",
                "google/rpc/error_details.proto",
            ],
            [proto],
        )
        .expect("demo protos compile");
        DescriptorPool::from_file_descriptor_set(set).expect("demo pool builds")
    })
    .clone()
}

pub fn message(pool: &DescriptorPool, name: &str) -> MessageDescriptor {
    pool.get_message_by_name(name)
        .unwrap_or_else(|| panic!("{name} in the demo pool"))
}

/// A message of type `name` from proto3 JSON.
pub fn from_json(pool: &DescriptorPool, name: &str, json: &str) -> DynamicMessage {
    let mut de = serde_json::Deserializer::from_str(json);
    DynamicMessage::deserialize(message(pool, name), &mut de).expect("fixture JSON parses")
}

/// Payment `pay_1`: int64 amount, enum, Timestamp, Duration, map, Struct, StringValue, bytes,
/// double; `tags` and `test_mode` left at their defaults.
pub fn payment(pool: &DescriptorPool) -> DynamicMessage {
    from_json(
        pool,
        "meshgate.demo.v1.Payment",
        r#"{
            "id": "pay_1",
            "merchant": "merchants/acme",
            "amount": {"currencyCode": "EUR", "amountMinor": "1250"},
            "state": "CAPTURED",
            "items": [{"sku": "A-1", "quantity": 2}],
            "createTime": "2024-05-01T12:00:00Z",
            "captureDelay": "1.5s",
            "labels": {"region": "eu"},
            "metadata": {"channel": "web", "risk": 0.25, "flags": [true, null]},
            "note": "leave at door",
            "idempotencyKey": "AAEC",
            "fxRate": 1.5
        }"#,
    )
}

/// `name` from JSON, encoded in binary (what a backend sends).
pub fn encoded(pool: &DescriptorPool, name: &str, json: &str) -> Vec<u8> {
    from_json(pool, name, json).encode_to_vec()
}
