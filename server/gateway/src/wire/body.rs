//! A message body decoded from a connection's read buffer as it comes:
//! `content-length`, chunked (RFC 9112 §7.1), or up to the close. Every
//! byte is looked at a bounded number of times however the body is split
//! into reads, and nothing is held back beyond one chunk-size line or one
//! trailer section, each at most [`MAX_LINE_BYTES`].

use bytes::{Buf as _, BytesMut};

use super::{Framing, WireError};

/// The longest chunk-size line (its extensions and CRLF included), and the
/// longest trailer section.
pub(super) const MAX_LINE_BYTES: usize = 16 * 1024;
/// Trailer fields a chunked body may end with.
const MAX_TRAILERS: usize = 32;

/// Decodes a body from the bytes read so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoder(State);

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Bytes of a `content-length` body still to come.
    Length(u64),
    /// Expecting a chunk-size line, of which `scanned` bytes have come
    /// without its end.
    Size {
        scanned: usize,
    },
    /// Bytes of the current chunk still to come.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last (zero) chunk: the trailer section, up to an empty
    /// line, of which `scanned` bytes have come without its end.
    Trailers {
        scanned: usize,
    },
    UntilClose,
    Done,
}

impl Decoder {
    pub fn new(framing: Framing) -> Self {
        Self(match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Size { scanned: 0 },
            Framing::UntilClose => State::UntilClose,
        })
    }

    pub fn is_done(&self) -> bool {
        self.0 == State::Done
    }

    /// Moves the body bytes at the start of `input` to `out`, as far as
    /// they have come; what follows the body (nothing, from a well-behaved
    /// server) stays in `input`. True once the body has ended.
    pub fn decode(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Result<bool, WireError> {
        loop {
            match &mut self.0 {
                State::Done => return Ok(true),
                State::UntilClose => {
                    out.extend_from_slice(input);
                    input.clear();
                    return Ok(false);
                }
                State::Length(left) | State::Data(left) => {
                    if input.is_empty() {
                        return Ok(false);
                    }
                    let n = (*left).min(input.len() as u64) as usize;
                    out.extend_from_slice(&input[..n]);
                    input.advance(n);
                    *left -= n as u64;
                    if *left > 0 {
                        return Ok(false);
                    }
                    self.0 = match self.0 {
                        State::Length(_) => State::Done,
                        _ => State::DataEnd,
                    };
                }
                State::DataEnd => {
                    if input.len() < 2 {
                        return Ok(false);
                    }
                    if &input[..2] != b"\r\n" {
                        return Err(WireError::Chunk("no CRLF after a chunk's data"));
                    }
                    input.advance(2);
                    self.0 = State::Size { scanned: 0 };
                }
                State::Size { scanned } => {
                    let Some(len) = line_len(input, scanned)? else {
                        return Ok(false);
                    };
                    let size = chunk_size(&input[..len])?;
                    input.advance(len);
                    self.0 = match size {
                        0 => State::Trailers { scanned: 0 },
                        n => State::Data(n),
                    };
                }
                State::Trailers { scanned } => {
                    let Some(len) = trailers_len(input, scanned)? else {
                        return Ok(false);
                    };
                    check_trailers(&input[..len])?;
                    input.advance(len);
                    self.0 = State::Done;
                }
            }
        }
    }

    /// The connection closed: true if that is where the body ends,
    /// false if the body was cut short.
    pub fn end_of_input(&mut self) -> bool {
        match self.0 {
            State::Done => true,
            State::UntilClose => {
                self.0 = State::Done;
                true
            }
            _ => false,
        }
    }
}

/// The length, LF included, of the line at the start of `input` if its LF
/// has come; `scanned` bytes were looked at before, and are noted.
fn line_len(input: &[u8], scanned: &mut usize) -> Result<Option<usize>, WireError> {
    match next_lf(input, scanned) {
        Some(lf) => Ok(Some(lf + 1)),
        None if input.len() >= MAX_LINE_BYTES => Err(WireError::Chunk("chunk-size line too long")),
        None => Ok(None),
    }
}

/// The length of the trailer section at the start of `input`, up to and
/// with the empty line that ends it, if that has come; `scanned` bytes
/// were looked at before, and are noted.
fn trailers_len(input: &[u8], scanned: &mut usize) -> Result<Option<usize>, WireError> {
    while let Some(lf) = next_lf(input, scanned) {
        if lf == 0 || input[lf - 1] != b'\r' {
            return Err(WireError::Chunk("a trailer line not ended by CRLF"));
        }
        // An empty line: the section's first, or one right after a CRLF.
        if lf == 1 || (lf >= 3 && input[lf - 3..lf - 1] == *b"\r\n") {
            return Ok(Some(lf + 1));
        }
        *scanned = lf + 1;
    }
    if input.len() >= MAX_LINE_BYTES {
        return Err(WireError::Chunk("trailers too long"));
    }
    Ok(None)
}

/// Where the first LF from `scanned` on is, looking no further than
/// [`MAX_LINE_BYTES`] into `input`; if there is none, `scanned` moves to
/// where the search stopped.
fn next_lf(input: &[u8], scanned: &mut usize) -> Option<usize> {
    let window = &input[..input.len().min(MAX_LINE_BYTES)];
    let start = (*scanned).min(window.len());
    let found = window[start..].iter().position(|&b| b == b'\n');
    if found.is_none() {
        *scanned = window.len();
    }
    found.map(|i| start + i)
}

