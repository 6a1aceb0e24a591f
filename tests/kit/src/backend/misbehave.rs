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
    /// A real reply above the gateway's default `max_response_bytes` (16 MiB): one frame of
    /// [`HUGE`] bytes, all of them sent, then `grpc-status: 0`.
    Huge,
    /// A valid (empty) message frame and end of stream without any trailers.
    NoTrailers,
    /// A frame whose prefix declares fewer bytes (3) than follow it (a 5-byte message), then
    /// `grpc-status: 0`: the extra bytes are the start of a frame that never completes.
    ShortFrame,
    /// Not gRPC at all: `200` with `content-type: text/html` and an HTML body, no trailers.
    Html,
    /// `grpc-encoding: gzip` and a compressed frame (flag 1, a valid gzip of a valid message)
    /// although the request offered no compression.
    Gzip,
    /// Not broken, but the rarest shape of a gRPC error: headers, then trailers with
    /// `grpc-status: 5` (NOT_FOUND) and no DATA frame at all (not trailers-only).
    NoData,
}

/// The size of the [`Misbehave::Huge`] message: 16 MiB + 1 KiB.
pub const HUGE: usize = (16 << 20) + 1024;

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
            "short-frame" => Ok(Misbehave::ShortFrame),
            "html" => Ok(Misbehave::Html),
            "gzip" => Ok(Misbehave::Gzip),
            "no-data" => Ok(Misbehave::NoData),
            other => Err(format!(
                "x-demo-misbehave: unknown mode {other:?} (bad-frame, truncated, reset, stall, compressed, huge, no-trailers, short-frame, html, gzip, no-data)"
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
            Misbehave::Huge => huge_steps(),
            Misbehave::NoTrailers => vec![Step::Data(frame(0, &[]))],
            Misbehave::ShortFrame => vec![
                Step::Data(prefix(0, 3).into_iter().chain(*b"\x0a\x03abc").collect()),
                ok_trailers(),
            ],
            Misbehave::Html => vec![Step::Data(Bytes::from_static(
                b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            ))],
            Misbehave::Gzip => vec![Step::Data(frame(1, &gzip_stored(PAYMENT))), ok_trailers()],
            Misbehave::NoData => {
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", HeaderValue::from_static("5"));
                trailers.insert("grpc-message", HeaderValue::from_static("no%20data"));
                vec![Step::Trailers(trailers)]
            }
        };
        ScriptBody {
            steps: steps.into(),
            sleep: None,
        }
    }

    /// The response headers of this misbehaviour (a gRPC content type, except for `html`).
    pub fn headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Misbehave::Html => &[("content-type", "text/html; charset=utf-8")],
            Misbehave::Gzip => &[
                ("content-type", "application/grpc"),
                ("grpc-encoding", "gzip"),
            ],
            _ => &[("content-type", "application/grpc")],
        }
    }
}

/// `Payment { id: "pay_001", merchant: "acme" }`, the message the `gzip` mode compresses.
const PAYMENT: &[u8] = b"\x0a\x07pay_001\x12\x04acme";

/// The `huge` reply: its prefix, its [`HUGE`] bytes in 256 KiB chunks, OK.
fn huge_steps() -> Vec<Step> {
    let len = u32::try_from(HUGE).unwrap_or(u32::MAX);
    let mut steps = vec![Step::Data(prefix(0, len).into())];
    let chunk = Bytes::from(vec![0u8; 256 << 10]);
    let mut left = HUGE;
    while left > 0 {
        let n = left.min(chunk.len());
        steps.push(Step::Data(chunk.slice(..n)));
        left -= n;
    }
    steps.push(ok_trailers());
    steps
}

/// A gzip member holding `data` in one stored (uncompressed) deflate block: valid gzip that
/// any decoder reads, without a compression library.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.push(1); // final block, stored
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_le_bytes());
    out
}

/// CRC-32 (IEEE), bit by bit.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
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
    fn huge_sends_more_than_the_default_response_limit() {
        let body = Misbehave::Huge.body();
        let data: usize = body
            .steps
            .iter()
            .map(|s| match s {
                Step::Data(d) => d.len(),
                _ => 0,
            })
            .sum();
        let Some(Step::Data(first)) = body.steps.front() else {
            panic!("first step is data");
        };
        let declared = u32::from_be_bytes([first[1], first[2], first[3], first[4]]) as usize;
        assert_eq!(declared, HUGE);
        assert_eq!(data, 5 + HUGE, "every declared byte is sent");
        const { assert!(HUGE > 16 << 20, "above the default max_response_bytes") };
    }

    #[test]
    fn new_modes_parse_and_gzip_is_valid_gzip() {
        for m in ["short-frame", "html", "gzip"] {
            assert!(m.parse::<Misbehave>().is_ok(), "{m}");
        }
        let z = gzip_stored(PAYMENT);
        assert_eq!(&z[..3], &[0x1f, 0x8b, 8]);
        // CRC-32 of "123456789" is the standard check value.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(Misbehave::Html.headers()[0].1, "text/html; charset=utf-8");
    }
}
