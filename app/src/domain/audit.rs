//! The audit log: every state change, with who, what, before and after.

use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::authz::{Action, Actor};
use super::error::{Error, Result};
use crate::model::text::storable;
use crate::model::{AUDIT_CURSOR, AuditEntry, AuditFilter, Page};

/// Who an entry is attributed to.
#[derive(Clone, Copy, Debug)]
pub enum By<'a> {
    /// A signed-in person or key.
    Actor(&'a Actor),
    /// Corral itself, e.g. syncing memberships from the IdP at sign-in, on
    /// behalf of the named user.
    System {
        on_behalf_of: Option<Uuid>,
        request_id: Option<&'a str>,
    },
}

/// One change to record.
#[derive(Debug)]
pub struct Record<'a> {
    pub action: &'a str,
    pub target_kind: &'a str,
    pub target_id: &'a str,
    pub team_id: Option<Uuid>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Writes one entry; call it in the same transaction as the change.
pub async fn record(conn: impl PgExecutor<'_>, by: By<'_>, r: Record<'_>) -> Result<()> {
    let (actor_id, actor_name, request_id) = match by {
        By::Actor(a) => (
            Some(a.user.id),
            a.user.username.clone(),
            a.request_id.clone(),
        ),
        By::System {
            on_behalf_of,
            request_id,
        } => (
            on_behalf_of,
            "corral".to_owned(),
            request_id.map(str::to_owned),
        ),
    };
    sqlx::query!(
        r#"INSERT INTO audit_log
             (actor_id, actor_name, action, target_kind, target_id, team_id, before, after, request_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"#,
        actor_id,
        actor_name,
        r.action,
        r.target_kind,
        r.target_id,
        r.team_id,
        r.before,
        r.after,
        request_id,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Newest first. `cursor` is the `next_cursor` of the previous page.
pub async fn list(
    conn: impl PgExecutor<'_>,
    actor: &Actor,
    filter: &AuditFilter,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Page<AuditEntry>> {
    actor.authorize(Action::ViewAudit)?;
    for (field, value) in [
        ("actor", &filter.actor),
        ("action", &filter.action),
        ("team", &filter.team),
    ] {
        if let Some(v) = value {
            storable(field, v)?;
        }
    }
    let before_id = match cursor {
        None | Some("") => i64::MAX,
        Some(c) => {
            AUDIT_CURSOR.check("cursor", c)?;
            c.parse::<i64>().map_err(|_| Error::Validation {
                field: "cursor".into(),
                message: "not a cursor returned by this endpoint".into(),
            })?
        }
    };
    crate::model::PAGE_LIMIT.check("limit", limit)?;
    let (action_exact, action_prefix) = match filter.action.as_deref().filter(|a| !a.is_empty()) {
        Some(a) if a.ends_with('.') => (None, Some(format!("{}%", a.replace('%', "")))),
        Some(a) => (Some(a.to_owned()), None),
        None => (None, None),
    };
    let rows = sqlx::query!(
        r#"SELECT a.id, a.at, a.actor_name, a.action, a.target_kind, a.target_id,
                  t.slug AS "team?", a.before, a.after, a.request_id
             FROM audit_log a
             LEFT JOIN teams t ON t.id = a.team_id
            WHERE a.id < $1
              AND ($2::text IS NULL OR a.actor_name = $2)
              AND ($3::text IS NULL OR a.action = $3)
              AND ($4::text IS NULL OR a.action LIKE $4)
              AND ($5::text IS NULL OR t.slug = $5)
            ORDER BY a.id DESC
            LIMIT $6"#,
        before_id,
        filter.actor.as_deref().filter(|s| !s.is_empty()),
        action_exact,
        action_prefix,
        filter.team.as_deref().filter(|s| !s.is_empty()),
        limit + 1,
    )
    .fetch_all(conn)
    .await?;
    let items: Vec<AuditEntry> = rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            at: r.at,
            actor: r.actor_name,
            action: r.action,
            target_kind: r.target_kind,
            target_id: r.target_id,
            team: r.team,
            before: r.before,
            after: r.after,
            request_id: r.request_id,
        })
        .collect();
    Ok(Page::from_overfetch(items, limit, |e| e.id.to_string()))
}
