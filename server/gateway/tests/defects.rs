//! One regression test on a real socket for each wire defect of issue 12:
//! pipelined data past what is held during a stream, obs-text in framing
//! headers, a client that stops reading, a head sent a byte at a time,
//! connections past the cap and the request-rate limit before the body,
//! methods and model paths Ollama does not serve. What reached Ollama is read
//! from ollama-sim's journal.

mod common;

use std::time::{Duration, Instant};

use app::model::{KeyScope, TeamRole};
use common::gateway::*;
use common::wire::*;
use ollama_sim::BodyEnd;
use sqlx::PgPool;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const CHAT: &str =
    r#"{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}]}"#;

fn chat_request(secret: &str, body: &str) -> String {
    format!(
        "POST /api/chat HTTP/1.1\r\nhost: gw\r\nx-api-key: {secret}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// `(target, body)` of what ollama-sim received, each whole.
async fn received(sim: &ollama_sim::Sim) -> Vec<(String, Vec<u8>)> {
    let got = settled_requests(sim).await;
    for r in &got {
        assert_eq!(
            r.body_end,
            BodyEnd::Complete,
            "{} reached Ollama cut",
            r.target
        );
    }
    got.into_iter()
        .map(|r| (r.target, r.body.to_vec()))
        .collect()
}

/// Defect 1: bytes of a pipelined request past the 64 KiB held during a
/// streamed reply were dropped and the connection kept, so the request
/// after the stream was stitched from both sides of the hole.
#[sqlx::test(migrator = "app::MIGRATOR")]
async fn pipelined_data_past_64_kib_during_a_stream_is_never_stitched_into_a_request(db: PgPool) {
    let w = wire_world(
        db,
        ollama_sim::SimConfig {
            ttft: Duration::from_millis(5),
            token_gap: Duration::from_millis(5),
            ..Default::default()
        },
        &[],
    )
    .await;
    let stream = r#"{"model":"llama3.2","stream":true,"messages":[{"role":"user","content":"a story [sim:tokens=400]"}]}"#;
    // 100 KiB whose every line says where it stands.
    let pattern: String = (0..)
        .map(|i| format!("p2-{:08}\n", i * 12))
        .take(100 * 1024 / 12)
        .collect();
    let second = format!(
        "GET /api/tags HTTP/1.1\r\nhost: gw\r\nx-api-key: {}\r\ncontent-length: {}\r\n\r\n{pattern}",
        w.secret,
        pattern.len()
    );
    let third = format!(
        "GET /api/version HTTP/1.1\r\nhost: gw\r\nx-api-key: {}\r\n\r\n",
        w.secret
    );
    let filler = "Z".repeat(40_000);
    let after = format!(
        "GET /api/ps HTTP/1.1\r\nhost: gw\r\nx-api-key: {}\r\ncontent-length: {}\r\n\r\n{filler}",
        w.secret,
        filler.len()
    );

    let s = TcpStream::connect(&w.addr).await.unwrap();
    let (mut rx, mut tx) = s.into_split();
    let (stream_ended, ended) = tokio::sync::oneshot::channel::<()>();
    let (stream_started, started) = tokio::sync::oneshot::channel::<()>();
    let writer = {
        let first = chat_request(&w.secret, stream);
        let pipelined = format!("{second}{third}");
        tokio::spawn(async move {
            tx.write_all(first.as_bytes()).await.unwrap();
            // While the reply streams: more than 64 KiB of pipelined requests.
            if started.await.is_ok() {
                let _ = tx.write_all(pipelined.as_bytes()).await;
            }
            // After it: one more request, whose bytes would fill a hole.
            if ended.await.is_ok() {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let _ = tx.write_all(after.as_bytes()).await;
            }
            tx
        })
    };
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut started = Some(stream_started);
    let mut ended = Some(stream_ended);
    let mut closed = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let enough = answers(&bytes).len() >= 4;
        let wait = if enough {
            Duration::from_secs(1)
        } else {
            deadline.saturating_duration_since(Instant::now())
        };
        match tokio::time::timeout(wait, rx.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
        let text = String::from_utf8_lossy(&bytes);
        if text.contains("\"done\":false")
            && let Some(tx) = started.take()
        {
            let _ = tx.send(());
        }
        if !answers(&bytes).is_empty()
            && let Some(tx) = ended.take()
        {
            let _ = tx.send(());
        }
    }
    let _tx = writer.await.unwrap();
    let statuses: Vec<u16> = answers(&bytes).iter().map(|a| a.status).collect();
    assert_eq!(statuses.first(), Some(&200), "the stream: {statuses:?}");
    assert!(
        started.is_none(),
        "the stream had begun before the pipelined requests"
    );

    let got = received(&w.sim).await;
    let meant: Vec<(String, Vec<u8>)> = vec![
        ("/api/chat".into(), stream.as_bytes().to_vec()),
        ("/api/tags".into(), pattern.into_bytes()),
        ("/api/version".into(), Vec::new()),
        ("/api/ps".into(), filler.into_bytes()),
    ];
    let show = |v: &[(String, Vec<u8>)]| -> Vec<String> {
        v.iter()
            .map(|(t, b)| format!("{t} ({} bytes)", b.len()))
            .collect()
    };
    assert!(
        got.len() <= meant.len() && got[..] == meant[..got.len()],
        "Ollama received {:?}, not the requests the client sent ({:?}){}",
        show(&got),
        show(&meant),
        match got.get(1) {
            Some((t, b)) if t == "/api/tags" && b != &meant[1].1 => format!(
                ": the second request's body was stitched, it ends {:?}",
                String::from_utf8_lossy(&b[b.len().saturating_sub(40)..])
            ),
            _ => String::new(),
        }
    );
    assert!(
        got.len() == meant.len() || closed,
        "only {:?} reached Ollama, yet the connection stayed open",
        show(&got)
    );
}

/// Defect 2: `str::trim` took Unicode whitespace (NBSP, NEL) for optional
/// whitespace around `transfer-encoding` and `content-length`. Only space
/// and tab are; obs-text in a framing header is a 400.
#[sqlx::test(migrator = "app::MIGRATOR")]
async fn obs_text_in_transfer_encoding_or_content_length_is_a_400(db: PgPool) {
    let w = wire_world(db, fast_sim(), &[]).await;
    let head = |field: &[u8]| {
        [
            b"POST /api/chat HTTP/1.1\r\nhost: gw\r\nx-api-key: ".as_slice(),
            w.secret.as_bytes(),
            b"\r\ncontent-type: application/json\r\n",
            field,
            b"\r\n\r\n",
        ]
        .concat()
    };
    let chunked = format!("{:x}\r\n{CHAT}\r\n0\r\n\r\n", CHAT.len());
    let len = CHAT.len().to_string();
    let te = |value: &[u8]| {
        [
            head(&[b"transfer-encoding: ", value].concat()),
            chunked.clone().into_bytes(),
        ]
        .concat()
    };
    let cl = |before: &[u8], after: &[u8]| {
        [
            head(&[b"content-length: ", before, len.as_bytes(), after].concat()),
            CHAT.as_bytes().to_vec(),
        ]
        .concat()
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("chunked + NBSP", te(b"chunked\xC2\xA0")),
        ("NBSP + chunked", te(b"\xC2\xA0chunked")),
        ("chunked + NEL", te(b"chunked\xC2\x85")),
        ("chunked + EM SPACE", te(b"chunked\xE2\x80\x83")),
        ("chunked + a lone obs-text byte", te(b"chunked\xA0")),
        ("length + NEL", cl(b"", b"\xC2\x85")),
        ("NBSP + length", cl(b"\xC2\xA0", b"")),
        ("length + IDEOGRAPHIC SPACE", cl(b"", b"\xE3\x80\x80")),
        ("length + a lone obs-text byte", cl(b"", b"\xFF")),
    ];
    let mut wrong = Vec::new();
    for (name, wire) in &cases {
        w.sim.reset();
        let reply = exchange(&w.addr, wire, 1).await;
        let statuses = reply.statuses();
        let got = received(&w.sim).await;
        if statuses.first() != Some(&400) || !reply.closed || !got.is_empty() {
            wrong.push(format!(
                "{name}: answered {statuses:?}, closed: {}, reached Ollama {} time(s)",
                reply.closed,
                got.len()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "not refused with 400:\n{}",
        wrong.join("\n")
    );
}

/// Defect 3: with no send timeout, a key holder who stopped reading a
/// stream held its Ollama connection, an upstream slot and the queue depth
/// the autoscaler reads, for ever.
#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_client_that_stops_reading_a_stream_is_cut_after_the_send_timeout_and_its_slot_freed(
    db: PgPool,
) {
    let w = wire_world(
        db,
        ollama_sim::SimConfig {
            ttft: Duration::from_millis(1),
            token_gap: Duration::from_millis(1),
            ..Default::default()
        },
        &[("CORRAL_GATEWAY__SEND_TIMEOUT_SECS", "2")],
    )
    .await;
    let body = r#"{"model":"llama3.2","stream":true,"messages":[{"role":"user","content":"an endless story [sim:tokens=1000000]"}]}"#;
    // A small receive window, so that the gateway's writes back up soon.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket.connect(w.addr.parse().unwrap()).await.unwrap();
    s.write_all(chat_request(&w.secret, body).as_bytes())
        .await
        .unwrap();

    // Read for longer than the send timeout: a client that reads is not cut.
    let mut buf = vec![0u8; 16 * 1024];
    let reading = Instant::now();
    let mut got = 0usize;
    while reading.elapsed() < Duration::from_secs(3) {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got += n,
            other => panic!("the stream stopped while read, after {got} bytes: {other:?}"),
        }
    }
    assert!(got > 10_000, "the stream flows: {got} bytes in 3 s");
    let stats = w.sim.stats();
    assert_eq!(
        (stats.active, stats.cancelled),
        (1, 0),
        "a stream being read runs on: {stats:?}"
    );
    assert_eq!(
        metric(&w.url, "corral_gateway_upstream_in_flight").await,
        1.0
    );

    // Now the client stops reading, and keeps the connection open.
    let stopped = Instant::now();
    assert!(
        eventually(Duration::from_secs(30), || async {
            w.sim.stats().cancelled == 1
        })
        .await,
        "the generation goes on 30 s after the client stopped reading: {:?}",
        w.sim.stats()
    );
    let cut = stopped.elapsed();
    assert!(
        cut >= Duration::from_millis(1900),
        "cut {cut:?} after the client stopped reading, before the send timeout"
    );
    assert_eq!(w.sim.stats().active, 0);
    assert!(
        eventually(Duration::from_secs(5), || async {
            metric(&w.url, "corral_gateway_upstream_in_flight").await == 0.0
                && metric(&w.url, "ollama_queue_depth").await == 0.0
        })
        .await,
        "the upstream slot is freed"
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            usage_count(&w.db, w.team).await == 1
        })
        .await,
        "the cut request is recorded"
    );
    let status: i16 = sqlx::query_scalar("SELECT status FROM usage_events")
        .fetch_one(&w.db)
        .await
        .unwrap();
    assert!(
        status >= 400,
        "recorded as {status}, not as a reply that went out whole"
    );
    drop(s);
}

/// Writes `wire` on a new connection, the first `at_once` bytes in one
/// write and the rest a byte per write, each write given time to be read
/// on its own; how long until the whole reply came, and its status.
async fn trickle(addr: &str, wire: &[u8], at_once: usize) -> (Duration, Option<u16>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let start = Instant::now();
    s.write_all(&wire[..at_once]).await.unwrap();
    for byte in &wire[at_once..] {
        s.write_all(std::slice::from_ref(byte)).await.unwrap();
        tokio::task::yield_now().await;
    }
    let reply = read_reply(&mut s, 1, Duration::ZERO, Duration::from_secs(120)).await;
    (start.elapsed(), reply.statuses().first().copied())
}

/// Defect 4: the head was parsed again from its start on every read, so a
/// head sent a byte at a time cost time quadratic in its size. Measured
/// against the same bytes sent as a body, so that a loaded machine slows
/// both alike.
#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_60_kib_head_sent_a_byte_at_a_time_is_read_as_fast_as_a_body_sent_so(db: PgPool) {
    let w = wire_world(db, fast_sim(), &[]).await;
    let pad: String = (0..30)
        .map(|i| format!("x-pad-{i:02}: {}\r\n", "a".repeat(2000)))
        .collect();
    let head = format!(
        "GET /api/version HTTP/1.1\r\nhost: gw\r\nx-api-key: {}\r\n{pad}\r\n",
        w.secret
    );
    assert!((58_000..62_000).contains(&head.len()), "{}", head.len());
    let body = "b".repeat(head.len());
    let sized = format!(
        "GET /api/tags HTTP/1.1\r\nhost: gw\r\nx-api-key: {}\r\ncontent-length: {}\r\n\r\n",
        w.secret,
        body.len()
    );

    let (body_time, status) =
        trickle(&w.addr, format!("{sized}{body}").as_bytes(), sized.len()).await;
    assert_eq!(status, Some(200), "the body sent a byte at a time");
    let (head_time, status) = trickle(&w.addr, head.as_bytes(), 0).await;
    assert_eq!(status, Some(200), "the head sent a byte at a time");
    assert!(
        head_time < body_time * 4 + Duration::from_secs(2) && head_time < Duration::from_secs(30),
        "the head took {head_time:?}, the same bytes as a body {body_time:?}"
    );
}

