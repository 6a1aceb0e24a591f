//! gRPC length-prefixed framing (gRPC over HTTP/2: `Length-Prefixed-Message`).
//!
//! Every message on a gRPC stream is one byte of flags (0: plain, 1: compressed), four bytes of
//! big-endian length, then the message. Envoy hands the body over in chunks that cut frames
//! anywhere, so the decoder buffers bytes and yields whole messages. It never panics: a backend
//! (or a client) may send anything.

use std::fmt;

use crate::status::{GatewayError, LimitError, UpstreamError};

/// Bytes of the frame header: flags (1) + length (4).
pub const FRAME_HEADER_LEN: usize = 5;

/// gRPC's default receive limit (4 MiB), used when no limit is configured.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Why a byte stream is not a sequence of gRPC frames the gateway can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Flag 1: the message is compressed. The gateway never advertises `grpc-accept-encoding`,
    /// so a compressed frame means the peer ignored the negotiation.
    Compressed,
    /// A flags byte other than 0 or 1.
    BadFlags(u8),
    /// The declared length is above the limit; refused before buffering it.
    TooLarge { declared: usize, max: usize },
    /// The stream ended inside a frame: `have` bytes buffered, `need` for the frame.
    Truncated { have: usize, need: usize },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Compressed => {
                f.write_str("compressed gRPC message (flag 1), but the gateway accepts none: it sends no grpc-accept-encoding")
            }
            FrameError::BadFlags(b) => write!(f, "malformed gRPC frame: flags byte {b:#04x}"),
            FrameError::TooLarge { declared, max } => write!(
                f,
                "gRPC message of {declared} bytes exceeds the limit of {max} bytes"
            ),
            FrameError::Truncated { have, need } => write!(
                f,
                "gRPC stream ended inside a frame ({have} of {need} bytes)"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

impl FrameError {
    /// The error as a reply to the HTTP client when the frames came from the backend: the
    /// backend broke the protocol, so INTERNAL with 502 (the fault is upstream, not ours);
    /// a reply over the response limit is INTERNAL with 500, the same answer whether the
    /// limit is hit by the whole body or by one declared frame.
    pub fn to_upstream_error(&self) -> GatewayError {
        let message = format!("invalid reply from the backend: {self}");
        match self {
            FrameError::TooLarge { .. } => LimitError::ResponseMessage { message }.into(),
            _ => UpstreamError::Broken(message).into(),
        }
    }
}

/// Frame one message: flags 0, big-endian length, the bytes.
///
/// Messages above 4 GiB cannot be framed; gRPC itself caps them far lower and the gateway's
/// body limits stop them long before, so the length saturates rather than panics.
pub fn encode_frame(msg: &[u8]) -> Vec<u8> {
    let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + msg.len());
    out.push(0);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    out
}

/// Incremental decoder: `push` chunks as they arrive, take messages with `next_message`, call
/// `finish` at the end of the stream.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already returned; compacted on the next `push` so a long stream does not
    /// keep every message it has seen.
    start: usize,
    max_message_bytes: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_MESSAGE_BYTES)
    }
}

