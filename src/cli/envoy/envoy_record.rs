//! The access record Envoy writes for a request meshgate did not record: the filter trapped
//! (its VM failed, so its log callback never ran), the request was in flight on a VM that
//! failed, or a route switched the filter off. Same JSON shape as meshgate's own record (one
//! parser for every line), from Envoy's own fields, with `"recordedBy": "envoy"` (meshgate's
//! say `"meshgate"`) and the operation when meshgate named it before it failed (filter state
//! `wasm.meshgate.operation`).
//!
//! Decisions (docs/observability.md, "Records Envoy writes"):
//! - written only when the request has no meshgate record (the CEL filter below), so every
//!   request has exactly one line;
//! - `httpRequest.status` is 499 and `outcome` `cancelled` when the client went away first, as
//!   in meshgate's records; `outcome` is otherwise the gRPC code name of a gRPC exchange,
//!   `unavailable` for the 503 of a failed VM (as meshgate counts it), else the HTTP class;
//! - `slo.availability` is `bad` for a 5xx (or a gRPC exchange ending in one of the default
//!   error codes): the gateway failed the request, whatever the operation; `n/a` otherwise.
//!   `slo.latency` is always `n/a` (no objective is known here);
//! - `requestUrl` has no query (no token in a `?access_token=` can reach the log: meshgate
//!   redacts those, Envoy cannot); latency has millisecond precision (`"0.012s"`).
//!
//! Envoy's CEL runs without string conversion or concatenation (its defaults), so numbers are
//! printed by the format string itself and choices are made with conditionals.

use super::local_reply::cel_filter;
use super::types::{
    AccessLog, Any, FileAccessLog, HttpRequestFormat, RecordFormat, SloFormat,
    SubstitutionFormatString,
};
use crate::observe::DEFAULT_ERROR_CODES;
use crate::status::Code;

/// Requests without meshgate's record (the complement of `RECORD_LOG_FILTER`).
pub const NO_RECORD_FILTER: &str = "!('wasm.meshgate.record' in filter_state)";

/// The client went away before the whole answer: no status sent, or the stream ended on the
/// client's disconnect or reset.
const GONE: &str = "(response.code == 0 || response.code_details.startsWith('downstream_remote'))";

/// A 503 for a failed VM: Envoy's (`wasm_fail_stream`, the trapping request) or meshgate's own,
/// made while trapping for a request in flight (a meshgate reply only lacks meshgate's record
/// then). Both are UNAVAILABLE `google.rpc.Status` answers, counted as `unavailable`.
const VM_FAILED: &str = "(response.code == 503 && \
     response.code_details in ['wasm_fail_stream', 'meshgate'])";

/// The client speaks gRPC (native; also gRPC-Web and friends by prefix). A transcoded
/// request's headers say gRPC once meshgate rewrote them for the router; meshgate marks those
/// with `x-envoy-original-method`.
const GRPC: &str = "('content-type' in request.headers && \
     request.headers['content-type'].startsWith('application/grpc') && \
     !('x-envoy-original-method' in request.headers))";

/// The 17 gRPC code names in number order, as a CEL list literal (`upper`: `OK`; else `ok`).
fn code_names(upper: bool) -> String {
    let names: Vec<String> = (0..17)
        .map(|n| {
            let name = Code::from_i32(n).name();
            if upper {
                format!("'{name}'")
            } else {
                format!("'{}'", name.to_ascii_lowercase())
            }
        })
        .collect();
    format!("[{}]", names.join(","))
}

/// The status the record writes.
fn status() -> String {
    format!("({GONE} ? 499 : response.code)")
}

/// A gRPC exchange that ended in one of the default error codes.
fn grpc_failed() -> String {
    let codes: Vec<String> = DEFAULT_ERROR_CODES
        .iter()
        .map(|c| c.as_i32().to_string())
        .collect();
    format!("({GRPC} && response.grpc_status in [{}])", codes.join(","))
}

/// `"12.345s"` from the request's duration, millisecond precision, without CEL strings.
fn latency() -> String {
    let ms = "request.duration.getMilliseconds() % 1000";
    format!(
        "%CEL(request.duration.getSeconds())%.\
         %CEL({ms} < 10 ? '00' : {ms} < 100 ? '0' : '')%%CEL({ms})%s"
    )
}

fn url() -> String {
    "%REQ(:SCHEME)%://%REQ(:AUTHORITY)%%CEL(request.url_path)%".into()
}

