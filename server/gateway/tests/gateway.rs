//! The gateway against a real Postgres and `ollama-sim`: keys, models,
//! limits, streaming, usage, cancellation, revocation across processes.

mod common;

use std::time::{Duration, Instant};

use app::model::{KeyScope, TeamRole};
use common::gateway::*;
use futures_util::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;

struct World {
    db: PgPool,
    team_a: uuid::Uuid,
    member: uuid::Uuid,
    owner: uuid::Uuid,
}

/// team-a may use llama3.2 only, team-b qwen2.5:0.5b only; mia is a member
/// of team-a, olu its owner, bea the owner of team-b.
async fn world(db: PgPool) -> World {
    let team_a = team(&db, "team-a", Some(&["llama3.2"])).await;
    let team_b = team(&db, "team-b", Some(&["qwen2.5:0.5b"])).await;
    let member_id = user(&db, "mia", false).await;
    let owner = user(&db, "olu", false).await;
    let bea = user(&db, "bea", false).await;
    member(&db, team_a, member_id, TeamRole::Member).await;
    member(&db, team_a, owner, TeamRole::Owner).await;
    member(&db, team_b, bea, TeamRole::Owner).await;
    World {
        db,
        team_a,
        member: member_id,
        owner,
    }
}

async fn key(w: &World, scopes: &[KeyScope]) -> (uuid::Uuid, String) {
    issue_key(&w.db, "team-a", w.member, w.owner, scopes, None).await
}

fn chat(model: &str, stream: bool, prompt: &str) -> Value {
    json!({ "model": model, "stream": stream, "messages": [{ "role": "user", "content": prompt }] })
}

