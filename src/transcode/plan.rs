//! A request plan: one HTTP binding of one method compiled against its message types once, at
//! configuration time, so a bad field name in a rule refuses the configuration instead of
//! failing requests.

use prost_reflect::{Kind, MessageDescriptor, MethodDescriptor};

use super::descriptors::HttpBinding;
use super::field_path::{resolve, FieldPath};
use super::text_value::check_text_field;

const HTTP_BODY: &str = "google.api.HttpBody";

/// Where the HTTP body goes in the request message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodySpec {
    /// `body: "*"`: the body is the whole request message.
    All,
    /// `body: "field"`: the body is that field's value.
    Field(FieldPath),
    /// No `body`: the request comes from path and query only.
    None,
}

/// One binding, compiled: the request message, the body spec, the path variables (resolved),
/// and the response field for `response_body`.
#[derive(Debug, Clone)]
pub struct RequestPlan {
    input: MessageDescriptor,
    body: BodySpec,
    http_body: bool,
    path_variables: Vec<FieldPath>,
    response_body: Option<FieldPath>,
}

impl RequestPlan {
    /// Compile `binding` for `method`. The error names the part of the rule and the field:
    /// `body: no field 'paymnt' in meshgate.demo.v1.CreatePaymentRequest (path 'paymnt')`.
    pub fn compile(
        method: &MethodDescriptor,
        binding: &HttpBinding,
    ) -> Result<RequestPlan, String> {
        let input = method.input();
        let body = compile_body(&input, binding.body.as_deref())?;
        let http_body = match &body {
            BodySpec::All => input.full_name() == HTTP_BODY,
            BodySpec::Field(path) => path.leaf().is_some_and(|f| {
                !f.is_list() && matches!(f.kind(), Kind::Message(m) if m.full_name() == HTTP_BODY)
            }),
            BodySpec::None => false,
        };
        let path_variables = template_variables(&binding.template)?
            .iter()
            .map(|name| compile_path_variable(&input, name))
            .collect::<Result<Vec<_>, _>>()?;
        let response_body = binding
            .response_body
            .as_deref()
            .map(|p| resolve(&method.output(), p).map_err(|e| format!("response_body: {e}")))
            .transpose()?;
        Ok(RequestPlan {
            input,
            body,
            http_body,
            path_variables,
            response_body,
        })
    }

    /// The gRPC request message type.
    pub fn input(&self) -> &MessageDescriptor {
        &self.input
    }

    pub fn body(&self) -> &BodySpec {
        &self.body
    }

    /// True when the body target is `google.api.HttpBody`: the HTTP body is passed raw, with
    /// its content type, whatever that content type is.
    pub fn is_http_body(&self) -> bool {
        self.http_body
    }

    /// The template's variables, resolved in the request message, in template order.
    pub fn path_variables(&self) -> &[FieldPath] {
        &self.path_variables
    }

    /// The response field sent as the HTTP body (`response_body`), if any.
    pub fn response_body(&self) -> Option<&FieldPath> {
        self.response_body.as_ref()
    }
}

fn compile_body(input: &MessageDescriptor, body: Option<&str>) -> Result<BodySpec, String> {
    match body {
        None | Some("") => Ok(BodySpec::None),
        Some("*") => Ok(BodySpec::All),
        Some(path) => resolve(input, path)
            .map(BodySpec::Field)
            .map_err(|e| format!("body: {e}")),
    }
}

fn compile_path_variable(input: &MessageDescriptor, name: &str) -> Result<FieldPath, String> {
    let path = resolve(input, name).map_err(|e| format!("path variable '{name}': {e}"))?;
    if let Some(leaf) = path.leaf() {
        check_text_field(leaf).map_err(|e| format!("path variable '{name}': {e}"))?;
    }
    Ok(path)
}

