//! Request smuggling on the wire, against a real gateway in front of
//! ollama-sim: CL.TE, TE.CL and TE.TE (obfuscated `transfer-encoding`),
//! duplicate and malformed `content-length`, bare LF and CR, obs-fold, huge
//! and zero-padded chunk sizes, chunk extensions over 16 KiB, pipelined
//! requests with bodies, bodies holding a request.
//!
//! Every case is judged by what reached Ollama, read from the simulator's
//! journal: either the gateway refused it (a 4xx or 5xx) and closed the
//! connection, and nothing reached Ollama; or Ollama received exactly the
//! requests the client framed, each whole, with exactly the body meant, and
//! no other. Most cases carry a second request (`GET /api/version` with the
//! key) where a wrong reading of the framing would find one, so a gateway
//! that misreads forwards it, or forwards a body that is not the one meant.
//! The carrier is `GET /api/tags`, whose body the gateway passes on
//! unparsed, so that whatever framing it settles on shows in the journal.

mod common;

use std::time::Duration;

use common::gateway::*;
use ollama_sim::BodyEnd;
use sqlx::PgPool;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

/// One way of framing a request, and what Ollama may receive for it.
struct Case {
    name: String,
    wire: Vec<u8>,
    /// What Ollama must receive if the gateway serves the case: `(target,
    /// body)` of each request, in order.
    meant: Vec<(&'static str, Vec<u8>)>,
    /// Whether refusing it (and closing) is right too.
    may_refuse: bool,
}

impl Case {
    /// Invalid framing: it must be refused.
    fn refused(name: impl Into<String>, wire: Vec<u8>) -> Self {
        Self {
            name: name.into(),
            wire,
            meant: Vec::new(),
            may_refuse: true,
        }
    }

    /// Framing that may be refused, or read one way only: as `/api/tags`
    /// with `body`.
    fn tags_or_refused(name: impl Into<String>, wire: Vec<u8>, body: &[u8]) -> Self {
        Self {
            name: name.into(),
            wire,
            meant: vec![("/api/tags", body.to_vec())],
            may_refuse: true,
        }
    }

    /// Valid framing that must be served as `meant`.
    fn served(name: impl Into<String>, wire: Vec<u8>, meant: Vec<(&'static str, Vec<u8>)>) -> Self {
        Self {
            name: name.into(),
            wire,
            meant,
            may_refuse: false,
        }
    }
}

/// The pieces cases are made of, for one key.
struct Parts {
    secret: String,
}

impl Parts {
    /// The request a wrong reading would find: it reaches Ollama if the
    /// gateway takes it for one.
    fn smuggled(&self) -> Vec<u8> {
        format!(
            "GET /api/version HTTP/1.1\r\nhost: gw\r\nx-api-key: {}\r\n\r\n",
            self.secret
        )
        .into_bytes()
    }

    /// The head of the carrier, `GET /api/tags` with the key, with `fields`
    /// (whole lines, each ending in CRLF, or whatever a case needs) before
    /// the empty line.
    fn head(&self, fields: &[u8]) -> Vec<u8> {
        [
            b"GET /api/tags HTTP/1.1\r\nhost: gw\r\nx-api-key: ".as_slice(),
            self.secret.as_bytes(),
            b"\r\n",
            fields,
            b"\r\n",
        ]
        .concat()
    }

