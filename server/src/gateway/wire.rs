//! HTTP/1.1 as the gateway speaks it to Ollama: a request written in one
//! piece, a reply head parsed with `httparse`, and a reply body decoded
//! from the connection's read buffer (`content-length`, chunked, or up to
//! the close). No I/O here: [`super::upstream`] reads and writes; this
//! only says what the bytes mean, so it is tested byte by byte.

use axum::http::{HeaderValue, Method};
use bytes::{Buf as _, BytesMut};

/// Headers a reply head may have; Ollama sends about five.
const MAX_HEADERS: usize = 64;
/// The longest reply head accepted.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The longest chunk-size line (with extensions) or trailer section.
const MAX_LINE_BYTES: usize = 4 * 1024;

/// What Ollama sent that is not HTTP/1.1 as it should be.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("bad reply head: {0}")]
    Head(String),
    #[error("reply head over {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    #[error("bad chunked body: {0}")]
    Chunk(&'static str),
}

/// A request's head and body, written as one piece.
pub struct RequestOut<'a> {
    pub method: &'a Method,
    /// Path and query as the upstream sees them (its prefix included).
    pub target: &'a str,
    pub host: &'a HeaderValue,
    /// Extra headers, written as given (names in lower case).
    pub headers: &'a [(&'a str, &'a HeaderValue)],
    pub body: &'a [u8],
}

impl RequestOut<'_> {
    /// The request as bytes. Every part is already valid HTTP: the method
    /// and target come from a request `http1` parsed, values are
    /// `HeaderValue`s (no CR or LF can be in them).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(128 + self.target.len() + self.body.len());
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        out.extend_from_slice(self.host.as_bytes());
        for (name, value) in self.headers {
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
        }
        let has_body = !self.body.is_empty() || !matches!(*self.method, Method::GET | Method::HEAD);
        if has_body {
            out.extend_from_slice(b"\r\ncontent-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(self.body);
    }
}

/// How a reply's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (`HEAD`, 204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// Until Ollama closes the connection.
    UntilClose,
}

/// A reply head: what the gateway needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyHead {
    pub status: u16,
    pub content_type: Option<HeaderValue>,
    pub framing: Framing,
    /// The connection may carry another request once the body is read.
    pub keep_alive: bool,
}

/// Parses a reply head at the start of `buf`: `Ok(None)` if it has not
/// all come yet; otherwise the head and its length in bytes. Informational
/// (1xx) replies come back as heads too; the caller skips them.
pub fn parse_head(buf: &[u8], head_request: bool) -> Result<Option<(usize, ReplyHead)>, WireError> {
    // Left uninitialised: httparse writes the ones it returns.
    let mut headers =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut res,
        buf,
        &mut headers,
    ) {
        Ok(httparse::Status::Complete(n)) if n > MAX_HEAD_BYTES => {
            return Err(WireError::HeadTooLarge);
        }
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > MAX_HEAD_BYTES {
                Err(WireError::HeadTooLarge)
            } else {
                Ok(None)
            };
        }
        Err(e) => return Err(WireError::Head(e.to_string())),
    };
    let status = res.code.unwrap_or(0);
    let http11 = res.version == Some(1);
    let mut content_type = None;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut close = !http11;
    for h in res.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(
                HeaderValue::from_bytes(h.value)
                    .map_err(|_| WireError::Head("bad content-type".into()))?,
            );
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = content_length(h.value)
                .ok_or_else(|| WireError::Head("bad content-length".into()))?;
            if length.is_some_and(|l| l != n) {
                return Err(WireError::Head("two different content-lengths".into()));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Only chunked is accepted, and it must come last.
            let value = std::str::from_utf8(h.value).unwrap_or("");
            let last = value.rsplit(',').next().unwrap_or("").trim();
            if !last.eq_ignore_ascii_case("chunked") {
                return Err(WireError::Head(format!(
                    "unsupported transfer-encoding {value:?}"
                )));
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            close = !keeps_alive(!close, http11, h.value);
        }
    }
    let framing = if head_request || status == 204 || status == 304 || (100..200).contains(&status)
    {
        Framing::Empty
    } else if chunked {
        // Both: the length is ignored, as RFC 9112 says, and the
        // connection is not reused.
        if length.is_some() {
            close = true;
        }
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        close = true;
        Framing::UntilClose
    };
    Ok(Some((
        len,
        ReplyHead {
            status,
            content_type,
            framing,
            keep_alive: !close,
        },
    )))
}

