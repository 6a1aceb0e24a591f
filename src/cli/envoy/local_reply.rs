//! The connection manager's `local_reply_config`: Envoy's own error replies as
//! `google.rpc.Status` JSON.

use super::types::{
    AccessLogFilter, Any, ComparisonFilter, ComparisonOp, ExpressionFilter, FilterList,
    JsonBodyFormat, LocalReplyConfig, NamedFilter, ResponseFlagFilter, ResponseMapper,
    RuntimeUInt32, StatusCodeFilter, StatusJson,
};
use crate::status::Code;

/// The HCM's `local_reply_config`: replies Envoy makes itself (router and codec errors) that
/// no filter turns into a `google.rpc.Status` get one, as JSON with the gRPC code of their
/// status (`{"code": 14, "message": "upstream connect error ..."}`). Untouched:
/// - meshgate's own replies (no router failure flag; their code details are `meshgate`), and
///   any other filter's;
/// - native gRPC clients (`content-type: application/grpc` and no `x-envoy-original-method`):
///   Envoy already answers them trailers-only with `grpc-status`;
/// - transcoded requests (meshgate sets `x-envoy-original-method` when it rewrites one for
///   the router): meshgate converts Envoy's errors itself while it can, so only the replies
///   Envoy sends past it are mapped here: an upstream reset after the response headers, which
///   meshgate holds, is answered directly, bypassing every filter.
///
/// `meshgate envoy` renders it into the bootstrap; `meshgate istio` into an EnvoyFilter.
pub fn local_reply_config() -> LocalReplyConfig {
    // One mapper per gRPC code, matching its statuses.
    let mut groups: Vec<(Code, Vec<AccessLogFilter>)> = Vec::new();
    for status in ENVOY_REPLY_STATUSES {
        let code = envoy_reply_code(status);
        let filter = status_filter(ComparisonOp::Eq, status);
        match groups.iter_mut().find(|(c, _)| *c == code) {
            Some((_, filters)) => filters.push(filter),
            None => groups.push((code, vec![filter])),
        }
    }
    let mut mappers: Vec<ResponseMapper> = groups
        .into_iter()
        .map(|(code, filters)| {
            let statuses = match <[AccessLogFilter; 1]>::try_from(filters) {
                Ok([one]) => one,
                Err(filters) => AccessLogFilter::OrFilter(FilterList { filters }),
            };
            reply_mapper(statuses, code)
        })
        .collect();
    // The filter's VM failed (a trap): first, with its own message.
    mappers.insert(0, wasm_failure_mapper());
    // Any other error status Envoy makes: UNKNOWN, but still a Status.
    mappers.push(reply_mapper(
        status_filter(ComparisonOp::Ge, 400),
        Code::Unknown,
    ));
    LocalReplyConfig { mappers }
}

/// The statuses of Envoy's own error replies that get their own gRPC code.
const ENVOY_REPLY_STATUSES: [u16; 9] = [400, 404, 408, 413, 431, 500, 502, 503, 504];

/// Response flags of the router's failures (`%RESPONSE_FLAGS%` short names): replies Envoy
/// makes itself, never a filter's.
const ROUTER_FAILURE_FLAGS: [&str; 13] = [
    "UH", "UF", "UO", "NR", "NC", "URX", "UT", "UR", "UC", "UPE", "UMSDR", "DF", "OM",
];

/// The overload manager's `stop_accepting_requests` refused the request (a 503 made before
/// any filter ran). Its response flag, `OL`, is not one an access log flag filter accepts.
const OVERLOAD: &str = "response.code_details == 'overload'";

/// A codec refused the request (too large or malformed headers): its details name the codec
/// (`http1.headers_too_large`). Its flag (`DPE`) is set only after the reply is made.
const CODEC_ERROR: &str = "response.code_details.startsWith('http1.') || \
     response.code_details.startsWith('http2.') || \
     response.code_details.startsWith('http3.')";

/// A transcoded request: meshgate rewrote it for the router and set this header. (CEL: unlike a
/// header filter, it also sees requests without headers.)
pub(super) const TRANSCODED: &str = "'x-envoy-original-method' in request.headers";

/// The router reset the stream after the upstream's response headers (which meshgate holds
/// on a transcoded request): Envoy answers past the filters.
const RESET_AFTER_HEADERS: &str =
    "response.code_details.startsWith('upstream_reset_after_response_started')";

