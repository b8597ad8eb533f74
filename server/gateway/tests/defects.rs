//! One regression test on a real socket for each stream and connection
//! defect of issue 12: pipelined data past what is held during a stream, a
//! client that stops reading, a head sent a byte at a time, connections
//! past the cap. What reached Ollama is read from ollama-sim's journal.

mod common;

use std::time::{Duration, Instant};

use common::defects::*;
use common::gateway::*;
use common::wire::*;
use sqlx::PgPool;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

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
