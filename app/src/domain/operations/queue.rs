//! The runners' side of the operations queue: take the oldest ready
//! operation with `FOR UPDATE SKIP LOCKED` under a lease, renew the lease
//! with a heartbeat, write per-pod progress and the log, finish. Every
//! write after the claim names the runner, so a runner that lost its lease
//! (it stalled and another took the operation over) changes nothing.

use std::time::Duration;

use serde_json::json;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::rows::{self, clean};
use crate::domain::audit::{self, By, Record};
use crate::domain::error::Result;
use crate::model::{Operation, OperationState, StepState};

/// A runner's name in leases and logs: host and process, unique enough to
/// tell two Corral replicas apart.
pub fn runner_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "corral".into());
    format!(
        "{host}/{}/{}",
        std::process::id(),
        &Uuid::new_v4().simple().to_string()[..6]
    )
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Ends the operations whose runner stopped (its lease ran out) and that
/// may not be tried again: failed with the reason, or cancelled when a
/// cancel was asked. Returns their ids.
pub async fn reap(db: &PgPool) -> Result<Vec<Uuid>> {
    let mut tx = db.begin().await?;
    let ended = sqlx::query!(
        r#"UPDATE operations
              SET state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'failed' END,
                  error = CASE WHEN cancel_requested THEN error
                          ELSE format('its runner stopped (crash, kill or eviction) during each of %s attempts; not tried again', attempts) END,
                  finished_at = now(), lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
            WHERE state = 'running' AND lease_expires_at < now()
              AND (attempts >= max_attempts OR cancel_requested)
            RETURNING id, state, error, kind, team_id, requested_by"#
    )
    .fetch_all(&mut *tx)
    .await?;
    for op in &ended {
        let state = OperationState::parse(&op.state).unwrap_or(OperationState::Failed);
        end_steps(&mut *tx, op.id, state).await?;
        let why = op
            .error
            .as_deref()
            .unwrap_or("cancelled while its runner was gone");
        rows::append_log(&mut *tx, op.id, None, why).await?;
        record_end(
            &mut *tx,
            op.id,
            op.team_id,
            op.requested_by,
            state,
            op.error.as_deref(),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(ended.into_iter().map(|r| r.id).collect())
}

/// Takes the oldest ready operation (queued; scheduled whose time came; or
/// running under a lease that ran out, to resume it), for `lease`. Scales
/// of a workload run one at a time.
pub async fn claim(db: &PgPool, owner: &str, lease: Duration) -> Result<Option<Operation>> {
    let mut tx = db.begin().await?;
    let claimed = sqlx::query!(
        r#"WITH next AS (
             SELECT id FROM operations o
              WHERE (o.state = 'queued'
                     OR (o.state = 'scheduled' AND o.not_before <= now())
                     OR (o.state = 'running' AND o.lease_expires_at < now()
                         AND o.attempts < o.max_attempts AND NOT o.cancel_requested))
                AND NOT (o.kind = 'scale' AND EXISTS (
                     SELECT 1 FROM operations r
                      WHERE r.kind = 'scale' AND r.workload = o.workload AND r.id <> o.id
                        AND r.state = 'running' AND r.lease_expires_at >= now()))
              ORDER BY o.created_at
              LIMIT 1
              FOR UPDATE SKIP LOCKED)
           UPDATE operations o
              SET state = 'running', lease_owner = $1,
                  lease_expires_at = now() + make_interval(secs => $2),
                  attempts = o.attempts + 1, started_at = coalesce(o.started_at, now()),
                  updated_at = now()
             FROM next WHERE o.id = next.id
           RETURNING o.id, o.attempts, o.max_attempts"#,
        owner,
        secs(lease),
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(c) = claimed else {
        return Ok(None);
    };
    let line = if c.attempts > 1 {
        format!(
            "resumed by {owner} after its runner stopped (attempt {} of {})",
            c.attempts, c.max_attempts
        )
    } else {
        format!("started by {owner}")
    };
    rows::append_log(&mut *tx, c.id, None, &line).await?;
    let op = rows::fetch(&mut tx, c.id).await?;
    tx.commit().await?;
    Ok(Some(op))
}

/// What a heartbeat found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heartbeat {
    /// The lease is renewed; a cancel may have been asked.
    Held { cancel_requested: bool },
    /// Another runner has the operation, or it ended: stop working on it.
    Lost,
}

/// Renews the lease on `id` for another `lease`.
pub async fn heartbeat(db: &PgPool, id: Uuid, owner: &str, lease: Duration) -> Result<Heartbeat> {
    let row = sqlx::query_scalar!(
        r#"UPDATE operations SET lease_expires_at = now() + make_interval(secs => $3)
            WHERE id = $1 AND lease_owner = $2 AND state = 'running'
           RETURNING cancel_requested"#,
        id,
        owner,
        secs(lease),
    )
    .fetch_optional(db)
    .await?;
    Ok(match row {
        Some(cancel_requested) => Heartbeat::Held { cancel_requested },
        None => Heartbeat::Lost,
    })
}

/// The pods the operation runs on (name, Ollama URL). On a resume, pods
/// that already succeeded keep their step; the others start again. Returns
/// the pods still to do.
pub async fn set_steps(
    db: &PgPool,
    id: Uuid,
    owner: &str,
    pods: &[(String, String)],
) -> Result<Vec<(String, String)>> {
    let names: Vec<String> = pods.iter().map(|p| clean(&p.0)).collect();
    let endpoints: Vec<String> = pods.iter().map(|p| clean(&p.1)).collect();
    let todo = sqlx::query!(
        r#"INSERT INTO operation_steps (operation_id, pod, endpoint)
           SELECT $1, p.pod, p.endpoint FROM unnest($3::text[], $4::text[]) AS p(pod, endpoint)
            WHERE EXISTS (SELECT 1 FROM operations o WHERE o.id = $1 AND o.lease_owner = $2)
           ON CONFLICT (operation_id, pod) DO UPDATE
              SET endpoint = excluded.endpoint,
                  state = CASE WHEN operation_steps.state = 'succeeded' THEN 'succeeded' ELSE 'pending' END,
                  error = CASE WHEN operation_steps.state = 'succeeded' THEN operation_steps.error END,
                  updated_at = now()
           RETURNING pod, endpoint, state"#,
        id,
        owner,
        &names,
        &endpoints,
    )
    .fetch_all(db)
    .await?;
    Ok(todo
        .into_iter()
        .filter(|r| r.state != "succeeded")
        .map(|r| (r.pod, r.endpoint))
        .collect())
}

/// One pod's progress.
#[derive(Clone, Debug, PartialEq)]
pub struct StepUpdate<'a> {
    pub state: StepState,
    pub status: &'a str,
    /// Bytes done and to do; none keeps what was written before.
    pub completed: Option<i64>,
    pub total: Option<i64>,
    pub rate: f64,
    pub error: Option<&'a str>,
}

