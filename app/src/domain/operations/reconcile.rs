//! What a workload is meant to hold, and the pulls that bring a pod that
//! lacks it (one added by a scale-up, or one whose volume was replaced) up
//! to date. A workload is meant to hold every model whose latest succeeded
//! pull or delete on it was a pull.

use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::super::audit::{self, By, Record};
use super::super::error::Result;

/// Who the reconciler's pulls are requested by.
pub const REQUESTER: &str = "corral (reconcile)";
/// A reconciling pull that failed is not tried again for this long (a model
/// gone from the registry must not fail a pull every look).
pub const RETRY_AFTER_FAILURE_SECS: f64 = 600.0;

/// A model the workload is meant to hold, and the team that pulled it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intended {
    pub model: String,
    pub team_id: Option<Uuid>,
}

/// The models `workload` is meant to hold.
pub async fn intended(conn: &mut PgConnection, workload: &str) -> Result<Vec<Intended>> {
    let rows = sqlx::query!(
        r#"SELECT DISTINCT ON (model) model AS "model!", kind, team_id
             FROM operations
            WHERE workload = $1 AND state = 'succeeded' AND kind IN ('pull', 'delete')
              AND model IS NOT NULL
            ORDER BY model, finished_at DESC NULLS LAST, created_at DESC"#,
        workload
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|r| r.kind == "pull")
        .map(|r| Intended {
            model: r.model,
            team_id: r.team_id,
        })
        .collect())
}

/// Queues a pull of `model` on `workload` for the pods that lack it,
/// unless a pull of it is already open (then that one covers them) or the
/// last one the reconciler queued failed in the last ten minutes. Returns
/// the new operation's id. Run it in a transaction.
pub async fn queue_pull(
    tx: &mut PgConnection,
    workload: &str,
    want: &Intended,
    pods: &[String],
) -> Result<Option<Uuid>> {
    let id = sqlx::query_scalar!(
        r#"INSERT INTO operations (kind, workload, model, state, team_id, requested_by_name)
           SELECT 'pull', $1, $2, 'queued', $3, $4
            WHERE NOT EXISTS (
                  SELECT 1 FROM operations
                   WHERE workload = $1 AND model = $2 AND kind = 'pull'
                     AND requested_by_name = $4 AND state = 'failed'
                     AND finished_at > now() - make_interval(secs => $5))
           ON CONFLICT DO NOTHING
           RETURNING id"#,
        workload,
        want.model,
        want.team_id,
        REQUESTER,
        RETRY_AFTER_FAILURE_SECS,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else {
        return Ok(None);
    };
    super::rows::append_log(
        &mut *tx,
        id,
        None,
        &format!(
            "{} lack{} {}, which this workload is meant to hold: pulling it",
            pods.join(", "),
            if pods.len() == 1 { "s" } else { "" },
            want.model
        ),
    )
    .await?;
    audit::record(
        &mut *tx,
        By::System {
            on_behalf_of: None,
            request_id: None,
        },
        Record {
            action: "operation.pull",
            target_kind: "operation",
            target_id: &id.to_string(),
            team_id: want.team_id,
            before: None,
            after: Some(json!({
                "workload": workload, "model": want.model, "state": "queued",
                "reason": "reconcile", "pods": pods,
            })),
        },
    )
    .await?;
    Ok(Some(id))
}
