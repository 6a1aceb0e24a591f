//! `meshgate openapi <gateway.yaml>`: an OpenAPI 3.0 document of the HTTP API the gateway
//! serves, from the descriptors and the HTTP rules: one path per binding with its method,
//! path, query and body parameters in their proto3 JSON types (64-bit integers as strings,
//! enums by name, well-known types as their JSON forms), the security each operation requires
//! (bearer JWT per provider, the API key) and errors as `google.rpc.Status`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use serde::Serialize;

use crate::auth::{AuthConfig, Requirement};
use crate::config::{Config, OpKind};
use crate::transcode::http_rules;

#[derive(Debug, Clone, clap::Args)]
pub struct OpenapiArgs {
    /// The gateway configuration (YAML).
    #[arg(value_name = "GATEWAY.YAML")]
    pub input: PathBuf,
    /// Where to write the document (JSON; default: stdout).
    #[arg(short, long, value_name = "OPENAPI.JSON")]
    pub output: Option<PathBuf>,
    /// The document's `info.title`.
    #[arg(long, default_value = "meshgate API")]
    pub title: String,
}

pub fn run(args: &OpenapiArgs) -> Result<(), String> {
    let text = render(&args.input, &args.title)?;
    super::write_output(args.output.as_ref(), &text)
}

/// The document of the gateway file `input` as JSON text (what `run` writes, and what the
/// gateway serves at `openapi.path`).
pub fn render(input: &std::path::Path, title: &str) -> Result<String, String> {
    let json = super::compile_file(input).map_err(|e| e.to_string())?;
    let config = crate::config::compile_json(json.as_bytes())
        .map_err(|e| format!("{}: {e}", input.display()))?;
    let mut doc = document(&config, title);
    if let Some(pool) = source_pool(input) {
        describe(&mut doc, &pool);
    }
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    Ok(format!("{text}\n"))
}

#[derive(Debug, Serialize)]
pub struct OpenApi {
    pub openapi: &'static str,
    pub info: Info,
    pub paths: BTreeMap<String, BTreeMap<String, Operation>>,
    pub components: Components,
}

#[derive(Debug, Serialize)]
pub struct Info {
    pub title: String,
    pub version: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Components {
    pub schemas: BTreeMap<String, Schema>,
    #[serde(rename = "securitySchemes")]
    pub security_schemes: BTreeMap<String, SecurityScheme>,
}

#[derive(Debug, Serialize)]
pub struct SecurityScheme {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<&'static str>,
    #[serde(rename = "bearerFormat", skip_serializing_if = "Option::is_none")]
    pub bearer_format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "in", skip_serializing_if = "Option::is_none")]
    pub location: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Operation {
    #[serde(rename = "operationId")]
    pub operation_id: String,
    pub summary: String,
    /// The method's proto comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    #[serde(rename = "requestBody", skip_serializing_if = "Option::is_none")]
    pub request_body: Option<Body>,
    pub responses: BTreeMap<String, Response>,
    /// Alternatives, each a set of schemes that must all be met; `[{}]`: no credentials needed.
    pub security: Vec<BTreeMap<String, Vec<String>>>,
}

#[derive(Debug, Serialize)]
pub struct Parameter {
    pub name: String,
    #[serde(rename = "in")]
    pub location: &'static str,
    pub required: bool,
    pub schema: Schema,
}

#[derive(Debug, Serialize)]
pub struct Body {
    pub required: bool,
    pub content: BTreeMap<&'static str, Media>,
}

#[derive(Debug, Serialize)]
pub struct Media {
    pub schema: Schema,
}

#[derive(Debug, Serialize)]
pub struct Response {
    pub description: String,
    pub content: BTreeMap<&'static str, Media>,
}

/// An OpenAPI 3.0 schema, the parts meshgate writes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Schema {
    #[serde(rename = "$ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<&'static str>,
    #[serde(rename = "enum", skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<Schema>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, Schema>,
    #[serde(
        rename = "additionalProperties",
        skip_serializing_if = "Option::is_none"
    )]
    pub additional: Option<Box<Schema>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Schema {
    fn of(kind: &'static str, format: Option<&'static str>) -> Schema {
        Schema {
            kind: Some(kind),
            format,
            ..Schema::default()
        }
    }

    fn reference(name: &str) -> Schema {
        Schema {
            reference: Some(format!("#/components/schemas/{name}")),
            ..Schema::default()
        }
    }
}

/// The name of `google.rpc.Status` among the schemas.
const STATUS: &str = "google.rpc.Status";