/// A chunk-size line's size, the line given with its CRLF. The size and
/// extensions are read by `httparse::parse_chunk_size` (extensions are
/// passed over), less what it lets through: the line must start with a
/// hex digit (an empty size is not 0) and hold no control byte but tab.
fn chunk_size(line: &[u8]) -> Result<u64, WireError> {
    const BAD: WireError = WireError::Chunk("bad chunk size");
    let Some(text) = line.strip_suffix(b"\r\n") else {
        return Err(WireError::Chunk("a chunk-size line not ended by CRLF"));
    };
    if !text.first().is_some_and(u8::is_ascii_hexdigit) {
        return Err(BAD);
    }
    if text.iter().any(|&b| b.is_ascii_control() && b != b'\t') {
        return Err(WireError::Chunk("a control byte in a chunk-size line"));
    }
    match httparse::parse_chunk_size(line) {
        Ok(httparse::Status::Complete((n, size))) if n == line.len() => Ok(size),
        _ => Err(BAD),
    }
}

/// Trailer fields, read as strictly as a head's (`httparse`) and then
/// dropped: the gateway has no use for them.
fn check_trailers(section: &[u8]) -> Result<(), WireError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_TRAILERS];
    match httparse::parse_headers(section, &mut fields) {
        Ok(httparse::Status::Complete((n, _))) if n == section.len() => Ok(()),
        Err(httparse::Error::TooManyHeaders) => Err(WireError::Chunk("too many trailers")),
        _ => Err(WireError::Chunk("bad trailer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// What decoding `wire` whole as a chunked body says.
    fn chunked(wire: &[u8]) -> Result<(Vec<u8>, bool), WireError> {
        let mut input = BytesMut::from(wire);
        let mut out = BytesMut::new();
        let ended = Decoder::new(Framing::Chunked).decode(&mut input, &mut out)?;
        Ok((out.to_vec(), ended))
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
            (b";ext\r\n", "bad chunk size"),
            (b"00000000000000005\r\n", "bad chunk size"),
            (b"2\r\nabX\r\n", "no CRLF"),
            (b" 5\r\n", "bad chunk size"),
            (b"5 5\r\n", "bad chunk size"),
            (b"5\n\r\n", "not ended by CRLF"),
            (b"5;a\rb\r\n", "control byte"),
            (b"5;a\x00\r\n", "control byte"),
            (b"0\r\nx: 1\ny: 2\r\n", "trailer line not ended by CRLF"),
            (b"0\r\nx 1\r\n\r\n", "bad trailer"),
            (b"0\r\nx : 1\r\n\r\n", "bad trailer"),
            (b"0\r\nx: \x01\r\n\r\n", "bad trailer"),
            (b"0\r\n folded\r\n\r\n", "bad trailer"),
        ] {
            let e = chunked(bad).unwrap_err();
            assert!(
                e.to_string().contains(says),
                "{:?}: {e}",
                bad.escape_ascii()
            );
        }
        let many: Vec<u8> = [
            &b"0\r\n"[..],
            &b"a: 1\r\n".repeat(MAX_TRAILERS + 1),
            b"\r\n",
        ]
        .concat();
        assert_eq!(chunked(&many), Err(WireError::Chunk("too many trailers")));
    }

    #[test]
    fn chunk_sizes_are_read_as_httparse_reads_them() {
        // A form feed is not whitespace after a size.
        assert!(chunked(b"5\x0c\r\nhello\r\n0\r\n\r\n").is_err());
        // Sixteen digits, leading zeros among them, are a valid size.
        assert_eq!(
            chunked(b"0000000000000005\r\nhello\r\n0000000000000000\r\n\r\n"),
            Ok((b"hello".to_vec(), true))
        );
        assert_eq!(
            chunked(b"5 \t;name=\"v a\" ; x\r\nhello\r\n0;last\r\n\r\n"),
            Ok((b"hello".to_vec(), true)),
            "extensions and the blanks before them are passed over"
        );
        assert_eq!(chunked(b"A\r\n0123456789\r\n").unwrap().0, b"0123456789");
        // The largest size there is: its data just keeps coming.
        assert_eq!(
            chunked(b"ffffffffffffffff\r\nab"),
            Ok((b"ab".to_vec(), false))
        );
    }

    #[test]
    fn a_chunk_size_line_or_trailer_section_is_never_held_past_its_limit() {
        let mut line = b"5;".to_vec();
        line.resize(MAX_LINE_BYTES - 2, b'x');
        line.extend_from_slice(b"\r\n");
        let ok = [&line[..], b"hello\r\n0\r\n\r\n"].concat();
        assert_eq!(
            chunked(&ok),
            Ok((b"hello".to_vec(), true)),
            "just short enough"
        );
        let long = [&line[..1], b";", &line[1..]].concat();
        assert_eq!(
            chunked(&long),
            Err(WireError::Chunk("chunk-size line too long"))
        );
        // Without an end, the same limit: nothing is held beyond it.
        assert_eq!(
            chunked(&vec![b'1'; MAX_LINE_BYTES]),
            Err(WireError::Chunk("chunk-size line too long"))
        );
        assert_eq!(
            chunked(&vec![b'1'; MAX_LINE_BYTES - 1]),
            Ok((vec![], false))
        );
        let trailers = [&b"0\r\nx: "[..], &vec![b'v'; MAX_LINE_BYTES]].concat();
        assert_eq!(
            chunked(&trailers),
            Err(WireError::Chunk("trailers too long"))
        );
    }
}