/// Defect 5, connections: there was no cap on open connections per process.
#[sqlx::test(migrator = "app::MIGRATOR")]
async fn connections_beyond_max_connections_are_refused_at_once_not_left_hanging(db: PgPool) {
    let w = wire_world(db, fast_sim(), &[("CORRAL_GATEWAY__MAX_CONNECTIONS", "2")]).await;
    let version = format!(
        "GET /api/version HTTP/1.1\r\nhost: gw\r\nx-api-key: {}\r\n\r\n",
        w.secret
    );
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(&w.addr).await.unwrap();
        s.write_all(version.as_bytes()).await.unwrap();
        let reply = read_reply(
            &mut s,
            1,
            Duration::from_millis(50),
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(reply.statuses(), [200], "{}", reply.excerpt());
        assert!(!reply.closed);
        open.push(s);
    }

    let started = Instant::now();
    let reply = exchange(&w.addr, version.as_bytes(), 1).await;
    let statuses = reply.statuses();
    assert!(
        reply.closed && (statuses.is_empty() || statuses == [503]),
        "a third connection got {statuses:?} (closed: {}) after {:?}: {}",
        reply.closed,
        started.elapsed(),
        reply.excerpt()
    );
    assert_eq!(
        w.sim.requests().len(),
        2,
        "the third request never reached Ollama"
    );

    // A connection that closes makes room for another.
    drop(open.pop());
    assert!(
        eventually(Duration::from_secs(5), || async {
            exchange(&w.addr, version.as_bytes(), 1).await.statuses() == [200]
        })
        .await,
        "a connection is served again once one has closed"
    );
}

