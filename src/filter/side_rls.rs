//! The global rate limit (`auth.api_keys.global_rate_limit`) on requests that never reach
//! Envoy's `ratelimit` filter: before a side call of a configured client, meshgate asks the
//! Rate Limit Service itself, with the same v3 RLS request the filter makes (domain, and the
//! descriptor `(client, operation)`), as a gRPC call to the service's cluster. The side call
//! leaves only once the service says OK; `OVER_LIMIT` is answered as the filter's reply is
//! (429, a `Status` of code 8 with a `QuotaFailure`, the draft RateLimit headers and
//! `Retry-After` from the service's `duration_until_reset`); a service that cannot answer
//! (down, slower than `timeout_ms`, not gRPC) lets the call go (`failure_mode: allow`) or
//! refuses it with 503 UNAVAILABLE (`deny`).

use std::time::Duration;

use super::side_quota::{exhausted, Limited};
use super::{Filter, Phase};
use crate::host::{find_header, Host};
use crate::status::{Code, GatewayError};
use crate::transcode::{encode_frame, FrameDecoder};

const SHOULD_RATE_LIMIT: &str = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";
/// The service's reply is a few dozen bytes; anything far larger is not its reply.
const MAX_REPLY_BYTES: usize = 64 << 10;
const OVER_LIMIT: i32 = 2;
const OK: i32 = 1;

/// `envoy.service.ratelimit.v3.RateLimitRequest` (the fields meshgate sends).
#[derive(Clone, PartialEq, prost::Message)]
struct RateLimitRequest {
    #[prost(string, tag = "1")]
    domain: String,
    #[prost(message, repeated, tag = "2")]
    descriptors: Vec<Descriptor>,
}

/// `envoy.extensions.common.ratelimit.v3.RateLimitDescriptor`.
#[derive(Clone, PartialEq, prost::Message)]
struct Descriptor {
    #[prost(message, repeated, tag = "1")]
    entries: Vec<Entry>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Entry {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(string, tag = "2")]
    value: String,
}

/// `envoy.service.ratelimit.v3.RateLimitResponse` (the fields meshgate reads).
#[derive(Clone, PartialEq, prost::Message)]
struct RateLimitResponse {
    #[prost(int32, tag = "1")]
    overall_code: i32,
    #[prost(message, repeated, tag = "2")]
    statuses: Vec<DescriptorStatus>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct DescriptorStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(message, optional, tag = "2")]
    current_limit: Option<CurrentLimit>,
    #[prost(uint32, tag = "3")]
    limit_remaining: u32,
    #[prost(message, optional, tag = "4")]
    duration_until_reset: Option<ProtoDuration>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CurrentLimit {
    #[prost(uint32, tag = "1")]
    requests_per_unit: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// What the service's answer means for the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Allowed,
    OverLimit(Limited),
    /// No usable answer: the failure mode decides.
    Failed,
}

/// The verdict from the call's reply (`headers` empty: the call failed or timed out).
fn verdict(headers: &[(String, String)], body: &[u8], trailers: &[(String, String)]) -> Verdict {
    if headers.is_empty() || find_header(headers, ":status") != Some("200") {
        return Verdict::Failed;
    }
    let status =
        find_header(trailers, "grpc-status").or_else(|| find_header(headers, "grpc-status"));
    if status != Some("0") {
        return Verdict::Failed;
    }
    let mut frames = FrameDecoder::new(MAX_REPLY_BYTES);
    frames.push(body);
    let message = frames.next_message().ok().flatten().unwrap_or_default();
    let Ok(reply) = <RateLimitResponse as prost::Message>::decode(message.as_slice()) else {
        return Verdict::Failed;
    };
    match reply.overall_code {
        OK => Verdict::Allowed,
        OVER_LIMIT => {
            let over = reply.statuses.iter().find(|s| s.code == OVER_LIMIT);
            let reset_ms = over
                .and_then(|s| s.duration_until_reset.as_ref())
                .and_then(|d| u64::try_from(d.seconds).ok().map(|s| (s, d.nanos)))
                .map(|(s, n)| {
                    s.saturating_mul(1000) + u64::try_from(n.max(0)).unwrap_or(0) / 1_000_000
                });
            Verdict::OverLimit(Limited {
                limit: over
                    .and_then(|s| s.current_limit.as_ref())
                    .map(|l| l.requests_per_unit),
                remaining: over.map_or(0, |s| u64::from(s.limit_remaining)),
                reset_ms,
            })
        }
        _ => Verdict::Failed,
    }
}

