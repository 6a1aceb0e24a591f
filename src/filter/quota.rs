//! Replies of Envoy's rate limit filters (`local_ratelimit`, `ratelimit`), which run after
//! meshgate: `meshgate envoy`'s local reply mapper has already made them a `google.rpc.Status`
//! of code 8 with a `QuotaFailure` and `Retry-After`, so meshgate lets them through as they are
//! instead of converting them like a router error (which would lose the detail and headers).

use super::{Filter, Mode};
use crate::host::{find_header, Host, Level, MapKind};
use crate::status::Code;

/// A 429 that a rate limit filter made: it carries the draft RateLimit headers
/// (`x-ratelimit-limit`, rendered on) or `x-envoy-ratelimited`.
pub(super) fn is_rate_limited(status: Option<u16>, headers: &[(String, String)]) -> bool {
    status == Some(429)
        && (find_header(headers, "x-ratelimit-limit").is_some()
            || find_header(headers, "x-envoy-ratelimited").is_some())
}

impl Filter {
    /// A rate limit filter's 429, for every kind of request: its code is RESOURCE_EXHAUSTED
    /// (the record's and the counters' outcome, the `Status` the reply mapper wrote), and it
    /// gets `Retry-After` from the draft `x-ratelimit-reset` (seconds until the bucket refills).
    pub(super) fn note_rate_limited(&mut self, host: &mut dyn Host, headers: &[(String, String)]) {
        if !is_rate_limited(self.resp.status, headers) {
            return;
        }
        self.resp.grpc_status = Some(Code::ResourceExhausted);
        if find_header(headers, "retry-after").is_some() {
            return;
        }
        let Some(reset) = find_header(headers, "x-ratelimit-reset") else {
            return;
        };
        if reset.is_empty() || !reset.bytes().all(|b| b.is_ascii_digit()) {
            return;
        }
        let reset = reset.to_string();
        if let Err(e) = host.set_header(MapKind::ResponseHeaders, "retry-after", Some(&reset)) {
            host.log(Level::Warn, &format!("meshgate: header retry-after: {e}"));
        }
    }

    /// A rate limit filter's reply to a transcoded request goes to the client untouched.
    pub(super) fn pass_rate_limited(&mut self, headers: &[(String, String)]) -> bool {
        let limited =
            matches!(self.mode, Mode::Transcode(_)) && is_rate_limited(self.resp.status, headers);
        if limited {
            self.mode = Mode::PassThrough;
        }
        limited
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_a_rate_limit_filters_429_is_recognised() {
        assert!(is_rate_limited(
            Some(429),
            &h(&[("x-ratelimit-limit", "5")])
        ));
        assert!(is_rate_limited(
            Some(429),
            &h(&[("x-envoy-ratelimited", "true")])
        ));
        assert!(!is_rate_limited(
            Some(429),
            &h(&[("content-type", "text/plain")])
        ));
        assert!(!is_rate_limited(
            Some(503),
            &h(&[("x-ratelimit-limit", "5")])
        ));
    }
}
