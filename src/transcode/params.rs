//! Path variables and query parameters written into the request message.
//!
//! Values arrive already percent-decoded (the operation matcher decodes them). Path variables
//! overwrite what the body set. Query parameters fill only fields that neither the path nor the
//! body binds: a parameter for a bound field is ignored (grpc-gateway's behaviour: with `body:
//! "*"` the body carries every field, so no parameter applies).

use std::collections::BTreeSet;

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
        write_text(message, &path, text, name)?;
    }
    Ok(())
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