/// A `content-length` value: ASCII digits only (no sign, no list).
pub fn content_length(value: &[u8]) -> Option<u64> {
    let v = std::str::from_utf8(value).ok()?.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// Whether a connection stays open once a `Connection` header with
/// `value` is read: `close` ends it; `keep-alive` keeps an HTTP/1.0 one
/// (HTTP/1.1 ones stay open anyway); otherwise `keep` holds.
pub fn keeps_alive(keep: bool, http11: bool, value: &[u8]) -> bool {
    let value = std::str::from_utf8(value).unwrap_or("");
    let mut tokens = value.split(',').map(str::trim);
    if tokens.clone().any(|t| t.eq_ignore_ascii_case("close")) {
        false
    } else if !http11 && tokens.any(|t| t.eq_ignore_ascii_case("keep-alive")) {
        true
    } else {
        keep
    }
}

/// Decodes a reply body from the bytes read so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoder {
    /// Bytes of a `content-length` body still to come.
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Bytes of the current chunk still to come.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last (zero) chunk: trailer lines up to an empty one, and
    /// how many bytes of them have come.
    Trailers(usize),
}

impl Decoder {
    pub fn new(framing: Framing) -> Self {
        match framing {
            Framing::Empty | Framing::Length(0) => Self::Done,
            Framing::Length(n) => Self::Length(n),
            Framing::Chunked => Self::Chunked(Chunk::Size),
            Framing::UntilClose => Self::UntilClose,
        }
    }

    pub fn is_done(&self) -> bool {
        *self == Self::Done
    }

    /// Moves the body bytes at the start of `input` to `out`, as far as
    /// they have come; what follows the body (nothing, from a well-behaved
    /// server) stays in `input`. True once the body has ended.
    pub fn decode(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Result<bool, WireError> {
        loop {
            match self {
                Self::Done => return Ok(true),
                Self::UntilClose => {
                    out.extend_from_slice(input);
                    input.clear();
                    return Ok(false);
                }
                Self::Length(left) => {
                    let n = (*left).min(input.len() as u64) as usize;
                    out.extend_from_slice(&input[..n]);
                    input.advance(n);
                    *left -= n as u64;
                    if *left == 0 {
                        *self = Self::Done;
                        continue;
                    }
                    return Ok(false);
                }
                Self::Chunked(state) => match *state {
                    Chunk::Size => {
                        let Some(eol) = find_crlf(input)? else {
                            return Ok(false);
                        };
                        let size = chunk_size(&input[..eol])?;
                        input.advance(eol + 2);
                        *state = if size == 0 {
                            Chunk::Trailers(0)
                        } else {
                            Chunk::Data(size)
                        };
                    }
                    Chunk::Data(left) => {
                        if input.is_empty() {
                            return Ok(false);
                        }
                        let n = left.min(input.len() as u64) as usize;
                        out.extend_from_slice(&input[..n]);
                        input.advance(n);
                        *state = if left == n as u64 {
                            Chunk::DataEnd
                        } else {
                            Chunk::Data(left - n as u64)
                        };
                    }
                    Chunk::DataEnd => {
                        if input.len() < 2 {
                            return Ok(false);
                        }
                        if &input[..2] != b"\r\n" {
                            return Err(WireError::Chunk("no CRLF after a chunk's data"));
                        }
                        input.advance(2);
                        *state = Chunk::Size;
                    }
                    Chunk::Trailers(seen) => {
                        let Some(eol) = find_crlf(input)? else {
                            return Ok(false);
                        };
                        if input[..eol].iter().any(|&b| b == b'\r' || b == b'\n') {
                            return Err(WireError::Chunk("a bare CR or LF in a trailer"));
                        }
                        if seen + eol > MAX_LINE_BYTES {
                            return Err(WireError::Chunk("trailers too long"));
                        }
                        input.advance(eol + 2);
                        if eol == 0 {
                            *self = Self::Done;
                        } else {
                            *state = Chunk::Trailers(seen + eol + 2);
                        }
                    }
                },
            }
        }
    }

    /// The connection closed: true if that is where the body ends,
    /// false if the body was cut short.
    pub fn end_of_input(&mut self) -> bool {
        match self {
            Self::Done => true,
            Self::UntilClose => {
                *self = Self::Done;
                true
            }
            _ => false,
        }
    }
}

/// Where the first CRLF in `input` starts, if it has come; an error if a
/// line runs past [`MAX_LINE_BYTES`] without one.
fn find_crlf(input: &[u8]) -> Result<Option<usize>, WireError> {
    let window = &input[..input.len().min(MAX_LINE_BYTES + 2)];
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(i) => Ok(Some(i)),
        None if input.len() > MAX_LINE_BYTES => Err(WireError::Chunk("line too long")),
        None => Ok(None),
    }
}

