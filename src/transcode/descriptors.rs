//! The descriptor set and the `google.api.http` rules in it.
//!
//! The configuration embeds a binary `FileDescriptorSet`; this module turns it into a
//! `prost_reflect::DescriptorPool` once per VM and lists every method with its HTTP bindings,
//! which the operation matcher and the request/response plans are compiled from.

use crate::transcode::input::HttpRuleInput;
use prost_reflect::{
    DescriptorPool, DynamicMessage, ExtensionDescriptor, MethodDescriptor, ReflectMessage, Value,
};

/// The name of the `MethodOptions` extension that carries a method's HTTP rule.
const HTTP_EXTENSION: &str = "google.api.http";

/// One HTTP binding of a method: a verb, a path template and where the body goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpBinding {
    /// `GET`, `PUT`, `POST`, `DELETE`, `PATCH`, or a custom pattern's kind as written.
    pub method: String,
    /// The path template (`/v1/{name=wallets/*}`).
    pub template: String,
    /// `*` for the whole request message, a field path, or `None` for no body.
    pub body: Option<String>,
    /// The response field that becomes the HTTP response body, if not the whole message.
    pub response_body: Option<String>,
}

/// A method of a service and every HTTP binding it declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodRules {
    /// `pkg.Service.Method`
    pub full_name: String,
    /// `/pkg.Service/Method`, the gRPC `:path`.
    pub grpc_path: String,
    /// The primary binding followed by `additional_bindings`, flattened; empty if the method
    /// has no `google.api.http` option.
    pub bindings: Vec<HttpBinding>,
    pub client_streaming: bool,
    pub server_streaming: bool,
}

/// Decode a binary `FileDescriptorSet` into a pool; the error says why it was refused.
pub fn load_pool(bytes: &[u8]) -> Result<DescriptorPool, String> {
    check_syntax(bytes)?;
    DescriptorPool::decode(bytes).map_err(|e| format!("invalid descriptor set: {e}"))
}

/// Only what [`check_syntax`] reads of a `FileDescriptorSet` (unknown fields are skipped).
#[derive(Clone, PartialEq, prost::Message)]
struct SyntaxOfFiles {
    #[prost(message, repeated, tag = "1")]
    file: Vec<SyntaxOfFile>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SyntaxOfFile {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "12")]
    syntax: Option<String>,
}

/// Refuses a file whose `syntax` is neither proto2 nor proto3 (e.g. `editions`) before
/// prost-reflect sees it: prost-reflect 0.16 panics (an index out of bounds while labelling the
/// error) on such a file, which would trap the VM at configuration. Found by the `config` fuzz
/// target (tests/fuzz/regressions/config/).
fn check_syntax(bytes: &[u8]) -> Result<(), String> {
    use prost::Message as _;
    let set = SyntaxOfFiles::decode(bytes).map_err(|e| format!("invalid descriptor set: {e}"))?;
    for file in &set.file {
        if let Some(syntax) = file.syntax.as_deref() {
            if !matches!(syntax, "" | "proto2" | "proto3") {
                return Err(format!(
                    "invalid descriptor set: {} has syntax {syntax:?}; only proto2 and proto3 are supported",
                    file.name.as_deref().unwrap_or("a file")
                ));
            }
        }
    }
    Ok(())
}

/// Every method of every service in the pool, with its HTTP bindings (possibly none).
///
/// Rules can only be read when `google/api/annotations.proto` is in the set; without it every
/// method has no bindings (it is still reachable as native gRPC).
pub fn http_rules(pool: &DescriptorPool) -> Vec<MethodRules> {
    let extension = pool.get_extension_by_name(HTTP_EXTENSION);
    pool.services()
        .flat_map(|service| service.methods().collect::<Vec<_>>())
        .map(|method| method_rules(&method, extension.as_ref()))
        .collect()
}

/// The bindings of one method (also used when compiling plans from a configured rule).
pub fn method_rules(
    method: &MethodDescriptor,
    extension: Option<&ExtensionDescriptor>,
) -> MethodRules {
    let bindings = extension
        .and_then(|ext| {
            let options = method.options();
            if options.has_extension(ext) {
                options.get_extension(ext).as_message().map(flatten_rule)
            } else {
                None
            }
        })
        .unwrap_or_default();
    MethodRules {
        full_name: method.full_name().to_string(),
        grpc_path: format!("/{}/{}", method.parent_service().full_name(), method.name()),
        bindings,
        client_streaming: method.is_client_streaming(),
        server_streaming: method.is_server_streaming(),
    }
}

/// A rule and its `additional_bindings` (one level deep, as the spec allows), in order.
fn flatten_rule(rule: &DynamicMessage) -> Vec<HttpBinding> {
    let mut out: Vec<HttpBinding> = binding_of(rule).into_iter().collect();
    if let Some(Value::List(extra)) = rule.get_field_by_name("additional_bindings").as_deref() {
        out.extend(
            extra
                .iter()
                .filter_map(Value::as_message)
                .filter_map(binding_of),
        );
    }
    out
}

