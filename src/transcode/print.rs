//! How replies are printed as JSON: Envoy `grpc_json_transcoder`'s print options, mapped onto
//! prost-reflect's proto3 JSON serializer.

use prost_reflect::{DynamicMessage, SerializeOptions};
use serde::Serialize;

use crate::transcode::input::PrintOptionsInput;

/// JSON print options, named as in Envoy's `grpc_json_transcoder.print_options`. The default
/// is proto3 JSON's: compact, defaults omitted, enums by name, lowerCamelCase names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrintOptions {
    /// Indent and break lines (one space per level, like protobuf's C++ printer that Envoy
    /// uses).
    pub add_whitespace: bool,
    /// Print fields that hold their default value (`0`, `""`, `[]`), not only set ones.
    pub always_print_primitive_fields: bool,
    /// Enums as numbers instead of names.
    pub always_print_enums_as_ints: bool,
    /// `snake_case` proto names instead of lowerCamelCase JSON names.
    pub preserve_proto_field_names: bool,
}

impl From<&PrintOptionsInput> for PrintOptions {
    fn from(input: &PrintOptionsInput) -> Self {
        PrintOptions {
            add_whitespace: input.add_whitespace,
            always_print_primitive_fields: input.always_print_primitive_fields,
            always_print_enums_as_ints: input.always_print_enums_as_ints,
            preserve_proto_field_names: input.preserve_proto_field_names,
        }
    }
}

impl PrintOptions {
    /// What of these options applies to a JSON `google.rpc.Status` error body.
    pub fn status_print(&self) -> crate::status::StatusPrint {
        crate::status::StatusPrint {
            always_print_primitive_fields: self.always_print_primitive_fields,
            add_whitespace: self.add_whitespace,
        }
    }

    /// prost-reflect's options. 64-bit integers stay strings, as proto3 JSON requires (a
    /// JavaScript client would lose precision on numbers above 2^53).
    pub fn serialize_options(&self) -> SerializeOptions {
        SerializeOptions::new()
            .stringify_64_bit_integers(true)
            .skip_default_fields(!self.always_print_primitive_fields)
            .use_enum_numbers(self.always_print_enums_as_ints)
            .use_proto_field_name(self.preserve_proto_field_names)
    }
}

/// A message as JSON bytes. Fails only when the message cannot be printed (an `Any` whose type
/// is not in the descriptor pool, a Timestamp or Duration out of range).
pub fn message_to_json(
    msg: &DynamicMessage,
    opts: &PrintOptions,
) -> Result<Vec<u8>, serde_json::Error> {
    let options = opts.serialize_options();
    let mut out = Vec::with_capacity(128);
    if opts.add_whitespace {
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
        msg.serialize_with_options(&mut ser, &options)?;
    } else {
        let mut ser = serde_json::Serializer::new(&mut out);
        msg.serialize_with_options(&mut ser, &options)?;
    }
    Ok(out)
}

/// A message as a JSON tree (for callers that pick a part of it or embed it).
pub fn message_to_value(
    msg: &DynamicMessage,
    options: &SerializeOptions,
) -> Result<serde_json::Value, serde_json::Error> {
    msg.serialize_with_options(serde_json::value::Serializer, options)
}

