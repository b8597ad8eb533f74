//! Finding, connecting to and migrating Corral's Postgres database.
//!
//! Under the `local` profile with no `database.url`, Corral uses the server on
//! 127.0.0.1:5432 (database `corral`, created if missing), else starts a
//! private cluster with the machine's `initdb`/`pg_ctl` under `./.corral/`.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use app::model::Profile;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::settings::Settings;

/// Name of the database the local default uses.
pub const LOCAL_DATABASE: &str = "corral";
/// Port of the private cluster under `./.corral/`.
pub const PRIVATE_PORT: u16 = 54329;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database.url (CORRAL_DATABASE__URL): {0}")]
    BadUrl(String),
    #[error("cannot connect to PostgreSQL at {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("cannot apply database migrations: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("{0}")]
    NoPostgres(String),
    #[error("private PostgreSQL cluster under {dir}: {reason}")]
    PrivateCluster { dir: String, reason: String },
}

/// Connects as the settings say, then applies pending migrations.
pub async fn connect_and_migrate(settings: &Settings) -> Result<PgPool, Error> {
    let pool = connect(settings).await?;
    app::MIGRATOR.run(&pool).await.map_err(Error::Migrate)?;
    Ok(pool)
}

/// A pool per the settings, falling back to the local defaults.
pub async fn connect(settings: &Settings) -> Result<PgPool, Error> {
    let pool_options = || {
        PgPoolOptions::new()
            .max_connections(settings.database.max_connections)
            .acquire_timeout(Duration::from_secs(settings.database.acquire_timeout_secs))
    };
    if let Some(url) = &settings.database.url {
        let options = PgConnectOptions::from_str(url.expose_secret())
            .map_err(|e| Error::BadUrl(e.to_string()))?;
        let target = describe(&options);
        return pool_options()
            .connect_with(options)
            .await
            .map_err(|e| Error::Connect {
                target,
                reason: app::domain::health::describe_sqlx_error(&e),
            });
    }
    if settings.profile == Profile::Production {
        return Err(Error::BadUrl("required under profile=production".into()));
    }

    // 1. The machine's server on 127.0.0.1:5432.
    let user = std::env::var("PGUSER").unwrap_or_else(|_| "postgres".into());
    let server = PgConnectOptions::new()
        .host("127.0.0.1")
        .port(5432)
        .username(&user);
    let probe = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(2))
        .connect_with(server.clone().database("postgres"))
        .await;
    if let Ok(admin) = probe {
        ensure_database(&admin, LOCAL_DATABASE).await?;
        admin.close().await;
        let options = server.database(LOCAL_DATABASE);
        tracing::info!(target = %describe(&options), "using the local PostgreSQL server");
        return pool_options()
            .connect_with(options.clone())
            .await
            .map_err(|e| Error::Connect {
                target: describe(&options),
                reason: app::domain::health::describe_sqlx_error(&e),
            });
    }

    // 2. A private cluster under ./.corral/.
    let dir = std::env::current_dir()
        .map(|d| d.join(".corral").join("postgres"))
        .unwrap_or_else(|_| PathBuf::from(".corral/postgres"));
    start_private_cluster(&dir).await?;
    let options = PgConnectOptions::new()
        .host("127.0.0.1")
        .port(PRIVATE_PORT)
        .username("postgres");
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone().database("postgres"))
        .await
        .map_err(|e| Error::Connect {
            target: describe(&options),
            reason: app::domain::health::describe_sqlx_error(&e),
        })?;
    ensure_database(&admin, LOCAL_DATABASE).await?;
    admin.close().await;
    let options = options.database(LOCAL_DATABASE);
    tracing::info!(dir = %dir.display(), target = %describe(&options), "using a private PostgreSQL cluster");
    pool_options()
        .connect_with(options.clone())
        .await
        .map_err(|e| Error::Connect {
            target: describe(&options),
            reason: app::domain::health::describe_sqlx_error(&e),
        })
}

