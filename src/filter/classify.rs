//! Classification: what kind of request this is (native gRPC, transcoded HTTP, REST,
//! unmatched), checked against the header limit and the route's policy. Pure over the
//! request's headers and the configuration: no host call.

use super::{Filter, Mode, RequestInfo, RequestKind, Transcode};
use crate::config::{HttpTarget, OpKind};
use crate::host::find_header;
use crate::operation::split_path;
use crate::status::{BodyFormat, Code, GatewayError, LimitError, RequestError};
use crate::transcode::ResponseFormat;

impl RequestInfo {
    pub(super) fn from_headers(headers: Vec<(String, String)>) -> RequestInfo {
        let get = |n: &str| find_header(&headers, n).map(str::to_string);
        let method = get(":method").unwrap_or_default();
        RequestInfo {
            preflight: crate::cors::is_preflight(&method, &headers),
            grpc_web: crate::cors::is_grpc_web(&headers),
            method,
            path: get(":path").unwrap_or_default(),
            authority: get(":authority").unwrap_or_default(),
            scheme: get(":scheme").unwrap_or_default(),
            content_type: get("content-type").unwrap_or_default().to_ascii_lowercase(),
            accept: get("accept").unwrap_or_default().to_ascii_lowercase(),
            user_agent: get("user-agent"),
            request_id: get("x-request-id"),
            headers,
        }
    }
}

pub(super) fn is_grpc(content_type: &str) -> bool {
    content_type.starts_with("application/grpc")
        && !content_type.starts_with("application/grpc-web")
}

pub(super) fn is_protobuf(content_type: &str) -> bool {
    let ct = content_type.split(';').next().unwrap_or_default().trim();
    ct == "application/x-protobuf" || ct == "application/protobuf"
}

impl Filter {
    pub(super) fn check_header_size(&self) -> Option<GatewayError> {
        let limit = self.vm.config.limits.max_header_bytes;
        let size: usize = self
            .req
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        (size > limit).then(|| LimitError::RequestHeaders { limit }.into())
    }

    /// A route that names a policy the configuration lacks is a deployment mistake: refuse
    /// (fail closed) rather than silently run without the policy's requirements.
    pub(super) fn check_policy(&self) -> Option<GatewayError> {
        let name = self.policy.as_ref()?;
        if self.vm.config.policies.contains_key(name) {
            return None;
        }
        Some(GatewayError::new(
            Code::Internal,
            format!("the route selects policy `{name}`, which the gateway configuration does not define"),
        ))
    }

    pub(super) fn classify_grpc(&mut self) -> Result<(), GatewayError> {
        let cfg = &self.vm.config;
        let (path, _) = split_path(&self.req.path);
        match cfg.grpc_paths.get(path) {
            Some(&op) => {
                self.op = Some(op);
                self.mode = Mode::Grpc;
                Ok(())
            }
            None if cfg.transcoding.pass_through_unmatched => {
                self.mode = Mode::PassThrough;
                Ok(())
            }
            None => Err(RequestError::UnknownGrpcMethod {
                path: path.to_string(),
            }
            .into()),
        }
    }

    pub(super) fn classify_http(&mut self) -> Result<(), GatewayError> {
        let cfg = &self.vm.config;
        let (path, query) = split_path(&self.req.path);
        let found = cfg
            .http
            .lookup(&self.req.method, path, cfg.transcoding.url_unescape_spec);
        let m = match found {
            Some(Ok(m)) => m,
            Some(Err(e)) => return Err(RequestError::Invalid(e.to_string()).into()),
            None if cfg.transcoding.pass_through_unmatched => {
                self.mode = Mode::PassThrough;
                return Ok(());
            }
            None => {
                return Err(RequestError::NoOperation {
                    method: self.req.method.clone(),
                    path: path.to_string(),
                }
                .into())
            }
        };
        let HttpTarget { op, binding } = *m.value;
        self.op = Some(op);
        let operation = cfg.operations.get(op).ok_or_else(internal_error)?;
        self.mode = match &operation.kind {
            OpKind::Rest => Mode::Rest(m.bindings.clone()),
            OpKind::Grpc {
                server_streaming,
                bindings,
                ..
            } => {
                if self.policy().is_some_and(|p| !p.transcoding_enabled) {
                    return Err(RequestError::TranscodingOff.into());
                }
                let plan = bindings.get(binding).ok_or_else(internal_error)?;
                let request_kind = if plan.request.is_http_body() {
                    RequestKind::Raw
                } else if is_protobuf(&self.req.content_type) {
                    RequestKind::Protobuf
                } else {
                    RequestKind::Json
                };
                let response_format = if self.error_format == BodyFormat::Protobuf {
                    ResponseFormat::Protobuf
                } else {
                    ResponseFormat::Json
                };
                Mode::Transcode(Transcode {
                    binding,
                    bindings: m.bindings.clone(),
                    query: cfg
                        .auth
                        .query_without_tokens(query.unwrap_or_default())
                        .into_owned(),
                    request_kind,
                    response_format,
                    server_streaming: *server_streaming,
                })
            }
        };
        Ok(())
    }
}

pub(super) fn internal_error() -> GatewayError {
    GatewayError::new(Code::Internal, "gateway state error")
}
