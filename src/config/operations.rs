//! The operations of a configuration: each method the descriptors expose (gRPC path, http
//! bindings) and each plain-HTTP operation, with its upstream, auth requirement and objective.

use std::collections::HashMap;

use prost_reflect::DescriptorPool;

use super::compiled::*;
use super::input::*;
use super::ConfigError;
use crate::auth::{AuthConfig, Requirement};
use crate::observe::Slo;
use crate::operation::Matcher;
use crate::transcode::{binding_from_input, MethodRules, RequestPlan, ResponsePlan, StreamFormat};

pub(super) struct Builder<'a> {
    pub(super) input: &'a GatewayInput,
    pub(super) auth: &'a AuthConfig,
    pub(super) http: Matcher<HttpTarget>,
    pub(super) grpc_paths: HashMap<String, OpId>,
    pub(super) operations: Vec<Operation>,
    /// Proto bindings that cannot be served, left out (unless `transcoding.strict_bindings`).
    pub(super) skipped: Vec<SkippedBinding>,
}

impl Builder<'_> {
    /// Which services the gateway serves: those listed, or else every service with an http rule
    /// or a `services` entry.
    pub(super) fn exposed(&self, rules: &MethodRules) -> bool {
        let service = service_of(&rules.full_name);
        let listed = &self.input.descriptors.services;
        if !listed.is_empty() {
            return listed.iter().any(|s| s == service);
        }
        self.input.services.contains_key(service)
            || self.input.operations.contains_key(&rules.full_name)
            || !rules.bindings.is_empty()
    }

    pub(super) fn add_grpc_operation(
        &mut self,
        pool: &DescriptorPool,
        rules: MethodRules,
        default_slo: Option<&SloInput>,
    ) -> Result<(), ConfigError> {
        let name = rules.full_name.clone();
        let service = service_of(&name).to_string();
        let op_in = self.input.operations.get(&name);
        let svc_in = self.input.services.get(&service);
        let op_field = format!("operations.{name}");

        let method = method_descriptor(pool, &name)
            .ok_or_else(|| ConfigError::new(op_field.as_str(), "method not in descriptor set"))?;
        let mut http_bindings = rules.bindings.clone();
        for (i, extra) in op_in
            .map(|o| o.http.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            http_bindings.push(
                binding_from_input(extra)
                    .map_err(|m| ConfigError::new(format!("{op_field}.http[{i}]"), m))?,
            );
        }

        let id = self.operations.len();
        let strict = self.input.transcoding.strict_bindings;
        let mut bindings = Vec::with_capacity(http_bindings.len());
        for (i, hb) in http_bindings.iter().enumerate() {
            let field = format!("{name} binding {} {}", hb.method, hb.template);
            let target = HttpTarget {
                op: id,
                binding: bindings.len(),
            };
            let compiled = RequestPlan::compile(&method, hb).and_then(|request| {
                let response = ResponsePlan::compile(&method, hb.response_body.as_deref())?;
                self.http.insert(&hb.method, &hb.template, target)?;
                Ok((request, response))
            });
            let (request, response) = match compiled {
                Ok(plans) => plans,
                // A proto's binding meshgate cannot serve: left out, the rest is served. The
                // configuration's own bindings (`operations.<m>.http`) are always refused.
                Err(reason) if !strict && i < rules.bindings.len() => {
                    self.skipped.push(SkippedBinding {
                        operation: name.clone(),
                        method: hb.method.clone(),
                        template: hb.template.clone(),
                        reason,
                    });
                    continue;
                }
                Err(m) => return Err(ConfigError::new(format!("descriptors ({field})"), m)),
            };
            bindings.push(Binding {
                method: hb.method.clone(),
                template: hb.template.clone(),
                request,
                response,
            });
        }

        // The error names the layer that holds the upstream (or the service, whose name is
        // the upstream when no layer names one).
        let (upstream_name, upstream_field) = match (
            op_in.and_then(|o| o.upstream.clone()),
            svc_in.and_then(|s| s.upstream.clone()),
        ) {
            (Some(u), _) => (u, format!("{op_field}.upstream")),
            (None, Some(u)) => (u, format!("services.{service}.upstream")),
            (None, None) => (service.clone(), format!("services.{service}")),
        };
        let upstream = self.upstream(&upstream_name, &upstream_field)?;
        let auth = self.requirement(
            op_in.and_then(|o| o.auth.as_ref()),
            svc_in.and_then(|s| s.auth.as_ref()),
            &op_field,
        )?;
        // Each layer's own path, so an error names the layer that supplied the bad value.
        let slo = Slo::compile_at(&[
            (
                &format!("{op_field}.slo"),
                op_in.and_then(|o| o.slo.as_ref()),
            ),
            (
                &format!("services.{service}.slo"),
                svc_in.and_then(|s| s.slo.as_ref()),
            ),
            ("observe.default_slo", default_slo),
        ])?;

        let stream_format = stream_format(op_in, rules.server_streaming, &op_field)?;
        let stream_timeout = op_stream_timeout(op_in, rules.server_streaming, &op_field)?;
        self.grpc_paths.insert(rules.grpc_path.clone(), id);
        self.operations.push(Operation {
            name,
            service,
            upstream,
            auth,
            slo,
            kind: OpKind::Grpc {
                grpc_path: rules.grpc_path,
                client_streaming: rules.client_streaming,
                server_streaming: rules.server_streaming,
                bindings,
                stream_format,
                stream_timeout,
            },
        });
        Ok(())
    }

    pub(super) fn add_rest_operation(
        &mut self,
        rest: &HttpOperationInput,
        default_slo: Option<&SloInput>,
    ) -> Result<(), ConfigError> {
        if rest.name.is_empty() {
            return Err(ConfigError::new("name", "must not be empty"));
        }
        if rest.name == crate::observe::HEALTH_OPERATION {
            return Err(ConfigError::new(
                "name",
                "is reserved: the request counter's label of the gateway's health answers",
            ));
        }
        if rest.name == crate::observe::UNMATCHED_OPERATION {
            return Err(ConfigError::new(
                "name",
                "is reserved: the request counter's label of requests without an operation",
            ));
        }
        let id = self.operations.len();
        self.http
            .insert(&rest.method, &rest.path, HttpTarget { op: id, binding: 0 })
            .map_err(|m| ConfigError::new("path", m))?;
        let upstream = self.upstream(&rest.upstream, "upstream")?;
        let auth = self.requirement(rest.auth.as_ref(), None, "")?;
        let slo = Slo::compile_at(&[
            ("slo", rest.slo.as_ref()),
            ("observe.default_slo", default_slo),
        ])?;
        self.operations.push(Operation {
            name: rest.name.clone(),
            service: rest.upstream.clone(),
            upstream,
            auth,
            slo,
            kind: OpKind::Rest,
        });
        Ok(())
    }

    fn upstream(&self, name: &str, field: &str) -> Result<Upstream, ConfigError> {
        if name.is_empty() {
            return Err(ConfigError::new(field, "upstream must not be empty"));
        }
        let u = self.input.upstreams.get(name);
        if u.is_none() && !self.input.upstreams.is_empty() {
            return Err(ConfigError::new(
                field,
                format!("upstream `{name}` is not defined under `upstreams`"),
            ));
        }
        Ok(Upstream {
            name: name.to_string(),
            header_value: u
                .and_then(|u| u.header_value.clone())
                .unwrap_or_else(|| name.to_string()),
            path_translation: u.and_then(|u| u.path_translation),
            path_prefix: u.and_then(|u| u.path_prefix.clone()).unwrap_or_default(),
            timeout: std::time::Duration::from_millis(
                u.and_then(|u| u.timeout_ms)
                    .unwrap_or(Upstream::DEFAULT_TIMEOUT_MS),
            ),
        })
    }

    fn requirement(
        &self,
        op: Option<&RequirementInput>,
        svc: Option<&RequirementInput>,
        field: &str,
    ) -> Result<Requirement, ConfigError> {
        match op.or(svc) {
            Some(r) => self
                .auth
                .compile_requirement(r)
                .map_err(|e| e.within(&format!("{field}.auth"))),
            None => Ok(self.auth.default_requirement().clone()),
        }
    }
}