/// The record's fields as Envoy command strings.
pub fn record_format() -> RecordFormat {
    let status = status();
    let failed = grpc_failed();
    let class = "(response.code >= 500 ? '5xx' : response.code >= 400 ? '4xx' : \
                 response.code >= 300 ? '3xx' : response.code >= 200 ? '2xx' : '1xx')";
    // An expression that has no value (a header no request carries): the field is left out.
    let absent = "request.headers['x-meshgate-absent-field']";
    RecordFormat {
        recorded_by: "envoy".into(),
        severity: format!(
            "%CEL({status} >= 500 || {failed} ? 'ERROR' : \
             {status} >= 400 || ({GRPC} && response.grpc_status != 0) ? 'WARNING' : 'INFO')%"
        ),
        message: format!(
            "%REQ(:METHOD)% {} %TYPED_CEL({status})% \
             %FILTER_STATE(wasm.meshgate.operation:PLAIN)% {}",
            url(),
            latency()
        ),
        http_request: HttpRequestFormat {
            request_method: "%REQ(:METHOD)%".into(),
            request_url: url(),
            status: format!("%TYPED_CEL({status})%"),
            request_size: "%CEL(request.total_size)%".into(),
            response_size: "%CEL(response.total_size)%".into(),
            user_agent: "%REQ(user-agent)%".into(),
            remote_ip: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%".into(),
            protocol: "%PROTOCOL%".into(),
            latency: latency(),
        },
        request_id: "%REQ(x-request-id)%".into(),
        operation: "%FILTER_STATE(wasm.meshgate.operation:PLAIN)%".into(),
        upstream: "%FILTER_STATE(wasm.meshgate.upstream:PLAIN)%".into(),
        grpc_status: format!(
            "%CEL({GONE} ? 'CANCELLED' : {VM_FAILED} ? 'UNAVAILABLE' : \
             {GRPC} ? {}[response.grpc_status] : {absent})%",
            code_names(true)
        ),
        outcome: format!(
            "%CEL({GONE} ? 'cancelled' : {VM_FAILED} ? 'unavailable' : \
             {GRPC} ? {}[response.grpc_status] : {class})%",
            code_names(false)
        ),
        slo: SloFormat {
            availability: format!(
                "%CEL(!{GONE} && (response.code >= 500 || {failed}) ? 'bad' : 'n/a')%"
            ),
            latency: "n/a".into(),
        },
    }
}

/// The access log entry: to `path` (the same file as meshgate's records), only for requests
/// without one.
pub fn access_log(path: &str) -> AccessLog {
    AccessLog {
        name: "envoy.access_loggers.file".into(),
        filter: cel_filter(NO_RECORD_FILTER),
        typed_config: Any::FileAccessLog(FileAccessLog {
            path: path.to_string(),
            log_format: SubstitutionFormatString {
                text_format_source: None,
                json_format: Some(Box::new(record_format())),
                omit_empty_values: true,
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envoy_record_has_the_record_fields_and_says_who_wrote_it() {
        let v = serde_json::to_value(record_format()).unwrap_or_default();
        assert_eq!(v["recordedBy"], "envoy");
        for key in [
            "severity",
            "message",
            "requestId",
            "operation",
            "upstream",
            "grpcStatus",
            "outcome",
        ] {
            assert!(v[key].is_string(), "{key}");
        }
        for key in [
            "requestMethod",
            "requestUrl",
            "status",
            "latency",
            "remoteIp",
        ] {
            assert!(v["httpRequest"][key].is_string(), "{key}");
        }
        assert_eq!(v["slo"]["latency"], "n/a");
    }

    #[test]
    fn code_lists_follow_the_code_numbers() {
        let upper = code_names(true);
        assert!(upper.starts_with("['OK','CANCELLED','UNKNOWN',"), "{upper}");
        assert!(upper.ends_with(",'UNAUTHENTICATED']"), "{upper}");
        assert!(code_names(false).contains("'unavailable'"));
        // Transcoded requests (headers rewritten to gRPC by meshgate) are not gRPC clients.
        assert!(GRPC.contains("!('x-envoy-original-method' in request.headers)"));
        // UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, DATA_LOSS.
        assert!(
            grpc_failed().contains("[14,4,13,2,15]"),
            "{}",
            grpc_failed()
        );
    }

    #[test]
    fn no_cel_string_conversion_or_concatenation() {
        // Envoy's CEL refuses `string()` and `+` on strings by default.
        let json = serde_json::to_string(&record_format()).unwrap_or_default();
        assert!(!json.contains("string("));
        assert!(!json.contains("' +") && !json.contains("+ '"));
    }
}
