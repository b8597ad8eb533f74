//! The gateway's HTTP/1.1 on the wire, byte by byte from a raw socket:
//! framing it refuses (the ways requests are smuggled), chunked and
//! `Expect: 100-continue` bodies, pipelined and HTTP/1.0 requests, bodies
//! over the limit, and streamed replies in chunked encoding.

mod common;

use std::time::Duration;

use app::model::{KeyScope, TeamRole};
use common::gateway::*;
use sqlx::PgPool;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// A gateway in front of a fast simulator, and an inference key of a team
/// that may use llama3.2.
async fn setup(db: PgPool, extra: &[(&str, &str)]) -> (String, String, ollama_sim::Sim) {
    team(&db, "team-a", Some(&["llama3.2"])).await;
    let mia = user(&db, "mia", false).await;
    let olu = user(&db, "olu", false).await;
    let team_a = sqlx::query_scalar::<_, uuid::Uuid>("SELECT id FROM teams WHERE slug = 'team-a'")
        .fetch_one(&db)
        .await
        .unwrap();
    member(&db, team_a, mia, TeamRole::Member).await;
    member(&db, team_a, olu, TeamRole::Owner).await;
    let (_, secret) = issue_key(&db, "team-a", mia, olu, &[KeyScope::Inference], None).await;
    let (sim_url, sim) = start_sim(fast_sim()).await;
    let (gw_url, _gw) = start_gateway(db, &sim_url, extra).await;
    (gw_url.trim_start_matches("http://").to_owned(), secret, sim)
}

/// Writes `request`, then reads until the gateway closes or `until` has
/// come; everything read.
async fn exchange(addr: &str, request: &[u8], until: Option<&str>) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    read_until(&mut s, until).await
}

async fn read_until(s: &mut TcpStream, until: Option<&str>) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("the gateway answers within 10 s")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if until.is_some_and(|u| text.matches(u).count() > 0) {
            break;
        }
    }
    String::from_utf8(got).unwrap()
}

