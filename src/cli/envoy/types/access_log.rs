//! Access logs, their filters, and the local reply mappers (which use the same filters).

use serde::{Serialize, Serializer};

use super::{one_of, Any, NamedFilter};

/// `envoy.config.accesslog.v3.AccessLog`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessLog {
    pub name: String,
    pub filter: AccessLogFilter,
    pub typed_config: Any,
}

/// `envoy.config.accesslog.v3.AccessLogFilter`: the kinds meshgate uses.
#[derive(Debug, Clone, PartialEq)]
pub enum AccessLogFilter {
    StatusCodeFilter(StatusCodeFilter),
    ResponseFlagFilter(ResponseFlagFilter),
    ExtensionFilter(NamedFilter),
    AndFilter(FilterList),
    OrFilter(FilterList),
}

impl Serialize for AccessLogFilter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AccessLogFilter::StatusCodeFilter(v) => one_of(s, "status_code_filter", v),
            AccessLogFilter::ResponseFlagFilter(v) => one_of(s, "response_flag_filter", v),
            AccessLogFilter::ExtensionFilter(v) => one_of(s, "extension_filter", v),
            AccessLogFilter::AndFilter(v) => one_of(s, "and_filter", v),
            AccessLogFilter::OrFilter(v) => one_of(s, "or_filter", v),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusCodeFilter {
    pub comparison: ComparisonFilter,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseFlagFilter {
    pub flags: Vec<String>,
}

/// The filters of an `and_filter` or `or_filter`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterList {
    pub filters: Vec<AccessLogFilter>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonFilter {
    pub op: ComparisonOp,
    pub value: RuntimeUInt32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ComparisonOp {
    #[serde(rename = "EQ")]
    Eq,
    #[serde(rename = "GE")]
    Ge,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuntimeUInt32 {
    pub default_value: u16,
    pub runtime_key: String,
}

/// `envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpressionFilter {
    pub expression: String,
}

/// `envoy.extensions.access_loggers.file.v3.FileAccessLog`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileAccessLog {
    pub path: String,
    pub log_format: SubstitutionFormatString,
}

/// `config.core.v3.SubstitutionFormatString`: a text format, or a JSON one (then
/// `omit_empty_values` leaves out fields whose command has no value, instead of `null`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubstitutionFormatString {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_format_source: Option<InlineString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_format: Option<Box<super::RecordFormat>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub omit_empty_values: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InlineString {
    pub inline_string: String,
}

/// `...http_connection_manager.v3.LocalReplyConfig`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalReplyConfig {
    pub mappers: Vec<ResponseMapper>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseMapper {
    pub filter: AccessLogFilter,
    pub body_format_override: JsonBodyFormat,
}

/// A `SubstitutionFormatString` with a `json_format`: a `google.rpc.Status`-shaped body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JsonBodyFormat {
    pub json_format: StatusJson,
    pub content_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusJson {
    pub code: i32,
    pub message: String,
    /// `google.rpc.Status.details` (a `QuotaFailure` for a rate-limited reply).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<super::StatusDetail>,
}
