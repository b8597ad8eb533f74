//! Property tests of reading a reply as [`crate::upstream`] does
//! ([`HeadReader`], then [`Decoder`]): a valid reply reads the same
//! however its bytes are split into reads, and a malformed one never
//! panics or hangs, and is refused or read the same way however it is
//! split; the work stays linear in the reply's length.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use proptest::prelude::*;
use proptest::sample::Index;

use super::body::MAX_LINE_BYTES;
use super::*;

/// How reading a reply ends once its connection closes.
#[derive(Debug, PartialEq)]
enum Outcome {
    Refused(WireError),
    /// The connection closed before the reply's end.
    Cut,
    Read {
        head: ReplyHead,
        body: Vec<u8>,
        /// The body ended before the close.
        ended: bool,
        /// What came after the body.
        rest: Vec<u8>,
    },
}

/// Reads `wire` arriving in reads that end at `cuts` (ascending), then a
/// close.
fn read(wire: &[u8], cuts: impl IntoIterator<Item = usize>) -> Outcome {
    let mut reader = HeadReader::default();
    let mut buf = BytesMut::new();
    let mut head = None;
    let mut body = BytesMut::new();
    let mut ended = false;
    let mut from = 0;
    for to in cuts.into_iter().chain([wire.len()]) {
        buf.extend_from_slice(&wire[from..to]);
        from = to;
        if head.is_none() {
            match reader.read(&mut buf, false) {
                Ok(Some(h)) => head = Some((Decoder::new(h.framing), h)),
                Ok(None) => continue,
                Err(e) => return Outcome::Refused(e),
            }
        }
        let (decoder, _) = head.as_mut().expect("read above");
        match decoder.decode(&mut buf, &mut body) {
            Ok(end) => ended = end,
            Err(e) => return Outcome::Refused(e),
        }
    }
    let Some((mut decoder, head)) = head else {
        return match HeadReader::closed(&buf) {
            Ok(()) => Outcome::Cut,
            Err(e) => Outcome::Refused(e),
        };
    };
    if !ended && !decoder.end_of_input() {
        return Outcome::Cut;
    }
    Outcome::Read {
        head,
        body: body.to_vec(),
        ended,
        rest: buf.to_vec(),
    }
}

/// Read positions: `cuts` placed in a reply of `len` bytes.
fn cuts_in(cuts: &[Index], len: usize) -> Vec<usize> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(len + 1)).collect();
    at.sort_unstable();
    at
}

/// A valid reply, and what reading it must give.
#[derive(Debug)]
struct Valid {
    wire: Vec<u8>,
    expected: Outcome,
}

/// How a chunk-size line is written: leading zeros, the digits' case,
/// and the extensions.
fn size_line() -> impl Strategy<Value = (usize, bool, String)> {
    (
        0..16usize,
        any::<bool>(),
        r#"[ \t]{0,2}(;[ \t]?[a-z]{1,8}(=([a-z0-9]{1,8}|"[ a-z;]{0,8}"))?){0,3}"#,
    )
}

fn write_size(out: &mut Vec<u8>, size: usize, (zeros, upper, ext): &(usize, bool, String)) {
    let digits = if *upper {
        format!("{size:X}")
    } else {
        format!("{size:x}")
    };
    let zeros = (*zeros).min(16 - digits.len());
    out.extend_from_slice(format!("{}{digits}{ext}\r\n", "0".repeat(zeros)).as_bytes());
}