/// Defect 5, rate: the request-rate limit was checked only after the body
/// (up to `max_body_bytes`) had been read.
#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_key_over_its_request_rate_gets_429_before_its_body_is_read(db: PgPool) {
    let w = wire_world(db, fast_sim(), &[]).await;
    sqlx::query("UPDATE api_keys SET rpm_limit = 1 WHERE id = $1")
        .bind(w.key_id)
        .execute(&w.db)
        .await
        .unwrap();
    // Limits count in calendar minutes: not at the end of one.
    let second = time::OffsetDateTime::now_utc().second();
    if second >= 50 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - second))).await;
    }
    let reply = exchange(&w.addr, chat_request(&w.secret, CHAT).as_bytes(), 1).await;
    assert_eq!(reply.statuses(), [200], "the minute's one request");

    let big = 8 * 1024 * 1024;
    for (name, expect) in [
        ("asking to send the body", "expect: 100-continue\r\n"),
        ("sending no body yet", ""),
    ] {
        let head = format!(
            "POST /api/chat HTTP/1.1\r\nhost: gw\r\nx-api-key: {}\r\ncontent-type: application/json\r\n{expect}content-length: {big}\r\n\r\n",
            w.secret
        );
        let started = Instant::now();
        let reply = exchange(&w.addr, head.as_bytes(), 1).await;
        let answers = reply.answers();
        assert!(
            answers.iter().all(|a| a.status != 100),
            "{name}: 100 Continue to a key over its limit: {}",
            reply.excerpt()
        );
        let first = answers.first();
        assert_eq!(
            first.map(|a| a.status),
            Some(429),
            "{name}: {} after {:?}",
            reply.excerpt(),
            started.elapsed()
        );
        assert!(
            first.and_then(|a| a.header("retry-after")).is_some(),
            "{name}: a retry-after"
        );
    }
    assert_eq!(
        w.sim.requests().len(),
        1,
        "only the first request reached Ollama"
    );
}

