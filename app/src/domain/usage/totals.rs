//! A team's exact usage over a range: whole UTC days from `usage_daily`,
//! the partial days at the range's edges from `usage_events`.

use sqlx::{PgConnection, PgExecutor};
use time::{Date, OffsetDateTime, UtcOffset};
use uuid::Uuid;

use crate::domain::authz::{Action, Actor};
use crate::domain::error::Result;
use crate::domain::keys::token::display_prefix;
use crate::domain::teams::visible_id;
use crate::model::{KeyUsage, ModelUsage, UsageEvent, UsageSummary};

/// A range as whole days `[days.0, days.1)` and the two partial stretches
/// around them, `[edges[i].0, edges[i].1)`; together exactly the range.
#[derive(Debug, PartialEq)]
pub(super) struct Split {
    pub days: (Date, Date),
    pub edges: [(OffsetDateTime, OffsetDateTime); 2],
}

pub(super) fn split(from: OffsetDateTime, to: OffsetDateTime) -> Split {
    let from = from.to_offset(UtcOffset::UTC);
    let to = to.to_offset(UtcOffset::UTC);
    let midnight = |d: Date| d.midnight().assume_utc();
    let lo = if midnight(from.date()) == from {
        from.date()
    } else {
        from.date().next_day().unwrap_or(Date::MAX)
    };
    let hi = to.date();
    if lo >= hi {
        return Split {
            days: (lo, lo),
            edges: [(from, to), (to, to)],
        };
    }
    Split {
        days: (lo, hi),
        edges: [(from, midnight(lo)), (midnight(hi), to)],
    }
}

/// A model's line as the totals queries add it up.
pub(super) struct ModelRow {
    pub model: String,
    pub requests: i64,
    pub errors: i64,
    pub prompt: i64,
    pub completion: i64,
    pub latency: f64,
    pub streamed: i64,
    pub ttft: f64,
}

impl From<ModelRow> for ModelUsage {
    fn from(r: ModelRow) -> Self {
        ModelUsage {
            model: r.model,
            requests: r.requests,
            errors: r.errors,
            prompt_tokens: r.prompt,
            completion_tokens: r.completion,
            avg_latency_ms: r.latency / r.requests.max(1) as f64,
            // Over streamed replies only.
            avg_ttft_ms: (r.streamed > 0).then(|| r.ttft / r.streamed as f64),
        }
    }
}

/// A request as the usage queries read it, with its key's public id.
pub(super) struct EventRow {
    pub at: OffsetDateTime,
    pub public_id: Option<String>,
    pub model: String,
    pub endpoint: String,
    pub status: i16,
    pub prompt_tokens: i32,
    pub completion_tokens: i32,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
}

impl From<EventRow> for UsageEvent {
    fn from(r: EventRow) -> Self {
        UsageEvent {
            at: r.at,
            key: r.public_id.as_deref().map(display_prefix),
            model: r.model,
            endpoint: r.endpoint,
            status: r.status,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            latency_ms: r.latency_ms,
            ttft_ms: r.ttft_ms,
        }
    }
}

/// Use per model of `teams` over a split range, most requests first, at
/// most `limit` models (all when none): the team page and the admin page.
pub(super) async fn model_totals(
    conn: &mut PgConnection,
    teams: &[Uuid],
    s: &Split,
    limit: Option<i64>,
) -> Result<Vec<ModelUsage>> {
    let [(a0, a1), (b0, b1)] = s.edges;
    Ok(sqlx::query_as!(
        ModelRow,
        r#"SELECT model AS "model!", SUM(requests)::bigint AS "requests!",
                  SUM(errors)::bigint AS "errors!", SUM(prompt)::bigint AS "prompt!",
                  SUM(completion)::bigint AS "completion!", SUM(latency) AS "latency!",
                  SUM(streamed)::bigint AS "streamed!", SUM(ttft) AS "ttft!"
             FROM (SELECT model, requests, errors, prompt_tokens AS prompt,
                          completion_tokens AS completion, latency_ms_sum AS latency,
                          streamed, ttft_ms_sum AS ttft
                     FROM usage_team_daily WHERE team_id = ANY($1) AND day >= $2 AND day < $3
                   UNION ALL
                   SELECT model, 1, (status >= 400)::int, prompt_tokens, completion_tokens,
                          latency_ms, (ttft_ms IS NOT NULL)::int, COALESCE(ttft_ms, 0)
                     FROM usage_events
                    WHERE team_id = ANY($1)
                      AND ((at >= $4 AND at < $5) OR (at >= $6 AND at < $7))) u
            GROUP BY model ORDER BY 2 DESC, 1 LIMIT $8"#,
        teams,
        s.days.0,
        s.days.1,
        a0,
        a1,
        b0,
        b1,
        limit
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(ModelUsage::from)
    .collect())
}

/// Tokens a team used this calendar month (UTC).
pub async fn month_tokens(conn: impl PgExecutor<'_>, team_id: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0)::bigint AS "n!"
             FROM usage_team_daily
            WHERE team_id = $1 AND day >= date_trunc('month', now() AT TIME ZONE 'UTC')::date"#,
        team_id
    )
    .fetch_one(conn)
    .await?)
}

/// This month's tokens at its end, at the pace of the month so far (at
/// least an hour of it, so the first minutes do not project wildly).
pub fn project_month(month_tokens: i64, now: OffsetDateTime) -> i64 {
    let now = now.to_offset(UtcOffset::UTC);
    let start = now
        .date()
        .replace_day(1)
        .unwrap_or(now.date())
        .midnight()
        .assume_utc();
    let days = time::util::days_in_month(now.month(), now.year()) as f64;
    let elapsed = ((now - start).as_seconds_f64()).max(3600.0);
    (month_tokens as f64 * days * 86400.0 / elapsed).round() as i64
}

