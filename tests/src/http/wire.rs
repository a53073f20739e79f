//! The little of HTTP/1.1 framing that both ends need: reading a message head.

use std::io::{self, BufRead};

/// Bounds what a peer can make us read before the head is rejected.
const MAX_HEAD_LINES: usize = 64;
/// Bounds how much body we buffer.
pub(crate) const MAX_BODY: u64 = 64 * 1024;

/// The start line and the headers that framing depends on.
pub(crate) struct Head {
    pub(crate) start: String,
    pub(crate) content_length: u64,
    /// The peer said `Connection: close`.
    pub(crate) close: bool,
}

/// Reads a request or response head; `None` when the peer closed cleanly before sending one.
pub(crate) fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut start = String::new();
    if reader.read_line(&mut start)? == 0 {
        return Ok(None);
    }
    let mut head = Head {
        start: start.trim_end().to_owned(),
        content_length: 0,
        close: false,
    };
    for _ in 0..MAX_HEAD_LINES {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Ok(Some(head));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("header line without a colon: {line:?}")))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            head.content_length = value
                .parse()
                .ok()
                .filter(|&len| len <= MAX_BODY)
                .ok_or_else(|| invalid(format!("content-length {value:?}")))?;
        } else if name.eq_ignore_ascii_case("connection") {
            head.close = value.eq_ignore_ascii_case("close");
        }
    }
    Err(invalid(format!("more than {MAX_HEAD_LINES} header lines")))
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_framing_headers_case_insensitively() {
        let mut input: &[u8] =
            b"HTTP/1.1 200 OK\r\ncontent-LENGTH: 6\r\nCONNECTION: Close\r\n\r\nreal1\n";
        let head = read_head(&mut input).unwrap().unwrap();
        assert_eq!(head.start, "HTTP/1.1 200 OK");
        assert_eq!(head.content_length, 6);
        assert!(head.close);
        assert_eq!(input, b"real1\n");
    }

    #[test]
    fn clean_eof_is_no_head_and_truncation_is_an_error() {
        assert!(read_head(&mut &b""[..]).unwrap().is_none());
        assert!(read_head(&mut &b"GET / HTTP/1.1\r\nHost: x\r\n"[..]).is_err());
    }

    #[test]
    fn rejects_bad_lengths_and_endless_heads() {
        assert!(read_head(&mut &b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"[..]).is_err());
        assert!(read_head(&mut &b"GET / HTTP/1.1\r\nContent-Length: 999999\r\n\r\n"[..]).is_err());
        let endless = "GET / HTTP/1.1\r\n".to_owned() + &"X: y\r\n".repeat(MAX_HEAD_LINES + 1);
        assert!(read_head(&mut endless.as_bytes()).is_err());
    }
}