prop_compose! {
    fn valid_reply()(
        (informational, status, http10) in (
            prop::sample::select(&[
                "",
                "HTTP/1.1 100 Continue\r\n\r\n",
                "HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n",
            ][..]),
            prop::sample::select(&[200u16, 201, 400, 404, 500, 503][..]),
            prop::bool::weighted(0.2),
        ),
        (content_type, connection, extra, at) in (
            prop::option::of("application/(json|x-ndjson)(; charset=utf-8)?"),
            prop::sample::select(&["", "close", "keep-alive", "Keep-Alive, foo", "foo,\tclose"][..]),
            prop::collection::vec(("x-[a-z0-9-]{1,12}", "([!-~]([ -~]{0,30}[!-~])?)?"), 0..6),
            any::<Index>(),
        ),
        (length_name, coding_name, coding, ows, twice) in (
            prop::sample::select(&["content-length", "Content-Length", "CONTENT-LENGTH"][..]),
            prop::sample::select(&["transfer-encoding", "Transfer-Encoding", "TRANSFER-ENCODING"][..]),
            prop::sample::select(&["chunked", "Chunked", "CHUNKED"][..]),
            "[ \t]{0,2}",
            any::<bool>(),
        ),
        (kind, body, chunks, last, trailers, then) in (
            0..3u8,
            prop::collection::vec(any::<u8>(), 0..3000),
            prop::collection::vec((1..700usize, size_line()), 0..12),
            size_line(),
            prop::collection::vec(("x-[a-z]{1,8}", "[!-~]{0,20}"), 0..4),
            prop::sample::select(&["", "HTTP/1.1 200 OK\r\n", "\r\n"][..]),
        ),
    ) -> Valid {
        let chunked = kind == 1 && !http10;
        let until_close = kind == 2;
        let mut head = format!("HTTP/1.{} {status} X\r\n", u8::from(!http10));
        let mut fields: Vec<String> = extra.iter().map(|(n, v)| format!("{n}: {v}")).collect();
        if let Some(ct) = &content_type {
            fields.push(format!("content-type: {ct}"));
        }
        if !connection.is_empty() {
            fields.push(format!("connection: {connection}"));
        }
        let framing_field = if chunked {
            Some(format!("{coding_name}:{ows}{coding}{ows}"))
        } else if !until_close {
            Some(format!("{length_name}:{ows}{}{ows}", body.len()))
        } else {
            None
        };
        if let Some(f) = framing_field {
            if twice && !chunked {
                fields.push(f.clone());
            }
            fields.insert(at.index(fields.len() + 1), f);
        }
        for f in fields {
            head.push_str(&f);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let mut wire = [informational.as_bytes(), head.as_bytes()].concat();
        if chunked {
            let mut rest = &body[..];
            for (size, line) in chunks.iter().chain([(usize::MAX, last.clone())].iter()) {
                if rest.is_empty() {
                    break;
                }
                let (data, after) = rest.split_at((*size).min(rest.len()));
                write_size(&mut wire, data.len(), line);
                wire.extend_from_slice(data);
                wire.extend_from_slice(b"\r\n");
                rest = after;
            }
            write_size(&mut wire, 0, &last);
            for (name, value) in &trailers {
                wire.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            }
            wire.extend_from_slice(b"\r\n");
        } else {
            wire.extend_from_slice(&body);
        }
        let rest = if until_close { vec![] } else { then.as_bytes().to_vec() };
        wire.extend_from_slice(&rest);
        let lower = connection.to_ascii_lowercase();
        let keep_alive = !until_close
            && !lower.contains("close")
            && (!http10 || lower.contains("keep-alive"));
        let framing = match (chunked, until_close) {
            (true, _) => Framing::Chunked,
            (_, true) => Framing::UntilClose,
            _ => Framing::Length(body.len() as u64),
        };
        Valid {
            wire,
            expected: Outcome::Read {
                head: ReplyHead {
                    status,
                    content_type: content_type.map(|c| HeaderValue::from_str(&c).unwrap()),
                    framing,
                    keep_alive,
                },
                body,
                ended: !until_close,
                rest,
            },
        }
    }
}

/// Bytes that break framing when put in the wrong place.
const NASTY: &[&[u8]] = &[
    b"\r",
    b"\n",
    b"\r\n",
    b"\r\n\r\n",
    b" ",
    b"\t",
    b"\x0c",
    b"\x00",
    b";",
    b"\"",
    b":",
    b"5\x0c",
    "\u{a0}".as_bytes(),
    "\u{85}".as_bytes(),
    b"0\r\n\r\n",
    b"ffffffffffffffff",
    b"10000000000000000",
    b"0000000000000005",
    b"transfer-encoding: chunked\r\n",
    b"transfer-encoding: gzip, chunked\r\n",
    b"content-length: 3\r\n",
    b"content-length: 99999999999999999999\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
];

/// One change to a valid reply.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(Index, u8),
    Delete(Index, usize),
    Insert(Index, &'static [u8]),
    /// A run of one byte past every line limit, as an endless extension,
    /// header or trailer would be.
    Long(Index, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<Index>(), 1..8usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<Index>(), prop::sample::select(NASTY)).prop_map(|(i, s)| Mutation::Insert(i, s)),
        (
            any::<Index>(),
            prop::sample::select(&[b'x', b';', b' ', b'0'][..])
        )
            .prop_map(|(i, b)| Mutation::Long(i, b)),
    ]
}