/// `POST /api/chat` over HTTP/`version` with the key and a sized body.
fn chat_request(version: &str, secret: &str, body: &str) -> String {
    format!(
        "POST /api/chat HTTP/{version}\r\nx-api-key: {secret}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn chat_body(stream: bool) -> String {
    format!(
        r#"{{"model":"llama3.2","stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#
    )
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn framing_that_could_smuggle_a_request_is_refused_and_the_connection_closed(db: PgPool) {
    let (addr, secret, sim) = setup(db, &[]).await;
    let body = chat_body(false);
    // hyper refuses what its parser will not take (its replies say only the
    // status); the gateway refuses what it is stricter about, and says why.
    // Either way the connection closes (`exchange` reads to the end).
    for (request, status, says) in [
        (
            // content-length and transfer-encoding together: the body is
            // read as chunked (RFC 9112 6.3), which this one is not.
            format!(
                "POST /api/chat HTTP/1.1\r\nhost: x\r\nx-api-key: {secret}\r\n\
                 content-length: {}\r\ntransfer-encoding: chunked\r\n\r\n{body}",
                body.len()
            ),
            "400 Bad Request",
            None,
        ),
        (
            format!(
                "POST /api/chat HTTP/1.1\r\nx-api-key: {secret}\r\ncontent-length: {}\r\n\
                 content-length: 3\r\n\r\n{body}",
                body.len()
            ),
            "400 Bad Request",
            None,
        ),
        (
            format!("POST /api/chat HTTP/1.1\r\ncontent-length: +5\r\n\r\n{body}"),
            "400 Bad Request",
            None,
        ),
        (
            "POST /api/chat HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\n\r\n".to_owned(),
            "501 Not Implemented",
            Some("only the chunked transfer-encoding"),
        ),
        (
            "GET /api/tags HTTP/1.1\r\nbad header\r\n\r\n".to_owned(),
            "400 Bad Request",
            None,
        ),
        (
            "GET http://ollama/api/tags HTTP/1.1\r\n\r\n".to_owned(),
            "400 Bad Request",
            Some("must be a path"),
        ),
        (
            format!(
                "GET /api/tags HTTP/1.1\r\nx-big: {}\r\n\r\n",
                "a".repeat(70_000)
            ),
            "431 Request Header Fields Too Large",
            None,
        ),
    ] {
        let reply = exchange(&addr, request.as_bytes(), None).await;
        assert!(
            reply.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{request:.80?}: {reply}"
        );
        if let Some(says) = says {
            assert!(reply.contains(says), "{request:.80?}: {reply}");
            assert!(reply.contains("connection: close\r\n"), "{reply}");
        }
    }
    assert_eq!(sim.stats().requests, 0, "none of them reached Ollama");
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn chunked_and_expect_continue_bodies_pipelined_requests_and_http_1_0_are_served(db: PgPool) {
    let (addr, secret, _sim) = setup(db, &[]).await;
    let body = chat_body(false);
    let (a, b) = body.split_at(10);

    // A chunked body, with an extension and a trailer.
    let request = format!(
        "POST /api/chat HTTP/1.1\r\nhost: x\r\nx-api-key: {secret}\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\n\r\n{:x};ext=1\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\nx-t: 1\r\n\r\n",
        a.len(),
        b.len()
    );
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let reply = read_until(&mut s, Some("\"done\":true")).await;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.contains("content-length: "), "{reply}");
    assert!(reply.contains("date: "), "{reply}");

    // Two requests in one write, on the same connection: two replies, in order.
    let one = format!(
        "GET /api/version HTTP/1.1\r\nx-api-key: {secret}\r\n\r\n\
         POST /api/chat HTTP/1.1\r\nx-api-key: {secret}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(one.as_bytes()).await.unwrap();
    let reply = read_until(&mut s, Some("\"done\":true")).await;
    let version = reply.find("\"version\"").expect("the version reply");
    let chat = reply.find("\"done\":true").expect("the chat reply");
    assert!(version < chat, "{reply}");
    assert_eq!(reply.matches("HTTP/1.1 200 OK").count(), 2, "{reply}");

    // Expect: 100-continue gets its interim reply before the body is sent.
    let head = format!(
        "POST /api/chat HTTP/1.1\r\nx-api-key: {secret}\r\nexpect: 100-continue\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let interim = read_until(&mut s, Some("\r\n\r\n")).await;
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(body.as_bytes()).await.unwrap();
    let reply = read_until(&mut s, Some("\"done\":true")).await;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");

    // HTTP/1.0: answered in HTTP/1.0, and the connection closes after the
    // reply (`exchange` reads to the end) unless asked to keep it.
    let request = chat_request("1.0", &secret, &body);
    let reply = exchange(&addr, request.as_bytes(), None).await;
    assert!(reply.starts_with("HTTP/1.0 200 OK\r\n"), "{reply}");
    assert!(!reply.contains("keep-alive"), "{reply}");
    assert!(
        reply.ends_with("}"),
        "the whole reply, then the close: {reply}"
    );
    // A stream to an HTTP/1.0 client is not chunked: it ends with the close.
    let body = chat_body(true);
    let request = chat_request("1.0", &secret, &body);
    let reply = exchange(&addr, request.as_bytes(), None).await;
    assert!(!reply.contains("transfer-encoding"), "{reply}");
    assert!(reply.trim_end().ends_with("}"), "{reply}");
    assert!(reply.contains("\"done\":true"), "{reply}");
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_stream_is_written_in_chunks_and_ends_with_the_last_chunk(db: PgPool) {
    let (addr, secret, _sim) = setup(db, &[]).await;
    let body = chat_body(true);
    let request = chat_request("1.1", &secret, &body);
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let reply = read_until(&mut s, Some("\r\n0\r\n\r\n")).await;
    let (head, chunks) = reply.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(
        head.contains("content-type: application/x-ndjson"),
        "{head}"
    );
    // Decoded, the chunks are Ollama's lines, the last one with its counts.
    let mut rest = chunks;
    let mut decoded = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size, 16).unwrap();
        if size == 0 {
            assert_eq!(after, "\r\n");
            break;
        }
        decoded.push_str(&after[..size]);
        rest = after[size..].strip_prefix("\r\n").unwrap();
    }
    let last = decoded.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["done"], true);
    assert!(v["eval_count"].as_u64().unwrap() > 0);
    // And the connection carries the next request.
    s.write_all(format!("GET /api/version HTTP/1.1\r\nx-api-key: {secret}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let reply = read_until(&mut s, Some("\"version\"")).await;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_body_over_the_limit_gets_a_413_in_the_clients_format_unread(db: PgPool) {
    let (addr, secret, sim) = setup(db, &[("CORRAL_GATEWAY__MAX_BODY_BYTES", "2048")]).await;
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nx-api-key: {secret}\r\ncontent-length: 100000\r\n\r\n{{\"model\":"
    );
    let reply = exchange(&addr, request.as_bytes(), None).await;
    assert!(reply.starts_with("HTTP/1.1 413 "), "{reply}");
    assert!(reply.contains("connection: close\r\n"), "{reply}");
    let (_, body) = reply.split_once("\r\n\r\n").unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("2048"),
        "{v}"
    );

    // Chunked, the limit holds too.
    let big = "x".repeat(3000);
    let request = format!(
        "POST /api/chat HTTP/1.1\r\nx-api-key: {secret}\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let reply = exchange(&addr, request.as_bytes(), None).await;
    assert!(reply.starts_with("HTTP/1.1 413 "), "{reply}");
    let (_, body) = reply.split_once("\r\n\r\n").unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(v["error"].as_str().unwrap().contains("2048"), "{v}");
    assert_eq!(sim.stats().requests, 0);
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_request_without_a_good_key_is_refused_from_its_head_before_its_body_is_read(db: PgPool) {
    let (addr, secret, sim) = setup(db, &[("CORRAL_GATEWAY__MAX_BODY_BYTES", "2048")]).await;
    // No key, a body announced and never sent: the 401 comes at once.
    let reply = exchange(
        &addr,
        b"POST /api/chat HTTP/1.1\r\ncontent-length: 1000\r\n\r\n",
        None,
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 401 "), "{reply}");
    assert!(reply.contains("connection: close\r\n"), "{reply}");
    assert!(reply.contains("missing API key"), "{reply}");

    // Asking to send the body first: refused without a 100 Continue.
    let reply = exchange(
        &addr,
        b"POST /v1/chat/completions HTTP/1.1\r\nx-api-key: crl_nope\r\nexpect: 100-continue\r\ncontent-length: 10\r\n\r\n",
        None,
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 401 "), "{reply}");
    assert!(!reply.contains("100 Continue"), "{reply}");

    // A good key and a body over the limit: 413, without a 100 Continue.
    let request = format!(
        "POST /api/chat HTTP/1.1\r\nx-api-key: {secret}\r\nexpect: 100-continue\r\ncontent-length: 5000\r\n\r\n"
    );
    let reply = exchange(&addr, request.as_bytes(), None).await;
    assert!(reply.starts_with("HTTP/1.1 413 "), "{reply}");

    // A refusal of a body-less request keeps the connection.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /api/tags HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let reply = read_until(&mut s, Some("missing API key")).await;
    assert!(reply.starts_with("HTTP/1.1 401 "), "{reply}");
    s.write_all(format!("GET /api/version HTTP/1.1\r\nx-api-key: {secret}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let reply = read_until(&mut s, Some("\"version\"")).await;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert_eq!(
        sim.stats().requests,
        1,
        "only the version request reached Ollama"
    );
}

/// A body larger than what is held ahead, sent at once (no `Expect:
/// 100-continue`) while the key is looked up in Postgres on its first use:
/// none of it is lost while the key is checked.
#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_large_body_sent_while_a_new_key_is_looked_up_arrives_whole(db: PgPool) {
    let (addr, secret, _sim) = setup(db, &[]).await;
    let content = "a".repeat(512 * 1024);
    let body = format!(
        r#"{{"model":"llama3.2","stream":false,"messages":[{{"role":"user","content":"{content}"}}]}}"#
    );
    let got = exchange(
        &addr,
        chat_request("1.1", &secret, &body).as_bytes(),
        Some("\"done\":true"),
    )
    .await;
    assert!(
        got.starts_with("HTTP/1.1 200 "),
        "{}",
        &got[..got.len().min(300)]
    );
}
