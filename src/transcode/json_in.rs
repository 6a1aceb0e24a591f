//! A JSON request body to a dynamic message, with the proto3 JSON mapping of prost-reflect
//! (well-known types, `Any` resolved from the pool) and errors that name the field and the
//! position.
//!
//! Nesting is checked with a byte scan before any parsing, so a body like 100 000 `[` is
//! refused in linear time and can never exhaust the VM's stack.

use prost_reflect::{DeserializeOptions, DynamicMessage, MessageDescriptor};

use super::bad_request::invalid;
use super::field_path::FieldPath;
use super::json_error::json_error;
use crate::status::GatewayError;

/// Parse `body` as the request message (`target` is `None`, body `*`) or as the value of the
/// field `target` inside it (body `field`). Other fields of the result are unset.
pub fn parse_json(
    input: &MessageDescriptor,
    target: Option<&FieldPath>,
    body: &[u8],
    max_depth: usize,
) -> Result<DynamicMessage, GatewayError> {
    check_depth(body, max_depth)?;
    match target {
        None => deserialize(input, body, 0),
        Some(path) => {
            // `{"a":{"b": BODY}}`: the body becomes the field's value and the error paths read
            // from the request message down, exactly as the field is named.
            let mut wrapped = Vec::with_capacity(body.len() + 8 * path.fields.len());
            for field in &path.fields {
                wrapped.extend_from_slice(b"{\"");
                wrapped.extend_from_slice(field.name().as_bytes());
                wrapped.extend_from_slice(b"\":");
            }
            let prefix = wrapped.len();
            wrapped.extend_from_slice(body);
            wrapped.extend(std::iter::repeat_n(b'}', path.fields.len()));
            deserialize(input, &wrapped, prefix)
        }
    }
}

/// Deserialize with the field path tracked; `prefix` bytes were added before the client's
/// body on its first line and are taken off reported columns.
fn deserialize(
    input: &MessageDescriptor,
    bytes: &[u8],
    prefix: usize,
) -> Result<DynamicMessage, GatewayError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(&mut de, &mut track);
    let options = DeserializeOptions::new();
    let parsed = DynamicMessage::deserialize_with_options(input.clone(), tracked, &options);
    let message = match parsed {
        Ok(message) => message,
        Err(e) => return Err(json_error(input, Some(&track.path()), &e, prefix)),
    };
    de.end().map_err(|e| json_error(input, None, &e, prefix))?;
    Ok(message)
}

