//! Path variable and query parameter values (always text) converted to a field's type, the way
//! grpc-gateway and Envoy's transcoder do: enums by name or number, `true`/`false`, decimal
//! integers, floats, base64 bytes (standard or URL-safe, padded or not), and the well-known
//! types whose JSON form is a string or a scalar (wrappers, Timestamp, Duration, FieldMask).

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use prost_reflect::{
    DynamicMessage, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor, Value,
};

/// Whether a field can take a value from text at all; the error says why not. Used at
/// configuration time for path variables and at request time for query parameters.
pub fn check_text_field(field: &FieldDescriptor) -> Result<(), String> {
    if field.is_map() {
        return Err(format!("field '{}' is a map", field.name()));
    }
    match field.kind() {
        Kind::Message(m) if !is_text_wkt(&m) => Err(format!(
            "field '{}' is a message ({}), not a scalar",
            field.name(),
            m.full_name()
        )),
        _ => Ok(()),
    }
}

/// Convert `text` to a value of one element of `field` (for a repeated field: one element).
pub fn parse_text(field: &FieldDescriptor, text: &str) -> Result<Value, String> {
    check_text_field(field)?;
    parse_kind(&field.kind(), text)
}

/// Well-known message types that take their value from one string.
fn is_text_wkt(message: &MessageDescriptor) -> bool {
    is_wrapper(message)
        || matches!(
            message.full_name(),
            "google.protobuf.Timestamp" | "google.protobuf.Duration" | "google.protobuf.FieldMask"
        )
}

fn is_wrapper(message: &MessageDescriptor) -> bool {
    matches!(
        message.full_name(),
        "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    )
}

fn parse_kind(kind: &Kind, text: &str) -> Result<Value, String> {
    match kind {
        Kind::Double => parse_f64(text).map(Value::F64),
        Kind::Float => parse_f32(text).map(Value::F32),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => parse_int(text, "int32").map(Value::I32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => parse_int(text, "int64").map(Value::I64),
        Kind::Uint32 | Kind::Fixed32 => parse_int(text, "uint32").map(Value::U32),
        Kind::Uint64 | Kind::Fixed64 => parse_int(text, "uint64").map(Value::U64),
        Kind::Bool => parse_bool(text).map(Value::Bool),
        Kind::String => Ok(Value::String(text.to_string())),
        Kind::Bytes => parse_bytes(text).map(|b| Value::Bytes(b.into())),
        Kind::Enum(e) => parse_enum(e, text).map(Value::EnumNumber),
        Kind::Message(m) => parse_wkt(m, text).map(Value::Message),
    }
}

fn parse_int<T: std::str::FromStr<Err = std::num::ParseIntError>>(
    text: &str,
    type_name: &str,
) -> Result<T, String> {
    use std::num::IntErrorKind;
    text.parse::<T>().map_err(|e| match e.kind() {
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => {
            format!("'{text}' is out of range for {type_name}")
        }
        _ => format!("'{text}' is not a valid {type_name}"),
    })
}

fn parse_f64(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .map_err(|_| format!("'{text}' is not a valid number"))
}

/// A float that is finite as a double but not as a float is out of range, not infinity.
fn parse_f32(text: &str) -> Result<f32, String> {
    let wide = parse_f64(text)?;
    #[allow(clippy::cast_possible_truncation)]
    let narrow = wide as f32;
    if wide.is_finite() && !narrow.is_finite() {
        return Err(format!("'{text}' is out of range for float"));
    }
    Ok(narrow)
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("'{text}' is not a bool (true or false)")),
    }
}

/// Standard or URL-safe alphabet, with or without padding (clients send both).
fn parse_bytes(text: &str) -> Result<Vec<u8>, String> {
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let url_safe = text.contains(['-', '_']);
    let engine = if url_safe {
        GeneralPurpose::new(&alphabet::URL_SAFE, config)
    } else {
        GeneralPurpose::new(&alphabet::STANDARD, config)
    };
    engine
        .decode(text)
        .map_err(|e| format!("invalid base64: {e}"))
}

fn parse_enum(enum_desc: &EnumDescriptor, text: &str) -> Result<i32, String> {
    if let Some(value) = enum_desc.get_value_by_name(text) {
        return Ok(value.number());
    }
    text.parse::<i32>()
        .map_err(|_| format!("'{text}' is not a value of enum {}", enum_desc.full_name()))
}

