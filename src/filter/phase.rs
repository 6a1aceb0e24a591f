//! Where a request is: one enum that owns each phase's data, and what a callback asks of the
//! VM-wide scheduler.
//!
//! ```text
//! Headers ─┬─> AwaitKeys ─(keys)─> (authenticate again)
//!          ├─> AwaitBody ─(end of body)─┬─> Upstream (through Envoy's router)
//!          │      └─(NDJSON stream)─> StreamingBody ─(end of body)─> Upstream
//!          │                            └─> SideCall
//!          ├─> SideCall (body-less transcoded call, under Proxy-Wasm)
//!          ├─> Upstream (native gRPC, REST, pass-through; a body-less transcoded call with
//!          │             its frame appended where the proxy allows it: the native module)
//!          └─> Replied (refused, or answered by the gateway)
//! any ──on_log──> Logged
//! ```

use std::time::{Duration, SystemTime};

use crate::host::{Action, Headers};
use crate::status::GatewayError;

#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Before (and during) the request headers callback.
    Headers,
    /// Held until the keys of a remote JWKS arrive; the scheduler wakes it, or refuses it once
    /// `bound` has passed since `since`. `body_end`: the body's size once the whole request
    /// arrived meanwhile (0 for a request that ended with its headers).
    AwaitKeys {
        since: SystemTime,
        bound: Duration,
        body_end: Option<usize>,
    },
    /// A transcoded request waits for its body. With `upstream_calls: side_call` the request
    /// headers already went on, rewritten, and `side_call_headers` are the side call's.
    AwaitBody { side_call_headers: Option<Headers> },
    /// An NDJSON stream of request messages on its way through Envoy's router as it arrives
    /// (client and bidirectional streaming): the headers went on with the first chunk, each
    /// later chunk leaves as the messages of the lines it completes. `failed`: a line did not
    /// map; nothing more is forwarded (the reply carries the error).
    StreamingBody {
        body: crate::transcode::client_stream::NdjsonStream,
        failed: bool,
    },
    /// On its way through Envoy's router: the response callbacks see the reply.
    Upstream,
    /// A side call is out, sent at `sent` with its `timeout`: a call that ends without an
    /// answer after that long timed out (Envoy reports a timeout and a failure alike).
    SideCall { sent: SystemTime, timeout: Duration },
    /// The gateway answered the client itself: with an error of its own (`error`), or with a
    /// reply it converted from the upstream's.
    Replied { error: Option<GatewayError> },
    /// The access record is written; nothing more happens.
    Logged,
}

/// What the VM-wide [`Scheduler`](super::Scheduler) must do for a request after one of its
/// callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    Nothing,
    /// Paused until keys arrive (or the wait's bound passes): the root wakes it.
    WaitForKeys,
    /// Rendered stream bytes are held: the next tick releases them.
    Flush,
    /// An HTTP call left with this token: its reply belongs to this request, whichever
    /// context the proxy delivers it to.
    CallReply(u32),
}

/// A callback's result: what the proxy does with the stream, and what the scheduler does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    pub then: Then,
}
