//! `kill -9` of the real `corral` process in the middle of a pull: the
//! operation is not left `running`. Started again, Corral takes it over
//! once the dead runner's lease runs out and finishes it (Ollama keeps
//! the partial download, so the pull resumes).

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