/// Writes one pod's progress; false when the runner no longer holds the
/// operation.
pub async fn progress(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner: &str,
    pod: &str,
    u: &StepUpdate<'_>,
) -> Result<bool> {
    let done = matches!(
        u.state,
        StepState::Succeeded | StepState::Failed | StepState::Cancelled
    );
    let r = sqlx::query!(
        r#"UPDATE operation_steps s
              SET state = $4, status = $5, completed = coalesce($6, s.completed),
                  total = coalesce($7, s.total), rate = $8, error = $9,
                  started_at = coalesce(s.started_at, now()),
                  finished_at = CASE WHEN $10 THEN now() END, updated_at = now()
            WHERE s.operation_id = $1 AND s.pod = $2
              AND EXISTS (SELECT 1 FROM operations o
                           WHERE o.id = $1 AND o.lease_owner = $3 AND o.state = 'running')"#,
        id,
        pod,
        owner,
        u.state.as_str(),
        clean(u.status),
        u.completed.map(|n| n.max(0)),
        u.total.map(|n| n.max(0)),
        if u.rate.is_finite() {
            u.rate.max(0.0)
        } else {
            0.0
        },
        u.error.map(clean),
        done,
    )
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Adds a line to the operation's log.
pub async fn log(db: impl PgExecutor<'_>, id: Uuid, pod: Option<&str>, line: &str) -> Result<()> {
    rows::append_log(db, id, pod, line).await
}

/// Ends the operation held by `owner`: succeeded, failed (with `error`) or
/// cancelled; `outcome` says what the result means. Steps not yet ended
/// end with it. The audit log records it. False when the runner no longer
/// held it (nothing is changed then).
pub async fn finish(
    db: &PgPool,
    id: Uuid,
    owner: &str,
    state: OperationState,
    error: Option<&str>,
    outcome: Option<&str>,
) -> Result<bool> {
    let mut tx = db.begin().await?;
    let row = sqlx::query!(
        r#"UPDATE operations
              SET state = $3, error = $4, outcome = $5, finished_at = now(),
                  lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
            WHERE id = $1 AND lease_owner = $2 AND state = 'running'
           RETURNING team_id, requested_by, workload, modelfile_id, modelfile_version,
                     requested_by_name"#,
        id,
        owner,
        state.as_str(),
        error.map(clean),
        outcome.map(clean),
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    // A Modelfile deploy that succeeded on every pod moves the workload's
    // deployed version.
    if let (OperationState::Succeeded, Some(modelfile), Some(version)) =
        (state, row.modelfile_id, row.modelfile_version)
    {
        sqlx::query!(
            r#"INSERT INTO modelfile_deployments
                 (modelfile_id, workload, version, operation_id, deployed_by)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (modelfile_id, workload) DO UPDATE
                 SET version = EXCLUDED.version, operation_id = EXCLUDED.operation_id,
                     deployed_by = EXCLUDED.deployed_by, deployed_at = now()"#,
            modelfile,
            row.workload,
            version,
            id,
            row.requested_by_name,
        )
        .execute(&mut *tx)
        .await?;
    }
    end_steps(&mut *tx, id, state).await?;
    let line = match (error, outcome) {
        (Some(e), _) => format!("{}: {e}", state.as_str()),
        (None, Some(o)) => format!("{}: {o}", state.as_str()),
        (None, None) => state.as_str().to_owned(),
    };
    rows::append_log(&mut *tx, id, None, &line).await?;
    record_end(&mut *tx, id, row.team_id, row.requested_by, state, error).await?;
    tx.commit().await?;
    Ok(true)
}

/// Steps still pending or running end as the operation did (a failed
/// operation's unfinished steps are cancelled: they did not fail).
async fn end_steps(db: impl PgExecutor<'_>, id: Uuid, state: OperationState) -> Result<()> {
    let step = match state {
        OperationState::Succeeded => StepState::Succeeded,
        _ => StepState::Cancelled,
    };
    sqlx::query!(
        r#"UPDATE operation_steps SET state = $2, finished_at = now(), updated_at = now()
            WHERE operation_id = $1 AND state IN ('pending', 'running')"#,
        id,
        step.as_str(),
    )
    .execute(db)
    .await?;
    Ok(())
}

async fn record_end(
    db: impl PgExecutor<'_>,
    id: Uuid,
    team_id: Option<Uuid>,
    requested_by: Option<Uuid>,
    state: OperationState,
    error: Option<&str>,
) -> Result<()> {
    audit::record(
        db,
        By::System {
            on_behalf_of: requested_by,
            request_id: None,
        },
        Record {
            action: &format!("operation.{}", state.as_str()),
            target_kind: "operation",
            target_id: &id.to_string(),
            team_id,
            before: None,
            after: Some(json!({ "state": state.as_str(), "error": error })),
        },
    )
    .await
}