/// The document for `config`.
pub fn document(config: &Config, title: &str) -> OpenApi {
    let mut schemas = BTreeMap::new();
    status_schema(&mut schemas);
    let rules: Vec<_> = http_rules(&config.pool);
    let mut paths: BTreeMap<String, BTreeMap<String, Operation>> = BTreeMap::new();
    for op in &config.operations {
        let OpKind::Grpc { bindings, .. } = &op.kind else {
            continue;
        };
        // Nobody may call it (no rule, and the default denies): not part of the API.
        if op.auth == Requirement::Deny {
            continue;
        }
        let Some(method) = method_by_name(&config.pool, &op.name) else {
            continue;
        };
        let declared = rules.iter().find(|r| r.full_name == op.name);
        for (i, b) in bindings.iter().enumerate() {
            let verb = b.method.to_ascii_lowercase();
            if !["get", "put", "post", "delete", "patch"].contains(&verb.as_str()) {
                continue;
            }
            let rule = declared.and_then(|r| {
                r.bindings
                    .iter()
                    .find(|x| x.method == b.method && x.template == b.template)
            });
            let body = rule.and_then(|r| r.body.clone());
            let response_body = rule.and_then(|r| r.response_body.clone());
            let (path, variables) = openapi_path(&b.template);
            let input = method.input();
            let mut parameters: Vec<Parameter> = variables
                .iter()
                .map(|v| Parameter {
                    name: v.clone(),
                    location: "path",
                    required: true,
                    schema: field_at(&input, v)
                        .map(|f| field_schema(&f, &mut schemas))
                        .unwrap_or_else(|| Schema::of("string", None)),
                })
                .collect();
            if body.as_deref() != Some("*") {
                query_parameters(
                    &input,
                    &variables,
                    body.as_deref(),
                    &mut parameters,
                    &mut schemas,
                );
            }
            let request_body = body.as_deref().map(|body| {
                let schema = match body {
                    "*" => message_schema(&input, &mut schemas),
                    field => field_at(&input, field)
                        .map(|f| field_schema(&f, &mut schemas))
                        .unwrap_or_default(),
                };
                json_body(schema)
            });
            let output = method.output();
            let ok = match response_body.as_deref() {
                Some(field) => field_at(&output, field)
                    .map(|f| field_schema(&f, &mut schemas))
                    .unwrap_or_default(),
                None => message_schema(&output, &mut schemas),
            };
            let mut responses = BTreeMap::new();
            responses.insert(
                "200".to_string(),
                Response {
                    description: format!("{}: the reply", op.name),
                    content: json_body(ok).content,
                },
            );
            responses.insert(
                "default".to_string(),
                Response {
                    description: "An error: a google.rpc.Status with the HTTP status of its code"
                        .into(),
                    content: json_body(Schema::reference(STATUS)).content,
                },
            );
            let suffix = if i == 0 {
                String::new()
            } else {
                format!("_{i}")
            };
            paths.entry(path).or_default().insert(
                verb,
                Operation {
                    operation_id: format!("{}{suffix}", op.name),
                    summary: op.name.clone(),
                    description: None,
                    parameters,
                    request_body,
                    responses,
                    security: security(&config.auth, &op.auth),
                },
            );
        }
    }
    OpenApi {
        openapi: "3.0.3",
        info: Info {
            title: title.to_string(),
            version: env!("CARGO_PKG_VERSION"),
        },
        paths,
        components: Components {
            schemas,
            security_schemes: security_schemes(&config.auth),
        },
    }
}

fn method_by_name(pool: &DescriptorPool, name: &str) -> Option<prost_reflect::MethodDescriptor> {
    let (service, method) = name.rsplit_once('.')?;
    pool.get_service_by_name(service)?
        .methods()
        .find(|m| m.name() == method)
}

fn json_body(schema: Schema) -> Body {
    let mut content = BTreeMap::new();
    content.insert("application/json", Media { schema });
    Body {
        required: true,
        content,
    }
}

/// `/v1/{parent=merchants/*}/payments:watch` -> (`/v1/{parent}/payments:watch`, [`parent`]);
/// `**` and `*` segments outside a variable become `{pathN}`.
pub fn openapi_path(template: &str) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut vars = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(rest.get(..start).unwrap_or_default());
        let after = rest.get(start + 1..).unwrap_or_default();
        let end = after.find('}').unwrap_or(after.len());
        let inner = after.get(..end).unwrap_or_default();
        let name = inner.split('=').next().unwrap_or_default().to_string();
        out.push('{');
        out.push_str(&name);
        out.push('}');
        vars.push(name);
        rest = after.get(end + 1..).unwrap_or_default();
    }
    out.push_str(rest);
    (out, vars)
}

