//! Dotted field paths (`payment.id`, `view.version`) resolved against a message type, and
//! setting a value at such a path in a dynamic message.
//!
//! Path variables, `body`, `response_body` and query parameters all name fields this way. A
//! segment matches a field's proto name or its JSON name, as grpc-gateway and Envoy accept both.

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};

/// A field path resolved to the chain of fields it walks through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    /// The path with proto field names (`payment.id`), whatever spelling resolved to it.
    pub name: String,
    /// The fields from the outer message inwards; never empty.
    pub fields: Vec<FieldDescriptor>,
}

impl FieldPath {
    /// The last field of the path (the one a value is written to).
    pub fn leaf(&self) -> Option<&FieldDescriptor> {
        self.fields.last()
    }

    /// True if `other` is this path or lies inside it (`payment` contains `payment.id`).
    pub fn contains(&self, other: &FieldPath) -> bool {
        other.fields.len() >= self.fields.len()
            && self.fields.iter().zip(&other.fields).all(|(a, b)| a == b)
    }
}

/// Resolve `path` in `message`. Every segment but the last must be a singular message field.
/// The error names the segment that failed and the message it was looked up in.
pub fn resolve(message: &MessageDescriptor, path: &str) -> Result<FieldPath, String> {
    if path.is_empty() {
        return Err("empty field path".to_string());
    }
    let mut fields: Vec<FieldDescriptor> = Vec::new();
    let mut current = message.clone();
    let mut segments = path.split('.').peekable();
    while let Some(segment) = segments.next() {
        let field = find_field(&current, segment).ok_or_else(|| {
            format!(
                "no field '{segment}' in {} (path '{path}')",
                current.full_name()
            )
        })?;
        if segments.peek().is_some() {
            current = traversable_message(&field).ok_or_else(|| {
                format!("field '{segment}' in '{path}' is not a singular message")
            })?;
        }
        fields.push(field);
    }
    let name = fields
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(".");
    Ok(FieldPath { name, fields })
}

/// The field of `message` named `segment` (proto name first, then JSON name).
fn find_field(message: &MessageDescriptor, segment: &str) -> Option<FieldDescriptor> {
    message
        .get_field_by_name(segment)
        .or_else(|| message.get_field_by_json_name(segment))
}

/// The message type a path can continue into: singular message fields only.
fn traversable_message(field: &FieldDescriptor) -> Option<MessageDescriptor> {
    if field.is_list() || field.is_map() {
        return None;
    }
    match field.kind() {
        Kind::Message(m) => Some(m),
        _ => None,
    }
}

/// Write `value` at `fields` inside `message`, creating intermediate messages. A single value
/// written to a repeated field is appended; anything else replaces the field.
pub fn set_value(
    message: &mut DynamicMessage,
    fields: &[FieldDescriptor],
    value: Value,
) -> Result<(), String> {
    let Some((first, rest)) = fields.split_first() else {
        return Err("empty field path".to_string());
    };
    if !rest.is_empty() {
        let inner = message
            .get_field_mut(first)
            .as_message_mut()
            .ok_or_else(|| format!("field '{}' is not a message", first.name()))?;
        return set_value(inner, rest, value);
    }
    if first.is_list() && !matches!(value, Value::List(_)) {
        if !value.is_valid(&first.kind()) {
            return Err(format!("wrong value type for field '{}'", first.name()));
        }
        let list = message
            .get_field_mut(first)
            .as_list_mut()
            .ok_or_else(|| format!("field '{}' is not a list", first.name()))?;
        list.push(value);
        return Ok(());
    }
    message
        .try_set_field(first, value)
        .map_err(|e| format!("field '{}': {e}", first.name()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcode::descriptors::testing::demo_pool;

    fn message(name: &str) -> MessageDescriptor {
        demo_pool()
            .get_message_by_name(&format!("meshgate.demo.v1.{name}"))
            .unwrap()
    }

    #[test]
    fn nested_paths_resolve_by_proto_or_json_name() {
        let req = message("UpdatePaymentRequest");
        let p = resolve(&req, "payment.id").unwrap();
        assert_eq!(p.name, "payment.id");
        assert_eq!(p.fields.len(), 2);
        let camel = resolve(&req, "updateMask").unwrap();
        assert_eq!(camel.name, "update_mask");
    }

    #[test]
    fn unknown_segment_is_named_in_the_error() {
        let err = resolve(&message("UpdatePaymentRequest"), "payment.idd").unwrap_err();
        assert!(
            err.contains("'idd'") && err.contains("meshgate.demo.v1.Payment"),
            "{err}"
        );
    }

    #[test]
    fn repeated_fields_cannot_be_walked_through() {
        let err = resolve(&message("Payment"), "items.sku").unwrap_err();
        assert!(err.contains("not a singular message"), "{err}");
    }

    #[test]
    fn values_are_set_in_nested_messages_and_appended_to_lists() {
        let req = message("UpdatePaymentRequest");
        let mut msg = DynamicMessage::new(req.clone());
        let id = resolve(&req, "payment.id").unwrap();
        set_value(&mut msg, &id.fields, Value::String("p1".into())).unwrap();
        let tags = resolve(&req, "payment.tags").unwrap();
        set_value(&mut msg, &tags.fields, Value::String("a".into())).unwrap();
        set_value(&mut msg, &tags.fields, Value::String("b".into())).unwrap();
        let payment = msg.get_field_by_name("payment").unwrap();
        let payment = payment.as_message().unwrap();
        assert_eq!(
            payment.get_field_by_name("id").unwrap().as_str(),
            Some("p1")
        );
        let tags = payment.get_field_by_name("tags").unwrap();
        assert_eq!(tags.as_list().unwrap().len(), 2);
    }

    #[test]
    fn wrong_value_type_is_an_error_not_a_panic() {
        let req = message("GetPaymentRequest");
        let mut msg = DynamicMessage::new(req.clone());
        let id = resolve(&req, "id").unwrap();
        assert!(set_value(&mut msg, &id.fields, Value::I32(1)).is_err());
        let tags = resolve(&message("Payment"), "tags").unwrap();
        let mut p = DynamicMessage::new(message("Payment"));
        assert!(set_value(&mut p, &tags.fields, Value::I32(1)).is_err());
    }

    #[test]
    fn containment_follows_field_prefixes() {
        let req = message("UpdatePaymentRequest");
        let payment = resolve(&req, "payment").unwrap();
        let id = resolve(&req, "payment.id").unwrap();
        assert!(payment.contains(&id));
        assert!(!id.contains(&payment));
        assert!(!payment.contains(&resolve(&req, "update_mask").unwrap()));
    }
}
