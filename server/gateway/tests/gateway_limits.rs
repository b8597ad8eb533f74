//! Who may use what through the gateway, against a real Postgres and
//! `ollama-sim`: bad and revoked keys, model allow-lists, rate limits and
//! quotas.

mod common;

use std::time::Duration;

use app::model::KeyScope;
use common::gateway::*;
use common::world::*;
use serde_json::{Value, json};
use sqlx::PgPool;

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