fn mutate(wire: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::Replace(i, b) if !wire.is_empty() => {
            let i = i.index(wire.len());
            wire[i] = *b;
        }
        Mutation::Replace(..) => {}
        Mutation::Delete(i, n) => {
            let i = i.index(wire.len() + 1);
            wire.drain(i..(i + n).min(wire.len()));
        }
        Mutation::Insert(i, s) => {
            let i = i.index(wire.len() + 1);
            wire.splice(i..i, s.iter().copied());
        }
        Mutation::Long(i, b) => {
            let i = i.index(wire.len() + 1);
            wire.splice(i..i, std::iter::repeat_n(*b, MAX_LINE_BYTES + 3));
        }
    }
}

proptest! {
    #[test]
    fn a_valid_reply_reads_the_same_however_it_is_split(
        valid in valid_reply(),
        cuts in prop::collection::vec(any::<Index>(), 0..12),
    ) {
        let Valid { wire, expected } = valid;
        prop_assert_eq!(&read(&wire, []), &expected, "whole: {:?}", wire.escape_ascii().to_string());
        prop_assert_eq!(&read(&wire, cuts_in(&cuts, wire.len())), &expected);
        prop_assert_eq!(&read(&wire, 1..wire.len()), &expected, "a byte at a time");
    }

    #[test]
    fn a_malformed_reply_is_refused_or_read_the_same_however_it_is_split(
        valid in valid_reply(),
        mutations in prop::collection::vec(mutation(), 1..4),
        cuts in prop::collection::vec(any::<Index>(), 0..12),
    ) {
        let mut wire = valid.wire;
        for m in &mutations {
            mutate(&mut wire, m);
        }
        let whole = read(&wire, []);
        prop_assert_eq!(&read(&wire, cuts_in(&cuts, wire.len())), &whole);
        prop_assert_eq!(&read(&wire, 1..wire.len()), &whole, "a byte at a time");
    }
}

#[test]
fn known_bad_replies_are_refused_however_they_are_split() {
    let bad: &[&[u8]] = &[
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\x0c\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\u{a0}\r\n\r\n0\r\n\r\n".as_bytes(),
        "HTTP/1.1 200 OK\r\ncontent-length: 5\u{85}\r\n\r\nhello".as_bytes(),
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10000000000000000\r\n",
    ];
    for wire in bad {
        for cuts in [vec![], (1..wire.len()).collect()] {
            assert!(
                matches!(read(wire, cuts), Outcome::Refused(_)),
                "{}",
                wire.escape_ascii()
            );
        }
    }
    let leading_zeros =
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0000000000000005\r\nhello\r\n0\r\n\r\n";
    let Outcome::Read { body, ended, .. } = read(leading_zeros, 1..leading_zeros.len()) else {
        panic!("a size of sixteen digits is valid");
    };
    assert_eq!((&body[..], ended), (&b"hello"[..], true));
}

#[test]
fn a_reply_at_every_limit_read_a_byte_at_a_time_takes_linear_time() {
    // A head just under its limit, then chunk-size lines and a trailer
    // section just under theirs: work per byte read that grew with what
    // is buffered would make this take minutes.
    let mut wire = format!(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-long: {}\r\n\r\n",
        "v".repeat(MAX_HEAD_BYTES - 200)
    )
    .into_bytes();
    for _ in 0..8 {
        let ext = ";".repeat(MAX_LINE_BYTES - 3);
        wire.extend_from_slice(format!("1{ext}\r\nx\r\n").as_bytes());
    }
    let value = "t".repeat(MAX_LINE_BYTES - 10);
    wire.extend_from_slice(format!("0\r\nx: {value}\r\n\r\n").as_bytes());
    let started = Instant::now();
    let Outcome::Read { body, ended, .. } = read(&wire, 1..wire.len()) else {
        panic!("a reply at its limits is valid");
    };
    let took = started.elapsed();
    assert_eq!((&body[..], ended), (&b"xxxxxxxx"[..], true));
    assert!(
        took < Duration::from_secs(2),
        "{} bytes a byte at a time took {took:?}",
        wire.len()
    );
}
