//! Request smuggling on the wire through chunked bodies and pipelining,
//! against a real gateway in front of ollama-sim: huge and zero-padded
//! chunk sizes, chunk extensions over 16 KiB, trailers, pipelined requests
//! with bodies, bodies holding a request. Each case is judged by what
//! reached Ollama, as `common/smuggling.rs` says.

mod common;

use common::smuggling::*;
use sqlx::PgPool;

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