/// A field by its dotted path from `message`.
fn field_at(message: &MessageDescriptor, path: &str) -> Option<FieldDescriptor> {
    let mut msg = message.clone();
    let mut found = None;
    for part in path.split('.') {
        let f = msg.get_field_by_name(part)?;
        if let Kind::Message(m) = f.kind() {
            msg = m;
        }
        found = Some(f);
    }
    found
}

/// The request message's top-level fields that are neither path variables nor the body, as
/// query parameters (scalars, enums and their repeated forms; nested messages are addressed
/// `field.sub` and listed one level down).
fn query_parameters(
    input: &MessageDescriptor,
    variables: &[String],
    body: Option<&str>,
    out: &mut Vec<Parameter>,
    schemas: &mut BTreeMap<String, Schema>,
) {
    for f in input.fields() {
        let name = f.name().to_string();
        let json = f.json_name().to_string();
        if variables
            .iter()
            .any(|v| v == &name || v.starts_with(&format!("{name}.")))
            || body == Some(name.as_str())
        {
            continue;
        }
        match f.kind() {
            Kind::Message(m) if !is_wkt(m.full_name()) && !f.is_map() => {
                for sub in m.fields() {
                    if matches!(sub.kind(), Kind::Message(_)) {
                        continue;
                    }
                    out.push(Parameter {
                        name: format!("{json}.{}", sub.json_name()),
                        location: "query",
                        required: false,
                        schema: field_schema(&sub, schemas),
                    });
                }
            }
            _ if f.is_map() => {}
            _ => out.push(Parameter {
                name: json,
                location: "query",
                required: false,
                schema: field_schema(&f, schemas),
            }),
        }
    }
}

fn is_wkt(name: &str) -> bool {
    name.starts_with("google.protobuf.")
}

/// A field's schema in proto3 JSON.
fn field_schema(f: &FieldDescriptor, schemas: &mut BTreeMap<String, Schema>) -> Schema {
    if f.is_map() {
        let value = match f.kind() {
            Kind::Message(entry) => entry
                .get_field_by_name("value")
                .map(|v| field_schema(&v, schemas))
                .unwrap_or_default(),
            _ => Schema::default(),
        };
        return Schema {
            kind: Some("object"),
            additional: Some(Box::new(value)),
            ..Schema::default()
        };
    }
    let one = kind_schema(&f.kind(), schemas);
    if f.is_list() {
        Schema {
            kind: Some("array"),
            items: Some(Box::new(one)),
            ..Schema::default()
        }
    } else {
        one
    }
}

fn kind_schema(kind: &Kind, schemas: &mut BTreeMap<String, Schema>) -> Schema {
    match kind {
        Kind::Double => Schema::of("number", Some("double")),
        Kind::Float => Schema::of("number", Some("float")),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Schema::of("integer", Some("int32")),
        Kind::Uint32 | Kind::Fixed32 => Schema::of("integer", Some("int64")),
        // proto3 JSON: 64-bit integers are strings.
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
            Schema::of("string", Some("int64"))
        }
        Kind::Bool => Schema::of("boolean", None),
        Kind::String => Schema::of("string", None),
        Kind::Bytes => Schema::of("string", Some("byte")),
        Kind::Enum(e) => Schema {
            kind: Some("string"),
            values: e.values().map(|v| v.name().to_string()).collect(),
            ..Schema::default()
        },
        Kind::Message(m) => message_schema(m, schemas),
    }
}

/// A message: its well-known JSON form, or a reference to its schema (added once).
fn message_schema(m: &MessageDescriptor, schemas: &mut BTreeMap<String, Schema>) -> Schema {
    if let Some(wkt) = well_known(m) {
        return wkt;
    }
    let name = m.full_name().to_string();
    if !schemas.contains_key(&name) {
        // Placed first, so a recursive message refers to itself instead of looping.
        schemas.insert(name.clone(), Schema::of("object", None));
        let properties = m
            .fields()
            .map(|f| (f.json_name().to_string(), field_schema(&f, schemas)))
            .collect();
        schemas.insert(
            name.clone(),
            Schema {
                kind: Some("object"),
                properties,
                ..Schema::default()
            },
        );
    }
    Schema::reference(&name)
}