/// A chunk-size line's size: hex digits, then optional `;extensions`.
fn chunk_size(line: &[u8]) -> Result<u64, WireError> {
    if line.iter().any(|&b| b == b'\r' || b == b'\n') {
        return Err(WireError::Chunk("a bare CR or LF in a chunk-size line"));
    }
    // Digits from the start of the line; only blanks before `;`.
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii_end();
    if digits.is_empty() || digits.len() > 15 {
        return Err(WireError::Chunk("bad chunk size"));
    }
    let mut n: u64 = 0;
    for &b in digits {
        let d = (b as char)
            .to_digit(16)
            .ok_or(WireError::Chunk("bad chunk size"))?;
        n = n * 16 + u64::from(d);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> ReplyHead {
        parse_head(text.as_bytes(), false).unwrap().unwrap().1
    }

    #[test]
    fn a_request_is_one_piece_with_its_length() {
        let host = HeaderValue::from_static("127.0.0.1:11434");
        let ct = HeaderValue::from_static("application/json");
        let encoded = |method: &Method, target, headers: &[(&str, &HeaderValue)], body| {
            let mut out = Vec::new();
            RequestOut {
                method,
                target,
                host: &host,
                headers,
                body,
            }
            .encode(&mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            encoded(
                &Method::POST,
                "/ollama/api/chat?x=1",
                &[("content-type", &ct)],
                b"{\"model\":\"m\"}"
            ),
            "POST /ollama/api/chat?x=1 HTTP/1.1\r\nhost: 127.0.0.1:11434\r\n\
             content-type: application/json\r\ncontent-length: 13\r\n\r\n{\"model\":\"m\"}"
        );
        assert_eq!(
            encoded(&Method::GET, "/api/tags", &[], b""),
            "GET /api/tags HTTP/1.1\r\nhost: 127.0.0.1:11434\r\n\r\n"
        );
        // A body-less DELETE still says it has no body.
        assert!(
            encoded(&Method::DELETE, "/api/delete", &[], b"").contains("content-length: 0\r\n")
        );
    }

    #[test]
    fn reply_heads_say_how_their_body_ends_and_whether_the_connection_stays() {
        let h = head(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: 12\r\n\r\n",
        );
        assert_eq!(h.status, 200);
        assert_eq!(h.content_type.unwrap(), "application/json; charset=utf-8");
        assert_eq!(h.framing, Framing::Length(12));
        assert!(h.keep_alive);

        let h = head(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n",
        );
        assert_eq!(h.framing, Framing::Chunked);
        assert!(h.keep_alive);

        let h = head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n");
        assert!(!h.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(h.framing, Framing::UntilClose);
        assert!(!h.keep_alive, "a body up to the close ends the connection");
        let h = head("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n");
        assert!(!h.keep_alive);
        let h = head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n");
        assert!(h.keep_alive);
        assert_eq!(
            head("HTTP/1.1 204 No Content\r\n\r\n").framing,
            Framing::Empty
        );
        let (_, h) = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Empty, "a HEAD reply has no body");
        // Both framings: chunked wins and the connection is not reused.
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(h.framing, Framing::Chunked);
        assert!(!h.keep_alive);
    }

    #[test]
    fn a_head_is_parsed_once_it_has_all_come_and_bad_ones_are_named() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
        for cut in 0..full.len() - 2 {
            assert_eq!(parse_head(&full[..cut], false), Ok(None), "cut at {cut}");
        }
        let (len, _) = parse_head(full, false).unwrap().unwrap();
        assert_eq!(&full[len..], b"hi");
        for (bad, says) in [
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\n",
                "bad content-length",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
                "two different",
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                "unsupported transfer-encoding",
            ),
            ("SMTP ready\r\n\r\n", "bad reply head"),
        ] {
            let e = parse_head(bad.as_bytes(), false).unwrap_err().to_string();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
        let huge = format!("HTTP/1.1 200 OK\r\nx: {}", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(
            parse_head(huge.as_bytes(), false),
            Err(WireError::HeadTooLarge)
        );
    }

    /// Decodes `wire` fed in pieces of `step` bytes.
    fn decode_in_steps(framing: Framing, wire: &[u8], step: usize) -> (Vec<u8>, bool, Vec<u8>) {
        let mut d = Decoder::new(framing);
        let mut input = BytesMut::new();
        let mut out = BytesMut::new();
        let mut ended = false;
        for piece in wire.chunks(step) {
            input.extend_from_slice(piece);
            ended = d.decode(&mut input, &mut out).unwrap();
        }
        (out.to_vec(), ended, input.to_vec())
    }

    #[test]
    fn bodies_decode_the_same_however_they_arrive() {
        let chunked = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n";
        for step in 1..=chunked.len() {
            let (out, ended, rest) = decode_in_steps(Framing::Chunked, chunked, step);
            assert_eq!(out, b"hello, world", "step {step}");
            assert!(ended, "step {step}");
            assert!(rest.is_empty());
        }
        let (out, ended, _) = decode_in_steps(Framing::Chunked, b"a\r\n0123456789\r\n", 4);
        assert_eq!(out, b"0123456789");
        assert!(!ended, "no last chunk yet");
        for step in 1..=9 {
            let (out, ended, rest) = decode_in_steps(Framing::Length(5), b"helloHTTP", step);
            assert_eq!(out, b"hello");
            assert!(ended);
            assert_eq!(rest, b"HTTP"[..rest.len()].to_vec(), "what follows stays");
        }
        let mut d = Decoder::new(Framing::UntilClose);
        let mut input = BytesMut::from(&b"abc"[..]);
        let mut out = BytesMut::new();
        assert!(!d.decode(&mut input, &mut out).unwrap());
        assert!(d.end_of_input());
        assert_eq!(&out[..], b"abc");
        let mut d = Decoder::new(Framing::Length(5));
        assert!(!d.end_of_input(), "a close before the length is a cut");
        assert!(Decoder::new(Framing::Length(0)).is_done());
    }

    #[test]
    fn bad_chunked_bodies_are_named() {
        for (bad, says) in [
            (&b"zz\r\n"[..], "bad chunk size"),
            (b"\r\n", "bad chunk size"),
            (b"ffffffffffffffff\r\n", "bad chunk size"),
            (b"2\r\nabX\r\n", "no CRLF"),
            (b" 5\r\n", "bad chunk size"),
            (b"5\n\r\n", "bare CR or LF"),
            (b"0\r\nx: 1\ny: 2\r\n", "bare CR or LF"),
        ] {
            let mut input = BytesMut::from(bad);
            let e = Decoder::new(Framing::Chunked)
                .decode(&mut input, &mut BytesMut::new())
                .unwrap_err();
            assert!(e.to_string().contains(says), "{bad:?}: {e}");
        }
        let mut input = BytesMut::from(&vec![b'1'; MAX_LINE_BYTES + 10][..]);
        let e = Decoder::new(Framing::Chunked)
            .decode(&mut input, &mut BytesMut::new())
            .unwrap_err();
        assert_eq!(e, WireError::Chunk("line too long"));
    }
}
