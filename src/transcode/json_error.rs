//! A JSON body error made readable: the field path (`payment.items[1].quantity`), what was
//! wrong, what the field's type is when the parser's own words do not say it, and where (line
//! and column of the client's body).
//!
//! prost-reflect's messages name neither the field nor, for numbers, the expected type
//! ("invalid digit found in string"); the path comes from `serde_path_to_error` and the type
//! from walking that path through the descriptors.

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::error::Category;
use serde_path_to_error::{Path, Segment};

use super::bad_request::{field_error, invalid};
use crate::status::GatewayError;

/// Build the 400 for `err`, raised at `path`; `prefix` bytes were added before the client's
/// body on its first line (the wrapper for a field body) and are taken off reported columns.
pub fn json_error(
    input: &MessageDescriptor,
    path: Option<&Path>,
    err: &serde_json::Error,
    prefix: usize,
) -> GatewayError {
    let mut what = strip_position(&err.to_string());
    if what.contains("recursion limit") {
        // Struct/Value/ListValue go through prost's decoder, which stops at 100 message levels
        // (about 48 JSON levels of nested lists); its own wording would confuse a client.
        what = "value nested too deeply".to_string();
    }
    let position = position_text(err, prefix);
    let syntax = matches!(
        err.classify(),
        Category::Syntax | Category::Eof | Category::Io
    );
    let segments = path.map(known_segments).unwrap_or_default();
    if syntax || segments.is_empty() {
        // A syntax error is about the text, not a field; a root error has no field.
        if let Some(key) = unknown_field(&what) {
            return field_error(key, &format!("{what}{position}"));
        }
        return invalid(format!("invalid JSON body: {what}{position}"));
    }
    let mut field = display(&segments);
    if let Some(key) = unknown_field(&what) {
        field = format!("{field}.{key}");
    } else if !what.contains("expected") {
        if let Some(kind) = leaf_field(input, &segments).map(|f| kind_name(&f.kind())) {
            what = format!("{what}; expected {kind}");
        }
    }
    field_error(&field, &format!("{what}{position}"))
}

fn position_text(err: &serde_json::Error, prefix: usize) -> String {
    if err.line() == 0 {
        return String::new();
    }
    let column = if err.line() == 1 {
        err.column().saturating_sub(prefix)
    } else {
        err.column()
    };
    let column = column.max(1);
    format!(" (line {}, column {column})", err.line())
}

/// serde_json appends ` at line L column C`; the position is reported separately (adjusted).
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i)
            if message
                .get(i..)
                .is_some_and(|tail| tail.contains(" column ")) =>
        {
            message.get(..i).unwrap_or(message).to_string()
        }
        _ => message.to_string(),
    }
}

/// The key in prost-reflect's `unrecognized field name 'key'`.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unrecognized field name '")?;
    rest.strip_suffix('\'')
}

/// The path up to the first segment the tracker could not name.
fn known_segments(path: &Path) -> Vec<&Segment> {
    path.iter()
        .take_while(|s| !matches!(s, Segment::Unknown))
        .collect()
}

/// `a.b[2].c`, with the keys as the client wrote them.
fn display(segments: &[&Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// The field a JSON path ends in: keys name fields (or map keys), indexes step into lists.
fn leaf_field(input: &MessageDescriptor, segments: &[&Segment]) -> Option<FieldDescriptor> {
    let mut message = Some(input.clone());
    let mut field: Option<FieldDescriptor> = None;
    let mut in_map = false;
    for segment in segments {
        match segment {
            Segment::Seq { .. } => continue,
            _ if in_map => {
                // a map key: what follows is the map's value
                in_map = false;
                let value = field.as_ref().and_then(map_value_field)?;
                message = message_of(&value);
                field = Some(value);
            }
            Segment::Map { key } | Segment::Enum { variant: key } => {
                let current = message.as_ref()?;
                let next = current
                    .get_field_by_json_name(key)
                    .or_else(|| current.get_field_by_name(key))?;
                in_map = next.is_map();
                message = message_of(&next);
                field = Some(next);
            }
            Segment::Unknown => return None,
        }
    }
    field
}

fn map_value_field(map: &FieldDescriptor) -> Option<FieldDescriptor> {
    match map.kind() {
        Kind::Message(entry) => Some(entry.map_entry_value_field()),
        _ => None,
    }
}

fn message_of(field: &FieldDescriptor) -> Option<MessageDescriptor> {
    match field.kind() {
        Kind::Message(m) => Some(m),
        _ => None,
    }
}

/// The type as a client would look it up in the proto: `int64`, `meshgate.demo.v1.Money`.
fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Double => "double".into(),
        Kind::Float => "float".into(),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => "int32".into(),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => "int64 (number or decimal string)".into(),
        Kind::Uint32 | Kind::Fixed32 => "uint32".into(),
        Kind::Uint64 | Kind::Fixed64 => "uint64 (number or decimal string)".into(),
        Kind::Bool => "bool".into(),
        Kind::String => "string".into(),
        Kind::Bytes => "bytes (base64)".into(),
        Kind::Message(m) => m.full_name().to_string(),
        Kind::Enum(e) => format!("a value of enum {}", e.full_name()),
    }
}

#[cfg(test)]
mod tests {
    use crate::status::{Code, GatewayError};
    use crate::transcode::descriptors::testing::demo_pool;
    use crate::transcode::field_path::resolve;
    use crate::transcode::json_in::parse_json;

    fn update_payment(body: &str) -> GatewayError {
        let input = demo_pool()
            .get_message_by_name("meshgate.demo.v1.UpdatePaymentRequest")
            .unwrap();
        let path = resolve(&input, "payment").unwrap();
        parse_json(&input, Some(&path), body.as_bytes(), 64).unwrap_err()
    }

    fn violation(err: &GatewayError) -> (String, String) {
        let v = &err.details[0]["fieldViolations"][0];
        (
            v["field"].as_str().unwrap().into(),
            v["description"].as_str().unwrap().into(),
        )
    }

    #[test]
    fn unknown_field_is_named_with_its_parent_path() {
        let (field, description) = violation(&update_payment(r#"{"amount":{"currency":"x"}}"#));
        assert_eq!(field, "payment.amount.currency");
        assert!(
            description.contains("unrecognized field name"),
            "{description}"
        );
    }

    #[test]
    fn list_elements_and_map_values_are_located() {
        let err = update_payment(r#"{"items":[{"sku":"a"},{"quantity":-1}]}"#);
        let (field, description) = violation(&err);
        assert_eq!(field, "payment.items[1].quantity");
        assert!(
            description.ends_with("expected uint32 (line 1, column 36)"),
            "{description}"
        );
        assert_eq!(
            violation(&update_payment(r#"{"labels":{"k":1}}"#)).0,
            "payment.labels.k"
        );
    }

    #[test]
    fn bare_parse_errors_get_the_expected_type() {
        let (_, description) = violation(&update_payment(r#"{"amount":{"amountMinor":"12x"}}"#));
        assert!(description.contains("expected int64"), "{description}");
        let (_, description) = violation(&update_payment(r#"{"state":"GONE"}"#));
        assert!(
            description.contains("meshgate.demo.v1.PaymentState"),
            "{description}"
        );
    }

    #[test]
    fn syntax_errors_blame_the_text_not_a_field() {
        let err = update_payment(r#"{"merchant":"m",}"#);
        assert_eq!(err.code, Code::InvalidArgument);
        assert!(err.details.is_empty());
        assert!(
            err.message.starts_with("invalid JSON body: trailing comma"),
            "{}",
            err.message
        );
        assert!(err.message.contains("column 17"), "{}", err.message);
    }
}