/// Refuse nesting deeper than `max_depth` (`[` and `{` outside strings), in one pass.
pub fn check_depth(body: &[u8], max_depth: usize) -> Result<(), GatewayError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (offset, &b) in body.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    let (line, column) = position(body, offset);
                    return Err(invalid(format!(
                        "invalid JSON body: nesting deeper than {max_depth} levels \
                         (line {line}, column {column})"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// 1-based line and column of a byte offset, as serde_json counts them.
fn position(body: &[u8], offset: usize) -> (usize, usize) {
    let before = body.get(..offset).unwrap_or(body);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    (line, offset - line_start + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Code;
    use crate::transcode::descriptors::testing::demo_pool;
    use crate::transcode::field_path::resolve;
    use prost_reflect::Value;

    fn message(name: &str) -> MessageDescriptor {
        demo_pool()
            .get_message_by_name(&format!("meshgate.demo.v1.{name}"))
            .unwrap()
    }

    fn violation(err: &GatewayError) -> (String, String) {
        let v = &err.details.first().unwrap()["fieldViolations"][0];
        (
            v["field"].as_str().unwrap().to_string(),
            v["description"].as_str().unwrap().to_string(),
        )
    }

    #[test]
    fn whole_body_is_the_request_message() {
        let m = parse_json(
            &message("TopUpRequest"),
            None,
            br#"{"walletId":"w1","amount":{"currencyCode":"EUR","amountMinor":"250"}}"#,
            64,
        )
        .unwrap();
        assert_eq!(
            m.get_field_by_name("wallet_id").unwrap().as_str(),
            Some("w1")
        );
        let amount = m.get_field_by_name("amount").unwrap();
        let minor = amount
            .as_message()
            .unwrap()
            .get_field_by_name("amount_minor")
            .unwrap();
        assert_eq!(minor.as_i64(), Some(250));
    }

    #[test]
    fn field_body_fills_only_that_field() {
        let req = message("CreatePaymentRequest");
        let path = resolve(&req, "payment").unwrap();
        let m = parse_json(
            &req,
            Some(&path),
            br#"{"merchant":"m1","state":"PENDING"}"#,
            64,
        )
        .unwrap();
        let p = m.get_field_by_name("payment").unwrap();
        let p = p.as_message().unwrap();
        assert_eq!(
            p.get_field_by_name("merchant").unwrap().as_str(),
            Some("m1")
        );
        assert_eq!(
            p.get_field_by_name("state").unwrap().as_enum_number(),
            Some(1)
        );
        assert_eq!(
            m.get_field_by_name("request_id").unwrap().as_str(),
            Some("")
        );
    }

    #[test]
    fn wrong_type_names_field_path_and_client_column() {
        let req = message("CreatePaymentRequest");
        let path = resolve(&req, "payment").unwrap();
        let err =
            parse_json(&req, Some(&path), br#"{"amount":{"amountMinor":true}}"#, 64).unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument);
        let (field, description) = violation(&err);
        assert_eq!(field, "payment.amount.amountMinor");
        // column counts the client's bytes, not the wrapper's
        assert!(description.contains("line 1, column 29"), "{description}");
        assert!(
            err.message.starts_with("payment.amount.amountMinor: "),
            "{}",
            err.message
        );
    }

    #[test]
    fn unknown_enum_name_is_named() {
        let err =
            parse_json(&message("Payment"), None, b"{\n \"state\": \"DONE\"}", 64).unwrap_err();
        let (field, description) = violation(&err);
        assert_eq!(field, "state");
        assert!(
            description.contains("DONE") && description.contains("line 2"),
            "{description}"
        );
    }

    #[test]
    fn int64_out_of_range_and_bad_base64_are_rejected() {
        let err = parse_json(
            &message("Money"),
            None,
            br#"{"amountMinor":"9223372036854775808"}"#,
            64,
        )
        .unwrap_err();
        assert_eq!(violation(&err).0, "amountMinor");
        let err = parse_json(
            &message("Payment"),
            None,
            br#"{"idempotencyKey":"!!!"}"#,
            64,
        )
        .unwrap_err();
        let (field, description) = violation(&err);
        assert_eq!(field, "idempotencyKey");
        assert!(description.contains("base64"), "{description}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = parse_json(&message("Money"), None, br#"{"currency":"EUR"}"#, 64).unwrap_err();
        assert!(err.message.contains("currency"), "{}", err.message);
    }

    #[test]
    fn malformed_and_trailing_json_are_rejected_with_position() {
        let err = parse_json(&message("Money"), None, br#"{"currencyCode": "#, 64).unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument);
        assert!(err.message.contains("line 1"), "{}", err.message);
        let err = parse_json(&message("Money"), None, br#"{} x"#, 64).unwrap_err();
        assert!(
            err.message.contains("trailing characters"),
            "{}",
            err.message
        );
    }

    #[test]
    fn well_known_types_and_any_follow_the_json_mapping() {
        let body = br#"{"createTime":"2026-01-02T03:04:05Z","captureDelay":"2s","metadata":{"a":[1,{"b":null}]},"note":"n","labels":{"k":"v"}}"#;
        let m = parse_json(&message("Payment"), None, body, 64).unwrap();
        let note = m.get_field_by_name("note").unwrap();
        let note = note
            .as_message()
            .unwrap()
            .get_field_by_name("value")
            .unwrap();
        assert_eq!(note.as_str(), Some("n"));
        assert!(m.get_field_by_name("labels").unwrap().as_map().is_some());
    }

    #[test]
    fn scalar_body_field_takes_a_scalar() {
        let req = message("CreatePaymentRequest");
        let path = resolve(&req, "request_id").unwrap();
        let m = parse_json(&req, Some(&path), br#""r-1""#, 64).unwrap();
        assert_eq!(
            m.get_field_by_name("request_id").unwrap().into_owned(),
            Value::String("r-1".into())
        );
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = vec![b'['; 100_000];
        let err = parse_json(&message("Payment"), None, &deep, 64).unwrap_err();
        assert!(
            err.message.contains("nesting deeper than 64"),
            "{}",
            err.message
        );
        assert!(err.message.contains("column 65"), "{}", err.message);
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let body = br#"{"id":"[[[[[[[[\"{{{{{{{{"}"#;
        assert!(check_depth(body, 1).is_ok());
        assert!(check_depth(br#"{"a":{"b":1}}"#, 1).is_err());
        assert!(check_depth(br#"{"a":{"b":1}}"#, 2).is_ok());
    }

    #[test]
    fn nesting_at_the_limit_parses() {
        // 40 levels of lists inside a Struct field parse; 60 pass the scan but reach prost's
        // decoder limit inside prost-reflect's Struct handling: a clean 400, not a crash.
        let nested = |n: usize| {
            format!(
                r#"{{"metadata":{{"x":{}{}}}}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        let r = parse_json(&message("Payment"), None, nested(40).as_bytes(), 64);
        assert!(r.is_ok(), "{r:?}");
        let err = parse_json(&message("Payment"), None, nested(60).as_bytes(), 64).unwrap_err();
        assert_eq!(violation(&err).0, "metadata");
        assert!(err.message.contains("nested too deeply"), "{}", err.message);
    }

    #[test]
    fn nesting_within_the_limit_fits_a_wasm_sized_stack() {
        // wasm32 gets a 1 MiB stack by default; parse the deepest JSON that can succeed (a
        // Struct nested about 48 levels: prost's decoder stops at 100 message levels) and the
        // deepest the scan lets through (64) on a thread that small, in a debug build.
        let nested = |objects: usize, lists: usize| {
            let mut body = String::from(r#"{"metadata":"#);
            body.push_str(&r#"{"a":"#.repeat(objects));
            body.push_str(&"[".repeat(lists));
            body.push_str(&"]".repeat(lists));
            body.push_str(&"}".repeat(objects + 1));
            body
        };
        let run = |body: String| {
            let input = message("Payment");
            std::thread::Builder::new()
                .stack_size(1024 * 1024)
                .spawn(move || parse_json(&input, None, body.as_bytes(), 64).map(|_| ()))
                .unwrap()
                .join()
                .unwrap()
        };
        assert!(run(nested(20, 26)).is_ok());
        let deepest = nested(17, 45);
        assert!(check_depth(deepest.as_bytes(), 64).is_ok());
        let err = run(deepest).unwrap_err();
        assert!(err.message.contains("nested too deeply"), "{}", err.message);
    }
}