async fn post(url: &str, key: Option<&str>, body: &Value) -> reqwest::Response {
    let mut r = reqwest::Client::new().post(url).json(body);
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    r.send().await.unwrap()
}

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
async fn bad_keys_are_refused_in_the_clients_format_and_never_reach_ollama(db: PgPool) {
    let w = world(db).await;
    let (key_id, secret) = key(&w, &[KeyScope::Inference]).await;
    let (sim_url, sim) = start_sim(fast_sim()).await;
    let (gw_url, _gw) = start_gateway(w.db.clone(), &sim_url, &[]).await;
    let body = chat("llama3.2", false, "hi");

    let res = post(&format!("{gw_url}/api/chat"), None, &body).await;
    assert_eq!(res.status(), 401);
    assert!(
        res.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("missing API key")
    );

    let mut typo = secret.clone().into_bytes();
    let i = typo.len() - 10;
    typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let res = post(&format!("{gw_url}/v1/chat/completions"), Some(&typo), &body).await;
    assert_eq!(res.status(), 401);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");
    assert!(v["error"]["message"].as_str().unwrap().contains("checksum"));

    let (other, ..) = app::domain::keys::token::generate();
    let res = reqwest::Client::new()
        .post(format!("{gw_url}/api/chat"))
        .header("x-api-key", &other)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let owner = actor(&w.db, w.owner).await;
    let mut tx = w.db.begin().await.unwrap();
    app::domain::keys::revoke(&mut tx, &owner, key_id, Some("test"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(
        eventually(Duration::from_secs(2), || async {
            post(&format!("{gw_url}/api/chat"), Some(&secret), &body)
                .await
                .status()
                == 401
        })
        .await
    );
    assert_eq!(sim.stats().requests, 0, "no invalid key reached Ollama");

    // X-API-Key works like the seed's nginx example, for a live key.
    let (_, live) = key(&w, &[KeyScope::Inference]).await;
    let res = reqwest::Client::new()
        .post(format!("{gw_url}/api/chat"))
        .header("x-api-key", &live)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn team_a_keys_cannot_use_or_see_a_model_only_team_b_may_use(db: PgPool) {
    let w = world(db).await;
    let (_, secret) = key(&w, &[KeyScope::Inference]).await;
    let (sim_url, sim) = start_sim(fast_sim()).await;
    let (gw_url, _gw) = start_gateway(w.db.clone(), &sim_url, &[]).await;

    let res = post(
        &format!("{gw_url}/api/chat"),
        Some(&secret),
        &chat("qwen2.5:0.5b", false, "hi"),
    )
    .await;
    assert_eq!(res.status(), 403);
    assert!(
        res.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("qwen2.5:0.5b")
    );
    let res = post(
        &format!("{gw_url}/v1/embeddings"),
        Some(&secret),
        &json!({ "model": "qwen2.5:0.5b", "input": "x" }),
    )
    .await;
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "model_not_allowed"
    );
    assert_eq!(sim.stats().requests, 0);

    let tags: Value = reqwest::Client::new()
        .get(format!("{gw_url}/api/tags"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["llama3.2:latest"]);
    let models: Value = reqwest::Client::new()
        .get(format!("{gw_url}/v1/models"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"].as_array().unwrap().len(), 1);

    // Management is refused to inference keys.
    let res = post(
        &format!("{gw_url}/api/pull"),
        Some(&secret),
        &json!({ "model": "llama3.2" }),
    )
    .await;
    assert_eq!(res.status(), 403);
    assert!(
        res.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("manage scope")
    );
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn rate_limits_and_exhausted_quotas_answer_429_with_retry_after(db: PgPool) {
    let w = world(db).await;
    let (key_id, secret) = key(&w, &[KeyScope::Inference]).await;
    sqlx::query("UPDATE api_keys SET rpm_limit = 2 WHERE id = $1")
        .bind(key_id)
        .execute(&w.db)
        .await
        .unwrap();
    let (sim_url, _sim) = start_sim(fast_sim()).await;
    let (gw_url, _gw) = start_gateway(w.db.clone(), &sim_url, &[]).await;
    let url = format!("{gw_url}/v1/chat/completions");
    let body = chat("llama3.2", false, "hi");
    // The limit change reached the gateway through NOTIFY; a fresh lookup.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let res = post(&url, Some(&secret), &body).await;
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            let retry: u64 = res.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&retry));
            assert_eq!(
                res.json::<Value>().await.unwrap()["error"]["type"],
                "rate_limit_error"
            );
        }
    }
    // Two fit in a minute unless the minute turned over between them.
    assert!(
        statuses == [200, 200, 429] || statuses.iter().filter(|s| **s == 200).count() == 3,
        "{statuses:?}"
    );

    // A team whose monthly quota is used up.
    let (_, other) = key(&w, &[KeyScope::Inference]).await;
    sqlx::query("UPDATE teams SET monthly_token_quota = 5 WHERE id = $1")
        .bind(w.team_a)
        .execute(&w.db)
        .await
        .unwrap();
    let chat_url = format!("{gw_url}/api/chat");
    assert!(
        eventually(Duration::from_secs(5), || async {
            let res = post(&chat_url, Some(&other), &body).await;
            res.status() == 429 && res.headers().contains_key("retry-after")
        })
        .await,
        "the quota is enforced once the month's usage is known"
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
async fn a_revoked_key_is_rejected_by_a_second_gateway_process_within_one_second(db: PgPool) {
    let w = world(db).await;
    let (key_id, secret) = key(&w, &[KeyScope::Inference]).await;
    let (sim_url, _sim) = start_sim(fast_sim()).await;
    let url = database_url(&w.db);
    let first = GatewayProcess::start(&url, &sim_url, &[]).await;
    let second = GatewayProcess::start(&url, &sim_url, &[]).await;
    let body = chat("llama3.2", false, "hi");
    for g in [&first, &second] {
        assert_eq!(
            post(&format!("{}/api/chat", g.url), Some(&secret), &body)
                .await
                .status(),
            200
        );
    }

    let owner = actor(&w.db, w.owner).await;
    let mut tx = w.db.begin().await.unwrap();
    app::domain::keys::revoke(&mut tx, &owner, key_id, None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let revoked = Instant::now();
    let second_url = format!("{}/api/chat", second.url);
    let refused = eventually(Duration::from_secs(1), || async {
        post(&second_url, Some(&secret), &body).await.status() == 401
    })
    .await;
    let took = revoked.elapsed();
    assert!(
        refused,
        "the second gateway still accepted the key after {took:?}"
    );
    assert_eq!(
        post(&format!("{}/api/chat", first.url), Some(&secret), &body)
            .await
            .status(),
        401
    );
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
async fn on_sigterm_an_open_stream_gets_the_grace_period_then_is_cut_and_recorded(db: PgPool) {
    let w = world(db).await;
    let (_, secret) = key(&w, &[KeyScope::Inference]).await;
    let (sim_url, sim) = start_sim(ollama_sim::SimConfig {
        ttft: Duration::from_millis(5),
        token_gap: Duration::from_millis(50),
        ..Default::default()
    })
    .await;
    let url = database_url(&w.db);
    let mut gateway = GatewayProcess::start(
        &url,
        &sim_url,
        &[("CORRAL_GATEWAY__SHUTDOWN_GRACE_SECS", "1")],
    )
    .await;
    let res = post(
        &format!("{}/api/chat", gateway.url),
        Some(&secret),
        &chat("llama3.2", true, "a long story [sim:tokens=1000]"),
    )
    .await;
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();
    body.next().await.unwrap().unwrap();

    let asked = Instant::now();
    let status = gateway.terminate(Duration::from_secs(10)).await;
    let took = asked.elapsed();
    assert!(
        status.is_some_and(|s| s.success()),
        "exited cleanly: {status:?}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "the stream had its 1 s of grace, no more: {took:?}"
    );
    // The client's stream ends; Ollama's generation is cancelled.
    while let Some(Ok(_)) = body.next().await {}
    assert!(
        eventually(Duration::from_secs(2), || async { sim.stats().active == 0 }).await,
        "{:?}",
        sim.stats()
    );
    // Its usage was written before the process exited.
    let (status, completion): (i16, i32) =
        sqlx::query_as("SELECT status, completion_tokens FROM usage_events WHERE team_id = $1")
            .bind(w.team_a)
            .fetch_one(&w.db)
            .await
            .unwrap();
    assert_eq!(status, 499);
    assert!(completion >= 10, "the tokens it had streamed: {completion}");
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

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_second_model_field_in_another_case_is_refused_before_ollama(db: PgPool) {
    // Ollama (Go) matches field names ignoring case and takes the last one:
    // this body would be checked as llama3.2 and run as team-b's model.
    let w = world(db).await;
    let (_, secret) = key(&w, &[KeyScope::Inference]).await;
    let (sim_url, sim) = start_sim(fast_sim()).await;
    let (gw_url, _gw) = start_gateway(w.db.clone(), &sim_url, &[]).await;
    let mut body = chat("llama3.2", false, "hi");
    body["Model"] = json!("qwen2.5:0.5b");
    let res = post(&format!("{gw_url}/api/chat"), Some(&secret), &body).await;
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    let error = v["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "the request body has a field \"Model\"; field names are case-sensitive here, write \"model\""
        ),
        "{error}"
    );
    assert_eq!(sim.stats().requests, 0, "nothing reached Ollama");
}
