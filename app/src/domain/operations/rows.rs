//! Reading operations, their steps and their log from Postgres into the
//! model's types.

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::domain::error::{Error, Result};
use crate::model::{
    Operation, OperationKind, OperationLogLine, OperationState, OperationStep, StepState,
};

/// Longest log line kept; longer ones are cut (Ollama's errors can be long).
const LOG_LINE_MAX: usize = 2000;

/// One operation with its steps, by id, whoever asks (callers authorize).
pub async fn fetch(conn: &mut sqlx::PgConnection, id: Uuid) -> Result<Operation> {
    fetch_many(conn, &[id]).await?.pop().ok_or(Error::NotFound)
}

/// Operations with their steps, in the order of `ids`.
pub async fn fetch_many(conn: &mut sqlx::PgConnection, ids: &[Uuid]) -> Result<Vec<Operation>> {
    let rows = sqlx::query!(
        r#"SELECT o.id, o.kind, o.workload, o.model, o.destination, o.replicas, o.state,
                  t.slug AS "team?", o.requested_by_name, o.attempts, o.cancel_requested,
                  o.error, o.outcome, o.not_before, o.created_at, o.started_at, o.finished_at
             FROM operations o LEFT JOIN teams t ON t.id = o.team_id
            WHERE o.id = ANY($1)"#,
        ids
    )
    .fetch_all(&mut *conn)
    .await?;
    let steps = sqlx::query!(
        r#"SELECT operation_id, pod, state, status, completed, total, rate, error,
                  started_at, finished_at
             FROM operation_steps WHERE operation_id = ANY($1)
            ORDER BY pod"#,
        ids
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out: Vec<Operation> = rows
        .into_iter()
        .map(|r| Operation {
            id: r.id,
            kind: OperationKind::parse(&r.kind).unwrap_or(OperationKind::Pull),
            workload: r.workload,
            model: r.model,
            destination: r.destination,
            replicas: r.replicas,
            state: OperationState::parse(&r.state).unwrap_or(OperationState::Failed),
            team: r.team,
            requested_by: r.requested_by_name,
            attempts: r.attempts,
            cancel_requested: r.cancel_requested,
            error: r.error,
            outcome: r.outcome,
            not_before: r.not_before,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            steps: Vec::new(),
        })
        .collect();
    for s in steps {
        if let Some(op) = out.iter_mut().find(|o| o.id == s.operation_id) {
            op.steps.push(OperationStep {
                pod: s.pod,
                state: StepState::parse(&s.state).unwrap_or(StepState::Failed),
                status: s.status,
                completed: s.completed,
                total: s.total,
                rate: s.rate,
                error: s.error,
                started_at: s.started_at,
                finished_at: s.finished_at,
            });
        }
    }
    out.sort_by_key(|o| ids.iter().position(|id| *id == o.id));
    Ok(out)
}

/// The operation's log, oldest first (the last 1,000 lines).
pub async fn log(conn: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<OperationLogLine>> {
    let mut lines: Vec<OperationLogLine> = sqlx::query!(
        "SELECT at, pod, line FROM operation_log WHERE operation_id = $1 ORDER BY id DESC LIMIT 1000",
        id
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|r| OperationLogLine {
        at: r.at,
        pod: r.pod,
        line: r.line,
    })
    .collect();
    lines.reverse();
    Ok(lines)
}

/// Adds a line to the operation's log. Text Postgres cannot store (U+0000)
/// is dropped from it rather than failing the operation.
pub async fn append_log(
    conn: impl PgExecutor<'_>,
    id: Uuid,
    pod: Option<&str>,
    line: &str,
) -> Result<()> {
    let line = clean(line);
    let pod = pod.map(clean);
    sqlx::query!(
        "INSERT INTO operation_log (operation_id, pod, line) VALUES ($1, $2, $3)",
        id,
        pod,
        line
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// `text` without U+0000 and cut to [`LOG_LINE_MAX`] characters: what an
/// outside server said, made storable.
pub fn clean(text: &str) -> String {
    let mut out: String = text
        .chars()
        .filter(|c| *c != '\0')
        .take(LOG_LINE_MAX)
        .collect();
    if text.chars().count() > LOG_LINE_MAX {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn what_ollama_says_is_made_storable() {
        assert_eq!(clean("a\0b"), "ab");
        let long = "x".repeat(3000);
        assert_eq!(clean(&long).chars().count(), 2001);
    }
}