/// The binding of one `HttpRule` message; `None` if it sets no pattern.
fn binding_of(rule: &DynamicMessage) -> Option<HttpBinding> {
    let (method, template) = pattern_of(rule)?;
    Some(HttpBinding {
        method,
        template,
        body: non_empty_string(rule, "body"),
        response_body: non_empty_string(rule, "response_body"),
    })
}

/// The verb and template of the rule's `pattern` oneof.
fn pattern_of(rule: &DynamicMessage) -> Option<(String, String)> {
    for verb in ["get", "put", "post", "delete", "patch"] {
        let is_set = rule
            .descriptor()
            .get_field_by_name(verb)
            .is_some_and(|f| rule.has_field(&f));
        if is_set {
            let template = non_empty_string(rule, verb).unwrap_or_default();
            return Some((verb.to_ascii_uppercase(), template));
        }
    }
    let custom_field = rule.descriptor().get_field_by_name("custom")?;
    if !rule.has_field(&custom_field) {
        return None;
    }
    let custom = rule.get_field(&custom_field);
    let custom = custom.as_message()?;
    let kind = non_empty_string(custom, "kind")?;
    let path = non_empty_string(custom, "path").unwrap_or_default();
    Some((kind, path))
}

fn non_empty_string(message: &DynamicMessage, name: &str) -> Option<String> {
    message
        .get_field_by_name(name)
        .and_then(|v| v.as_str().map(str::to_string))
        .filter(|s| !s.is_empty())
}

/// A binding written in the configuration (`operations.<name>.http[i]`), checked to set
/// exactly one pattern, as `google.api.HttpRule`'s oneof requires.
pub fn binding_from_input(rule: &HttpRuleInput) -> Result<HttpBinding, String> {
    let mut patterns: Vec<(String, String)> = [
        ("GET", &rule.get),
        ("PUT", &rule.put),
        ("POST", &rule.post),
        ("DELETE", &rule.delete),
        ("PATCH", &rule.patch),
    ]
    .into_iter()
    .filter_map(|(verb, path)| path.as_ref().map(|p| (verb.to_string(), p.clone())))
    .collect();
    if let Some(custom) = &rule.custom {
        patterns.push((custom.kind.clone(), custom.path.clone()));
    }
    let (method, template) = match patterns.as_slice() {
        [one] => one.clone(),
        [] => return Err("no pattern: set one of get, put, post, delete, patch, custom".into()),
        _ => {
            return Err(
                "more than one pattern: set only one of get, put, post, delete, patch, custom"
                    .into(),
            )
        }
    };
    if method.is_empty() {
        return Err("custom.kind: empty".into());
    }
    Ok(HttpBinding {
        method,
        template,
        body: rule.body.clone().filter(|b| !b.is_empty()),
        response_body: rule.response_body.clone().filter(|b| !b.is_empty()),
    })
}

/// Test fixtures: the demo API compiled with protox, as the command would embed it.
#[cfg(test)]
pub(crate) mod testing {
    use prost_reflect::{DescriptorPool, MethodDescriptor};

    /// `proto/meshgate/demo/v1/payments.proto` and its imports, as a binary descriptor set.
    pub fn demo_descriptor_set() -> Vec<u8> {
        let mut compiler = protox::Compiler::new(["proto"]).unwrap();
        compiler.include_imports(true);
        compiler
            .open_file("meshgate/demo/v1/payments.proto")
            .unwrap();
        compiler.encode_file_descriptor_set()
    }

    pub fn demo_pool() -> DescriptorPool {
        super::load_pool(&demo_descriptor_set()).unwrap()
    }

