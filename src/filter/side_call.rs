//! The reply of a side call (a body-less transcoded request's, or any transcoded call's with
//! `upstream_calls: side_call`): it comes back whole, is read by the scheduler only within
//! `limits.max_response_bytes`, and always leaves as a local reply.

use super::{Filter, Phase};
use crate::host::{find_header, Host};
use crate::status::{Code, LimitError, UpstreamError};
use crate::transcode;

impl Filter {
    /// The reply of a body-less request's side call (see `request::side_call`): all of it at
    /// once. `headers` and `trailers` are the upstream's; `status` None means the call failed.
    pub fn on_side_call_response(
        &mut self,
        host: &mut dyn Host,
        headers: &[(String, String)],
        body: &[u8],
        trailers: &[(String, String)],
    ) {
        let status = find_header(headers, ":status").and_then(|s| s.parse().ok());
        let grpc = find_header(trailers, "grpc-status").or(find_header(headers, "grpc-status"));
        self.end_call_span(host, status, grpc);
        // Already answered: Envoy's router reply to the stream the headers opened came first
        // (`upstream_calls: side_call`), or the gateway refused the request meanwhile.
        if self.replied() {
            return;
        }
        self.note_response_headers(headers);
        self.note_forwarded(trailers);
        if headers.is_empty() {
            let err = self
                .side_call_timeout(host)
                .unwrap_or_else(|| UpstreamError::Unavailable("upstream did not answer".into()));
            self.reply_error(host, err.into());
            return;
        }
        if !self.resp.grpc {
            let ct = self.resp.content_type.clone();
            let err = transcode::error_from_http(self.resp.status.unwrap_or(502), body, Some(&ct));
            self.reply_error(host, err);
            return;
        }
        let status_map = if find_header(trailers, "grpc-status").is_some() {
            trailers
        } else {
            headers
        };
        self.log_ignored_details(host, status_map);
        let code = find_header(status_map, "grpc-status")
            .unwrap_or_default()
            .to_string();
        if let Ok(c) = code.parse::<i32>() {
            self.resp.grpc_status = Some(Code::from_i32(c));
        }
        // Envoy ends a side call that runs out of time with its own UNAVAILABLE ("upstream
        // request timeout"); the client gets what the router gives a route timeout.
        if self.resp.grpc_status == Some(Code::Unavailable) {
            if let Some(err) = self.side_call_timeout(host) {
                self.reply_error(host, err.into());
                return;
            }
        }
        if self.is_stream_reply() {
            self.stream_whole(host, status_map, &code, body);
            return;
        }
        // A side call's answer always leaves as a local reply.
        match self.render(status_map, &code, body) {
            Ok((bytes, content_type)) => {
                self.send_rendered(host, &bytes, &content_type);
            }
            Err(err) => {
                self.reply_error(host, err);
            }
        }
    }

    /// A side call's reply whose body is over `limits.max_response_bytes`: refused unread, as
    /// an oversized reply through the router is.
    pub(super) fn on_side_call_too_large(&mut self, host: &mut dyn Host) {
        self.end_call_span(host, None, None);
        if self.replied() {
            return;
        }
        let limit = self.vm.config.limits.max_response_bytes;
        self.reply_error(host, LimitError::Response { limit }.into());
    }

    /// The error for a side call that failed once its time was up: a timeout (504
    /// DEADLINE_EXCEEDED, as Envoy's router answers a route timeout). None when it ended sooner.
    fn side_call_timeout(&self, host: &dyn Host) -> Option<UpstreamError> {
        let Phase::SideCall { sent, timeout } = self.phase else {
            return None;
        };
        let waited = host.now().duration_since(sent).ok()?;
        // Envoy's timer may fire a little early against the VM's clock.
        let ms = timeout.as_millis();
        (waited + std::time::Duration::from_millis(20) >= timeout)
            .then_some(UpstreamError::Timeout { ms })
    }
}