/// The field paths of a template's variables: `/v1/{name=wallets/*}/x/{id}` -> `name`, `id`.
/// Only the names are read here; the operation matcher parses the full template syntax.
pub fn template_variables(template: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = rest.get(open + 1..).unwrap_or_default();
        let close = after
            .find('}')
            .ok_or_else(|| format!("template '{template}': unclosed '{{'"))?;
        let inside = after.get(..close).unwrap_or_default();
        if inside.contains('{') {
            return Err(format!("template '{template}': nested '{{'"));
        }
        let name = inside.split('=').next().unwrap_or_default().trim();
        if name.is_empty() {
            return Err(format!("template '{template}': variable without a name"));
        }
        names.push(name.to_string());
        rest = after.get(close + 1..).unwrap_or_default();
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcode::descriptors::testing::{demo_method, demo_pool};

    fn binding(template: &str, body: Option<&str>, response_body: Option<&str>) -> HttpBinding {
        HttpBinding {
            method: "POST".into(),
            template: template.into(),
            body: body.map(str::to_string),
            response_body: response_body.map(str::to_string),
        }
    }

    fn compile(method: &str, b: &HttpBinding) -> Result<RequestPlan, String> {
        RequestPlan::compile(&demo_method(&demo_pool(), method), b)
    }

    #[test]
    fn every_demo_binding_compiles() {
        let pool = demo_pool();
        let mut count = 0;
        for rules in crate::transcode::descriptors::http_rules(&pool) {
            let (service, method) = rules.full_name.rsplit_once('.').unwrap();
            let method = pool
                .get_service_by_name(service)
                .unwrap()
                .methods()
                .find(|m| m.name() == method)
                .unwrap();
            for b in &rules.bindings {
                RequestPlan::compile(&method, b).unwrap();
                count += 1;
            }
        }
        assert_eq!(count, 19);
    }

    #[test]
    fn template_variables_are_read_with_and_without_patterns() {
        assert_eq!(
            template_variables("/v1/{name=wallets/*/entries/*}/x/{id}:cancel").unwrap(),
            vec!["name", "id"]
        );
        assert!(template_variables("/v1/{id").is_err());
        assert!(template_variables("/v1/{=x}").is_err());
    }

    #[test]
    fn nested_path_variable_and_field_body_resolve() {
        let plan = compile(
            "Payments.UpdatePayment",
            &binding("/v1/payments/{payment.id}", Some("payment"), None),
        )
        .unwrap();
        assert_eq!(plan.path_variables().first().unwrap().name, "payment.id");
        assert!(matches!(plan.body(), BodySpec::Field(p) if p.name == "payment"));
        assert!(!plan.is_http_body());
    }

    #[test]
    fn bad_body_field_is_named() {
        let err = compile(
            "Payments.CreatePayment",
            &binding("/v1/payments", Some("paymnt"), None),
        )
        .unwrap_err();
        assert!(
            err.starts_with("body: ") && err.contains("'paymnt'"),
            "{err}"
        );
    }

    #[test]
    fn bad_path_variable_is_named() {
        let err = compile(
            "Payments.GetPayment",
            &binding("/v1/payments/{pid}", None, None),
        )
        .unwrap_err();
        assert!(err.contains("path variable 'pid'"), "{err}");
        let err = compile(
            "Payments.GetPayment",
            &binding("/v1/payments/{view}", None, None),
        )
        .unwrap_err();
        assert!(err.contains("is a message"), "{err}");
    }

    #[test]
    fn response_body_is_checked_against_the_response_message() {
        let ok = compile(
            "Payments.GetPaymentStatus",
            &binding("/v1/payments/{id}/status", None, Some("status")),
        )
        .unwrap();
        assert_eq!(ok.response_body().unwrap().name, "status");
        let err = compile(
            "Payments.GetPaymentStatus",
            &binding("/v1/payments/{id}/status", None, Some("state")),
        )
        .unwrap_err();
        assert!(
            err.starts_with("response_body: ") && err.contains("'state'"),
            "{err}"
        );
    }

    #[test]
    fn http_body_field_is_detected() {
        let plan = compile(
            "Payments.UploadAttachment",
            &binding("/v1/payments/{payment_id}/attachments", Some("file"), None),
        )
        .unwrap();
        assert!(plan.is_http_body());
        let all = compile(
            "Payments.CancelPayment",
            &binding("/v1/payments/{id}:cancel", Some("*"), None),
        )
        .unwrap();
        assert_eq!(all.body(), &BodySpec::All);
        assert!(!all.is_http_body());
    }
}
