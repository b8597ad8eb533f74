//! HTTP/1.1 as the gateway speaks it to Ollama: a request written in one
//! piece, a reply head parsed with `httparse`, and a reply body decoded
//! from the connection's read buffer ([`Decoder`]). No I/O here:
//! [`super::upstream`] reads and writes; this only says what the bytes
//! mean, so it is tested byte by byte.
//!
//! The framing is read strictly, as RFC 9112 asks of a proxy: one
//! `content-length` of ASCII digits, or `transfer-encoding: chunked` and
//! nothing else, never both; only ASCII space and tab are optional
//! whitespace.

use axum::http::{HeaderValue, Method};
use bytes::{Buf as _, BytesMut};

mod body;
#[cfg(test)]
mod properties;

pub use body::Decoder;

/// Headers a reply head may have; Ollama sends about five.
const MAX_HEADERS: usize = 64;
/// The longest reply head accepted.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

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
/// (1xx) replies come back as heads too; [`HeadReader`] skips them.
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
    let bad = |what: &str| WireError::Head(what.to_owned());
    let status = res.code.unwrap_or(0);
    let http11 = res.version == Some(1);
    let mut content_type = None;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut keep_alive = http11;
    for h in res.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-type") {
            content_type =
                Some(HeaderValue::from_bytes(h.value).map_err(|_| bad("bad content-type"))?);
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = content_length(h.value).ok_or_else(|| bad("bad content-length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(bad("two different content-lengths"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if !is_chunked(h.value) {
                let shown = &h.value[..h.value.len().min(64)];
                return Err(WireError::Head(format!(
                    "unsupported transfer-encoding \"{}\" (only chunked)",
                    shown.escape_ascii()
                )));
            }
            if chunked {
                return Err(bad("transfer-encoding given twice"));
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            keep_alive = keeps_alive(keep_alive, http11, h.value);
        }
    }
    // Either framing may be a lie when both are given: the reply is not
    // read at all, and its connection goes with it.
    if chunked && length.is_some() {
        return Err(bad("content-length and transfer-encoding together"));
    }
    if chunked && !http11 {
        return Err(bad("a chunked HTTP/1.0 reply"));
    }
    let framing = if head_request || matches!(status, 100..200 | 204 | 304) {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        keep_alive = false;
        Framing::UntilClose
    };
    Ok(Some((
        len,
        ReplyHead {
            status,
            content_type,
            framing,
            keep_alive,
        },
    )))
}

/// Reads a reply's head from a buffer that grows as the head comes,
/// passing over informational (1xx) heads. The buffer is parsed only when
/// it may hold a head's end (an empty line came) or has doubled since it
/// was last parsed, so a head that comes a byte at a time is not parsed
/// once per byte: the work stays linear in its length.
#[derive(Debug, Default)]
pub struct HeadReader {
    /// How long the buffer was when last parsed.
    parsed: usize,
    /// How much of it has been looked at for an empty line.
    scanned: usize,
}

impl HeadReader {
    /// The final head, once it has come, taken off the front of `buf`.
    pub fn read(
        &mut self,
        buf: &mut BytesMut,
        head_request: bool,
    ) -> Result<Option<ReplyHead>, WireError> {
        loop {
            let ended = ends_head(buf, self.scanned);
            self.scanned = buf.len();
            if !ended && buf.len() < 2 * self.parsed && buf.len() <= MAX_HEAD_BYTES {
                return Ok(None);
            }
            self.parsed = buf.len();
            let Some((len, head)) = parse_head(buf, head_request)? else {
                return Ok(None);
            };
            buf.advance(len);
            *self = Self::default();
            match head.status {
                101 => return Err(WireError::Head("101 Switching Protocols".into())),
                100..200 => continue,
                _ => return Ok(Some(head)),
            }
        }
    }

    /// The connection closed before a final head came: why, if what came
    /// is not HTTP.
    pub fn closed(buf: &[u8]) -> Result<(), WireError> {
        parse_head(buf, false).map(drop)
    }
}

/// Whether an empty line (CRLF CRLF; httparse also takes a bare LF for
/// CRLF) may be in `buf`, looking only at what came after the first
/// `from` bytes (and the two before them).
fn ends_head(buf: &[u8], from: usize) -> bool {
    let tail = &buf[from.saturating_sub(2).min(buf.len())..];
    tail.windows(2).any(|w| w == b"\n\n") || tail.windows(3).any(|w| w == b"\n\r\n")
}

