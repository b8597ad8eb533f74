//! Test fixtures for keys and the gateway: people, teams and keys made with
//! the domain's own functions; `ollama-sim` and the gateway started
//! in-process on free loopback ports, or the gateway as its own process.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use app::domain::keys::Pepper;
use app::domain::{Actor, Via};
use app::model::{KeyDecision, KeyScope, NewKeyRequest, TeamRole};
use gateway::Gateway;
use sqlx::PgPool;
use uuid::Uuid;

use super::TEST_PEPPER;

pub fn pepper() -> Pepper {
    Pepper::new(TEST_PEPPER.as_bytes())
}

/// A person who has signed in once.
pub async fn user(db: &PgPool, username: &str, is_admin: bool) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO users (issuer, subject, username, display_name, is_admin) VALUES ('dev', $1, $1, $1, $2) RETURNING id",
    )
    .bind(username)
    .bind(is_admin)
    .fetch_one(db)
    .await
    .unwrap()
}

/// A team allowed to use `models` (`None`: any).
pub async fn team(db: &PgPool, slug: &str, models: Option<&[&str]>) -> Uuid {
    let models: Option<Vec<String>> = models.map(|m| {
        m.iter()
            .map(|m| app::model::key_rules::normalize_model(m))
            .collect()
    });
    sqlx::query_scalar(
        "INSERT INTO teams (slug, name, allowed_models) VALUES ($1, $1, $2) RETURNING id",
    )
    .bind(slug)
    .bind(models)
    .fetch_one(db)
    .await
    .unwrap()
}

pub async fn member(db: &PgPool, team: Uuid, user: Uuid, role: TeamRole) {
    sqlx::query(
        "INSERT INTO memberships (team_id, user_id, role, source) VALUES ($1, $2, $3, 'manual')",
    )
    .bind(team)
    .bind(user)
    .bind(role)
    .execute(db)
    .await
    .unwrap();
}

pub async fn actor(db: &PgPool, user: Uuid) -> Actor {
    app::domain::identity::load_actor(db, user, Via::Session, None)
        .await
        .unwrap()
        .unwrap()
}

/// A key for `requester` in `team`, requested, approved by `approver` and
/// collected: `(key id, secret)`.
pub async fn issue_key(
    db: &PgPool,
    team: &str,
    requester: Uuid,
    approver: Uuid,
    scopes: &[KeyScope],
    models: Option<Vec<String>>,
) -> (Uuid, String) {
    let pepper = pepper();
    let who = actor(db, requester).await;
    let mut tx = db.begin().await.unwrap();
    let out = app::domain::keys::request(
        &mut tx,
        &who,
        team,
        &NewKeyRequest {
            name: format!("key-{}", Uuid::new_v4().simple()),
            purpose: "tests".into(),
            models,
            scopes: Some(scopes.to_vec()),
            expires_in_days: Some(30),
        },
        &pepper,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    if let Some(issued) = out.issued {
        return (issued.key.id, issued.secret);
    }
    let boss = actor(db, approver).await;
    let mut tx = db.begin().await.unwrap();
    app::domain::keys::decide(
        &mut tx,
        &boss,
        out.request.id,
        &KeyDecision {
            approve: true,
            reason: None,
        },
    )
    .await
    .unwrap();
    let issued = app::domain::keys::claim(&mut tx, &who, out.request.id, &pepper)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (issued.key.id, issued.secret)
}

/// `ollama-sim` on a free port: `(base URL, handle)`.
pub async fn start_sim(config: ollama_sim::SimConfig) -> (String, ollama_sim::Sim) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sim = ollama_sim::Sim::new(config);
    tokio::spawn(ollama_sim::serve(listener, sim.clone()));
    (url, sim)
}

/// A quick simulator: tokens every millisecond.
pub fn fast_sim() -> ollama_sim::SimConfig {
    ollama_sim::SimConfig {
        ttft: Duration::from_millis(2),
        token_gap: Duration::from_millis(1),
        default_tokens: 8,
        ..Default::default()
    }
}

fn settings(upstream: &str, spool: &std::path::Path, extra: &[(&str, &str)]) -> startup::Settings {
    let mut vars: Vec<(String, String)> = vec![
        ("CORRAL_GATEWAY__UPSTREAMS".into(), upstream.into()),
        ("CORRAL_KEYS__PEPPER".into(), TEST_PEPPER.into()),
        (
            "CORRAL_GATEWAY__SPOOL_DIR".into(),
            spool.display().to_string(),
        ),
        ("CORRAL_GATEWAY__USAGE_FLUSH_MS".into(), "20".into()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    startup::Settings::load_from(vars).unwrap()
}

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("corral-{name}-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The gateway in this process on a free port: `(base URL, gateway)`.
pub async fn start_gateway(
    db: PgPool,
    upstream: &str,
    extra: &[(&str, &str)],
) -> (String, Arc<Gateway>) {
    let settings = settings(upstream, &temp_dir("spool"), extra);
    let (gw, _workers) = Gateway::start(&settings, db).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(gateway::serve(
        listener,
        gw.clone(),
        std::time::Duration::from_secs(5),
        std::future::pending(),
    ));
    (url, gw)
}

/// The URL of the database a `#[sqlx::test]` pool points at.
pub fn database_url(db: &PgPool) -> String {
    let name = db.connect_options().get_database().unwrap().to_owned();
    let base = std::env::var("DATABASE_URL").unwrap();
    let (root, _) = base.rsplit_once('/').unwrap();
    format!("{root}/{name}")
}

/// A `corral-gateway` process; killed when dropped.
pub struct GatewayProcess {
    pub url: String,
    child: Child,
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl GatewayProcess {
    /// Sends SIGTERM, as Kubernetes does, and waits up to `within` for the
    /// process to exit; its exit status, or `None` if it did not.
    pub async fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        let start = std::time::Instant::now();
        while start.elapsed() < within {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Starts `corral-gateway` and waits until it answers.
    pub async fn start(database_url: &str, upstream: &str, extra: &[(&str, &str)]) -> Self {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_corral-gateway"));
        for (k, _) in std::env::vars() {
            if k.starts_with("CORRAL_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("CORRAL_DATABASE__URL", database_url)
            .env("CORRAL_GATEWAY__PORT", port.to_string())
            .env("CORRAL_GATEWAY__UPSTREAMS", upstream)
            .env("CORRAL_KEYS__PEPPER", TEST_PEPPER)
            .env("CORRAL_GATEWAY__SPOOL_DIR", temp_dir("spool"))
            .env("CORRAL_GATEWAY__USAGE_FLUSH_MS", "20")
            .env("CORRAL_LOG__FILTER", "warn,server=info")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let url = format!("http://127.0.0.1:{port}");
        // Owned (and killed on drop) from the moment it exists.
        let process = Self {
            url: url.clone(),
            child: cmd.spawn().expect("corral-gateway starts"),
        };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client
                .get(format!("{url}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return process;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("corral-gateway did not answer on {url} within 10 s");
    }
}

/// Usage events stored for a team.
pub async fn usage_count(db: &PgPool, team: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM usage_events WHERE team_id = $1")
        .bind(team)
        .fetch_one(db)
        .await
        .unwrap()
}

/// Polls `f` every 20 ms until it is true or `within` has passed.
pub async fn eventually<F, Fut>(within: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    loop {
        if f().await {
            return true;
        }
        if start.elapsed() > within {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A gauge or counter of the gateway's `/metrics`, summed over its labels.
pub async fn metric(gateway_url: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{gateway_url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