    fn request(&self, fields: &[u8], body: &[u8]) -> Vec<u8> {
        [self.head(fields), body.to_vec()].concat()
    }
}

/// `data` as one chunk and the last chunk.
fn chunked(data: &[u8]) -> Vec<u8> {
    [
        format!("{:x}\r\n", data.len()).as_bytes(),
        data,
        b"\r\n0\r\n\r\n",
    ]
    .concat()
}

/// The length of `data`'s chunk-size line, which a `content-length` that
/// stops short covers.
fn size_line(data: &[u8]) -> usize {
    format!("{:x}\r\n", data.len()).len()
}

fn cl(n: usize) -> Vec<u8> {
    format!("content-length: {n}\r\n").into_bytes()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Runs the cases one after another on fresh connections and fails with
/// every case that went wrong.
async fn check(w: &WireWorld, cases: Vec<Case>) {
    let total = cases.len();
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(why) = run(w, case).await {
            failures.push(format!("- {}: {why}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases went wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

async fn run(w: &WireWorld, case: &Case) -> Result<(), String> {
    w.sim.reset();
    let mut s = TcpStream::connect(&w.addr).await.unwrap();
    // The gateway may close before it has read everything: that is its right.
    let _ = s.write_all(&case.wire).await;
    let reply = read_reply(
        &mut s,
        case.meant.len().max(1),
        Duration::from_millis(500),
        Duration::from_secs(10),
    )
    .await;
    let got = settled_requests(&w.sim).await;
    let statuses = reply.statuses();
    if got.is_empty() {
        if !case.may_refuse {
            return Err(format!(
                "refused ({statuses:?}), but it is valid and must be served: {}",
                reply.excerpt()
            ));
        }
        let Some(&first) = statuses.first() else {
            return Err(format!(
                "no reply within 10 s (closed: {}): {}",
                reply.closed,
                reply.excerpt()
            ));
        };
        if !(400..600).contains(&first) {
            return Err(format!("answered {first} without reaching Ollama"));
        }
        if !reply.closed {
            return Err(format!(
                "refused with {first}, but the connection stayed open"
            ));
        }
        return Ok(());
    }
    let seen: Vec<(String, Vec<u8>)> = got
        .iter()
        .map(|r| (r.target.clone(), r.body.to_vec()))
        .collect();
    let meant: Vec<(String, Vec<u8>)> = case
        .meant
        .iter()
        .map(|(t, b)| ((*t).to_owned(), b.clone()))
        .collect();
    if seen != meant {
        // The key is left out of what is shown.
        let show = |v: &[(String, Vec<u8>)]| {
            v.iter()
                .map(|(t, b)| {
                    let body = String::from_utf8_lossy(b).replace(&w.secret, "<key>");
                    format!("{t} {body:?}")
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(format!(
            "Ollama received [{}], but the client meant {} (replies {statuses:?})",
            show(&seen),
            if meant.is_empty() {
                "nothing: it must be refused".to_owned()
            } else {
                format!("[{}]", show(&meant))
            }
        ));
    }
    if let Some(bad) = got.iter().find(|r| r.body_end != BodyEnd::Complete) {
        return Err(format!("{} reached Ollama {:?}", bad.target, bad.body_end));
    }
    Ok(())
}

async fn world(db: PgPool) -> (WireWorld, Parts) {
    let w = wire_world(db, fast_sim(), &[]).await;
    let parts = Parts {
        secret: w.secret.clone(),
    };
    (w, parts)
}

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

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn chunk_sizes_and_extensions_are_read_exactly_or_refused(db: PgPool) {
    let (w, p) = world(db).await;
    let s = p.smuggled();
    let te = b"transfer-encoding: chunked\r\n".as_slice();
    let body = |size: &[u8], rest: &[u8]| cat(&[size, b"\r\n", &s, b"\r\n", rest]);
    let ext = "e".repeat(17 * 1024);
    // The smuggled request's bytes one chunk each, each with a 400-byte
    // extension: 18 KiB of extensions in all.
    let many: Vec<u8> = s
        .iter()
        .flat_map(|b| {
            cat(&[
                format!("1;e={}\r\n", "x".repeat(400)).as_bytes(),
                &[*b],
                b"\r\n",
            ])
        })
        .chain(b"0\r\n\r\n".iter().copied())
        .collect();
    let cases = vec![
        Case::served(
            "an empty chunked body",
            p.request(te, b"0\r\n\r\n"),
            vec![("/api/tags", Vec::new())],
        ),
        Case::served(
            "16-digit chunk sizes with leading zeros",
            p.request(
                te,
                &body(
                    format!("{:016x}", s.len()).as_bytes(),
                    b"0000000000000000\r\n\r\n",
                ),
            ),
            vec![("/api/tags", s.clone())],
        ),
        Case::refused(
            "a chunk size past u64 (ffffffffffffffffff)",
            p.request(te, &body(b"ffffffffffffffffff", b"0\r\n\r\n")),
        ),
        Case::refused(
            "a chunk size of 2^64 (10000000000000000)",
            p.request(te, &body(b"10000000000000000", b"0\r\n\r\n")),
        ),
        Case::refused(
            "a 0x prefix",
            p.request(
                te,
                &body(format!("0x{:x}", s.len()).as_bytes(), b"0\r\n\r\n"),
            ),
        ),
        Case::refused(
            "a + sign",
            p.request(
                te,
                &body(format!("+{:x}", s.len()).as_bytes(), b"0\r\n\r\n"),
            ),
        ),
        Case::refused(
            "a form feed after the size",
            p.request(
                te,
                &body(format!("{:x}\x0c", s.len()).as_bytes(), b"0\r\n\r\n"),
            ),
        ),
        Case::refused(
            "chunk data longer than its size",
            p.request(te, &cat(&[b"5\r\n", &s, b"\r\n0\r\n\r\n"])),
        ),
        Case::tags_or_refused(
            "a chunk extension over 16 KiB",
            p.request(
                te,
                &body(format!("{:x};x={ext}", s.len()).as_bytes(), b"0\r\n\r\n"),
            ),
            &s,
        ),
        Case::tags_or_refused(
            "a last-chunk extension over 16 KiB",
            p.request(
                te,
                &body(
                    format!("{:x}", s.len()).as_bytes(),
                    format!("0;x={ext}\r\n\r\n").as_bytes(),
                ),
            ),
            &s,
        ),
        Case::tags_or_refused(
            "18 KiB of extensions over many chunks",
            p.request(te, &many),
            &s,
        ),
        Case::tags_or_refused(
            "a quoted extension value holding ; and =",
            p.request(
                te,
                &body(
                    format!("{:x};x=\"a;b=c\"", s.len()).as_bytes(),
                    b"0\r\n\r\n",
                ),
            ),
            &s,
        ),
        // Trailers never frame the message.
        Case::tags_or_refused(
            "framing fields in the trailer",
            p.request(
                te,
                &body(
                    format!("{:x}", s.len()).as_bytes(),
                    b"0\r\ncontent-length: 500\r\ntransfer-encoding: chunked\r\n\r\n",
                ),
            ),
            &s,
        ),
    ];
    check(&w, cases).await;
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn pipelined_requests_with_bodies_arrive_each_whole_and_bodies_holding_requests_stay_bodies(
    db: PgPool,
) {
    let (w, p) = world(db).await;
    let s = p.smuggled();
    let te = b"transfer-encoding: chunked\r\n".as_slice();
    let x = b"hello".as_slice();
    let chat =
        br#"{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}]}"#;
    let (a, b) = chat.split_at(20);
    let chat_chunked = cat(&[
        format!("{:x}\r\n", a.len()).as_bytes(),
        a,
        format!("\r\n{:x}\r\n", b.len()).as_bytes(),
        b,
        b"\r\n0\r\n\r\n",
    ]);
    let chat_request = cat(&[
        b"POST /api/chat HTTP/1.1\r\nhost: gw\r\nx-api-key: ",
        p.secret.as_bytes(),
        b"\r\ncontent-type: application/json\r\n",
        te,
        b"\r\n",
        &chat_chunked,
    ]);
    let cases = vec![
        Case::served(
            "a body that is a request (content-length)",
            p.request(&cl(s.len()), &s),
            vec![("/api/tags", s.clone())],
        ),
        Case::served(
            "a body that is a request (chunked)",
            p.request(te, &chunked(&s)),
            vec![("/api/tags", s.clone())],
        ),
        Case::served(
            "three pipelined requests with bodies in one write",
            cat(&[
                &p.request(&cl(x.len()), x),
                &chat_request,
                &p.request(&cl(s.len()), &s),
            ]),
            vec![
                ("/api/tags", x.to_vec()),
                ("/api/chat", chat.to_vec()),
                ("/api/tags", s.clone()),
            ],
        ),
        Case::served(
            "a body holding a request, then a real one",
            cat(&[&p.request(&cl(s.len()), &s), &s]),
            vec![("/api/tags", s.clone()), ("/api/version", Vec::new())],
        ),
        Case::served(
            "a chunked body holding a request, then a sized one",
            cat(&[&p.request(te, &chunked(&s)), &p.request(&cl(x.len()), x)]),
            vec![("/api/tags", s.clone()), ("/api/tags", x.to_vec())],
        ),
        Case::served(
            "expect: 100-continue with the body sent at once, then another request",
            cat(&[
                &p.request(&cat(&[b"expect: 100-continue\r\n", &cl(x.len())]), x),
                &s,
            ]),
            vec![("/api/tags", x.to_vec()), ("/api/version", Vec::new())],
        ),
    ];
    check(&w, cases).await;
}