    /// `name` is `Service.Method` within `meshgate.demo.v1`.
    pub fn demo_method(pool: &DescriptorPool, name: &str) -> MethodDescriptor {
        let (service, method) = name.split_once('.').unwrap();
        pool.get_service_by_name(&format!("meshgate.demo.v1.{service}"))
            .unwrap()
            .methods()
            .find(|m| m.name() == method)
            .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    fn rules_of<'a>(all: &'a [MethodRules], name: &str) -> &'a MethodRules {
        let full = format!("meshgate.demo.v1.{name}");
        all.iter().find(|r| r.full_name == full).unwrap()
    }

    fn binding(method: &str, template: &str, body: Option<&str>) -> HttpBinding {
        HttpBinding {
            method: method.into(),
            template: template.into(),
            body: body.map(str::to_string),
            response_body: None,
        }
    }

    #[test]
    fn every_method_of_every_service_is_listed() {
        let all = http_rules(&demo_pool());
        assert_eq!(all.len(), 17);
        let get = rules_of(&all, "Payments.GetPayment");
        assert_eq!(get.grpc_path, "/meshgate.demo.v1.Payments/GetPayment");
        assert_eq!(
            get.bindings,
            vec![binding("GET", "/v1/payments/{id}", None)]
        );
    }

    #[test]
    fn additional_bindings_are_flattened_after_the_primary() {
        let all = http_rules(&demo_pool());
        let list = rules_of(&all, "Payments.ListPayments");
        assert_eq!(
            list.bindings,
            vec![
                binding("GET", "/v1/payments", None),
                binding("GET", "/v1/{parent=merchants/*}/payments", None)
            ]
        );
    }

    #[test]
    fn body_and_response_body_are_read() {
        let all = http_rules(&demo_pool());
        let create = rules_of(&all, "Payments.CreatePayment");
        assert_eq!(
            create.bindings,
            vec![binding("POST", "/v1/payments", Some("payment"))]
        );
        let cancel = rules_of(&all, "Payments.CancelPayment");
        assert_eq!(cancel.bindings.first().unwrap().body.as_deref(), Some("*"));
        let status = rules_of(&all, "Payments.GetPaymentStatus");
        let b = status.bindings.first().unwrap();
        assert_eq!(b.response_body.as_deref(), Some("status"));
        assert_eq!(b.body, None);
        let patch = rules_of(&all, "Payments.UpdatePayment");
        assert_eq!(patch.bindings.first().unwrap().method, "PATCH");
    }

    #[test]
    fn streaming_flags_come_from_the_method() {
        let all = http_rules(&demo_pool());
        let watch = rules_of(&all, "Payments.WatchPayments");
        assert!(watch.server_streaming && !watch.client_streaming);
        assert!(!rules_of(&all, "Wallets.TopUp").server_streaming);
    }

    #[test]
    fn custom_pattern_keeps_its_kind() {
        // Built by hand: the demo has no custom pattern.
        let pool = demo_pool();
        let rule_desc = pool.get_message_by_name("google.api.HttpRule").unwrap();
        let custom_desc = pool
            .get_message_by_name("google.api.CustomHttpPattern")
            .unwrap();
        let mut custom = DynamicMessage::new(custom_desc);
        custom.set_field_by_name("kind", Value::String("HEAD".into()));
        custom.set_field_by_name("path", Value::String("/v1/x".into()));
        let mut rule = DynamicMessage::new(rule_desc);
        rule.set_field_by_name("custom", Value::Message(custom));
        assert_eq!(flatten_rule(&rule), vec![binding("HEAD", "/v1/x", None)]);
    }

    #[test]
    fn methods_without_annotations_have_no_bindings() {
        let pool = demo_pool();
        let ext = pool.get_extension_by_name(HTTP_EXTENSION);
        assert!(ext.is_some());
        let method = demo_method(&pool, "Payments.GetPayment");
        assert_eq!(method_rules(&method, None).bindings, vec![]);
    }

    #[test]
    fn garbage_is_refused_with_a_message() {
        let err = load_pool(&[0xff, 0xff, 0xff]).unwrap_err();
        assert!(err.starts_with("invalid descriptor set"), "{err}");
    }

    #[test]
    fn configured_rules_need_exactly_one_pattern() {
        use crate::transcode::input::{CustomPatternInput, HttpRuleInput};
        let post = HttpRuleInput {
            post: Some("/v2/payments".into()),
            body: Some("payment".into()),
            ..HttpRuleInput::default()
        };
        assert_eq!(
            binding_from_input(&post).unwrap(),
            binding("POST", "/v2/payments", Some("payment"))
        );
        let custom = HttpRuleInput {
            custom: Some(CustomPatternInput {
                kind: "HEAD".into(),
                path: "/v2/x".into(),
            }),
            ..HttpRuleInput::default()
        };
        assert_eq!(binding_from_input(&custom).unwrap().method, "HEAD");
        let none = binding_from_input(&HttpRuleInput::default()).unwrap_err();
        assert!(none.starts_with("no pattern"), "{none}");
        let two = HttpRuleInput {
            get: Some("/a".into()),
            ..post
        };
        assert!(binding_from_input(&two)
            .unwrap_err()
            .starts_with("more than one"));
    }
}

#[cfg(test)]
mod syntax_tests {
    use super::load_pool;

    /// A `FileDescriptorSet` with one file `name` of syntax `syntax` (hand-encoded).
    fn set(name: &str, syntax: &str) -> Vec<u8> {
        let mut file = vec![0x0a, name.len() as u8];
        file.extend(name.as_bytes());
        file.extend([0x62, syntax.len() as u8]);
        file.extend(syntax.as_bytes());
        let mut out = vec![0x0a, file.len() as u8];
        out.extend(file);
        out
    }

    #[test]
    fn a_file_of_unknown_syntax_is_refused_without_a_panic() {
        for syntax in ["editions", "proto4", "x"] {
            let e = load_pool(&set("a.proto", syntax)).unwrap_err();
            assert!(e.contains("a.proto") && e.contains(syntax), "{e}");
        }
        for syntax in ["proto2", "proto3"] {
            assert!(load_pool(&set("a.proto", syntax)).is_ok(), "{syntax}");
        }
    }
}