/// Wrappers take their inner scalar; Timestamp, Duration and FieldMask take their JSON string
/// form, parsed by prost-reflect's proto3 JSON mapping (RFC 3339, `1.5s`, `a,b.c`).
fn parse_wkt(message: &MessageDescriptor, text: &str) -> Result<DynamicMessage, String> {
    if is_wrapper(message) {
        let inner = message
            .get_field_by_name("value")
            .ok_or_else(|| format!("{} has no 'value' field", message.full_name()))?;
        let value = parse_kind(&inner.kind(), text)?;
        let mut out = DynamicMessage::new(message.clone());
        out.try_set_field(&inner, value)
            .map_err(|e| e.to_string())?;
        return Ok(out);
    }
    if !is_text_wkt(message) {
        return Err(format!("{} cannot be given as text", message.full_name()));
    }
    let json = serde_json::Value::String(text.to_string());
    DynamicMessage::deserialize(message.clone(), json)
        .map_err(|e| format!("'{text}' is not a valid {}: {e}", message.full_name()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcode::descriptors::testing::demo_pool;

    fn field(message: &str, name: &str) -> FieldDescriptor {
        demo_pool()
            .get_message_by_name(&format!("meshgate.demo.v1.{message}"))
            .unwrap()
            .get_field_by_name(name)
            .unwrap()
    }

    fn inner(v: &Value) -> Value {
        let m = v.as_message().unwrap();
        m.get_field_by_name("value").unwrap().into_owned()
    }

    #[test]
    fn integers_are_decimal_and_range_checked() {
        assert_eq!(
            parse_text(&field("PaymentView", "version"), "-42"),
            Ok(Value::I64(-42))
        );
        assert_eq!(
            parse_text(&field("LineItem", "quantity"), "7"),
            Ok(Value::U32(7))
        );
        let err = parse_text(&field("LineItem", "quantity"), "-1").unwrap_err();
        assert!(err.contains("not a valid uint32"), "{err}");
        let err = parse_text(&field("ListPaymentsRequest", "page_size"), "3000000000").unwrap_err();
        assert!(err.contains("out of range"), "{err}");
        assert!(parse_text(&field("PaymentView", "version"), "1.5").is_err());
    }

    #[test]
    fn enums_accept_names_and_numbers() {
        let f = field("Payment", "state");
        assert_eq!(parse_text(&f, "CAPTURED"), Ok(Value::EnumNumber(2)));
        assert_eq!(parse_text(&f, "3"), Ok(Value::EnumNumber(3)));
        let err = parse_text(&f, "CAPTURD").unwrap_err();
        assert!(err.contains("meshgate.demo.v1.PaymentState"), "{err}");
    }

    #[test]
    fn bools_are_true_or_false() {
        let f = field("Payment", "test_mode");
        assert_eq!(parse_text(&f, "true"), Ok(Value::Bool(true)));
        assert_eq!(parse_text(&f, "false"), Ok(Value::Bool(false)));
        assert!(parse_text(&f, "yes").is_err());
    }

    #[test]
    fn floats_parse_and_junk_does_not() {
        let f = field("Payment", "fx_rate");
        assert_eq!(parse_text(&f, "1.25"), Ok(Value::F64(1.25)));
        assert!(parse_text(&f, "one").is_err());
    }

    #[test]
    fn bytes_accept_standard_and_url_safe_base64() {
        let f = field("Payment", "idempotency_key");
        let want = Value::Bytes(vec![0xfb, 0xff].into());
        assert_eq!(parse_text(&f, "+/8="), Ok(want.clone()));
        assert_eq!(parse_text(&f, "-_8"), Ok(want));
        let err = parse_text(&f, "!!").unwrap_err();
        assert!(err.contains("invalid base64"), "{err}");
    }

    #[test]
    fn wrappers_take_their_inner_scalar() {
        let f = field("ListPaymentsRequest", "min_amount_minor");
        assert_eq!(inner(&parse_text(&f, "5").unwrap()), Value::I64(5));
        let note = field("Payment", "note");
        assert_eq!(
            inner(&parse_text(&note, "hi").unwrap()),
            Value::String("hi".into())
        );
    }

    #[test]
    fn timestamps_durations_and_masks_take_their_json_strings() {
        let ts = parse_text(
            &field("ListPaymentsRequest", "created_after"),
            "2026-01-02T03:04:05Z",
        )
        .unwrap();
        let ts = ts.as_message().unwrap();
        assert_eq!(
            ts.get_field_by_name("seconds").unwrap().as_i64(),
            Some(1_767_323_045)
        );
        let d = parse_text(&field("Payment", "capture_delay"), "1.5s").unwrap();
        let d = d.as_message().unwrap();
        assert_eq!(
            d.get_field_by_name("nanos").unwrap().as_i32(),
            Some(500_000_000)
        );
        let m = parse_text(
            &field("UpdatePaymentRequest", "update_mask"),
            "amount,fxRate",
        )
        .unwrap();
        let paths = m
            .as_message()
            .unwrap()
            .get_field_by_name("paths")
            .unwrap()
            .into_owned();
        assert_eq!(
            paths,
            Value::List(vec![
                Value::String("amount".into()),
                Value::String("fx_rate".into())
            ])
        );
        let err =
            parse_text(&field("ListPaymentsRequest", "created_after"), "yesterday").unwrap_err();
        assert!(err.contains("google.protobuf.Timestamp"), "{err}");
    }

    #[test]
    fn messages_and_maps_cannot_come_from_text() {
        let err = parse_text(&field("GetPaymentRequest", "view"), "x").unwrap_err();
        assert!(err.contains("is a message"), "{err}");
        let err = parse_text(&field("Payment", "labels"), "x").unwrap_err();
        assert!(err.contains("is a map"), "{err}");
        assert!(check_text_field(&field("Payment", "metadata")).is_err());
    }
}
