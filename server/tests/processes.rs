//! Real `corral` processes over one database: two of them run 20 queued
//! operations each exactly once; and `kill -9` of one in the middle of a
//! pull does not leave the operation `running`: started again, Corral
//! takes it over once the dead runner's lease runs out and finishes it
//! (Ollama keeps the partial download, so the pull resumes).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use app::model::OperationState;
use common::ops::*;
use sqlx::PgPool;
use url::Url;

/// The URL of the database a `#[sqlx::test]` pool points at.
fn database_url(db: &PgPool) -> String {
    let name = db.connect_options().get_database().unwrap().to_owned();
    let base = std::env::var("DATABASE_URL").unwrap();
    let (root, _) = base.rsplit_once('/').unwrap();
    format!("{root}/{name}")
}

/// A `corral` process running operations on the static pods `urls`;
/// killed (SIGKILL) when dropped.
struct Corral(Child);

impl Corral {
    async fn start(db: &PgPool, urls: &[Url]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_corral"));
        for (k, _) in std::env::vars() {
            if k.starts_with("CORRAL_") {
                cmd.env_remove(k);
            }
        }
        let urls: Vec<String> = urls.iter().map(Url::to_string).collect();
        cmd.env("CORRAL_DATABASE__URL", database_url(db))
            .env("CORRAL_SERVER__PORT", port.to_string())
            .env("CORRAL_GATEWAY__ENABLED", "false")
            .env("CORRAL_SIM__ENABLED", "false")
            .env("CORRAL_CLUSTER__STATIC_URLS", urls.join(","))
            .env("CORRAL_OPERATIONS__LEASE_SECS", "3")
            .env("CORRAL_LOG__FILTER", "warn,server=info")
            .env("LEPTOS_OUTPUT_NAME", "corral")
            .env("LEPTOS_SITE_ROOT", std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let me = Self(cmd.spawn().expect("corral starts"));
        let url = format!("http://127.0.0.1:{port}/healthz");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !reqwest::get(&url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "corral did not answer on {url}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        me
    }

    fn kill_9(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Corral {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn progress(db: &PgPool, id: uuid::Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum(completed), 0)::bigint FROM operation_steps WHERE operation_id = $1",
    )
    .bind(id)
    .fetch_one(db)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_pull_whose_corral_was_killed_is_finished_by_the_next_one(db: PgPool) {
    // Slow pulls: a few seconds each.
    let (sims, urls) = pods(250).await;
    let admin = actor(&db, user(&db, "root", true).await).await;
    let op = start(&db, &admin, &pull("mistral:7b", None))
        .await
        .unwrap()
        .operation;

    let first = Corral::start(&db, &urls).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while progress(&db, op.id).await == 0 {
        assert!(Instant::now() < deadline, "the pull never made progress");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill_9();
    // Dead, its lease still held: the row says running, for now.
    assert_eq!(state_of(&db, op.id).await, OperationState::Running);

    let _second = Corral::start(&db, &urls).await;
    wait_final(&db, &[op.id], Duration::from_secs(60)).await;
    assert_eq!(state_of(&db, op.id).await, OperationState::Succeeded);
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM operations WHERE id = $1")
        .bind(op.id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(attempts, 2, "taken over once");
    for (sim, url) in sims.iter().zip(&urls) {
        assert!(pulls_of(sim).await >= 2, "{url} was asked again");
        let models = cluster::Ollama::new().tags(url).await.unwrap();
        assert!(models.iter().any(|m| m.name == "mistral:7b"), "{url}");
    }
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn two_corral_processes_run_twenty_queued_operations_each_exactly_once(db: PgPool) {
    // Pulls of a second or two, so that both processes get some.
    let (sims, urls) = pods(60).await;
    let admin = actor(&db, user(&db, "root", true).await).await;
    let _a = Corral::start(&db, &urls).await;
    let _b = Corral::start(&db, &urls).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let op = start(&db, &admin, &pull(&format!("model-{i}:1b"), None))
            .await
            .unwrap()
            .operation;
        ids.push(op.id);
    }
    wait_final(&db, &ids, Duration::from_secs(120)).await;
    for id in &ids {
        assert_eq!(state_of(&db, *id).await, OperationState::Succeeded);
    }
    // Each model pulled exactly once on each pod.
    for sim in &sims {
        assert_eq!(pulls_of(sim).await, 20);
    }
    let attempts: i64 = sqlx::query_scalar("SELECT sum(attempts)::bigint FROM operations")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(attempts, 20, "none ran twice");
    // Both processes took part ("started by host/pid/runner").
    let processes: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT split_part(line, '/', 2)) FROM operation_log WHERE line LIKE 'started by %'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(processes, 2, "both processes ran operations");
}
