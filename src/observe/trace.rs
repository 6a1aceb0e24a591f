//! The trace a request belongs to, so its access record joins the trace in Cloud Logging and
//! Cloud Trace. W3C `traceparent` first (what Envoy's and OpenTelemetry's tracers send), Google's
//! `x-cloud-trace-context` otherwise (Google front ends and older clients).

use crate::host::find_header;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lower-case hex digits.
    pub trace_id: String,
    /// 16 lower-case hex digits (Cloud Logging's `spanId` form).
    pub span_id: Option<String>,
    pub sampled: Option<bool>,
}

/// The request's trace context; an invalid `traceparent` falls back to
/// `x-cloud-trace-context`, an invalid one of those gives `None`.
pub fn parse_trace(headers: &[(String, String)]) -> Option<TraceContext> {
    find_header(headers, "traceparent")
        .and_then(parse_traceparent)
        .or_else(|| find_header(headers, "x-cloud-trace-context").and_then(parse_cloud_trace))
}

/// W3C Trace Context: `version-traceid-parentid-flags`, lower-case hex. Version `ff` and
/// all-zero ids are invalid; a future version may append fields after a `-`.
pub fn parse_traceparent(value: &str) -> Option<TraceContext> {
    let value = value.trim();
    let mut parts = value.splitn(5, '-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let span_id = parts.next()?;
    let flags = parts.next()?;
    let rest = parts.next();
    if !is_lower_hex(version, 2) || version == "ff" || (version == "00" && rest.is_some()) {
        return None;
    }
    if !is_lower_hex(trace_id, 32) || !is_lower_hex(span_id, 16) || !is_lower_hex(flags, 2) {
        return None;
    }
    if is_zero(trace_id) || is_zero(span_id) {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(TraceContext {
        trace_id: trace_id.to_string(),
        span_id: Some(span_id.to_string()),
        sampled: Some(flags & 1 == 1),
    })
}

/// `TRACE_ID[/SPAN_ID][;o=OPTIONS]`: 32 hex digits, a decimal span id, `o=1` when sampled.
/// The span id becomes 16 hex digits, the form Cloud Logging's `spanId` takes.
pub fn parse_cloud_trace(value: &str) -> Option<TraceContext> {
    let value = value.trim();
    let (ids, options) = match value.split_once(';') {
        Some((ids, options)) => (ids, Some(options)),
        None => (value, None),
    };
    let (trace_id, span) = match ids.split_once('/') {
        Some((t, s)) => (t, Some(s)),
        None => (ids, None),
    };
    let trace_id = trace_id.to_ascii_lowercase();
    if !is_lower_hex(&trace_id, 32) || is_zero(&trace_id) {
        return None;
    }
    let span_id = span
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| *s != 0)
        .map(|s| format!("{s:016x}"));
    let sampled = options
        .and_then(|o| o.trim().strip_prefix("o="))
        .and_then(|o| o.parse::<u8>().ok())
        .map(|o| o & 1 == 1);
    Some(TraceContext {
        trace_id,
        span_id,
        sampled,
    })
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_zero(s: &str) -> bool {
    s.bytes().all(|b| b == b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn valid_traceparent_is_parsed() {
        let t = parse_trace(&h(&[("traceparent", TP)])).unwrap();
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.span_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_eq!(t.sampled, Some(true));
    }

    #[test]
    fn unsampled_flag_is_read() {
        let t = parse_traceparent(&TP.replace("-01", "-00")).unwrap();
        assert_eq!(t.sampled, Some(false));
    }

    #[test]
    fn malformed_traceparents_are_rejected() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }

    #[test]
    fn future_version_may_carry_more_fields() {
        let t = parse_traceparent(&format!("01{}-more", &TP[2..])).unwrap();
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn cloud_trace_context_span_becomes_hex() {
        let t = parse_trace(&h(&[(
            "x-cloud-trace-context",
            "105445aa7843bc8bf206b12000100000/1;o=1",
        )]))
        .unwrap();
        assert_eq!(t.trace_id, "105445aa7843bc8bf206b12000100000");
        assert_eq!(t.span_id.as_deref(), Some("0000000000000001"));
        assert_eq!(t.sampled, Some(true));
        let t =
            parse_cloud_trace("105445AA7843BC8BF206B12000100000/18446744073709551615;o=0").unwrap();
        assert_eq!(t.trace_id, "105445aa7843bc8bf206b12000100000");
        assert_eq!(t.span_id.as_deref(), Some("ffffffffffffffff"));
        assert_eq!(t.sampled, Some(false));
    }

    #[test]
    fn cloud_trace_without_span_or_options_keeps_the_trace() {
        let t = parse_cloud_trace("105445aa7843bc8bf206b12000100000").unwrap();
        assert_eq!(t.span_id, None);
        assert_eq!(t.sampled, None);
    }

    #[test]
    fn invalid_traceparent_falls_back_to_cloud_trace() {
        let t = parse_trace(&h(&[
            ("traceparent", "garbage"),
            (
                "x-cloud-trace-context",
                "105445aa7843bc8bf206b12000100000/7",
            ),
        ]))
        .unwrap();
        assert_eq!(t.span_id.as_deref(), Some("0000000000000007"));
    }

    #[test]
    fn traceparent_wins_over_cloud_trace() {
        let t = parse_trace(&h(&[
            (
                "x-cloud-trace-context",
                "105445aa7843bc8bf206b12000100000/7",
            ),
            ("traceparent", TP),
        ]))
        .unwrap();
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn no_or_bad_headers_give_none() {
        assert_eq!(parse_trace(&h(&[])), None);
        assert_eq!(
            parse_trace(&h(&[("x-cloud-trace-context", "not-a-trace/1;o=1")])),
            None
        );
    }
}
