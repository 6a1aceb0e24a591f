//! A blocking HTTP/1.1 GET over std's TcpStream, for Envoy's admin port. Blocking on purpose:
//! the harness must work from sync tests and from inside async tests without a runtime.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::error::{KitError, KitResult};

/// GETs `path` from `addr`; returns the status code and the (de-chunked) body.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> KitResult<(u16, String)> {
    request(addr, "GET", path, timeout)
}

/// Sends a bodiless request (`GET`, `POST` for admin actions such as `/reset_counters`).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    timeout: Duration,
) -> KitResult<(u16, String)> {
    let err = |e: std::io::Error| KitError::new(format!("{method} http://{addr}{path}: {e}"));
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(err)?;
    stream.set_read_timeout(Some(timeout)).map_err(err)?;
    stream.set_write_timeout(Some(timeout)).map_err(err)?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).map_err(err)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(err)?;
    parse_response(&raw)
        .ok_or_else(|| KitError::new(format!("{method} http://{addr}{path}: malformed response")))
}

/// Splits a raw HTTP/1.1 response into status and body, undoing chunked encoding.
fn parse_response(raw: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    Some((status, body))
}

fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size_line, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size..)?.strip_prefix("\r\n")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_body_is_reassembled() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nLIVE\r\n1\r\n\n\r\n0\r\n\r\n";
        assert_eq!(parse_response(raw), Some((200, "LIVE\n".to_owned())));
    }

    #[test]
    fn plain_body_is_kept() {
        let raw = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nPRE_";
        assert_eq!(parse_response(raw), Some((503, "PRE_".to_owned())));
    }
}