/// A `content-length` value: ASCII digits, with only spaces and tabs
/// around them (no sign, no list, no other whitespace).
pub fn content_length(value: &[u8]) -> Option<u64> {
    let digits = trim_ows(value);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Whether a `transfer-encoding` value is exactly `chunked` (in any case,
/// spaces and tabs around it): the one coding the gateway reads. A list
/// (`gzip, chunked`) is not.
pub fn is_chunked(value: &[u8]) -> bool {
    trim_ows(value).eq_ignore_ascii_case(b"chunked")
}

/// Whether a connection stays open once a `Connection` header with
/// `value` is read: `close` ends it; `keep-alive` keeps an HTTP/1.0 one
/// (HTTP/1.1 ones stay open anyway); otherwise `keep` holds.
pub fn keeps_alive(keep: bool, http11: bool, value: &[u8]) -> bool {
    let tokens = || value.split(|&b| b == b',').map(trim_ows);
    if tokens().any(|t| t.eq_ignore_ascii_case(b"close")) {
        false
    } else if !http11 && tokens().any(|t| t.eq_ignore_ascii_case(b"keep-alive")) {
        true
    } else {
        keep
    }
}

/// `value` without the optional whitespace around it: ASCII spaces and
/// tabs, nothing else (RFC 9110 §5.6.3; `str::trim` would also take
/// U+00A0 or U+0085 away).
fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> ReplyHead {
        parse_head(text.as_bytes(), false).unwrap().unwrap().1
    }

    fn refusal(text: &str) -> String {
        parse_head(text.as_bytes(), false).unwrap_err().to_string()
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
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\nTransfer-Encoding: Chunked \r\n\r\n",
        );
        assert_eq!(h.framing, Framing::Chunked);
        assert!(h.keep_alive);

        let h = head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n");
        assert!(!h.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\nConnection: foo,\tclose \r\nContent-Length: 2\r\n\r\n");
        assert!(!h.keep_alive, "close among other tokens");
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
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 0005\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(h.framing, Framing::Length(5), "the same length twice");
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
                "unsupported transfer-encoding \"gzip\"",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                "content-length and transfer-encoding together",
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                "given twice",
            ),
            (
                "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                "chunked HTTP/1.0",
            ),
            ("SMTP ready\r\n\r\n", "bad reply head"),
        ] {
            let e = refusal(bad);
            assert!(e.contains(says), "{bad:?}: {e}");
        }
        let huge = format!("HTTP/1.1 200 OK\r\nx: {}", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(
            parse_head(huge.as_bytes(), false),
            Err(WireError::HeadTooLarge)
        );
    }

    #[test]
    fn a_coding_other_than_chunked_alone_is_refused() {
        let e = refusal("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert!(
            e.contains("unsupported transfer-encoding \"gzip, chunked\""),
            "{e}"
        );
        for value in [
            "chunked, chunked",
            "chunked;q=1",
            "identity",
            "",
            "chunked,",
        ] {
            assert!(!is_chunked(value.as_bytes()), "{value:?}");
        }
        assert!(is_chunked(b"CHUNKED"));
        assert!(is_chunked(b" \tchunked\t "));
    }

    #[test]
    fn only_ascii_space_and_tab_are_whitespace_in_framing_headers() {
        // U+00A0 and U+0085 in UTF-8: str::trim would take them away.
        let e = refusal("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\u{a0}\r\n\r\n");
        assert!(e.contains("unsupported transfer-encoding"), "{e}");
        let e = refusal("HTTP/1.1 200 OK\r\nContent-Length: 5\u{85}\r\n\r\n");
        assert!(e.contains("bad content-length"), "{e}");
        assert_eq!(content_length(" \t5\t ".as_bytes()), Some(5));
        for bad in [
            "5\u{85}",
            "\u{a0}5",
            "5\u{3000}",
            "+5",
            "-5",
            "5,5",
            "5 5",
            "",
            " ",
            "0x5",
            "5\x0c",
            "5\x0b",
            "18446744073709551616",
        ] {
            assert_eq!(content_length(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(
            content_length(b"18446744073709551615"),
            Some(u64::MAX),
            "the largest u64"
        );
        assert!(
            !keeps_alive(false, false, "keep-alive\u{a0}".as_bytes()),
            "a keep-alive token with U+00A0 is not keep-alive"
        );
        assert!(keeps_alive(false, false, b" keep-alive\t"));
    }

    #[test]
    fn informational_heads_are_passed_over_and_a_head_coming_slowly_is_read_once_whole() {
        let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        let mut reader = HeadReader::default();
        let mut buf = BytesMut::new();
        let mut got = None;
        for &b in wire.iter() {
            buf.extend_from_slice(&[b]);
            if got.is_none() {
                got = reader.read(&mut buf, false).unwrap();
            }
        }
        let h = got.expect("a head");
        assert_eq!((h.status, h.framing), (200, Framing::Length(2)));
        assert_eq!(&buf[..], b"ok", "the body stays");
        let mut buf = BytesMut::from(&b"HTTP/1.1 101 Switching Protocols\r\n\r\n"[..]);
        assert!(HeadReader::default().read(&mut buf, false).is_err());
        // Closed before the end: what came is named if it is not HTTP.
        assert_eq!(HeadReader::closed(b"HTTP/1.1 200 O"), Ok(()));
        assert!(HeadReader::closed(b"SMTP").is_err());
    }
}