impl Filter {
    /// Before a side call: ask the Rate Limit Service, when one is configured and the request
    /// is a configured client's. True: the question is out and `frame` waits for the answer
    /// (`on_rls_reply`); false: the side call may go now. A side call whose request headers
    /// already went through Envoy's `ratelimit` filter (`upstream_calls: side_call` with a
    /// body) was asked about there.
    pub(super) fn ask_rls(&mut self, host: &mut dyn Host, frame: &[u8]) -> bool {
        if matches!(
            self.phase,
            Phase::AwaitBody {
                side_call_headers: Some(_)
            }
        ) {
            return false;
        }
        let vm = self.vm.clone();
        let (Some(client), Some(op)) = (
            self.client.as_deref(),
            self.op.and_then(|i| vm.config.operations.get(i)),
        ) else {
            return false;
        };
        let Some(g) = vm
            .config
            .auth
            .api_keys
            .as_ref()
            .and_then(|k| k.global_rate_limit.as_ref())
        else {
            return false;
        };
        let entry = |key: &str, value: &str| Entry {
            key: key.into(),
            value: value.into(),
        };
        let request = RateLimitRequest {
            domain: g.domain.clone(),
            descriptors: vec![Descriptor {
                entries: vec![entry("client", client), entry("operation", &op.name)],
            }],
        };
        let headers: Vec<(String, String)> = [
            (":method", "POST"),
            (":path", SHOULD_RATE_LIMIT),
            (":authority", g.cluster.as_str()),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let body = encode_frame(&prost::Message::encode_to_vec(&request));
        let timeout = Duration::from_millis(g.timeout_ms);
        match host.http_call(&g.cluster, &headers, Some(&body), timeout) {
            Ok(token) => {
                self.call_token = Some(token);
                self.rls_frame = Some(frame.to_vec());
                self.phase = Phase::SideCall {
                    sent: host.now(),
                    timeout,
                };
                true
            }
            // Not even sent: the service is as good as down.
            Err(_) if g.deny_on_failure => {
                self.rls_frame = Some(Vec::new());
                self.rls_failed(host);
                true
            }
            Err(_) => false,
        }
    }

    /// A call reply belongs to the question to the service (not to the side call).
    pub(super) fn awaits_rls(&self) -> bool {
        self.rls_frame.is_some()
    }

    /// The service's answer (the call's reply, read here within a small bound): send the side
    /// call, or refuse the request.
    pub(super) fn on_rls_reply(&mut self, host: &mut dyn Host, num_headers: usize, size: usize) {
        let (headers, body, trailers) = if num_headers == 0 || size > MAX_REPLY_BYTES {
            (Vec::new(), Vec::new(), Vec::new())
        } else {
            (
                host.call_response_headers(),
                host.call_response_body(size).unwrap_or_default(),
                host.call_response_trailers(),
            )
        };
        match verdict(&headers, &body, &trailers) {
            Verdict::Allowed => self.send_held_side_call(host),
            Verdict::Failed => self.rls_failed(host),
            Verdict::OverLimit(l) => {
                self.rls_frame = None;
                let client = self.client.clone().unwrap_or_default();
                let op = self.operation_name().unwrap_or_default().to_string();
                self.reply_error(host, exhausted(&client, &op, l));
            }
        }
    }

    fn rls_failed(&mut self, host: &mut dyn Host) {
        let deny = self
            .vm
            .config
            .auth
            .api_keys
            .as_ref()
            .and_then(|k| k.global_rate_limit.as_ref())
            .is_some_and(|g| g.deny_on_failure);
        if deny {
            self.rls_frame = None;
            let err = GatewayError::new(Code::Unavailable, "rate limit service unavailable");
            self.reply_error(host, err);
        } else {
            self.send_held_side_call(host);
        }
    }

    fn send_held_side_call(&mut self, host: &mut dyn Host) {
        let frame = self.rls_frame.take().unwrap_or_default();
        self.phase = Phase::Headers;
        if let Err(err) = self.side_call(host, &frame) {
            self.reply_error(host, err);
        }
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

    fn reply(r: &RateLimitResponse) -> Vec<u8> {
        encode_frame(&prost::Message::encode_to_vec(r))
    }

    #[test]
    fn the_services_answer_decides() {
        let ok_headers = h(&[(":status", "200"), ("content-type", "application/grpc")]);
        let ok_trailers = h(&[("grpc-status", "0")]);
        let allowed = RateLimitResponse {
            overall_code: OK,
            statuses: vec![],
        };
        assert_eq!(
            verdict(&ok_headers, &reply(&allowed), &ok_trailers),
            Verdict::Allowed
        );
        let over = RateLimitResponse {
            overall_code: OVER_LIMIT,
            statuses: vec![DescriptorStatus {
                code: OVER_LIMIT,
                current_limit: Some(CurrentLimit {
                    requests_per_unit: 4,
                }),
                limit_remaining: 0,
                duration_until_reset: Some(ProtoDuration {
                    seconds: 41,
                    nanos: 500_000_000,
                }),
            }],
        };
        assert_eq!(
            verdict(&ok_headers, &reply(&over), &ok_trailers),
            Verdict::OverLimit(Limited {
                limit: Some(4),
                remaining: 0,
                reset_ms: Some(41_500)
            })
        );
        // No answer, a gRPC error, a plain HTTP error, garbage: the failure mode decides.
        assert_eq!(verdict(&[], &[], &[]), Verdict::Failed);
        let unavailable = h(&[("grpc-status", "14")]);
        assert_eq!(
            verdict(&ok_headers, &reply(&allowed), &unavailable),
            Verdict::Failed
        );
        assert_eq!(
            verdict(&h(&[(":status", "503")]), b"no", &[]),
            Verdict::Failed
        );
        assert_eq!(
            verdict(&ok_headers, b"\x00\x00\x00\x00\x09junk", &ok_trailers),
            Verdict::Failed
        );
    }
}
