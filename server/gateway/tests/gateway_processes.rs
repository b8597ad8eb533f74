//! The gateway as its own `corral-gateway` process: a revocation seen by a
//! second process, and an open stream's grace period on SIGTERM.

mod common;

use std::time::{Duration, Instant};

use app::model::KeyScope;
use common::gateway::*;
use common::world::*;
use futures_util::StreamExt;
use sqlx::PgPool;

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