/// A JSON tree as bytes, honouring `add_whitespace`.
pub fn value_to_json(value: &serde_json::Value, opts: &PrintOptions) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    let written = if opts.add_whitespace {
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
        value.serialize(&mut ser)
    } else {
        value.serialize(&mut serde_json::Serializer::new(&mut out))
    };
    // Writing a `Value` into a Vec cannot fail (no IO, string keys only).
    if written.is_err() {
        out.clear();
        out.extend_from_slice(b"null");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcode::response_fixtures::{demo_pool, from_json, payment};
    use serde_json::Value;

    fn print(opts: PrintOptions) -> Value {
        let pool = demo_pool();
        let bytes = message_to_json(&payment(&pool), &opts).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn defaults_are_proto3_json() {
        let v = print(PrintOptions::default());
        assert_eq!(v["id"], "pay_1");
        assert_eq!(v["state"], "CAPTURED");
        assert_eq!(v["amount"]["amountMinor"], "1250");
        assert_eq!(v["createTime"], "2024-05-01T12:00:00Z");
        assert!(v.get("testMode").is_none(), "default bool omitted: {v}");
        let raw = message_to_json(&payment(&demo_pool()), &PrintOptions::default()).unwrap();
        assert!(!raw.contains(&b'\n'));
    }

    #[test]
    fn add_whitespace_indents_with_one_space() {
        let opts = PrintOptions {
            add_whitespace: true,
            ..PrintOptions::default()
        };
        let raw = message_to_json(&payment(&demo_pool()), &opts).unwrap();
        let text = String::from_utf8(raw).unwrap();
        assert!(text.starts_with("{\n \"id\": \"pay_1\""), "{text}");
    }

    #[test]
    fn always_print_primitive_fields_prints_defaults() {
        let v = print(PrintOptions {
            always_print_primitive_fields: true,
            ..PrintOptions::default()
        });
        assert_eq!(v["testMode"], false);
        assert_eq!(v["tags"], serde_json::json!([]));
    }

    #[test]
    fn enums_as_ints_prints_numbers() {
        let v = print(PrintOptions {
            always_print_enums_as_ints: true,
            ..PrintOptions::default()
        });
        assert_eq!(v["state"], 2);
    }

    #[test]
    fn preserve_proto_field_names_prints_snake_case() {
        let v = print(PrintOptions {
            preserve_proto_field_names: true,
            ..PrintOptions::default()
        });
        assert_eq!(v["create_time"], "2024-05-01T12:00:00Z");
        assert_eq!(v["amount"]["amount_minor"], "1250");
        assert!(v.get("createTime").is_none());
    }

    #[test]
    fn input_maps_field_by_field() {
        let input = PrintOptionsInput {
            add_whitespace: true,
            always_print_primitive_fields: false,
            always_print_enums_as_ints: true,
            preserve_proto_field_names: false,
        };
        let opts = PrintOptions::from(&input);
        assert!(opts.add_whitespace && opts.always_print_enums_as_ints);
        assert!(!opts.always_print_primitive_fields && !opts.preserve_proto_field_names);
    }

    #[test]
    fn well_known_types_print_in_their_json_form() {
        let v = print(PrintOptions::default());
        assert_eq!(v["captureDelay"], "1.500s");
        assert_eq!(v["note"], "leave at door");
        assert_eq!(
            v["metadata"],
            serde_json::json!({"channel": "web", "risk": 0.25, "flags": [true, null]})
        );
        assert_eq!(v["labels"], serde_json::json!({"region": "eu"}));
        assert_eq!(v["idempotencyKey"], "AAEC");
        assert_eq!(v["fxRate"], 1.5);
    }

    #[test]
    fn any_field_mask_and_int64_wrapper_print_in_their_json_form() {
        let pool = demo_pool();
        let status = from_json(
            &pool,
            "google.rpc.Status",
            r#"{"code": 3, "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "id"}]}]}"#,
        );
        let v: Value =
            serde_json::from_slice(&message_to_json(&status, &PrintOptions::default()).unwrap())
                .unwrap();
        assert_eq!(
            v["details"][0],
            serde_json::json!({"@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "id"}]})
        );
        let update = from_json(
            &pool,
            "meshgate.demo.v1.UpdatePaymentRequest",
            r#"{"updateMask": "note,amount.amountMinor"}"#,
        );
        let v: Value =
            serde_json::from_slice(&message_to_json(&update, &PrintOptions::default()).unwrap())
                .unwrap();
        assert_eq!(v["updateMask"], "note,amount.amountMinor");
        let list = from_json(
            &pool,
            "meshgate.demo.v1.ListPaymentsRequest",
            r#"{"minAmountMinor": "9007199254740993"}"#,
        );
        let v: Value =
            serde_json::from_slice(&message_to_json(&list, &PrintOptions::default()).unwrap())
                .unwrap();
        assert_eq!(v["minAmountMinor"], "9007199254740993");
    }
}