fn well_known(m: &MessageDescriptor) -> Option<Schema> {
    let any_object = || Schema::of("object", None);
    Some(match m.full_name() {
        "google.protobuf.Timestamp" => Schema::of("string", Some("date-time")),
        "google.protobuf.Duration" | "google.protobuf.FieldMask" => Schema::of("string", None),
        "google.protobuf.StringValue" => Schema::of("string", None),
        "google.protobuf.BytesValue" => Schema::of("string", Some("byte")),
        "google.protobuf.BoolValue" => Schema::of("boolean", None),
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => {
            Schema::of("integer", Some("int32"))
        }
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => {
            Schema::of("string", Some("int64"))
        }
        "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => Schema::of("number", None),
        "google.protobuf.Empty" | "google.protobuf.Struct" | "google.protobuf.Any" => any_object(),
        "google.protobuf.Value" | "google.protobuf.ListValue" => Schema::default(),
        "google.api.HttpBody" => Schema::of("string", Some("binary")),
        _ => return None,
    })
}

/// The protos of `yaml`'s `descriptors.files` compiled again with their source info (the
/// embedded set carries none, to stay small): where the comments are. `None` when the file
/// names a descriptor set instead.
pub fn source_pool(yaml: &std::path::Path) -> Option<DescriptorPool> {
    let text = std::fs::read_to_string(yaml).ok()?;
    let doc: serde_json::Value = serde_yaml_ng::from_str(&text).ok()?;
    let d = doc.get("descriptors")?;
    let list = |k: &str| -> Vec<String> {
        d.get(k)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (files, include) = (list("files"), list("include"));
    let base = yaml.parent()?;
    let includes: Vec<PathBuf> = if include.is_empty() {
        vec![base.to_path_buf()]
    } else {
        include.iter().map(|i| base.join(i)).collect()
    };
    let mut compiler = protox::Compiler::new(&includes).ok()?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(&files).ok()?;
    DescriptorPool::decode(compiler.encode_file_descriptor_set().as_slice()).ok()
}

/// The protos' comments as descriptions: each operation's method comment, each message's and
/// field's (of `pool`, the same protos with their source info).
pub fn describe(doc: &mut OpenApi, pool: &DescriptorPool) {
    for methods in doc.paths.values_mut() {
        for op in methods.values_mut() {
            op.description = method_by_name(pool, &op.summary)
                .and_then(|m| comment(m.parent_file().file_descriptor_proto(), m.path()));
        }
    }
    for (name, schema) in doc.components.schemas.iter_mut() {
        let Some(m) = pool.get_message_by_name(name) else {
            continue;
        };
        schema.description = comment(m.parent_file().file_descriptor_proto(), m.path());
        for f in m.fields() {
            if let Some(p) = schema.properties.get_mut(f.json_name()) {
                if p.reference.is_none() {
                    p.description = comment(f.parent_file().file_descriptor_proto(), f.path());
                }
            }
        }
    }
}

/// The leading comment of the element at `path` of `file` (its source info), trimmed.
fn comment(file: &prost_reflect::prost_types::FileDescriptorProto, path: &[i32]) -> Option<String> {
    let info = file.source_code_info.as_ref()?;
    let loc = info.location.iter().find(|l| l.path == path)?;
    let text = loc.leading_comments.as_deref()?;
    let text = text
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_string();
    (!text.is_empty()).then_some(text)
}

/// `google.rpc.Status` as every error reply has it.
fn status_schema(schemas: &mut BTreeMap<String, Schema>) {
    let mut properties = BTreeMap::new();
    properties.insert("code".into(), Schema::of("integer", Some("int32")));
    properties.insert("message".into(), Schema::of("string", None));
    let mut detail = Schema::of("object", None);
    detail
        .properties
        .insert("@type".into(), Schema::of("string", None));
    properties.insert(
        "details".into(),
        Schema {
            kind: Some("array"),
            items: Some(Box::new(detail)),
            ..Schema::default()
        },
    );
    schemas.insert(
        STATUS.into(),
        Schema {
            kind: Some("object"),
            properties,
            description: Some(
                "The error model of every reply the gateway or a backend refuses: the gRPC code, \
                 a message, and typed details"
                    .into(),
            ),
            ..Schema::default()
        },
    );
}

/// The API key scheme's name among the security schemes.
const API_KEY: &str = "api_key";

fn security_schemes(auth: &AuthConfig) -> BTreeMap<String, SecurityScheme> {
    let mut out = BTreeMap::new();
    for p in &auth.providers {
        out.insert(
            p.name.clone(),
            SecurityScheme {
                kind: "http",
                scheme: Some("bearer"),
                bearer_format: Some("JWT"),
                name: None,
                location: None,
                description: Some(format!("A JWT of issuer {}", p.issuer)),
            },
        );
    }
    if let Some(keys) = &auth.api_keys {
        let header = keys.sources.iter().find_map(|s| match s {
            crate::auth::TokenSource::Header { name, .. } => Some(name.clone()),
            _ => None,
        });
        out.insert(
            API_KEY.into(),
            SecurityScheme {
                kind: "apiKey",
                scheme: None,
                bearer_format: None,
                name: Some(header.unwrap_or_else(|| "x-api-key".into())),
                location: Some("header"),
                description: Some("A partner's API key".into()),
            },
        );
    }
    out
}

/// The requirement as OpenAPI security: alternatives of schemes that must all be met.
fn security(auth: &AuthConfig, r: &Requirement) -> Vec<BTreeMap<String, Vec<String>>> {
    let one = |name: &str| {
        let mut m = BTreeMap::new();
        m.insert(name.to_string(), Vec::new());
        vec![m]
    };
    match r {
        Requirement::Provider(i) => auth
            .providers
            .get(*i)
            .map(|p| one(&p.name))
            .unwrap_or_default(),
        Requirement::ApiKey => one(API_KEY),
        // A client certificate is checked in TLS, below HTTP: OpenAPI 3.0 has no scheme for it
        // (3.1's `mutualTLS`), so it adds no HTTP credential (docs/partners.md says so).
        Requirement::ClientCert(_) => vec![BTreeMap::new()],
        Requirement::Any(list) => list.iter().flat_map(|r| security(auth, r)).collect(),
        Requirement::All(list) => {
            // Every combination of one alternative from each.
            let mut out = vec![BTreeMap::new()];
            for r in list {
                let alts = security(auth, r);
                out = out
                    .iter()
                    .flat_map(|acc| {
                        alts.iter().map(move |alt| {
                            let mut m = acc.clone();
                            m.extend(alt.clone());
                            m
                        })
                    })
                    .collect();
            }
            out
        }
        // Optional credentials: none needed, or a provider's token.
        Requirement::AllowMissing | Requirement::AllowMissingOrFailed => {
            let mut out = vec![BTreeMap::new()];
            for p in &auth.providers {
                out.extend(one(&p.name));
            }
            out
        }
        Requirement::None => vec![BTreeMap::new()],
        // Nobody may call: such operations are left out of the document (an empty list of
        // alternatives would read "no security").
        Requirement::Deny => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_become_openapi_paths() {
        assert_eq!(
            openapi_path("/v1/{parent=merchants/*}/payments:watch"),
            (
                "/v1/{parent}/payments:watch".to_string(),
                vec!["parent".to_string()]
            )
        );
        assert_eq!(
            openapi_path("/v1/payments/{id}"),
            ("/v1/payments/{id}".to_string(), vec!["id".to_string()])
        );
    }

    #[test]
    fn the_demo_document_has_every_binding_security_and_proto3_json_types() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let json = crate::cli::compile_file(&root.join("envoy/gateway.yaml")).unwrap();
        let config = crate::config::compile_json(json.as_bytes()).unwrap();
        let mut doc = document(&config, "t");
        let pool = source_pool(&root.join("envoy/gateway.yaml")).unwrap();
        describe(&mut doc, &pool);
        let doc = serde_json::to_value(doc).unwrap();
        let op = |path: &str, verb: &str| doc["paths"][path][verb].clone();
        assert_eq!(
            op("/v1/payments/{id}", "get")["operationId"],
            "meshgate.demo.v1.Payments.GetPayment"
        );
        assert_eq!(
            op("/v1/payments/{id}", "delete")["security"],
            serde_json::json!([{"demo": []}])
        );
        assert_eq!(
            op("/v1/payments/{id}/status", "get")["security"],
            serde_json::json!([{"api_key": []}])
        );
        assert_eq!(
            op("/v1/payments", "get")["security"],
            serde_json::json!([{}])
        );
        assert!(
            op("/v1/{parent}/payments", "get").is_object(),
            "additional binding"
        );
        let money = &doc["components"]["schemas"]["meshgate.demo.v1.Money"]["properties"];
        assert_eq!(money["amountMinor"]["type"], "string", "int64 as a string");
        let payment = &doc["components"]["schemas"]["meshgate.demo.v1.Payment"]["properties"];
        assert!(payment["state"]["enum"]
            .as_array()
            .is_some_and(|v| !v.is_empty()));
        assert_eq!(payment["createTime"]["format"], "date-time");
        assert_eq!(
            doc["components"]["securitySchemes"]["api_key"]["in"],
            "header"
        );
        // The protos' comments.
        assert_eq!(
            op("/v1/payments/{payment_id}/attachments", "post")["description"],
            "Attach a raw file to a payment: the HTTP body is the file."
        );
    }
}