/// Defect 6, methods: every method on list and info routes was forwarded
/// as sent (`DELETE /api/tags` reached Ollama).
#[sqlx::test(migrator = "app::MIGRATOR")]
async fn methods_ollama_does_not_serve_on_a_route_get_405_with_allow_and_never_reach_it(
    db: PgPool,
) {
    let w = wire_world(db, fast_sim(), &[]).await;
    let mut wrong = Vec::new();
    for (method, path) in [
        ("DELETE", "/api/tags"),
        ("POST", "/api/tags"),
        ("PUT", "/api/version"),
        ("POST", "/api/version"),
        ("DELETE", "/api/version"),
        ("PATCH", "/api/ps"),
        ("DELETE", "/v1/models"),
        ("POST", "/v1/models"),
        ("DELETE", "/v1/models/llama3.2"),
        ("PUT", "/v1/models/llama3.2"),
        ("GET", "/api/chat"),
        ("PUT", "/api/chat"),
        ("DELETE", "/api/generate"),
        ("GET", "/v1/chat/completions"),
    ] {
        let wire = format!(
            "{method} {path} HTTP/1.1\r\nhost: gw\r\nx-api-key: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{CHAT}",
            w.secret,
            CHAT.len()
        );
        let reply = exchange(&w.addr, wire.as_bytes(), 1).await;
        let answers = reply.answers();
        let first = answers.first();
        if first.map(|a| a.status) != Some(405)
            || first
                .and_then(|a| a.header("allow"))
                .is_none_or(str::is_empty)
        {
            wrong.push(format!(
                "{method} {path}: {:?}, allow: {:?}",
                first.map(|a| a.status),
                first.and_then(|a| a.header("allow"))
            ));
        }
    }
    let reached: Vec<String> = received(&w.sim)
        .await
        .into_iter()
        .map(|(target, _)| target)
        .collect();
    assert!(
        wrong.is_empty() && reached.is_empty(),
        "not a 405 with allow:\n{}\nreached Ollama: {reached:?}",
        wrong.join("\n")
    );

    // The documented methods still pass.
    let reply = exchange(
        &w.addr,
        format!(
            "GET /api/tags HTTP/1.1\r\nhost: gw\r\nx-api-key: {}\r\n\r\n",
            w.secret
        )
        .as_bytes(),
        1,
    )
    .await;
    assert_eq!(reply.statuses(), [200]);
}