/// `operations.<m>.stream_format`: only server-streaming methods have one.
fn stream_format(
    op: Option<&OperationInput>,
    server_streaming: bool,
    op_field: &str,
) -> Result<Option<StreamFormat>, ConfigError> {
    let Some(text) = op.and_then(|o| o.stream_format.as_deref()) else {
        return Ok(None);
    };
    let field = format!("{op_field}.stream_format");
    if !server_streaming {
        return Err(ConfigError::new(
            field,
            "only a server-streaming method has a stream format",
        ));
    }
    text.parse::<StreamFormat>()
        .map(Some)
        .map_err(|e| ConfigError::new(field, e))
}

/// `operations.<m>.stream_timeout_ms`: only methods with a server stream have one.
fn op_stream_timeout(
    op: Option<&OperationInput>,
    server_streaming: bool,
    op_field: &str,
) -> Result<Option<std::time::Duration>, ConfigError> {
    let ms = op.and_then(|o| o.stream_timeout_ms);
    let field = format!("{op_field}.stream_timeout_ms");
    if ms.is_some() && !server_streaming {
        return Err(ConfigError::new(
            field,
            "only a server- or bidirectional-streaming method has a stream timeout",
        ));
    }
    crate::transcode::input::stream_timeout(ms, &field)
}

fn service_of(full_method: &str) -> &str {
    full_method
        .rsplit_once('.')
        .map(|(s, _)| s)
        .unwrap_or(full_method)
}

fn method_descriptor(
    pool: &DescriptorPool,
    full_name: &str,
) -> Option<prost_reflect::MethodDescriptor> {
    let (svc, m) = full_name.rsplit_once('.')?;
    pool.get_service_by_name(svc)?
        .methods()
        .find(|x| x.name() == m)
}
