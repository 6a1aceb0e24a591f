"""Request bodies for the benchmark: one Payment as JSON, as protobuf and as a gRPC frame.

The protobuf encoder is hand-written for the few field kinds used here (strings, varints,
sub-messages), so the benchmark needs nothing beyond Python's standard library and openssl.
"""
import json
import struct


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _tag(field, wire):
    return _varint((field << 3) | wire)


def _bytes_field(field, data):
    return _tag(field, 2) + _varint(len(data)) + data


def _str(field, s):
    return _bytes_field(field, s.encode())


def _int(field, n):
    return _tag(field, 0) + _varint(n)


def payment(tag_count):
    """A Payment for UpdatePayment (PATCH /v1/payments/pay_001, body "payment").

    Returns (json_bytes, protobuf_bytes). tag_count grows it (each tag ~100 bytes).
    """
    tags = [f"tag-{i:04d}-" + "x" * 88 for i in range(tag_count)]
    items = [("sku-%03d" % i, i + 1, 100 * (i + 1)) for i in range(1)]
    doc = {
        "id": "pay_001",
        "merchant": "merchants/acme",
        "amount": {"currencyCode": "JPY", "amountMinor": "1250"},
        "items": [
            {"sku": s, "quantity": q, "unitPrice": {"currencyCode": "JPY", "amountMinor": str(p)}}
            for s, q, p in items
        ],
        "labels": {"channel": "web"},
        "note": "benchmark payment",
        "tags": tags,
    }
    money = lambda c, a: _str(1, c) + _int(2, a)  # noqa: E731
    pb = _str(1, "pay_001") + _str(2, "merchants/acme") + _bytes_field(3, money("JPY", 1250))
    for s, q, p in items:
        pb += _bytes_field(5, _str(1, s) + _int(2, q) + _bytes_field(3, money("JPY", p)))
    pb += _bytes_field(8, _str(1, "channel") + _str(2, "web"))
    pb += _bytes_field(10, _str(1, "benchmark payment"))  # StringValue
    for t in tags:
        pb += _str(12, t)
    return json.dumps(doc, separators=(",", ":")).encode(), pb


def update_request(payment_pb):
    """UpdatePaymentRequest{payment} (no update mask)."""
    return _bytes_field(1, payment_pb)


def grpc_frame(message):
    return b"\x00" + struct.pack(">I", len(message)) + message
