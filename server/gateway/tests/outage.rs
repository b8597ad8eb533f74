//! Postgres dies under load: the gateway keeps serving cached keys, buffers
//! usage, and writes every event once Postgres is back. Runs its own
//! throwaway PostgreSQL cluster (the machine's `initdb`/`pg_ctl`), so the
//! shared server is never touched.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use app::model::{KeyScope, TeamRole};
use common::gateway::*;
use serde_json::json;
use sqlx::PgPool;

/// A private PostgreSQL cluster on a free port, removed when dropped.
struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("an initdb")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root (the
/// server refuses to run as root).
fn run_pg(bin: &Path, tool: &str, args: &[&str]) {
    let exe = bin.join(tool);
    let status = if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&exe)
            .args(args)
            .status()
    } else {
        Command::new(&exe).args(args).status()
    }
    .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(status.success(), "{tool} {args:?} failed");
}

impl Cluster {
    fn start() -> Self {
        let bin = pg_bin();
        let dir = temp_dir("pg");
        if is_root() {
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.join("data");
        run_pg(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        let c = Self { dir, bin, port };
        c.up();
        c
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn up(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").display().to_string();
        run_pg(
            &self.bin,
            "pg_ctl",
            &["-D", &self.data(), "-o", &opts, "-l", &log, "-w", "start"],
        );
    }

    /// Stops the server the hard way, like a crash or a node loss.
    fn kill(&self) {
        run_pg(
            &self.bin,
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(if is_root() { "runuser" } else { "true" })
            .args(if is_root() {
                vec!["-u", "postgres", "--"]
            } else {
                vec![]
            })
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_postgres_mid_load_fails_no_request_and_loses_no_usage_event() {
    let cluster = Cluster::start();
    let db = PgPool::connect(&cluster.url()).await.unwrap();
    app::MIGRATOR.run(&db).await.unwrap();
    let team_id = team(&db, "team-a", None).await;
    let mia = user(&db, "mia", false).await;
    let olu = user(&db, "olu", false).await;
    member(&db, team_id, mia, TeamRole::Member).await;
    member(&db, team_id, olu, TeamRole::Owner).await;
    let (_, secret) = issue_key(&db, "team-a", mia, olu, &[KeyScope::Inference], None).await;

    let (sim_url, _sim) = start_sim(ollama_sim::SimConfig {
        ttft: Duration::from_millis(5),
        token_gap: Duration::from_millis(10),
        default_tokens: 20,
        parallel: 64,
        ..Default::default()
    })
    .await;
    let gateway = GatewayProcess::start(
        &cluster.url(),
        &sim_url,
        &[("CORRAL_DATABASE__ACQUIRE_TIMEOUT_SECS", "1")],
    )
    .await;
    let url = format!("{}/api/chat", gateway.url);
    let client = reqwest::Client::new();
    // Warm the key cache.
    let warm = client
        .post(&url)
        .bearer_auth(&secret)
        .json(&json!({ "model": "llama3.2", "stream": false, "messages": [{ "role": "user", "content": "warm" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), 200);

    // 200 streaming requests, 20 at a time; Postgres dies after the first
    // 60 have started and comes back after 140.
    const TOTAL: usize = 200;
    let mut ok = 0;
    let mut failures = Vec::new();
    let mut killed = false;
    let mut restored = false;
    for wave in 0..TOTAL / 20 {
        if wave == 3 {
            cluster.kill();
            killed = true;
        }
        if wave == 7 {
            cluster.up();
            restored = true;
        }
        let mut tasks = Vec::new();
        for i in 0..20 {
            let (client, url, secret) = (client.clone(), url.clone(), secret.clone());
            tasks.push(tokio::spawn(async move {
                let res = client
                    .post(&url)
                    .bearer_auth(&secret)
                    .json(&json!({ "model": "llama3.2", "messages": [{ "role": "user", "content": format!("request {wave}-{i}") }] }))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = res.status();
                let text = res.text().await.map_err(|e| e.to_string())?;
                if status == 200 && text.lines().last().is_some_and(|l| l.contains("\"done\":true")) {
                    Ok(())
                } else {
                    Err(format!("{status}: {}", text.lines().last().unwrap_or("")))
                }
            }));
        }
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => ok += 1,
                Err(e) => failures.push(e),
            }
        }
    }
    assert!(killed && restored);
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(ok, TOTAL);

    // Every request served (the warm-up too) is recorded once Postgres is back.
    let db = PgPool::connect(&cluster.url()).await.unwrap();
    let recorded = eventually(Duration::from_secs(30), || async {
        usage_count(&db, team_id).await == TOTAL as i64 + 1
    })
    .await;
    assert!(
        recorded,
        "usage events: {} of {}",
        usage_count(&db, team_id).await,
        TOTAL + 1
    );
    // And no more: nothing was written twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(usage_count(&db, team_id).await, TOTAL as i64 + 1);
}
