//! Request smuggling on the wire through the framing headers, against a
//! real gateway in front of ollama-sim: CL.TE, TE.CL and TE.TE (obfuscated
//! `transfer-encoding`), duplicate and malformed `content-length`, bare LF
//! and CR, obs-fold. Each case is judged by what reached Ollama, as
//! `common/smuggling.rs` says; chunked bodies and pipelining are in
//! `smuggling_chunks.rs`.

mod common;

use common::smuggling::*;
use sqlx::PgPool;

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn content_length_with_transfer_encoding_never_lets_a_second_request_through(db: PgPool) {
    let (w, p) = world(db).await;
    let s = p.smuggled();
    let te = b"transfer-encoding: chunked\r\n".as_slice();
    let last = b"0\r\n\r\n".as_slice();
    let cases = vec![
        // CL.TE: read by its length, the body hides the request; read as
        // chunked, the body is empty and the request follows, on a
        // connection RFC 9112 6.3 says to close after this reply.
        Case::tags_or_refused(
            "CL.TE: content-length over an empty chunked body and a request",
            p.request(&cat(&[&cl(last.len() + s.len()), te]), &cat(&[last, &s])),
            b"",
        ),
        // TE.CL: read by its length, the body ends at the chunk size and
        // the chunk's data is a request.
        Case::tags_or_refused(
            "TE.CL: content-length that stops after the chunk size",
            p.request(&cat(&[&cl(size_line(&s)), te]), &chunked(&s)),
            &s,
        ),
        Case::tags_or_refused(
            "TE.CL with transfer-encoding first",
            p.request(&cat(&[te, &cl(size_line(&s))]), &chunked(&s)),
            &s,
        ),
        Case::tags_or_refused(
            "TE.CL with content-length: 0",
            p.request(&cat(&[&cl(0), te]), &chunked(&s)),
            &s,
        ),
        // RFC 9112 6.1: transfer-encoding in HTTP/1.0 is faulty framing.
        Case::refused(
            "HTTP/1.0 with transfer-encoding and a short content-length",
            cat(&[
                b"GET /api/tags HTTP/1.0\r\nconnection: keep-alive\r\nx-api-key: ",
                p.secret.as_bytes(),
                b"\r\n",
                te,
                &cl(size_line(&s)),
                b"\r\n",
                &chunked(&s),
            ]),
        ),
    ];
    check(&w, cases).await;
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn obfuscated_transfer_encodings_are_refused_or_read_as_chunked_only(db: PgPool) {
    let (w, p) = world(db).await;
    let s = p.smuggled();
    // (the field line(s), whether they say chunked to a careful reader)
    let obfuscations: Vec<(&str, &[u8], bool)> = vec![
        ("xchunked", b"Transfer-Encoding: xchunked\r\n", false),
        (
            "extra OWS before",
            b"Transfer-Encoding:  \tchunked\r\n",
            true,
        ),
        ("OWS after", b"Transfer-Encoding: chunked \t\r\n", true),
        (
            "chunked, identity",
            b"Transfer-Encoding: chunked, identity\r\n",
            false,
        ),
        (
            "identity, chunked",
            b"Transfer-Encoding: identity, chunked\r\n",
            true,
        ),
        (
            "gzip, chunked",
            b"Transfer-Encoding: gzip, chunked\r\n",
            false,
        ),
        (
            "chunked, chunked",
            b"Transfer-Encoding: chunked, chunked\r\n",
            false,
        ),
        (
            "tab before the colon",
            b"Transfer-Encoding\t: chunked\r\n",
            false,
        ),
        (
            "space before the colon",
            b"Transfer-Encoding : chunked\r\n",
            false,
        ),
        (
            "a second header: identity",
            b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
            false,
        ),
        (
            "a second header: chunked",
            b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n",
            true,
        ),
        (
            "a second header: chunked again",
            b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            false,
        ),
        (
            "chunked + NBSP (obs-text)",
            b"Transfer-Encoding: chunked\xC2\xA0\r\n",
            false,
        ),
        (
            "NBSP + chunked (obs-text)",
            b"Transfer-Encoding: \xC2\xA0chunked\r\n",
            false,
        ),
        (
            "chunked + NEL (obs-text)",
            b"Transfer-Encoding: chunked\xC2\x85\r\n",
            false,
        ),
        (
            "chunked + vertical tab",
            b"Transfer-Encoding: chunked\x0b\r\n",
            false,
        ),
        (
            "chunked + form feed",
            b"Transfer-Encoding: chunked\x0c\r\n",
            false,
        ),
        ("quoted", b"Transfer-Encoding: \"chunked\"\r\n", false),
        (
            "with a parameter",
            b"Transfer-Encoding: chunked;q=1\r\n",
            false,
        ),
        ("upper-case value", b"Transfer-Encoding: CHUNKED\r\n", true),
        ("upper-case name", b"TRANSFER-ENCODING: chunked\r\n", true),
        (
            "obs-fold before the value",
            b"Transfer-Encoding:\r\n chunked\r\n",
            true,
        ),
        (
            "obs-fold after a coding",
            b"Transfer-Encoding: xyz\r\n chunked\r\n",
            false,
        ),
    ];
    let last = b"0\r\n\r\n".as_slice();
    let mut cases = Vec::new();
    for (name, te, is_chunked) in obfuscations {
        // TE.CL: a length that stops at the chunk size.
        let wire = p.request(&cat(&[te, &cl(size_line(&s))]), &chunked(&s));
        cases.push(if is_chunked {
            Case::tags_or_refused(format!("TE.CL, {name}"), wire, &s)
        } else {
            Case::refused(format!("TE.CL, {name}"), wire)
        });
        // CL.TE: a length over an empty chunked body and a request.
        let wire = p.request(&cat(&[te, &cl(last.len() + s.len())]), &cat(&[last, &s]));
        cases.push(if is_chunked {
            Case::tags_or_refused(format!("CL.TE, {name}"), wire, b"")
        } else {
            Case::refused(format!("CL.TE, {name}"), wire)
        });
        // No content-length: ignoring the coding leaves the body unread.
        let wire = p.request(te, &chunked(&s));
        cases.push(if is_chunked {
            Case::tags_or_refused(format!("TE alone, {name}"), wire, &s)
        } else {
            Case::refused(format!("TE alone, {name}"), wire)
        });
    }
    check(&w, cases).await;
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn duplicate_and_malformed_content_lengths_are_refused_or_read_as_one_length(db: PgPool) {
    let (w, p) = world(db).await;
    let s = p.smuggled();
    let x = b"hello".as_slice();
    let (short, long) = (x.len(), x.len() + s.len());
    let xs = cat(&[x, &s]);
    let field = |value: &[u8]| cat(&[b"content-length: ", value, b"\r\n"]);
    let cases = vec![
        Case::tags_or_refused("5, 5", p.request(&field(b"5, 5"), x), x),
        Case::tags_or_refused("5,5", p.request(&field(b"5,5"), x), x),
        Case::tags_or_refused(
            "the same length twice",
            p.request(&cat(&[&cl(short), &cl(short)]), x),
            x,
        ),
        Case::tags_or_refused("leading zeros", p.request(&field(b"005"), x), x),
        Case::tags_or_refused("OWS around", p.request(&field(b" \t5 \t"), x), x),
        Case::refused(
            "two lengths comma-joined (5,N)",
            p.request(&field(format!("{short},{long}").as_bytes()), &xs),
        ),
        Case::refused(
            "two lengths comma-joined (5, N)",
            p.request(&field(format!("{short}, {long}").as_bytes()), &xs),
        ),
        Case::refused(
            "two lengths comma-joined (N, 5)",
            p.request(&field(format!("{long}, {short}").as_bytes()), &xs),
        ),
        Case::refused(
            "two headers, short first",
            p.request(&cat(&[&cl(short), &cl(long)]), &xs),
        ),
        Case::refused(
            "two headers, long first",
            p.request(&cat(&[&cl(long), &cl(short)]), &xs),
        ),
        Case::refused("+5", p.request(&field(b"+5"), &xs)),
        Case::refused("-5", p.request(&field(b"-5"), &xs)),
        Case::refused(
            "hexadecimal 0x…",
            p.request(&field(format!("0x{:x}", s.len()).as_bytes()), &s),
        ),
        Case::refused("5 + NEL (obs-text)", p.request(&field(b"5\xC2\x85"), &xs)),
        Case::refused("NBSP + 5 (obs-text)", p.request(&field(b"\xC2\xA05"), &xs)),
        Case::refused("5 + form feed", p.request(&field(b"5\x0c"), &xs)),
        Case::refused("5 + vertical tab", p.request(&field(b"5\x0b"), &xs)),
        Case::refused("5 5", p.request(&field(b"5 5"), &xs)),
        Case::refused("5.0", p.request(&field(b"5.0"), &xs)),
        Case::refused("empty", p.request(&field(b""), &s)),
        Case::refused("past u64", p.request(&field(b"184467440737095516160"), &xs)),
        Case::refused(
            "space before the colon",
            p.request(format!("content-length : {}\r\n", s.len()).as_bytes(), &s),
        ),
        Case::refused(
            "obs-fold in the length",
            p.request(
                format!("content-length: {short}\r\n {long}\r\n").as_bytes(),
                &xs,
            ),
        ),
    ];
    check(&w, cases).await;
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn bare_line_feeds_carriage_returns_and_obs_folds_never_hide_a_framing_header(db: PgPool) {
    let (w, p) = world(db).await;
    let s = p.smuggled();
    let x = b"hello".as_slice();
    let te = b"transfer-encoding: chunked\r\n".as_slice();
    let raw = chunked(&s);
    let key = p.secret.as_bytes();
    let head_with_cl5 = p.head(&cl(5));
    let cases =
        vec![
        Case::tags_or_refused(
            "a head with bare LF line ends",
            cat(&[
                b"GET /api/tags HTTP/1.1\nhost: gw\nx-api-key: ",
                key,
                b"\ncontent-length: 5\n\n",
                x,
            ]),
            x,
        ),
        Case::tags_or_refused(
            "a bare LF before the empty line",
            cat(&[&head_with_cl5[..head_with_cl5.len() - 2], b"\n", x]),
            x,
        ),
        // Taken as a line end, the LF starts a transfer-encoding field (and
        // the body is chunked); kept in the value, the field is invalid.
        Case::tags_or_refused(
            "a bare LF hiding transfer-encoding in another field",
            p.request(
                &cat(&[b"x-a: b\ntransfer-encoding: chunked\r\n", &cl(size_line(&s))]),
                &raw,
            ),
            &s,
        ),
        // A bare CR must be refused or read as a space (RFC 9112 2.2): the
        // body is then `content-length` long.
        Case::tags_or_refused(
            "a bare CR hiding transfer-encoding in another field",
            p.request(
                &cat(&[b"x-a: b\rtransfer-encoding: chunked\r\n", &cl(raw.len())]),
                &raw,
            ),
            &raw,
        ),
        Case::tags_or_refused(
            "bare LF line ends in a chunked body",
            p.request(te, &cat(&[format!("{:x}\n", s.len()).as_bytes(), &s, b"\n0\n\n"])),
            &s,
        ),
        Case::refused(
            "chunk data not followed by CRLF",
            p.request(te, &cat(&[format!("{:x}\r\n", s.len()).as_bytes(), &s, b"0\r\n\r\n"])),
        ),
        // obs-fold: refused, or the continuation joins the field before it.
        Case::tags_or_refused(
            "obs-fold hiding transfer-encoding in another field",
            p.request(
                &cat(&[b"x-a: b\r\n transfer-encoding: chunked\r\n", &cl(raw.len())]),
                &raw,
            ),
            &raw,
        ),
        Case::tags_or_refused(
            "obs-fold with a tab hiding transfer-encoding",
            p.request(
                &cat(&[b"x-a: b\r\n\ttransfer-encoding: chunked\r\n", &cl(raw.len())]),
                &raw,
            ),
            &raw,
        ),
        Case::tags_or_refused(
            "obs-fold in transfer-encoding, no length",
            p.request(b"transfer-encoding:\r\n chunked\r\n", &raw),
            &s,
        ),
        // Whitespace before the first field: refused, or the line ignored
        // (RFC 9112 2.2).
        Case::tags_or_refused(
            "a first field line led by whitespace",
            cat(&[
                b"GET /api/tags HTTP/1.1\r\n transfer-encoding: chunked\r\nhost: gw\r\nx-api-key: ",
                key,
                b"\r\n",
                &cl(raw.len()),
                b"\r\n",
                &raw,
            ]),
            &raw,
        ),
        Case::refused(
            "a space inside a field name",
            p.request(&cat(&[b"transfer encoding: chunked\r\n", &cl(size_line(&s))]), &raw),
        ),
        Case::refused(
            "a field line without a colon before transfer-encoding",
            p.request(&cat(&[b"x-a b\r\n", te, &cl(size_line(&s))]), &raw),
        ),
    ];
    check(&w, cases).await;
}
