//! The gateway against a real Postgres and `ollama-sim`: streaming, usage
//! metering, cancellation, cut streams, reply checks and a dead upstream.

mod common;

use std::time::{Duration, Instant};

use app::model::KeyScope;
use common::gateway::*;
use common::world::*;
use futures_util::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_streamed_chat_passes_through_and_is_metered_with_ollamas_own_counts(db: PgPool) {
    let w = world(db).await;
    let (_, secret) = key(&w, &[KeyScope::Inference]).await;
    let (sim_url, _sim) = start_sim(fast_sim()).await;
    let (gw_url, gw) = start_gateway(w.db.clone(), &sim_url, &[]).await;

    let res = post(
        &format!("{gw_url}/api/chat"),
        Some(&secret),
        &chat("llama3.2", true, "hello there"),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/x-ndjson")
    );
    let text = res.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() > 2, "{text}");
    let last = lines.last().unwrap();
    assert_eq!(last["done"], true);
    let (prompt, completion) = (
        last["prompt_eval_count"].as_i64().unwrap(),
        last["eval_count"].as_i64().unwrap(),
    );

    gw.usage.flush().await;
    let row: (i32, i32, i16, String, String, Option<f64>) = sqlx::query_as(
        "SELECT prompt_tokens, completion_tokens, status, model, endpoint, ttft_ms FROM usage_events WHERE team_id = $1",
    )
    .bind(w.team_a)
    .fetch_one(&w.db)
    .await
    .unwrap();
    assert_eq!((row.0 as i64, row.1 as i64), (prompt, completion));
    assert_eq!(row.2, 200);
    assert_eq!(row.3, "llama3.2:latest");
    assert_eq!(row.4, "/api/chat");
    assert!(row.5.is_some());
    let metrics = reqwest::get(format!("{gw_url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("corral_gateway_requests_total{endpoint=\"/api/chat\",model=\"llama3.2:latest\",status=\"200\",team=\"team-a\"} 1"), "{metrics}");
    assert!(
        metrics.contains("ollama_queue_depth{upstream="),
        "{metrics}"
    );
    assert!(
        metrics.contains("corral_gateway_overhead_seconds_count 1"),
        "{metrics}"
    );
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn openai_streams_get_usage_from_ollama_and_clients_that_did_not_ask_never_see_it(
    db: PgPool,
) {
    let w = world(db).await;
    let (_, secret) = key(&w, &[KeyScope::Inference]).await;
    let (sim_url, _sim) = start_sim(fast_sim()).await;
    let (gw_url, gw) = start_gateway(w.db.clone(), &sim_url, &[]).await;
    let url = format!("{gw_url}/v1/chat/completions");

    let text = post(&url, Some(&secret), &chat("llama3.2", true, "hi"))
        .await
        .text()
        .await
        .unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(
        !text.contains("\"usage\":{"),
        "the client did not ask for usage: {text}"
    );

    let mut asked = chat("llama3.2", true, "hi");
    asked["stream_options"] = json!({ "include_usage": true });
    let text = post(&url, Some(&secret), &asked)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("\"usage\":{"),
        "the client asked for usage: {text}"
    );

    // /v1/completions puts an empty usage on every chunk once asked; the
    // client that did not ask sees none of it, and the count is still taken.
    let completion = json!({ "model": "llama3.2", "prompt": "hi", "stream": true });
    let text = post(
        &format!("{gw_url}/v1/completions"),
        Some(&secret),
        &completion,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(
        !text.contains("usage"),
        "the client did not ask for usage: {text}"
    );
    let chunks: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks.len() > 1, "{text}");
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"));

    gw.usage.flush().await;
    let tokens: Vec<(i32, i32)> = sqlx::query_as(
        "SELECT prompt_tokens, completion_tokens FROM usage_events
          WHERE endpoint = '/v1/chat/completions' ORDER BY at",
    )
    .fetch_all(&w.db)
    .await
    .unwrap();
    let completion_tokens: (i32, i32) = sqlx::query_as(
        "SELECT prompt_tokens, completion_tokens FROM usage_events WHERE endpoint = '/v1/completions'",
    )
    .fetch_one(&w.db)
    .await
    .unwrap();
    assert!(
        completion_tokens.0 > 0 && completion_tokens.1 > 0,
        "{completion_tokens:?}"
    );
    assert_eq!(tokens.len(), 2);
    assert!(tokens.iter().all(|(p, c)| *p > 0 && *c > 0), "{tokens:?}");
    assert_eq!(
        tokens[0], tokens[1],
        "same prompt, same deterministic counts"
    );
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_client_hang_up_cancels_the_upstream_and_the_cut_stream_is_still_recorded(db: PgPool) {
    let w = world(db).await;
    let (_, secret) = key(&w, &[KeyScope::Inference]).await;
    let (sim_url, sim) = start_sim(ollama_sim::SimConfig {
        ttft: Duration::from_millis(5),
        token_gap: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    let (gw_url, gw) = start_gateway(w.db.clone(), &sim_url, &[]).await;

    let res = post(
        &format!("{gw_url}/api/chat"),
        Some(&secret),
        &chat("llama3.2", true, "a long story [sim:tokens=500]"),
    )
    .await;
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();
    let mut seen = 0;
    while seen < 3 {
        let chunk = body.next().await.unwrap().unwrap();
        seen += chunk.iter().filter(|b| **b == b'\n').count();
    }
    let hung_up = Instant::now();
    drop(body);
    assert!(
        eventually(Duration::from_secs(2), || async {
            sim.stats().cancelled == 1
        })
        .await,
        "Ollama's generation was cancelled: {:?}",
        sim.stats()
    );
    let cancel = hung_up.elapsed();
    assert!(
        cancel < Duration::from_millis(500),
        "cancel took {cancel:?}"
    );
    assert_eq!(sim.stats().active, 0);

    assert!(
        eventually(Duration::from_secs(2), || async {
            usage_count(&w.db, w.team_a).await == 1
        })
        .await
    );
    gw.usage.flush().await;
    let (status, completion): (i16, i32) =
        sqlx::query_as("SELECT status, completion_tokens FROM usage_events")
            .fetch_one(&w.db)
            .await
            .unwrap();
    assert_eq!(status, 499);
    assert!(
        completion >= 3,
        "the chunks the client got are counted: {completion}"
    );
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_stream_ollama_cuts_short_passes_on_its_whole_lines_then_fails_and_is_recorded(
    db: PgPool,
) {
    let w = world(db).await;
    let (_, secret) = key(&w, &[KeyScope::Inference]).await;
    let (sim_url, sim) = start_sim(ollama_sim::SimConfig {
        token_gap: Duration::from_millis(5),
        ..Default::default()
    })
    .await;
    sim.inject(ollama_sim::Fault::DropMidStream {
        after_tokens: 4,
        count: 1,
    });
    let (gw_url, gw) = start_gateway(w.db.clone(), &sim_url, &[]).await;

    let res = post(
        &format!("{gw_url}/api/chat"),
        Some(&secret),
        &chat("llama3.2", true, "a story [sim:tokens=50]"),
    )
    .await;
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();
    let mut got = Vec::new();
    let mut failed = false;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => got.extend_from_slice(&c),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the client sees the reply fail, not end");
    let text = String::from_utf8(got).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "every whole line before the cut: {text}");
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["done"], false);
    }

    gw.usage.flush().await;
    let (status, completion): (i16, i32) =
        sqlx::query_as("SELECT status, completion_tokens FROM usage_events")
            .fetch_one(&w.db)
            .await
            .unwrap();
    assert_eq!(status, 502);
    assert_eq!(completion, 4, "the chunks that came are counted");
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn replies_that_break_the_requested_json_schema_are_caught(db: PgPool) {
    let w = world(db).await;
    let (_, secret) = key(&w, &[KeyScope::Inference]).await;
    let (sim_url, _sim) = start_sim(fast_sim()).await;
    let schema = json!({ "type": "object", "properties": { "age": { "type": "integer" } }, "required": ["age"] });
    let mut good = chat("llama3.2", false, "how old?");
    good["format"] = schema.clone();
    let mut bad = chat("llama3.2", false, "how old? [sim:schema-violation]");
    bad["format"] = schema;

    let (gw_url, _gw) = start_gateway(w.db.clone(), &sim_url, &[]).await;
    let res = post(&format!("{gw_url}/api/chat"), Some(&secret), &good).await;
    assert_eq!(res.status(), 200);
    let res = post(&format!("{gw_url}/api/chat"), Some(&secret), &bad).await;
    assert_eq!(res.status(), 502);
    let err = res.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        err.contains("does not match the requested JSON schema"),
        "{err}"
    );

    let (gw_url, _gw) = start_gateway(
        w.db.clone(),
        &sim_url,
        &[("CORRAL_GATEWAY__FORMAT_CHECK", "header")],
    )
    .await;
    let res = post(&format!("{gw_url}/api/chat"), Some(&secret), &bad).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-corral-format-errors"));
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn usage_batches_are_copied_in_whole_and_a_repeated_batch_is_stored_once(db: PgPool) {
    use app::domain::usage::{NewUsageEvent, record};
    let w = world(db).await;
    let (key_id, _) = key(&w, &[KeyScope::Inference]).await;
    let at = time::OffsetDateTime::now_utc()
        .replace_nanosecond(123_456_000)
        .unwrap();
    let event = |n: u128, key: Option<uuid::Uuid>, ttft: Option<f64>| NewUsageEvent {
        event_id: uuid::Uuid::from_u128(n),
        at,
        team_id: w.team_a,
        key_id: key,
        model: "llama3.2:latest".into(),
        endpoint: "/v1/chat/completions".into(),
        status: 200,
        prompt_tokens: 7,
        completion_tokens: i32::MAX,
        latency_ms: 12.25,
        ttft_ms: ttft,
        upstream: "http://ollama:11434 — ü".into(),
    };
    let batch = vec![event(1, Some(key_id), Some(0.5)), event(2, None, None)];
    let mut conn = w.db.acquire().await.unwrap();
    assert_eq!(record(&mut conn, &batch).await.unwrap(), 2);
    // The same batch again (a retry whose first commit went through), with
    // one new event: only the new one is stored, and the connection is fine.
    let again = vec![
        batch[0].clone(),
        batch[1].clone(),
        event(3, None, Some(1.0)),
    ];
    assert_eq!(record(&mut conn, &again).await.unwrap(), 1);
    assert_eq!(record(&mut conn, &again).await.unwrap(), 0);
    use sqlx::Row;
    let stored: Vec<NewUsageEvent> = sqlx::query(
        "SELECT event_id, at, team_id, key_id, model, endpoint, status, prompt_tokens,
                completion_tokens, latency_ms, ttft_ms, upstream
           FROM usage_events ORDER BY event_id",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap()
    .iter()
    .map(|r| NewUsageEvent {
        event_id: r.get("event_id"),
        at: r.get("at"),
        team_id: r.get("team_id"),
        key_id: r.get("key_id"),
        model: r.get("model"),
        endpoint: r.get("endpoint"),
        status: r.get("status"),
        prompt_tokens: r.get("prompt_tokens"),
        completion_tokens: r.get("completion_tokens"),
        latency_ms: r.get("latency_ms"),
        ttft_ms: r.get("ttft_ms"),
        upstream: r.get("upstream"),
    })
    .collect();
    // Every field as sent: microseconds, nulls, i32::MAX, non-ASCII text.
    assert_eq!(stored, again);
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn an_unreachable_ollama_is_a_502_that_says_so_and_is_recorded(db: PgPool) {
    let w = world(db).await;
    let (_, secret) = key(&w, &[KeyScope::Inference]).await;
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let (gw_url, gw) = start_gateway(w.db.clone(), &closed, &[]).await;

    let res = post(
        &format!("{gw_url}/api/chat"),
        Some(&secret),
        &chat("llama3.2", false, "hi"),
    )
    .await;
    assert_eq!(res.status(), 502);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"], "Ollama upstream failed: cannot connect");
    let res = post(
        &format!("{gw_url}/v1/chat/completions"),
        Some(&secret),
        &chat("llama3.2", true, "hi"),
    )
    .await;
    assert_eq!(res.status(), 502);
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "Ollama upstream failed: cannot connect"
    );

    gw.usage.flush().await;
    let statuses: Vec<i16> = sqlx::query_scalar("SELECT status FROM usage_events ORDER BY at")
        .fetch_all(&w.db)
        .await
        .unwrap();
    assert_eq!(statuses, [502, 502], "failed requests are metered too");
}
