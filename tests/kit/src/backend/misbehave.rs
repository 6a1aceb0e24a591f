//! Deliberately broken gRPC responses for reliability tests, chosen per request by the
//! `x-demo-misbehave` metadata. Each is a scripted HTTP/2 response body: the gateway must turn
//! every one into a clean error, never a hang, a trap or an empty success.
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body::Frame;

/// What the backend does wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehave {
    /// A well-formed frame whose message is not valid protobuf, then `grpc-status: 0`.
    BadFrame,
    /// Three bytes of a five-byte frame prefix, then `grpc-status: 0`.
    Truncated,
    /// Headers and half a frame, then RST_STREAM (INTERNAL_ERROR) instead of trailers.
    Reset,
    /// Headers and half a frame, then silence for [`STALL`] (longer than any test's route
    /// timeout), then a reset: a backend that hangs after it started answering.
    Stall,
    /// A frame with the compressed flag set although no `grpc-encoding` was negotiated.
    Compressed,
    /// A prefix declaring 16 MiB followed by 16 bytes, then `grpc-status: 0`.
    Huge,
    /// A valid (empty) message frame and end of stream without any trailers.
    NoTrailers,
}

impl FromStr for Misbehave {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "bad-frame" => Ok(Misbehave::BadFrame),
            "truncated" => Ok(Misbehave::Truncated),
            "reset" => Ok(Misbehave::Reset),
            "stall" => Ok(Misbehave::Stall),
            "compressed" => Ok(Misbehave::Compressed),
            "huge" => Ok(Misbehave::Huge),
            "no-trailers" => Ok(Misbehave::NoTrailers),
            other => Err(format!(
                "x-demo-misbehave: unknown mode {other:?} (bad-frame, truncated, reset, stall, compressed, huge, no-trailers)"
            )),
        }
    }
}

/// How long a [`Misbehave::Stall`] reply stays silent after its first bytes.
pub const STALL: Duration = Duration::from_secs(20);

/// One step of a scripted body.
#[derive(Debug)]
enum Step {
    Data(Bytes),
    Trailers(HeaderMap),
    Pause(Duration),
    Reset,
}

/// A response body that plays a fixed script of frames, pauses and a final reset.
pub struct ScriptBody {
    steps: VecDeque<Step>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Misbehave {
    /// The scripted body for this misbehaviour.
    pub fn body(self) -> ScriptBody {
        let steps = match self {
            Misbehave::BadFrame => vec![Step::Data(frame(0, &[0xff; 6])), ok_trailers()],
            Misbehave::Truncated => vec![Step::Data(Bytes::from_static(&[0, 0, 0])), ok_trailers()],
            Misbehave::Reset => vec![
                Step::Data(prefix(0, 64).into_iter().chain([0x0a, 0x03]).collect()),
                Step::Pause(Duration::from_millis(20)),
                Step::Reset,
            ],
            Misbehave::Stall => vec![
                Step::Data(prefix(0, 64).into_iter().chain([0x0a, 0x03]).collect()),
                Step::Pause(STALL),
                Step::Reset,
            ],
            Misbehave::Compressed => vec![Step::Data(frame(1, b"\x0a\x03abc")), ok_trailers()],
            Misbehave::Huge => vec![
                Step::Data(prefix(0, 16 << 20).into_iter().chain([0u8; 16]).collect()),
                ok_trailers(),
            ],
            Misbehave::NoTrailers => vec![Step::Data(frame(0, &[]))],
        };
        ScriptBody {
            steps: steps.into(),
            sleep: None,
        }
    }
}

/// The five-byte gRPC frame prefix: flag, then big-endian length.
fn prefix(flag: u8, len: u32) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend_from_slice(&len.to_be_bytes());
    out
}

/// A whole gRPC frame.
fn frame(flag: u8, msg: &[u8]) -> Bytes {
    let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
    let mut out = prefix(flag, len);
    out.extend_from_slice(msg);
    out.into()
}

fn ok_trailers() -> Step {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    Step::Trailers(trailers)
}

impl http_body::Body for ScriptBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        loop {
            if let Some(sleep) = self.sleep.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.sleep = None;
            }
            let frame = match self.steps.pop_front() {
                None => None,
                Some(Step::Data(bytes)) => Some(Ok(Frame::data(bytes))),
                Some(Step::Trailers(map)) => Some(Ok(Frame::trailers(map))),
                Some(Step::Reset) => Some(Err(std::io::Error::other("demo backend: reset"))),
                Some(Step::Pause(d)) => {
                    self.sleep = Some(Box::pin(tokio::time::sleep(d)));
                    continue;
                }
            };
            return Poll::Ready(frame);
        }
    }

    fn is_end_stream(&self) -> bool {
        self.steps.is_empty() && self.sleep.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_unknown_is_rejected() {
        assert_eq!("reset".parse::<Misbehave>(), Ok(Misbehave::Reset));
        assert_eq!("huge".parse::<Misbehave>(), Ok(Misbehave::Huge));
        assert_eq!("stall".parse::<Misbehave>(), Ok(Misbehave::Stall));
        assert!("explode".parse::<Misbehave>().is_err());
    }

    #[test]
    fn huge_declares_more_than_it_sends() {
        let body = Misbehave::Huge.body();
        let Some(Step::Data(data)) = body.steps.front() else {
            panic!("first step is data");
        };
        let declared = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
        assert!(declared > data.len() - 5);
    }
}