/// A team's usage from `since` to `until`, by model and by key, with the
/// latest requests.
pub async fn summary(
    conn: &mut PgConnection,
    actor: &Actor,
    slug: &str,
    since: OffsetDateTime,
    until: OffsetDateTime,
) -> Result<UsageSummary> {
    let team_id = visible_id(&mut *conn, actor, slug).await?;
    actor.authorize(Action::ViewUsage(team_id))?;
    let s = split(since, until);
    let [(a0, a1), (b0, b1)] = s.edges;
    let by_model = model_totals(&mut *conn, &[team_id], &s, None).await?;
    let by_key = sqlx::query!(
        r#"SELECT k.public_id, k.name, k.revoked_at IS NOT NULL AS "revoked!",
                  COALESCE(u.requests, 0)::bigint AS "requests!",
                  COALESCE(u.errors, 0)::bigint AS "errors!",
                  COALESCE(u.tokens, 0)::bigint AS "tokens!", u.last_at
             FROM api_keys k
             LEFT JOIN (SELECT key_id, SUM(requests) AS requests, SUM(errors) AS errors,
                               SUM(tokens) AS tokens, MAX(last_at) AS last_at
                          FROM (SELECT key_id, requests, errors,
                                       prompt_tokens + completion_tokens AS tokens, last_at
                                  FROM usage_daily
                                 WHERE team_id = $1 AND day >= $2 AND day < $3
                                UNION ALL
                                SELECT key_id, 1, (status >= 400)::int,
                                       prompt_tokens + completion_tokens, at
                                  FROM usage_events
                                 WHERE team_id = $1
                                   AND ((at >= $4 AND at < $5) OR (at >= $6 AND at < $7))) e
                         GROUP BY key_id) u ON u.key_id = k.id
            WHERE k.team_id = $1
              AND (u.requests > 0 OR (k.revoked_at IS NULL AND k.expires_at > now()))
            ORDER BY 4 DESC, k.name, k.public_id"#,
        team_id,
        s.days.0,
        s.days.1,
        a0,
        a1,
        b0,
        b1
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| KeyUsage {
        key: display_prefix(&r.public_id),
        name: r.name,
        revoked: r.revoked,
        requests: r.requests,
        errors: r.errors,
        tokens: r.tokens,
        last_used_at: r.last_at,
    })
    .collect();
    let recent = sqlx::query_as!(
        EventRow,
        r#"SELECT e.at, k.public_id AS "public_id?", e.model, e.endpoint, e.status,
                  e.prompt_tokens, e.completion_tokens, e.latency_ms, e.ttft_ms
             FROM usage_events e LEFT JOIN api_keys k ON k.id = e.key_id
            WHERE e.team_id = $1 AND e.at < $2
            ORDER BY e.at DESC, e.event_id DESC LIMIT 50"#,
        team_id,
        until
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(UsageEvent::from)
    .collect();
    let quota = sqlx::query_scalar!(
        "SELECT monthly_token_quota FROM teams WHERE id = $1",
        team_id
    )
    .fetch_one(&mut *conn)
    .await?;
    let month_tokens = month_tokens(&mut *conn, team_id).await?;
    Ok(UsageSummary {
        team: slug.to_owned(),
        since,
        until,
        requests: by_model.iter().map(|m| m.requests).sum(),
        prompt_tokens: by_model.iter().map(|m| m.prompt_tokens).sum(),
        completion_tokens: by_model.iter().map(|m| m.completion_tokens).sum(),
        month_tokens,
        projected_month_tokens: project_month(month_tokens, OffsetDateTime::now_utc()),
        monthly_token_quota: quota,
        by_model,
        by_key,
        recent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn a_range_splits_into_whole_days_and_its_edges_exactly() {
        let s = split(
            datetime!(2026-12-01 10:00 UTC),
            datetime!(2026-12-04 06:30 UTC),
        );
        assert_eq!(s.days, (date!(2026 - 12 - 02), date!(2026 - 12 - 04)));
        assert_eq!(
            s.edges,
            [
                (
                    datetime!(2026-12-01 10:00 UTC),
                    datetime!(2026-12-02 0:00 UTC)
                ),
                (
                    datetime!(2026-12-04 0:00 UTC),
                    datetime!(2026-12-04 06:30 UTC)
                ),
            ]
        );
        // Midnight to midnight: all whole days, empty edges.
        let s = split(
            datetime!(2026-12-01 0:00 UTC),
            datetime!(2026-12-03 0:00 UTC),
        );
        assert_eq!(s.days, (date!(2026 - 12 - 01), date!(2026 - 12 - 03)));
        assert!(s.edges.iter().all(|(a, b)| a == b));
        // Within one day: no whole day, all raw.
        let s = split(
            datetime!(2026-12-01 1:00 UTC),
            datetime!(2026-12-01 5:00 UTC),
        );
        assert_eq!(s.days.0, s.days.1);
        assert_eq!(
            s.edges[0],
            (
                datetime!(2026-12-01 1:00 UTC),
                datetime!(2026-12-01 5:00 UTC)
            )
        );
        // Another offset is the same instant.
        let s = split(
            datetime!(2026-12-01 22:00 -02:00),
            datetime!(2026-12-03 1:00 UTC),
        );
        assert_eq!(s.days, (date!(2026 - 12 - 02), date!(2026 - 12 - 03)));
    }

    #[test]
    fn the_month_is_projected_at_its_pace_so_far() {
        // 10 days of 31 gone: ×3.1.
        assert_eq!(project_month(1000, datetime!(2026-12-11 0:00 UTC)), 3100);
        // The first minutes count as an hour.
        assert_eq!(project_month(10, datetime!(2026-12-01 0:01 UTC)), 7440);
    }
}