impl FrameDecoder {
    pub fn new(max_message_bytes: usize) -> Self {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            max_message_bytes,
        }
    }

    /// Append a chunk of the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as a message.
    pub fn buffered_len(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    /// The next complete message, `None` when more bytes are needed. An error leaves the
    /// buffer as it is, so asking again gives the same error.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let rest = self.buf.get(self.start..).unwrap_or_default();
        let Some(len) = self.header(rest)? else {
            return Ok(None);
        };
        let end = FRAME_HEADER_LEN + len;
        match rest.get(FRAME_HEADER_LEN..end) {
            Some(msg) => {
                let msg = msg.to_vec();
                self.start += end;
                Ok(Some(msg))
            }
            None => Ok(None),
        }
    }

    /// Check the header at the front of `rest`: `None` while fewer than 5 bytes are buffered,
    /// otherwise the message length (flags and limit checked).
    fn header(&self, rest: &[u8]) -> Result<Option<usize>, FrameError> {
        let Some(&[flags, a, b, c, d]) = rest.get(..FRAME_HEADER_LEN) else {
            return Ok(None);
        };
        match flags {
            0 => {}
            1 => return Err(FrameError::Compressed),
            other => return Err(FrameError::BadFlags(other)),
        }
        let declared = usize::try_from(u32::from_be_bytes([a, b, c, d])).unwrap_or(usize::MAX);
        if declared > self.max_message_bytes {
            return Err(FrameError::TooLarge {
                declared,
                max: self.max_message_bytes,
            });
        }
        Ok(Some(declared))
    }

    /// At the end of the stream: an error if bytes of an incomplete frame remain (call after
    /// taking every complete message).
    pub fn finish(&self) -> Result<(), FrameError> {
        let rest = self.buf.get(self.start..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(());
        }
        let need = match self.header(rest)? {
            Some(len) => FRAME_HEADER_LEN.saturating_add(len),
            None => FRAME_HEADER_LEN,
        };
        Err(FrameError::Truncated {
            have: rest.len(),
            need,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Code;

    fn drain(d: &mut FrameDecoder) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(m) = d.next_message().unwrap() {
            out.push(m);
        }
        out
    }

    #[test]
    fn encoded_frame_has_flag_and_big_endian_length() {
        assert_eq!(encode_frame(b"abc"), vec![0, 0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(encode_frame(b""), vec![0, 0, 0, 0, 0]);
        let big = vec![7u8; 300];
        assert_eq!(encode_frame(&big).get(..5), Some(&[0u8, 0, 0, 1, 44][..]));
    }

    #[test]
    fn whole_frames_in_one_chunk_are_all_returned() {
        let mut d = FrameDecoder::default();
        let mut bytes = encode_frame(b"one");
        bytes.extend(encode_frame(b"two"));
        d.push(&bytes);
        assert_eq!(drain(&mut d), vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(d.finish(), Ok(()));
    }

    #[test]
    fn frames_split_byte_by_byte_are_reassembled() {
        let msgs: Vec<Vec<u8>> = vec![b"hello".to_vec(), Vec::new(), vec![9u8; 70]];
        let stream: Vec<u8> = msgs.iter().flat_map(|m| encode_frame(m)).collect();
        let mut d = FrameDecoder::default();
        let mut got = Vec::new();
        for b in &stream {
            d.push(std::slice::from_ref(b));
            got.extend(drain(&mut d));
        }
        assert_eq!(got, msgs);
        assert_eq!(d.finish(), Ok(()));
        assert_eq!(d.buffered_len(), 0);
    }

    #[test]
    fn empty_message_is_a_message_not_a_pause() {
        let mut d = FrameDecoder::default();
        d.push(&encode_frame(b""));
        assert_eq!(d.next_message(), Ok(Some(Vec::new())));
        assert_eq!(d.next_message(), Ok(None));
    }

    #[test]
    fn header_split_across_chunks_waits_for_the_rest() {
        let frame = encode_frame(b"xyz");
        let mut d = FrameDecoder::default();
        d.push(&frame[..2]);
        assert_eq!(d.next_message(), Ok(None));
        d.push(&frame[2..4]);
        assert_eq!(d.next_message(), Ok(None));
        d.push(&frame[4..6]);
        assert_eq!(d.next_message(), Ok(None));
        d.push(&frame[6..]);
        assert_eq!(d.next_message(), Ok(Some(b"xyz".to_vec())));
    }

    #[test]
    fn declared_length_above_the_limit_is_refused_before_buffering() {
        let mut d = FrameDecoder::new(16);
        d.push(&[0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            d.next_message(),
            Err(FrameError::TooLarge {
                declared: 0xffff_ffff,
                max: 16
            })
        );
        // Asking again gives the same answer, not a panic or a skipped frame.
        assert!(matches!(d.next_message(), Err(FrameError::TooLarge { .. })));
        let err = d.next_message().unwrap_err().to_upstream_error();
        assert_eq!(err.code, Code::Internal);
        assert_eq!(err.status(), 500);
    }

    #[test]
    fn message_exactly_at_the_limit_is_accepted() {
        let mut d = FrameDecoder::new(4);
        d.push(&encode_frame(b"abcd"));
        assert_eq!(d.next_message(), Ok(Some(b"abcd".to_vec())));
    }

    #[test]
    fn compressed_frame_is_refused_with_a_clear_error() {
        let mut d = FrameDecoder::default();
        d.push(&[1, 0, 0, 0, 1, 0x1f]);
        let err = d.next_message().unwrap_err();
        assert_eq!(err, FrameError::Compressed);
        assert!(err.to_string().contains("grpc-accept-encoding"));
        let gw = err.to_upstream_error();
        assert_eq!((gw.code, gw.status()), (Code::Internal, 502));
    }

    #[test]
    fn unknown_flags_are_malformed() {
        let mut d = FrameDecoder::default();
        d.push(&[0x80, 0, 0, 0, 0]);
        assert_eq!(d.next_message(), Err(FrameError::BadFlags(0x80)));
        assert_eq!(d.finish(), Err(FrameError::BadFlags(0x80)));
    }

    #[test]
    fn truncated_trailing_frame_fails_finish() {
        let mut d = FrameDecoder::default();
        let frame = encode_frame(b"abcdef");
        d.push(&frame[..8]);
        assert_eq!(d.next_message(), Ok(None));
        assert_eq!(d.finish(), Err(FrameError::Truncated { have: 8, need: 11 }));
    }

    #[test]
    fn truncated_header_fails_finish() {
        let mut d = FrameDecoder::default();
        d.push(&[0, 0]);
        assert_eq!(d.finish(), Err(FrameError::Truncated { have: 2, need: 5 }));
    }

    #[test]
    fn consumed_bytes_are_released_on_the_next_push() {
        let mut d = FrameDecoder::default();
        d.push(&encode_frame(&[1u8; 100]));
        assert!(d.next_message().unwrap().is_some());
        d.push(&encode_frame(b"z")[..3]);
        assert_eq!(d.buffered_len(), 3);
        assert_eq!(d.buf.len(), 3);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: every chunking of pseudo-random bytes.
        let mut seed: u32 = 0x1234_5678;
        for _ in 0..200 {
            let mut d = FrameDecoder::new(64);
            let len = (seed % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8 % 3
                })
                .collect();
            for chunk in bytes.chunks(1 + (seed as usize % 4)) {
                d.push(chunk);
                while let Ok(Some(_)) = d.next_message() {}
            }
            let _ = d.finish();
        }
    }
}
