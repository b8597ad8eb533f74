//! A pod that lacks its workload's models (a new pod after a scale-up)
//! gets them: the reconciler queues a pull, the runner carries it out, and
//! then every pod has the model. A deleted model is not brought back, an
//! open pull is joined rather than doubled, and a failing one is not
//! retried on every look.

mod common;

use std::time::Duration;

use app::domain::operations::reconcile;
use app::model::OperationState;
use common::ops::*;
use server::workers::reconcile::Reconciler;
use sqlx::PgPool;
use url::Url;

fn reconciler(db: &PgPool, urls: &[Url]) -> Reconciler {
    let r = runner(db, urls, "unused", Duration::from_secs(10));
    Reconciler {
        db: db.clone(),
        driver: r.driver,
        ollama: r.ollama,
        workloads: r.workloads,
        every: Duration::from_secs(3600),
    }
}

async fn has(url: &Url, model: &str) -> bool {
    cluster::Ollama::new()
        .tags(url)
        .await
        .unwrap()
        .iter()
        .any(|m| m.name == model)
}

/// A pull that succeeded on the workload earlier, run for real on the
/// first pod only (as if the second came later).
async fn pulled_earlier(db: &PgPool, first: &Url, model: &str) {
    let admin = actor(db, user(db, "root", true).await).await;
    let op = start(db, &admin, &pull(model, None))
        .await
        .unwrap()
        .operation;
    let r = runner(
        db,
        std::slice::from_ref(first),
        "first",
        Duration::from_secs(10),
    );
    let stop = tokio::spawn(r.run(std::future::pending()));
    wait_final(db, &[op.id], Duration::from_secs(20)).await;
    stop.abort();
    assert_eq!(state_of(db, op.id).await, OperationState::Succeeded);
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_pod_without_the_workloads_model_gets_it_pulled(db: PgPool) {
    let (_sims, urls) = pods(5).await;
    pulled_earlier(&db, &urls[0], "mistral:7b").await;
    assert!(has(&urls[0], "mistral:7b").await);
    assert!(!has(&urls[1], "mistral:7b").await);

    let rec = reconciler(&db, &urls);
    let queued = rec.once().await;
    assert_eq!(queued.len(), 1, "one pull for the pod that lacks it");
    // A second look while it is queued joins it instead of doubling it.
    assert!(rec.once().await.is_empty());
    let log: Vec<String> =
        sqlx::query_scalar("SELECT line FROM operation_log WHERE operation_id = $1")
            .bind(queued[0])
            .fetch_all(&db)
            .await
            .unwrap();
    let pod = urls[1].host_str().unwrap().to_owned();
    assert!(
        log.iter()
            .any(|l| l.contains(&pod) && l.contains("mistral:7b")),
        "{log:?}"
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'operation.pull' AND target_id = $1",
    )
    .bind(queued[0].to_string())
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(audited, 1);

    let r = runner(&db, &urls, "runner", Duration::from_secs(10));
    let stop = tokio::spawn(r.run(std::future::pending()));
    wait_final(&db, &queued, Duration::from_secs(20)).await;
    stop.abort();
    assert_eq!(state_of(&db, queued[0]).await, OperationState::Succeeded);
    assert!(has(&urls[1], "mistral:7b").await);
    // Every pod has it now: nothing more to do.
    assert!(rec.once().await.is_empty());
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_deleted_model_is_not_brought_back(db: PgPool) {
    let (_sims, urls) = pods(5).await;
    pulled_earlier(&db, &urls[0], "mistral:7b").await;
    sqlx::query(
        "INSERT INTO operations (kind, workload, model, state, requested_by_name, finished_at)
         VALUES ('delete', 'ollama', 'mistral:7b', 'succeeded', 'root', now() + interval '1 second')",
    )
    .execute(&db)
    .await
    .unwrap();
    let mut conn = db.acquire().await.unwrap();
    assert!(
        reconcile::intended(&mut conn, "ollama")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(reconciler(&db, &urls).once().await.is_empty());
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_reconciling_pull_that_failed_is_not_retried_at_every_look(db: PgPool) {
    let (_sims, urls) = pods(5).await;
    pulled_earlier(&db, &urls[0], "mistral:7b").await;
    let rec = reconciler(&db, &urls);
    let queued = rec.once().await;
    assert_eq!(queued.len(), 1);
    sqlx::query("UPDATE operations SET state = 'failed', error = 'registry gone', finished_at = now() WHERE id = $1")
        .bind(queued[0])
        .execute(&db)
        .await
        .unwrap();
    assert!(
        rec.once().await.is_empty(),
        "a failed reconciling pull waits {} s before the next",
        reconcile::RETRY_AFTER_FAILURE_SECS
    );
}
