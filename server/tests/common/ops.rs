//! Cluster operations' test fixtures: people, teams, the workload, two
//! simulated Ollama pods, a runner, and waiting for operations to end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use app::domain::operations::{self, Workload, Workloads};
use app::domain::{Actor, Via};
use app::model::{NewOperation, OperationState};
use cluster::{Driver, Ollama, StaticDriver};
use server::workers::operations::Runner;
use sqlx::PgPool;
use url::Url;
use uuid::Uuid;

pub async fn user(db: &PgPool, name: &str, admin: bool) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO users (issuer, subject, username, display_name, is_admin) VALUES ('dev', $1, $1, $1, $2) RETURNING id",
    )
    .bind(name)
    .bind(admin)
    .fetch_one(db)
    .await
    .unwrap()
}

pub async fn team(db: &PgPool, slug: &str, models: Option<&[&str]>) -> Uuid {
    let models: Option<Vec<String>> = models.map(|m| m.iter().map(|s| s.to_string()).collect());
    sqlx::query_scalar(
        "INSERT INTO teams (slug, name, allowed_models) VALUES ($1, $1, $2) RETURNING id",
    )
    .bind(slug)
    .bind(models)
    .fetch_one(db)
    .await
    .unwrap()
}

pub async fn member(db: &PgPool, team: Uuid, user: Uuid, role: &str) {
    sqlx::query("INSERT INTO memberships (team_id, user_id, role, source) VALUES ($1, $2, $3::team_role, 'manual')")
        .bind(team)
        .bind(user)
        .bind(role)
        .execute(db)
        .await
        .unwrap();
}

pub async fn actor(db: &PgPool, id: Uuid) -> Actor {
    app::domain::identity::load_actor(db, id, Via::Session, None)
        .await
        .unwrap()
        .unwrap()
}

pub fn workloads(max: i32) -> Workloads {
    Workloads(vec![Workload {
        name: "ollama".into(),
        min_replicas: 1,
        max_replicas: max,
        shared_models: false,
        can_scale: false,
        gpu_memory: None,
    }])
}

pub fn pull(model: &str, team: Option<&str>) -> NewOperation {
    NewOperation::Pull {
        model: model.into(),
        workload: None,
        team: team.map(str::to_owned),
        in_next_window: false,
        force: false,
    }
}

pub async fn start(
    db: &PgPool,
    actor: &Actor,
    new: &NewOperation,
) -> Result<operations::Started, app::domain::Error> {
    let mut tx = db.begin().await.unwrap();
    let r = operations::start(&mut tx, actor, &workloads(4), new).await;
    if r.is_ok() {
        tx.commit().await.unwrap();
    }
    r
}

/// Two simulated Ollama pods, pulls paced so that progress is visible.
pub async fn pods(step_ms: u64) -> (Vec<ollama_sim::Sim>, Vec<Url>) {
    let mut sims = Vec::new();
    let mut urls = Vec::new();
    for _ in 0..2 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sim = ollama_sim::Sim::new(ollama_sim::SimConfig {
            pull_step: Duration::from_millis(step_ms),
            ..Default::default()
        });
        let s = sim.clone();
        tokio::spawn(async move { ollama_sim::serve(listener, s).await });
        sims.push(sim);
        urls.push(Url::parse(&format!("http://{addr}")).unwrap());
    }
    (sims, urls)
}

pub fn runner(db: &PgPool, urls: &[Url], name: &str, lease: Duration) -> Runner {
    Runner {
        db: db.clone(),
        driver: Arc::new(Driver::Static(StaticDriver::new("ollama", urls.to_vec()))),
        ollama: Ollama::new(),
        workloads: Arc::new(workloads(4)),
        owner: name.into(),
        lease,
        concurrency: 4,
    }
}

pub async fn state_of(db: &PgPool, id: Uuid) -> OperationState {
    let s: String = sqlx::query_scalar("SELECT state FROM operations WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap();
    OperationState::parse(&s).unwrap()
}

pub async fn wait_final(db: &PgPool, ids: &[Uuid], within: Duration) {
    let t = Instant::now();
    loop {
        let mut all = true;
        for id in ids {
            all &= state_of(db, *id).await.is_final();
        }
        if all {
            return;
        }
        assert!(
            t.elapsed() < within,
            "operations still open after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn pulls_of(sim: &ollama_sim::Sim) -> usize {
    sim.requests()
        .into_iter()
        .filter(|r| r.target == "/api/pull")
        .count()
}