/// `host:port/database` without user or password, for messages and logs.
pub fn describe(options: &PgConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("(default)")
    )
}

async fn ensure_database(admin: &PgPool, name: &str) -> Result<(), Error> {
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists!""#,
        name
    )
    .fetch_one(admin)
    .await
    .map_err(|e| Error::Connect {
        target: "127.0.0.1:5432/postgres".into(),
        reason: app::domain::health::describe_sqlx_error(&e),
    })?;
    if !exists {
        // Identifiers cannot be bound as parameters; `name` is our own constant.
        let create = format!("CREATE DATABASE \"{name}\"");
        if let Err(e) = sqlx::raw_sql(&create).execute(admin).await {
            // Another process may have created it between the check and now.
            let raced =
                matches!(&e, sqlx::Error::Database(d) if d.code().as_deref() == Some("42P04"));
            if !raced {
                return Err(Error::Connect {
                    target: format!("127.0.0.1:5432/{name}"),
                    reason: format!(
                        "cannot create database: {}",
                        app::domain::health::describe_sqlx_error(&e)
                    ),
                });
            }
        }
        tracing::info!(database = name, "created database");
    }
    Ok(())
}

/// Finds `initdb` and `pg_ctl`: on PATH, else Debian's versioned directories.
fn postgres_bin_dir() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return Some(dir);
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| d.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

async fn start_private_cluster(dir: &Path) -> Result<(), Error> {
    let fail = |reason: String| Error::PrivateCluster {
        dir: dir.display().to_string(),
        reason,
    };
    let Some(bin) = postgres_bin_dir() else {
        return Err(Error::NoPostgres(
            "no PostgreSQL found: nothing answers on 127.0.0.1:5432 and there is no initdb/pg_ctl \
             to start a private one. Either set CORRAL_DATABASE__URL=postgres://user@host:port/db, \
             start a server on 127.0.0.1:5432 that accepts user `postgres` (or $PGUSER), \
             or install PostgreSQL (Debian: apt-get install postgresql) and run Corral again."
                .into(),
        ));
    };
    // PostgreSQL refuses to run as root; run it as `postgres` when we are root.
    let as_root = std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || std::fs::metadata("/proc/self")
            .map(|m| {
                use std::os::unix::fs::MetadataExt;
                m.uid() == 0
            })
            .unwrap_or(false);
    let run = |program: &Path, args: &[&str]| {
        let mut cmd = if as_root {
            let mut c = tokio::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            tokio::process::Command::new(program)
        };
        cmd.args(args);
        cmd
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    if as_root {
        let status = tokio::process::Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir)
            .status()
            .await
            .map_err(|e| fail(format!("chown: {e}")))?;
        if !status.success() {
            return Err(fail(
                "running as root and cannot hand the directory to user `postgres`".into(),
            ));
        }
    }
    let data = dir.join("data");
    let data_s = data.display().to_string();
    if !data.join("PG_VERSION").is_file() {
        let out = run(
            &bin.join("initdb"),
            &[
                "-D",
                &data_s,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        )
        .output()
        .await
        .map_err(|e| fail(format!("initdb: {e}")))?;
        if !out.status.success() {
            return Err(fail(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    let status = run(&bin.join("pg_ctl"), &["-D", &data_s, "status"])
        .output()
        .await
        .map_err(|e| fail(format!("pg_ctl: {e}")))?;
    if !status.status.success() {
        let log = dir.join("postgres.log").display().to_string();
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {PRIVATE_PORT} -k {}",
            dir.display()
        );
        let out = run(
            &bin.join("pg_ctl"),
            &["-D", &data_s, "-l", &log, "-o", &opts, "-w", "start"],
        )
        .output()
        .await
        .map_err(|e| fail(format!("pg_ctl start: {e}")))?;
        if !out.status.success() {
            return Err(fail(format!(
                "pg_ctl start failed (see {log}): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    Ok(())
}
