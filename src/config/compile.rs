//! `GatewayInput` -> `Config`: every check that can be made before traffic is made here, and an
//! error names the field. A configuration either compiles whole or is refused.

use std::collections::{BTreeSet, HashMap};

use base64::Engine;
use prost_reflect::DescriptorPool;

use super::compiled::*;
use super::input::*;
use super::operations::Builder;
use super::ConfigError;
use crate::auth::input::AuthLimits;
use crate::auth::AuthConfig;
use crate::observe::{MetricNames, Slo};
use crate::operation::{Matcher, UrlUnescapeSpec};
use crate::transcode::{http_rules, load_pool, PrintOptions, StreamFormat};

/// Parse the filter's JSON configuration and compile it.
pub fn compile_json(bytes: &[u8]) -> Result<Config, ConfigError> {
    let input: GatewayInput = serde_json::from_slice(bytes).map_err(|e| {
        ConfigError::new(
            "",
            format!(
                "invalid configuration JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    compile(&input)
}

pub fn compile(input: &GatewayInput) -> Result<Config, ConfigError> {
    let pool = descriptor_pool(&input.descriptors)?;
    let auth_limits = AuthLimits {
        max_token_bytes: input.limits.max_token_bytes,
        max_jwks_bytes: input.limits.max_jwks_bytes,
        max_jwks_keys: input.limits.max_jwks_keys,
        max_key_table_bytes: input.limits.max_key_table_bytes,
    };
    let auth = AuthConfig::compile(&input.auth, &auth_limits).map_err(|e| e.within("auth"))?;
    let default_slo = input.observe.default_slo.as_ref();
    check_known_names(input, &pool)?;
    validate_slo_layers(input)?;
    if let Some(o) = &input.openapi {
        o.check()?;
    }

    let mut b = Builder {
        input,
        auth: &auth,
        http: Matcher::new(),
        grpc_paths: HashMap::new(),
        operations: Vec::new(),
        skipped: Vec::new(),
    };
    for rules in http_rules(&pool) {
        if b.exposed(&rules) {
            b.add_grpc_operation(&pool, rules, default_slo)?;
        }
    }
    for (i, rest) in input.http_operations.iter().enumerate() {
        b.add_rest_operation(rest, default_slo)
            .map_err(|e| e.within(&format!("http_operations[{i}]")))?;
    }
    let Builder {
        http,
        grpc_paths,
        operations,
        skipped: skipped_bindings,
        ..
    } = b;

    let cors = input
        .cors
        .as_ref()
        .map(crate::cors::Cors::compile)
        .transpose()?;
    let policies = compile_policies(input, &auth, default_slo, cors.as_ref())?;
    let routing = Routing::compile(&input.routing, |p| policies.contains_key(p))?;
    let transcoding = compile_transcoding(&input.transcoding)?;
    let owned_headers = owned_headers(&routing, &auth);
    Ok(Config {
        pool,
        operations,
        grpc_paths,
        http,
        auth,
        policies,
        routing,
        transcoding,
        observe: Observe {
            access_log: input.observe.access_log,
            names: MetricNames::new(&input.observe.metric_prefix)
                .map_err(|e| e.within("observe.metric_prefix"))?,
            trace_project: input.observe.trace_project.clone(),
            latency_buckets_ms: input.observe.latency_buckets_ms.clone(),
            unmatched_slo: crate::observe::Slo::unmatched(default_slo)?,
            filter_state: crate::observe::compile_filter_state(&input.observe.filter_state)?,
        },
        limits: compile_limits(&input.limits),
        owned_headers,
        cors,
        openapi_path: input.openapi.as_ref().map(|o| o.path.clone()),
        skipped_bindings,
        spans: input.tracing.spans,
    })
}

fn descriptor_pool(d: &DescriptorsInput) -> Result<DescriptorPool, ConfigError> {
    let field = "descriptors.descriptor_set";
    let b64 = d.descriptor_set.as_deref().ok_or_else(|| {
        ConfigError::new(
            field,
            "missing: the filter needs the embedded descriptor set (run `meshgate compile`)",
        )
    })?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| ConfigError::new(field, format!("not valid base64: {e}")))?;
    load_pool(&bytes).map_err(|e| ConfigError::new(field, e))
}

/// Names in `services`, `operations` and `descriptors.services` must exist: a typo must not
/// silently leave an operation without its settings.
/// Every SLO layer on its own, so a bad value is refused (with its path) even where a more
/// specific layer shadows it, and an error never names the layer that inherited it.
fn validate_slo_layers(input: &GatewayInput) -> Result<(), ConfigError> {
    let mut layers: Vec<(String, &SloInput)> = Vec::new();
    layers.extend(
        input
            .observe
            .default_slo
            .iter()
            .map(|s| ("observe.default_slo".to_string(), s)),
    );
    for (name, svc) in &input.services {
        layers.extend(svc.slo.iter().map(|s| (format!("services.{name}.slo"), s)));
    }
    for (name, op) in &input.operations {
        layers.extend(op.slo.iter().map(|s| (format!("operations.{name}.slo"), s)));
    }
    for (i, op) in input.http_operations.iter().enumerate() {
        layers.extend(
            op.slo
                .iter()
                .map(|s| (format!("http_operations[{i}].slo"), s)),
        );
    }
    for (name, p) in &input.policies {
        layers.extend(p.slo.iter().map(|s| (format!("policies.{name}.slo"), s)));
    }
    for (path, slo) in layers {
        Slo::validate(slo).map_err(|e| e.within(&path))?;
    }
    Ok(())
}

fn check_known_names(input: &GatewayInput, pool: &DescriptorPool) -> Result<(), ConfigError> {
    for name in input.services.keys() {
        if pool.get_service_by_name(name).is_none() {
            return Err(ConfigError::new(
                format!("services.{name}"),
                "no such service in the descriptor set",
            ));
        }
    }
    for name in &input.descriptors.services {
        if pool.get_service_by_name(name).is_none() {
            return Err(ConfigError::new(
                "descriptors.services",
                format!("no such service in the descriptor set: {name}"),
            ));
        }
    }
    for name in input.operations.keys() {
        let found = name
            .rsplit_once('.')
            .and_then(|(svc, m)| pool.get_service_by_name(svc).map(|s| (s, m)))
            .is_some_and(|(s, m)| s.methods().any(|x| x.name() == m));
        if !found {
            return Err(ConfigError::new(
                format!("operations.{name}"),
                "no such method in the descriptor set (write pkg.Service.Method)",
            ));
        }
    }
    for (name, up) in &input.upstreams {
        if up.path_translation.is_some() && up.path_prefix.is_none() {
            return Err(ConfigError::new(
                format!("upstreams.{name}.path_prefix"),
                "required with path_translation",
            ));
        }
        if up.timeout_ms == Some(0) {
            return Err(ConfigError::new(
                format!("upstreams.{name}.timeout_ms"),
                "must be above 0",
            ));
        }
    }
    Ok(())
}

fn compile_policies(
    input: &GatewayInput,
    auth: &AuthConfig,
    default_slo: Option<&SloInput>,
    cors: Option<&crate::cors::Cors>,
) -> Result<HashMap<String, Policy>, ConfigError> {
    let mut out = HashMap::new();
    let mut names: Vec<&String> = input.policies.keys().collect();
    names.sort();
    // The SLO counters' `policy` label is the name as a word: two names must not share one,
    // nor take the label of the operations' own objectives.
    let mut labels: HashMap<String, &String> = HashMap::new();
    for name in &names {
        let label = crate::observe::policy_label(Some(name));
        if label == crate::observe::OWN_OBJECTIVE {
            return Err(ConfigError::new(
                format!("policies.{name}"),
                "`none` is reserved (the metrics' label for operations' own objectives)",
            ));
        }
        if let Some(other) = labels.insert(label.clone(), name) {
            return Err(ConfigError::new(
                format!("policies.{name}"),
                format!("its metric label `{label}` is also policy `{other}`'s: rename one"),
            ));
        }
    }
    for (id, name) in names.into_iter().enumerate() {
        let Some(p) = input.policies.get(name) else {
            continue;
        };
        let field = format!("policies.{name}");
        let requirement = p
            .auth
            .as_ref()
            .map(|r| auth.compile_requirement(r))
            .transpose()
            .map_err(|e| e.within(&format!("{field}.auth")))?;
        let slo = p
            .slo
            .as_ref()
            .map(|s| {
                Slo::compile_at(&[
                    (&format!("{field}.slo"), Some(s)),
                    ("observe.default_slo", default_slo),
                ])
            })
            .transpose()?;
        let tr = p.transcoding.as_ref();
        let policy_cors = match (&p.cors, cors) {
            (None, _) => None,
            (Some(pc), Some(c)) => Some(c.tighten(pc, &format!("{field}.cors"))?),
            (Some(_), None) => {
                return Err(ConfigError::new(
                    format!("{field}.cors"),
                    "there is no `cors` section for the policy to tighten",
                ))
            }
        };
        out.insert(
            name.clone(),
            Policy {
                name: name.clone(),
                id,
                auth: requirement,
                transcoding_enabled: tr.and_then(|t| t.enabled).unwrap_or(true),
                print_options: tr
                    .and_then(|t| t.print_options.as_ref())
                    .map(PrintOptions::from),
                slo,
                cors: policy_cors,
            },
        );
    }
    Ok(out)
}

fn compile_transcoding(t: &TranscodingInput) -> Result<Transcoding, ConfigError> {
    let url_unescape_spec = match t.url_unescape_spec.as_deref() {
        None => UrlUnescapeSpec::default(),
        Some(s) => UrlUnescapeSpec::parse(s).ok_or_else(|| {
            ConfigError::new(
                "transcoding.url_unescape_spec",
                format!("unknown value `{s}` (ALL_CHARACTERS_EXCEPT_RESERVED, ALL_CHARACTERS_EXCEPT_SLASH, ALL_CHARACTERS)"),
            )
        })?,
    };
    let stream_format = match t.stream_format.as_deref() {
        None => StreamFormat::JsonArray,
        Some(s) => s
            .parse::<StreamFormat>()
            .map_err(|e| ConfigError::new("transcoding.stream_format", e.to_string()))?,
    };
    let stream_timeout = crate::transcode::input::stream_timeout(
        t.stream_timeout_ms,
        "transcoding.stream_timeout_ms",
    )?
    .unwrap_or(crate::transcode::input::DEFAULT_STREAM_TIMEOUT);
    let upstream_calls = match t.upstream_calls.as_deref() {
        None => UpstreamCalls::default(),
        Some(s) => UpstreamCalls::parse(s).ok_or_else(|| {
            ConfigError::new(
                "transcoding.upstream_calls",
                format!("unknown value `{s}` (router, side_call)"),
            )
        })?,
    };
    Ok(Transcoding {
        print_options: PrintOptions::from(&t.print_options),
        ignore_unknown_query_parameters: t.ignore_unknown_query_parameters,
        ignored_query_parameters: t.ignored_query_parameters.clone(),
        query_param_unescape_plus: t.query_param_unescape_plus,
        url_unescape_spec,
        stream_format,
        stream_timeout,
        request_headers_to_metadata: lower(&t.request_headers_to_metadata),
        response_metadata_to_headers: lower(&t.response_metadata_to_headers),
        pass_through_unmatched: t.pass_through_unmatched,
        upstream_calls,
    })
}

fn lower(v: &[String]) -> Vec<String> {
    v.iter().map(|s| s.to_ascii_lowercase()).collect()
}

fn compile_limits(l: &LimitsInput) -> Limits {
    Limits {
        max_request_bytes: l
            .max_request_bytes
            .unwrap_or(Limits::DEFAULT_MAX_REQUEST_BYTES),
        max_response_bytes: l
            .max_response_bytes
            .unwrap_or(Limits::DEFAULT_MAX_RESPONSE_BYTES),
        max_json_depth: l.max_json_depth.unwrap_or(Limits::DEFAULT_MAX_JSON_DEPTH),
        max_header_bytes: l
            .max_header_bytes
            .unwrap_or(Limits::DEFAULT_MAX_HEADER_BYTES),
    }
}

/// Headers meshgate sets, so never a client's: the routing headers, the auth headers (and the
/// client certificate's identity), and the
/// original path and method of a transcoded (or rewritten REST) request. The rendered
/// `local_reply_config` tells transcoded requests by `x-envoy-original-method`; a native gRPC
/// client's copy would otherwise turn Envoy's gRPC answer into a JSON one.
fn owned_headers(routing: &Routing, auth: &AuthConfig) -> Vec<String> {
    let mut set: BTreeSet<String> = auth.headers_to_strip().into_iter().collect();
    set.insert(routing.upstream_header.clone());
    set.insert(routing.operation_header.clone());
    set.insert(routing.subject_header.clone());
    set.insert(crate::auth::client_cert::PRINCIPAL_HEADER.to_string());
    set.insert("x-envoy-original-path".to_string());
    set.insert("x-envoy-original-method".to_string());
    set.insert(crate::cors::CLIENT_CONTENT_TYPE_HEADER.to_string());
    set.into_iter().collect()
}
