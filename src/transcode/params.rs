//! Path variables and query parameters written into the request message.
//!
//! Values arrive already percent-decoded (the operation matcher decodes them). Path variables
//! overwrite what the body set. Query parameters fill only fields that neither the path nor the
//! body binds: a parameter for a bound field is ignored (grpc-gateway's behaviour: with `body:
//! "*"` the body carries every field, so no parameter applies).

use std::collections::{BTreeMap, BTreeSet};

use prost_reflect::DynamicMessage;

use super::bad_request::field_error;
use super::field_path::{resolve, set_value, FieldPath};
use super::plan::{BodySpec, RequestPlan};
use super::text_value::{check_text_field, parse_text};
use crate::status::{Code, GatewayError};

/// Write each `(variable, value)` of the matched template into `message`.
pub fn apply_path(
    plan: &RequestPlan,
    message: &mut DynamicMessage,
    bindings: &[(String, String)],
) -> Result<(), GatewayError> {
    for (name, text) in bindings {
        let path = plan
            .path_variables()
            .iter()
            .find(|p| p.name == *name)
            .cloned()
            .map_or_else(|| resolve(plan.input(), name), Ok)
            .map_err(|e| {
                // The matcher only passes variables of this binding's template: a bug, not the
                // client's fault.
                GatewayError::new(Code::Internal, format!("path variable '{name}': {e}"))
            })?;
        write_text(message, &path, text, name)?;
    }
    Ok(())
}

/// Write the query parameters into `message` (see the module documentation for which apply).
pub fn apply_query(
    plan: &RequestPlan,
    message: &mut DynamicMessage,
    query: &[(String, String)],
    ignore_unknown: bool,
) -> Result<(), GatewayError> {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut oneofs: BTreeMap<String, String> = BTreeMap::new();
    for (name, text) in query {
        let path = match resolve(plan.input(), name) {
            Ok(path) => path,
            Err(_) if ignore_unknown => continue,
            Err(e) => return Err(field_error(name, &format!("unknown query parameter: {e}"))),
        };
        if is_bound(plan, &path) {
            continue;
        }
        let Some(leaf) = path.leaf() else { continue };
        check_text_field(leaf)
            .map_err(|e| field_error(name, &format!("not a query parameter: {e}")))?;
        if !leaf.is_list() && !seen.insert(path.name.clone()) {
            return Err(field_error(
                name,
                "given more than once for a non-repeated field",
            ));
        }
        if let Some(other) = oneof_conflict(&mut oneofs, &path) {
            let description = format!("'{other}' of the same oneof is already set");
            return Err(field_error(name, &description));
        }
        write_text(message, &path, text, name)?;
    }
    Ok(())
}

/// Two members of one oneof from the query would silently keep only the last: refuse it.
/// `oneofs` maps `parent.path#oneof` to the member already set; returns that member's name.
fn oneof_conflict(oneofs: &mut BTreeMap<String, String>, path: &FieldPath) -> Option<String> {
    let oneof = path
        .leaf()?
        .containing_oneof()
        .filter(|o| !o.is_synthetic())?;
    let parent = path.name.rsplit_once('.').map_or("", |(p, _)| p);
    let key = format!("{parent}#{}", oneof.name());
    match oneofs.get(&key) {
        Some(other) if *other != path.name => Some(other.clone()),
        Some(_) => None,
        None => {
            oneofs.insert(key, path.name.clone());
            None
        }
    }
}

/// A field is bound when a path variable or the body covers it.
fn is_bound(plan: &RequestPlan, path: &FieldPath) -> bool {
    let by_body = match plan.body() {
        BodySpec::All => true,
        BodySpec::Field(body) => body.contains(path),
        BodySpec::None => false,
    };
    by_body || plan.path_variables().iter().any(|v| v.contains(path))
}

fn write_text(
    message: &mut DynamicMessage,
    path: &FieldPath,
    text: &str,
    shown_as: &str,
) -> Result<(), GatewayError> {
    let Some(leaf) = path.leaf() else {
        return Err(field_error(shown_as, "empty field path"));
    };
    let value = parse_text(leaf, text).map_err(|e| field_error(shown_as, &e))?;
    set_value(message, &path.fields, value).map_err(|e| field_error(shown_as, &e))
}

#[cfg(test)]
mod tests {
    use prost_reflect::{DescriptorPool, DynamicMessage};
    use protox::file::{File, FileResolver};

    use super::*;
    use crate::transcode::descriptors::HttpBinding;

    const ONEOF_PROTO: &str = r#"
        syntax = "proto3";
        package t;
        message Req {
          oneof pick { string a = 1; int32 b = 2; }
          optional string c = 3;
          Inner inner = 4;
        }
        message Inner { oneof pick { string a = 1; string b = 2; } }
        service S { rpc M(Req) returns (Req); }
    "#;

    /// Serves the one inline file above.
    struct Inline;

    impl FileResolver for Inline {
        fn open_file(&self, name: &str) -> Result<File, protox::Error> {
            if name == "t.proto" {
                File::from_source(name, ONEOF_PROTO)
            } else {
                Err(protox::Error::file_not_found(name))
            }
        }
    }

    fn oneof_plan() -> RequestPlan {
        let mut compiler = protox::Compiler::with_file_resolver(Inline);
        compiler.open_file("t.proto").unwrap();
        let pool =
            DescriptorPool::decode(compiler.encode_file_descriptor_set().as_slice()).unwrap();
        let method = pool
            .get_service_by_name("t.S")
            .unwrap()
            .methods()
            .next()
            .unwrap();
        let binding = HttpBinding {
            method: "GET".into(),
            template: "/m".into(),
            body: None,
            response_body: None,
        };
        RequestPlan::compile(&method, &binding).unwrap()
    }

    fn query(plan: &RequestPlan, items: &[(&str, &str)]) -> Result<DynamicMessage, GatewayError> {
        let mut message = DynamicMessage::new(plan.input().clone());
        let pairs: Vec<(String, String)> = items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        apply_query(plan, &mut message, &pairs, false).map(|()| message)
    }

    #[test]
    fn two_members_of_one_oneof_are_refused() {
        let plan = oneof_plan();
        let err = query(&plan, &[("a", "x"), ("b", "1")]).unwrap_err();
        assert!(
            err.message.starts_with("b: 'a' of the same oneof"),
            "{}",
            err.message
        );
    }

    #[test]
    fn same_named_oneofs_in_different_messages_are_independent() {
        let plan = oneof_plan();
        let msg = query(&plan, &[("a", "x"), ("inner.b", "y"), ("c", "z")]).unwrap();
        assert_eq!(msg.get_field_by_name("a").unwrap().as_str(), Some("x"));
        assert!(query(&plan, &[("inner.a", "x"), ("inner.b", "y")]).is_err());
    }
}