/// Not meshgate's own reply, neither transcoded (meshgate converts those) nor native gRPC
/// (Envoy answers those with `grpc-status`). True for a request Envoy refused before reading
/// its headers.
const PLAIN_HTTP: &str = "response.code_details != 'meshgate' && \
     !('x-envoy-original-method' in request.headers) && \
     !('content-type' in request.headers && \
       request.headers['content-type'].startsWith('application/grpc'))";

/// The gRPC code of an Envoy reply's status: the standard mapping, except where the reply
/// says more (a malformed request, no route, a limit, an internal error) -- the codes
/// meshgate itself uses for the same statuses.
pub fn envoy_reply_code(status: u16) -> Code {
    match status {
        400 => Code::InvalidArgument,
        404 => Code::NotFound,
        413 | 431 => Code::ResourceExhausted,
        500 => Code::Internal,
        other => Code::from_http_status(other),
    }
}

/// An access log `status_code_filter`; the runtime key is required.
fn status_filter(op: ComparisonOp, status: u16) -> AccessLogFilter {
    AccessLogFilter::StatusCodeFilter(StatusCodeFilter {
        comparison: ComparisonFilter {
            op,
            value: RuntimeUInt32 {
                default_value: status,
                runtime_key: format!("meshgate.local_reply.status_{status}"),
            },
        },
    })
}

/// A CEL access log filter.
pub fn cel_filter(expression: &str) -> AccessLogFilter {
    AccessLogFilter::ExtensionFilter(NamedFilter {
        name: "envoy.access_loggers.extension_filters.cel".into(),
        typed_config: Any::ExpressionFilter(ExpressionFilter {
            expression: expression.to_string(),
        }),
    })
}

fn router_failure() -> AccessLogFilter {
    AccessLogFilter::ResponseFlagFilter(ResponseFlagFilter {
        flags: ROUTER_FAILURE_FLAGS.iter().map(|f| f.to_string()).collect(),
    })
}

/// Which local replies are mapped (see [`local_reply_config`]).
fn envoy_made_reply() -> AccessLogFilter {
    use AccessLogFilter::{AndFilter, OrFilter};
    let list = |filters: Vec<AccessLogFilter>| FilterList { filters };
    OrFilter(list(vec![
        // Every router failure of a transcoded request: those past the filters (a reset or a
        // timeout after the response headers, which meshgate holds) could not be converted
        // otherwise; meshgate adopts the Status of those that reach it.
        AndFilter(list(vec![
            cel_filter(TRANSCODED),
            OrFilter(list(vec![
                router_failure(),
                cel_filter(RESET_AFTER_HEADERS),
            ])),
        ])),
        AndFilter(list(vec![
            OrFilter(list(vec![
                router_failure(),
                cel_filter(OVERLOAD),
                cel_filter(CODEC_ERROR),
            ])),
            cel_filter(PLAIN_HTTP),
        ])),
    ]))
}

/// Envoy's reply when meshgate's VM failed during the request (`wasm_fail_stream`: a 503
/// with an empty body) becomes a `google.rpc.Status` too, UNAVAILABLE, for every client but
/// native gRPC (Envoy answers those with `grpc-status: 14` itself).
/// (A transcoded request's headers say gRPC once meshgate rewrote them: `TRANSCODED` tells.)
const WASM_FAILED: &str = "response.code_details == 'wasm_fail_stream' && \
     (!('content-type' in request.headers && \
        request.headers['content-type'].startsWith('application/grpc')) || \
      'x-envoy-original-method' in request.headers)";

fn wasm_failure_mapper() -> ResponseMapper {
    ResponseMapper {
        filter: cel_filter(WASM_FAILED),
        body_format_override: JsonBodyFormat {
            json_format: StatusJson {
                code: Code::Unavailable.as_i32(),
                message: "the gateway's filter failed on this request".into(),
                details: Vec::new(),
            },
            content_type: "application/json".into(),
        },
    }
}

fn reply_mapper(statuses: AccessLogFilter, code: Code) -> ResponseMapper {
    ResponseMapper {
        filter: AccessLogFilter::AndFilter(FilterList {
            filters: vec![statuses, envoy_made_reply()],
        }),
        body_format_override: JsonBodyFormat {
            json_format: StatusJson {
                code: code.as_i32(),
                message: "%LOCAL_REPLY_BODY%".into(),
                details: Vec::new(),
            },
            content_type: "application/json".into(),
        },
    }
}
