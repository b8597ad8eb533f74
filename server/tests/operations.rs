//! Cluster operations end to end below the HTTP layer: the rules on who may
//! start what, the queue under two runners (each operation exactly once),
//! a runner that dies (its lease runs out and the operation resumes or
//! fails, never stays running), cancel, and pulls with progress on every
//! pod of a workload of two ollama-sim instances.

mod common;

use std::time::{Duration, Instant};

use app::domain::operations::{self, queue};
use app::model::{OperationFilter, OperationState, StepState};
use cluster::Ollama;
use common::ops::*;
use sqlx::PgPool;
use uuid::Uuid;

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_team_owner_pulls_only_allowed_models_and_sees_only_their_teams_operations(db: PgPool) {
    let a = team(&db, "team-a", Some(&["llama3.2:latest"])).await;
    let b = team(&db, "team-b", None).await;
    let olu = user(&db, "olu", false).await;
    let mia = user(&db, "mia", false).await;
    let bo = user(&db, "bo", false).await;
    let ada = user(&db, "ada", true).await;
    member(&db, a, olu, "owner").await;
    member(&db, a, mia, "member").await;
    member(&db, b, bo, "owner").await;
    let (olu, mia, bo, ada) = (
        actor(&db, olu).await,
        actor(&db, mia).await,
        actor(&db, bo).await,
        actor(&db, ada).await,
    );

    // Outside the allow-list: refused, naming the model and the field.
    let e = start(&db, &olu, &pull("qwen2.5:7b", Some("team-a")))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, app::domain::Error::Validation { field, message } if field == "model" && message.contains("qwen2.5:7b")),
        "{e:?}"
    );
    // On it (written without the tag): queued.
    let ok = start(&db, &olu, &pull("llama3.2", Some("team-a")))
        .await
        .unwrap();
    assert_eq!(ok.operation.state, OperationState::Queued);
    assert_eq!(ok.operation.model.as_deref(), Some("llama3.2:latest"));
    // A second identical pull joins the first.
    let again = start(&db, &olu, &pull("llama3.2:latest", Some("team-a")))
        .await
        .unwrap();
    assert!(again.joined);
    assert_eq!(again.operation.id, ok.operation.id);
    // A member cannot start one; nobody acts for a team not theirs; the
    // platform's own operations and scaling are for admins.
    assert!(matches!(
        start(&db, &mia, &pull("llama3.2", Some("team-a"))).await,
        Err(app::domain::Error::Forbidden)
    ));
    assert!(matches!(
        start(&db, &bo, &pull("llama3.2", Some("team-a"))).await,
        Err(app::domain::Error::NotFound)
    ));
    assert!(matches!(
        start(&db, &olu, &pull("llama3.2", None)).await,
        Err(app::domain::Error::Forbidden)
    ));
    // Admins pull anything, for any team or the platform.
    let platform = start(&db, &ada, &pull("qwen2.5:7b", None)).await.unwrap();
    let for_b = start(&db, &ada, &pull("mistral", Some("team-b")))
        .await
        .unwrap();

    // Who sees what.
    let mut conn = db.acquire().await.unwrap();
    let ids = |p: app::model::Page<app::model::Operation>| -> Vec<Uuid> {
        p.items.into_iter().map(|o| o.id).collect()
    };
    let seen_by_mia = ids(
        operations::list(&mut conn, &mia, &OperationFilter::default(), None, 50)
            .await
            .unwrap(),
    );
    assert_eq!(seen_by_mia, vec![ok.operation.id]);
    let seen_by_bo = ids(
        operations::list(&mut conn, &bo, &OperationFilter::default(), None, 50)
            .await
            .unwrap(),
    );
    assert_eq!(seen_by_bo, vec![for_b.operation.id]);
    let seen_by_ada = ids(
        operations::list(&mut conn, &ada, &OperationFilter::default(), None, 50)
            .await
            .unwrap(),
    );
    assert_eq!(seen_by_ada.len(), 3);
    for (who, id) in [
        (&bo, ok.operation.id),
        (&mia, platform.operation.id),
        (&mia, for_b.operation.id),
    ] {
        assert!(matches!(
            operations::detail(&mut conn, who, id).await,
            Err(app::domain::Error::NotFound)
        ));
    }
    // Filters name the field they reject.
    let bad = OperationFilter {
        state: Some("done".into()),
        ..Default::default()
    };
    assert!(
        matches!(operations::list(&mut conn, &ada, &bad, None, 50).await, Err(app::domain::Error::Validation { field, .. }) if field == "state")
    );
    // Cancelling a queued one ends it at once; bo cannot cancel team-a's.
    let mut tx = db.begin().await.unwrap();
    assert!(
        operations::cancel(&mut tx, &bo, ok.operation.id)
            .await
            .is_err()
    );
    drop(tx);
    let mut tx = db.begin().await.unwrap();
    let c = operations::cancel(&mut tx, &olu, ok.operation.id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(c.state, OperationState::Cancelled);
    let audit: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action LIKE 'operation.%'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(audit, 4, "three starts and a cancel");
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn two_runners_run_twenty_operations_each_exactly_once_on_every_pod(db: PgPool) {
    let ada = user(&db, "ada", true).await;
    let ada = actor(&db, ada).await;
    let (sims, urls) = pods(2).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            start(&db, &ada, &pull(&format!("model-{i}"), None))
                .await
                .unwrap()
                .operation
                .id,
        );
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut handles = Vec::new();
    for name in ["runner-a", "runner-b"] {
        let r = runner(&db, &urls, name, Duration::from_secs(10));
        let mut rx = stop_rx.clone();
        handles.push(tokio::spawn(r.run(async move {
            let _ = rx.wait_for(|s| *s).await;
        })));
    }
    wait_final(&db, &ids, Duration::from_secs(60)).await;
    let _ = stop_tx.send(true);
    for h in handles {
        h.await.unwrap();
    }
    for id in &ids {
        assert_eq!(state_of(&db, *id).await, OperationState::Succeeded);
    }
    for sim in &sims {
        assert_eq!(
            pulls_of(sim).await,
            20,
            "each operation pulled once on each pod"
        );
    }
    let attempts: Vec<i32> = sqlx::query_scalar("SELECT attempts FROM operations")
        .fetch_all(&db)
        .await
        .unwrap();
    assert!(attempts.iter().all(|a| *a == 1), "{attempts:?}");
    let runners: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT substring(line FROM 'started by (.*)') FROM operation_log WHERE line LIKE 'started by %'",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(runners.len(), 2, "both runners took work: {runners:?}");
    // Every pod's step ended with the bytes of the whole model.
    let mut conn = db.acquire().await.unwrap();
    let op = operations::fetch(&mut conn, ids[0]).await.unwrap();
    assert_eq!(op.steps.len(), 2);
    for s in &op.steps {
        assert_eq!(s.state, StepState::Succeeded);
        assert!(s.total > 0 && s.completed == s.total, "{s:?}");
        assert_eq!(s.status, "success");
    }
    // And the models are on both pods.
    for url in &urls {
        let tags = Ollama::new().tags(url).await.unwrap();
        for i in 0..20 {
            let want = format!("model-{i}:latest");
            assert!(tags.iter().any(|m| m.name == want), "{want} on {url}");
        }
    }
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_runner_that_dies_leaves_its_operation_to_another_which_resumes_it_or_fails_it_with_the_reason(
    db: PgPool,
) {
    let ada = user(&db, "ada", true).await;
    let ada = actor(&db, ada).await;
    let (sims, urls) = pods(2).await;
    let id = start(&db, &ada, &pull("llama3.2", None))
        .await
        .unwrap()
        .operation
        .id;
    // A runner takes it and dies at once (no heartbeat, nothing written).
    let lease = Duration::from_secs(2);
    let dead = queue::claim(&db, "dead-runner", lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dead.id, id);
    assert_eq!(state_of(&db, id).await, OperationState::Running);
    // While its lease holds, nobody else takes it.
    assert!(queue::claim(&db, "other", lease).await.unwrap().is_none());
    // Another runner resumes it after the lease ran out.
    let r = runner(&db, &urls, "survivor", lease);
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let h = tokio::spawn(r.run(async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    wait_final(&db, &[id], Duration::from_secs(30)).await;
    assert_eq!(state_of(&db, id).await, OperationState::Succeeded);
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM operations WHERE id = $1")
        .bind(id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(attempts, 2);
    let log: Vec<String> =
        sqlx::query_scalar("SELECT line FROM operation_log WHERE operation_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&db)
            .await
            .unwrap();
    assert!(log.iter().any(|l| l.starts_with("resumed by survivor after its runner stopped (attempt 2 of 3)")), "{log:?}");
    for sim in &sims {
        assert_eq!(pulls_of(sim).await, 1);
    }

    // One whose runners keep dying fails with the reason, and is not left running.
    let _ = stop_tx.send(true);
    h.await.unwrap();
    let id2 = start(&db, &ada, &pull("mistral", None))
        .await
        .unwrap()
        .operation
        .id;
    for n in 0..3 {
        let c = queue::claim(&db, &format!("dying-{n}"), Duration::from_millis(1))
            .await
            .unwrap();
        assert_eq!(c.map(|o| o.id), Some(id2));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        queue::claim(&db, "another", lease).await.unwrap().is_none(),
        "not tried a fourth time"
    );
    let ended = queue::reap(&db).await.unwrap();
    assert_eq!(ended, vec![id2]);
    assert_eq!(state_of(&db, id2).await, OperationState::Failed);
    let error: String = sqlx::query_scalar("SELECT error FROM operations WHERE id = $1")
        .bind(id2)
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(
        error.contains("runner stopped") && error.contains("3 attempts"),
        "{error}"
    );
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn cancelling_a_running_pull_stops_it_on_every_pod(db: PgPool) {
    let ada = user(&db, "ada", true).await;
    let ada = actor(&db, ada).await;
    // Slow pulls: about 10 s each.
    let (sims, urls) = pods(400).await;
    let id = start(&db, &ada, &pull("phi3:mini", None))
        .await
        .unwrap()
        .operation
        .id;
    let r = runner(&db, &urls, "runner", Duration::from_secs(10));
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let h = tokio::spawn(r.run(async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    // Both pods are pulling and reporting.
    let t = Instant::now();
    loop {
        let mut conn = db.acquire().await.unwrap();
        let op = operations::fetch(&mut conn, id).await.unwrap();
        if op.steps.len() == 2
            && op
                .steps
                .iter()
                .all(|s| s.state == StepState::Running && s.total > 0)
        {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{op:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut tx = db.begin().await.unwrap();
    operations::cancel(&mut tx, &ada, id).await.unwrap();
    tx.commit().await.unwrap();
    wait_final(&db, &[id], Duration::from_secs(5)).await;
    assert_eq!(state_of(&db, id).await, OperationState::Cancelled);
    let mut conn = db.acquire().await.unwrap();
    let op = operations::fetch(&mut conn, id).await.unwrap();
    assert!(
        op.steps.iter().all(|s| s.state == StepState::Cancelled),
        "{op:?}"
    );
    assert!(op.outcome.unwrap().contains("ollama/ollama#13142"));
    // Each pod got the pull once, and its request was dropped before the
    // end: the model never landed.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (sim, url) in sims.iter().zip(&urls) {
        assert_eq!(pulls_of(sim).await, 1);
        let tags = Ollama::new().tags(url).await.unwrap();
        assert!(!tags.iter().any(|m| m.name == "phi3:mini"), "{tags:?}");
    }
    let _ = stop_tx.send(true);
    h.await.unwrap();
}
