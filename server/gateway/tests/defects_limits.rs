//! One regression test on a real socket for each remaining wire defect of
//! issue 12: obs-text in framing headers, the request-rate limit before the
//! body, methods and model paths Ollama does not serve. What reached Ollama
//! is read from ollama-sim's journal.

mod common;

use std::time::{Duration, Instant};

use app::model::{KeyScope, TeamRole};
use common::defects::*;
use common::gateway::*;
use common::wire::*;
use sqlx::PgPool;

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
