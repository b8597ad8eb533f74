//! Checks of the services Corral depends on, shared by the status page and `/readyz`.

use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::model::{DependencyState, DependencyStatus, Profile, StatusReport};

/// How long one dependency check may take before it counts as down.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs every dependency check at once.
pub async fn report(
    db: &PgPool,
    probes: &[std::sync::Arc<dyn super::Probe>],
    profile: Profile,
    version: &str,
) -> StatusReport {
    let mut dependencies = postgres(db).await;
    for probe in probes {
        dependencies.push(probe.check().await);
    }
    let checked_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    StatusReport {
        checked_at,
        version: version.to_owned(),
        profile: profile.to_string(),
        dependencies,
    }
}

/// Postgres reachability, then whether every embedded migration is applied.
/// Returns two rows: `postgres` and `migrations`.
pub async fn postgres(db: &PgPool) -> Vec<DependencyStatus> {
    let started = Instant::now();
    let version = tokio::time::timeout(CHECK_TIMEOUT, server_version(db)).await;
    let elapsed = started.elapsed();
    let pg = match version {
        Ok(Ok(v)) => row(
            "postgres",
            "PostgreSQL",
            DependencyState::Healthy,
            format!("PostgreSQL {v}"),
            elapsed,
        ),
        Ok(Err(e)) => row(
            "postgres",
            "PostgreSQL",
            DependencyState::Down,
            format!("unreachable: {}", describe_sqlx_error(&e)),
            elapsed,
        ),
        Err(_) => row(
            "postgres",
            "PostgreSQL",
            DependencyState::Down,
            format!("no answer within {} s", CHECK_TIMEOUT.as_secs()),
            elapsed,
        ),
    };
    if pg.state != DependencyState::Healthy {
        let migrations = row(
            "migrations",
            "Database migrations",
            DependencyState::Down,
            "cannot be checked while PostgreSQL is unreachable".into(),
            Duration::ZERO,
        );
        return vec![pg, migrations];
    }

    let started = Instant::now();
    let pending = tokio::time::timeout(CHECK_TIMEOUT, pending_migrations(db)).await;
    let elapsed = started.elapsed();
    let migrations = match pending {
        Ok(Ok(pending)) if pending.is_empty() => row(
            "migrations",
            "Database migrations",
            DependencyState::Healthy,
            format!("all {} applied", crate::MIGRATOR.iter().count()),
            elapsed,
        ),
        Ok(Ok(pending)) => row(
            "migrations",
            "Database migrations",
            DependencyState::Degraded,
            format!("pending: {}", pending.join(", ")),
            elapsed,
        ),
        Ok(Err(e)) => row(
            "migrations",
            "Database migrations",
            DependencyState::Down,
            format!("cannot read migration history: {}", describe_sqlx_error(&e)),
            elapsed,
        ),
        Err(_) => row(
            "migrations",
            "Database migrations",
            DependencyState::Down,
            format!("no answer within {} s", CHECK_TIMEOUT.as_secs()),
            elapsed,
        ),
    };
    vec![pg, migrations]
}

async fn server_version(db: &PgPool) -> sqlx::Result<String> {
    let v = sqlx::query_scalar!(r#"SELECT current_setting('server_version') AS "v!""#)
        .fetch_one(db)
        .await?;
    Ok(v)
}

/// Embedded migrations that the database has not applied successfully,
/// as `version description`.
async fn pending_migrations(db: &PgPool) -> sqlx::Result<Vec<String>> {
    let applied =
        sqlx::query_scalar!(r#"SELECT version AS "version!" FROM _sqlx_migrations WHERE success"#)
            .fetch_all(db)
            .await?;
    Ok(crate::MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
        .map(|m| format!("{} {}", m.version, m.description))
        .collect())
}

/// A one-line, secret-free description of a database error.
pub fn describe_sqlx_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection".into(),
        sqlx::Error::Tls(_) => "TLS handshake failed".into(),
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    }
}

fn row(
    id: &str,
    name: &str,
    state: DependencyState,
    detail: String,
    elapsed: Duration,
) -> DependencyStatus {
    DependencyStatus {
        id: id.into(),
        name: name.into(),
        state,
        detail,
        latency_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
    }
}
