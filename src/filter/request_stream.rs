//! Client and bidirectional streaming through Envoy's router with an NDJSON body: the request
//! messages leave as their lines arrive, so the replies of a bidirectional call come back
//! while the client is still sending (`transcode::client_stream::NdjsonStream`). A JSON array
//! body, a side call, and a body that arrived whole while the request waited for keys are
//! converted whole at the body's end instead (`upstream::transcode_body`).

use super::classify::internal_error;
use super::upstream::host_failure;
use super::{Filter, Mode, Phase, RequestKind};
use crate::host::{Action, BodyKind, Host};
use crate::status::GatewayError;
use crate::transcode::client_stream::{NdjsonStream, StreamBody, StreamInputs};

impl Filter {
    /// One chunk of a streamed NDJSON request body: the messages of the lines it completes
    /// replace it, and it goes on at once (the first also releases the request headers,
    /// rewritten to the gRPC call's). None when the request is not streamed so.
    pub(super) fn stream_request_chunk(
        &mut self,
        host: &mut dyn Host,
        size: usize,
        eos: bool,
    ) -> Option<Action> {
        let starts = matches!(
            self.phase,
            Phase::AwaitBody {
                side_call_headers: None
            }
        ) && self.streams_request_body(host);
        let (mut body, failed) = match &mut self.phase {
            Phase::StreamingBody { body, failed } => (std::mem::take(body), *failed),
            _ if starts => (NdjsonStream::default(), false),
            _ => return None,
        };
        let chunk = if size > 0 {
            host.body(BodyKind::Request, 0, size).unwrap_or_default()
        } else {
            Vec::new()
        };
        let converted = match failed {
            true => Ok(Vec::new()),
            false => self.stream_frames(&mut body, &chunk, eos),
        };
        let (frames, failed) = match converted {
            Ok(frames) => (frames, failed),
            // Nothing went upstream yet: an ordinary error reply.
            Err(err) if starts => return Some(self.reply_error(host, err)),
            Err(err) => match self.fail_reply_stream(err) {
                None => (Vec::new(), true),
                Some(err) => return Some(self.reply_error(host, err)),
            },
        };
        if !(frames.is_empty() && chunk.is_empty()) {
            if let Err(e) = host.set_body(BodyKind::Request, &frames) {
                return Some(self.reply_error(host, host_failure(&e.to_string())));
            }
        }
        if starts {
            if let Err(err) = self.rewrite_grpc_headers(host) {
                return Some(self.reply_error(host, err));
            }
        }
        self.phase = match eos {
            true => Phase::Upstream,
            false => Phase::StreamingBody { body, failed },
        };
        Some(Action::Continue)
    }

    /// Whether this request's body is streamed line by line: a client- or bidirectional-
    /// streaming operation, an NDJSON JSON body, through the router.
    fn streams_request_body(&self, host: &dyn Host) -> bool {
        let Mode::Transcode(t) = &self.mode else {
            return false;
        };
        t.request_kind == RequestKind::Json
            && StreamBody::of(&self.req.content_type) == StreamBody::Ndjson
            && !self.side_calls_only(host)
            && self.client_streaming()
    }

    fn stream_frames(
        &self,
        body: &mut NdjsonStream,
        chunk: &[u8],
        eos: bool,
    ) -> Result<Vec<u8>, GatewayError> {
        let Mode::Transcode(t) = &self.mode else {
            return Err(internal_error());
        };
        let plan = self.binding_plan(t.binding).ok_or_else(internal_error)?;
        let query = self.request_query(t)?;
        let opts = self.request_options();
        let inputs = StreamInputs {
            plan: &plan.request,
            bindings: &t.bindings,
            query: &query,
            opts: &opts,
            max_line: self.vm.config.limits.max_request_bytes,
        };
        body.push(&inputs, chunk, eos)
    }

    /// A line that does not map once messages went upstream: a reply stream under way ends
    /// with the error in-band (its later messages are dropped); with no reply stream the
    /// error is answered (returned to the caller).
    fn fail_reply_stream(&mut self, err: GatewayError) -> Option<GatewayError> {
        (!self.fail_stream(err.clone())).then_some(err)
    }
}