/// Defect 6, paths: `/v1/models/{model}` took the rest of the path, so
/// `DELETE /v1/models/a/../../api/delete` passed with an inference key.
#[sqlx::test(migrator = "app::MIGRATOR")]
async fn model_paths_with_dot_or_empty_segments_are_refused_and_never_forwarded(db: PgPool) {
    // A team that may use any model: the allow-list refuses nothing here.
    let team_id = team(&db, "team-open", None).await;
    let mia = user(&db, "mia", false).await;
    let olu = user(&db, "olu", false).await;
    member(&db, team_id, mia, TeamRole::Member).await;
    member(&db, team_id, olu, TeamRole::Owner).await;
    let (_, secret) = issue_key(&db, "team-open", mia, olu, &[KeyScope::Inference], None).await;
    let (sim_url, sim) = start_sim(fast_sim()).await;
    let (url, _gw) = start_gateway(db, &sim_url, &[]).await;
    let addr = url.trim_start_matches("http://");

    let mut wrong = Vec::new();
    for (method, path) in [
        ("GET", "/v1/models/a/../../api/delete"),
        ("DELETE", "/v1/models/a/../../api/delete"),
        ("GET", "/v1/models/%2e%2e/x"),
        ("GET", "/v1/models/%2E%2E%2Fapi%2Fdelete"),
        ("GET", "/v1/models/a//b"),
        ("GET", "/v1/models//llama3.2"),
        ("GET", "/v1/models/."),
        ("GET", "/v1/models/.."),
        ("GET", "/v1/models/a/./b"),
        ("GET", "/v1/models/llama3.2/"),
    ] {
        let wire = format!("{method} {path} HTTP/1.1\r\nhost: gw\r\nx-api-key: {secret}\r\n\r\n");
        let reply = exchange(addr, wire.as_bytes(), 1).await;
        let status = reply.statuses().first().copied();
        let refused: &[u16] = if method == "GET" {
            &[400, 404]
        } else {
            &[400, 404, 405]
        };
        if !status.is_some_and(|s| refused.contains(&s)) {
            wrong.push(format!("{method} {path}: {status:?}"));
        }
    }
    let reached: Vec<String> = received(&sim)
        .await
        .into_iter()
        .map(|(target, _)| target)
        .collect();
    assert!(
        wrong.is_empty() && reached.is_empty(),
        "not refused:\n{}\nreached Ollama: {reached:?}",
        wrong.join("\n")
    );

    // A plain model name still passes.
    let wire =
        format!("GET /v1/models/llama3.2 HTTP/1.1\r\nhost: gw\r\nx-api-key: {secret}\r\n\r\n");
    assert_eq!(exchange(addr, wire.as_bytes(), 1).await.statuses(), [200]);
    assert_eq!(received(&sim).await.len(), 1);
}
