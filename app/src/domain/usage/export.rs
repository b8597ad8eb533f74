//! A team's usage as rows for export, streamed from Postgres so that a year
//! of a busy team is never held in memory: per key, model and day from
//! `usage_daily`, or every request from `usage_events`.

use futures_util::{Stream, StreamExt};
use sqlx::{PgConnection, PgPool};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::domain::authz::{Action, Actor};
use crate::domain::error::Result;
use crate::domain::keys::token::display_prefix;
use crate::domain::teams::visible_id;

use super::totals::EventRow;
use crate::model::UsageEvent;

/// One key's use of one model on one day (UTC).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ExportRow {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    /// Prefix of the key (`crl_<public id>_…`); empty for requests without
    /// one.
    pub key: String,
    pub key_name: String,
    pub model: String,
    pub requests: i64,
    pub errors: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub avg_latency_ms: f64,
}

/// The team behind `slug`, if `actor` may export its usage.
pub async fn export_team(conn: &mut PgConnection, actor: &Actor, slug: &str) -> Result<Uuid> {
    let team_id = visible_id(&mut *conn, actor, slug).await?;
    actor.authorize(Action::ViewUsage(team_id))?;
    Ok(team_id)
}

/// Rows for the days `[from, to)`, by day, key and model.
pub fn export_days(
    db: &PgPool,
    team_id: Uuid,
    from: Date,
    to: Date,
) -> impl Stream<Item = sqlx::Result<ExportRow>> + Send + '_ {
    sqlx::query!(
        r#"SELECT d.day, k.public_id AS "public_id?", k.name AS "key_name?", d.model,
                  d.requests, d.errors, d.prompt_tokens, d.completion_tokens, d.latency_ms_sum
             FROM usage_daily d LEFT JOIN api_keys k ON k.id = d.key_id
            WHERE d.team_id = $1 AND d.day >= $2 AND d.day < $3
            ORDER BY d.day, k.public_id, d.model"#,
        team_id,
        from,
        to
    )
    .fetch(db)
    .map(|r| {
        r.map(|r| ExportRow {
            day: r.day.to_string(),
            key: r
                .public_id
                .as_deref()
                .map(display_prefix)
                .unwrap_or_default(),
            key_name: r.key_name.unwrap_or_default(),
            model: r.model,
            requests: r.requests,
            errors: r.errors,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            avg_latency_ms: r.latency_ms_sum / r.requests.max(1) as f64,
        })
    })
}

/// Every request in `[from, to)`, oldest first.
pub fn export_events(
    db: &PgPool,
    team_id: Uuid,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> impl Stream<Item = sqlx::Result<UsageEvent>> + Send + '_ {
    sqlx::query_as!(
        EventRow,
        r#"SELECT e.at, k.public_id AS "public_id?", e.model, e.endpoint, e.status,
                  e.prompt_tokens, e.completion_tokens, e.latency_ms, e.ttft_ms
             FROM usage_events e LEFT JOIN api_keys k ON k.id = e.key_id
            WHERE e.team_id = $1 AND e.at >= $2 AND e.at < $3
            ORDER BY e.at, e.event_id"#,
        team_id,
        from,
        to
    )
    .fetch(db)
    .map(|r| r.map(UsageEvent::from))
}
